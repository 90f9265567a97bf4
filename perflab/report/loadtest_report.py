"""`perflab report RUN`: the load-test analysis of one run, as markdown and HTML.

The report follows the shape of a hand-written load-test analysis (request metrics,
resource usage, top CPU consumers flat and cum, top allocations, strengths, areas for
improvement, scaling estimate, comparison to the previous baseline), with every number
filled from the store::

    build_report(store, run)  ->  report (plain dict: numbers, None where not measured)
        -> document(report)   ->  blocks (headings, paragraphs, lists, tables, chart slots)
            -> render_markdown(blocks)           report.md
            -> render_html(blocks, figures)      report.html (plotly.js inlined once)

Numbers come from perflab.analysis only: k6's own summary (k6_summary), the resource
samples, the CPU profile (profiles.top, categories), the doctor (signatures.diagnose),
the tuning guide's alert rules (alerts) and the capacity estimate (capacity). Absent
data is written as "not measured (why)", never as None, nan or a placeholder.

The parts that are being written alongside (signatures, categories, compare, charts)
are imported lazily: without one, its section says it is not available.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perflab import __version__
from perflab.analysis.alerts import (
    ERROR_RATE_THRESHOLD, P95_THRESHOLD_MS, evaluate_alerts, rules_table, steady_window,
)
from perflab.analysis.capacity import HEADROOM_CPU_FRACTION, SATURATION_FRACTION, run_capacity
from perflab.analysis.loadtest import k6_summary
from perflab.analysis.profiles import sample_types, top
from perflab.analysis.runs import cpu_profile_source, k6_source
from perflab.errors import PerflabError
from perflab.store import Store

# Rows of each CPU table (flat and cum): the seed analysis names 3; ten show what
# follows the hot spot without becoming pprof's full listing.
TOP_N = 10
HEAP_TOP_N = 10
# A hot-frame category above a third of the CPU is an area to work on: below that, even
# removing it entirely would speed a CPU-bound service up by less than 1.5× (Amdahl).
HOT_CATEGORY_SHARE = 0.3
# One function with a fifth of the CPU to itself (flat) is a hot spot worth naming.
HOT_FUNCTION_SHARE = 0.2
# Checks listed one by one; beyond this the table lists the failing ones first.
MAX_CHECK_ROWS = 20
# Evidence items shown per signature in the table (the JSON has them all).
MAX_EVIDENCE_ITEMS = 6
ROLE_ORDER = ("service", "postgres", "k6", "host")
MIB = 1024.0 * 1024.0
DEFAULT_OUT = Path("reports")
# Heap profiles are recognised by their sample types (Go's heap/allocs profiles).
HEAP_TYPES = ("inuse_space", "alloc_space", "space")


# -- formatting ----------------------------------------------------------------------------

def missing(reason: str) -> str:
    return f"not measured ({reason})"


def _ok(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and not math.isfinite(v))


def fmt_ms(v: Any, reason: str = "no data") -> str:
    return f"{v:.2f} ms" if _ok(v) else missing(reason)


def fmt_pct(fraction: Any, reason: str = "no data", digits: int = 2) -> str:
    return f"{100 * fraction:.{digits}f} %" if _ok(fraction) else missing(reason)


def fmt_cpu(v: Any, reason: str = "no samples") -> str:
    return f"{v:.1f} %" if _ok(v) else missing(reason)


def fmt_num(v: Any, digits: int = 2, reason: str = "no data") -> str:
    if not _ok(v):
        return missing(reason)
    if float(v) == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.{digits}f}"


def fmt_mib(v: Any, reason: str = "no samples") -> str:
    return f"{v / MIB:.1f} MiB" if _ok(v) else missing(reason)


def fmt_profile_value(v: float, unit: str) -> str:
    """A profile value in a readable unit: CPU nanoseconds as seconds (pprof prints 1.44s)."""
    if unit == "nanoseconds":
        return f"{v / 1e9:.2f} s"
    if unit == "seconds":
        return f"{v:.3f} s"
    if unit == "bytes":
        return f"{v / MIB:.2f} MiB" if abs(v) >= MIB / 10 else f"{v / 1024:.1f} KiB"
    return f"{v:,}" if isinstance(v, int) else f"{v:,.2f}"


def fmt_seconds(v: Any, reason: str = "no data") -> str:
    return f"{v:.1f} s" if _ok(v) else missing(reason)


# -- gathering -------------------------------------------------------------------------------

def build_report(store: Store, run_id: str, target_rps: float | None = None) -> dict[str, Any]:
    """Every number of the report for one run, as plain data (what ``--json`` prints)."""
    rows = store.sql("SELECT * FROM runs WHERE run_id = ?", [run_id]).to_dicts()
    if not rows:
        raise PerflabError(f"no run {run_id!r} in {store.path} (see `perflab runs`)")
    if target_rps is not None and not target_rps > 0:
        raise PerflabError("--target-rps must be positive")
    run = rows[0]
    manifest = json.loads(run["manifest"]) if run["manifest"] else {}
    window = steady_window(store, run_id)
    report: dict[str, Any] = {
        "run": {
            "run_id": run_id, "scenario": run["scenario"], "variant": run["variant"],
            "status": run["status"] or "complete", "started_at": manifest.get("started_at")
            or run["created_at"].isoformat(), "settings": manifest.get("settings") or {},
            "rate": manifest.get("rate"), "duration_s": manifest.get("duration_s"),
            "signature": manifest.get("signature"), "profile": manifest.get("profile") or {},
            "host": manifest.get("host") or {},
        },
        "window": _window_relative(window),
        "perflab_version": __version__,
    }
    report["requests"] = request_metrics(store, run_id)
    report["resources"] = resource_usage(store, run_id, window)
    report["cpu_profile"] = cpu_profile_section(store, run_id)
    report["heap_profile"] = heap_profile_section(store, run_id)
    report["signatures"] = signatures_section(store, run_id)
    report["alerts"] = {"rules": rules_table(), "results": evaluate_alerts(store, run_id, window)}
    report["capacity"] = run_capacity(store, run_id, window, target_rps=target_rps)
    report["assessment"] = assess(report)
    report["comparison"] = comparison_section(store, run_id, run)
    report["sources"] = store.sql(
        "SELECT source_id, kind, path, bytes FROM sources WHERE run_id = ? ORDER BY source_id", [run_id]
    ).to_dicts()
    report["charts"] = []
    return plain(report)


def plain(obj: Any) -> Any:
    """The report as JSON's own types: numpy scalars (an analysis may hand back a numpy
    bool or float64) become Python ones, so ``--json`` and the renderers see one kind."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if hasattr(obj, "item") and type(obj).__module__ == "numpy":
        return obj.item()
    return obj


def _window_relative(w: dict[str, Any] | None) -> dict[str, Any] | None:
    if w is None:
        return None
    return {"start_s": round(w["start_s"] - w["t0_s"], 3), "end_s": round(w["end_s"] - w["t0_s"], 3),
            "span_s": round(w["t1_s"] - w["t0_s"], 3), "method": w["method"]}


def request_metrics(store: Store, run_id: str) -> dict[str, Any]:
    """k6's own numbers: overall and per endpoint tag, errors, dropped iterations, checks."""
    sid = k6_source(store, run_id)
    by: str | None = "endpoint"
    if sid is None:
        rows = store.con.execute("SELECT source_id FROM sources WHERE run_id = ? AND kind = 'k6-summary' "
                                 "ORDER BY source_id LIMIT 1", [run_id]).fetchall()
        if not rows:
            return {"reason": "no k6 output in this run"}
        sid, by = int(rows[0][0]), None
    summary = k6_summary(store, sid, by=by)
    m = summary["metrics"]
    duration = summary.get("duration_s")

    def group(suffix: str) -> dict[str, Any]:
        dur = m.get(f"http_req_duration{suffix}", {})
        reqs = m.get(f"http_reqs{suffix}", {})
        failed = m.get(f"http_req_failed{suffix}", {})
        count = reqs.get("count", dur.get("count"))
        return {
            "requests": count,
            "rps": (count / duration) if (count is not None and duration) else None,
            "p50_ms": dur.get("med"), "p90_ms": dur.get("p(90)"), "p95_ms": dur.get("p(95)"),
            "p99_ms": dur.get("p(99)"), "max_ms": dur.get("max"), "avg_ms": dur.get("avg"),
            "error_rate": failed.get("rate"), "failed": failed.get("passes"),
        }

    overall = group("")
    # k6's own rate (count over its test-run duration) for the whole test.
    overall["rps"] = m.get("http_reqs", {}).get("rate", overall["rps"])
    endpoints = {}
    prefix = "http_req_duration{endpoint:"
    for name in sorted(m):
        if name.startswith(prefix) and name.endswith("}") and "," not in name:
            ep = name[len(prefix):-1]
            endpoints[ep] = group("{endpoint:" + ep + "}")
    totals = summary["totals"]
    checks = [{"check": path.lstrip(":"), "passes": c["passes"], "fails": c["fails"]}
              for path, c in summary.get("checks", {}).items()]
    return {
        "source_id": sid, "duration_s": duration, "duration_source": summary.get("duration_source"),
        "overall": overall, "endpoints": endpoints,
        # k6 writes dropped_iterations only when it drops one: no metric is zero drops.
        "dropped_iterations": int(totals.get("dropped_iterations") or 0),
        "iterations": totals.get("iterations"),
        "checks": checks, "checks_passes": totals.get("checks_passes"), "checks_fails": totals.get("checks_fails"),
        "checks_rate": totals.get("checks_rate"),
        "thresholds_crossed": summary.get("thresholds_crossed", []),
    }


def resource_usage(store: Store, run_id: str, window: dict[str, Any] | None) -> dict[str, Any]:
    """CPU (% of one core) p50/p95/mean and RSS per role over the steady window."""
    lo, hi = (window["start_s"], window["end_s"]) if window else (-math.inf, math.inf)
    df = store.sql(
        """SELECT role, count(cpu_pct) AS samples,
                  quantile_cont(cpu_pct, 0.5) AS cpu_p50, quantile_cont(cpu_pct, 0.95) AS cpu_p95,
                  avg(cpu_pct) AS cpu_mean, max(cpu_pct) AS cpu_max,
                  quantile_cont(rss_bytes, 0.5) AS rss_p50, max(rss_bytes) AS rss_max,
                  max(threads) AS threads_max
           FROM resource_samples
           WHERE run_id = ? AND epoch_us(t) / 1e6 BETWEEN ? AND ?
           GROUP BY role""", [run_id, lo, hi])
    order = {r: i for i, r in enumerate(ROLE_ORDER)}
    roles = sorted(df.to_dicts(), key=lambda r: (order.get(r["role"], len(order)), r["role"]))
    from perflab.analysis.capacity import machine_cores

    out: dict[str, Any] = {"roles": roles, "cores": machine_cores(store, run_id),
                           "over": "the steady window" if window else "the whole run"}
    if not roles:
        out["reason"] = "no resource samples in this run"
    return out


def cpu_profile_section(store: Store, run_id: str) -> dict[str, Any]:
    sid = cpu_profile_source(store, run_id)
    if sid is None:
        return {"reason": "no CPU profile in this run"}
    full = top(store, sid)
    rows = full["rows"]
    by_cum = sorted(rows, key=lambda r: (-r["cum"], -r["flat"], r["name"]))
    out: dict[str, Any] = {
        "source_id": sid, "path": store.source(sid)["path"], "format": full["format"],
        "sample_type": full["sample_type"], "unit": full["unit"], "total": full["total"],
        "functions": len(rows), "flat": rows[:TOP_N], "cum": by_cum[:TOP_N],
    }
    if full["format"] == "pprof":
        info = store.sql("SELECT time_nanos, duration_nanos FROM pprof_profiles WHERE source_id = ?",
                         [sid]).to_dicts()[0]
        out["duration_s"] = info["duration_nanos"] / 1e9 if info["duration_nanos"] else None
    try:
        from perflab.analysis.categories import categories
    except ImportError:
        out["categories"] = None
        out["categories_reason"] = "perflab.analysis.categories is not installed"
        return out
    cats = categories(store, sid)
    out["categories"] = {
        "shares": cats.get("categories", {}),
        "top_frames": {k: (v[0]["name"] if v else None) for k, v in (cats.get("top_frames") or {}).items()},
        "unattributed": cats.get("unattributed"),
    }
    return out


def heap_profile_section(store: Store, run_id: str) -> dict[str, Any]:
    rows = store.con.execute(
        """SELECT s.source_id FROM sources s WHERE s.run_id = ? AND s.kind = 'pprof' AND EXISTS (
               SELECT 1 FROM pprof_sample_types t WHERE t.source_id = s.source_id AND t.type IN ?)
           ORDER BY s.source_id LIMIT 1""", [run_id, list(HEAP_TYPES)]).fetchall()
    if not rows:
        return {"reason": "no heap profile in this run"}
    sid = int(rows[0][0])
    types = [t["type"] for t in sample_types(store, sid)]
    shown = "inuse_space" if "inuse_space" in types else next(t for t in HEAP_TYPES if t in types)
    full = top(store, sid, sample_type=shown)
    totals = {}
    for t in ("inuse_space", "alloc_space"):
        if t in types:
            totals[t] = top(store, sid, sample_type=t, limit=1)["total"]
    return {"source_id": sid, "path": store.source(sid)["path"], "sample_type": shown, "unit": full["unit"],
            "total": full["total"], "totals": totals, "rows": full["rows"][:HEAP_TOP_N],
            "functions": len(full["rows"])}


# The doctor's window facts, repeated in every finding: the report states the window once.
_WINDOW_KEYS = {"window_start_s", "window_end_s", "run_span_s", "window_method"}


def signatures_section(store: Store, run_id: str) -> dict[str, Any]:
    try:
        from perflab.analysis.signatures import diagnose
    except ImportError as exc:
        return {"reason": f"perflab.analysis.signatures is not installed ({exc})", "findings": []}
    result = diagnose(store, run_id)
    keys: dict[str, tuple[str, ...]] = {}
    try:
        from perflab.analysis.signatures import signatures

        keys = {name: sig.key_evidence for name, sig in signatures().items()}
    except (ImportError, AttributeError):
        pass
    findings = []
    for f in result.get("findings", []):
        ev = f.get("evidence") or {}
        wanted = keys.get(f.get("signature"), ())
        shown = {k: ev[k] for k in wanted if _ok(ev.get(k)) and not isinstance(ev.get(k), (list, dict))}
        if not shown:
            shown = {k: v for k, v in ev.items()
                     if isinstance(v, (int, float)) and _ok(v) and k not in _WINDOW_KEYS}
        findings.append({**f, "key_evidence": dict(list(shown.items())[:MAX_EVIDENCE_ITEMS])})
    return {"findings": findings}


def previous_run(store: Store, run_id: str, run: dict[str, Any]) -> str | None:
    """The latest complete run of the same scenario and variant registered before this one."""
    if not run.get("scenario"):
        return None
    rows = store.con.execute(
        """SELECT run_id FROM runs WHERE scenario = ? AND variant IS NOT DISTINCT FROM ?
             AND coalesce(status, 'complete') = 'complete' AND run_id <> ?
             AND (created_at < ? OR (created_at = ? AND run_id < ?))
           ORDER BY created_at DESC, run_id DESC LIMIT 1""",
        [run["scenario"], run.get("variant"), run_id, run["created_at"], run["created_at"], run_id]).fetchall()
    return str(rows[0][0]) if rows else None


def comparison_section(store: Store, run_id: str, run: dict[str, Any]) -> dict[str, Any]:
    prev = previous_run(store, run_id, run)
    if prev is None:
        why = "" if run.get("scenario") else " (the run has no scenario: a group of files)"
        return {"previous": None, "reason": f"no previous run of this scenario{why}"}
    try:
        from perflab.analysis.compare import compare_runs
    except ImportError:
        return {"previous": prev, "reason": f"no previous run of this scenario could be compared "
                                            f"(perflab.analysis.compare is not installed; previous run {prev})"}
    result = compare_runs(store, prev, run_id)
    return {"previous": prev, "metrics": result.get("metrics", []),
            "profile": (result.get("profile") or {}).get("rows", [])[:TOP_N],
            "profile_note": (result.get("profile") or {}).get("note"), "alpha": result.get("alpha")}


# -- strengths and areas -------------------------------------------------------------------------

def assess(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Strengths and areas for improvement, each derived from a measured number by a named
    threshold (the alert thresholds, the capacity headroom, HOT_*_SHARE)."""
    strengths: list[dict[str, Any]] = []
    areas: list[dict[str, Any]] = []
    req = report["requests"]
    if "overall" in req:
        o = req["overall"]
        rate, n = o.get("error_rate"), o.get("requests")
        if _ok(rate) and rate == 0:
            strengths.append(_item("No failed requests", f"http_req_failed 0 of {fmt_num(n)} requests"))
        elif _ok(rate):
            fired = rate > ERROR_RATE_THRESHOLD
            areas.append(_item("Failed requests", f"error rate {fmt_pct(rate)} ({fmt_num(o.get('failed'))} of "
                               f"{fmt_num(n)}), {'above' if fired else 'below'} the "
                               f"{ERROR_RATE_THRESHOLD:.0%} alert threshold"))
        p95 = o.get("p95_ms")
        if _ok(p95) and p95 <= P95_THRESHOLD_MS:
            strengths.append(_item("Latency within the alert threshold",
                                   f"p95 {fmt_ms(p95)} ≤ {P95_THRESHOLD_MS:g} ms (p99 {fmt_ms(o.get('p99_ms'))})"))
        elif _ok(p95):
            areas.append(_item("Latency over the alert threshold",
                               f"p95 {fmt_ms(p95)} > {P95_THRESHOLD_MS:g} ms (max {fmt_ms(o.get('max_ms'))})"))
        dropped = req.get("dropped_iterations", 0)
        if dropped:
            areas.append(_item("k6 could not keep the offered rate",
                               f"{fmt_num(dropped)} dropped iterations: those requests are missing from "
                               "the latency figures, which are therefore optimistic"))
        else:
            strengths.append(_item("The offered rate was kept", "0 dropped iterations"))
        fails, passes = req.get("checks_fails"), req.get("checks_passes")
        if _ok(fails) and fails > 0:
            failing = [c["check"] for c in req.get("checks", []) if c["fails"]]
            areas.append(_item("Failed checks", f"{fmt_num(fails)} of {fmt_num((passes or 0) + fails)} checks failed"
                               + (f" ({', '.join(failing[:3])})" if failing else "")))
        elif _ok(passes) and passes > 0:
            strengths.append(_item("Every check passed", f"{fmt_num(passes)} checks"))
    cap = report["capacity"]
    service = next((r for r in report["resources"].get("roles", []) if r["role"] == "service"), None)
    if cap.get("saturated"):
        areas.append(_item("The service was saturated", "; ".join(cap["saturation_reasons"])))
    elif service and _ok(service.get("cpu_p95")) and cap.get("cores"):
        ceiling = HEADROOM_CPU_FRACTION * cap["cores"] * 100
        if service["cpu_p95"] <= ceiling:
            strengths.append(_item("CPU headroom", f"service CPU p95 {fmt_cpu(service['cpu_p95'])} of one core, "
                                   f"within the planned {HEADROOM_CPU_FRACTION:.0%} of {cap['cores']} cores "
                                   f"({ceiling:.0f} %)"))
        else:
            areas.append(_item("Little CPU headroom", f"service CPU p95 {fmt_cpu(service['cpu_p95'])} is above "
                               f"{HEADROOM_CPU_FRACTION:.0%} of {cap['cores']} cores ({ceiling:.0f} %)"))
    prof = report["cpu_profile"]
    if prof.get("flat"):
        first = prof["flat"][0]
        if first["flat_pct"] / 100 >= HOT_FUNCTION_SHARE:
            areas.append(_item(f"`{first['name']}` is the hottest function",
                               f"{first['flat_pct']:.2f} % flat CPU ({fmt_profile_value(first['flat'], prof['unit'])} "
                               f"of {fmt_profile_value(prof['total'], prof['unit'])})"))
    for name, share in sorted(((prof.get("categories") or {}).get("shares") or {}).items(),
                              key=lambda kv: (-kv[1], kv[0])):
        if name != "other" and share >= HOT_CATEGORY_SHARE:
            frame = prof["categories"]["top_frames"].get(name)
            areas.append(_item(f"{name.capitalize()} takes {fmt_pct(share, digits=1)} of the CPU",
                               f"above {HOT_CATEGORY_SHARE:.0%}" + (f"; top frame `{frame}`" if frame else "")))
    results = report["alerts"]["results"]
    measured = [r for r in results if r.get("fired") is not None]
    for r in measured:
        if r["fired"]:
            areas.append(_item(f"Alert {r['rule']} fired", f"above the threshold for {fmt_seconds(r['seconds_above'])}, "
                               f"peak {_alert_value(r, r['peak'])}"))
    if measured and not any(r["fired"] for r in measured):
        strengths.append(_item("No alert rule fired", ", ".join(r["rule"] for r in measured) + " stayed below "
                               "their thresholds in the steady window"))
    findings = report["signatures"].get("findings", [])
    present = [f for f in findings if f.get("verdict") == "present"]
    for f in present:
        areas.append(_item(f"Signature {f['signature']} present", f.get("recommendation") or "see the evidence"))
    absent = [f["signature"] for f in findings if f.get("verdict") == "absent"]
    if findings and not present and absent:
        strengths.append(_item("No bottleneck signature present", f"judged absent: {', '.join(absent)}"))
    return {"strengths": strengths, "areas": areas}


def _item(title: str, detail: str) -> dict[str, Any]:
    return {"title": title, "detail": detail}


def _alert_value(r: dict[str, Any], v: Any) -> str:
    if not _ok(v):
        return missing("no samples")
    if r["unit"] == "ms":
        return fmt_ms(v)
    if r["rule"] == "BufferSizeHigh" and _ok(r.get("buffer_limit")):
        return f"{fmt_pct(v, digits=1)} ({v * r['buffer_limit']:,.0f} of {r['buffer_limit']:,.0f})"
    return fmt_pct(v, digits=1)


# -- the document ----------------------------------------------------------------------------------
# Blocks: ("h", level, text) ("p", text) ("ul", [text]) ("ol", [(text, [sub])]) ("table", head, rows)
# ("code", text) ("charts", section) ("hr",). Inline markup: **bold** and `code` only.

Block = tuple[Any, ...]


def document(report: dict[str, Any]) -> list[Block]:
    run = report["run"]
    req = report["requests"]
    win = report["window"]
    out: list[Block] = [("h", 1, f"Load test analysis: {run['run_id']}")]
    scen = (f"{run['scenario']} (variant {run['variant']})" if run["scenario"]
            else "a group of files (no lab scenario)")
    head = [f"**Scenario:** {scen}"]
    if run.get("rate") is not None:
        head.append(f"**Offered load:** {fmt_num(run['rate'])} iterations/s for {fmt_seconds(run.get('duration_s'))}")
    head.append(f"**Test duration:** {fmt_seconds(req.get('duration_s'), req.get('reason', 'k6 did not say'))}"
                + (f" ({req['duration_source']})" if req.get("duration_source") else ""))
    head.append("**Steady state:** " + (f"{win['start_s']:.1f}–{win['end_s']:.1f} s of {win['span_s']:.1f} s "
                                          f"({win['method']})" if win else missing("the run has no samples")))
    prof = report["cpu_profile"]
    if "source_id" in prof:
        taken = run["profile"]
        when = (f", taken {taken['started_after_s']:.1f} s into the run" if _ok(taken.get("started_after_s"))
                else "")
        head.append(f"**CPU profile:** {Path(prof['path']).name} (source {prof['source_id']}, "
                    f"{fmt_seconds(prof.get('duration_s'), 'the profile does not say')}{when})")
    else:
        head.append(f"**CPU profile:** {missing(prof['reason'])}")
    head.append(f"**Total iterations:** {fmt_num(req.get('iterations'), reason=req.get('reason', 'no k6 data'))}")
    head.append(f"**Started:** {run['started_at']} · **Status:** {run['status']}")
    out += [("p", "  \n".join(head)), ("hr",), ("h", 2, "Service performance")]
    out += _request_blocks(req)
    out += _resource_blocks(report["resources"])
    out += _cpu_blocks(prof)
    out += _heap_blocks(report["heap_profile"])
    out += _signature_blocks(report["signatures"])
    out += [("hr",), ("h", 2, "Performance assessment")]
    for title, key, none in (("✅ Strengths", "strengths", "none by these rules"),
                             ("⚠️ Areas for further optimization", "areas", "none by these rules")):
        items = report["assessment"][key]
        out.append(("h", 3, title))
        out.append(("ol", [(f"**{i['title']}**", [i["detail"]]) for i in items]) if items else ("p", none + "."))
    out += [("p", f"Thresholds: error rate 0 is a strength and above 0 an area; p95 over "
                  f"{P95_THRESHOLD_MS:g} ms, a hot-frame category over {HOT_CATEGORY_SHARE:.0%} of the CPU and "
                  f"one function over {HOT_FUNCTION_SHARE:.0%} flat are areas; CPU p95 within "
                  f"{HEADROOM_CPU_FRACTION:.0%} of the cores is headroom.")]
    out += _alert_blocks(report["alerts"])
    out += _capacity_blocks(report["capacity"], report["resources"])
    out += _comparison_blocks(report["comparison"])
    out += _sources_blocks(report)
    return out


def _request_blocks(req: dict[str, Any]) -> list[Block]:
    out: list[Block] = [("h", 3, "Request metrics")]
    if "overall" not in req:
        return out + [("p", missing(req["reason"]) + ".")]
    o = req["overall"]
    out.append(("ul", [
        f"**Requests:** {fmt_num(o['requests'])} at {fmt_num(o['rps'], reason='no test duration')} req/s "
        f"(k6 source {req['source_id']})",
        f"**Error rate:** {fmt_pct(o['error_rate'], 'no http_req_failed samples')}"
        + (f" ({fmt_num(o['failed'])} failed)" if _ok(o.get("failed")) else ""),
        f"**Dropped iterations:** {fmt_num(req['dropped_iterations'])}",
        f"**Checks:** {fmt_num(req.get('checks_passes'), reason='no checks')} passed, "
        f"{fmt_num(req.get('checks_fails'), reason='no checks')} failed",
    ]))
    head = ["endpoint", "requests", "req/s", "p50", "p90", "p95", "p99", "max", "error rate"]
    rows = [_endpoint_row("**overall**", o)]
    rows += [_endpoint_row(f"`{ep}`", g) for ep, g in req["endpoints"].items()]
    out.append(("table", head, rows))
    out.append(("p", "Latency is k6's http_req_duration (its own percentile rule); requests/s is the count over "
                     "k6's test-run duration."))
    if req["checks"]:
        checks = sorted(req["checks"], key=lambda c: -c["fails"]) if len(req["checks"]) > MAX_CHECK_ROWS \
            else req["checks"]
        out.append(("table", ["check", "passes", "fails"],
                    [[c["check"], fmt_num(c["passes"]), fmt_num(c["fails"])] for c in checks[:MAX_CHECK_ROWS]]))
    if req["thresholds_crossed"]:
        out.append(("p", "**k6 thresholds crossed:** " + "; ".join(f"`{t}`" for t in req["thresholds_crossed"])))
    out.append(("charts", "requests"))
    return out


def _endpoint_row(label: str, g: dict[str, Any]) -> list[str]:
    return [label, fmt_num(g["requests"], reason="no requests"), fmt_num(g["rps"], reason="no duration"),
            fmt_ms(g["p50_ms"]), fmt_ms(g["p90_ms"]), fmt_ms(g["p95_ms"]), fmt_ms(g["p99_ms"]),
            fmt_ms(g["max_ms"]), fmt_pct(g["error_rate"], "no http_req_failed samples")]


def _resource_blocks(res: dict[str, Any]) -> list[Block]:
    out: list[Block] = [("h", 3, "Resource usage")]
    if not res["roles"]:
        return out + [("p", missing(res["reason"]) + ".")]
    cores = res.get("cores")
    out.append(("p", f"CPU in % of one core ({fmt_num(cores, reason='core count unknown')} cores = "
                     f"{fmt_num(cores * 100 if cores else None, reason='unknown')} %), over {res['over']}; "
                     "RSS is the resident memory of every process of the role."))
    rows = [[r["role"], fmt_num(r["samples"]), fmt_cpu(r["cpu_p50"]), fmt_cpu(r["cpu_p95"]), fmt_cpu(r["cpu_mean"]),
             fmt_mib(r["rss_p50"]), fmt_mib(r["rss_max"])] for r in res["roles"]]
    out.append(("table", ["role", "samples", "CPU p50", "CPU p95", "CPU mean", "RSS p50", "RSS max"], rows))
    out.append(("charts", "resources"))
    return out


def _cpu_blocks(prof: dict[str, Any]) -> list[Block]:
    out: list[Block] = [("h", 3, "CPU profile analysis (top consumers)")]
    if "source_id" not in prof:
        return out + [("p", missing(prof["reason"]) + ".")]
    unit = prof["unit"]
    total = fmt_profile_value(prof["total"], unit)
    out.append(("p", f"Source {prof['source_id']} ({prof['format']}, {prof['sample_type']}): {total} total over "
                     f"{fmt_num(prof['functions'])} functions. Flat is the time in the function itself, cum "
                     "includes what it called (as `go tool pprof -top`)."))

    def table(rows: list[dict[str, Any]]) -> Block:
        return ("table", ["#", "function", "flat", "flat %", "cum", "cum %"],
                [[str(i), f"`{r['name']}`", fmt_profile_value(r["flat"], unit), f"{r['flat_pct']:.2f} %",
                  fmt_profile_value(r["cum"], unit), f"{r['cum_pct']:.2f} %"] for i, r in enumerate(rows, 1)])

    out += [("p", f"**Top {len(prof['flat'])} by flat:**"), table(prof["flat"]),
            ("p", f"**Top {len(prof['cum'])} by cum:**"), table(prof["cum"])]
    findings = []
    if prof["flat"]:
        f = prof["flat"][0]
        findings.append(f"**`{f['name']}`** is the hottest function with {f['flat_pct']:.2f} % flat CPU")
    if prof["cum"]:
        c = prof["cum"][0]
        findings.append(f"**`{c['name']}`** holds the most cumulative CPU: {c['cum_pct']:.2f} %")
    cats = prof.get("categories")
    if cats:
        shares = sorted(((k, v) for k, v in cats["shares"].items() if v), key=lambda kv: (-kv[1], kv[0]))
        findings.append("Hot-frame categories: " + ", ".join(
            f"{k} {fmt_pct(v, digits=1)}" + (f" (`{cats['top_frames'][k]}`)" if cats["top_frames"].get(k) else "")
            for k, v in shares) if shares else "Hot-frame categories: no sample in any category")
    else:
        findings.append(f"Hot-frame categories: {missing(prof.get('categories_reason', 'not computed'))}")
    out += [("p", "**Key findings:**"), ("ul", findings), ("charts", "cpu")]
    return out


def _heap_blocks(heap: dict[str, Any]) -> list[Block]:
    out: list[Block] = [("h", 3, "Memory profile analysis")]
    if "source_id" not in heap:
        return out + [("p", heap["reason"].capitalize() + ".")]
    unit = heap["unit"]
    parts = [f"{t.replace('_', ' ')} {fmt_profile_value(v, 'bytes')}" for t, v in heap["totals"].items()]
    out.append(("p", f"Source {heap['source_id']} ({Path(heap['path']).name}): " + "; ".join(parts)
                + f". Top allocations by {heap['sample_type']}:"))
    out.append(("table", ["#", "function", "flat", "flat %", "cum", "cum %"],
                [[str(i), f"`{r['name']}`", fmt_profile_value(r["flat"], unit), f"{r['flat_pct']:.2f} %",
                  fmt_profile_value(r["cum"], unit), f"{r['cum_pct']:.2f} %"]
                 for i, r in enumerate(heap["rows"], 1)]))
    return out


# Evidence keys shown as percentages (fractions in the data) and as MiB (bytes), as
# `perflab doctor` prints them.
_PERCENT_SUFFIXES = ("_share", "_rate", "_fraction", "_growth")
_BYTES_SUFFIX = "_bytes"


def _evidence_text(ev: dict[str, Any]) -> str:
    def one(k: str, v: Any) -> str:
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, (int, float)) and k.endswith(_BYTES_SUFFIX):
            return fmt_mib(v)
        if isinstance(v, (int, float)) and k.endswith(_PERCENT_SUFFIXES):
            return fmt_pct(v, digits=1)
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)
    return ", ".join(f"{k} {one(k, v)}" for k, v in ev.items()) or "no numbers"


def _signature_blocks(sig: dict[str, Any]) -> list[Block]:
    out: list[Block] = [("h", 3, "Signatures found")]
    if sig.get("reason"):
        return out + [("p", missing(sig["reason"]) + ".")]
    if not sig["findings"]:
        return out + [("p", "The doctor returned no findings.")]
    rows = [[f"**{f['signature']}**" if f.get("verdict") == "present" else f["signature"], f.get("verdict", ""),
             _evidence_text(f["key_evidence"]), f.get("recommendation") or "—"] for f in sig["findings"]]
    out.append(("table", ["signature", "verdict", "key evidence", "recommendation"], rows))
    out.append(("p", "Verdicts of `perflab doctor` over the steady window (present / absent / insufficient-data)."))
    return out


def _alert_blocks(alerts: dict[str, Any]) -> list[Block]:
    out: list[Block] = [("hr",), ("h", 2, "Alert rules (tuning guide)")]
    out.append(("p", "The monitoring alerts of the tuning guide, evaluated over the steady window: a rule fires "
                     "when a sample of its series is above the threshold. The guide's `for:` is longer than a lab "
                     "run, so **sustained** says whether the longest stretch above lasted that long too."))
    rules = {r["name"]: r for r in alerts["rules"]}
    rows = []
    for r in alerts["results"]:
        rule = rules[r["rule"]]
        if r.get("fired") is None:
            na = missing(r["reason"])
            rows.append([f"`{r['rule']}`", rule["expr"], na, "—", "—", "—", f"{rule['for_s']:g} s", "—"])
            continue
        rows.append([f"`{r['rule']}`", rule["expr"], "**yes**" if r["fired"] else "no",
                     fmt_seconds(r["seconds_above"]), fmt_seconds(r["longest_above_s"]),
                     _alert_value(r, r["peak"]) + (f" at {r['peak_at_s']:.1f} s" if _ok(r.get("peak_at_s")) else ""),
                     f"{rule['for_s']:g} s", "yes" if r["sustained"] else "no"])
    out.append(("table", ["alert", "condition", "fired", "time above", "longest above", "peak", "guide for:",
                          "sustained"], rows))
    buf = next((r for r in alerts["results"] if r["rule"] == "BufferSizeHigh" and r.get("buffer_limit")), None)
    if buf:
        out.append(("p", f"BUFFER_LIMIT {buf['buffer_limit']:,.0f} from {buf['buffer_limit_from']}."))
    out.append(("charts", "alerts"))
    return out


def _capacity_blocks(cap: dict[str, Any], res: dict[str, Any]) -> list[Block]:
    out: list[Block] = [("hr",), ("h", 2, "Scaling estimate"), ("h", 3, "Current capacity (single instance)")]
    if cap.get("reason"):
        out.append(("p", missing(cap["reason"]) + "."))
    else:
        items = [
            f"**Measured:** {fmt_num(cap['rps'])} req/s ({cap['rate_source']}) at a service CPU mean of "
            f"{fmt_cpu(cap['cpu_mean_pct'])} of one core",
            f"**Requests/s per core:** {fmt_num(cap['rps_per_core'])} "
            f"(= {fmt_num(cap['rps'])} / ({cap['cpu_mean_pct']:.1f} / 100))",
            f"**One replica** ({fmt_num(cap['cores'], reason='core count unknown')} cores at ≤ "
            f"{HEADROOM_CPU_FRACTION:.0%} CPU): "
            + (f"{fmt_num(cap['replica_rps'])} req/s" if _ok(cap.get("replica_rps"))
               else missing("the machine's core count is unknown")),
        ]
        out.append(("ul", items))
    if cap.get("saturated"):
        out.append(("p", "**The service was saturated**, so this estimate is an **upper bound**: "
                         + "; ".join(cap["saturation_reasons"]) + "."))
    elif _ok(cap.get("cpu_p50_pct")) and cap.get("cores"):
        out.append(("p", f"Not saturated: service CPU p50 {fmt_cpu(cap['cpu_p50_pct'])} is below "
                         f"{SATURATION_FRACTION:.0%} of the {cap['cores']} cores, k6 dropped no iterations and the "
                         "machine was not pinned."))
    else:
        out.append(("p", "Saturation: " + missing("no service CPU samples or no core count; k6 dropped "
                                                  f"{fmt_num(cap.get('dropped_iterations', 0))} iterations") + "."))
    for c in cap.get("caveats", []):
        out.append(("p", f"Caveat: {c}."))
    if not cap.get("reason"):
        out.append(("h", 3, f"Scaling for {fmt_num(cap['target_rps'])} req/s"))
        out.append(("ul", [
            f"**Cores needed** at ≤ {HEADROOM_CPU_FRACTION:.0%} CPU: {fmt_num(cap['cores_needed'])}",
            "**Replicas of this size:** " + (fmt_num(cap["replicas"]) if _ok(cap.get("replicas"))
                                              else missing("the machine's core count is unknown")),
        ]))
        out.append(("p", "Linear in CPU: valid while CPU is what limits a request and the pool, the database "
                         "and locks keep up (the alert rules above say whether they did)."))
    return out


def _comparison_blocks(cmp: dict[str, Any]) -> list[Block]:
    out: list[Block] = [("hr",), ("h", 2, "Comparison to the previous run")]
    if cmp.get("reason"):
        return out + [("p", cmp["reason"].capitalize() + ".")]
    out.append(("p", f"Previous run of this scenario and variant: `{cmp['previous']}` (A) against this run (B). "
                     f"Beyond noise: a statistical test at α = {cmp.get('alpha')} (perflab.analysis.compare)."))
    rows = []
    for m in cmp["metrics"]:
        note = m.get("note") or "not measured"
        # A bare count needs no unit word ("238", not "238 count").
        unit = "" if m.get("unit") in (None, "count") else m["unit"]

        def v(x: Any) -> str:
            return f"{fmt_num(x)} {unit}".strip() if _ok(x) else missing(note.removeprefix("not measured: "))

        beyond = m.get("beyond_noise")
        rows.append([m.get("metric", ""), v(m.get("a")), v(m.get("b")),
                     fmt_num(m.get("change"), reason="no change computed") if _ok(m.get("change")) else "—",
                     f"{m['change_pct']:+.1f} %" if _ok(m.get("change_pct")) else "—",
                     {True: "**yes**", False: "no"}.get(beyond, "not tested"), m.get("direction") or "—"])
    out.append(("table", ["metric", "previous (A)", "this run (B)", "change", "change %", "beyond noise",
                          "direction"], rows))
    if cmp.get("profile"):
        out.append(("p", "**CPU profile, largest changes in share of the total (B − A):**"))
        out.append(("table", ["function", "flat A", "flat B", "flat Δ", "cum A", "cum B", "cum Δ"],
                    [[f"`{r['name']}`", f"{r['flat_a']:.2f} %", f"{r['flat_b']:.2f} %", f"{r['flat_delta']:+.2f}",
                      f"{r['cum_a']:.2f} %", f"{r['cum_b']:.2f} %", f"{r['cum_delta']:+.2f}"]
                     for r in cmp["profile"]]))
    elif cmp.get("profile_note"):
        out.append(("p", f"CPU profile: {cmp['profile_note']}."))
    return out


def _sources_blocks(report: dict[str, Any]) -> list[Block]:
    run_id = report["run"]["run_id"]
    out: list[Block] = [("hr",), ("h", 2, "Data and commands")]
    out.append(("table", ["source", "kind", "file", "bytes"],
                [[str(s["source_id"]), s["kind"], Path(s["path"]).name, fmt_num(s["bytes"])]
                 for s in report["sources"]]))
    cmds = [f"perflab doctor {run_id}"]
    if "source_id" in report["cpu_profile"]:
        cmds.append(f"perflab top {report['cpu_profile']['source_id']}")
    if "source_id" in report["requests"]:
        cmds.append(f"perflab k6 {report['requests']['source_id']}")
    out.append(("code", "\n".join(cmds)))
    out.append(("p", f"Generated by perflab {report['perflab_version']} from the store."))
    return out


# -- renderers ------------------------------------------------------------------------------------

def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: list[Block], charts: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            lines += ["#" * b[1] + " " + b[2], ""]
        elif kind == "p":
            lines += [b[1], ""]
        elif kind == "hr":
            lines += ["---", ""]
        elif kind == "ul":
            lines += [f"- {t}" for t in b[1]] + [""]
        elif kind == "ol":
            for i, (t, subs) in enumerate(b[1], 1):
                lines.append(f"{i}. {t}")
                lines += [f"   - {s}" for s in subs]
            lines.append("")
        elif kind == "table":
            head, rows = b[1], b[2]
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "|".join("---" for _ in head) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
            lines.append("")
        elif kind == "code":
            lines += ["```bash", b[1], "```", ""]
        elif kind == "charts":
            mine = [c for c in charts if c["section"] == b[1]]
            if mine:
                lines.append("**Charts:**")
                for c in mine:
                    if c.get("png"):
                        lines.append(f"- [{c['title']}]({c['png']})")
                    elif c["drawn"]:
                        lines.append(f"- {c['title']}: in report.html (`#{c['div_id']}`)")
                    else:
                        lines.append(f"- {c['name']}: not drawn ({c['reason']})")
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    return out.replace("  \n", "<br>\n")


_STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
code { background: #f4f4f4; padding: 0 0.2em; border-radius: 3px; font-size: 0.92em; }
pre { background: #f4f4f4; padding: 0.6em; }
.figure { margin: 1em 0; }
.missing-chart { color: #777; }
"""


def render_html(blocks: list[Block], charts: list[dict[str, Any]], figures_html: dict[str, str],
                title: str) -> str:
    body: list[str] = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            body.append(f"<h{b[1]}>{_inline(b[2])}</h{b[1]}>")
        elif kind == "p":
            body.append(f"<p>{_inline(b[1])}</p>")
        elif kind == "hr":
            body.append("<hr>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline(t)}</li>" for t in b[1]) + "</ul>")
        elif kind == "ol":
            items = []
            for t, subs in b[1]:
                sub = "<ul>" + "".join(f"<li>{_inline(s)}</li>" for s in subs) + "</ul>" if subs else ""
                items.append(f"<li>{_inline(t)}{sub}</li>")
            body.append("<ol>" + "".join(items) + "</ol>")
        elif kind == "table":
            head = "".join(f"<th>{_inline(h)}</th>" for h in b[1])
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in b[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "code":
            body.append(f"<pre><code>{html.escape(b[1])}</code></pre>")
        elif kind == "charts":
            for c in (c for c in charts if c["section"] == b[1]):
                if c["drawn"]:
                    body.append(f'<div class="figure">{figures_html[c["name"]]}</div>')
                else:
                    body.append(f'<p class="missing-chart">{_inline(c["name"])}: not drawn '
                                f'({_inline(c["reason"])})</p>')
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


# -- charts ------------------------------------------------------------------------------------------

ChartFn = Callable[[Store, dict[str, Any]], Any]


def _chart_specs() -> list[tuple[str, str, ChartFn]]:
    """(name, section, builder) of every figure the report embeds, in page order."""
    from perflab.report import charts as ch

    def run(r: dict[str, Any]) -> str:
        return str(r["run"]["run_id"])

    def flame(store: Store, r: dict[str, Any]) -> Any:
        if "source_id" not in r["cpu_profile"]:
            raise PerflabError(r["cpu_profile"]["reason"])
        return ch.flame_graph(store, r["cpu_profile"]["source_id"])

    return [
        ("latency-over-time", "requests", lambda s, r: ch.latency_over_time(s, run(r))),
        ("process-resources", "resources", lambda s, r: ch.process_resources(s, run(r))),
        ("cpu-vs-latency", "resources", lambda s, r: ch.cpu_vs_latency(s, run(r))),
        ("flame-graph", "cpu", flame),
        ("inflight-and-waiting", "alerts", lambda s, r: ch.inflight_and_waiting(s, run(r))),
        ("errors-by-kind", "alerts", lambda s, r: ch.errors_by_kind(s, run(r))),
        ("app-vs-db-rate", "alerts", lambda s, r: ch.app_vs_db_rate(s, run(r))),
    ]


def build_figures(store: Store, report: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every chart of the report: (entries for the report, {name: figure})."""
    entries: list[dict[str, Any]] = []
    figures: dict[str, Any] = {}
    try:
        specs = _chart_specs()
    except ImportError as exc:
        return [{"name": "charts", "section": "requests", "title": "charts", "div_id": "perflab-charts",
                 "drawn": False, "reason": f"perflab.report.charts is not available ({exc})", "png": None}], {}
    for name, section, fn in specs:
        entry = {"name": name, "section": section, "div_id": f"perflab-{name}", "drawn": False,
                 "title": name, "reason": None, "png": None}
        try:
            fig = fn(store, report)
        except PerflabError as exc:
            entry["reason"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - a broken figure must not cost the whole report
            entry["reason"] = f"{type(exc).__name__}: {exc}"
        else:
            entry.update(drawn=True, title=(fig.layout.title.text or name) if fig.layout.title else name)
            figures[name] = fig
        entries.append(entry)
    return entries, figures


def figures_to_html(entries: list[dict[str, Any]], figures: dict[str, Any]) -> dict[str, str]:
    """Each drawn figure as a div; plotly.js is inlined in the first one only (offline)."""
    out: dict[str, str] = {}
    first = True
    for e in entries:
        if not e["drawn"]:
            continue
        out[e["name"]] = figures[e["name"]].to_html(full_html=False, include_plotlyjs=first, div_id=e["div_id"])
        first = False
    return out


def export_pngs(entries: list[dict[str, Any]], figures: dict[str, Any], folder: Path) -> str | None:
    """Write each drawn figure as NAME.png (kaleido, which drives a local chromium).
    Returns None when every figure was written, else why not (and no figure is linked)."""
    written = []
    try:
        for e in entries:
            if e["drawn"]:
                path = folder / f"{e['name']}.png"
                figures[e["name"]].write_image(str(path))
                written.append((e, path.name))
    except Exception as exc:  # noqa: BLE001 - kaleido/chromium failures come in many types
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    for e, name in written:
        e["png"] = name
    return None


# -- the edge: files -----------------------------------------------------------------------------------

def write_report(store: Store, run_id: str, out_dir: str | Path = DEFAULT_OUT, target_rps: float | None = None,
                 png: bool = False) -> dict[str, Any]:
    """Build the report of ``run_id`` and write OUT/RUN_ID/report.md and report.html.

    Returns {"run_id", "markdown", "html", "png": [paths], "png_error", "report"}.
    """
    report = build_report(store, run_id, target_rps=target_rps)
    entries, figures = build_figures(store, report)
    folder = Path(out_dir) / _safe_name(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    png_error = export_pngs(entries, figures, folder) if png and figures else None
    report["charts"] = entries
    blocks = document(report)
    if png_error:
        blocks.append(("p", f"PNG export failed ({png_error}); the charts are in report.html."))
    md = render_markdown(blocks, entries)
    page = render_html(blocks, entries, figures_to_html(entries, figures), f"Load test analysis: {run_id}")
    md_path, html_path = folder / "report.md", folder / "report.html"
    md_path.write_text(md, encoding="utf-8")
    html_path.write_text(page, encoding="utf-8")
    return {"run_id": run_id, "markdown": str(md_path), "html": str(html_path),
            "png": [str(folder / e["png"]) for e in entries if e.get("png")], "png_error": png_error,
            "report": report}


def _safe_name(run_id: str) -> str:
    """A run id as a folder name: user-given group ids may hold a path separator."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._")
    if not name:
        raise PerflabError(f"run id {run_id!r} gives no usable folder name")
    return name
