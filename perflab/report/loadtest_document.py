"""The load-test report of one run as a document: what ``report.md`` and ``report.html`` say.

``document(report)`` turns the typed sections of perflab.analysis.run_report into blocks
(perflab.report.document), every number through perflab.fmt; absent data is written as
"not measured (why)", never as None, nan or a placeholder.
"""

from __future__ import annotations

from pathlib import Path

from perflab import fmt
from perflab.analysis.alerts import P95_THRESHOLD_MS
from perflab.analysis.assessment import (
    HOT_CATEGORY_SHARE,
    HOT_FUNCTION_SHARE,
    MIN_SAMPLES_TO_RANK,
    RESOURCE_WORDS,
    alert_value,
)
from perflab.analysis.capacity import HEADROOM_CPU_FRACTION, SATURATION_FRACTION, Capacity
from perflab.analysis.report_sections import (
    AlertsSection,
    CpuProfile,
    EndpointCpu,
    EndpointStats,
    HeapProfile,
    NoComparison,
    RequestMetrics,
    ResourceUsage,
    RunComparison,
    RunReport,
    SignaturesSection,
    Unavailable,
)
from perflab.report.document import Block, Bullets, Charts, Code, Heading, Numbered, Paragraph, Rule, Table

# Checks listed one by one; beyond this the table lists the failing ones first.
MAX_CHECK_ROWS = 20


def document(report: RunReport) -> list[Block]:
    run = report.run
    req = report.requests
    win = report.window
    out: list[Block] = [Heading(1, f"Load test analysis: {run.run_id}")]
    scen = (f"{run.scenario} (variant {run.variant})" if run.scenario else "a group of files (no lab scenario)")
    head = [f"**Scenario:** {scen}"]
    if run.rate is not None:
        head.append(f"**Offered load:** {fmt.count(run.rate)} iterations/s for {fmt.seconds(run.duration_s)}")
    if isinstance(req, RequestMetrics):
        head.append(f"**Test duration:** {fmt.seconds(req.duration_s, 'k6 did not say')}"
                    + (f" ({req.duration_source})" if req.duration_source else ""))
    else:
        head.append(f"**Test duration:** {fmt.seconds(None, req.reason)}")
    head.append("**Steady state:** " + (f"{win.start_s:.1f}–{win.end_s:.1f} s of {win.span_s:.1f} s "
                                          f"({win.method})" if win else fmt.missing("the run has no samples")))
    prof = report.cpu_profile
    if isinstance(prof, CpuProfile):
        taken = run.profile
        when = (f", taken {taken['started_after_s']:.1f} s into the run" if fmt.ok(taken.get("started_after_s"))
                else "")
        head.append(f"**CPU profile:** {Path(prof.path).name} (source {prof.source_id}, "
                    f"{fmt.seconds(prof.duration_s, 'the profile does not say')}{when})")
    else:
        head.append(f"**CPU profile:** {fmt.missing(prof.reason)}")
    head.append("**Total iterations:** " + (fmt.count(req.iterations) if isinstance(req, RequestMetrics)
                                            else fmt.missing(req.reason)))
    head.append(f"**Started:** {run.started_at} · **Status:** {run.status}")
    out += [Paragraph("  \n".join(head)), Rule(), Heading(2, "Service performance")]
    out += _request_blocks(req)
    out += _resource_blocks(report.resources)
    out += _cpu_blocks(prof)
    out += _endpoint_cpu_blocks(report.endpoint_cpu)
    out += _heap_blocks(report.heap_profile)
    out += _signature_blocks(report.signatures)
    out += [Rule(), Heading(2, "Performance assessment")]
    for title, items in (("✅ Strengths", report.assessment.strengths),
                         ("⚠️ Areas for further optimization", report.assessment.areas)):
        out.append(Heading(3, title))
        out.append(Numbered([(f"**{i.title}**", [i.detail]) for i in items]) if items
                   else Paragraph("none by these rules."))
    out.append(Paragraph(
        f"Thresholds: error rate 0 is a strength and above 0 an area; p95 over {P95_THRESHOLD_MS:g} ms, a hot-frame "
        f"category over {HOT_CATEGORY_SHARE:.0%} of the CPU and one function over {HOT_FUNCTION_SHARE:.0%} flat are "
        f"areas (from a CPU profile of at least {MIN_SAMPLES_TO_RANK} samples); CPU p95 within "
        f"{HEADROOM_CPU_FRACTION:.0%} of the cores is headroom; the service is saturated from a CPU p50 of "
        f"{SATURATION_FRACTION:.0%} of the cores."))
    out += _alert_blocks(report.alerts)
    out += _capacity_blocks(report.capacity)
    out += _comparison_blocks(report.comparison, run.run_id)
    out += _sources_blocks(report)
    return out


def _request_blocks(req: RequestMetrics | Unavailable) -> list[Block]:
    out: list[Block] = [Heading(3, "Request metrics")]
    if isinstance(req, Unavailable):
        return out + [Paragraph(fmt.missing(req.reason) + ".")]
    o = req.overall
    out.append(Bullets([
        f"**Requests:** {fmt.count(o.requests)} at {fmt.count(o.rps, reason='no test duration')} req/s "
        f"(k6 source {req.source_id})",
        f"**Error rate:** {fmt.percent(o.error_rate, 'no http_req_failed samples')}"
        + (f" ({fmt.count(o.failed)} failed)" if fmt.ok(o.failed) else ""),
        f"**Dropped iterations:** {fmt.count(req.dropped_iterations)}",
        f"**Checks:** {fmt.count(req.checks_passes, reason='no checks')} passed, "
        f"{fmt.count(req.checks_fails, reason='no checks')} failed",
    ]))
    rows = [_endpoint_row("**overall**", o)] + [_endpoint_row(f"`{ep}`", g) for ep, g in req.endpoints.items()]
    out.append(Table(["endpoint", "requests", "req/s", "p50", "p90", "p95", "p99", "max", "error rate"], rows))
    out.append(Paragraph("Latency is k6's http_req_duration (its own percentile rule); requests/s is the count over "
                         "k6's test-run duration."))
    if req.checks:
        checks = sorted(req.checks, key=lambda c: -c.fails) if len(req.checks) > MAX_CHECK_ROWS else req.checks
        out.append(Table(["check", "passes", "fails"],
                         [[c.check, fmt.count(c.passes), fmt.count(c.fails)] for c in checks[:MAX_CHECK_ROWS]]))
    if req.thresholds_crossed:
        out.append(Paragraph("**k6 thresholds crossed:** " + "; ".join(f"`{t}`" for t in req.thresholds_crossed)))
    out.append(Charts("requests"))
    return out


def _endpoint_row(label: str, g: EndpointStats) -> list[str]:
    return [label, fmt.count(g.requests, reason="no requests"), fmt.count(g.rps, reason="no duration"),
            fmt.ms(g.p50_ms), fmt.ms(g.p90_ms), fmt.ms(g.p95_ms), fmt.ms(g.p99_ms), fmt.ms(g.max_ms),
            fmt.percent(g.error_rate, "no http_req_failed samples")]


def _resource_blocks(res: ResourceUsage) -> list[Block]:
    out: list[Block] = [Heading(3, "Resource usage")]
    if not res.roles:
        return out + [Paragraph(fmt.missing(res.reason or "no resource samples") + ".")]
    cores = res.cores
    out.append(Paragraph(f"CPU in % of one core ({fmt.count(cores, reason='core count unknown')} cores = "
                         f"{fmt.count(cores * 100 if cores else None, reason='unknown')} %), over {res.over}; "
                         "RSS is the resident memory of every process of the role."))
    rows = [[r.role, fmt.count(r.samples), fmt.cpu(r.cpu_p50), fmt.cpu(r.cpu_p95), fmt.cpu(r.cpu_mean),
             fmt.mib(r.rss_p50), fmt.mib(r.rss_max)] for r in res.roles]
    out.append(Table(["role", "samples", "CPU p50", "CPU p95", "CPU mean", "RSS p50", "RSS max"], rows))
    out.append(Charts("resources"))
    return out


def _profile_table(rows: list[dict[str, float | str]], unit: str) -> Table:
    return Table(["#", "function", "flat", "flat %", "cum", "cum %"],
                 [[str(i), f"`{r['name']}`", fmt.profile_value(float(r["flat"]), unit), f"{r['flat_pct']:.2f} %",
                   fmt.profile_value(float(r["cum"]), unit), f"{r['cum_pct']:.2f} %"] for i, r in enumerate(rows, 1)])


def _cpu_blocks(prof: CpuProfile | Unavailable) -> list[Block]:
    out: list[Block] = [Heading(3, "CPU profile analysis (top consumers)")]
    if isinstance(prof, Unavailable):
        return out + [Paragraph(fmt.missing(prof.reason) + ".")]
    unit = prof.unit
    samples = f", {fmt.count(prof.samples)} samples" if prof.samples is not None else ""
    out.append(Paragraph(f"Source {prof.source_id} ({prof.format}, {prof.sample_type}): "
                         f"{fmt.profile_value(prof.total, unit)} total{samples} over {fmt.count(prof.functions)} "
                         "functions. Flat is the time in the function itself, cum includes what it called "
                         "(as `go tool pprof -top`)."))
    out += [Paragraph(f"**Top {len(prof.flat)} by flat:**"), _profile_table(prof.flat, unit),
            Paragraph(f"**Top {len(prof.cum)} by cum:**"), _profile_table(prof.cum, unit)]
    if prof.too_small:
        out += [Paragraph("**Key findings:**"),
                Bullets([f"The profile is {prof.too_small}: no function or category is named as hot from it"]),
                Charts("cpu")]
        return out
    findings = []
    if prof.flat:
        f = prof.flat[0]
        findings.append(f"**`{f['name']}`** is the hottest function with {f['flat_pct']:.2f} % flat CPU")
    if prof.cum:
        c = prof.cum[0]
        findings.append(f"**`{c['name']}`** holds the most cumulative CPU: {c['cum_pct']:.2f} %")
    cats = prof.categories
    shares = sorted(((k, v) for k, v in cats.shares.items() if v), key=lambda kv: (-kv[1], kv[0]))
    findings.append("Hot-frame categories: " + ", ".join(
        f"{k} {fmt.percent(v, digits=1)}" + (f" (`{cats.top_frames[k]}`)" if cats.top_frames.get(k) else "")
        for k, v in shares) if shares else "Hot-frame categories: no sample in any category")
    out += [Paragraph("**Key findings:**"), Bullets(findings), Charts("cpu")]
    return out


def _endpoint_cpu_blocks(ep: EndpointCpu | Unavailable) -> list[Block]:
    out: list[Block] = [Heading(3, "CPU per request by endpoint")]
    if isinstance(ep, Unavailable):
        return out + [Paragraph(fmt.missing(ep.reason) + ".")]
    out.append(Paragraph(
        f"The CPU profile's {ep.sample_type} per value of its `{ep.key}` label (as `go tool pprof -tags`), over "
        f"k6's requests of that endpoint (matched by {ep.matched_by}) in {ep.requests_over}. "
        f"{fmt.ms(ep.unlabelled_cpu_ms)} of {fmt.ms(ep.total_cpu_ms)} ran outside any `{ep.key}`."))
    out.append(Table(["endpoint", "CPU", "CPU %", "requests", "CPU per request"], [
        [f"`{r['endpoint']}`", fmt.ms(r["cpu_ms"]), f"{r['cpu_pct']:.2f} %",
         fmt.count(r["requests"], reason="no k6 request matched"),
         fmt.ms(r["cpu_ms_per_request"], reason="no k6 request matched")] for r in ep.rows]))
    return out


def _heap_blocks(heap: HeapProfile | Unavailable) -> list[Block]:
    out: list[Block] = [Heading(3, "Memory profile analysis")]
    if isinstance(heap, Unavailable):
        return out + [Paragraph(heap.reason.capitalize() + ".")]
    parts = [f"{t.replace('_', ' ')} {fmt.profile_value(v, 'bytes')}" for t, v in heap.totals.items()]
    out.append(Paragraph(f"Source {heap.source_id} ({Path(heap.path).name}): " + "; ".join(parts)
                         + f". Top allocations by {heap.sample_type}:"))
    out.append(_profile_table(heap.rows, heap.unit))
    return out


def _signature_blocks(sig: SignaturesSection) -> list[Block]:
    out: list[Block] = [Heading(3, "Signatures found")]
    if not sig.findings:
        return out + [Paragraph("The doctor returned no findings.")]
    rows = [[f"**{f.signature}**" if f.verdict == "present" else f.signature, f.verdict,
             ", ".join(f"{k} {fmt.evidence_brief(k, v)}" for k, v in f.key_evidence.items()) or "no numbers",
             f.recommendation or "—"] for f in sig.findings]
    out.append(Table(["signature", "verdict", "key evidence", "recommendation"], rows))
    out.append(Paragraph("Verdicts of `perflab doctor` over the steady window (present / absent / insufficient-data)."))
    return out


def _alert_blocks(alerts: AlertsSection) -> list[Block]:
    out: list[Block] = [Rule(), Heading(2, "Alert rules (tuning guide)")]
    out.append(Paragraph("The monitoring alerts of the tuning guide, evaluated over the steady window: a rule fires "
                         "when a sample of its series is above the threshold. The guide's `for:` is longer than a "
                         "lab run, so **sustained** says whether the longest stretch above lasted that long too."))
    rules = {r["name"]: r for r in alerts.rules}
    rows = []
    for r in alerts.results:
        rule = rules[r.rule]
        if r.fired is None:
            rows.append([f"`{r.rule}`", rule["expr"], fmt.missing(r.reason or "no series"), "—", "—", "—",
                         f"{rule['for_s']:g} s", "—"])
            continue
        rows.append([f"`{r.rule}`", rule["expr"], "**yes**" if r.fired else "no", fmt.seconds(r.seconds_above),
                     fmt.seconds(r.longest_above_s),
                     alert_value(r, r.peak) + (f" at {r.peak_at_s:.1f} s" if fmt.ok(r.peak_at_s) else ""),
                     f"{rule['for_s']:g} s", "yes" if r.sustained else "no"])
    out.append(Table(["alert", "condition", "fired", "time above", "longest above", "peak", "guide for:",
                      "sustained"], rows))
    buf = next((r for r in alerts.results if r.rule == "BufferSizeHigh" and r.buffer_limit), None)
    if buf and buf.buffer_limit:
        out.append(Paragraph(f"BUFFER_LIMIT {buf.buffer_limit:,.0f} from {buf.buffer_limit_from}."))
    out.append(Charts("alerts"))
    return out


def _capacity_blocks(cap: Capacity) -> list[Block]:
    out: list[Block] = [Rule(), Heading(2, "Scaling estimate"), Heading(3, "Current capacity (single instance)")]
    if cap.reason:
        out.append(Paragraph(fmt.missing(cap.reason) + "."))
    else:
        cpu = (f" at a service CPU mean of {fmt.cpu(cap.cpu_mean_pct)} of one core" if fmt.ok(cap.cpu_mean_pct)
               else "")
        lines = [f"**Measured:** {fmt.count(cap.rps)} req/s ({cap.rate_source}){cpu}"]
        if fmt.ok(cap.rps_per_core):
            lines.append(f"**Requests/s per core:** {fmt.count(cap.rps_per_core)} "
                         f"(= {fmt.count(cap.rps)} / ({cap.cpu_mean_pct or 0:.1f} / 100))")
        if cap.limited_by:
            lines.append(f"**One replica** (≤ {HEADROOM_CPU_FRACTION:.0%} of {RESOURCE_WORDS[cap.limited_by]}, "
                         f"the limit reached first): {fmt.count(cap.replica_rps)} req/s")
        else:
            lines.append("**One replica:** " + fmt.missing("the machine's core count is unknown and the run has "
                                                           "no pool metrics"))
        out.append(Bullets(lines))
        if cap.limits:
            out.append(Paragraph("**Limits** (the request rate at which each resource would be fully used; the "
                                 "smallest limits the service):"))
            out.append(Table(["resource", "limit", "derived from", "used by the run"],
                             [[("**" + RESOURCE_WORDS[lim.resource] + "**") if lim.resource == cap.limited_by
                               else RESOURCE_WORDS[lim.resource], f"{fmt.number(lim.rps)} req/s", lim.basis,
                               fmt.percent(lim.used, digits=0)] for lim in cap.limits]))
    if cap.saturated:
        out.append(Paragraph("**The service was saturated**, so this estimate is an **upper bound**: "
                             + "; ".join(cap.saturation_reasons) + "."))
    elif cap.machine_saturated:
        out.append(Paragraph("**The machine's CPU was saturated** (not the service's), so this estimate is an "
                             "**upper bound**: " + "; ".join(cap.saturation_reasons) + "."))
    elif fmt.ok(cap.cpu_p50_pct) and cap.cores:
        out.append(Paragraph(f"Not saturated: service CPU p50 {fmt.cpu(cap.cpu_p50_pct)} is below "
                             f"{SATURATION_FRACTION:.0%} of the {cap.cores} cores "
                             f"({SATURATION_FRACTION * cap.cores * 100:.0f} %) and the machine was not pinned."))
    else:
        out.append(Paragraph("Saturation: " + fmt.missing("no service CPU samples or no core count") + "."))
    if cap.dropped_iterations:
        what = (f"; the limit reached first is {RESOURCE_WORDS[cap.limited_by]}" if cap.limited_by else "")
        out.append(Paragraph(f"k6 dropped {fmt.count(cap.dropped_iterations)} iterations: the offered rate was not "
                             f"kept{what}, so the estimate is an **upper bound**."))
    for c in cap.caveats:
        out.append(Paragraph(f"Caveat: {c}."))
    if not cap.reason:
        out.append(Heading(3, f"Scaling for {fmt.count(cap.target_rps)} req/s"))
        out.append(Bullets([
            f"**CPU cores needed** at ≤ {HEADROOM_CPU_FRACTION:.0%} CPU: "
            + fmt.count(cap.cores_needed, reason="no service CPU samples"),
            "**Replicas of this size:** " + (fmt.count(cap.replicas) if fmt.ok(cap.replicas)
                                              else fmt.missing("no limit could be derived")),
        ]))
        out.append(Paragraph("Each limit is linear in its own resource: valid while nothing the run did not measure "
                             "(a dependency, locks) comes first (the alert rules above say whether the pool kept "
                             "up)."))
    return out


# What the run compared with is to this one, in the report's words.
RELATION_WORDS = {
    "fixed twin": "its fixed twin (the same scenario with its fix)",
    "default twin": "its default twin (the same scenario before the fix)",
    "previous run": "the previous run of this scenario and variant",
}


def _comparison_blocks(cmp: RunComparison | NoComparison, run_id: str) -> list[Block]:
    out: list[Block] = [Rule(), Heading(2, "Comparison with its twin or previous run")]
    if isinstance(cmp, NoComparison):
        return out + [Paragraph(cmp.reason.capitalize() + ".")]
    out.append(Paragraph(f"**A:** `{cmp.against}`, {RELATION_WORDS.get(cmp.relation, cmp.relation)}. "
                         f"**B:** this run. Beyond noise: {cmp.rule} (perflab.analysis.compare)."))
    if cmp.twin is not None:
        out.append(Paragraph(f"Previous run of this scenario and variant: `{cmp.previous}` "
                             f"(`perflab compare {cmp.previous} {run_id}`)." if cmp.previous
                             else "No previous run of this scenario and variant."))
    rows = []
    for m in cmp.metrics:
        note = m.note or "not measured"
        # A bare count needs no unit word ("238", not "238 count").
        unit = "" if m.unit in (None, "count") else m.unit

        def v(x: float | None, unit: str = unit, note: str = note) -> str:
            return f"{fmt.count(x)} {unit}".strip() if fmt.ok(x) else fmt.missing(note.removeprefix("not measured: "))

        rows.append([m.metric, v(m.a), v(m.b),
                     fmt.count(m.change, reason="no change computed") if fmt.ok(m.change) else "—",
                     f"{m.change_pct:+.1f} %" if fmt.ok(m.change_pct) else "—",
                     "not tested" if m.beyond_noise is None else "**yes**" if m.beyond_noise else "no",
                     m.direction or "—"])
    out.append(Table(["metric", f"{cmp.relation} (A)", "this run (B)", "change", "change %", "beyond noise",
                      "direction"], rows))
    if cmp.profile:
        unit, per = cmp.profile_unit or "", cmp.profile_per
        out.append(Paragraph(f"**CPU profile, largest changes (B − A, {unit} per {per}; share = % of each "
                             "profile's total):**"))
        out.append(Table(["function", "flat A", "flat B", "flat Δ", "cum A", "cum B", "cum Δ", "flat share A → B"],
                         [[f"`{r['name']}`", fmt.per_basis(r["flat_a"], unit, per),
                           fmt.per_basis(r["flat_b"], unit, per),
                           fmt.per_basis(r["flat_delta"], unit, per, signed=True),
                           fmt.per_basis(r["cum_a"], unit, per), fmt.per_basis(r["cum_b"], unit, per),
                           fmt.per_basis(r["cum_delta"], unit, per, signed=True),
                           f"{r['flat_pct_a']:.2f} → {r['flat_pct_b']:.2f} %"]
                          for r in cmp.profile]))
    elif cmp.profile_note:
        out.append(Paragraph(f"CPU profile: {cmp.profile_note}."))
    return out


def _sources_blocks(report: RunReport) -> list[Block]:
    out: list[Block] = [Rule(), Heading(2, "Data and commands")]
    out.append(Table(["source", "kind", "file", "bytes"],
                     [[str(s.source_id), s.kind, Path(s.path).name, fmt.count(s.bytes)] for s in report.sources]))
    cmds = [f"perflab doctor {report.run.run_id}"]
    if isinstance(report.cpu_profile, CpuProfile):
        cmds.append(f"perflab top {report.cpu_profile.source_id}")
    if isinstance(report.requests, RequestMetrics):
        cmds.append(f"perflab k6 {report.requests.source_id}")
    out.append(Code("\n".join(cmds)))
    out.append(Paragraph(f"Generated by perflab {report.perflab_version} from the store."))
    return out
