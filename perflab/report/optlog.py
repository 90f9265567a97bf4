"""The optimization log: one markdown entry per before/after pair, every number from the store.

An entry follows the tuning guide's template (Issue, Evidence, Hypothesis, Expected
impact, Implementation, Results with before and after, Actual impact, Conclusion).
The person writes only the title, the hypothesis and, optionally, the expected impact
and what was changed; everything else comes from two runs:

    Issue           the before run's scenario and the doctor's present signature(s)
    Evidence        the doctor's numbers for them, and the before run's top CPU frames
    Implementation  what the person says, and the settings that differ between the manifests
    Results         a before/after table (perflab.analysis.compare)
    Expected impact the person's --expected, else what the doctor's evidence predicts
                    for the settings that changed (perflab.analysis.optimization)
    Actual impact   each change in %, beyond noise or not, and the interval that says so
    Conclusion      confirmed / not confirmed / inconclusive, judged on the metric the
                    hypothesis targets (the signature's deciding evidence) beside p95 and the
                    error rate, naming what did not move, and whether the signature is gone

A number that is not there is written "not measured" with the reason, never left
empty. Dates are the runs' own start times, so rendering twice gives the same text.
In a log file each entry sits between two HTML comments carrying the pair of run ids,
so adding the same pair again replaces its entry instead of appending a second one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from perflab import fmt
from perflab.analysis.compare import Comparison, LatencyGroup, MetricRow, RunInfo, compare_runs
from perflab.analysis.optimization import expected_impact, judge, settings_diff
from perflab.analysis.profiles import top_frame
from perflab.analysis.run import Run
from perflab.analysis.signatures import Diagnosis, diagnose, signatures
from perflab.analysis.signatures._measure import Finding

DEFAULT_LOG = Path("reports") / "optimization-log.md"
LOG_HEADER = (
    "# Optimization log\n\n"
    "One entry per change, each measured by a before and an after run (`perflab log add`).\n"
)
# Five frames hold nearly all of a CPU-bound profile; more is a profile, not evidence.
TOP_FRAMES = 5
# The doctor's evidence carries bookkeeping (the window, what was used); these are not numbers.
_EVIDENCE_SKIP = {"used", "missing", "caveats", "window_method"}
# Evidence keys shown when the doctor's registry does not say which matter most.
_EVIDENCE_CAP = 12

NO_EXPECTED = ("not derived: the doctor found no signature in the before run to predict from, and no "
               "--expected was given")
_ENTRY_RE = re.compile(
    r"<!-- perflab-optlog (?P<id>[^>]*?) -->\n(?P<body>.*?)<!-- /perflab-optlog -->\n?", re.S)
_NUMBER_RE = re.compile(r"^## Optimization #(\d+):", re.M)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# -- the parts ---------------------------------------------------------------------------------

def _present(diag: Diagnosis) -> list[Finding]:
    return diag.present


def _issue(cmp: Comparison, diag: Diagnosis) -> str:
    a = cmp.a
    what = f"run `{a.run_id}`"
    if a.scenario:
        what += f" (scenario {a.scenario}, variant {a.variant or 'default'})"
    present = _present(diag)
    if not present:
        return f"{what}: the doctor finds no signature present."
    summaries = {name: sig.summary for name, sig in signatures().items()}
    parts = [f"{f.signature}" + (f" ({summaries[f.signature]})" if f.signature in summaries else "")
             for f in present]
    return f"{what}: the doctor finds {'; '.join(parts)} present."


def _evidence_lines(run_a: Run, cmp: Comparison, diag: Diagnosis) -> list[str]:
    lines: list[str] = []
    keys = {name: sig.key_evidence for name, sig in signatures().items()}
    for f in _present(diag):
        ev = f.evidence
        wanted = [k for k in keys.get(f.signature, ()) if ev.get(k) is not None]
        if not wanted:
            wanted = [k for k, v in ev.items() if k not in _EVIDENCE_SKIP and v is not None][:_EVIDENCE_CAP]
        nums = ", ".join(f"{k} = {fmt.number(ev[k]) if isinstance(ev[k], (int, float)) else ev[k]}"
                         for k in wanted)
        window = ""
        if ev.get("window_start_s") is not None and ev.get("window_end_s") is not None:
            window = (f" (steady window {fmt.number(ev['window_start_s'])}–{fmt.number(ev['window_end_s'])} s "
                      "of the run)")
        lines.append(f"- {f.signature}{window}: {nums}")
        if f.recommendation:
            lines.append(f"  - the doctor: {f.recommendation}")
    if not _present(diag):
        lines.append("- the doctor finds no signature present; the before run's headline numbers:")
        for row in cmp.metrics:
            if row.metric in ("latency p95", "service CPU p50", "dropped iterations", "waiting tasks p50",
                              "downstream calls per request"):
                lines.append(f"  - {row.metric}: {_value_or_reason(row, 'a')}")
    lines += _frames(run_a)
    return lines


def _frames(run: Run) -> list[str]:
    prof = run.cpu_profile
    if prof is None:
        return [f"- top CPU frames: not measured (no CPU profile in run `{run.run_id}`)"]
    sid = prof.source_id
    df = top_frame(run.store, sid).head(TOP_FRAMES)
    out = [f"- top CPU frames of the before run ({prof.name}, source {sid}; share of all CPU samples):"]
    for r in df.to_dicts():
        out.append(f"  - `{r['name']}`: flat {fmt.number(r['flat_pct'])} %, cum {fmt.number(r['cum_pct'])} %")
    if df.is_empty():
        out[-1] = f"- top CPU frames: not measured (the profile, source {sid}, has no samples)"
    return out


def _implementation(cmp: Comparison, implementation: str | None) -> list[str]:
    a, b = cmp.a, cmp.b
    missing = [r.run_id for r in (a, b) if not r.manifest]
    if missing:
        diff_text = ("not recorded: run " + " and ".join(f"`{m}`" for m in missing)
                     + " has no manifest (not a lab run), so its settings are unknown")
        changes: list[str] = []
    else:
        changes = settings_diff(a, b)
        diff_text = "; ".join(changes) if changes else "none: the two manifests list the same settings"
    if implementation:
        return [f"- Changed: {implementation}", f"- Settings that differ: {diff_text}"]
    return [f"- Changed: {diff_text}"]


def _value_or_reason(row: MetricRow, side: str) -> str:
    v = row.a if side == "a" else row.b
    if v is None:
        return row.note or "not measured"
    return fmt.value(v, row.unit)


RESULT_ROWS = (
    ("requests", "requests"),
    ("latency p50", "p50 latency"),
    ("latency p95", "p95 latency"),
    ("latency p99", "p99 latency"),
    ("throughput", "RPS"),
    ("error rate", "error rate"),
    ("dropped iterations", "dropped iterations"),
    ("service CPU p50", "service CPU p50"),
    ("service CPU per request", "service CPU per request"),
    ("downstream calls per request", "downstream calls per request"),
    ("waiting tasks p50", "waiting tasks p50"),
    ("waiting tasks max", "waiting tasks max"),
    ("other CPU on the host p50", "other CPU on the host p50 (context: load outside the run)"),
)


def _results(cmp: Comparison) -> list[str]:
    a, b = cmp.a, cmp.b
    by_metric = {r.metric: r for r in cmp.metrics}
    lines = [
        f"- Before: run `{a.run_id}`, started {a.started_at}",
        f"- After: run `{b.run_id}`, started {b.started_at}",
        "",
        "| metric | before | after |",
        "| --- | ---: | ---: |",
    ]
    for key, label in RESULT_ROWS:
        row = by_metric[key]
        lines.append(f"| {_cell(label)} | {_cell(_value_or_reason(row, 'a'))} | {_cell(_value_or_reason(row, 'b'))} |")
    endpoints: dict[str, LatencyGroup] = cmp.latency["endpoints"]
    if len(endpoints) > 1:
        for ep, g in endpoints.items():
            lines.append(f"| p95 latency, endpoint {_cell(ep)} | {_cell(_latency_cell(g, 'a'))} | "
                         f"{_cell(_latency_cell(g, 'b'))} |")
    return lines


def _latency_cell(group: LatencyGroup, side: str) -> str:
    v = (group.a if side == "a" else group.b)["p95"]
    return fmt.value(v, "ms") if v is not None else f"not measured (no requests in run {side.upper()})"


def _impact_line(row: MetricRow) -> str:
    name = row.metric
    if row.better is None:
        name += " (context: other work on the machine, not a result)"
    if row.a is None or row.b is None:
        return f"- {name}: {row.note or 'not measured'}"
    head = (f"- {name}: {fmt.value(row.a, row.unit)} → {fmt.value(row.b, row.unit)} "
            f"({fmt.signed_percent(row.change_pct)})")
    if row.beyond_noise is None or row.interval is None:
        return f"{head}; {row.note or 'not tested'}"
    judged = "beyond noise" if row.beyond_noise else "within noise"
    lo, hi = row.interval
    how = row.test["name"] if row.test else "interval"
    better = f", {row.direction}" if row.beyond_noise and row.direction in ("better", "worse") else ""
    return (f"{head}{better}: {judged} (95 % interval of after − before: {fmt.value(lo, row.unit)} to "
            f"{fmt.value(hi, row.unit)}; {how})")


IMPACT_ROWS = ("latency p50", "latency p95", "latency p99", "latency mean", "throughput", "error rate",
               "dropped iterations", "service CPU p50", "service CPU mean", "service CPU per request",
               "downstream calls per request",
               "waiting tasks p50", "waiting tasks max", "service RSS p50", "other CPU on the host p50")


def _conclusion(cmp: Comparison, diag_a: Diagnosis, diag_b: Diagnosis) -> str:
    j = judge(cmp, diag_a)
    text = f"**{j.conclusion}**: {j.why}."
    moved = [o.text for o in j.targets if o.outcome == "moved"]
    if moved and j.conclusion == "confirmed":
        text += " " + "; ".join(moved)[0].upper() + "; ".join(moved)[1:] + "."
    for o in j.beside:
        if o.outcome == "unchanged":
            text += f" {o.metric.capitalize()} unchanged: {o.text.removeprefix(o.metric + ' ')}."
        elif o.outcome == "untested":
            text += f" {o.metric.capitalize()}: {o.why}."
        else:
            text += f" {o.text[0].upper()}{o.text[1:]}."
    if j.also_moved:
        text += " Also beyond noise: " + "; ".join(o.text.replace(" beyond noise", "") for o in j.also_moved) + "."
    if j.unchanged:
        text += " Within noise too: " + "; ".join(o.text.removesuffix(", within noise") for o in j.unchanged) + "."
    return text + " " + _signature_fate(diag_a, diag_b)


def _signature_fate(diag_a: Diagnosis, diag_b: Diagnosis) -> str:
    present = _present(diag_a)
    if not present:
        return "The doctor found no signature in the before run, so none could go away."
    parts = []
    for f in present:
        name = f.signature
        after = diag_b.finding(name)
        va = after.verdict if after else None
        if va == "absent":
            parts.append(f"the {name} signature is gone in the after run (the doctor: absent)")
        elif va == "present":
            parts.append(f"the {name} signature is still present in the after run")
        else:
            parts.append(f"the {name} signature is not judged in the after run (the doctor: insufficient data)")
    still = [f.signature for f in _present(diag_b) if f.signature not in {p.signature for p in present}]
    text = "; ".join(parts)
    text = text[0].upper() + text[1:] + "."
    if still:
        text += " New in the after run: " + ", ".join(still) + "."
    return text


# -- the entry -------------------------------------------------------------------------------

def entry_id(before: str, after: str) -> str:
    """The pair of run ids as an HTML comment can hold them (no "--", no ">")."""
    def safe(s: str) -> str:
        return quote(s, safe="._~:@/+=").replace("--", "-%2D")

    return f"{safe(before)} {safe(after)}"


def render_entry(run_a: Run, run_b: Run, title: str, hypothesis: str,
                 expected: str | None = None, implementation: str | None = None, number: int = 1,
                 comparison: Comparison | None = None) -> str:
    """The markdown of one entry (between its id comments), pure: no file is touched."""
    cmp = comparison if comparison is not None else compare_runs(run_a, run_b)
    diag_a, diag_b = diagnose(run_a), diagnose(run_b)
    derived = expected_impact(cmp, diag_a, run_a.cpu_count)
    if expected and expected.strip():
        expected_text = expected.strip() + (f" (the doctor's evidence: {derived})" if derived else "")
    else:
        expected_text = f"{derived} (derived from the doctor's evidence)" if derived else NO_EXPECTED
    a, b = cmp.a, cmp.b
    by_metric = {r.metric: r for r in cmp.metrics}

    def label(r: RunInfo) -> str:
        bits = [x for x in (r.scenario, r.variant) if x]
        return f"`{r.run_id}`" + (f" ({', '.join(bits)})" if bits else "")

    lines = [
        f"<!-- perflab-optlog {entry_id(run_a.run_id, run_b.run_id)} -->",
        f"## Optimization #{number}: {title.strip()}",
        "",
        f"**Date:** {a.started_at} (before) → {b.started_at} (after)",
        f"**Runs:** before {label(a)} → after {label(b)}",
        "",
        f"**Issue:** {_issue(cmp, diag_a)}",
        "",
        "**Evidence:**",
        *_evidence_lines(run_a, cmp, diag_a),
        "",
        f"**Hypothesis:** {hypothesis.strip()}",
        "",
        f"**Expected impact:** {expected_text}",
        "",
        "**Implementation:**",
        *_implementation(cmp, implementation),
        "",
        "**Results:**",
        *_results(cmp),
        "",
        "**Actual impact:**",
        *[_impact_line(by_metric[m]) for m in IMPACT_ROWS],
        f"- the rule: {cmp.rule} (bootstraps: {cmp.bootstrap['resamples']:,} resamples, "
        f"seed {cmp.bootstrap['seed']})",
        "",
        f"**Conclusion:** {_conclusion(cmp, diag_a, diag_b)}",
        "<!-- /perflab-optlog -->",
        "",
    ]
    return "\n".join(lines)


def write_entry(path: str | os.PathLike[str], before: str, after: str, text_for_number: Any) -> tuple[str, int, bool]:
    """Put an entry into the log file; ``text_for_number(n)`` renders it as entry #n.

    Returns (entry, number, replaced). An entry of the same (before, after) pair is
    replaced in place and keeps its number; a new one is appended as the next number.
    """
    p = Path(path)
    content = p.read_text(encoding="utf-8") if p.exists() else LOG_HEADER
    eid = entry_id(before, after)
    existing = [m for m in _ENTRY_RE.finditer(content) if m.group("id") == eid]
    if existing:
        m = existing[0]
        found = _NUMBER_RE.search(m.group("body"))
        number = int(found.group(1)) if found else 1
        entry = text_for_number(number)
        content = content[:m.start()] + entry + content[m.end():]
    else:
        numbers = [int(n) for n in _NUMBER_RE.findall(content)]
        number = max(numbers, default=0) + 1
        entry = text_for_number(number)
        if not content.endswith("\n"):
            content += "\n"
        content += "\n" + entry
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(content, encoding="utf-8")
    tmp.replace(p)  # a crash mid-write leaves the old log, never half of one
    return entry, number, bool(existing)


def add_entry(run_a: Run, run_b: Run, title: str, hypothesis: str,
              expected: str | None = None, implementation: str | None = None,
              out: str | os.PathLike[str] | None = None) -> str:
    """Render the entry for (before, after) and put it into the log (``out``, default
    reports/optimization-log.md, created with a title if missing). Returns the entry."""
    entry, _, _ = add_entry_detail(run_a, run_b, title, hypothesis, expected, implementation, out)
    return entry


def add_entry_detail(run_a: Run, run_b: Run, title: str, hypothesis: str,
                     expected: str | None = None, implementation: str | None = None,
                     out: str | os.PathLike[str] | None = None) -> tuple[str, int, bool]:
    """As :func:`add_entry`, also returning the entry's number and whether it replaced one."""
    cmp = compare_runs(run_a, run_b)
    path = Path(out) if out is not None else DEFAULT_LOG
    return write_entry(path, run_a.run_id, run_b.run_id, lambda n: render_entry(
        run_a, run_b, title, hypothesis, expected, implementation, number=n, comparison=cmp))
