"""`perflab k6 FILE_OR_SOURCE`: k6's end-of-test summary, recomputed from the store.

The readable form follows k6 v1.1.0's compact summary (THRESHOLDS, then TOTAL RESULTS
with checks and the CUSTOM/HTTP/EXECUTION/NETWORK sections) and its number formats:
durations truncated to 2 decimals (``1.5ms``, ``285.98µs``), rates as truncated
percentages, bytes as kB/MB, other values to 6 decimals. ``--json`` gives the exact
numbers.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from perflab.analysis import k6_stored
from perflab.commands import HELPS
from perflab.commands._common import add_json_flag, open_store, print_json, resolve
from perflab.fmt import k6_data as data
from perflab.fmt import k6_fixed
from perflab.fmt import k6_percent as percent
from perflab.fmt import k6_value as value
from perflab.vocab import K6_KINDS

NAME = "k6"
HELP = HELPS[NAME]

SECTIONS = ("CUSTOM", "HTTP", "EXECUTION", "NETWORK")
EXECUTION = {"dropped_iterations", "group_duration", "iteration_duration", "iterations", "vus", "vus_max"}
NETWORK = {"data_received", "data_sent"}


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", metavar="FILE_OR_SOURCE", help="a k6 file (ingested first) or a source id")
    p.add_argument("--by", metavar="TAG", help="add one group per value of TAG, named like sub-metrics "
                                              "(http_req_duration{status:200})")
    p.add_argument("--trend-stats", metavar="LIST",
                   help="trend fields, as k6's --summary-trend-stats: avg,min,med,max,p(90),p(99.9),count")
    p.add_argument("--with", dest="companion", metavar="FILE_OR_SOURCE",
                   help="a summary file of the same run: its duration gives exact counter rates, "
                        "its thresholds cover sub-metrics (sources of the same --run are used anyway)")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    store = open_store(args)
    stats = [s.strip() for s in args.trend_stats.split(",") if s.strip()] if args.trend_stats else None
    companion = resolve(args, store, args.companion, K6_KINDS) if args.companion else None
    sid = resolve(args, store, args.ref, K6_KINDS)
    # The default summary, once stored, is read back without loading numpy and polars (the
    # computing path's imports alone took longer than reading the stored answer).
    summary = k6_stored.read(store, sid) if args.by is None and not stats and companion is None else None
    if summary is None:
        from perflab.analysis.loadtest import k6_summary

        summary = k6_summary(store, sid, by=args.by, trend_stats=stats, companion=companion)
    if args.json:
        print_json(summary)
    else:
        print("\n".join(render(summary)))
    return 0


# -- layout ------------------------------------------------------------------------------

def _section(name: str) -> str:
    if name.startswith("http_"):
        return "HTTP"
    if name in EXECUTION:
        return "EXECUTION"
    if name in NETWORK:
        return "NETWORK"
    return "CUSTOM"


def _split(name: str) -> tuple[str, str | None]:
    if name.endswith("}") and "{" in name:
        parent, _, sel = name[:-1].partition("{")
        return parent, sel
    return name, None


def _cells(m: dict[str, Any], trend_stats: list[str]) -> list[str]:
    t, c = m.get("type"), m.get("contains")
    if t == "trend":
        return [f"{s}={m[s] if s == 'count' else value(m[s], c)}" for s in trend_stats if s in m]
    if t == "counter":
        rate = m.get("rate")
        rate_text = "-" if rate is None else (f"{data(rate)}/s" if c == "data" else f"{k6_fixed(rate, 6)}/s")
        return [value(m.get("count"), c), rate_text]
    if t == "rate":
        passes, fails = m.get("passes", 0), m.get("fails", 0)
        return [percent(m.get("rate") or 0), f"{passes} out of {passes + fails}"]
    if t == "gauge":
        return [value(m.get("value"), c), f"min={value(m.get('min'), c)}", f"max={value(m.get('max'), c)}"]
    return [f"{k}={v}" for k, v in m.items() if k not in ("type", "contains", "thresholds")]


def _aligned(rows: list[tuple[str, list[str]]], indent: str = "    ", width: int | None = None) -> list[str]:
    if not rows:
        return []
    width = width or max(len(label) for label, _ in rows) + 3
    ncol = max(len(cells) for _, cells in rows)
    col_w = [max((len(cells[i]) for _, cells in rows if i < len(cells)), default=0) for i in range(ncol)]
    out = []
    for label, cells in rows:
        padded = " ".join(cell.ljust(col_w[i]) for i, cell in enumerate(cells)).rstrip()
        out.append(f"{indent}{label.ljust(width, '.')}: {padded}")
    return out


def _threshold_value(expr: str, m: dict[str, Any]) -> str:
    agg = expr.split("<")[0].split(">")[0].split("=")[0].split("!")[0].strip()
    v = m.get(agg)
    if v is None:
        return ""
    if agg == "rate" and m.get("type") == "rate":
        return f" {agg}={percent(v)}"
    if agg == "count":
        return f" {agg}={v}"
    return f" {agg}={value(v, m.get('contains'))}"


def render(summary: dict[str, Any]) -> list[str]:
    metrics: dict[str, Any] = summary["metrics"]
    lines = [f"source {summary['source_id']} ({summary['kind']}): {summary['path']}"]
    if summary.get("duration_s") is not None:
        lines.append(f"test run duration {summary['duration_s']:.3f}s ({summary['duration_source']})")
    for name in summary.get("guessed_types") or []:
        lines.append(f"note: {name}: type unknown without a Metric line or summary of the run; shown as a trend")

    with_thresholds = [n for n in sorted(metrics) if metrics[n].get("thresholds")]
    if with_thresholds:
        lines += ["", "  █ THRESHOLDS", ""]
        for name in with_thresholds:
            m = metrics[name]
            parent, sel = _split(name)
            indent = "    "
            if sel is not None and parent in with_thresholds:
                indent = "      "
                lines.append(f"{indent}{{{sel}}}")
            else:
                lines.append(f"{indent}{name}")
            for expr, ok in m["thresholds"].items():
                mark = "✓" if ok else ("✗" if ok is False else "?")
                lines.append(f"{indent}{mark} '{expr}'{_threshold_value(expr, m)}")
            lines.append("")

    lines += ["", "  █ TOTAL RESULTS", ""]
    checks = summary.get("checks") or {}
    if "checks" in metrics:
        c = metrics["checks"]
        total = c.get("passes", 0) + c.get("fails", 0)
        rate = summary.get("duration_s")
        per_s = f"{k6_fixed(total / rate, 6)}/s" if rate else "-"
        lines += _aligned([
            ("checks_total", [str(total), per_s]),
            ("checks_succeeded", [percent(c.get("rate") or 0), f"{c.get('passes', 0)} out of {total}"]),
            ("checks_failed", [percent(1 - (c.get("rate") or 0)) if total else "0.00%",
                               f"{c.get('fails', 0)} out of {total}"]),
            *[("  { " + str(_split(n)[1]) + " }", _cells(metrics[n], []))
              for n in sorted(metrics) if _split(n)[0] == "checks" and _split(n)[1] is not None],
        ])
        lines.append("")
    for path, c in checks.items():
        label = path.rsplit("::", 1)[-1]
        if c["fails"] == 0:
            lines.append(f"    ✓ {label}")
        else:
            share = math.floor(c["passes"] / (c["passes"] + c["fails"]) * 100)
            lines.append(f"    ✗ {label}")
            lines.append(f"      ↳  {share}% — ✓ {c['passes']} / ✗ {c['fails']}")
    if checks:
        lines.append("")

    trend_stats = summary.get("trend_stats") or [
        "avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "p(99.9)", "count"]
    parents = sorted(n for n in metrics if _split(n)[1] is None and n != "checks")
    children: dict[str, list[str]] = {}
    for n in sorted(metrics):
        parent, sel = _split(n)
        if sel is not None:
            children.setdefault(parent, []).append(n)
    # One label width for every section, as k6 does, so the values line up down the page.
    width = max([len(n) for n in parents] + [len(_split(n)[1] or "") + 6 for n in metrics]) + 3
    for section in SECTIONS:
        rows: list[tuple[str, list[str]]] = []
        for name in parents:
            if _section(name) != section:
                continue
            rows.append((name, _cells(metrics[name], trend_stats)))
            for child in children.get(name, []):
                rows.append(("  { " + (_split(child)[1] or "") + " }", _cells(metrics[child], trend_stats)))
        if rows:
            lines += [f"    {section}"] + _aligned(rows, width=width) + [""]
    # Sub-metrics of a metric that has no samples of its own in this source.
    orphans = [(n, _cells(metrics[n], trend_stats)) for p, kids in children.items()
               if p not in metrics for n in kids]
    if orphans:
        lines += ["    OTHER"] + _aligned(orphans, width=width) + [""]
    return lines
