"""pool-saturation: is every connection of the pool checked out most of the time, with requests waiting?

    capacity  ─────────────────────────────── pool_size + max_overflow (2 in false idle)
    checked   ▇███████████████████████████▇   at capacity in most samples
    waiting   ▂▅▇▇▇▇██▇▇▇▇▇█▇▇▇▇▇▇▇▇▇▇▇▇▇▇▇   tasks inside the checkout

Present when, in the steady window, the pool is at capacity in at least FULL_FRACTION_MIN
of the samples and the median number of waiting tasks is ≥ WAITERS_MIN. Capacity is
gauges.pool_size plus settings.pool_max_overflow when the service publishes it (a
SQLAlchemy QueuePool opens that many extra connections before anyone waits), else the
pool size. Needs the service's pool gauges: a k6 file or a profile cannot show them.
"""

from __future__ import annotations

import polars as pl

from perflab.analysis.rundata import RunData
from perflab.analysis.signatures._measure import (
    MIN_SAMPLES,
    Evidence,
    Finding,
    all_of,
    at_least,
    finding,
    gauge_p50,
    last_value,
    missing_recommendation,
)
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
HOW_TO_COLLECT = ("needs the pool's gauges (checked-out connections, pool size, waiting tasks) sampled during "
                  "the load, as `perflab run` reads them from the service's /debug/vars")

KEY_EVIDENCE = ("pool_capacity", "pool_checked_out_p50", "pool_full_fraction", "db_waiting_tasks_p50")


def judge(data: RunData, window: Window | None) -> Finding:
    ev = Evidence(window)
    full = _full_fraction(data, window, ev)
    waiting = gauge_p50(data, window, "gauges.db_waiting_tasks", ev, "db_waiting_tasks")
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
    rows = window.filter(data.vars.filter(pl.col("key").is_in(["gauges.pool_checked_out", "gauges.pool_size"])))
    wide = rows.pivot(on="key", index="t_s", values="value", aggregate_function="first") if rows.height else rows
    if not {"gauges.pool_checked_out", "gauges.pool_size"} <= set(wide.columns):
        ev.miss("the service's /debug/vars gauges.pool_checked_out and gauges.pool_size")
        return None
    wide = wide.drop_nulls()
    if wide.height < MIN_SAMPLES:
        ev.miss(f"at least {MIN_SAMPLES} pool samples in the steady window (have {wide.height})")
        return None
    overflow = last_value(data, "settings.pool_max_overflow")
    extra = pl.lit(max(overflow, 0.0) if overflow is not None else 0.0)
    capacity = pl.col("gauges.pool_size") + extra
    full = float(wide.select((pl.col("gauges.pool_checked_out") >= capacity).mean()).item())
    ev.add(pool_capacity=float(wide.select(capacity.median()).item()),
           pool_checked_out_p50=float(wide["gauges.pool_checked_out"].median()),  # type: ignore[arg-type]
           pool_full_fraction=full)
    if overflow is None:
        ev.caveat("the pool's max overflow is unknown: capacity is the pool size")
    ev.use(f"/debug/vars gauges.pool_checked_out / pool_size ({wide.height} samples)")
    return full
