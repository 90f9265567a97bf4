"""Database charts: top statements, index usage, pg_stat_activity states.

Each takes the store and stored pg_stat snapshot source ids (perflab.analysis.database).
"""

from __future__ import annotations

import json
from pathlib import Path

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from perflab.analysis.database import activity_states, pg_top_frame, snapshot_source, table_deltas
from perflab.analysis.database import index_usage as index_usage_frame
from perflab.errors import PerflabError
from perflab.report.charts import _base
from perflab.report.charts._base import (
    HOVER_QUERY_CHARS,
    MAX_BARS,
    QUERY_LABEL_CHARS,
    UNUSED_COLOR,
    USED_COLOR,
    finish,
    short,
)
from perflab.store import Store


def _unique_labels(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def top_statements(store: Store, before: int, after: int, n: int = 10) -> go.Figure:
    """The ``n`` statements that took the most execution time between two
    pg_stat_statements snapshots (deltas), as horizontal bars, largest on top; the hover
    gives calls, mean time and rows."""
    if n < 1:
        raise PerflabError("n must be at least 1")
    frame = pg_top_frame(store, before, after, order="total", limit=min(n, MAX_BARS))
    if frame.is_empty():
        raise PerflabError("no statement ran between the two pg_stat_statements snapshots")
    labels = _unique_labels([short(q, QUERY_LABEL_CHARS) for q in frame["query"].to_list()])
    custom = [[calls, mean, rows, short(q, HOVER_QUERY_CHARS), str(qid)]
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
    return finish(fig, f"Top {frame.height} statements by total execution time (pg_stat_statements deltas)",
                   height=max(300, 40 * frame.height + 150), margin={"l": 20, "t": 90})


def _tables_pair(store: Store, before: int, after: int) -> tuple[int, int] | None:
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
            path = Path(src["path"])
            sibling = path.with_name(path.name.replace("pg_stat_user_indexes", "pg_stat_user_tables", 1))
            if sibling != path and sibling.exists():
                try:
                    partner = snapshot_source(store, sibling, "pg_stat_user_tables")
                except PerflabError:
                    partner = None  # the file beside it was never ingested
        if partner is None:
            return None
        found.append(partner)
    return found[0], found[1]


def index_usage(store: Store, before: int, after: int, tables_before: int | None = None,
                tables_after: int | None = None) -> go.Figure:
    """Index scans per index between two pg_stat_user_indexes snapshots, unused indexes
    (no scan in between) in red, and sequential scans per table beside them (from the
    pg_stat_user_tables snapshots given, or found beside the index snapshots)."""
    idx = index_usage_frame(store, before, after)
    if idx.is_empty():
        raise PerflabError("the pg_stat_user_indexes snapshots list no index")
    if (tables_before is None) != (tables_after is None):
        raise PerflabError("give both tables_before and tables_after, or neither")
    pair = ((tables_before, tables_after) if tables_before is not None and tables_after is not None
            else _tables_pair(store, before, after))
    # The finding is the unused indexes, so they come first when there are too many to show.
    idx = idx.sort(["unused", "idx_scan", "schemaname", "relname", "indexrelname"],
                   descending=[True, True, False, False, False]).head(MAX_BARS)
    labels = _unique_labels([f"{t}.{i}" for t, i in zip(idx["relname"].to_list(), idx["indexrelname"].to_list(),
                                                       strict=True)])
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
    return finish(fig, f"Index usage between two snapshots ({sum(unused)} of {len(unused)} indexes unused)",
                   height=height, showlegend=False)


def activity_states_chart(store: Store, source: int) -> go.Figure:
    """Client backends per pg_stat_activity sample, stacked by state (with the wait event
    type for waiting ones): how much of the pool was working, idle or waiting."""
    df = activity_states(store, source, backend_type="client backend")
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
    cut = samples.len() > _base.MAX_POINTS
    if cut:
        df = df.filter(pl.col("sample_no") <= samples[_base.MAX_POINTS - 1])
    fig = go.Figure()
    for what in sorted(df["what"].unique().to_list()):
        part = df.filter(pl.col("what") == what)
        fig.add_trace(go.Bar(x=part["sample_no"].to_list(), y=part["backends"].to_list(), name=what))
    title = f"Client backends by state per pg_stat_activity sample (source {source})"
    return finish(fig, title + (f", first {_base.MAX_POINTS} samples" if cut else ""), barmode="stack",
                   xaxis_title="sample", yaxis_title="backends")
