"""Time charts of a run: latency, CPU, the service's own counters and gauges, resources.

Each takes a ``Run`` (perflab.analysis.run). The charts of one run share one time axis:
seconds since the run's first sample of any kind (k6 point, resource sample,
/debug/vars sample), so they line up. Every time chart shades the run's steady window
(Run.window: what the doctor judges), and every CPU axis spans 0 to the machine's cores
× 100 %, so 12 % of a core looks as idle as it is.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from perflab.analysis.loadtest import k6_points, k6_timeseries
from perflab.analysis.roles import gauge_levels, label_values, role_rows
from perflab.analysis.run import Run
from perflab.errors import PerflabError
from perflab.report.charts import _base
from perflab.report.charts._base import (
    ERROR_COLOR,
    LEGEND_RIGHT,
    cap_points,
    finish,
    fit_interval,
)
from perflab.store import Store
from perflab.vocab import ROLES


def _extent_us(run: Run) -> tuple[int, int]:
    """The run's first and last instant over every kind of sample, in µs since the epoch."""
    row = run.store.con.execute(
        """SELECT min(lo), max(hi) FROM (
               SELECT min(epoch_us(t)) AS lo, max(epoch_us(t)) AS hi FROM resource_samples WHERE run_id = $r
               UNION ALL SELECT min(epoch_us(t)), max(epoch_us(t)) FROM service_vars WHERE run_id = $r
               UNION ALL SELECT min(epoch_us(t)), max(epoch_us(t)) FROM metric_samples WHERE run_id = $r
               UNION ALL SELECT min(time_ns) // 1000, max(time_ns) // 1000 FROM k6_points WHERE run_id = $r)""",
        {"r": run.run_id},
    ).fetchall()
    if row[0][0] is None:
        raise PerflabError(f"run {run.run_id} has no samples (no k6 points, resource samples or service metrics)")
    return int(row[0][0]), int(row[0][1])


def _origin_us(run: Run) -> int:
    return _extent_us(run)[0]


def _span_s(run: Run, origin: int) -> float:
    """Seconds from the run's first sample to its last, over every kind of sample."""
    return (_extent_us(run)[1] - origin) / 1e6


def _resources(run: Run, origin: int, roles: tuple[str, ...] | None = None) -> pl.DataFrame:
    where = "run_id = ?" + (" AND role IN ?" if roles else "")
    params: list[Any] = [origin, run.run_id] + ([list(roles)] if roles else [])
    return run.store.sql(
        f"SELECT role, (epoch_us(t) - ?) / 1e6 AS x, cpu_pct, rss_bytes FROM resource_samples "
        f"WHERE {where} ORDER BY role, elapsed_s, t",
        params,
    )


def _role(run: Run, origin: int, role: str) -> pl.DataFrame:
    """A role's samples with ``x`` in seconds since the run's first sample (series kept)."""
    return role_rows(run.signals, role).select(pl.col("series").alias("key"), (pl.col("t_s") - origin / 1e6)
                                               .alias("x"), "value").sort("key", "x")


def _counter_buckets(df: pl.DataFrame, interval_s: float) -> pl.DataFrame:
    """Per series (``key``) and interval: the counter's increase and the time it covered.

    Each increase between two samples is booked to the interval of the later sample; a
    counter that went down was reset (the service restarted), so its new value is the
    increase. rate = increase / covered seconds.
    """
    d = pl.col("value").diff().over("key")
    return (
        df.with_columns(
            pl.when(d < 0).then(pl.col("value")).otherwise(d).alias("delta"),
            pl.col("x").diff().over("key").alias("dt"),
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


def _role_rates(run: Run, origin: int, role: str, interval_s: float) -> pl.DataFrame:
    """A counter role's increase and rate per interval, summed over its series (x, delta, dt, rate)."""
    per_series = _counter_buckets(_role(run, origin, role), interval_s)
    return (per_series.group_by("x").agg(pl.col("delta").sum(), pl.col("dt").max())
            .with_columns(pl.when(pl.col("dt") > 0).then(pl.col("delta") / pl.col("dt")).alias("rate"))
            .sort("x"))


def _k6_series(store: Store, sids: list[int], interval_s: float) -> tuple[pl.DataFrame, float]:
    """k6_timeseries of the sources, re-bucketed to at most MAX_POINTS intervals."""
    if interval_s <= 0:
        raise PerflabError("interval_s must be positive")
    ts = k6_timeseries(store, sids, interval_s)
    if ts.height > _base.MAX_POINTS:
        interval_s = interval_s * math.ceil(ts.height / _base.MAX_POINTS)
        ts = k6_timeseries(store, sids, interval_s)
    return ts, interval_s


def _k6_run(run: Run, interval_s: float) -> tuple[pl.DataFrame, float, int]:
    """The run's k6 series with ``x`` in seconds since the run's first sample, and that origin."""
    if interval_s <= 0:
        raise PerflabError("interval_s must be positive")
    sids = run.k6_point_sources
    ts, step = _k6_series(run.store, sids, interval_s) if sids else (pl.DataFrame(), interval_s)
    if ts.is_empty():
        raise PerflabError(f"run {run.run_id} has no k6 samples")
    origin = _origin_us(run)
    return ts.with_columns(((pl.col("t").dt.epoch("us") - origin) / 1e6).alias("x")), step, origin


# The steady window's shade: light enough that every trace stays readable over it.
WINDOW_FILL = "rgba(44, 160, 44, 0.10)"
WINDOW_LABEL = "steady window"


def shade_window(fig: go.Figure, run: Run, origin: int, rows: int = 1) -> None:
    """Shade the run's steady window (Run.window) on every panel of a time chart, labelled
    once; a run without one (too few samples to find it) is drawn unshaded."""
    window = run.window
    if window is None:
        return
    x0, x1 = window.start_s - origin / 1e6, window.end_s - origin / 1e6
    for row in range(1, rows + 1):
        where: dict[str, Any] = {"row": row, "col": 1} if rows > 1 else {}
        if row == 1:
            where.update(annotation_text=WINDOW_LABEL, annotation_position="top left")
        fig.add_vrect(x0=x0, x1=x1, fillcolor=WINDOW_FILL, line_width=0, layer="below", **where)


def cpu_axis(run: Run, peak: float | None) -> tuple[list[float], str]:
    """The CPU axis' range and the note its title carries: 0 to the machine's cores × 100 %
    (Run.cpu_count: the sampler's header or the manifest), or, when the run does not record
    its core count, 0 to the highest sample, saying so."""
    cores = run.cpu_count
    top = float(peak) if peak is not None and math.isfinite(peak) else 0.0
    if cores:
        return [0.0, max(cores * 100.0, top)], f"axis: {cores} cores = {cores * 100} %"
    return [0.0, top * 1.05 if top > 0 else 100.0], "axis to the highest sample: the run records no core count"


def _peak(df: pl.DataFrame, col: str) -> float | None:
    v = df[col].max() if df.height else None
    return float(v) if isinstance(v, (int, float)) else None


def _seconds_axis(fig: go.Figure, run: bool = True, **kw: Any) -> None:
    fig.update_xaxes(title_text="seconds since the run started" if run else "seconds since the first request", **kw)


# -- load-test charts ---------------------------------------------------------------------

def latency_over_time(run: Run, interval_s: float = 1) -> go.Figure:
    """p50/p95/p99 of http_req_duration per interval, with requests/s and errors/s on a
    second axis (k6_timeseries: k6's own percentile rule)."""
    ts, step, origin = _k6_run(run, interval_s)
    fig = _latency(ts, step, f"run {run.run_id}", run=True)
    shade_window(fig, run, origin)
    return fig


def source_latency_over_time(store: Store, source_id: int, interval_s: float = 1) -> go.Figure:
    """:func:`latency_over_time` of one k6 file, in seconds since its first request."""
    ts, step = _k6_series(store, [source_id], interval_s)
    if ts.is_empty():
        raise PerflabError(f"source {source_id} has no k6 samples")
    return _latency(ts.with_columns(pl.col("elapsed_s").alias("x")), step, f"source {source_id}", run=False)


def _latency(ts: pl.DataFrame, step: float, label: str, run: bool) -> go.Figure:
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
    _seconds_axis(fig, run=run)
    fig.update_yaxes(title_text="latency (ms)", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="requests/s, errors/s", rangemode="tozero", secondary_y=True, showgrid=False)
    return finish(fig, f"Response time and throughput over time ({label}, {step:g} s intervals)",
                   hovermode="x unified", bargap=0)


def _service_cpu(run: Run, origin: int) -> pl.DataFrame:
    cpu = _resources(run, origin, roles=("service",)).filter(pl.col("cpu_pct").is_not_null())
    if cpu.is_empty():
        raise PerflabError(f"run {run.run_id} has no resource samples of the service's CPU")
    return cpu


def cpu_vs_latency(run: Run, interval_s: float = 1) -> go.Figure:
    """Service CPU % over time (of one core: 2 cores = 200 %) with k6's p95 on a second
    axis: the login-storm picture, where p95 jumps once CPU saturates."""
    origin = _origin_us(run)
    cpu = cap_points(_service_cpu(run, origin), ["cpu_pct"], "mean")
    ts, step, _ = _k6_run(run, interval_s)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=cpu["x"].to_list(), y=cpu["cpu_pct"].to_list(), name="service CPU",
                             mode="lines", line={"color": "#ff7f0e"},
                             hovertemplate="CPU %{y:.0f} %<extra></extra>"), secondary_y=False)
    fig.add_trace(go.Scatter(x=ts["x"].to_list(), y=ts["p95_ms"].to_list(), name="p95 latency",
                             mode="lines", line={"color": "#1f77b4", "width": 2.5},
                             hovertemplate="p95 %{y:.1f} ms<extra></extra>"), secondary_y=True)
    _seconds_axis(fig)
    span, note = cpu_axis(run, _peak(cpu, "cpu_pct"))
    fig.update_yaxes(title_text=f"service CPU (% of one core; {note})", range=span, secondary_y=False)
    fig.update_yaxes(title_text="p95 latency (ms)", rangemode="tozero", secondary_y=True, showgrid=False)
    shade_window(fig, run, origin)
    return finish(fig, f"Service CPU and p95 latency (run {run.run_id}, p95 per {step:g} s)",
                   hovermode="x unified")


def cpu_latency_scatter(run: Run, interval_s: float = 1) -> go.Figure:
    """One point per interval: the service's mean CPU % against k6's p95 in that interval,
    coloured by time. Below saturation p95 stays flat; at saturation it climbs a wall."""
    origin = _origin_us(run)
    cpu = _service_cpu(run, origin)
    ts, step, _ = _k6_run(run, interval_s)
    t0 = (int(ts["t"].dt.epoch("us").to_numpy().min()) - origin) / 1e6
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
        raise PerflabError(f"run {run.run_id}: no interval has both CPU samples and k6 requests")
    fig = go.Figure(go.Scatter(
        x=points["cpu_mean"].to_list(), y=points["p95_ms"].to_list(), mode="markers", name="interval",
        marker={"color": points["x"].to_list(), "colorscale": "Viridis", "size": 8,
                "colorbar": {"title": {"text": "seconds"}}},
        customdata=points.select("x", "requests").rows(),
        hovertemplate="CPU %{x:.0f} %<br>p95 %{y:.1f} ms<br>at %{customdata[0]:.0f} s, "
                      "%{customdata[1]} requests<extra></extra>",
    ))
    span, note = cpu_axis(run, _peak(points, "cpu_mean"))
    fig.update_xaxes(title_text=f"service CPU (% of one core, mean of the interval; {note})", range=span)
    fig.update_yaxes(title_text="p95 latency (ms)", rangemode="tozero")
    return finish(fig, f"p95 latency against service CPU (run {run.run_id}, one point per {step:g} s)")


# -- the service's own signals, by role ----------------------------------------------------------

def _metric(run: Run, role: str) -> str:
    src = run.roles.sources.get(role)
    return src.metric if src is not None else role


def _require(run: Run, *roles: str) -> None:
    missing = [r for r in roles if not run.roles.has(r)]
    if missing:
        raise PerflabError(f"run {run.run_id} has no metric for the {' and '.join(missing)} role"
                           + ("s" if len(missing) > 1 else "") + " (perflab roles shows which it has)")


def app_vs_db_rate(run: Run, interval_s: float = 1) -> go.Figure:
    """Requests/s the service answered against downstream calls/s it made (database queries,
    dependency calls: the requests and downstream_calls roles), and calls per request: the
    retry-storm picture, where the downstream rate runs away from the request rate."""
    _require(run, "requests", "downstream_calls")
    origin = _origin_us(run)
    step = fit_interval(_span_s(run, origin), interval_s)
    req = _role_rates(run, origin, "requests", step)
    calls = _role_rates(run, origin, "downstream_calls", step)
    ratio = (
        req.select("x", pl.col("delta").alias("r"))
        .join(calls.select("x", pl.col("delta").alias("q")), on="x", how="inner")
        .filter(pl.col("r") > 0)
        .with_columns((pl.col("q") / pl.col("r")).alias("per_request"))
        .sort("x")
    )
    names = {r: _metric(run, r) for r in ("requests", "downstream_calls")}
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=req["x"].to_list(), y=req["rate"].to_list(), name="app requests/s", mode="lines",
                             line={"color": "#1f77b4"}, hovertemplate=f"%{{y:.1f}} requests/s ({names['requests']})"
                             "<extra></extra>"), secondary_y=False)
    fig.add_trace(go.Scatter(x=calls["x"].to_list(), y=calls["rate"].to_list(), name="downstream calls/s",
                             mode="lines", line={"color": "#d62728"},
                             hovertemplate=f"%{{y:.1f}} calls/s ({names['downstream_calls']})<extra></extra>"),
                  secondary_y=False)
    fig.add_trace(go.Scatter(x=ratio["x"].to_list(), y=ratio["per_request"].to_list(),
                             name="downstream calls per request", mode="lines",
                             line={"dash": "dot", "color": "#7f7f7f"},
                             hovertemplate="%{y:.2f} calls/request<extra></extra>"), secondary_y=True)
    _seconds_axis(fig)
    fig.update_yaxes(title_text="per second", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="downstream calls per request", rangemode="tozero", secondary_y=True, showgrid=False)
    shade_window(fig, run, origin)
    return finish(fig, f"App requests/s against downstream calls/s (run {run.run_id}, {step:g} s intervals)",
                  hovermode="x unified")


# role: (legend, panel row, colour, dash)
INFLIGHT_ROLES = {
    "in_flight": ("requests in flight", 1, "#1f77b4", None),
    "pool_waiting": ("tasks waiting for a connection", 1, "#d62728", None),
    "pool_in_use": ("pool connections in use", 2, "#2ca02c", None),
    # The pool_size role is the most connections the pool opens (size + overflow): the doctor's pool_capacity.
    "pool_size": ("pool capacity", 2, "#7f7f7f", "dash"),
}


def inflight_and_waiting(run: Run) -> go.Figure:
    """Requests in flight and tasks waiting for a connection, over pool connections in use
    against the pool size (roles in_flight, pool_waiting, pool_in_use, pool_size): the
    false-idle picture (CPU idle, pool full, a queue of waiters)."""
    have = [r for r in INFLIGHT_ROLES if run.roles.has(r)]
    if not have:
        raise PerflabError(f"run {run.run_id} has no metric for the {', '.join(INFLIGHT_ROLES)} roles "
                           "(perflab roles shows which it has)")
    origin = _origin_us(run)
    levels = pl.concat([gauge_levels(run.signals, r).select(pl.lit(r).alias("key"), (pl.col("t_s") - origin / 1e6)
                                                              .alias("x"), "value") for r in have])
    # Peaks are the story here (how many waited at worst), so long series keep the max.
    gauges = cap_points(levels, ["value"], "max", by="key")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("requests in flight and tasks waiting for a connection",
                                        "connection pool: connections in use and its capacity"))
    for role, (name, row, color, dash) in INFLIGHT_ROLES.items():
        part = gauges.filter(pl.col("key") == role)
        if part.is_empty():
            continue
        fig.add_trace(go.Scatter(x=part["x"].to_list(), y=part["value"].to_list(), name=name, mode="lines",
                                 line={"color": color, "dash": dash, "shape": "hv"},
                                 hovertemplate=f"{name}: %{{y:.0f}}<extra></extra>"), row=row, col=1)
    _seconds_axis(fig, row=2, col=1)
    fig.update_yaxes(title_text="requests / tasks", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="connections", rangemode="tozero", row=2, col=1)
    shade_window(fig, run, origin, rows=2)
    return finish(fig, f"In-flight requests, waiters and pool use (run {run.run_id})", hovermode="x unified",
                  legend=LEGEND_RIGHT)


def errors_by_kind(run: Run, interval_s: float = 1) -> go.Figure:
    """Stacked bars of errors per interval: by kind from the service's errors role (one bar
    colour per series: timeout, pool_timeout, ...) and by HTTP status from k6's failed
    requests (http_req_failed; status 0 is a request that got no response)."""
    origin = _origin_us(run)
    raw = _role(run, origin, "errors")
    sids = run.k6_point_sources
    if raw.is_empty() and not sids:
        raise PerflabError(f"run {run.run_id} has no error counters (the errors role) and no k6 samples")
    panels: list[tuple[str, pl.DataFrame]] = []
    step = fit_interval(_span_s(run, origin), interval_s)
    if not raw.is_empty():
        kinds = {k: label_values(k) for k in raw["key"].unique().to_list()}
        counts = _counter_buckets(raw, step).select(
            pl.col("key").replace_strict(kinds, return_dtype=pl.String).alias("kind"), "x", pl.col("delta").alias("n"))
        panels.append((f"service errors by kind ({_metric(run, 'errors')})", counts))
    if sids:
        parts = []
        for sid in sids:
            pts = k6_points(run.store, sid, metric="http_req_failed")
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
    shade_window(fig, run, origin, rows=len(panels))
    return finish(fig, f"Errors by kind (run {run.run_id}, {step:g} s intervals)", barmode="stack", bargap=0.1,
                   hovermode="x unified", legend=LEGEND_RIGHT)


def process_resources(run: Run) -> go.Figure:
    """CPU % (of one core) and resident memory over time of every role of the run:
    the service, PostgreSQL, k6 and the whole host (host memory is the machine's used
    memory), to tell a busy service from a busy neighbour."""
    origin = _origin_us(run)
    res = _resources(run, origin)
    if res.is_empty():
        raise PerflabError(f"run {run.run_id} has no resource samples")
    roles = sorted(res["role"].unique().to_list(), key=lambda r: (ROLES.index(r) if r in ROLES else len(ROLES), r))
    res = cap_points(res.with_columns((pl.col("rss_bytes") / 2**20).alias("rss_mib")),
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
    span, note = cpu_axis(run, _peak(res, "cpu_pct"))
    fig.update_yaxes(title_text=f"CPU (% of one core; {note})", range=span, row=1, col=1)
    fig.update_yaxes(title_text="RSS (MiB)", rangemode="tozero", row=2, col=1)
    shade_window(fig, run, origin, rows=2)
    return finish(fig, f"CPU and memory of every process role (run {run.run_id})", hovermode="x unified",
                   legend=LEGEND_RIGHT)
