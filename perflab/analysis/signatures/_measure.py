"""What the signatures share: three-valued logic, the evidence record, and the measures
(percentiles of a series in the steady window, counter deltas, profile shares).

A condition is True, False or None (unknown: the data is missing or too thin). A
signature combines its conditions with Kleene's logic, so "absent" needs one piece of
evidence against it, "present" needs every required piece for it, and anything else
is "insufficient-data":

    all_of(True, True) = True     all_of(True, None) = None     all_of(False, None) = False
    any_of(False, None) = False   any_of(True, None) = True     any_of(None, None)  = None

Percentiles are linear between closest ranks (k6's and numpy's default). The mean is
reported beside them: at 4 Hz a CPU sample moves in ~4 % steps (LAB-NOTES), so a p50 of
8 % and a mean of 9.1 % say the same thing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from perflab.analysis import cpu, roles
from perflab.analysis.rundata import Profile, RunData
from perflab.analysis.steady import Window

Tri = bool | None

PRESENT, ABSENT, INSUFFICIENT = "present", "absent", "insufficient-data"

# A p95 of fewer than 20 requests is the single slowest request (p95 interpolates between
# the 19th and 20th of 20), not a percentile.
MIN_REQUESTS = 20
# 8 samples at the lab's 4 Hz are 2 s: fewer, and one burst or one GC pause is the median.
MIN_SAMPLES = 8
# A category share from fewer than 20 profile samples moves in steps of 5 % or more.
MIN_PROFILE_SAMPLES = 20


def all_of(*conds: Tri) -> Tri:
    if any(c is False for c in conds):
        return False
    if any(c is None for c in conds):
        return None
    return True


def any_of(*conds: Tri) -> Tri:
    if any(c is True for c in conds):
        return True
    if any(c is False for c in conds):
        return False
    return None


def decided(context: Tri, *deciding: Tri) -> Tri:
    """A signature's condition when only some evidence decides it: present when every
    condition holds; absent only when a deciding condition is known to fail, or all of
    them are known and the context (latency) fails; else unknown. So a run that merely
    lacks the signature's own evidence (the pool's waiters, the service's CPU) reads
    insufficient-data, never absent, however its latency looked."""
    if all(c is True for c in (context, *deciding)):
        return True
    if any(c is False for c in deciding):
        return False
    if all(c is not None for c in deciding) and context is False:
        return False
    return None


def verdict(cond: Tri) -> str:
    return PRESENT if cond is True else ABSENT if cond is False else INSUFFICIENT


def at_least(value: float | None, threshold: float) -> Tri:
    return None if value is None else value >= threshold


def at_most(value: float | None, threshold: float) -> Tri:
    return None if value is None else value <= threshold


def _round(v: Any) -> Any:
    if isinstance(v, float):
        if not math.isfinite(v):
            return None
        return round(v, 4)
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_round(x) for x in v]
    return v


class Evidence:
    """The numbers behind a verdict, and in words which data was used and which was missing."""

    def __init__(self, window: Window | None) -> None:
        self.values: dict[str, Any] = dict(window.evidence()) if window is not None else {}
        self.used: list[str] = []
        self.missing: list[str] = []
        self.caveats: list[str] = []

    def add(self, **values: Any) -> None:
        self.values.update(values)

    def use(self, what: str) -> None:
        if what not in self.used:
            self.used.append(what)

    def miss(self, what: str) -> None:
        if what not in self.missing:
            self.missing.append(what)

    def caveat(self, what: str) -> None:
        if what not in self.caveats:
            self.caveats.append(what)

    def as_dict(self) -> dict[str, Any]:
        out = {k: _round(v) for k, v in self.values.items()}
        out["used"] = list(self.used)
        out["missing"] = list(self.missing)
        if self.caveats:
            out["caveats"] = list(self.caveats)
        return out


@dataclass(frozen=True)
class Finding:
    """One signature's answer: its verdict, the numbers behind it, what to do."""

    signature: str
    verdict: str  # present | absent | insufficient-data
    evidence: dict[str, Any]  # named numbers, plus "used", "missing" (and "caveats") in words
    recommendation: str | None


def finding(name: str, cond: Tri, ev: Evidence, recommendation: str | None) -> Finding:
    return Finding(name, verdict(cond), ev.as_dict(), recommendation)


def missing_recommendation(ev: Evidence, how: str) -> str:
    """What an insufficient-data verdict recommends: the missing data, then how to collect it."""
    missing = f" (missing: {'; '.join(ev.missing)})" if ev.missing else ""
    return f"not enough data to judge{missing}. {how}"


# -- series in the window ----------------------------------------------------------------

def quantile(values: pl.Series, q: float) -> float | None:
    v = values.drop_nulls()
    if v.is_empty():
        return None
    return float(v.quantile(q, interpolation="linear"))  # type: ignore[arg-type]


def mean(values: pl.Series) -> float | None:
    v = values.drop_nulls()
    return float(v.mean()) if not v.is_empty() else None  # type: ignore[arg-type]


def latency(data: RunData, window: Window | None, ev: Evidence) -> float | None:
    """p95 of k6's http_req_duration in the window (ms); adds p50/p95/p99/mean, requests, rps."""
    if data.requests.is_empty():
        ev.miss("k6 request samples (http_req_duration)")
        return None
    if window is None:
        ev.miss("a timeline for the steady window")
        return None
    req = window.filter(data.requests)
    n = req.height
    ev.add(requests=n)
    if n < MIN_REQUESTS:
        ev.miss(f"at least {MIN_REQUESTS} k6 requests in the steady window (have {n})")
        return None
    d = req["duration_ms"]
    p95 = quantile(d, 0.95)
    ev.add(p50_ms=quantile(d, 0.5), p95_ms=p95, p99_ms=quantile(d, 0.99), mean_ms=mean(d),
           rps=n / window.duration_s if window.duration_s > 0 else None,
           error_rate=float(req["failed"].mean()))  # type: ignore[arg-type]
    ev.use(f"k6 http_req_duration ({n} requests in the steady window)")
    return p95


def process_cpu(data: RunData, window: Window | None, role: str, ev: Evidence, prefix: str) -> float | None:
    """p50 of one role's cpu_pct (% of one core) in the window; adds p50/p95/mean/samples."""
    rows = data.resources.filter((pl.col("role") == role) & pl.col("cpu_pct").is_not_null())
    if rows.is_empty():
        ev.miss(f"resource samples ({role} cpu_pct)")
        return None
    if window is None:
        ev.miss("a timeline for the steady window")
        return None
    cpu = window.filter(rows)["cpu_pct"]
    ev.add(**{f"{prefix}_samples": cpu.len()})
    return _level(ev, cpu, prefix, f"{role} CPU samples in the steady window",
                  f"resource samples: {role} cpu_pct ({cpu.len()} in the steady window)")


def _level(ev: Evidence, values: pl.Series, name: str, what: str, used: str) -> float | None:
    """p50 of a level with enough samples; adds NAME_p50/_p95/_mean, or says what was too few."""
    if values.len() < MIN_SAMPLES:
        ev.miss(f"at least {MIN_SAMPLES} {what} (have {values.len()})")
        return None
    p50 = quantile(values, 0.5)
    ev.add(**{f"{name}_p50": p50, f"{name}_p95": quantile(values, 0.95), f"{name}_mean": mean(values)})
    ev.use(used)
    return p50


def cpu_profile(data: RunData) -> Profile | None:
    """The run's CPU profile: the first in data.profiles (Run.frames puts Run.cpu_profile first)."""
    return next((p for p in data.profiles if p.kind == "cpu"), None)


def profile_cpu_pct(p: Profile | None) -> float | None:
    """A CPU profile's own utilisation: CPU time over the profile's wall duration (% of one core)."""
    if p is None or p.format != "pprof" or p.unit != "nanoseconds" or not p.duration_s:
        return None
    return 100.0 * p.total / 1e9 / p.duration_s


def service_cpu(data: RunData, window: Window | None, ev: Evidence) -> float | None:
    """The service's CPU (% of one core): its samples (perflab.analysis.cpu: the lab's resource
    samples, else its cpu_seconds role), else the CPU profile's own rate."""
    samples = cpu.service_cpu(data.resources, data.signals)
    if samples is None:
        ev.miss("the service's CPU (resource samples, or a cpu_seconds role such as process_cpu_seconds_total)")
    elif window is None:
        ev.miss("a timeline for the steady window")
    else:
        values = window.filter(samples.values)["cpu_pct"]
        ev.add(service_cpu_samples=values.len())
        p50 = _level(ev, values, "service_cpu", "service CPU samples in the steady window",
                     f"{samples.source} ({values.len()} in the steady window)")
        if p50 is not None:
            return p50
    prof = cpu_profile(data)
    from_profile = profile_cpu_pct(prof)
    if from_profile is not None and prof is not None and prof.samples >= MIN_PROFILE_SAMPLES:
        ev.add(service_cpu_from_profile_pct=from_profile)
        ev.use(f"CPU profile {prof.name}: CPU time / duration as the service's CPU")
        return from_profile
    return None


# Every core at ≥ 90 % on the host: the machine, not only the service, was out of CPU.
HOST_BUSY_FRACTION = 0.9


def host_saturated(data: RunData, window: Window | None) -> float | None:
    """The host's CPU p50 (% of one core) when every core was busy in the window, else None."""
    if window is None or not data.cpu_count:
        return None
    host = window.filter(data.resources.filter((pl.col("role") == "host") & pl.col("cpu_pct").is_not_null()))
    if host.height < MIN_SAMPLES:
        return None
    p50 = quantile(host["cpu_pct"], 0.5)
    return p50 if p50 is not None and p50 >= HOST_BUSY_FRACTION * 100 * data.cpu_count else None


# -- the service's signals by role (perflab.analysis.roles) ---------------------------------------

def role_missing(data: RunData, role: str) -> str:
    """What a missing role is called in an insufficient-data line, with how to supply it."""
    std = ", ".join(str(sel) for sel in roles.STANDARD.get(role, ())[:2])
    return (f"a metric for the {role} role ({'e.g. ' + std + ', or ' if std else ''}"
            f"map one: --role {role}=METRIC)")


def role_used(data: RunData, role: str, detail: str) -> str:
    src = data.role_sources.get(role)
    return f"{role}: {src.metric if src else role} ({detail})"


def role_levels(data: RunData, window: Window | None, role: str) -> pl.Series | None:
    """A gauge role's levels inside the window (summed over its series), None when the run has none."""
    levels = roles.gauge_levels(data.signals, role)
    if levels.is_empty() or window is None:
        return None
    return window.filter(levels)["value"]


def role_p50(data: RunData, window: Window | None, role: str, ev: Evidence, name: str | None = None
             ) -> float | None:
    """p50 of a gauge role in the window; adds NAME_p50/_p95/_mean (NAME defaults to the role)."""
    v = role_levels(data, window, role)
    if v is None:
        ev.miss(role_missing(data, role))
        return None
    return _level(ev, v, name or role, f"samples of {role} in the steady window",
                  role_used(data, role, f"{v.len()} samples in the steady window"))


def role_increase(data: RunData, window: Window | None, role: str) -> tuple[float, float] | None:
    """(increase, seconds it covers) of a counter role inside the window; None: fewer than two
    samples of any of its series there. A drop is a restart (the new value is the increase)."""
    if window is None:
        return None
    inc = roles.increase(data.signals, role, window.start_s, window.end_s)
    if inc is None:
        return None
    return inc, roles.covered_s(data.signals, role, window.start_s, window.end_s)


def role_rate(data: RunData, window: Window | None, role: str) -> float | None:
    """A counter role's increase per second inside the window."""
    got = role_increase(data, window, role)
    if got is None or got[1] <= 0:
        return None
    return got[0] / got[1]


def spearman(x: pl.Series, y: pl.Series) -> float | None:
    """Rank correlation of two aligned series (None with fewer than 3 pairs or no spread)."""
    df = pl.DataFrame({"x": x, "y": y}).drop_nulls()
    if df.height < 3:
        return None
    r = df.select(pl.corr("x", "y", method="spearman")).item()
    return float(r) if r is not None and math.isfinite(r) else None
