"""Plotly figures of a run, a profile or the database: ``charts.latency_over_time(run)``.

One module per subject: timeline (a run's time charts, each taking a ``Run``), flame
(flame graphs of a stored profile), sandwich (one function's callers and callees),
database (pg_stat snapshots). What every chart shares (look, caps, determinism) is in
``_base``.
"""

from perflab.report.charts._base import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MIN_SHARE,
    MAX_BARS,
    MAX_NODES,
    MAX_POINTS,
    UIREVISION,
    finish,
)
from perflab.report.charts.database import activity_states_chart, index_usage, top_statements
from perflab.report.charts.flame import diff_flame_graph, flame_graph
from perflab.report.charts.sandwich import sandwich_graph
from perflab.report.charts.timeline import (
    app_vs_db_rate,
    cpu_latency_scatter,
    cpu_vs_latency,
    errors_by_kind,
    inflight_and_waiting,
    latency_over_time,
    process_resources,
    source_latency_over_time,
)

__all__ = [
    "DEFAULT_MAX_DEPTH", "DEFAULT_MIN_SHARE", "UIREVISION",
    "MAX_BARS", "MAX_NODES", "MAX_POINTS", "activity_states_chart", "app_vs_db_rate", "cpu_latency_scatter",
    "cpu_vs_latency", "diff_flame_graph", "errors_by_kind", "finish", "flame_graph", "index_usage",
    "inflight_and_waiting", "latency_over_time", "process_resources", "sandwich_graph", "source_latency_over_time",
    "top_statements",
]
