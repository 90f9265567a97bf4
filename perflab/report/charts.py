"""Plotly figures of a run or a profile, each a function of the store.

Every chart

* takes the store and a run id or a source (an id, or a file path that is ingested
  first) and returns a ``plotly.graph_objects.Figure``;
* reads its data through perflab.analysis (plus the run's raw resource and /debug/vars
  samples) and raises PerflabError naming what is missing ("run X has no resource
  samples") rather than drawing an empty picture;
* is deterministic: sorted inputs, ids built from names, no random uids, a fixed
  template and ``uirevision``, so ``fig.to_json()`` is identical on every call and a
  notebook's stored output does not churn;
* caps what it draws: MAX_POINTS per trace (a longer series is re-bucketed into wider
  intervals, never sampled, so a p95 stays a p95), MAX_NODES per flame graph, MAX_BARS
  per bar chart.

Run charts share one time axis: seconds since the run's first sample of any kind
(k6 point, resource sample, /debug/vars sample), so the charts of one run line up.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from perflab.analysis.categories import OTHER, categorize_frame
from perflab.analysis.database import index_usage as index_usage_frame
from perflab.analysis.database import activity_states, pg_top_frame, snapshot_source, table_deltas
from perflab.analysis.loadtest import k6_points, k6_timeseries
from perflab.analysis.profiles import PROFILE_KINDS, resolve_sample_type, stacks
from perflab.analysis.pstats import cprofile_top
from perflab.errors import PerflabError
from perflab.store import Store

Ref = str | int | os.PathLike[str]

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
ROLE_ORDER = ("service", "postgres", "k6", "host")
# Charts with stacked panels keep their legend at the side: above, it runs into the panel titles.
LEGEND_RIGHT = {"orientation": "v", "x": 1.02, "y": 1, "xanchor": "left", "yanchor": "top"}
POINT_KINDS = ("k6", "k6-csv")  # the k6 source kinds with samples (NDJSON, CSV)

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
_FLAME_COLORS = ("#f2a541", "#f5b461", "#f0c05a", "#e8a33d", "#f6c97f", "#eeb05c", "#f3bb6e", "#e9b44c")
ERROR_COLOR = "#d62728"
UNUSED_COLOR = "#d62728"
USED_COLOR = "#1f77b4"


# -- shared helpers ---------------------------------------------------------------------

def _finish(fig: go.Figure, title: str, **layout: Any) -> go.Figure:
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


def _is_run(store: Store, ref: Ref) -> bool:
    return bool(store.con.execute("SELECT 1 FROM runs WHERE run_id = ?", [str(ref)]).fetchall())


def _require_run(store: Store, run_id: str) -> None:
    if not _is_run(store, run_id):
        raise PerflabError(f"no run {run_id!r} in {store.path}")


def _origin_us(store: Store, run_id: str) -> int:
    """The run's first instant over every kind of sample, in µs since the epoch."""
    row = store.con.execute(
        """SELECT min(m) FROM (
               SELECT min(epoch_us(t)) AS m FROM resource_samples WHERE run_id = $r
               UNION ALL SELECT min(epoch_us(t)) FROM service_vars WHERE run_id = $r
               UNION ALL SELECT min(time_ns) // 1000 FROM k6_points WHERE run_id = $r)""",
        {"r": run_id},
    ).fetchall()
    if row[0][0] is None:
        raise PerflabError(f"run {run_id} has no samples (no k6 points, resource samples or service vars)")
    return int(row[0][0])


def _span_s(store: Store, run_id: str, origin: int) -> float:
    """Seconds from the run's first sample to its last, over every kind of sample."""
    row = store.con.execute(
        """SELECT max(m) FROM (
               SELECT max(epoch_us(t)) AS m FROM resource_samples WHERE run_id = $r
               UNION ALL SELECT max(epoch_us(t)) FROM service_vars WHERE run_id = $r
               UNION ALL SELECT max(time_ns) // 1000 FROM k6_points WHERE run_id = $r)""",
        {"r": run_id},
    ).fetchall()
    return (int(row[0][0]) - origin) / 1e6 if row[0][0] is not None else 0.0


def _fit_interval(span_s: float, interval_s: float) -> float:
    """The smallest multiple of ``interval_s`` that keeps a series under MAX_POINTS buckets."""
    if interval_s <= 0:
        raise PerflabError("interval_s must be positive")
    buckets = span_s / interval_s + 1
    return interval_s * math.ceil(buckets / MAX_POINTS) if buckets > MAX_POINTS else interval_s


def _cap_points(df: pl.DataFrame, cols: list[str], how: str, by: str | None = None) -> pl.DataFrame:
    """Re-bucket ``x`` (seconds) so that each series (per ``by``) has at most MAX_POINTS rows.

    ``how`` is "mean" for levels that are averaged (CPU %) or "max" for gauges whose
    peaks are the point (requests waiting for a connection).
    """
    if df.is_empty():
        return df
    longest = df.group_by(by).len()["len"].max() if by else df.height
    if longest <= MAX_POINTS:  # type: ignore[operator]
        return df
    span = float(df["x"].max() - df["x"].min())  # type: ignore[operator]
    width = span / (MAX_POINTS - 1)
    agg = [getattr(pl.col(c), how)() for c in cols]
    keys = [by, "bucket"] if by else ["bucket"]
    return (
        df.with_columns(((pl.col("x") - df["x"].min()) / width).floor().alias("bucket"))
        .group_by(keys).agg(pl.col("x").min(), *agg)
        .sort(keys).drop("bucket")
    )


def _resources(store: Store, run_id: str, origin: int, roles: tuple[str, ...] | None = None) -> pl.DataFrame:
    where = "run_id = ?" + (" AND role IN ?" if roles else "")
    params: list[Any] = [origin, run_id] + ([list(roles)] if roles else [])
    return store.sql(
        f"SELECT role, (epoch_us(t) - ?) / 1e6 AS x, cpu_pct, rss_bytes FROM resource_samples "
        f"WHERE {where} ORDER BY role, elapsed_s, t",
        params,
    )


def _vars(store: Store, run_id: str, origin: int, keys: list[str] | None = None,
          prefix: str | None = None) -> pl.DataFrame:
    where, params = "run_id = ?", [origin, run_id]
    if keys is not None:
        where += " AND key IN ?"
        params.append(keys)
    if prefix is not None:
        where += " AND starts_with(key, ?)"
        params.append(prefix)
    return store.sql(
        f"SELECT key, (epoch_us(t) - ?) / 1e6 AS x, elapsed_s, value FROM service_vars "
        f"WHERE {where} ORDER BY key, elapsed_s, t",
        params,
    )


def _counter_buckets(df: pl.DataFrame, interval_s: float) -> pl.DataFrame:
    """Per key and interval: the counter's increase and the time it covered.

    Each increase between two samples is booked to the interval of the later sample; a
    counter that went down was reset (the service restarted), so its new value is the
    increase. rate = increase / covered seconds.
    """
    d = pl.col("value").diff().over("key")
    out = (
        df.with_columns(
            pl.when(d < 0).then(pl.col("value")).otherwise(d).alias("delta"),
            pl.col("elapsed_s").diff().over("key").alias("dt"),
            (pl.col("x") / interval_s).floor().cast(pl.Int64).alias("bucket"),
        )
        .filter(pl.col("delta").is_not_null())
        .group_by("key", "bucket").agg(pl.col("delta").sum(), pl.col("dt").sum())
        .sort("key", "bucket")
        .with_columns(
            (pl.col("bucket") * interval_s).alias("x"),
            pl.when(pl.col("dt") > 0).then(pl.col("delta") / pl.col("dt")).alias("rate"),
        )
        .select("key", "x", "delta", "dt", "rate")
    )
    return out


def _k6_sources(store: Store, run_id: str) -> list[int]:
    rows = store.con.execute(
        "SELECT kind, list(source_id ORDER BY source_id) FROM sources WHERE run_id = ? AND kind IN ? GROUP BY kind",
        [run_id, list(POINT_KINDS)],
    ).fetchall()
    by_kind = dict(rows)
    # The NDJSON and the CSV of one run hold the same samples: use one of them.
    return list(by_kind.get("k6") or by_kind.get("k6-csv") or [])


def _k6(store: Store, ref: Ref, interval_s: float) -> tuple[pl.DataFrame, float, str, int | None]:
    """(k6_timeseries with an ``x`` column, interval used, label, run origin or None)."""
    if interval_s <= 0:
        raise PerflabError("interval_s must be positive")
    run = _is_run(store, ref)
    if run and not _k6_sources(store, str(ref)):
        raise PerflabError(f"run {ref} has no k6 samples")
    ts = k6_timeseries(store, ref, interval_s)
    if ts.is_empty():
        raise PerflabError(f"{'run' if run else 'source'} {ref} has no k6 samples")
    if ts.height > MAX_POINTS:
        interval_s = interval_s * math.ceil(ts.height / MAX_POINTS)
        ts = k6_timeseries(store, ref, interval_s)
    if run:
        origin = _origin_us(store, str(ref))
        ts = ts.with_columns(((pl.col("t").dt.epoch("us") - origin) / 1e6).alias("x"))
        return ts, interval_s, f"run {ref}", origin
    return ts.with_columns(pl.col("elapsed_s").alias("x")), interval_s, f"source {ref}", None


def _seconds_axis(fig: go.Figure, run: bool = True, **kw: Any) -> None:
    fig.update_xaxes(title_text="seconds since the run started" if run else "seconds since the first request", **kw)


# -- load-test charts ---------------------------------------------------------------------

def latency_over_time(store: Store, run_or_source: Ref, interval_s: float = 1) -> go.Figure:
    """p50/p95/p99 of http_req_duration per interval, with requests/s and errors/s on a
    second axis (k6_timeseries: k6's own percentile rule)."""
    ts, step, label, origin = _k6(store, run_or_source, interval_s)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = ts["x"].to_list()
    for col, name, width in (("p50_ms", "p50", 1.5), ("p95_ms", "p95", 2.5), ("p99_ms", "p99", 1.5)):
        fig.add_trace(go.Scatter(x=x, y=ts[col].to_list(), name=f"{name} latency", mode="lines",
                                 line={"width": width},
                                 hovertemplate=f"{name} %{{y:.1f}} ms<extra></extra>"), secondary_y=False)
    fig.add_trace(go.Scatter(x=x, y=ts["rps"].to_list(), name="requests/s", mode="lines",
                             line={"dash": "dot", "color": "#7f7f7f"},
                             hovertemplate="%{y:.1f} requests/s<extra></extra>"), secondary_y=True)
    # Each request writes one http_reqs and one http_req_failed point, so the failed count
    # of an interval is its error rate times its requests.
    errors = ts.select((pl.col("error_rate").fill_null(0) * pl.col("requests")).round() / step)
    fig.add_trace(go.Bar(x=x, y=errors.to_series().to_list(), name="errors/s", marker_color=ERROR_COLOR,
                         opacity=0.45, hovertemplate="%{y:.1f} errors/s<extra></extra>"), secondary_y=True)
    _seconds_axis(fig, run=origin is not None)
    fig.update_yaxes(title_text="latency (ms)", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="requests/s, errors/s", rangemode="tozero", secondary_y=True, showgrid=False)
    return _finish(fig, f"Response time and throughput over time ({label}, {step:g} s intervals)",
                   hovermode="x unified", bargap=0)


def _service_cpu(store: Store, run_id: str, origin: int) -> pl.DataFrame:
    cpu = _resources(store, run_id, origin, roles=("service",)).filter(pl.col("cpu_pct").is_not_null())
    if cpu.is_empty():
        raise PerflabError(f"run {run_id} has no resource samples of the service's CPU")
    return cpu


def cpu_vs_latency(store: Store, run_id: str, interval_s: float = 1) -> go.Figure:
    """Service CPU % over time (of one core: 2 cores = 200 %) with k6's p95 on a second
    axis: the login-storm picture, where p95 jumps once CPU saturates."""
    _require_run(store, run_id)
    origin = _origin_us(store, run_id)
    cpu = _cap_points(_service_cpu(store, run_id, origin), ["cpu_pct"], "mean")
    ts, step, _, _ = _k6(store, run_id, interval_s)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=cpu["x"].to_list(), y=cpu["cpu_pct"].to_list(), name="service CPU",
                             mode="lines", line={"color": "#ff7f0e"},
                             hovertemplate="CPU %{y:.0f} %<extra></extra>"), secondary_y=False)
    fig.add_trace(go.Scatter(x=ts["x"].to_list(), y=ts["p95_ms"].to_list(), name="p95 latency",
                             mode="lines", line={"color": "#1f77b4", "width": 2.5},
                             hovertemplate="p95 %{y:.1f} ms<extra></extra>"), secondary_y=True)
    _seconds_axis(fig)
    fig.update_yaxes(title_text="service CPU (% of one core)", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="p95 latency (ms)", rangemode="tozero", secondary_y=True, showgrid=False)
    return _finish(fig, f"Service CPU and p95 latency (run {run_id}, p95 per {step:g} s)",
                   hovermode="x unified")


def cpu_latency_scatter(store: Store, run_id: str, interval_s: float = 1) -> go.Figure:
    """One point per interval: the service's mean CPU % against k6's p95 in that interval,
    coloured by time. Below saturation p95 stays flat; at saturation it climbs a wall."""
    _require_run(store, run_id)
    origin = _origin_us(store, run_id)
    cpu = _service_cpu(store, run_id, origin)
    ts, step, _, _ = _k6(store, run_id, interval_s)
    t0 = (ts["t"].dt.epoch("us").min() - origin) / 1e6  # type: ignore[operator]
    per_bucket = (
        cpu.with_columns(((pl.col("x") - t0) / step).floor().cast(pl.Int64).alias("bucket"))
        .group_by("bucket").agg(pl.col("cpu_pct").mean().alias("cpu_mean"))
    )
    points = (
        ts.with_row_index("bucket").with_columns(pl.col("bucket").cast(pl.Int64))
        .join(per_bucket, on="bucket", how="inner")
        .filter(pl.col("p95_ms").is_not_null())
        .sort("bucket")
    )
    if points.is_empty():
        raise PerflabError(f"run {run_id}: no interval has both CPU samples and k6 requests")
    fig = go.Figure(go.Scatter(
        x=points["cpu_mean"].to_list(), y=points["p95_ms"].to_list(), mode="markers", name="interval",
        marker={"color": points["x"].to_list(), "colorscale": "Viridis", "size": 8,
                "colorbar": {"title": {"text": "seconds"}}},
        customdata=points.select("x", "requests").rows(),
        hovertemplate="CPU %{x:.0f} %<br>p95 %{y:.1f} ms<br>at %{customdata[0]:.0f} s, "
                      "%{customdata[1]} requests<extra></extra>",
    ))
    fig.update_xaxes(title_text="service CPU (% of one core, mean of the interval)", rangemode="tozero")
    fig.update_yaxes(title_text="p95 latency (ms)", rangemode="tozero")
    return _finish(fig, f"p95 latency against service CPU (run {run_id}, one point per {step:g} s)")


# -- the service's own counters -------------------------------------------------------------

REQUESTS_KEY = "counters.requests_total"
QUERIES_KEY = "counters.db_queries"


def app_vs_db_rate(store: Store, run_id: str, interval_s: float = 1) -> go.Figure:
    """Requests/s the service answered against DB queries/s it sent (per-interval
    differences of its /debug/vars counters), and queries per request: the retry-storm
    picture, where the DB rate runs away from the request rate."""
    _require_run(store, run_id)
    origin = _origin_us(store, run_id)
    raw = _vars(store, run_id, origin, keys=[REQUESTS_KEY, QUERIES_KEY])
    have = set(raw["key"].unique().to_list()) if not raw.is_empty() else set()
    missing = [k for k in (REQUESTS_KEY, QUERIES_KEY) if k not in have]
    if missing:
        raise PerflabError(f"run {run_id} has no service vars {' and '.join(missing)}")
    step = _fit_interval(_span_s(store, run_id, origin), interval_s)
    rates = _counter_buckets(raw, step)
    req = rates.filter(pl.col("key") == REQUESTS_KEY)
    db = rates.filter(pl.col("key") == QUERIES_KEY)
    ratio = (
        req.select("x", pl.col("delta").alias("r"))
        .join(db.select("x", pl.col("delta").alias("q")), on="x", how="inner")
        .filter(pl.col("r") > 0)
        .with_columns((pl.col("q") / pl.col("r")).alias("per_request"))
        .sort("x")
    )
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=req["x"].to_list(), y=req["rate"].to_list(), name="app requests/s", mode="lines",
                             line={"color": "#1f77b4"},
                             hovertemplate="%{y:.1f} requests/s<extra></extra>"), secondary_y=False)
    fig.add_trace(go.Scatter(x=db["x"].to_list(), y=db["rate"].to_list(), name="DB queries/s", mode="lines",
                             line={"color": "#d62728"},
                             hovertemplate="%{y:.1f} queries/s<extra></extra>"), secondary_y=False)
    fig.add_trace(go.Scatter(x=ratio["x"].to_list(), y=ratio["per_request"].to_list(),
                             name="DB queries per request", mode="lines", line={"dash": "dot", "color": "#7f7f7f"},
                             hovertemplate="%{y:.2f} queries/request<extra></extra>"), secondary_y=True)
    _seconds_axis(fig)
    fig.update_yaxes(title_text="per second", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="DB queries per request", rangemode="tozero", secondary_y=True, showgrid=False)
    return _finish(fig, f"App requests/s against DB queries/s (run {run_id}, {step:g} s intervals)",
                   hovermode="x unified")


INFLIGHT_KEYS = {
    "gauges.in_flight_requests": ("requests in flight", 1, "#1f77b4", None),
    "gauges.db_waiting_tasks": ("tasks waiting for a DB connection", 1, "#d62728", None),
    "gauges.pool_checked_out": ("pool connections checked out", 2, "#2ca02c", None),
    "gauges.pool_size": ("pool size", 2, "#7f7f7f", "dash"),
}


def inflight_and_waiting(store: Store, run_id: str) -> go.Figure:
    """Requests in flight and tasks waiting for a DB connection, over pool connections
    checked out against the pool size: the false-idle picture (CPU idle, pool full,
    a queue of waiters)."""
    _require_run(store, run_id)
    origin = _origin_us(store, run_id)
    raw = _vars(store, run_id, origin, keys=list(INFLIGHT_KEYS))
    if raw.is_empty():
        raise PerflabError(f"run {run_id} has no service vars gauges ({', '.join(INFLIGHT_KEYS)})")
    # Peaks are the story here (how many waited at worst), so long series keep the max.
    gauges = _cap_points(raw.select("key", "x", "value"), ["value"], "max", by="key")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("requests in flight and tasks waiting for a connection",
                                        "DB pool: connections checked out and pool size"))
    for key, (name, row, color, dash) in INFLIGHT_KEYS.items():
        part = gauges.filter(pl.col("key") == key)
        if part.is_empty():
            continue
        fig.add_trace(go.Scatter(x=part["x"].to_list(), y=part["value"].to_list(), name=name, mode="lines",
                                 line={"color": color, "dash": dash, "shape": "hv"},
                                 hovertemplate=f"{name}: %{{y:.0f}}<extra></extra>"), row=row, col=1)
    _seconds_axis(fig, row=2, col=1)
    fig.update_yaxes(title_text="requests / tasks", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="connections", rangemode="tozero", row=2, col=1)
    return _finish(fig, f"In-flight requests, DB waiters and pool use (run {run_id})", hovermode="x unified",
                   legend=LEGEND_RIGHT)


ERRORS_PREFIX = "counters.errors."


def errors_by_kind(store: Store, run_id: str, interval_s: float = 1) -> go.Figure:
    """Stacked bars of errors per interval: by kind from the service's counters
    (counters.errors.*: timeout, pool_timeout, ...) and by HTTP status from k6's failed
    requests (http_req_failed; status 0 is a request that got no response)."""
    _require_run(store, run_id)
    origin = _origin_us(store, run_id)
    raw = _vars(store, run_id, origin, prefix=ERRORS_PREFIX)
    sids = _k6_sources(store, run_id)
    if raw.is_empty() and not sids:
        raise PerflabError(f"run {run_id} has no error counters (service vars {ERRORS_PREFIX}*) and no k6 samples")
    panels: list[tuple[str, pl.DataFrame]] = []
    step = _fit_interval(_span_s(store, run_id, origin), interval_s)
    if not raw.is_empty():
        counts = _counter_buckets(raw, step).select(
            pl.col("key").str.strip_prefix(ERRORS_PREFIX).alias("kind"), "x", pl.col("delta").alias("n"))
        panels.append(("service errors by kind (counters.errors.*)", counts))
    if sids:
        parts = []
        for sid in sids:
            pts = k6_points(store, sid, metric="http_req_failed")
            status = pl.col("status") if "status" in pts.columns else pl.lit(None, pl.String)
            parts.append(pts.select("time_ns", "value", status.alias("status")))
        failed = pl.concat(parts)
        failed = failed.filter(pl.col("value") != 0)
        by_status = (
            failed.with_columns(
                ((pl.col("time_ns") / 1000 - origin) / 1e6 / step).floor().cast(pl.Int64).alias("bucket"),
                pl.concat_str(pl.lit("status "), pl.col("status").fill_null("?")).alias("kind"),
            )
            .group_by("kind", "bucket").len("n")
            .with_columns((pl.col("bucket") * step).alias("x"), pl.col("n").cast(pl.Float64))
            .select("kind", "x", "n")
        )
        panels.append(("k6 failed requests by status (http_req_failed)", by_status))
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=[t for t, _ in panels])
    for row, (_, df) in enumerate(panels, start=1):
        totals = df.group_by("kind").agg(pl.col("n").sum()).filter(pl.col("n") > 0).sort("kind")
        for kind in totals["kind"].to_list():
            part = df.filter(pl.col("kind") == kind).sort("x")
            fig.add_trace(go.Bar(x=part["x"].to_list(), y=part["n"].to_list(), name=kind,
                                 legendgroup=f"row{row}",
                                 hovertemplate=f"{kind}: %{{y:.0f}}<extra></extra>"), row=row, col=1)
        if totals.is_empty():
            fig.add_annotation(text="no errors", showarrow=False, xref=f"x{row if row > 1 else ''} domain",
                               yref=f"y{row if row > 1 else ''} domain", x=0.5, y=0.5)
        fig.update_yaxes(title_text=f"errors per {step:g} s", rangemode="tozero", row=row, col=1)
    _seconds_axis(fig, row=len(panels), col=1)
    return _finish(fig, f"Errors by kind (run {run_id}, {step:g} s intervals)", barmode="stack", bargap=0.1,
                   hovermode="x unified", legend=LEGEND_RIGHT)


def process_resources(store: Store, run_id: str) -> go.Figure:
    """CPU % (of one core) and resident memory over time of every role of the run:
    the service, PostgreSQL, k6 and the whole host (host memory is the machine's used
    memory), to tell a busy service from a busy neighbour."""
    _require_run(store, run_id)
    origin = _origin_us(store, run_id)
    res = _resources(store, run_id, origin)
    if res.is_empty():
        raise PerflabError(f"run {run_id} has no resource samples")
    roles = sorted(res["role"].unique().to_list(),
                   key=lambda r: (ROLE_ORDER.index(r) if r in ROLE_ORDER else len(ROLE_ORDER), r))
    res = _cap_points(res.with_columns((pl.col("rss_bytes") / 2**20).alias("rss_mib")),
                      ["cpu_pct", "rss_mib"], "mean", by="role")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("CPU (% of one core)", "resident memory (MiB)"))
    palette = ("#ff7f0e", "#2ca02c", "#9467bd", "#7f7f7f", "#8c564b", "#e377c2")
    for i, role in enumerate(roles):
        part = res.filter(pl.col("role") == role).sort("x")
        color = palette[i % len(palette)]
        name = "host (used memory)" if role == "host" else role
        fig.add_trace(go.Scatter(x=part["x"].to_list(), y=part["cpu_pct"].to_list(), name=role, mode="lines",
                                 legendgroup=role, line={"color": color},
                                 hovertemplate=f"{role}: %{{y:.0f}} % CPU<extra></extra>"), row=1, col=1)
        fig.add_trace(go.Scatter(x=part["x"].to_list(), y=part["rss_mib"].to_list(), name=name, mode="lines",
                                 legendgroup=role, showlegend=False, line={"color": color},
                                 hovertemplate=f"{name}: %{{y:.0f}} MiB<extra></extra>"), row=2, col=1)
    _seconds_axis(fig, row=2, col=1)
    fig.update_yaxes(title_text="CPU (% of one core)", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="RSS (MiB)", rangemode="tozero", row=2, col=1)
    return _finish(fig, f"CPU and memory of every process role (run {run_id})", hovermode="x unified",
                   legend=LEGEND_RIGHT)


# -- profiles: flame graphs ---------------------------------------------------------------------

def _profile_source(store: Store, ref: Ref) -> tuple[int, str]:
    sid = store.resolve(ref, kinds=PROFILE_KINDS)
    return sid, str(store.source(sid)["kind"])


def _pprof_total(store: Store, sid: int, idx: int) -> int:
    return int(store.con.execute(
        "SELECT coalesce(sum(abs(value[$idx])), 0) FROM pprof_samples WHERE source_id = $sid",
        {"idx": idx + 1, "sid": sid},
    ).fetchall()[0][0])


def _path_tree(df: pl.DataFrame, value_cols: list[str], score: pl.Expr, min_score: float,
               max_depth: int, max_nodes: int) -> pl.DataFrame:
    """The nodes of the call tree of ``df``'s stacks (``frames`` leaf first + value columns).

    Level by level from the root: a node is (parent node, function name) and holds the
    summed values of the stacks through it (pprof's cum along that path). A node whose
    ``score`` is below ``min_score`` is dropped with everything under it; its value stays
    in its parent. At most ``max_nodes`` nodes are kept, by score (then depth, then id):
    a child never outscores its parent, so the kept set is always a tree.
    Returns id (> 0; the root is 0), parent, depth, name and the value columns.
    """
    work = df.select(pl.col("frames").list.reverse().alias("path"), *value_cols).with_columns(
        pl.lit(0, pl.Int64).alias("parent"))
    levels: list[pl.DataFrame] = []
    next_id = 1
    for depth in range(1, max_depth + 1):
        work = work.filter(pl.col("path").list.len() >= depth)
        if work.is_empty():
            break
        work = work.with_columns(pl.col("path").list.get(depth - 1).alias("name"))
        nodes = (
            work.group_by("parent", "name").agg(*[pl.col(c).sum() for c in value_cols])
            .filter((score >= min_score) & (score > 0))
            .sort("parent", "name")
            .with_row_index("id", offset=next_id).with_columns(pl.col("id").cast(pl.Int64))
        )
        next_id += nodes.height
        if nodes.height > max_nodes:
            # No node beyond the max_nodes best of its own level can be among the best overall.
            nodes = nodes.with_columns(score.alias("_s")).sort(["_s", "id"], descending=[True, False]) \
                .head(max_nodes).drop("_s").sort("id")
        if nodes.is_empty():
            break
        levels.append(nodes.with_columns(pl.lit(depth, pl.Int64).alias("depth")))
        work = work.join(nodes.select("parent", "name", "id"), on=["parent", "name"], how="inner") \
            .select("path", *value_cols, pl.col("id").alias("parent"))
    if not levels:
        return pl.DataFrame(schema={"id": pl.Int64, "parent": pl.Int64, "name": pl.String,
                                    **{c: pl.Float64 for c in value_cols}, "depth": pl.Int64})
    tree = pl.concat(levels)
    if tree.height > max_nodes:
        tree = tree.with_columns(score.alias("_s")).sort(["_s", "depth", "id"], descending=[True, False, False]) \
            .head(max_nodes).drop("_s")
    return tree.sort("id")


def _id_part(name: str) -> str:
    # ';' separates the frames of an id, as in folded stacks; a name holding one is escaped.
    return name.replace("%", "%25").replace(";", "%3B")


def _paths(tree: pl.DataFrame, root_id: str) -> list[str]:
    """Each node's id: the root's id and the names from the root down, joined by ';'."""
    path = {0: root_id}
    out = []
    for node, parent, name in zip(tree["id"].to_list(), tree["parent"].to_list(), tree["name"].to_list()):
        path[node] = f"{path[parent]};{_id_part(name)}"
        out.append(path[node])
    return out


def _frame_color(name: str) -> str:
    cat = categorize_frame(name)
    if cat is not None:
        return CATEGORY_COLORS.get(cat, "#bcbd22")
    package = name.rsplit(".", 1)[0] if "." in name else name
    return _FLAME_COLORS[zlib.crc32(package.encode()) % len(_FLAME_COLORS)]


_UNIT_SCALES = {
    "nanoseconds": ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1, "ns")),
    "microseconds": ((1e6, "s"), (1e3, "ms"), (1, "µs")),
    "milliseconds": ((1e3, "s"), (1, "ms")),
    "seconds": ((1, "s"), (1e-3, "ms"), (1e-6, "µs")),
    "bytes": ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "B")),
}


def format_value(value: float, unit: str) -> str:
    """A profile value with a readable unit: 1440000000 nanoseconds → '1.44 s'."""
    for scale, suffix in _UNIT_SCALES.get(unit, ()):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {suffix}"
    return f"{value:.6g}" + (f" {unit}" if unit and unit != "count" else "")


def _check_signs(df: pl.DataFrame, sid: int) -> None:
    if not df.is_empty() and df["value"].min() < 0:  # type: ignore[operator]
        raise PerflabError(
            f"source {sid} has negative values (a delta profile); a flame graph needs sizes >= 0. "
            "Compare the two profiles it was made from with diff_flame_graph instead")


def flame_graph(store: Store, source: Ref, sample_type: str | int | None = None,
                max_depth: int = DEFAULT_MAX_DEPTH, min_share: float = DEFAULT_MIN_SHARE,
                max_nodes: int = MAX_NODES) -> go.Figure:
    """An icicle of the profile's stacks, root on top: each node is a call path, sized by
    pprof's cum along that path, coloured by hot-frame category (grey-orange: other).

    The root's value is pprof's total (samples without frames included); a node below
    ``min_share`` of the total is folded into its parent, paths deeper than ``max_depth``
    are cut, and at most ``max_nodes`` nodes are drawn (root included). Any sample type
    works (``cpu``, ``alloc_space``, ``delay``...). A cProfile dump has no stacks, so its
    graph is one level: every function by its own time (tottime) under the pstats total.
    """
    if max_depth < 1 or max_nodes < 2 or not 0 <= min_share < 1:
        raise PerflabError("flame_graph needs max_depth >= 1, max_nodes >= 2 and 0 <= min_share < 1")
    sid, kind = _profile_source(store, source)
    if kind == "cprofile":
        return _cprofile_flame(store, sid, sample_type, min_share, max_nodes)
    idx, stype, unit = resolve_sample_type(store, sid, sample_type)
    total = _pprof_total(store, sid, idx)
    df = stacks(store, sid, sample_type=idx)
    _check_signs(df, sid)
    if total == 0:
        raise PerflabError(f"source {sid} has no {stype} samples (total 0)")
    tree = _path_tree(df, ["value"], pl.col("value"), min_share * total, max_depth, max_nodes - 1)
    root = "root"
    ids = [root, *_paths(tree, root)]
    index = {n: i + 1 for i, n in enumerate(tree["id"].to_list())}
    parents = [""] + [root if p == 0 else ids[index[p]] for p in tree["parent"].to_list()]
    names = tree["name"].to_list()
    values = [total, *tree["value"].to_list()]
    cats = ["", *[categorize_frame(n) or OTHER for n in names]]
    colors = ["#e0e0e0", *[_frame_color(n) for n in names]]
    custom = [[v / total, format_value(v, unit), c] for v, c in zip(values, cats)]
    fig = go.Figure(go.Icicle(
        ids=ids, labels=[root, *names], parents=parents, values=values, branchvalues="total",
        marker={"colors": colors}, customdata=custom, tiling={"orientation": "v"}, sort=False,
        hovertemplate="%{label}<br>%{customdata[1]} (%{customdata[0]:.2%} of total)"
                      "<br>%{customdata[2]}<extra></extra>",
    ))
    folded = f"; paths under {min_share:.2%} folded into their callers" if min_share else ""
    return _finish(fig, f"Flame graph of source {sid}: {stype}, {format_value(total, unit)} total{folded}",
                   margin={"t": 60, "l": 10, "r": 10, "b": 10})


def _cprofile_functions(store: Store, sid: int, sample_type: str | int | None) -> tuple[float, pl.DataFrame]:
    if sample_type not in (None, "cpu", 0, "0"):
        raise PerflabError(f"source {sid} is a cProfile dump; its only sample type is cpu (seconds)")
    total, df = cprofile_top(store, sid)
    return float(total), df.select("name", pl.col("flat").alias("value")).filter(pl.col("value") > 0)


def _cprofile_flame(store: Store, sid: int, sample_type: str | int | None, min_share: float,
                    max_nodes: int) -> go.Figure:
    total, funcs = _cprofile_functions(store, sid, sample_type)
    if total <= 0:
        raise PerflabError(f"source {sid} has no time (pstats total 0)")
    kept = (funcs.filter(pl.col("value") >= min_share * total)
            .sort(["value", "name"], descending=[True, False]).head(max_nodes - 1))
    names = kept["name"].to_list()
    own = kept["value"].to_list()
    # The root's own part is what the folded functions took; 'remainder' adds the children,
    # so a float sum of the functions can never exceed the pstats total it is drawn under.
    values = [max(total - math.fsum(own), 0.0), *own]
    root = "all functions"
    cats = ["", *[categorize_frame(n) or OTHER for n in names]]
    custom = [[v / total, format_value(v, "seconds"), c] for v, c in zip([total, *own], cats)]
    fig = go.Figure(go.Icicle(
        ids=[root, *[f"{root};{_id_part(n)}" for n in names]], labels=[root, *names],
        parents=["", *[root] * len(names)], values=values, branchvalues="remainder",
        marker={"colors": ["#e0e0e0", *[_frame_color(n) for n in names]]}, customdata=custom,
        tiling={"orientation": "v"}, sort=False,
        hovertemplate="%{label}<br>%{customdata[1]} self time (%{customdata[0]:.2%} of total)"
                      "<br>%{customdata[2]}<extra></extra>",
    ))
    return _finish(fig, f"Self time by function of cProfile source {sid} ({format_value(total, 'seconds')} "
                        "total; cProfile keeps no stacks, so one level)",
                   margin={"t": 60, "l": 10, "r": 10, "b": 10})


def diff_flame_graph(store: Store, source_a: Ref, source_b: Ref, sample_type: str | int | None = None,
                     max_depth: int = DEFAULT_MAX_DEPTH, min_share: float = DEFAULT_MIN_SHARE,
                     max_nodes: int = MAX_NODES) -> go.Figure:
    """A differential flame graph: the union of both profiles' call paths, each node
    coloured by its change in share of its profile's total (B − A, in percentage points;
    red grew, blue shrank, white unchanged) and sized by the larger of its two shares, so
    a path that vanished in B stays visible. Shares (not raw values) make profiles of
    different lengths or sample counts comparable. The hover shows A, B and the change.

    A node's own size is the larger of its two self shares; a node below ``min_share`` in
    both profiles is folded into its parent. cProfile sources give one level (functions by
    self time), as in :func:`flame_graph`.
    """
    if max_depth < 1 or max_nodes < 2 or not 0 <= min_share < 1:
        raise PerflabError("diff_flame_graph needs max_depth >= 1, max_nodes >= 2 and 0 <= min_share < 1")
    sid_a, kind_a = _profile_source(store, source_a)
    sid_b, kind_b = _profile_source(store, source_b)
    if kind_a != kind_b:
        raise PerflabError(f"source {sid_a} is {kind_a} and source {sid_b} is {kind_b}; compare profiles of one format")
    if kind_a == "cprofile":
        total_a, fa = _cprofile_functions(store, sid_a, sample_type)
        total_b, fb = _cprofile_functions(store, sid_b, sample_type)
        unit, stype = "seconds", "cpu"
        df = pl.concat([
            fa.select(pl.concat_list("name").alias("frames"), pl.col("value").cast(pl.Float64).alias("va"),
                      pl.lit(0.0).alias("vb")),
            fb.select(pl.concat_list("name").alias("frames"), pl.lit(0.0).alias("va"),
                      pl.col("value").cast(pl.Float64).alias("vb")),
        ])
        max_depth = 1
    else:
        idx_a, stype, unit = resolve_sample_type(store, sid_a, sample_type)
        idx_b, stype_b, unit_b = resolve_sample_type(store, sid_b, sample_type)
        if (stype, unit) != (stype_b, unit_b):
            raise PerflabError(f"source {sid_a} shows {stype} ({unit}) and source {sid_b} {stype_b} ({unit_b}); "
                               "pass sample_type to compare the same thing")
        total_a, total_b = _pprof_total(store, sid_a, idx_a), _pprof_total(store, sid_b, idx_b)
        sa, sb = stacks(store, sid_a, sample_type=idx_a), stacks(store, sid_b, sample_type=idx_b)
        _check_signs(sa, sid_a)
        _check_signs(sb, sid_b)
        df = pl.concat([
            sa.select("frames", pl.col("value").cast(pl.Float64).alias("va"), pl.lit(0.0).alias("vb")),
            sb.select("frames", pl.lit(0.0).alias("va"), pl.col("value").cast(pl.Float64).alias("vb")),
        ])
    for sid, total in ((sid_a, total_a), (sid_b, total_b)):
        if total <= 0:
            raise PerflabError(f"source {sid} has no {stype} samples (total 0)")
    share_a = pl.col("va") / total_a
    share_b = pl.col("vb") / total_b
    tree = _path_tree(df, ["va", "vb"], pl.max_horizontal(share_a, share_b), min_share, max_depth, max_nodes - 1)
    # Remainder sizes: a node's own part is the larger of its two self shares, so the
    # drawn size of a node (own part + children) is never less than what it holds.
    children = tree.group_by("parent").agg(pl.col("va").sum().alias("ca"), pl.col("vb").sum().alias("cb"))
    tree = tree.join(children.rename({"parent": "id"}), on="id", how="left").with_columns(
        pl.col("ca").fill_null(0.0), pl.col("cb").fill_null(0.0)).sort("id")
    root_a, root_b = float(df["va"].sum()), float(df["vb"].sum())
    top_a = float(tree.filter(pl.col("parent") == 0)["va"].sum())
    top_b = float(tree.filter(pl.col("parent") == 0)["vb"].sum())

    def own(a: float, b: float, ca: float, cb: float) -> float:
        return max((a - ca) / total_a, (b - cb) / total_b, 0.0)

    root = "root"
    ids = [root, *_paths(tree, root)]
    index = {n: i + 1 for i, n in enumerate(tree["id"].to_list())}
    parents = [""] + [root if p == 0 else ids[index[p]] for p in tree["parent"].to_list()]
    names = tree["name"].to_list()
    va, vb = [root_a, *tree["va"].to_list()], [root_b, *tree["vb"].to_list()]
    sizes = [own(root_a, root_b, top_a, top_b),
             *[own(a, b, ca, cb) for a, b, ca, cb in zip(tree["va"].to_list(), tree["vb"].to_list(),
                                                        tree["ca"].to_list(), tree["cb"].to_list())]]
    a_share = [a / total_a for a in va]
    b_share = [b / total_b for b in vb]
    delta = [b - a for a, b in zip(a_share, b_share)]
    bound = max((abs(d) for d in delta), default=0.0) or 1e-9
    custom = [[a, b, d, format_value(x, unit), format_value(y, unit)]
              for a, b, d, x, y in zip(a_share, b_share, delta, va, vb)]
    fig = go.Figure(go.Icicle(
        ids=ids, labels=[root, *names], parents=parents, values=sizes, branchvalues="remainder",
        marker={"colors": delta, "colorscale": "RdBu_r", "cmid": 0.0, "cmin": -bound, "cmax": bound,
                "colorbar": {"title": {"text": "B − A<br>(share of total)"}, "tickformat": "+.1%"}},
        customdata=custom, tiling={"orientation": "v"}, sort=False,
        hovertemplate="%{label}<br>A: %{customdata[3]} (%{customdata[0]:.2%})"
                      "<br>B: %{customdata[4]} (%{customdata[1]:.2%})"
                      "<br>change: %{customdata[2]:+.2%} of total<extra></extra>",
    ))
    return _finish(fig, f"What changed from source {sid_a} (A) to source {sid_b} (B): {stype}, "
                        "share of each profile's total (red grew, blue shrank)",
                   margin={"t": 60, "l": 10, "r": 10, "b": 10})


# -- database -------------------------------------------------------------------------------------

def _short(text: str | None, n: int) -> str:
    one_line = " ".join((text or "").split())
    return one_line if len(one_line) <= n else one_line[: n - 1] + "…"


def _unique_labels(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def top_statements(store: Store, before: Ref, after: Ref, n: int = 10) -> go.Figure:
    """The ``n`` statements that took the most execution time between two
    pg_stat_statements snapshots (deltas), as horizontal bars, largest on top; the hover
    gives calls, mean time and rows."""
    if n < 1:
        raise PerflabError("n must be at least 1")
    frame = pg_top_frame(store, before, after, order="total", limit=min(n, MAX_BARS))
    if frame.is_empty():
        raise PerflabError("no statement ran between the two pg_stat_statements snapshots")
    labels = _unique_labels([_short(q, QUERY_LABEL_CHARS) for q in frame["query"].to_list()])
    custom = [[calls, mean, rows, _short(q, HOVER_QUERY_CHARS), str(qid)]
              for calls, mean, rows, q, qid in frame.select("calls", "mean_exec_time", "rows", "query",
                                                             "queryid").rows()]
    fig = go.Figure(go.Bar(
        x=frame["total_exec_time"].to_list(), y=labels, orientation="h", marker_color="#1f77b4",
        customdata=custom, name="total execution time",
        hovertemplate="%{x:.1f} ms total<br>%{customdata[0]} calls, mean %{customdata[1]:.3f} ms, "
                      "%{customdata[2]} rows<br>queryid %{customdata[4]}<br>%{customdata[3]}<extra></extra>",
    ))
    fig.update_xaxes(title_text="total execution time between the snapshots (ms)", rangemode="tozero")
    fig.update_yaxes(autorange="reversed", title_text=None)
    return _finish(fig, f"Top {frame.height} statements by total execution time (pg_stat_statements deltas)",
                   height=max(300, 40 * frame.height + 150), margin={"l": 20, "t": 90})


def _tables_pair(store: Store, before: Ref, after: Ref) -> tuple[int, int] | None:
    """The pg_stat_user_tables snapshots taken with these pg_stat_user_indexes ones:
    the same live-snapshot label, or the file beside each with the view's name swapped."""
    found = []
    for ref in (before, after):
        sid = snapshot_source(store, ref, "pg_stat_user_indexes")
        src = store.source(sid)
        meta = json.loads(src["meta"]) if src.get("meta") else {}
        partner: int | None = None
        if meta.get("snapshot"):
            rows = store.con.execute(
                "SELECT source_id FROM sources WHERE json_extract_string(meta, '$.view') = 'pg_stat_user_tables' "
                "AND json_extract_string(meta, '$.snapshot') = ? ORDER BY source_id", [meta["snapshot"]]).fetchall()
            partner = int(rows[0][0]) if rows else None
        else:
            given = Path(str(ref))
            path = given if given.exists() else Path(src["path"])
            sibling = path.with_name(path.name.replace("pg_stat_user_indexes", "pg_stat_user_tables", 1))
            if sibling != path and sibling.exists():
                partner = snapshot_source(store, sibling, "pg_stat_user_tables")
        if partner is None:
            return None
        found.append(partner)
    return found[0], found[1]


def index_usage(store: Store, before: Ref, after: Ref, tables_before: Ref | None = None,
                tables_after: Ref | None = None) -> go.Figure:
    """Index scans per index between two pg_stat_user_indexes snapshots, unused indexes
    (no scan in between) in red, and sequential scans per table beside them (from the
    pg_stat_user_tables snapshots given, or found beside the index snapshots)."""
    idx = index_usage_frame(store, before, after)
    if idx.is_empty():
        raise PerflabError("the pg_stat_user_indexes snapshots list no index")
    if (tables_before is None) != (tables_after is None):
        raise PerflabError("give both tables_before and tables_after, or neither")
    pair = (tables_before, tables_after) if tables_before is not None else _tables_pair(store, before, after)
    # The finding is the unused indexes, so they come first when there are too many to show.
    idx = idx.sort(["unused", "idx_scan", "schemaname", "relname", "indexrelname"],
                   descending=[True, True, False, False, False]).head(MAX_BARS)
    labels = _unique_labels([f"{t}.{i}" for t, i in zip(idx["relname"].to_list(), idx["indexrelname"].to_list())])
    unused = idx["unused"].to_list()
    tables = table_deltas(store, pair[0], pair[1]) if pair is not None else None
    cols = 2 if tables is not None else 1
    fig = make_subplots(rows=1, cols=cols, horizontal_spacing=0.25,
                        subplot_titles=("index scans per index (red: unused)", "sequential scans per table")[:cols])
    fig.add_trace(go.Bar(
        x=idx["idx_scan"].to_list(), y=labels, orientation="h", name="index scans",
        marker_color=[UNUSED_COLOR if u else USED_COLOR for u in unused],
        text=["unused" if u else "" for u in unused], textposition="outside",
        customdata=idx.select("idx_tup_read", "idx_tup_fetch", "idx_scan_total").rows(),
        hovertemplate="%{y}<br>%{x} scans between the snapshots (%{customdata[2]} in all)"
                      "<br>%{customdata[0]} tuples read, %{customdata[1]} fetched<extra></extra>",
    ), row=1, col=1)
    fig.update_xaxes(title_text="index scans", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    if tables is not None:
        tables = tables.sort(["seq_scan", "schemaname", "relname"], descending=[True, False, False]).head(MAX_BARS)
        fig.add_trace(go.Bar(
            x=tables["seq_scan"].to_list(), y=tables["relname"].to_list(), orientation="h",
            name="sequential scans", marker_color="#ff7f0e",
            customdata=tables.select("seq_tup_read", "idx_scan").rows(),
            hovertemplate="%{y}<br>%{x} sequential scans, %{customdata[0]} tuples read"
                          "<br>%{customdata[1]} index scans<extra></extra>",
        ), row=1, col=2)
        fig.update_xaxes(title_text="sequential scans", rangemode="tozero", row=1, col=2)
        fig.update_yaxes(autorange="reversed", row=1, col=2)
    height = max(300, 28 * max(idx.height, tables.height if tables is not None else 0) + 150)
    return _finish(fig, f"Index usage between two snapshots ({sum(unused)} of {len(unused)} indexes unused)",
                   height=height, showlegend=False)


def activity_states_chart(store: Store, source: Ref) -> go.Figure:
    """Client backends per pg_stat_activity sample, stacked by state (with the wait event
    type for waiting ones): how much of the pool was working, idle or waiting."""
    df = activity_states(store, source, backend_type="client backend")  # type: ignore[arg-type]
    if df.is_empty():
        raise PerflabError(f"source {source} has no client backends in its pg_stat_activity samples")
    df = (df.with_columns(
        pl.when(pl.col("wait_event_type").is_not_null())
        .then(pl.concat_str([pl.col("state").fill_null("(no state)"), pl.lit(" / "), pl.col("wait_event_type")]))
        .otherwise(pl.col("state").fill_null("(no state)")).alias("what"))
        .group_by("sample_no", "what").agg(pl.col("backends").sum())
        .sort("sample_no", "what"))
    # One bar per sample; past MAX_POINTS samples the last ones are left out and the title says so.
    samples = df["sample_no"].unique().sort()
    cut = samples.len() > MAX_POINTS
    if cut:
        df = df.filter(pl.col("sample_no") <= samples[MAX_POINTS - 1])
    fig = go.Figure()
    for what in sorted(df["what"].unique().to_list()):
        part = df.filter(pl.col("what") == what)
        fig.add_trace(go.Bar(x=part["sample_no"].to_list(), y=part["backends"].to_list(), name=what))
    title = f"Client backends by state per pg_stat_activity sample (source {source})"
    return _finish(fig, title + (f", first {MAX_POINTS} samples" if cut else ""), barmode="stack",
                   xaxis_title="sample", yaxis_title="backends")


__all__ = [
    "MAX_NODES", "MAX_POINTS", "MAX_BARS", "activity_states_chart", "app_vs_db_rate", "cpu_latency_scatter",
    "cpu_vs_latency", "diff_flame_graph", "errors_by_kind", "flame_graph", "format_value", "index_usage",
    "inflight_and_waiting", "latency_over_time", "process_resources", "top_statements",
]
