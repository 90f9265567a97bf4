"""false-idle: is the service slow while its CPU idles, because requests wait for connections?

The IO-bound picture: the offered load exceeds what a few connections, each held for
a while (a COMMIT per record, a sleep inside a transaction), can serve, so requests
queue for the pool. Nothing burns CPU; everything waits::

    CPU %     ▁▁▂▁▁▂▁▁▁▂▁▁▁▂▁▁     low: 8–12 % of a core
    p95       ▁▃▅▆▇▇▇▇▇▇▇▇▇▇▇▇     seconds
    waiting   ▁▄▆▇▇▇▇█▇▇▇█▇▇▇▇     tens of requests in the pool checkout

Present when all three hold in the steady window: p95 ≥ P95_MIN_MS, the median number of
tasks waiting for a connection ≥ WAITING_MIN, and the service's CPU p50 ≤ CPU_MAX_PCT.
Waiting comes from the service's pool_waiting or pool_wait_seconds roles or, for a
Go service, from a block profile taken over a known duration (the delay of goroutines
in a pool's acquire ÷ the duration = how many waited on average). The CPU comes from
the resource samples or, without them, from the CPU profile's own CPU ÷ duration.
"""

from __future__ import annotations

import polars as pl

from perflab.analysis.rundata import RunData
from perflab.analysis.signatures import _frames
from perflab.analysis.signatures._measure import (
    Evidence,
    Finding,
    at_least,
    at_most,
    decided,
    finding,
    latency,
    missing_recommendation,
    quantile,
    role_increase,
    role_levels,
    role_p50,
    role_used,
    service_cpu,
)
from perflab.analysis.steady import Window

NAME = "false-idle"
SUMMARY = "IO-bound: low CPU, high latency, many requests waiting for a database connection"

# Half a core: the false-idle service measured 8–12 % and the healthy mix 35 %, while a
# CPU-bound service runs at 80–200 %; a service below half a core is not short of CPU.
CPU_MAX_PCT = 50.0
# The healthy mix's p95 is 33–38 ms and the fixed variants' 1–6 ms; the false idle runs
# measured 0.8–3.2 s. 500 ms is over ten times the healthy p95 and what a user calls slow.
P95_MIN_MS = 500.0
# Median requests inside a pool checkout: 19–66 in the false-idle runs, 0 in the healthy and
# fixed ones. A few waiters are a pool at its edge for a moment; five most of the time is a queue.
WAITING_MIN = 5.0

# How an insufficient-data verdict says to get the data.
HOW_TO_COLLECT = ("`perflab run` collects it all; for your own service, ingest with --run a k6 NDJSON, the "
                  "service's CPU (or a CPU profile over a known duration) and a block profile taken over a "
                  "known duration (Go: /debug/pprof/block?seconds=30)")

KEY_EVIDENCE = ("service_cpu_p50", "service_cpu_mean", "service_cpu_from_profile_pct", "p95_ms",
                "requests", "pool_waiting_p50", "pool_waiting_from_wait_seconds", "waiting_from_block_profile",
                "in_flight_p50", "pg_idle_in_transaction_p50")

RECOMMENDATION = ("batch writes (buffer + COPY / multi-row INSERT) or size the pool to the offered load; "
                  "the CPU is idle, the time is spent waiting for connections")


def waiting_tasks(data: RunData, window: Window | None, ev: Evidence) -> float | None:
    """Tasks waiting for a database connection: the pool_waiting gauge's median, else the mean
    waiters from the pool_wait_seconds counter (Little's law: the rate of total time waited is
    the mean number waiting), else the pool-acquire delay of a block profile over its duration."""
    waiting = role_p50(data, window, "pool_waiting", ev)
    if waiting is not None:
        return waiting
    waited = role_increase(data, window, "pool_wait_seconds")
    if waited is not None and waited[1] > 0:
        mean_waiters = waited[0] / waited[1]
        ev.add(pool_waiting_from_wait_seconds=mean_waiters)
        ev.use(role_used(data, "pool_wait_seconds", f"{waited[0]:.1f} s waited over {waited[1]:.1f} s: the mean "
                                                     "number of waiters (Little's law)"))
        return mean_waiters
    for prof in data.profiles:
        if prof.kind == "contention" and prof.stacks is not None and prof.duration_s and prof.unit == "nanoseconds":
            pool_ns = _frames.pool_wait_value(prof.stacks)
            avg = pool_ns / 1e9 / prof.duration_s
            ev.add(waiting_from_block_profile=avg)
            ev.use(f"block profile {prof.name}: pool-acquire delay / duration")
            return avg
    return None


def judge(data: RunData, window: Window | None) -> Finding:
    ev = Evidence(window)
    p95 = latency(data, window, ev)
    waiting = waiting_tasks(data, window, ev)
    cpu = service_cpu(data, window, ev)
    _context(data, window, ev)
    # Waiting and an idle CPU are what false idle is; latency alone cannot rule it out.
    cond = decided(at_least(p95, P95_MIN_MS), at_least(waiting, WAITING_MIN), at_most(cpu, CPU_MAX_PCT))
    if cond is True:
        how = "median" if "pool_waiting_p50" in ev.values else "mean"
        rec = (f"{waiting:.0f} requests wait for a database connection ({how}) while the service uses "
               f"{cpu:.0f} % of a core and p95 is {p95:.0f} ms: " + RECOMMENDATION)
    elif cond is None:
        rec = missing_recommendation(ev, HOW_TO_COLLECT)
    else:
        rec = None
    return finding(NAME, cond, ev, rec)


def _context(data: RunData, window: Window | None, ev: Evidence) -> None:
    """Numbers that explain the picture without deciding it."""
    in_flight = role_levels(data, window, "in_flight")
    if in_flight is not None and in_flight.len():
        ev.add(in_flight_p50=quantile(in_flight, 0.5))
    if window is not None and data.pg_activity.height:
        # Connections held open in a transaction while the app does something else (a sleep,
        # a remote call): the database side of "the time is spent waiting".
        act = window.filter(data.pg_activity)
        per_sample = act.group_by("sample_no").agg(
            ((pl.col("state") == "idle in transaction") & ~pl.col("sampler")).sum().alias("n"))
        if per_sample.height:
            ev.add(pg_idle_in_transaction_p50=float(per_sample["n"].median()))  # type: ignore[arg-type]
