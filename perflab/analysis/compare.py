"""Before and after: two runs side by side, each change judged against the noise.

Contract: ``compare_runs(run_a, run_b) -> Comparison`` (A is "before", B "after") and
``profile_diff(store, source_a, source_b) -> polars.DataFrame`` (perflab.analysis.profile_diff);
pure reads of the store.

One rule decides every row (perflab.analysis.noise): a change is **beyond noise exactly
when its 95 % interval of B − A excludes zero**, and a row without an interval says "not
tested" and why. The intervals, per row::

    latency p50…mean  bootstrap of the per-request latencies k6 aggregated
    throughput        block bootstrap of the requests of each whole second
    error rate        Newcombe's score interval on failed/all requests
    dropped it.       exact conditional interval of two counts over each run's duration
    CPU, RSS,         block bootstrap of the per-sample values (the lab's sampler, the
    waiting p50       service's metrics by role); a maximum has no interval: not tested
    calls/req         block bootstrap of the per-scrape increments of the two counters
    CPU/req           block bootstrap of the service's CPU seconds and k6's requests per second

``beyond_noise`` is True, False, or None when there are too few values for an interval.
Every latency figure is k6's own (``k6_summary``: med, p(95), p(99), avg, count);
Mann–Whitney U on the same requests is kept as context (its effect size says how often
B is slower), never as a verdict.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from perflab.analysis import noise
from perflab.analysis.loadtest import k6_points, k6_summary
from perflab.analysis.noise import BOOTSTRAP_LEVEL, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, beyond_noise
from perflab.analysis.profile_diff import PROFILE_DIFF_LIMIT, diff_basis, profile_diff
from perflab.analysis.roles import counter_steps, gauge_levels
from perflab.analysis.run import Run
from perflab.analysis.runs import calls_per_request
from perflab.jsonable import optional

Ref = str | int | os.PathLike[str]

RULE = (f"a change is beyond noise exactly when its {BOOTSTRAP_LEVEL * 100:.0f} % interval of after − before "
        "excludes 0")
# A p95 of fewer than 20 values is the largest of them, not a percentile (as the doctor's
# MIN_REQUESTS): below it latency changes are reported but not tested.
MIN_REQUESTS = 20
# 8 samples at the lab's 4 Hz are 2 s; with fewer the Mann–Whitney normal approximation
# and a median of CPU samples (4 % steps, LAB-NOTES) are both too coarse to test.
MIN_SAMPLES = 8
# The first and last whole second of a run are partial (k6 starts and stops mid-second),
# so per-second request counts drop them.
EDGE_SECONDS = 1

LATENCY_STATS = (("p50", "med", 0.5), ("p95", "p(95)", 0.95), ("p99", "p(99)", 0.99), ("mean", "avg", None))
MIB = 1024.0 * 1024.0


CALLS_PER_REQUEST = "downstream calls per request"
# What one request costs the service in CPU: unlike CPU %, it does not rise when a fix lets
# more of the offered requests through.
CPU_PER_REQUEST = "service CPU per request"
NO_MAX_INTERVAL = "not tested: a maximum has no interval (a resample's maximum is never above the sample's own)"


# -- the statistics --------------------------------------------------------------------

def change(a: float | None, b: float | None) -> dict[str, float | None]:
    """B − A, absolute and in % of A (None when A is 0 or either is missing)."""
    if a is None or b is None:
        return {"abs": None, "pct": None}
    diff = float(b) - float(a)
    return {"abs": diff, "pct": 100.0 * diff / float(a) if a else (0.0 if diff == 0 else None)}


def mann_whitney(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Two-sided Mann–Whitney U of B against A, and the common-language effect size.

    ``u`` is B's U statistic; ``effect_size`` = U / (n_a·n_b), the probability that a
    random value of B is larger than a random value of A (ties count half): 0.5 is no
    shift, below 0.5 B tends to be smaller (faster, for a latency).
    """
    res = stats.mannwhitneyu(b, a, alternative="two-sided")
    u = float(res.statistic)
    return {"u": u, "p_value": float(res.pvalue), "effect_size": u / (len(a) * len(b))}


bootstrap_diff = noise.bootstrap_diff


# -- the typed answer ----------------------------------------------------------------------

@dataclass
class RunInfo:
    """Who a compared run is: scenario, variant, settings and when it started (its own clock)."""

    run_id: str
    scenario: str | None
    variant: str | None
    started_at: str
    settings: dict[str, Any]
    signature: str | None
    why: str | None
    manifest: bool  # a lab run (with a manifest), not a user's group
    # The load k6 was asked for, in requests/s (offered_rps); None without a known schedule.
    offered_rps: float | None = None


@dataclass
class MetricRow:
    """One headline metric of A and B: the change and whether it is beyond noise.

    ``interval`` is the 95 % interval of B − A (in ``unit``) and ``beyond_noise`` is
    :func:`perflab.analysis.noise.beyond_noise` of it: None when there is no interval
    (``note`` says why). ``test`` names how the interval was made and from how many values."""

    metric: str
    unit: str
    better: str | None  # "lower" | "higher" | None (neither is better)
    a: float | None
    b: float | None
    change: float | None
    change_pct: float | None
    beyond_noise: bool | None
    direction: str | None  # better | worse | higher | lower | unchanged
    test: dict[str, Any] | None
    note: str | None
    interval: list[float] | None = None


@dataclass
class LatencyGroup:
    """One latency group (all requests, or one endpoint): k6's numbers, tests, intervals."""

    a: dict[str, Any]
    b: dict[str, Any]
    change: dict[str, dict[str, float | None]]
    mann_whitney: dict[str, float] | None = None
    ci: dict[str, list[float]] | None = None
    stats_beyond_noise: dict[str, bool | None] = field(default_factory=dict)
    beyond_noise: bool | None = None
    note: str | None = optional()


@dataclass
class ProfileDiff:
    """The CPU profiles' diff (perflab.analysis.profile_diff): rows of flat and cum in
    ``unit`` per ``per`` (a request, or a second of profile), shares beside them."""

    a_source: int | None
    b_source: int | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    unit: str | None = optional()
    per: str | None = optional()
    note: str | None = optional()


@dataclass
class Comparison:
    """``perflab compare A B --json``: A is "before", B "after"."""

    a: RunInfo
    b: RunInfo
    k6_sources: dict[str, int | None]
    latency: dict[str, Any]  # {"overall": LatencyGroup | None, "endpoints": {name: LatencyGroup}}
    metrics: list[MetricRow]
    profile: ProfileDiff
    rule: str
    bootstrap: dict[str, Any]

    def metric(self, name: str) -> MetricRow | None:
        return next((m for m in self.metrics if m.metric == name), None)


def run_info(run: Run) -> RunInfo:
    m = run.manifest
    return RunInfo(run_id=run.run_id, scenario=run.scenario or (m.scenario if m else None),
                   variant=run.variant or (m.variant if m else None), started_at=run.started_at,
                   settings=run.settings, signature=m.signature if m else None, why=m.why if m else None,
                   manifest=m is not None)


def offered_rps(run: Run, summary: dict[str, Any] | None) -> float | None:
    """Requests per second k6 was asked for: the iterations it started or dropped over the
    scheduled duration (the manifest's), times requests per iteration.

    Not k6's http_reqs rate: that divides by the whole test run, graceful stop included, which
    a slow target stretches (a 15 s login storm at 10/s lasted ~27 s: its rate read 5.5/s).
    Iterations cut off at the graceful stop are not counted by k6, so this errs low.
    """
    schedule = run.manifest.duration_s if run.manifest else None
    totals = (summary or {}).get("totals") or {}
    reqs, iters, dropped = totals.get("http_reqs"), totals.get("iterations"), totals.get("dropped_iterations") or 0
    if not schedule or not reqs or not iters:
        return None
    return float(reqs) / float(iters) * (float(iters) + float(dropped)) / float(schedule)


# -- latency ----------------------------------------------------------------------------------

def _k6_side(run: Run) -> dict[str, Any] | None:
    store, sid = run.store, run.k6_source
    if sid is None:
        return None
    summary = k6_summary(store, sid, by="endpoint")
    pts = k6_points(store, sid, metric="http_req_duration")
    ep = pts["endpoint"] if "endpoint" in pts.columns else pl.Series("endpoint", [None] * pts.height,
                                                                       dtype=pl.String)
    values = pts["value"].to_numpy().astype(np.float64)
    per_endpoint = {}
    if ep.null_count() < pts.height:
        frame = pl.DataFrame({"endpoint": ep, "value": pts["value"]}).filter(pl.col("endpoint").is_not_null())
        per_endpoint = {k: part["value"].to_numpy().astype(np.float64)
                        for (k,), part in frame.partition_by("endpoint", as_dict=True).items()}
    secs = store.sql(
        "SELECT (time_ns // 1000000000) AS s, sum(value) AS n FROM k6_points "
        "WHERE source_id = ? AND metric = 'http_reqs' AND time_ns IS NOT NULL GROUP BY 1 ORDER BY 1", [sid])
    per_second = np.zeros(0)
    if secs.height:
        s = secs["s"].to_numpy().astype(np.int64)
        full = np.zeros(int(s.max() - s.min()) + 1)
        full[s - s.min()] = secs["n"].to_numpy()
        per_second = full[EDGE_SECONDS:len(full) - EDGE_SECONDS]
    return {"source_id": sid, "summary": summary, "values": values, "per_endpoint": per_endpoint,
            "per_second": per_second}


def _trend(summary: dict[str, Any], name: str) -> dict[str, float | None]:
    m = summary["metrics"].get(name)
    if m is None:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "mean": None}
    out: dict[str, float | None] = {"count": int(m.get("count", 0))}
    for stat, key, _ in LATENCY_STATS:
        out[stat] = float(m[key]) if out["count"] and m.get(key) is not None else None
    return out


def latency_compare(a_values: np.ndarray, b_values: np.ndarray,
                    a_stats: dict[str, Any], b_stats: dict[str, Any]) -> LatencyGroup:
    """One latency group (all requests, or one endpoint): k6's numbers, tests, intervals."""
    out = LatencyGroup(a=a_stats, b=b_stats,
                       change={s: change(a_stats[s], b_stats[s]) for s, _, _ in LATENCY_STATS})
    n_a, n_b = len(a_values), len(b_values)
    if min(n_a, n_b) < MIN_REQUESTS:
        out.note = f"not tested: fewer than {MIN_REQUESTS} requests in a run ({n_a} and {n_b})"
        out.stats_beyond_noise = {s: None for s, _, _ in LATENCY_STATS}
        return out
    mw = mann_whitney(a_values, b_values)
    intervals = bootstrap_diff(a_values, b_values, tuple(q for _, _, q in LATENCY_STATS))
    ci = {s: list(iv) for (s, _, _), iv in zip(LATENCY_STATS, intervals, strict=True)}
    beyond = {s: beyond_noise(iv) for s, iv in ci.items()}
    out.mann_whitney, out.ci, out.stats_beyond_noise, out.beyond_noise = mw, ci, beyond, beyond["p95"]
    return out


# -- samples from the lab -----------------------------------------------------------------

def _resource(run: Run, role: str, column: str, scale: float = 1.0) -> np.ndarray:
    df = run.store.sql(f"SELECT {column}::DOUBLE AS v FROM resource_samples WHERE run_id = ? AND role = ? "
                       f"AND {column} IS NOT NULL ORDER BY t", [run.run_id, role])
    return df["v"].to_numpy() / scale if df.height else np.zeros(0)


def _outside_cpu(run: Run) -> np.ndarray:
    """Per sample: the machine's CPU minus the run's own processes (other work on the host)."""
    df = run.store.sql(
        """SELECT t, sum(CASE WHEN role = 'host' THEN cpu_pct ELSE -cpu_pct END) AS v,
                  count(*) FILTER (WHERE role = 'host') AS hosts
           FROM resource_samples WHERE run_id = ? AND cpu_pct IS NOT NULL GROUP BY t ORDER BY t""", [run.run_id])
    df = df.filter(pl.col("hosts") == 1)
    return np.clip(df["v"].to_numpy(), 0, None) if df.height else np.zeros(0)


def _service_cpu(run: Run) -> np.ndarray:
    samples = run.service_cpu
    return samples.values["cpu_pct"].to_numpy() if samples is not None else np.zeros(0)


def _gauge(run: Run, role: str) -> np.ndarray:
    levels = gauge_levels(run.signals, role)
    return levels["value"].to_numpy() if levels.height else np.zeros(0)


# -- rows ---------------------------------------------------------------------------------------

def _row(metric: str, unit: str, better: str | None, a: float | None, b: float | None,
         interval: tuple[float, float] | None, test: dict[str, Any] | None, note: str | None = None
         ) -> MetricRow:
    """A row judged by the one rule: beyond noise exactly when ``interval`` excludes 0."""
    ch = change(a, b)
    if a is None or b is None or a == b:
        direction = "unchanged" if a is not None and a == b else None
    elif better is None:
        direction = "higher" if b > a else "lower"
    else:
        direction = "better" if (b < a) == (better == "lower") else "worse"
    return MetricRow(metric=metric, unit=unit, better=better, a=a, b=b, change=ch["abs"], change_pct=ch["pct"],
                     beyond_noise=beyond_noise(interval), direction=direction, test=test, note=note,
                     interval=list(interval) if interval is not None else None)


_SAMPLE_STATS = {"p50": 0.5, "mean": None}


def _sample_row(metric: str, unit: str, better: str | None, a: np.ndarray, b: np.ndarray,
                stat: str, missing_a: str | None, missing_b: str | None) -> MetricRow:
    """A row from per-sample values: the statistic of each side, a block bootstrap of its change."""
    def agg(x: np.ndarray) -> float | None:
        if not len(x):
            return None
        if stat == "p50":
            return float(np.median(x))
        return float(np.mean(x)) if stat == "mean" else float(np.max(x))

    va, vb = agg(a), agg(b)
    if va is None or vb is None:
        why = "; ".join(w for w in (missing_a and f"A: {missing_a}", missing_b and f"B: {missing_b}") if w)
        return _row(metric, unit, better, va, vb, None, None, f"not measured: {why}")
    if stat not in _SAMPLE_STATS:
        return _row(metric, unit, better, va, vb, None, None, NO_MAX_INTERVAL)
    if min(len(a), len(b)) < MIN_SAMPLES:
        return _row(metric, unit, better, va, vb, None, None,
                    f"not tested: fewer than {MIN_SAMPLES} samples in a run ({len(a)} and {len(b)})")
    block = noise.block_length(min(len(a), len(b)))
    return _row(metric, unit, better, va, vb, noise.series_diff(a, b, _SAMPLE_STATS[stat]),
                {"name": f"block bootstrap of the samples ({block} per block)", "n_a": len(a), "n_b": len(b)})


def _latency_rows(group: LatencyGroup) -> list[MetricRow]:
    rows = []
    n = {"n_a": group.a["count"], "n_b": group.b["count"]}
    for stat, _, _ in LATENCY_STATS:
        iv = (group.ci[stat][0], group.ci[stat][1]) if group.ci is not None else None
        test = {"name": "bootstrap of the requests", **n} if iv is not None else None
        rows.append(_row(f"latency {stat}", "ms", "lower", group.a[stat], group.b[stat], iv, test, group.note))
    rows.insert(0, _row("requests", "count", None, group.a["count"], group.b["count"], None, None,
                        "the count follows the offered load: not a quality, not tested"))
    return rows


def _no_samples(run: Run, table: str, what: str) -> str | None:
    return None if run.has_rows(table) else f"no {what} in run {run.run_id}"


def compare_runs(run_a: Run, run_b: Run, profile_limit: int | None = None) -> Comparison:
    """Every headline metric of two runs side by side, with the change and its noise verdict.

    ``profile_limit`` caps the profile diff's rows (default PROFILE_DIFF_LIMIT; 0 keeps all).
    """
    k6a, k6b = _k6_side(run_a), _k6_side(run_b)
    rows: list[MetricRow] = []
    latency: dict[str, Any] = {"overall": None, "endpoints": {}}
    if k6a is None or k6b is None:
        missing = " and ".join(r.run_id for r, k in ((run_a, k6a), (run_b, k6b)) if k is None)
        note = f"not measured: no k6 samples in run {missing}"
        for metric in ("latency p50", "latency p95", "latency p99", "latency mean", "throughput",
                       "error rate", "dropped iterations"):
            rows.append(_row(metric, "", "lower", None, None, None, None, note))
    else:
        sa, sb = k6a["summary"], k6b["summary"]
        overall = latency_compare(k6a["values"], k6b["values"], _trend(sa, "http_req_duration"),
                                  _trend(sb, "http_req_duration"))
        latency["overall"] = overall
        for ep in sorted(set(k6a["per_endpoint"]) | set(k6b["per_endpoint"])):
            name = "http_req_duration{endpoint:" + ep + "}"
            latency["endpoints"][ep] = latency_compare(
                k6a["per_endpoint"].get(ep, np.zeros(0)), k6b["per_endpoint"].get(ep, np.zeros(0)),
                _trend(sa, name), _trend(sb, name))
        rows += _latency_rows(overall)
        rows.append(_throughput_row(k6a, k6b))
        rows.append(_error_row(sa, sb))
        rows.append(_dropped_row(sa, sb))

    def samples(metric: str, unit: str, better: str | None, a: np.ndarray, b: np.ndarray, stat: str,
                table: str = "resource_samples", what: str = "resource samples") -> MetricRow:
        return _sample_row(metric, unit, better, a, b, stat, _no_samples(run_a, table, what),
                           _no_samples(run_b, table, what))

    cpu_a, cpu_b = _service_cpu(run_a), _service_cpu(run_b)
    no_cpu = [None if len(c) else f"no service CPU samples (resource samples or a cpu_seconds role) in run {r.run_id}"
              for r, c in ((run_a, cpu_a), (run_b, cpu_b))]
    for stat in ("p50", "mean"):
        rows.append(_sample_row(f"service CPU {stat}", "% of a core", "lower", cpu_a, cpu_b, stat, *no_cpu))
    rows.append(_cpu_per_request_row(run_a, run_b))
    rows.append(_calls_row(run_a, run_b))
    wait_a, wait_b = _gauge(run_a, "pool_waiting"), _gauge(run_b, "pool_waiting")
    no_wait = [None if len(w) else f"no pool_waiting samples in run {r.run_id}"
               for r, w in ((run_a, wait_a), (run_b, wait_b))]
    for stat in ("p50", "max"):
        rows.append(_sample_row(f"waiting tasks {stat}", "", "lower", wait_a, wait_b, stat, *no_wait))
    rows.append(samples("service RSS p50", "MiB", "lower", _resource(run_a, "service", "rss_bytes", MIB),
                        _resource(run_b, "service", "rss_bytes", MIB), "p50"))
    # Context, not a result: other work on the machine distorts every figure (LAB-NOTES).
    rows.append(samples("other CPU on the host p50", "% of a core", None, _outside_cpu(run_a), _outside_cpu(run_b),
                        "p50"))

    return Comparison(
        a=replace(run_info(run_a), offered_rps=offered_rps(run_a, k6a["summary"] if k6a else None)),
        b=replace(run_info(run_b), offered_rps=offered_rps(run_b, k6b["summary"] if k6b else None)),
        k6_sources={"a": run_a.k6_source if k6a else None, "b": run_b.k6_source if k6b else None},
        latency=latency, metrics=rows, rule=RULE,
        profile=_profile_section(run_a, run_b, profile_limit, (_request_rate(k6a), _request_rate(k6b))),
        bootstrap={"resamples": BOOTSTRAP_RESAMPLES, "max_n": noise.BOOTSTRAP_MAX_N, "seed": BOOTSTRAP_SEED,
                   "level": BOOTSTRAP_LEVEL, "statistic": "stat(B) - stat(A)"},
    )


def _throughput_row(k6a: dict[str, Any], k6b: dict[str, Any]) -> MetricRow:
    ra = k6a["summary"]["metrics"].get("http_reqs", {}).get("rate")
    rb = k6b["summary"]["metrics"].get("http_reqs", {}).get("rate")
    ra = float(ra) if ra is not None and math.isfinite(ra) else None
    rb = float(rb) if rb is not None and math.isfinite(rb) else None
    a, b = k6a["per_second"], k6b["per_second"]
    if ra is None or rb is None:
        return _row("throughput", "req/s", "higher", ra, rb, None, None, "not measured: no http_reqs samples")
    if min(len(a), len(b)) < MIN_SAMPLES:
        return _row("throughput", "req/s", "higher", ra, rb, None, None,
                    f"not tested: fewer than {MIN_SAMPLES} whole seconds in a run")
    return _row("throughput", "req/s", "higher", ra, rb, noise.series_diff(a, b, None),
                {"name": "block bootstrap of the requests of each whole second", "n_a": len(a), "n_b": len(b)})


def _error_row(sa: dict[str, Any], sb: dict[str, Any]) -> MetricRow:
    fa, fb = sa["metrics"].get("http_req_failed"), sb["metrics"].get("http_req_failed")
    if fa is None or fb is None:
        return _row("error rate", "%", "lower", None, None, None, None,
                    "not measured: no http_req_failed samples")
    # k6's rate metric: a "pass" is a value of 1, i.e. a failed request.
    failed_a, total_a = int(fa["passes"]), int(fa["passes"] + fa["fails"])
    failed_b, total_b = int(fb["passes"]), int(fb["passes"] + fb["fails"])
    test = {"name": "Newcombe score interval", "failed_a": failed_a, "total_a": total_a,
            "failed_b": failed_b, "total_b": total_b}
    lo, hi = noise.newcombe_diff(failed_a, total_a, failed_b, total_b)
    return _row("error rate", "%", "lower", 100.0 * float(fa["rate"]), 100.0 * float(fb["rate"]),
                (100.0 * lo, 100.0 * hi), test)


def _dropped_row(sa: dict[str, Any], sb: dict[str, Any]) -> MetricRow:
    da = int(sa["metrics"].get("dropped_iterations", {}).get("count", 0))
    db = int(sb["metrics"].get("dropped_iterations", {}).get("count", 0))
    ta, tb = sa.get("duration_s"), sb.get("duration_s")
    if not ta or not tb:
        return _row("dropped iterations", "count", "lower", da, db, None, None,
                    "not tested: a run's duration is unknown")
    test = {"name": "exact conditional interval (B's count minus A's at B's duration)",
            "duration_a_s": ta, "duration_b_s": tb}
    return _row("dropped iterations", "count", "lower", da, db, noise.poisson_diff(da, ta, db, tb), test)


def _cpu_seconds(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """Per whole second of the k6 requests (the partial first and last dropped): the service's
    CPU milliseconds (its mean % of a core that second × 10) and the requests k6 completed."""
    cpu, req = run.service_cpu, run.requests
    if cpu is None or req.is_empty():
        return np.zeros(0), np.zeros(0)
    sec = pl.col("t_s").floor().cast(pl.Int64).alias("s")
    t = req["t_s"].to_numpy()
    first, last = int(np.floor(t.min())) + EDGE_SECONDS, int(np.floor(t.max())) - EDGE_SECONDS
    per_s = (cpu.values.group_by(sec).agg((10.0 * pl.col("cpu_pct").mean()).alias("cpu_ms"))
             .join(req.group_by(sec).agg(pl.len().cast(pl.Float64).alias("n")), on="s", how="left")
             .filter(pl.col("s").is_between(first, last - 1)).with_columns(pl.col("n").fill_null(0.0)).sort("s"))
    return per_s["cpu_ms"].to_numpy(), per_s["n"].to_numpy()


def _cpu_per_request_row(run_a: Run, run_b: Run) -> MetricRow:
    (ca, na), (cb, nb) = _cpu_seconds(run_a), _cpu_seconds(run_b)
    va = float(ca.sum() / na.sum()) if na.sum() else None
    vb = float(cb.sum() / nb.sum()) if nb.sum() else None
    if va is None or vb is None:
        missing = " and ".join(r.run_id for r, v in ((run_a, va), (run_b, vb)) if v is None)
        return _row(CPU_PER_REQUEST, "ms", "lower", va, vb, None, None,
                    f"not measured: no service CPU samples beside k6 requests in run {missing}")
    if min(len(ca), len(cb)) < MIN_SAMPLES:
        return _row(CPU_PER_REQUEST, "ms", "lower", va, vb, None, None,
                    f"not tested: fewer than {MIN_SAMPLES} whole seconds in a run ({len(ca)} and {len(cb)})")
    return _row(CPU_PER_REQUEST, "ms", "lower", va, vb, noise.ratio_diff(ca, na, cb, nb),
                {"name": "block bootstrap of CPU seconds and requests per whole second", "n_a": len(ca),
                 "n_b": len(cb)})


def _call_steps(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """Per scrape: the downstream_calls and requests roles' increases (summed over series),
    at the instants both were sampled."""
    def steps(role: str) -> pl.DataFrame:
        return counter_steps(run.signals, role).group_by("t_s").agg(pl.col("delta").sum().alias(role))

    both = steps("downstream_calls").join(steps("requests"), on="t_s", how="inner").sort("t_s")
    return both["downstream_calls"].to_numpy(), both["requests"].to_numpy()


def _calls_row(run_a: Run, run_b: Run) -> MetricRow:
    qa, qb = calls_per_request(run_a), calls_per_request(run_b)
    missing = [r.run_id for r, q in ((run_a, qa), (run_b, qb)) if q is None]
    if missing:
        return _row(CALLS_PER_REQUEST, "", "lower", qa, qb, None, None,
                    "not measured: no downstream_calls and requests roles (the service's counters) "
                    f"in run {' and '.join(missing)}")
    (ca, ra), (cb, rb) = _call_steps(run_a), _call_steps(run_b)
    if min(len(ca), len(cb)) < MIN_SAMPLES:
        return _row(CALLS_PER_REQUEST, "", "lower", qa, qb, None, None,
                    f"not tested: fewer than {MIN_SAMPLES} scrapes of both counters in a run "
                    f"({len(ca)} and {len(cb)}): one ratio per run has no interval")
    return _row(CALLS_PER_REQUEST, "", "lower", qa, qb, noise.ratio_diff(ca, ra, cb, rb),
                {"name": "block bootstrap of the counters' per-scrape increases", "n_a": len(ca), "n_b": len(cb)})


# -- profiles ---------------------------------------------------------------------------------


def _request_rate(k6: dict[str, Any] | None) -> float | None:
    rate = (k6 or {}).get("summary", {}).get("metrics", {}).get("http_reqs", {}).get("rate") if k6 else None
    return float(rate) if rate is not None and math.isfinite(rate) and rate > 0 else None


def _profile_section(run_a: Run, run_b: Run, limit: int | None,
                     requests_per_s: tuple[float | None, float | None]) -> ProfileDiff:
    """Per request when both runs have a k6 request rate (the profile's per-second cost over
    the requests served per second), else per second of profile."""
    pa_, pb_ = run_a.cpu_profile_source, run_b.cpu_profile_source
    out = ProfileDiff(a_source=pa_, b_source=pb_)
    if pa_ is None or pb_ is None:
        missing = " and ".join(r.run_id for r, p in ((run_a, pa_), (run_b, pb_)) if p is None)
        out.note = f"not measured: no CPU profile in run {missing}"
        return out
    basis = diff_basis(run_a.store, pa_, pb_, requests_per_s=requests_per_s)
    out.unit, out.per, out.note = basis.unit, basis.per, basis.note
    out.rows = profile_diff(run_a.store, pa_, pb_, basis=basis,
                            limit=PROFILE_DIFF_LIMIT if limit is None else limit).to_dicts()
    return out
