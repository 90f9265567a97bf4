"""k6's own end-of-test numbers: ``--summary-export`` and ``handleSummary()`` JSON.

Both are one JSON object with ``metrics`` and ``root_group``; they differ in shape:

=================  ===================================  ======================================
                   --summary-export                     handleSummary(data)
=================  ===================================  ======================================
metric values      flat: ``{"avg": 1, "p(95)": 2}``     ``{"type", "contains", "values": {}}``
rate value         ``value``                            ``rate``
thresholds         ``{src: true}`` = **FAILED**         ``{src: {"ok": true}}`` = passed
groups, checks     objects keyed by name                arrays
duration           absent                               ``state.testRunDurationMs``
=================  ===================================  ======================================

Both are stored in one shape (k6_summary_metrics/values, k6_thresholds with
``passed`` = true when the threshold held, k6_checks); ``sources.meta`` keeps the
variant and the duration. A summary-export's metric types are inferred from their
fields (k6 writes none) and its ``contains`` comes from the built-in table only.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from perflab.errors import InputError
from perflab.ingest import _io
from perflab.ingest._registry import Context, Format, Sniff, register
from perflab.vocab import K6_BUILTIN_METRICS, K6_METRIC_TYPES, K6_SUMMARY

SUMMARY_EXPORT = "summary-export"
HANDLE_SUMMARY = "handleSummary"
# Summaries are tens of kB; detection parses the file, so it skips anything this large.
MAX_DETECT_BYTES = 64 << 20
_TREND_STAT = re.compile(r"^(avg|min|med|max|count|p\(\d+(\.\d+)?\))$")


def _variant(doc: Any) -> str | None:
    """Which of the two summary files `doc` is, or None if it is neither."""
    if not isinstance(doc, dict) or not isinstance(doc.get("metrics"), dict):
        return None
    metrics = doc["metrics"]
    entries = [m for m in metrics.values() if isinstance(m, dict)]
    if len(entries) != len(metrics):
        return None
    if entries and all(isinstance(m.get("values"), dict) for m in entries):
        return HANDLE_SUMMARY if ("state" in doc or "root_group" in doc or "options" in doc) else None
    if all("values" not in m for m in entries) and "root_group" in doc:
        return SUMMARY_EXPORT
    return None


def detect_summary(sniff: Sniff) -> bool:
    head = sniff.head.lstrip()
    if not head.startswith(b"{") or not (b'"metrics"' in sniff.head or b'"root_group"' in sniff.head):
        return False
    if not sniff.gzipped and sniff.path.stat().st_size > MAX_DETECT_BYTES:
        return False
    try:
        doc = json.loads(_io.read_all(sniff.path, sniff.gzipped, MAX_DETECT_BYTES))
    except (ValueError, OSError, InputError):
        return False
    return _variant(doc) is not None


def _number(ctx: Context, metric: str, stat: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(ctx.path, f"metric {metric!r}: {stat} is {value!r}, not a number")
    return float(value)


def infer_type(stats: set[str]) -> str | None:
    """A summary-export metric's type from the fields k6 wrote for it."""
    if {"passes", "fails"} <= stats:
        return "rate"
    if "value" in stats and stats <= {"value", "min", "max"}:
        return "gauge"
    if stats == {"count", "rate"}:
        return "counter"
    if stats and all(_TREND_STAT.match(s) for s in stats):
        return "trend"
    return None


def parse_selector(name: str) -> tuple[str, dict[str, str] | None]:
    """'http_req_duration{endpoint:fast,status:200}' → ('http_req_duration', {...})."""
    if not name.endswith("}") or "{" not in name:
        return name, None
    parent, _, inner = name[:-1].partition("{")
    tags: dict[str, str] = {}
    for pair in inner.split(","):
        key, _, value = pair.partition(":")
        tags[key.strip()] = value.strip()
    return parent, tags


def ingest_summary(ctx: Context) -> dict[str, Any]:
    try:
        doc = json.loads(ctx.read_bytes())
    except ValueError as exc:
        raise InputError(ctx.path, f"not valid JSON: {exc}") from None
    variant = _variant(doc)
    if variant is None:
        raise InputError(ctx.path, "not a k6 summary (expected a JSON object with \"metrics\" and "
                                   "\"root_group\", as --summary-export or handleSummary() write)")
    metrics_rows: list[list[Any]] = []
    value_rows: list[list[Any]] = []
    threshold_rows: list[list[Any]] = []
    sid, run = ctx.source_id, ctx.run_id
    types: dict[str, str | None] = {}
    for name, entry in doc["metrics"].items():
        if variant == HANDLE_SUMMARY:
            values = entry["values"]
            mtype, contains = entry.get("type"), entry.get("contains")
            if mtype not in K6_METRIC_TYPES:
                raise InputError(ctx.path, f"metric {name!r}: type {mtype!r} is not a k6 metric type")
            thresholds = {}
            for expr, res in (entry.get("thresholds") or {}).items():
                if not isinstance(res, dict) or not isinstance(res.get("ok"), bool):
                    raise InputError(ctx.path, f"metric {name!r}: threshold {expr!r} has no ok flag")
                thresholds[expr] = res["ok"]
        else:
            values = {k: v for k, v in entry.items() if k != "thresholds"}
            raw_th = entry.get("thresholds") or {}
            if not isinstance(raw_th, dict) or not all(isinstance(v, bool) for v in raw_th.values()):
                raise InputError(ctx.path, f"metric {name!r}: thresholds are not {{source: bool}}")
            # summary-export writes true when the threshold was crossed, i.e. FAILED.
            thresholds = {expr: not crossed for expr, crossed in raw_th.items()}
            mtype, contains = infer_type(set(values)), None
            if mtype == "rate" and "value" in values:
                values = {("rate" if k == "value" else k): v for k, v in values.items()}
        parent, selector = parse_selector(name)
        types[name] = mtype
        if contains is None and (parent in K6_BUILTIN_METRICS):
            contains = K6_BUILTIN_METRICS[parent][1]
        metrics_rows.append([sid, run, name, parent if selector is not None else None,
                             json.dumps(selector, sort_keys=True) if selector is not None else None,
                             mtype, contains])
        for stat, value in values.items():
            value_rows.append([sid, run, name, stat, _number(ctx, name, stat, value)])
        for expr, passed in thresholds.items():
            threshold_rows.append([sid, run, name, expr, passed])
    # A submetric the file could not type (e.g. a trend with only `count`) takes its parent's.
    for row in metrics_rows:
        if row[5] is None and row[3] is not None:
            row[5] = types.get(row[3])
    check_rows = [[sid, run, *c] for c in _checks(ctx, doc.get("root_group"))]

    con = ctx.con
    if metrics_rows:
        con.executemany("INSERT INTO k6_summary_metrics VALUES (?, ?, ?, ?, ?, ?, ?)", metrics_rows)
    if value_rows:
        con.executemany("INSERT INTO k6_summary_values VALUES (?, ?, ?, ?, ?)", value_rows)
    if threshold_rows:
        con.executemany("INSERT INTO k6_thresholds VALUES (?, ?, ?, ?, ?)", threshold_rows)
    if check_rows:
        con.executemany("INSERT INTO k6_checks VALUES (?, ?, ?, ?, ?, ?, ?)", check_rows)

    ctx.meta["variant"] = variant
    if variant == HANDLE_SUMMARY:
        state = doc.get("state") or {}
        duration = state.get("testRunDurationMs")
        if duration is not None:
            ctx.meta["test_run_duration_ms"] = _number(ctx, "state", "testRunDurationMs", duration)
        stats = (doc.get("options") or {}).get("summaryTrendStats")
        if isinstance(stats, list):
            ctx.meta["summary_trend_stats"] = [str(s) for s in stats]
    return {"metrics": len(metrics_rows), "thresholds": len(threshold_rows), "checks": len(check_rows)}


def _items(value: Any) -> list[Any]:
    """groups/checks: objects keyed by name (summary-export) or arrays (handleSummary)."""
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return value
    raise TypeError(f"expected an object or an array, got {type(value).__name__}")


def _checks(ctx: Context, group: Any, out: list[list[Any]] | None = None) -> list[list[Any]]:
    out = [] if out is None else out
    if group is None:
        return out
    if not isinstance(group, dict):
        raise InputError(ctx.path, "root_group: a group is not an object")
    group_path = str(group.get("path") or "")
    for check in _items(group.get("checks")):
        if not isinstance(check, dict) or "name" not in check:
            raise InputError(ctx.path, f"group {group_path!r}: a check without a name")
        name = str(check["name"])
        path = str(check.get("path") or f"{group_path}::{name}")
        passes = _number(ctx, path, "passes", check.get("passes"))
        fails = _number(ctx, path, "fails", check.get("fails"))
        out.append([path, group_path, name, int(passes), int(fails)])
    for sub in _items(group.get("groups")):
        _checks(ctx, sub, out)
    return out


register(Format(
    kind=K6_SUMMARY,
    description="k6 --summary-export or handleSummary() JSON: k6's own end-of-test numbers",
    detect=detect_summary,
    ingest=ingest_summary,
    priority=60,  # parses the whole (small) file, so it goes after the cheap checks
))
