"""loadgen-saturated: was k6 itself the bottleneck, so that the run cannot be trusted?

A CPU-bound load generator measures its own queueing: latencies grow, arrivals slip,
iterations are dropped, and none of it is the target's fault. Dropped iterations alone
do not prove it: when the *target* is slow, every VU waits on a response, k6 runs out
of VUs (maxVUs reached) and drops the arrivals it cannot start, while k6 idles::

                      k6 CPU          dropped   VUs        verdict
    k6 saturated      ≥ 90 % core     > 0       any        present: the run is untrustworthy
    target too slow   ≤ 4 % core      33–40     all busy   absent, with a caveat: p95 leaves
                                                           the dropped iterations out
    healthy           ~4 % core       0         idle       absent

Present when k6's CPU p50 in the steady window is ≥ K6_CPU_MAX_PCT. Without k6 CPU
samples the verdict is insufficient-data, and dropped iterations (if any) are reported
with what the VUs did. A machine whose cores were all busy (_measure.HOST_BUSY_FRACTION)
is reported as a caveat: k6 then shares the CPU with the target.
"""

from __future__ import annotations

import polars as pl

from perflab.analysis.rundata import RunData
from perflab.analysis.signatures._measure import (
    Evidence,
    Finding,
    Tri,
    at_least,
    finding,
    host_saturated,
    missing_recommendation,
    process_cpu,
)
from perflab.analysis.steady import Window

NAME = "loadgen-saturated"
SUMMARY = "k6 itself CPU-bound (or dropping iterations): the run's numbers measure the load generator"

# 90 % of one core: with no headroom left, k6's own scheduling and metric processing
# queue behind the VUs' JavaScript, so its timings and its arrival schedule slip. The
# lab's k6 used 1–6 % (mean) in every scenario, the login storm included.
K6_CPU_MAX_PCT = 90.0
# Nine in ten allocated VUs busy when k6 dropped an arrival: the VUs were waiting on the
# target; k6 allocates more up to maxVUs and drops the arrivals it cannot start (the login
# storm: 41 of 43, the false idle 32 of 34; healthy 1 of 40). Judged at the drops, not at
# the run's peak: k6's `vus` gauge is read once a second while VUs finish and restart, so
# the peak reading can miss a moment at which all were busy (a CI run: 18 drops during the
# VU ramp, every one with ≥ 0.9 busy, yet max(vus) < 0.9 × max(vus_max)), and at the busier
# of the two readings around each drop (busy_share_at_drops).
VUS_BUSY_FRACTION = 0.9

# How an insufficient-data verdict says to get the data.
HOW_TO_COLLECT = ("needs k6's own CPU during the run: `perflab run` samples it; elsewhere record k6's CPU "
                  "(pidstat, top) beside its output")

KEY_EVIDENCE = ("k6_cpu_p50", "k6_cpu_mean", "dropped_iterations", "dropped_iterations_in_window",
                "vus_peak", "vus_max", "vus_busy", "vus_busy_share_at_drops", "host_cpu_p50")


def dropped(data: RunData, window: Window | None, ev: Evidence) -> float | None:
    if data.requests.is_empty() and data.k6.is_empty():
        ev.miss("k6 samples (dropped_iterations, vus)")
        return None
    d = data.k6.filter(pl.col("metric") == "dropped_iterations")
    total = float(d["value"].sum())
    ev.add(dropped_iterations=total)
    if window is not None:
        ev.add(dropped_iterations_in_window=float(window.filter(d)["value"].sum()))
    vus = data.k6.filter(pl.col("metric") == "vus")["value"]
    vus_max = data.k6.filter(pl.col("metric") == "vus_max")["value"]
    if vus.len() and vus_max.len():
        peak, cap = float(vus.max()), float(vus_max.max())  # type: ignore[arg-type]
        ev.add(vus_peak=peak, vus_max=cap)
        at_drops = busy_share_at_drops(data.k6, d)
        if at_drops is None:
            ev.add(vus_busy=cap > 0 and peak >= VUS_BUSY_FRACTION * cap)
        else:
            ev.add(vus_busy_share_at_drops=round(at_drops, 3), vus_busy=at_drops >= VUS_BUSY_FRACTION)
    ev.use("k6 dropped_iterations and vus")
    return total


def busy_share_at_drops(k6: pl.DataFrame, drops: pl.DataFrame) -> float | None:
    """Median, over the dropped iterations, of vus / vus_max at the busier of k6's two readings
    around each drop (the last before it and the first after it).

    k6 emits `vus` and `vus_max` together once a second; an arrival-rate executor drops an
    iteration when no allocated VU is free, so a slow target shows ≈ 1 here, while a k6 too
    busy to hand out its idle VUs shows well below. Both neighbours count because a reading
    a second away can catch VUs between iterations (a CI login storm read 21 of 29 busy just
    before drops whose next reading was 28 of 29; the median over the readings before alone
    fell under VUS_BUSY_FRACTION).
    """
    gauges = (k6.filter(pl.col("metric").is_in(["vus", "vus_max"]))
              .pivot(on="metric", index="t_s", values="value", aggregate_function="last")
              .drop_nulls().filter(pl.col("vus_max") > 0).sort("t_s"))
    if drops.is_empty() or gauges.is_empty():
        return None
    gauges = gauges.select("t_s", share=pl.col("vus") / pl.col("vus_max"))
    at = drops.select("t_s").sort("t_s")
    shares = (at.join_asof(gauges, on="t_s", strategy="backward")
              .join_asof(gauges, on="t_s", strategy="forward", suffix="_after")
              .select(pl.max_horizontal("share", "share_after")).drop_nulls()).to_series()
    return float(shares.median()) if shares.len() else None  # type: ignore[arg-type]


def judge(data: RunData, window: Window | None) -> Finding:
    ev = Evidence(window)
    n_dropped = dropped(data, window, ev)
    k6_cpu = process_cpu(data, window, "k6", ev, "k6_cpu")
    host = process_cpu(data, window, "host", ev, "host_cpu")
    if host is None:
        ev.missing = [m for m in ev.missing if "host" not in m]  # context only
    elif host_saturated(data, window) is not None:
        ev.caveat(f"the machine was saturated (host CPU p50 {host:.0f} % of {data.cpu_count} cores): "
                  "k6 shared the CPU with the target")
    cond: Tri = at_least(k6_cpu, K6_CPU_MAX_PCT)
    busy = ev.values.get("vus_busy")
    if n_dropped:
        why = ("every VU was busy waiting on a slow target, so k6 could not start them"
               if busy else "k6 could not start them on time")
        ev.caveat(f"{n_dropped:.0f} iterations were dropped: {why}; latency percentiles leave them out")
    rec: str | None
    if cond is True:
        rec = (f"k6 used {k6_cpu:.0f} % of a core: the load generator is the bottleneck and the run cannot "
               "be trusted. Give k6 its own CPU (another machine, or split the test with "
               "--execution-segment), do less per iteration (fewer checks, no large JSON parsing), or lower the rate")
    elif cond is False:
        rec = (f"k6 is not the bottleneck, but {n_dropped:.0f} iterations were dropped"
               + (" because the target was too slow and every VU was busy" if busy else "")
               + ": report them beside p95, or raise maxVUs to measure the full latency") if n_dropped else None
    else:
        rec = missing_recommendation(ev, HOW_TO_COLLECT)
    return finding(NAME, cond, ev, rec)
