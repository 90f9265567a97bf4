"""How much load one instance can take, from the resource that runs out first.

Each resource the run measured gives the request rate at which it would be fully used,
from what one request costs of it at the measured rate::

    service CPU   cores × 100 % ÷ (CPU % ÷ rps)             CPU % per request; CPU % is of one core
    pool          pool capacity ÷ (mean in use ÷ rps)        Little's law: connections held per request
    database      cores × 100 % ÷ (PostgreSQL CPU % ÷ rps)   its processes' CPU, when the run sampled them

    one replica   = HEADROOM × the smallest of them          ``limited_by`` names which
    replicas      = ceil(target rps / one replica)

    CPU %  (2 cores = 200 %)
    200 ┤ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─  the machine
    160 ┤ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─  saturated from SATURATION_FRACTION up
    140 ┤ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─  planned ceiling: HEADROOM_CPU_FRACTION
        │       measured: 67 % at 10 req/s → 14.9 req/s per core → 20.9 req/s per replica

A false-idle service (pool of 2, each request holding a connection ~57 ms) is limited
by its pool at ~35 req/s while its CPU (8 % of a core) would allow hundreds: the
smallest limit is the answer, and the others say what comes next. Each limit is linear
in its own resource and ignores the rest; a database or dependency the run did not
measure can come first.

"Saturated" is said of the service only when its CPU p50 is at least SATURATION_FRACTION
of all cores; a machine pinned by other processes is said as such. k6 dropping
iterations is not saturation: it says the offered rate was not kept (the limits say by
what). With either, the measured rate is all the service served at unacceptable
latency, so the estimate is an **upper bound**.

:func:`estimate` is pure (numbers in, answer out) and is what the decision-table tests
drive; :func:`run_capacity` reads a run's numbers over its steady window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from perflab.analysis.roles import gauge_levels
from perflab.analysis.run import Run
from perflab.jsonable import optional

# Plan to run at most 70 % of the limiting resource: the rest absorbs bursts, GC and
# deploys without the latency wall that LAB-NOTES measured at saturation (p95 from 80 ms
# to seconds); a pool queues the same way as it fills.
HEADROOM_CPU_FRACTION = 0.70
# CPU at 80 % of all cores counts as saturated: the sampler moves in ~4 % steps of one core
# at 4 Hz, and k6 and PostgreSQL share the machine, so a pinned service reads 160–195 % of
# 200 % (the login storm), never exactly 200 %; the false idle reads 8–12 %, far below.
SATURATION_FRACTION = 0.80
# Without --target-rps the report sizes for ten times the measured rate: an order of
# magnitude is the usual "what if it takes off" question.
DEFAULT_TARGET_MULTIPLIER = 10.0
# Below 10 % of one core the CPU samples (4 % steps) are too coarse to derive a cost
# per request from; the estimate is still given, with this caveat.
LOW_CPU_PCT = 10.0

# The resources a limit can come from (``Capacity.limited_by``).
CPU, POOL, DATABASE = "cpu", "pool", "database"


@dataclass
class Limit:
    """The request rate at which one resource would be fully used, and how it was derived."""

    resource: str  # cpu | pool | database
    rps: float
    basis: str  # the arithmetic, in words
    used: float  # the measured rate's share of it (0..1, above 1 past it)


@dataclass
class Capacity:
    """The capacity answer. ``reason`` is None when the estimate was made, else why not
    (and the derived numbers are None)."""

    rps: float | None
    cpu_mean_pct: float | None
    cpu_p50_pct: float | None
    cores: int | None
    headroom: float = HEADROOM_CPU_FRACTION
    rps_per_core: float | None = None
    replica_rps: float | None = None
    target_rps: float | None = None
    replicas: int | None = None
    cores_needed: float | None = None
    saturated: bool = False  # the service's CPU was at the cores' limit
    machine_saturated: bool = False  # the machine's CPU was, while the service's was not
    saturation_reasons: list[str] = field(default_factory=list)
    upper_bound: bool = False
    caveats: list[str] = field(default_factory=list)
    reason: str | None = None
    limits: list[Limit] = field(default_factory=list)  # smallest first
    limited_by: str | None = None  # the resource of the smallest limit
    dropped_iterations: float | None = optional()  # a run's: k6's dropped iterations
    rate_source: str | None = optional()  # a run's: over what the rate was measured


@dataclass(frozen=True)
class Pool:
    """A connection pool over the steady window: its capacity (most connections it opens)
    and the mean number in use, with the metrics they came from."""

    capacity: float
    in_use_mean: float
    source: str


def estimate(rps: float | None, cpu_mean_pct: float | None, *, cpu_p50_pct: float | None = None,
             cores: int | None = None, target_rps: float | None = None, dropped_iterations: float = 0,
             host_cpu_p50_pct: float | None = None, pool: Pool | None = None,
             database_cpu_mean_pct: float | None = None) -> Capacity:
    """The capacity answer for a measured rate, the service's CPU (% of one core) and,
    when known, its pool and the database's CPU."""
    out = Capacity(rps=rps, cpu_mean_pct=cpu_mean_pct, cpu_p50_pct=cpu_p50_pct, cores=cores)
    limit = cores * 100.0 if cores else None
    if cpu_p50_pct is not None and limit is not None and cpu_p50_pct >= SATURATION_FRACTION * limit:
        out.saturated = True
        out.saturation_reasons.append(f"service CPU p50 {cpu_p50_pct:.0f} % is at least {SATURATION_FRACTION:.0%} "
                                      f"of the {cores} cores ({limit:.0f} %)")
    elif (host_cpu_p50_pct is not None and limit is not None
          and host_cpu_p50_pct >= SATURATION_FRACTION * limit):
        # Other processes (k6, PostgreSQL, other work) took the cores the service would have needed.
        out.machine_saturated = True
        out.saturation_reasons.append(
            f"the machine's CPU p50 {host_cpu_p50_pct:.0f} % is at least {SATURATION_FRACTION:.0%} of its "
            f"{limit:.0f} % while the service used less: other processes competed for the cores")
    out.upper_bound = out.saturated or out.machine_saturated or bool(dropped_iterations and dropped_iterations > 0)

    if rps is None or not math.isfinite(rps) or rps <= 0:
        out.reason = "no request rate (no k6 requests in the steady window)"
        return out
    target = target_rps if target_rps is not None else DEFAULT_TARGET_MULTIPLIER * rps
    if target <= 0:
        raise ValueError("target_rps must be positive")
    out.target_rps = target
    has_cpu = cpu_mean_pct is not None and math.isfinite(cpu_mean_pct) and cpu_mean_pct > 0
    if has_cpu:
        assert cpu_mean_pct is not None
        per_core = rps / (cpu_mean_pct / 100.0)
        out.rps_per_core = per_core
        out.cores_needed = target / (per_core * HEADROOM_CPU_FRACTION)
        if limit is not None:
            out.limits.append(_limit(CPU, rps, limit * rps / cpu_mean_pct,
                                     f"{cores} cores × 100 % ÷ {cpu_mean_pct / rps:.3g} % of a core per request"))
        if cpu_mean_pct < LOW_CPU_PCT:
            out.caveats.append(f"the service used {cpu_mean_pct:.1f} % of a core: below {LOW_CPU_PCT:g} % the "
                               "CPU cost per request is coarse")
    if pool is not None and pool.capacity > 0 and pool.in_use_mean > 0:
        hold_s = pool.in_use_mean / rps
        out.limits.append(_limit(POOL, rps, pool.capacity / hold_s,
                                 f"{pool.capacity:g} connections ÷ {hold_s * 1000:.3g} ms held per request "
                                 f"(Little's law: {pool.in_use_mean:.3g} in use on average at {rps:.4g} req/s; "
                                 f"{pool.source})"))
    if database_cpu_mean_pct is not None and database_cpu_mean_pct > 0 and limit is not None:
        out.limits.append(_limit(DATABASE, rps, limit * rps / database_cpu_mean_pct,
                                 f"{cores} cores × 100 % ÷ {database_cpu_mean_pct / rps:.3g} % of a core per "
                                 "request in PostgreSQL's processes"))
    if not has_cpu and not out.limits:
        out.reason = "no service CPU samples in the steady window (resource samples of role service)"
        return out
    out.limits.sort(key=lambda lim: lim.rps)
    if out.limits:
        first = out.limits[0]
        out.limited_by = first.resource
        out.replica_rps = first.rps * HEADROOM_CPU_FRACTION
        out.replicas = math.ceil(target / out.replica_rps - 1e-9)
    return out


def _limit(resource: str, rps: float, at_full: float, basis: str) -> Limit:
    return Limit(resource, at_full, basis, rps / at_full)


def run_capacity(run: Run, target_rps: float | None = None) -> Capacity:
    """:func:`estimate` for a run: the k6 request rate and the service's CPU over the
    steady window, the machine's core count, and k6's dropped iterations."""
    window = run.window
    lo, hi = (window.start_s, window.end_s) if window else (-math.inf, math.inf)
    span = (hi - lo) if window else None
    sids = run.k6_point_sources[:1]  # the first file: segments are counted once each elsewhere
    rps = None
    dropped = 0.0
    if sids:
        n, whole = run.store.con.execute(
            """SELECT coalesce(sum(value) FILTER (WHERE metric = 'http_reqs'), 0), (max(time_ns) - min(time_ns)) / 1e9
               FROM k6_points WHERE source_id IN ? AND time_ns / 1e9 BETWEEN ? AND ?""",
            [sids, lo, hi]).fetchall()[0]
        duration = span if span else whole
        rps = float(n) / duration if duration else None
        # Dropped iterations of the whole test: k6 also drops at the end, when it stops
        # waiting for the last responses, and those say the same about the service.
        dropped = float(run.store.con.execute(
            "SELECT coalesce(sum(value), 0) FROM k6_points WHERE source_id IN ? AND metric = 'dropped_iterations'",
            [sids]).fetchall()[0][0])
    samples = run.service_cpu
    service = (samples.values.filter(pl.col("t_s").is_between(lo, hi))["cpu_pct"].to_numpy()
               if samples is not None else np.zeros(0))
    host, database = (run.resources.filter((pl.col("role") == role) & pl.col("cpu_pct").is_not_null()
                                           & pl.col("t_s").is_between(lo, hi))["cpu_pct"].to_numpy()
                      for role in ("host", "postgres"))
    out = estimate(rps, float(service.mean()) if service.size else None,
                   cpu_p50_pct=float(np.median(service)) if service.size else None, cores=run.cpu_count,
                   target_rps=target_rps, dropped_iterations=dropped,
                   host_cpu_p50_pct=float(np.median(host)) if host.size else None,
                   pool=run_pool(run, lo, hi), database_cpu_mean_pct=float(database.mean()) if database.size else None)
    out.dropped_iterations = dropped
    out.rate_source = ("k6 requests in the steady window / its length" if window
                       else "k6 requests over the whole run")
    return out


def run_pool(run: Run, lo: float, hi: float) -> Pool | None:
    """The pool over [lo, hi]: the pool_size role's median (the doctor's pool_capacity and the
    pool chart's line read the same role) and the pool_in_use role's mean; None without both."""
    size = gauge_levels(run.signals, "pool_size").filter(pl.col("t_s").is_between(lo, hi))["value"].drop_nulls()
    in_use = gauge_levels(run.signals, "pool_in_use").filter(pl.col("t_s").is_between(lo, hi))["value"].drop_nulls()
    if size.is_empty() or in_use.is_empty():
        return None
    fed = [(role, run.roles.sources.get(role)) for role in ("pool_size", "pool_in_use")]
    names = " and ".join(f"{role} {src.metric}" for role, src in fed if src is not None)
    return Pool(capacity=float(size.median()), in_use_mean=float(in_use.mean()),  # type: ignore[arg-type]
                source=names or "roles pool_size and pool_in_use")
