"""Strengths and areas for improvement of a run, each from a measured number and a named threshold.

    rule                                   strength when                 area when
    failed requests (k6 http_req_failed)   error rate 0                  above 0 (says whether above the alert)
    p95 latency                            ≤ the HighAPILatency alert    above it
    dropped iterations                     none                          any (latency figures are optimistic)
    checks                                 all passed                    any failed
    CPU headroom (capacity)                p95 within HEADROOM of cores  above it; "saturated" only when the
                                                                         service's CPU p50 ≥ SATURATION_FRACTION
                                                                         of the cores (capacity)
    limiting resource (capacity)           —                             a pool or database limit below the
                                                                         CPU's, used beyond HEADROOM
    hottest function                       —                             ≥ HOT_FUNCTION_SHARE flat, from a profile
                                                                         of ≥ MIN_SAMPLES_TO_RANK samples
    hot-frame category                     —                             ≥ HOT_CATEGORY_SHARE of the CPU (same)
    alert rules                            none fired                    each that fired
    signatures                             none present, some absent     each present
"""

from __future__ import annotations

from collections.abc import Sequence

from perflab import fmt
from perflab.analysis.alerts import ERROR_RATE_THRESHOLD, P95_THRESHOLD_MS, AlertResult
from perflab.analysis.capacity import CPU, HEADROOM_CPU_FRACTION, Capacity
from perflab.analysis.report_sections import (
    Assessment,
    CpuProfile,
    Item,
    ReportFinding,
    RequestMetrics,
    ResourceUsage,
    Unavailable,
)
from perflab.fmt import ok

# A hot-frame category above a third of the CPU is an area to work on: below that, even
# removing it entirely would speed a CPU-bound service up by less than 1.5× (Amdahl).
HOT_CATEGORY_SHARE = 0.3
# One function with a fifth of the CPU to itself (flat) is a hot spot worth naming.
HOT_FUNCTION_SHARE = 0.2
# A sampled profile ranks functions only from 100 samples (1 s of CPU at pprof's 100 Hz):
# a share's standard error is then at most 5 points (√(¼ ÷ 100)), so a function at
# HOT_FUNCTION_SHARE stands clear of one at half of it. The false-idle service's own
# profile held 2–30 samples (22–63 ms of CPU), where one sample moves a share by 3–50 points.
MIN_SAMPLES_TO_RANK = 100
# A cProfile dump counts calls, not samples: the same 1 s of CPU is its minimum (its
# timer's overhead per call is a larger share of a shorter total).
MIN_CPU_S_TO_RANK = 1.0
# What the resources are called in the report's words.
RESOURCE_WORDS = {"cpu": "the service's CPU", "pool": "the connection pool", "database": "the database's CPU"}


def assess(requests: RequestMetrics | Unavailable, resources: ResourceUsage, cpu: CpuProfile | Unavailable,
           alerts: Sequence[AlertResult], findings: Sequence[ReportFinding], capacity: Capacity) -> Assessment:
    """Strengths and areas, each derived from a measured number by a named threshold (the
    alert thresholds, the capacity headroom, HOT_*_SHARE)."""
    out = Assessment()
    strengths, areas = out.strengths, out.areas
    if isinstance(requests, RequestMetrics):
        o = requests.overall
        rate, n = o.error_rate, o.requests
        if ok(rate) and rate == 0:
            strengths.append(Item("No failed requests", f"http_req_failed 0 of {fmt.count(n)} requests"))
        elif ok(rate) and rate is not None:
            fired = rate > ERROR_RATE_THRESHOLD
            areas.append(Item("Failed requests", f"error rate {fmt.percent(rate)} ({fmt.count(o.failed)} of "
                              f"{fmt.count(n)}), {'above' if fired else 'below'} the "
                              f"{ERROR_RATE_THRESHOLD:.0%} alert threshold"))
        p95 = o.p95_ms
        if ok(p95) and p95 is not None and p95 <= P95_THRESHOLD_MS:
            strengths.append(Item("Latency within the alert threshold",
                                  f"p95 {fmt.ms(p95)} ≤ {P95_THRESHOLD_MS:g} ms (p99 {fmt.ms(o.p99_ms)})"))
        elif ok(p95):
            areas.append(Item("Latency over the alert threshold",
                              f"p95 {fmt.ms(p95)} > {P95_THRESHOLD_MS:g} ms (max {fmt.ms(o.max_ms)})"))
        dropped = requests.dropped_iterations
        if dropped:
            areas.append(Item("k6 could not keep the offered rate",
                              f"{fmt.count(dropped)} dropped iterations: those requests are missing from "
                              "the latency figures, which are therefore optimistic"))
        else:
            strengths.append(Item("The offered rate was kept", "0 dropped iterations"))
        fails, passes = requests.checks_fails, requests.checks_passes
        if ok(fails) and fails:
            failing = [c.check for c in requests.checks if c.fails]
            areas.append(Item("Failed checks", f"{fmt.count(fails)} of {fmt.count((passes or 0) + fails)} checks "
                              "failed" + (f" ({', '.join(failing[:3])})" if failing else "")))
        elif ok(passes) and passes:
            strengths.append(Item("Every check passed", f"{fmt.count(passes)} checks"))
    service = resources.role("service")
    if capacity.saturated:
        areas.append(Item("The service was saturated", "; ".join(capacity.saturation_reasons)))
    elif capacity.machine_saturated:
        areas.append(Item("The machine's CPU was saturated", "; ".join(capacity.saturation_reasons)))
    elif service and ok(service.cpu_p95) and service.cpu_p95 is not None and capacity.cores:
        ceiling = HEADROOM_CPU_FRACTION * capacity.cores * 100
        if service.cpu_p95 <= ceiling:
            strengths.append(Item("CPU headroom", f"service CPU p95 {fmt.cpu(service.cpu_p95)} of one core, "
                                  f"within the planned {HEADROOM_CPU_FRACTION:.0%} of {capacity.cores} cores "
                                  f"({ceiling:.0f} %)"))
        else:
            areas.append(Item("Little CPU headroom", f"service CPU p95 {fmt.cpu(service.cpu_p95)} is above "
                              f"{HEADROOM_CPU_FRACTION:.0%} of {capacity.cores} cores ({ceiling:.0f} %)"))
    first_limit = capacity.limits[0] if capacity.limits else None
    if (first_limit is not None and first_limit.resource != CPU and first_limit.used >= HEADROOM_CPU_FRACTION):
        cpu_limit = next((lim for lim in capacity.limits if lim.resource == CPU), None)
        areas.append(Item(f"{RESOURCE_WORDS[first_limit.resource].capitalize()} limits the throughput",
                          f"{fmt.number(first_limit.rps)} req/s at most ({first_limit.basis}); the run used "
                          f"{fmt.percent(first_limit.used, digits=0)} of it"
                          + (f", while the CPU would allow {fmt.number(cpu_limit.rps)} req/s" if cpu_limit else "")))
    if isinstance(cpu, CpuProfile) and profile_too_small(cpu) is None:
        prof = cpu
        if prof.flat:
            first = prof.flat[0]
            if first["flat_pct"] / 100 >= HOT_FUNCTION_SHARE:
                areas.append(Item(f"`{first['name']}` is the hottest function",
                                  f"{first['flat_pct']:.2f} % flat CPU ({fmt.profile_value(first['flat'], prof.unit)} "
                                  f"of {fmt.profile_value(prof.total, prof.unit)})"))
        for name, share in sorted(prof.categories.shares.items(), key=lambda kv: (-kv[1], kv[0])):
            if name != "other" and share >= HOT_CATEGORY_SHARE:
                frame = prof.categories.top_frames.get(name)
                areas.append(Item(f"{name.capitalize()} takes {fmt.percent(share, digits=1)} of the CPU",
                                  f"above {HOT_CATEGORY_SHARE:.0%}" + (f"; top frame `{frame}`" if frame else "")))
    measured = [r for r in alerts if r.fired is not None]
    for r in measured:
        if r.fired:
            areas.append(Item(f"Alert {r.rule} fired", f"above the threshold for {fmt.seconds(r.seconds_above)}, "
                              f"peak {alert_value(r, r.peak)}"))
    if measured and not any(r.fired for r in measured):
        strengths.append(Item("No alert rule fired", ", ".join(r.rule for r in measured) + " stayed below "
                              "their thresholds in the steady window"))
    present = [f for f in findings if f.verdict == "present"]
    for f in present:
        areas.append(Item(f"Signature {f.signature} present", f.recommendation or "see the evidence"))
    absent = [f.signature for f in findings if f.verdict == "absent"]
    if findings and not present and absent:
        strengths.append(Item("No bottleneck signature present", f"judged absent: {', '.join(absent)}"))
    return out


def profile_too_small(prof: CpuProfile) -> str | None:
    """Why a CPU profile is too small to rank functions or categories (None: it is not).
    The one rule the report's "hottest function" and hot-category claims follow."""
    cpu = fmt.scaled(prof.cpu_s, "seconds") if prof.cpu_s is not None else "unknown CPU time"
    if prof.samples is not None:
        if prof.samples >= MIN_SAMPLES_TO_RANK:
            return None
        return (f"too small to rank functions: {fmt.count(prof.samples)} samples ({cpu} of CPU), fewer than "
                f"{MIN_SAMPLES_TO_RANK}")
    if prof.cpu_s is not None and prof.cpu_s >= MIN_CPU_S_TO_RANK:
        return None
    return f"too small to rank functions: {cpu} of CPU, less than {MIN_CPU_S_TO_RANK:g} s"


def alert_value(r: AlertResult, v: float | None) -> str:
    """An alert's series value in its unit (a share of the pool or buffer as %, with the depth)."""
    if not ok(v) or v is None:
        return fmt.missing("no samples")
    if r.unit == "ms":
        return fmt.ms(v)
    if r.rule == "BufferSizeHigh" and ok(r.buffer_limit) and r.buffer_limit is not None:
        return f"{fmt.percent(v, digits=1)} ({v * r.buffer_limit:,.0f} of {r.buffer_limit:,.0f})"
    return fmt.percent(v, digits=1)
