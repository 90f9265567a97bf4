"""pool-saturation: is every connection of the pool checked out most of the time, with requests waiting?

    capacity  ─────────────────────────────── pool_size + max_overflow (2 in false idle)
    checked   ▇███████████████████████████▇   at capacity in most samples
    waiting   ▂▅▇▇▇▇██▇▇▇▇▇█▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇   tasks inside the checkout

Present when, in the steady window, the pool is at capacity in at least FULL_FRACTION_MIN
of the samples and the median number of waiting tasks is ≥ WAITERS_MIN. Capacity is the
pool_size role (the most connections the pool opens: database/sql's MaxOpenConnections,
OpenTelemetry's db.client.connections.max), in use the pool_in_use role, read at the same
instants; waiting the pool_waiting role, else the mean waiters from pool_wait_seconds
(Little's law). Needs the service's pool metrics: a k6 file or a profile cannot show them.
"""

from __future__ import annotations

import polars as pl

from perflab.analysis.roles import gauge_levels
from perflab.analysis.rundata import RunData
from perflab.analysis.signatures._measure import (
    MIN_SAMPLES,
    Evidence,
    Finding,
    all_of,
    at_least,
    finding,
    missing_recommendation,
    quantile,
    role_missing,
    role_used,
)
from perflab.analysis.signatures.false_idle import waiting_tasks
from perflab.analysis.steady import Window

NAME = "pool-saturation"
SUMMARY = "the connection pool is at capacity most of the steady state, with requests waiting"

# "Most of the steady state": more than half of the samples. The false-idle pool (2
# connections) was full in nearly all of them; healthy pools of 10 never were.
FULL_FRACTION_MIN = 0.5
# At least one task waiting at the median sample: a full pool with nobody waiting is a
# pool sized exactly right.
WAITERS_MIN = 1.0

# How an insufficient-data verdict says to get the data.
HOW_TO_COLLECT = ("needs the pool's metrics (connections in use, pool size, waiting tasks or total wait time: "
                  "go_sql_* from client_golang's DBStats collector, OpenTelemetry's db_client_connections_*, or "
                  "any gauge mapped with --role pool_in_use=METRIC) sampled during the load")

KEY_EVIDENCE = ("pool_capacity", "pool_in_use_p50", "pool_full_fraction", "pool_waiting_p50",
                "pool_waiting_from_wait_seconds")


def judge(data: RunData, window: Window | None) -> Finding:
    ev = Evidence(window)
    full = _full_fraction(data, window, ev)
    waiting = waiting_tasks(data, window, ev)
    cond = all_of(at_least(full, FULL_FRACTION_MIN), at_least(waiting, WAITERS_MIN))
    if cond is True:
        cap = ev.values["pool_capacity"]
        rec = (f"all {cap:.0f} connections are checked out in {full:.0%} of the steady state and "
               f"{waiting:.0f} requests wait (median): size the pool to the offered load (connections ≈ "
               "requests/s × seconds each request holds one, Little's law) within the database's "
               "max_connections, hold connections for less time (no waits inside a transaction), or batch writes")
    elif cond is None:
        rec = missing_recommendation(ev, HOW_TO_COLLECT)
    else:
        rec = None
    return finding(NAME, cond, ev, rec)


def _full_fraction(data: RunData, window: Window | None, ev: Evidence) -> float | None:
    if window is None:
        ev.miss("a timeline for the steady window")
        return None
    in_use = window.filter(gauge_levels(data.signals, "pool_in_use"))
    size = window.filter(gauge_levels(data.signals, "pool_size"))
    for role, rows in (("pool_in_use", in_use), ("pool_size", size)):
        if rows.is_empty():
            ev.miss(role_missing(data, role))
    if in_use.is_empty() or size.is_empty():
        return None
    # Both gauges come from one scrape, so they share the instant.
    wide = in_use.join(size.rename({"value": "size"}), on="t_s", how="inner").drop_nulls()
    if wide.height < MIN_SAMPLES:
        ev.miss(f"at least {MIN_SAMPLES} pool samples in the steady window (have {wide.height})")
        return None
    full = float(wide.select((pl.col("value") >= pl.col("size")).mean()).item())
    ev.add(pool_capacity=quantile(wide["size"], 0.5), pool_in_use_p50=quantile(wide["value"], 0.5),
           pool_full_fraction=full)
    ev.use(role_used(data, "pool_in_use", f"{wide.height} samples") + " / " + role_used(data, "pool_size", "same"))
    return full
