"""Judging an optimization: did the metric its hypothesis targets move, beyond noise?

Contract: ``judge(cmp, diag_before) -> Judgment`` and ``expected_impact(cmp, diag_before,
cpu_count) -> str | None``; pure functions of a comparison (perflab.analysis.compare) and
the doctor's diagnosis of the before run.

A fix is aimed at a signature, and a signature is decided by its own evidence; the fix is
judged on that evidence, beside p95 latency and the error rate (what every user sees)::

    signature in the before run   targeted metric(s)                 hypothesised direction
    retry-storm                   downstream calls per request       lower
    false-idle, pool-saturation   waiting tasks p50, latency p95     lower
    login-storm                   service CPU per request, p95       lower
    memory-pressure               service RSS p50                    lower
    anything else, or none        latency p95                        lower

    confirmed       every targeted metric moved the hypothesised way, beyond noise
    not confirmed   a targeted metric stayed within noise, or moved the other way
    inconclusive    a targeted metric has no interval (not measured or not tested)

"Beyond noise" is compare's one rule (the 95 % interval of after − before excludes 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perflab import fmt
from perflab.analysis.alerts import P95_THRESHOLD_MS
from perflab.analysis.compare import Comparison, MetricRow, RunInfo
from perflab.analysis.signatures import Diagnosis

P95 = "latency p95"
ERROR_RATE = "error rate"
CALLS = "downstream calls per request"
CPU = "service CPU per request"
WAITING = "waiting tasks p50"
TARGETS: dict[str, tuple[str, ...]] = {
    "retry-storm": (CALLS,),
    "false-idle": (WAITING, P95),
    "pool-saturation": (WAITING, P95),
    "login-storm": (CPU, P95),
    "memory-pressure": ("service RSS p50",),
}
# What every user of the service sees, judged beside the target whatever the hypothesis.
BESIDE = (P95, ERROR_RATE)
CONFIRMED, NOT_CONFIRMED, INCONCLUSIVE = "confirmed", "not confirmed", "inconclusive"
# A CPU-bound service queues once its CPU nears the cores it has; below 80 % of them the
# queue is short (the doctor's login-storm bar is 80 % of one core for the same reason).
CPU_HEADROOM = 0.8


@dataclass
class Outcome:
    """One metric's change as the judgment reads it: moved (the hypothesised way), against
    (the other way), unchanged (within noise) or untested (no interval; ``why``)."""

    metric: str
    outcome: str
    text: str  # "downstream calls per request 2.62 → 1.10 (-58.0 %), better beyond noise"
    why: str | None = None


@dataclass
class Judgment:
    conclusion: str
    why: str
    targets: list[Outcome]
    beside: list[Outcome]
    unchanged: list[Outcome] = field(default_factory=list)
    also_moved: list[Outcome] = field(default_factory=list)  # beyond noise, not targeted: either way
    signatures: list[str] = field(default_factory=list)


def settings_diff(a: RunInfo, b: RunInfo) -> list[str]:
    """``KEY: before → after`` for every setting that differs between the two manifests."""
    sa, sb = a.settings, b.settings
    out = []
    for key in sorted(set(sa) | set(sb)):
        va, vb = sa.get(key), sb.get(key)
        if va != vb:
            out.append(f"{key}: {'unset' if va is None else va} → {'unset' if vb is None else vb}")
    return out


def describe(row: MetricRow) -> str:
    """``metric a → b (±x %)``, the row's own numbers and unit."""
    if row.a is None or row.b is None:
        return f"{row.metric}: {row.note or 'not measured'}"
    return (f"{row.metric} {fmt.value(row.a, row.unit)} → {fmt.value(row.b, row.unit)} "
            f"({fmt.signed_percent(row.change_pct)})")


def outcome(row: MetricRow) -> Outcome:
    text = describe(row)
    if row.beyond_noise is None:
        return Outcome(row.metric, "untested", text, row.note or "no interval")
    if row.beyond_noise is False:
        return Outcome(row.metric, "unchanged", f"{text}, within noise")
    moved = row.direction == "better" or (row.better is None and row.direction in ("higher", "lower"))
    return Outcome(row.metric, "moved" if moved else "against", f"{text}, {row.direction} beyond noise")


def targets_of(diag: Diagnosis) -> tuple[list[str], list[str]]:
    """(the signatures present in the before run, the metrics their fixes target)."""
    present = [f.signature for f in diag.present]
    metrics = [m for s in present for m in TARGETS.get(s, (P95,))]
    return present, list(dict.fromkeys(metrics or [P95]))


def judge(cmp: Comparison, diag_before: Diagnosis) -> Judgment:
    present, metrics = targets_of(diag_before)
    targets = [outcome(r) for m in metrics if (r := cmp.metric(m)) is not None]
    beside = [outcome(r) for m in BESIDE if m not in metrics and (r := cmp.metric(m)) is not None]
    judged = {o.metric for o in targets + beside}
    others = [outcome(r) for r in cmp.metrics if r.better is not None and r.metric not in judged]
    unchanged = [o for o in others if o.outcome == "unchanged"]
    also_moved = [o for o in others if o.outcome in ("moved", "against")]
    aim = (f"the {' and '.join(present)} hypothesis targets {' and '.join(metrics)}" if present else
           f"the doctor found no signature in the before run, so the change is judged on {P95}")
    against = [o for o in targets if o.outcome in ("against", "unchanged")]
    untested = [o for o in targets if o.outcome == "untested"]
    if against:
        conclusion = NOT_CONFIRMED
        why = f"{aim}; " + "; ".join(o.text for o in against)
    elif untested:
        conclusion = INCONCLUSIVE
        why = f"{aim}; " + "; ".join(f"{o.metric}: {o.why}" for o in untested)
    else:
        conclusion = CONFIRMED
        why = f"{aim}, and {'it' if len(targets) == 1 else 'each'} moved the hypothesised way beyond noise"
    return Judgment(conclusion, why, targets, beside, unchanged, also_moved, present)


# -- expected impact --------------------------------------------------------------------------

def _work_factor(changes: dict[str, tuple[str, str]]) -> tuple[float, str] | None:
    """How many times cheaper one hash gets from a setting change: a cost (bcrypt-style,
    the work doubles per step) or an iteration count (PBKDF2-style, linear)."""
    for key, (a, b) in changes.items():
        if not (a.isdigit() and b.isdigit()) or int(b) >= int(a):
            continue
        if "COST" in key.upper():
            return 2.0 ** (int(a) - int(b)), f"{key} {a} → {b} ({'each step halves the work'})"
        if "ITER" in key.upper() or "ROUNDS" in key.upper():
            return int(a) / int(b), f"{key} {a} → {b} (the work is linear in it)"
    return None


def _changes(cmp: Comparison) -> dict[str, tuple[str, str]]:
    sa, sb = cmp.a.settings, cmp.b.settings
    return {k: (str(sa.get(k, "unset")), str(sb.get(k, "unset"))) for k in sorted(set(sa) | set(sb))
            if sa.get(k) != sb.get(k)}


def _num(ev: dict[str, Any], *keys: str) -> float | None:
    for k in keys:
        v = ev.get(k)
        if isinstance(v, (int, float)) and fmt.ok(v):
            return float(v)
    return None


def _login_storm(ev: dict[str, Any], change: str, cmp: Comparison, cpu_count: int | None) -> str:
    share = _num(ev, "hashing_share", "serialization_share")
    row = cmp.metric(CPU)
    per_request = row.a if row is not None else None
    p95 = _num(ev, "p95_ms")
    factor = _work_factor(_changes(cmp))
    what = ev.get("hashing_algorithm") or "hashing"
    if share is None or per_request is None or factor is None:
        head = f"{change} makes the hot {what} cheaper"
        return f"{head}: service CPU per request lower, and p95 ({fmt.value(p95, 'ms')} before) lower with it"
    left = 1 - share + share / factor[0]
    after = per_request * left
    text = (f"{what} is {fmt.percent(share, digits=0)} of the CPU profile; {factor[1]} makes it "
            f"{fmt.number(factor[0])}× cheaper, so service CPU per request {fmt.value(per_request, 'ms')} → about "
            f"{fmt.value(after, 'ms')} (Amdahl: {fmt.number(left)} of today)")
    offered = cmp.a.offered_rps
    if cpu_count and offered and p95 is not None and p95 > P95_THRESHOLD_MS:
        need = after / 10.0 * offered  # % of a core the offered load needs at the new cost
        if need < CPU_HEADROOM * 100 * cpu_count:
            text += (f"; the offered {fmt.value(offered, 'req/s')} then need about {fmt.value(need, '% of a core')} "
                     f"of {cpu_count} cores, so p95 {fmt.value(p95, 'ms')} → below the "
                     f"{fmt.value(P95_THRESHOLD_MS, 'ms')} HighAPILatency alert")
        else:
            text += (f"; the offered {fmt.value(offered, 'req/s')} would still need about "
                     f"{fmt.value(need, '% of a core')} of {cpu_count} cores: CPU-bound still, p95 lower but not "
                     "below the alert")
    return text


def _false_idle(ev: dict[str, Any], change: str) -> str:
    waiting = _num(ev, "pool_waiting_p50", "pool_waiting_from_wait_seconds")
    cpu, p95 = _num(ev, "service_cpu_p50", "service_cpu_mean"), _num(ev, "p95_ms")
    text = (f"requests wait for a connection (waiting tasks p50 {fmt.value(waiting)}) while the CPU idles "
            f"({fmt.value(cpu, '% of a core')}): with {change} the pool stops being the limit, so waiting "
            "tasks toward 0")
    if p95 is not None and p95 > P95_THRESHOLD_MS:
        text += f" and p95 {fmt.value(p95, 'ms')} → below the {fmt.value(P95_THRESHOLD_MS, 'ms')} HighAPILatency alert"
    return text


def _retry_storm(ev: dict[str, Any], change: str, error_rate: float | None) -> str:
    calls = _num(ev, "downstream_calls_per_request", "pg_queries_per_request")
    timeouts = _num(ev, "timeout_rate", "k6_timeout_rate")
    text = (f"{fmt.value(calls)} downstream calls per request with {fmt.percent(timeouts, digits=0)} of requests "
            f"timing out: with {change} a timed-out call is no longer retried at once, so downstream calls "
            "per request toward 1 (one call per request without retries) and p95 lower")
    if error_rate is not None:
        text += (f"; the error rate ({fmt.value(error_rate, '%')}) is not expected to move: fewer retries do not "
                 "make the slow call fast")
    return text


def expected_impact(cmp: Comparison, diag_before: Diagnosis, cpu_count: int | None = None) -> str | None:
    """What the doctor's evidence predicts for the change between the two runs (None when
    the before run has no signature to predict from)."""
    changes = _changes(cmp)
    change = "; ".join(f"{k} {a} → {b}" for k, (a, b) in changes.items()) or "the change"
    err = cmp.metric(ERROR_RATE)
    parts = []
    for f in diag_before.present:
        ev = f.evidence
        if f.signature == "login-storm":
            parts.append(_login_storm(ev, change, cmp, cpu_count))
        elif f.signature == "false-idle":
            parts.append(_false_idle(ev, change))
        elif f.signature == "retry-storm":
            parts.append(_retry_storm(ev, change, err.a if err is not None else None))
        else:
            aims = " and ".join(TARGETS.get(f.signature, (P95,)))
            parts.append(f"the {f.signature} signature gone with {change}: {aims} lower")
    return "; ".join(parts) if parts else None
