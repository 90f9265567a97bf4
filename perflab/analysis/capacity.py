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
drive; :func:`run_capacity` reads a run's numbers from the store over its steady window.
"""

from __future__ import annotations

import json
import math
from typing import Any

from perflab.store import Store

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


def estimate(rps: float | None, cpu_mean_pct: float | None, *, cpu_p50_pct: float | None = None,
             cores: int | None = None, target_rps: float | None = None, dropped_iterations: float = 0,
             host_cpu_p50_pct: float | None = None) -> dict[str, Any]:
    """The capacity answer for a measured rate and the service's CPU (% of one core).

    Returns ``{"rps", "cpu_mean_pct", "rps_per_core", "cores", "replica_rps",
    "target_rps", "replicas", "cores_needed", "headroom", "saturated",
    "saturation_reasons", "upper_bound", "caveats", "reason"}``; ``reason`` is None
    when the estimate was made, else why not (and the derived numbers are None).
    """
    out: dict[str, Any] = {
        "rps": rps, "cpu_mean_pct": cpu_mean_pct, "cpu_p50_pct": cpu_p50_pct, "cores": cores,
        "headroom": HEADROOM_CPU_FRACTION, "rps_per_core": None, "replica_rps": None,
        "target_rps": None, "replicas": None, "cores_needed": None, "saturated": False,
        "saturation_reasons": [], "upper_bound": False, "caveats": [], "reason": None,
    }
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
    out.update(saturated=bool(reasons), saturation_reasons=reasons, upper_bound=bool(reasons))

    if rps is None or not math.isfinite(rps) or rps <= 0:
        out["reason"] = "no request rate (no k6 requests in the steady window)"
        return out
    if cpu_mean_pct is None or not math.isfinite(cpu_mean_pct) or cpu_mean_pct <= 0:
        out["reason"] = "no service CPU samples in the steady window (resource samples of role service)"
        return out
    per_core = rps / (cpu_mean_pct / 100.0)
    target = target_rps if target_rps is not None else DEFAULT_TARGET_MULTIPLIER * rps
    if target <= 0:
        raise ValueError("target_rps must be positive")
    out.update(rps_per_core=per_core, target_rps=target,
               cores_needed=target / (per_core * HEADROOM_CPU_FRACTION))
    if cores:
        replica = per_core * cores * HEADROOM_CPU_FRACTION
        out.update(replica_rps=replica, replicas=math.ceil(target / replica - 1e-9))
    if cpu_mean_pct < LOW_CPU_PCT:
        out["caveats"].append(f"the service used {cpu_mean_pct:.1f} % of a core: below {LOW_CPU_PCT:g} % the "
                              "CPU cost per request is coarse, and another limit (pool, database) may come first")
    return out


def run_capacity(store: Store, run_id: str, window: dict[str, Any] | None,
                 target_rps: float | None = None) -> dict[str, Any]:
    """:func:`estimate` for a run: the k6 request rate and the service's CPU over the
    steady window (``window`` from perflab.analysis.alerts.steady_window), the machine's
    core count from the sampler's header or the manifest, and k6's dropped iterations."""
    lo, hi = (window["start_s"], window["end_s"]) if window else (-math.inf, math.inf)
    span = (hi - lo) if window else None
    from perflab.analysis.runs import k6_source

    sid = k6_source(store, run_id)
    rps = None
    dropped = 0.0
    if sid is not None:
        n, whole = store.con.execute(
            """SELECT coalesce(sum(value) FILTER (WHERE metric = 'http_reqs'), 0), (max(time_ns) - min(time_ns)) / 1e9
               FROM k6_points WHERE source_id = ? AND time_ns / 1e9 BETWEEN ? AND ?""",
            [sid, lo, hi]).fetchall()[0]
        duration = span if span else whole
        rps = float(n) / duration if duration else None
        # Dropped iterations of the whole test: k6 also drops at the end, when it stops
        # waiting for the last responses, and those say the same about the service.
        dropped = float(store.con.execute(
            "SELECT coalesce(sum(value), 0) FROM k6_points WHERE source_id = ? AND metric = 'dropped_iterations'",
            [sid]).fetchall()[0][0])
    cpu = store.con.execute(
        """SELECT avg(cpu_pct) FILTER (WHERE role = 'service'), median(cpu_pct) FILTER (WHERE role = 'service'),
                  median(cpu_pct) FILTER (WHERE role = 'host')
           FROM resource_samples WHERE run_id = ? AND cpu_pct IS NOT NULL
             AND epoch_us(t) / 1e6 BETWEEN ? AND ?""",
        [run_id, lo, hi]).fetchall()[0]
    out = estimate(rps, cpu[0], cpu_p50_pct=cpu[1], cores=machine_cores(store, run_id), target_rps=target_rps,
                   dropped_iterations=dropped, host_cpu_p50_pct=cpu[2])
    out["dropped_iterations"] = dropped
    out["rate_source"] = ("k6 requests in the steady window / its length" if window
                          else "k6 requests over the whole run")
    return out


def machine_cores(store: Store, run_id: str) -> int | None:
    """The cores of the machine the run was measured on: the resource sampler's header
    (sources.meta cpu_count), else the manifest's host.cpu_count; None if neither says."""
    rows = store.con.execute(
        "SELECT json_extract(meta, '$.cpu_count') FROM sources WHERE run_id = ? AND kind = 'resources' "
        "AND json_extract(meta, '$.cpu_count') IS NOT NULL ORDER BY source_id LIMIT 1", [run_id]).fetchall()
    if rows and rows[0][0] is not None:
        return int(json.loads(rows[0][0]))
    man = store.con.execute("SELECT manifest FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if man and man[0][0]:
        cores = (json.loads(man[0][0]).get("host") or {}).get("cpu_count")
        if cores:
            return int(cores)
    return None
