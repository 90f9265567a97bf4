"""lock-contention: do requests spend their waiting time on locks (or on a pool, the lock of connections)?

Three places show it, each judged when present; the signature is present if any shows
it, absent if those present do not, insufficient-data without any:

1. A Go block or mutex profile (sample types contentions/count, delay/nanoseconds):
   the delay of stacks waiting on a mutex or in a pool's acquire, as a share of all
   blocked time, and in seconds (perflab.analysis.signatures._frames tells them apart
   from channel receives, selects and wait groups, which are waiting for work)::

       blocked time  ████████████ downstream call (select)     45 %
                     ████████     dbPool.acquire (pool)         33 %  ┐ lock + pool
                     ████         WaitGroup.Wait (fan-out)      16 %  │ ≥ LOCK_WAIT_SHARE_MIN
                     ▏            RWMutex.RLock (lock)         0.1 %  ┘ and ≥ LOCK_DELAY_MIN_S

2. The service's gauges: requests waiting for a connection as a share of requests in
   flight (median) ≥ POOL_WAIT_SHARE_MIN: the pool, not the work, paces the service.
3. pg_stat_activity samples: the share of working client backends (active or idle in
   transaction) waiting on a heavyweight lock (wait_event_type Lock) ≥ PG_LOCK_SHARE_MIN.
"""

from __future__ import annotations

import polars as pl

from perflab.analysis.rundata import RunData
from perflab.analysis.signatures import _frames
from perflab.analysis.signatures._measure import (
    MIN_SAMPLES,
    Evidence,
    Finding,
    Tri,
    any_of,
    finding,
    missing_recommendation,
    quantile,
    role_levels,
    role_missing,
    role_used,
)
from perflab.analysis.steady import Window

NAME = "lock-contention"
SUMMARY = "waiting time dominated by locks or pool checkouts (block/mutex profiles, pool gauges, pg locks)"

# A quarter of all blocked time on locks and pool checkouts: below that, removing the
# contention entirely would shorten waits by less than a load test's run-to-run noise.
# The fixture's false-idle block profile: 33 % in dbPool.acquire.
LOCK_WAIT_SHARE_MIN = 0.25
# Block and mutex profiles are often cumulative since the process started (no duration):
# under a second of lock waiting in all of it cannot be a bottleneck of a load test.
LOCK_DELAY_MIN_S = 1.0
# More than half of the in-flight requests inside a pool checkout: false idle measured
# ~0.9 (19 of 21), the healthy and fixed runs 0.
POOL_WAIT_SHARE_MIN = 0.5
# A fifth of the working backends waiting on row or table locks: transactions serialise
# on hot rows. The lab's runs measured 0.
PG_LOCK_SHARE_MIN = 0.2

# How an insufficient-data verdict says to get the data.
HOW_TO_COLLECT = ("ingest a block or mutex profile (Go: runtime.SetBlockProfileRate / SetMutexProfileFraction, "
                  "then /debug/pprof/block?seconds=30), pg_stat_activity samples taken during the load, or "
                  "run it in the lab with `perflab run`")

KEY_EVIDENCE = ("profile_lock_wait_share", "profile_lock_wait_s", "top_lock_site", "top_pool_wait_site",
                "pool_wait_share", "pool_waiting_p50", "in_flight_p50", "pg_lock_wait_share")


def from_profiles(data: RunData, ev: Evidence) -> tuple[Tri, str | None]:
    profs = [p for p in data.profiles if p.kind == "contention" and p.stacks is not None]
    if not profs:
        ev.miss("a block or mutex profile (contentions/delay)")
        return None, None
    tot = {"total": 0.0, "lock": 0.0, "pool": 0.0}
    ns = all(p.unit == "nanoseconds" for p in profs)
    sites: list[tuple[float, str, str]] = []
    for p in profs:
        assert p.stacks is not None
        s = _frames.shares(p.stacks)
        for k in tot:
            tot[k] += s[k]
        for what in ("lock", "pool"):
            top = _frames.top_site(p.stacks, what)
            if top is not None:
                sites.append((top[1], what, top[0]))
        ev.use(f"contention profile {p.name} (source {p.source_id}, {p.sample_type})")
    if tot["total"] <= 0:
        ev.miss("a contention profile with any blocked time")
        return None, None
    share = (tot["lock"] + tot["pool"]) / tot["total"]
    ev.add(profile_lock_share=tot["lock"] / tot["total"], profile_pool_wait_share=tot["pool"] / tot["total"],
           profile_lock_wait_share=share)
    for what in ("lock", "pool"):
        best = max((s for s in sites if s[1] == what), default=None)
        if best is not None:
            ev.add(**{f"top_{what}_site" if what == "lock" else "top_pool_wait_site": best[2]})
    if ns:
        seconds = (tot["lock"] + tot["pool"]) / 1e9
        ev.add(profile_lock_wait_s=seconds)
        present = share >= LOCK_WAIT_SHARE_MIN and seconds >= LOCK_DELAY_MIN_S
    else:
        present = share >= LOCK_WAIT_SHARE_MIN
    top_site = max(sites)[2] if sites else None
    return present, top_site


def from_pool_gauges(data: RunData, window: Window | None, ev: Evidence) -> Tri:
    waiting = role_levels(data, window, "pool_waiting")
    in_flight = role_levels(data, window, "in_flight")
    if waiting is None or in_flight is None:
        for role, got in (("pool_waiting", waiting), ("in_flight", in_flight)):
            if got is None:
                ev.miss(role_missing(data, role))
        return None
    if min(waiting.len(), in_flight.len()) < MIN_SAMPLES:
        ev.miss(f"at least {MIN_SAMPLES} pool-wait samples in the steady window")
        return None
    w, f = quantile(waiting, 0.5), quantile(in_flight, 0.5)
    assert w is not None and f is not None
    share = w / f if f > 0 else 0.0
    ev.add(pool_waiting_p50=w, in_flight_p50=f, pool_wait_share=share)
    ev.use(role_used(data, "pool_waiting", "median") + " / " + role_used(data, "in_flight", "median"))
    return share >= POOL_WAIT_SHARE_MIN


def from_pg_activity(data: RunData, window: Window | None, ev: Evidence) -> Tri:
    if data.pg_activity.is_empty() or window is None:
        ev.miss("pg_stat_activity samples")
        return None
    working = window.filter(data.pg_activity).filter(
        ~pl.col("sampler") & pl.col("state").is_in(["active", "idle in transaction"]))
    samples = window.filter(data.pg_activity)["sample_no"].n_unique()
    if samples < MIN_SAMPLES:
        ev.miss(f"at least {MIN_SAMPLES} pg_stat_activity samples in the steady window (have {samples})")
        return None
    ev.use(f"pg_stat_activity ({samples} samples)")
    if working.is_empty():
        ev.add(pg_lock_wait_share=0.0)
        return False
    share = float(working.select((pl.col("wait_event_type") == "Lock").fill_null(False).mean()).item())
    ev.add(pg_lock_wait_share=share)
    return share >= PG_LOCK_SHARE_MIN


def judge(data: RunData, window: Window | None) -> Finding:
    ev = Evidence(window)
    prof, site = from_profiles(data, ev)
    pool = from_pool_gauges(data, window, ev)
    pg = from_pg_activity(data, window, ev)
    cond = any_of(prof, pool, pg)
    if cond is True:
        parts = []
        if prof:
            parts.append(f"{ev.values['profile_lock_wait_share']:.0%} of blocked time is on locks and pool "
                         f"checkouts (most at {site}): shorten or split the critical section (shard the lock, "
                         "copy-on-write, per-request state), or size the pool to the load")
        if pool:
            parts.append(f"{ev.values['pool_wait_share']:.0%} of in-flight requests wait for a connection: the "
                         "pool is the lock; size it to the offered load or hold connections for less time")
        if pg:
            parts.append(f"{ev.values['pg_lock_wait_share']:.0%} of working backends wait on row/table locks: "
                         "shorten transactions, update hot rows less often (batch counters), take rows in one "
                         "order, or use SKIP LOCKED for queues")
        rec = "; ".join(parts)
    elif cond is None:
        rec = missing_recommendation(ev, HOW_TO_COLLECT)
    else:
        rec = None
    return finding(NAME, cond, ev, rec)
