"""Every number of one run's load-test report, as typed sections (what ``perflab report --json`` prints).

The report follows the shape of a hand-written load-test analysis (request metrics,
resource usage, top CPU consumers flat and cum, top allocations, signatures, alert
rules, capacity, strengths and areas, comparison with the run's twin or previous run); each section
comes from one analysis of the run:

    requests      k6's own summary (loadtest.k6_summary), overall and per endpoint tag
    resources     the resource samples over the steady window, per process role
    cpu_profile   profiles.top (flat and cum) and the hot-frame categories
    endpoint_cpu  CPU ms per request by endpoint: the route label's CPU over k6's requests (tag_cost)
    heap_profile  profiles.top of the heap profile (inuse_space, else alloc_space)
    signatures    the doctor (signatures.diagnose)
    alerts        the tuning guide's alert rules (alerts.evaluate_alerts)
    capacity      capacity.run_capacity
    assessment    strengths and areas (assessment.assess)
    comparison    compare.compare_runs against the run's default ↔ fixed twin, else the previous run

The section types are in perflab.analysis.report_sections; perflab.report renders them
into markdown and HTML.
"""

from __future__ import annotations

import math

from perflab import __version__
from perflab.analysis.alerts import evaluate_alerts, rules_table
from perflab.analysis.assessment import assess, profile_too_small
from perflab.analysis.capacity import run_capacity
from perflab.analysis.categories import categories
from perflab.analysis.compare import compare_runs
from perflab.analysis.loadtest import k6_summary
from perflab.analysis.profiles import sample_types, top
from perflab.analysis.report_sections import (
    AlertsSection,
    CategoryShares,
    CheckCount,
    CpuProfile,
    EndpointCpu,
    EndpointStats,
    HeapProfile,
    NoComparison,
    ReportFinding,
    RequestMetrics,
    ResourceUsage,
    RoleUsage,
    RunComparison,
    RunHeader,
    RunReport,
    SignaturesSection,
    SourceRow,
    Unavailable,
    WindowInfo,
)
from perflab.analysis.run import Run
from perflab.analysis.signatures import diagnose, signatures
from perflab.analysis.tag_cost import ROUTE_KEYS, cpu_per_request, route_key
from perflab.errors import PerflabError
from perflab.fmt import ok
from perflab.vocab import HEAP_TYPES, PPROF, PPROF_SHAPED_KINDS, ROLES

# Rows of each CPU table (flat and cum): the seed analysis names 3; ten show what
# follows the hot spot without becoming pprof's full listing.
TOP_N = 10
HEAP_TOP_N = 10
# Evidence items shown per signature in the table (the JSON has them all).
MAX_EVIDENCE_ITEMS = 6
# A CPU profile's total in seconds, by its unit (pprof's nanoseconds, cProfile's seconds).
CPU_SECONDS_PER_UNIT = {"nanoseconds": 1e-9, "microseconds": 1e-6, "milliseconds": 1e-3, "seconds": 1.0}
# The doctor's window facts, repeated in every finding: the report states the window once.
_WINDOW_KEYS = {"window_start_s", "window_end_s", "run_span_s", "window_method"}


def build_report(run: Run, target_rps: float | None = None) -> RunReport:
    """Every number of the report for one run."""
    if target_rps is not None and not target_rps > 0:
        raise PerflabError("--target-rps must be positive")
    m = run.manifest
    manifest = m.to_dict() if m else {}
    header = RunHeader(
        run_id=run.run_id, scenario=run.scenario, variant=run.variant, status=run.status,
        started_at=run.started_at, settings=run.settings, rate=m.rate if m else None,
        duration_s=m.duration_s if m else None, signature=m.signature if m else None,
        profile=manifest.get("profile") or {}, host=manifest.get("host") or {})
    w = run.window
    window = None if w is None else WindowInfo(
        start_s=round(w.start_s - w.t0_s, 3), end_s=round(w.end_s - w.t0_s, 3), span_s=round(w.t1_s - w.t0_s, 3),
        method=w.method)
    requests = request_metrics(run)
    resources = resource_usage(run)
    cpu = cpu_profile_section(run)
    signatures_ = signatures_section(run)
    alerts = AlertsSection(rules=rules_table(), results=evaluate_alerts(run))
    capacity = run_capacity(run, target_rps=target_rps)
    return RunReport(
        run=header, window=window, perflab_version=__version__, requests=requests, resources=resources,
        cpu_profile=cpu, heap_profile=heap_profile_section(run), signatures=signatures_, alerts=alerts,
        capacity=capacity,
        assessment=assess(requests, resources, cpu, alerts.results, signatures_.findings, capacity),
        comparison=comparison_section(run),
        sources=[SourceRow(s.source_id, s.kind, s.path, s.bytes) for s in run.sources],
        endpoint_cpu=endpoint_cpu_section(run))


def request_metrics(run: Run) -> RequestMetrics | Unavailable:
    """k6's own numbers: overall and per endpoint tag, errors, dropped iterations, checks."""
    sid = run.k6_source
    by: str | None = "endpoint"
    if sid is None:
        sid, by = run.k6_summary_source, None
        if sid is None:
            return Unavailable("no k6 output in this run")
    summary = k6_summary(run.store, sid, by=by)
    m = summary["metrics"]
    duration = summary.get("duration_s")

    def group(suffix: str) -> EndpointStats:
        dur = m.get(f"http_req_duration{suffix}", {})
        reqs = m.get(f"http_reqs{suffix}", {})
        failed = m.get(f"http_req_failed{suffix}", {})
        count = reqs.get("count", dur.get("count"))
        return EndpointStats(
            requests=count, rps=(count / duration) if (count is not None and duration) else None,
            p50_ms=dur.get("med"), p90_ms=dur.get("p(90)"), p95_ms=dur.get("p(95)"), p99_ms=dur.get("p(99)"),
            max_ms=dur.get("max"), avg_ms=dur.get("avg"), error_rate=failed.get("rate"),
            failed=failed.get("passes"))

    overall = group("")
    # k6's own rate (count over its test-run duration) for the whole test.
    overall.rps = m.get("http_reqs", {}).get("rate", overall.rps)
    prefix = "http_req_duration{endpoint:"
    endpoints = {name[len(prefix):-1]: group("{endpoint:" + name[len(prefix):-1] + "}")
                 for name in sorted(m) if name.startswith(prefix) and name.endswith("}") and "," not in name}
    totals = summary["totals"]
    return RequestMetrics(
        source_id=sid, duration_s=duration, duration_source=summary.get("duration_source"), overall=overall,
        endpoints=endpoints, dropped_iterations=int(totals.get("dropped_iterations") or 0),
        iterations=totals.get("iterations"),
        checks=[CheckCount(path.lstrip(":"), c["passes"], c["fails"]) for path, c in summary.get("checks", {}).items()],
        checks_passes=totals.get("checks_passes"), checks_fails=totals.get("checks_fails"),
        checks_rate=totals.get("checks_rate"), thresholds_crossed=summary.get("thresholds_crossed", []))


def resource_usage(run: Run) -> ResourceUsage:
    """CPU (% of one core) p50/p95/mean and RSS per role over the steady window."""
    window = run.window
    lo, hi = (window.start_s, window.end_s) if window else (-math.inf, math.inf)
    df = run.store.sql(
        """SELECT role, count(cpu_pct) AS samples,
                  quantile_cont(cpu_pct, 0.5) AS cpu_p50, quantile_cont(cpu_pct, 0.95) AS cpu_p95,
                  avg(cpu_pct) AS cpu_mean, max(cpu_pct) AS cpu_max,
                  quantile_cont(rss_bytes, 0.5) AS rss_p50, max(rss_bytes) AS rss_max,
                  max(threads) AS threads_max
           FROM resource_samples
           WHERE run_id = ? AND epoch_us(t) / 1e6 BETWEEN ? AND ?
           GROUP BY role""", [run.run_id, lo, hi])
    order = {r: i for i, r in enumerate(ROLES)}
    roles = sorted((RoleUsage(**r) for r in df.to_dicts()), key=lambda r: (order.get(r.role, len(order)), r.role))
    return ResourceUsage(roles=roles, cores=run.cpu_count, over="the steady window" if window else "the whole run",
                         reason=None if roles else "no resource samples in this run")


def cpu_profile_section(run: Run) -> CpuProfile | Unavailable:
    prof = run.cpu_profile
    if prof is None:
        return Unavailable("no CPU profile in this run")
    sid = prof.source_id
    full = top(run.store, sid, nodefraction=0)  # every function (the count is reported)
    rows = full["rows"]
    by_cum = sorted(rows, key=lambda r: (-r["cum"], -r["flat"], r["name"]))
    cats = categories(run.store, sid)
    out = CpuProfile(
        source_id=sid, path=prof.path, format=full["format"], sample_type=full["sample_type"], unit=full["unit"],
        total=full["total"], functions=len(rows), flat=rows[:TOP_N], cum=by_cum[:TOP_N],
        categories=CategoryShares(
            shares=cats.get("categories", {}),
            top_frames={k: (v[0]["name"] if v else None) for k, v in (cats.get("top_frames") or {}).items()},
            unattributed=cats.get("unattributed")))
    if full["format"] == PPROF:
        nanos = run.store.con.execute("SELECT duration_nanos FROM pprof_profiles WHERE source_id = ?",
                                      [sid]).fetchall()[0][0]
        out.duration_s = nanos / 1e9 if nanos else None
    counted = next((p for p in run.frames.profiles if p.source_id == sid), None)
    if counted is not None and counted.format == PPROF:
        out.samples = counted.samples
    out.cpu_s = CPU_SECONDS_PER_UNIT[full["unit"]] * float(full["total"]) if full["unit"] in CPU_SECONDS_PER_UNIT \
        else None
    out.too_small = profile_too_small(out)
    return out


def endpoint_cpu_section(run: Run) -> EndpointCpu | Unavailable:
    """CPU ms per request by endpoint, when the CPU samples carry a route label and k6's
    samples count the requests per endpoint; else what is missing."""
    prof = run.cpu_profile
    missing = []
    key = None
    if prof is None or prof.kind not in PPROF_SHAPED_KINDS:
        missing.append("a pprof CPU profile" + ("" if prof is None else f" (source {prof.source_id} is {prof.kind})"))
    elif (key := route_key(run.store, prof.source_id)) is None:
        missing.append(f"CPU samples labelled with the endpoint (a pprof label {', '.join(ROUTE_KEYS)}, "
                       "e.g. Go's pprof.Do(ctx, pprof.Labels(\"route\", …), …))")
    if run.k6_source is None:
        missing.append("k6's samples (NDJSON or CSV) to count the requests per endpoint"
                       + (" (a summary file holds only totals)" if run.k6_summary_source is not None else ""))
    if missing or prof is None or key is None or run.k6_source is None:
        return Unavailable("needs " + " and ".join(missing))
    result = cpu_per_request(run.store, prof.source_id, run.k6_source, key)
    if all(r["requests"] is None for r in result["rows"]):
        values = ", ".join(r["endpoint"] for r in result["rows"][:5])
        return Unavailable(f"no k6 request matches a {key} label value ({values}): name k6's requests "
                           f"after the route (tags: {{name: ...}} or a {key} tag)")
    return EndpointCpu(source_id=prof.source_id, k6_source_id=run.k6_source, **result)


def heap_profile_section(run: Run) -> HeapProfile | Unavailable:
    prof = run.heap_profile
    if prof is None:
        return Unavailable("no heap profile in this run")
    sid = prof.source_id
    types = [t["type"] for t in sample_types(run.store, sid)]
    shown = "inuse_space" if "inuse_space" in types else next(t for t in HEAP_TYPES if t in types)
    full = top(run.store, sid, sample_type=shown, nodefraction=0)
    totals: dict[str, float] = {t: top(run.store, sid, sample_type=t, limit=1)["total"]
                                for t in ("inuse_space", "alloc_space") if t in types}
    return HeapProfile(source_id=sid, path=prof.path, sample_type=shown, unit=full["unit"], total=full["total"],
                       totals=totals, rows=full["rows"][:HEAP_TOP_N], functions=len(full["rows"]))


def signatures_section(run: Run) -> SignaturesSection:
    keys = {name: sig.key_evidence for name, sig in signatures().items()}
    findings = []
    for f in diagnose(run).findings:
        ev = f.evidence
        wanted = keys.get(f.signature, ())
        shown = {k: ev[k] for k in wanted if ok(ev.get(k)) and not isinstance(ev.get(k), (list, dict))}
        if not shown:
            shown = {k: v for k, v in ev.items() if isinstance(v, (int, float)) and ok(v) and k not in _WINDOW_KEYS}
        findings.append(ReportFinding(f.signature, f.verdict, f.evidence, f.recommendation,
                                      dict(list(shown.items())[:MAX_EVIDENCE_ITEMS])))
    return SignaturesSection(findings)


def comparison_section(run: Run) -> RunComparison | NoComparison:
    """This run against its default ↔ fixed twin (the experiment), else against the previous
    run of its scenario and variant (a regression check)."""
    if not run.scenario:
        return NoComparison("no twin or previous run: the run has no scenario or target (a group of files)")
    twin, prev = run.twin(), run.previous()
    other = twin or prev
    if other is None:
        return NoComparison("no fixed or default twin and no previous run of this scenario and variant")
    relation = f"{other.variant} twin" if twin is not None else "previous run"
    result = compare_runs(other, run)
    return RunComparison(against=other.run_id, relation=relation, metrics=result.metrics,
                         profile=result.profile.rows[:TOP_N], profile_note=result.profile.note, rule=result.rule,
                         twin=twin.run_id if twin else None, previous=prev.run_id if prev else None,
                         profile_unit=result.profile.unit, profile_per=result.profile.per)
