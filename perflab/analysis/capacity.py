"""How much load one instance can take, and how many instances a target rate needs.

The estimate is the measured CPU cost of a request, scaled linearly::

    requests/s per core  = rps / (service CPU mean / 100)        CPU % is of one core
    one replica          = per core × cores × HEADROOM_CPU_FRACTION
    replicas for target  = ceil(target rps / one replica)

    CPU %  (2 cores = 200 %)
    200 ┤ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─  the machine
    180 ┤ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─  saturated above SATURATION_FRACTION
    140 ┤ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─  planned ceiling: HEADROOM_CPU_FRACTION
        │       measured: 67 % at 10 req/s → 14.9 req/s per core → 20.9 req/s per replica

Linear scaling holds while CPU is what limits a request and nothing else saturates
first (the pool, the database, a lock). When the service was **saturated** during the
run (CPU at the cores' limit, or k6 dropping iterations because responses did not come
back in time), the rate it served is all it could serve and requests queued: latency
was not what a user accepts, so the estimate is an **upper bound**.

:func:`estimate` is pure (numbers in, answer out) and is what the decision-table tests
drive; :func:`run_capacity` reads a run's numbers over its steady window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from perflab.analysis.run import Run
from perflab.jsonable import optional

# Plan to run at most 70 % CPU: the rest absorbs bursts, GC and deploys without the
# latency wall that LAB-NOTES measured at saturation (p95 from 80 ms to seconds).
HEADROOM_CPU_FRACTION = 0.70
# CPU at 90 % of all cores counts as saturated: the lab's sampler moves in ~4 % steps of
# one core at 4 Hz, and the login storm pinned at 195 % of 200 % (97.5 %).
SATURATION_FRACTION = 0.90
# Without --target-rps the report sizes for ten times the measured rate: an order of
# magnitude is the usual "what if it takes off" question.
DEFAULT_TARGET_MULTIPLIER = 10.0
# Below 10 % of one core the CPU samples (4 % steps) are too coarse to derive a cost
# per request from; the estimate is still given, with this caveat.
LOW_CPU_PCT = 10.0


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
    saturated: bool = False
    saturation_reasons: list[str] = field(default_factory=list)
    upper_bound: bool = False
    caveats: list[str] = field(default_factory=list)
    reason: str | None = None
    dropped_iterations: float | None = optional()  # a run's: k6's dropped iterations
    rate_source: str | None = optional()  # a run's: over what the rate was measured


def estimate(rps: float | None, cpu_mean_pct: float | None, *, cpu_p50_pct: float | None = None,
             cores: int | None = None, target_rps: float | None = None, dropped_iterations: float = 0,
             host_cpu_p50_pct: float | None = None) -> Capacity:
    """The capacity answer for a measured rate and the service's CPU (% of one core)."""
    out = Capacity(rps=rps, cpu_mean_pct=cpu_mean_pct, cpu_p50_pct=cpu_p50_pct, cores=cores)
    reasons: list[str] = []
    limit = cores * 100.0 if cores else None
    service_pinned = cpu_p50_pct is not None and limit is not None and cpu_p50_pct >= SATURATION_FRACTION * limit
    if service_pinned:
        reasons.append(f"service CPU p50 {cpu_p50_pct:.0f} % is at least {SATURATION_FRACTION:.0%} "
                       f"of the {cores} cores ({limit:.0f} %)")
    if dropped_iterations and dropped_iterations > 0:
        reasons.append(f"k6 dropped {dropped_iterations:.0f} iterations: responses did not come back "
                       "fast enough to keep the offered rate")
    # A pinned machine while the service itself is not: other processes (k6, PostgreSQL,
    # other work) took the cores the service would have needed.
    if (host_cpu_p50_pct is not None and limit is not None and host_cpu_p50_pct >= SATURATION_FRACTION * limit
            and not service_pinned):
        reasons.append(f"the machine's CPU p50 {host_cpu_p50_pct:.0f} % is at least {SATURATION_FRACTION:.0%} of "
                       f"its {limit:.0f} % while the service used less: other processes competed for the cores")
    out.saturated = out.upper_bound = bool(reasons)
    out.saturation_reasons = reasons

    if rps is None or not math.isfinite(rps) or rps <= 0:
        out.reason = "no request rate (no k6 requests in the steady window)"
        return out
    if cpu_mean_pct is None or not math.isfinite(cpu_mean_pct) or cpu_mean_pct <= 0:
        out.reason = "no service CPU samples in the steady window (resource samples of role service)"
        return out
    per_core = rps / (cpu_mean_pct / 100.0)
    target = target_rps if target_rps is not None else DEFAULT_TARGET_MULTIPLIER * rps
    if target <= 0:
        raise ValueError("target_rps must be positive")
    out.rps_per_core, out.target_rps = per_core, target
    out.cores_needed = target / (per_core * HEADROOM_CPU_FRACTION)
    if cores:
        out.replica_rps = per_core * cores * HEADROOM_CPU_FRACTION
        out.replicas = math.ceil(target / out.replica_rps - 1e-9)
    if cpu_mean_pct < LOW_CPU_PCT:
        out.caveats.append(f"the service used {cpu_mean_pct:.1f} % of a core: below {LOW_CPU_PCT:g} % the "
                           "CPU cost per request is coarse, and another limit (pool, database) may come first")
    return out


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
    host = run.resources.filter((pl.col("role") == "host") & pl.col("cpu_pct").is_not_null()
                                & pl.col("t_s").is_between(lo, hi))["cpu_pct"].to_numpy()
    out = estimate(rps, float(service.mean()) if service.size else None,
                   cpu_p50_pct=float(np.median(service)) if service.size else None, cores=run.cpu_count,
                   target_rps=target_rps, dropped_iterations=dropped,
                   host_cpu_p50_pct=float(np.median(host)) if host.size else None)
    out.dropped_iterations = dropped
    out.rate_source = ("k6 requests in the steady window / its length" if window
                       else "k6 requests over the whole run")
    return out
