"""What every perflab figure shares: its look, its caps on what it draws, its time axis.

Every chart

* returns a ``plotly.graph_objects.Figure`` and raises PerflabError naming what is
  missing ("run X has no resource samples") rather than drawing an empty picture;
* is deterministic: sorted inputs, ids built from names, no random uids, a fixed
  template and ``uirevision``, so ``fig.to_json()`` is identical on every call and a
  notebook's stored output does not churn;
* caps what it draws: MAX_POINTS per trace (a longer series is re-bucketed into wider
  intervals, never sampled, so a p95 stays a p95), MAX_NODES per flame graph, MAX_BARS
  per bar chart.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
import polars as pl

from perflab.errors import PerflabError

# Points per trace: plotly stays responsive well beyond this, and a 10-minute run sampled
# at 4 Hz is 2,400 points, so only long runs are re-bucketed.
MAX_POINTS = 5000
# Nodes per flame graph: an icicle of 2,000 rectangles draws in well under a second in a
# browser; beyond that the page stutters and the narrow nodes are unreadable anyway.
MAX_NODES = 2000
# Deeper than the stacks of any service we met (pprof's large.cpu is 62 frames deep):
# the cut is a guard against runaway recursion, not a view setting.
DEFAULT_MAX_DEPTH = 100
# Nodes below 0.1 % of the total are folded into their parent: invisible at any zoom a
# reader starts from, and they are what makes a 20,000-sample profile a 50,000-node tree.
DEFAULT_MIN_SHARE = 0.001
# Box labels in flame graphs: below 10 px a label is hidden rather than shrunk; zooming
# into a frame widens its boxes and shows their labels.
READABLE_TEXT = {"minsize": 10, "mode": "hide"}
# Bars per bar chart (statements, indexes, tables): a screen's height of readable labels.
MAX_BARS = 60
# A statement's label on the axis; the hover carries a longer text.
QUERY_LABEL_CHARS = 60
# pg_stat_statements texts can be 170,000 characters; a hover box shows this many.
HOVER_QUERY_CHARS = 400
# The same look everywhere, whatever plotly.io.templates.default a notebook set.
TEMPLATE = "plotly_white"
# Fixed, so a re-rendered figure keeps the reader's zoom and the JSON does not change.
UIREVISION = "perflab"
# Charts with stacked panels keep their legend at the side: above, it runs into the panel titles.
LEGEND_RIGHT = {"orientation": "v", "x": 1.02, "y": 1, "xanchor": "left", "yanchor": "top"}

# Categories keep one colour in every flame graph, so hashing is always the same red.
CATEGORY_COLORS = {
    "hashing": "#d62728",
    "serialization": "#ff7f0e",
    "regex": "#9467bd",
    "gc": "#8c564b",
    "locks": "#1f77b4",
    "network": "#17becf",
    "database": "#2ca02c",
}
# Uncategorised frames get warm flame colours by package, stable across runs (crc32).
FLAME_COLORS = ("#f2a541", "#f5b461", "#f0c05a", "#e8a33d", "#f6c97f", "#eeb05c", "#f3bb6e", "#e9b44c")
ERROR_COLOR = "#d62728"
UNUSED_COLOR = "#d62728"
USED_COLOR = "#1f77b4"


def finish(fig: go.Figure, title: str, **layout: Any) -> go.Figure:
    settings: dict[str, Any] = {
        "template": TEMPLATE,
        "title": {"text": title},
        "uirevision": UIREVISION,
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
        "margin": {"t": 90},
    }
    settings.update(layout)
    fig.update_layout(**settings)
    return fig


def fit_interval(span_s: float, interval_s: float) -> float:
    """The smallest multiple of ``interval_s`` that keeps a series under MAX_POINTS buckets."""
    if interval_s <= 0:
        raise PerflabError("interval_s must be positive")
    buckets = span_s / interval_s + 1
    cap = MAX_POINTS
    return interval_s * math.ceil(buckets / cap) if buckets > cap else interval_s


def cap_points(df: pl.DataFrame, cols: list[str], how: str, by: str | None = None) -> pl.DataFrame:
    """Re-bucket ``x`` (seconds) so that each series (per ``by``) has at most MAX_POINTS rows.

    ``how`` is "mean" for levels that are averaged (CPU %) or "max" for gauges whose
    peaks are the point (requests waiting for a connection).
    """
    if df.is_empty():
        return df
    longest = int(df.group_by(by).len()["len"].to_numpy().max()) if by else df.height
    if longest <= MAX_POINTS:
        return df
    x = df["x"].to_numpy()
    width = float(x.max() - x.min()) / (MAX_POINTS - 1)
    agg = [getattr(pl.col(c), how)() for c in cols]
    keys = [by, "bucket"] if by else ["bucket"]
    return (
        df.with_columns(((pl.col("x") - float(x.min())) / width).floor().alias("bucket"))
        .group_by(keys).agg(pl.col("x").min(), *agg)
        .sort(keys).drop("bucket")
    )


def short(text: str | None, n: int) -> str:
    one_line = " ".join((text or "").split())
    return one_line if len(one_line) <= n else one_line[: n - 1] + "…"
