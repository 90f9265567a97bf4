"""The optimization log: one markdown entry per before/after pair, every number from the store.

An entry follows the tuning guide's template (Issue, Evidence, Hypothesis, Expected
impact, Implementation, Results with before and after, Actual impact, Conclusion).
The person writes only the title, the hypothesis and, optionally, the expected impact
and what was changed; everything else comes from two runs:

    Issue           the before run's scenario and the doctor's present signature(s)
    Evidence        the doctor's numbers for them, and the before run's top CPU frames
    Implementation  what the person says, and the settings that differ between the manifests
    Results         a before/after table (perflab.analysis.compare)
    Actual impact   each change in %, beyond noise or not, and the test that says so
    Conclusion      confirmed / no significant change / regressed (judged on p95 latency),
                    and whether the before run's signature is gone in the after run

A number that is not there is written "not measured" with the reason, never left
empty. Dates are the runs' own start times, so rendering twice gives the same text.
In a log file each entry sits between two HTML comments carrying the pair of run ids,
so adding the same pair again replaces its entry instead of appending a second one.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from perflab.analysis.compare import compare_runs
from perflab.analysis.runs import cpu_profile_source
from perflab.store import Store

DEFAULT_LOG = Path("reports") / "optimization-log.md"
LOG_HEADER = (
    "# Optimization log\n\n"
    "One entry per change, each measured by a before and an after run (`perflab log add`).\n"
)
# The verdict is judged on p95 latency: what a user of the service waits for, and the
# number every lab signature moves (LAB-NOTES: judge percentiles, not means).
PRIMARY_METRIC = "latency p95"
CONFIRMED, NO_CHANGE, REGRESSED = "confirmed", "no significant change", "regressed"
# Five frames hold nearly all of a CPU-bound profile; more is a profile, not evidence.
TOP_FRAMES = 5
# The doctor's evidence carries bookkeeping (the window, what was used); these are not numbers.
_EVIDENCE_SKIP = {"used", "missing", "caveats", "window_method"}
# Evidence keys shown when the doctor's registry does not say which matter most.
_EVIDENCE_CAP = 12

_ENTRY_RE = re.compile(
    r"<!-- perflab-optlog (?P<id>[^>]*?) -->\n(?P<body>.*?)<!-- /perflab-optlog -->\n?", re.S)
_NUMBER_RE = re.compile(r"^## Optimization #(\d+):", re.M)


# -- numbers as text ------------------------------------------------------------------------

def fmt_number(v: Any) -> str:
    """A number as the log prints it: thousands separated, 3-4 significant digits."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    v = float(v)
    if not math.isfinite(v):
        return "not measured (not a finite number)"
    a = abs(v)
    if v == int(v) and a < 1e15:
        return f"{int(v):,}"
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def fmt_value(v: Any, unit: str = "") -> str:
    if v is None:
        return "not measured"
    text = fmt_number(v)
    if unit in ("", "count"):
        return text
    return f"{text} {unit}"


def fmt_pct(p: float | None) -> str:
    if p is None:
        return "n/a (before was 0)"
    return f"{p:+.1f} %"


def fmt_p(p: float) -> str:
    return f"{p:.2g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# -- the parts ---------------------------------------------------------------------------------

def _diagnosis(store: Store, run_id: str) -> dict[str, Any] | None:
    """The doctor's findings, or None when perflab.analysis.signatures is not installed."""
    try:
        from perflab.analysis.signatures import diagnose
    except ImportError:
        return None
    return diagnose(store, run_id)


def _key_evidence() -> dict[str, tuple[str, ...]]:
    try:
        from perflab.analysis.signatures import signatures
    except ImportError:
        return {}
    return {name: sig.key_evidence for name, sig in signatures().items()}


def _summaries() -> dict[str, str]:
    try:
        from perflab.analysis.signatures import signatures
    except ImportError:
        return {}
    return {name: sig.summary for name, sig in signatures().items()}


def _present(diag: dict[str, Any] | None) -> list[dict[str, Any]]:
    if diag is None:
        return []
    return [f for f in diag["findings"] if f["verdict"] == "present"]


def _issue(cmp: dict[str, Any], diag: dict[str, Any] | None) -> str:
    a = cmp["a"]
    what = f"run `{a['run_id']}`"
    if a["scenario"]:
        what += f" (scenario {a['scenario']}, variant {a['variant'] or 'default'})"
    if diag is None:
        if a["signature"] and a["signature"] != "none":
            return (f"{what}: the scenario reproduces the {a['signature']} signature: {a['why']} "
                    "(from the run's manifest; the doctor, perflab.analysis.signatures, is not available).")
        return f"{what}: no signature known (the doctor, perflab.analysis.signatures, is not available)."
    present = _present(diag)
    if not present:
        return f"{what}: the doctor finds no signature present."
    summaries = _summaries()
    parts = [f"{f['signature']}" + (f" ({summaries[f['signature']]})" if f["signature"] in summaries else "")
             for f in present]
    return f"{what}: the doctor finds {'; '.join(parts)} present."


def _evidence_lines(store: Store, cmp: dict[str, Any], diag: dict[str, Any] | None) -> list[str]:
    lines: list[str] = []
    keys = _key_evidence()
    for f in _present(diag):
        ev = f["evidence"]
        wanted = [k for k in keys.get(f["signature"], ()) if ev.get(k) is not None]
        if not wanted:
            wanted = [k for k, v in ev.items() if k not in _EVIDENCE_SKIP and v is not None][:_EVIDENCE_CAP]
        nums = ", ".join(f"{k} = {fmt_number(ev[k]) if isinstance(ev[k], (int, float)) else ev[k]}"
                         for k in wanted)
        window = ""
        if ev.get("window_start_s") is not None and ev.get("window_end_s") is not None:
            window = (f" (steady window {fmt_number(ev['window_start_s'])}–{fmt_number(ev['window_end_s'])} s "
                      "of the run)")
        lines.append(f"- {f['signature']}{window}: {nums}")
        if f.get("recommendation"):
            lines.append(f"  - the doctor: {f['recommendation']}")
    if diag is None:
        lines.append("- the doctor (perflab.analysis.signatures) is not available; the before run's "
                     "headline numbers:")
    elif not _present(diag):
        lines.append("- the doctor finds no signature present; the before run's headline numbers:")
    if diag is None or not _present(diag):
        for row in cmp["metrics"]:
            if row["metric"] in ("latency p95", "service CPU p50", "dropped iterations", "waiting tasks p50",
                                 "DB queries per request"):
                lines.append(f"  - {row['metric']}: {_value_or_reason(row, 'a')}")
    lines += _frames(store, cmp)
    return lines


def _frames(store: Store, cmp: dict[str, Any]) -> list[str]:
    from perflab.analysis.profiles import top_frame

    run_id = cmp["a"]["run_id"]
    sid = cpu_profile_source(store, run_id)
    if sid is None:
        return [f"- top CPU frames: not measured (no CPU profile in run `{run_id}`)"]
    src = store.source(sid)
    df = top_frame(store, sid).head(TOP_FRAMES)
    out = [f"- top CPU frames of the before run ({Path(src['path']).name}, source {sid}; share of all CPU samples):"]
    for r in df.to_dicts():
        out.append(f"  - `{r['name']}`: flat {fmt_number(r['flat_pct'])} %, cum {fmt_number(r['cum_pct'])} %")
    if df.is_empty():
        out[-1] = f"- top CPU frames: not measured (the profile, source {sid}, has no samples)"
    return out


def settings_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """``KEY: before → after`` for every setting that differs between the two manifests."""
    sa, sb = a["settings"], b["settings"]
    out = []
    for key in sorted(set(sa) | set(sb)):
        va, vb = sa.get(key), sb.get(key)
        if va != vb:
            out.append(f"{key}: {'unset' if va is None else va} → {'unset' if vb is None else vb}")
    return out


def _implementation(cmp: dict[str, Any], implementation: str | None) -> list[str]:
    a, b = cmp["a"], cmp["b"]
    missing = [r["run_id"] for r in (a, b) if not r["manifest"]]
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


def _value_or_reason(row: dict[str, Any], side: str) -> str:
    v = row[side]
    if v is None:
        return row["note"] or "not measured"
    return fmt_value(v, row["unit"])


RESULT_ROWS = (
    ("requests", "requests"),
    ("latency p50", "p50 latency"),
    ("latency p95", "p95 latency"),
    ("latency p99", "p99 latency"),
    ("throughput", "RPS"),
    ("error rate", "error rate"),
    ("dropped iterations", "dropped iterations"),
    ("service CPU p50", "service CPU p50"),
    ("DB queries per request", "DB queries per request"),
    ("waiting tasks p50", "waiting tasks p50"),
    ("waiting tasks max", "waiting tasks max"),
    ("other CPU on the host p50", "other CPU on the host p50 (context: load outside the run)"),
)


def _results(cmp: dict[str, Any]) -> list[str]:
    a, b = cmp["a"], cmp["b"]
    by_metric = {r["metric"]: r for r in cmp["metrics"]}
    lines = [
        f"- Before: run `{a['run_id']}`, started {a['started_at']}",
        f"- After: run `{b['run_id']}`, started {b['started_at']}",
        "",
        "| metric | before | after |",
        "| --- | ---: | ---: |",
    ]
    for key, label in RESULT_ROWS:
        row = by_metric[key]
        lines.append(f"| {_cell(label)} | {_cell(_value_or_reason(row, 'a'))} | {_cell(_value_or_reason(row, 'b'))} |")
    endpoints = cmp["latency"]["endpoints"]
    if len(endpoints) > 1:
        for ep, g in endpoints.items():
            lines.append(f"| p95 latency, endpoint {_cell(ep)} | {_cell(_latency_cell(g, 'a'))} | "
                         f"{_cell(_latency_cell(g, 'b'))} |")
    return lines


def _latency_cell(group: dict[str, Any], side: str) -> str:
    v = group[side]["p95"]
    return fmt_value(v, "ms") if v is not None else f"not measured (no requests in run {side.upper()})"


def _impact_line(row: dict[str, Any]) -> str:
    name = row["metric"]
    if row["better"] is None:
        name += " (context: other work on the machine, not a result)"
    if row["a"] is None or row["b"] is None:
        return f"- {name}: {row['note'] or 'not measured'}"
    head = (f"- {name}: {fmt_value(row['a'], row['unit'])} → {fmt_value(row['b'], row['unit'])} "
            f"({fmt_pct(row['change_pct'])})")
    test = row["test"]
    if row["beyond_noise"] is None:
        return f"{head}; {row['note'] or 'not tested'}"
    verdict = "beyond noise" if row["beyond_noise"] else "within noise"
    detail = ""
    if test is not None:
        detail = f"{test['name']}: p = {fmt_p(test['p_value'])}"
        if test.get("effect_size") is not None:
            detail += f", common-language effect size {fmt_number(test['effect_size'])}"
        if test.get("ci") is not None:
            lo, hi = test["ci"]
            detail += (f"; bootstrap {int(test['ci_level'] * 100)} % interval of after - before: "
                       f"{fmt_value(lo, row['unit'])} to {fmt_value(hi, row['unit'])}")
    better = f", {row['direction']}" if row["direction"] in ("better", "worse") else ""
    return f"{head}{better}: {verdict} ({detail})" if detail else f"{head}{better}: {verdict}"


IMPACT_ROWS = ("latency p50", "latency p95", "latency p99", "latency mean", "throughput", "error rate",
               "dropped iterations", "service CPU p50", "service CPU mean", "DB queries per request",
               "waiting tasks p50", "waiting tasks max", "service RSS p50", "other CPU on the host p50")


def verdict(cmp: dict[str, Any]) -> str:
    """confirmed / no significant change / regressed, judged on p95 latency (PRIMARY_METRIC)."""
    row = next(r for r in cmp["metrics"] if r["metric"] == PRIMARY_METRIC)
    if row["beyond_noise"] is True and row["direction"] == "better":
        return CONFIRMED
    if row["beyond_noise"] is True and row["direction"] == "worse":
        return REGRESSED
    return NO_CHANGE


def _conclusion(cmp: dict[str, Any], diag_a: dict[str, Any] | None, diag_b: dict[str, Any] | None) -> str:
    v = verdict(cmp)
    row = next(r for r in cmp["metrics"] if r["metric"] == PRIMARY_METRIC)
    if row["a"] is None or row["b"] is None:
        text = f"**{v}**: p95 latency {row['note'] or 'not measured'}."
    elif row["beyond_noise"] is None:
        text = (f"**{v}**: p95 latency {fmt_value(row['a'], 'ms')} → {fmt_value(row['b'], 'ms')} "
                f"({fmt_pct(row['change_pct'])}), {row['note']}.")
    else:
        how = "beyond noise" if row["beyond_noise"] else "within noise"
        text = (f"**{v}**: p95 latency {fmt_value(row['a'], 'ms')} → {fmt_value(row['b'], 'ms')} "
                f"({fmt_pct(row['change_pct'])}), {how}.")
    judged = [r for r in cmp["metrics"] if r["better"] is not None and r["beyond_noise"] is True
              and r["metric"] != PRIMARY_METRIC]
    better = [r["metric"] for r in judged if r["direction"] == "better"]
    worse = [r["metric"] for r in judged if r["direction"] == "worse"]
    if better:
        text += " Also better beyond noise: " + ", ".join(better) + "."
    if worse:
        text += " Worse beyond noise: " + ", ".join(worse) + "."
    text += " " + _signature_fate(cmp, diag_a, diag_b)
    return text


def _signature_fate(cmp: dict[str, Any], diag_a: dict[str, Any] | None, diag_b: dict[str, Any] | None) -> str:
    if diag_a is None or diag_b is None:
        sig = cmp["a"]["signature"]
        name = f"the {sig} signature" if sig and sig != "none" else "the before run's signature"
        return (f"Whether {name} is gone is not judged: the doctor (perflab.analysis.signatures) "
                "is not available.")
    present = _present(diag_a)
    if not present:
        return "The doctor found no signature in the before run, so none could go away."
    after = {f["signature"]: f for f in diag_b["findings"]}
    parts = []
    for f in present:
        name = f["signature"]
        va = after.get(name, {}).get("verdict")
        if va == "absent":
            parts.append(f"the {name} signature is gone in the after run (the doctor: absent)")
        elif va == "present":
            parts.append(f"the {name} signature is still present in the after run")
        else:
            parts.append(f"the {name} signature is not judged in the after run (the doctor: insufficient data)")
    still = [f["signature"] for f in _present(diag_b) if f["signature"] not in {p["signature"] for p in present}]
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


def render_entry(store: Store, before: str, after: str, title: str, hypothesis: str,
                 expected: str | None = None, implementation: str | None = None, number: int = 1,
                 comparison: dict[str, Any] | None = None) -> str:
    """The markdown of one entry (between its id comments), pure: no file is touched."""
    cmp = comparison if comparison is not None else compare_runs(store, before, after)
    diag_a, diag_b = _diagnosis(store, before), _diagnosis(store, after)
    a, b = cmp["a"], cmp["b"]
    by_metric = {r["metric"]: r for r in cmp["metrics"]}

    def label(r: dict[str, Any]) -> str:
        bits = [x for x in (r["scenario"], r["variant"]) if x]
        return f"`{r['run_id']}`" + (f" ({', '.join(bits)})" if bits else "")

    lines = [
        f"<!-- perflab-optlog {entry_id(before, after)} -->",
        f"## Optimization #{number}: {title.strip()}",
        "",
        f"**Date:** {a['started_at']} (before) → {b['started_at']} (after)",
        f"**Runs:** before {label(a)} → after {label(b)}",
        "",
        f"**Issue:** {_issue(cmp, diag_a)}",
        "",
        "**Evidence:**",
        *_evidence_lines(store, cmp, diag_a),
        "",
        f"**Hypothesis:** {hypothesis.strip()}",
        "",
        f"**Expected impact:** {expected.strip() if expected and expected.strip() else 'not stated (no --expected given before the change)'}",
        "",
        "**Implementation:**",
        *_implementation(cmp, implementation),
        "",
        "**Results:**",
        *_results(cmp),
        "",
        "**Actual impact:**",
        *[_impact_line(by_metric[m]) for m in IMPACT_ROWS],
        f"- tests: two-sided, beyond noise at p < {cmp['alpha']}; latency also needs the bootstrap "
        f"{int(cmp['bootstrap']['level'] * 100)} % interval ({cmp['bootstrap']['resamples']:,} resamples, "
        f"seed {cmp['bootstrap']['seed']}) of after − before to exclude 0",
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


def add_entry(store: Store, before: str, after: str, title: str, hypothesis: str,
              expected: str | None = None, implementation: str | None = None,
              out: str | os.PathLike[str] | None = None) -> str:
    """Render the entry for (before, after) and put it into the log (``out``, default
    reports/optimization-log.md, created with a title if missing). Returns the entry."""
    entry, _, _ = add_entry_detail(store, before, after, title, hypothesis, expected, implementation, out)
    return entry


def add_entry_detail(store: Store, before: str, after: str, title: str, hypothesis: str,
                     expected: str | None = None, implementation: str | None = None,
                     out: str | os.PathLike[str] | None = None) -> tuple[str, int, bool]:
    """As :func:`add_entry`, also returning the entry's number and whether it replaced one."""
    cmp = compare_runs(store, before, after)
    path = Path(out) if out is not None else DEFAULT_LOG
    return write_entry(path, before, after, lambda n: render_entry(
        store, before, after, title, hypothesis, expected, implementation, number=n, comparison=cmp))
