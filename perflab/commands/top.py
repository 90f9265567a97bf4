from __future__ import annotations

import argparse
from typing import Any

from perflab.analysis.pprof_frames import GRANULARITIES, GRANULARITY_ALIASES
from perflab.analysis.pprof_merge import merged_info
from perflab.analysis.pprof_tags import TagFilters
from perflab.analysis.pprof_units import label, percentage, report_unit
from perflab.analysis.pprof_view import DEFAULT_EDGEFRACTION, DEFAULT_NODEFRACTION
from perflab.analysis.profiles import profile_info, top
from perflab.commands import HELPS
from perflab.commands._common import add_json_flag, open_store, print_json, resolve
from perflab.commands._pprof_text import active_filter_lines, add_filter_args, frame_filters, header_lines
from perflab.errors import PerflabError
from perflab.vocab import PPROF, PROFILE_KINDS

NAME = "top"
HELP = HELPS[NAME]

# A terminal screen of rows; 0 shows them all, as `go tool pprof -top` does.
DEFAULT_LIMIT = 20


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", metavar="FILE_OR_SOURCE", nargs="+",
                   help="a profile file (ingested first) or a source id; several are merged, as pprof merges them")
    p.add_argument("--base", action="append", default=[], metavar="FILE_OR_SOURCE",
                   help="subtract this profile (pprof -base); may repeat")
    p.add_argument("--diff-base", action="append", default=[], metavar="FILE_OR_SOURCE",
                   help="subtract this profile and show percentages of its total (pprof -diff_base); may repeat")
    p.add_argument("--sample-index", "--sample-type", dest="sample_type", metavar="TYPE",
                   help="sample type by name (alloc_space, cpu, ...) or index (default: the profile's default)")
    p.add_argument("--nodecount", "--limit", dest="nodecount", type=int, default=DEFAULT_LIMIT, metavar="N",
                   help=f"show the first N functions (default {DEFAULT_LIMIT}; 0 = all)")
    p.add_argument("--nodefraction", type=float, default=None, metavar="F",
                   help=f"drop functions whose |cum| is under F of the total (pprof's default {DEFAULT_NODEFRACTION})")
    p.add_argument("--edgefraction", type=float, default=None, metavar="F",
                   help=f"ignore call edges under F of the total for (inline) labels (pprof: {DEFAULT_EDGEFRACTION})")
    p.add_argument("--cum", action="store_true", help="order by cum (|cum| descending, then name), as pprof -cum")
    p.add_argument("--mean", action="store_true",
                   help="average per event: values divided by the first sample type's (pprof -mean)")
    p.add_argument("--granularity", default="functions", metavar="G",
                   choices=[*GRANULARITIES, *GRANULARITY_ALIASES],
                   help="rows per functions (default), filefunctions, files (filenames), lines or addresses, as pprof")
    add_filter_args(p)
    for option, what in _TAG_FILTERS.items():
        p.add_argument(f"--{option}", metavar="[KEY=]VALUES", help=what)
    p.add_argument("--tag", metavar="KEY",
                   help="the value per value of label KEY instead (`go tool pprof -tags`), e.g. route")
    add_json_flag(p)


# pprof's tag filters: regexps (comma-separated) or a numeric range with units (64kb:1mb).
_TAG_FILTERS = {
    "tagfocus": "only samples with a label that matches (key=regexps, regexps, or key=N:M with units)",
    "tagignore": "no samples with a label that matches",
    "tagshow": "listed among the active filters (labels are not shown by top)",
    "taghide": "listed among the active filters (labels are not shown by top)",
}

def run(args: argparse.Namespace) -> int:
    if args.nodecount < 0:
        raise PerflabError("--nodecount (--limit) must be 0 (all) or more")
    if args.tag:
        from perflab.commands import _tags

        return _tags.run(args)
    store = open_store(args)
    def ids(refs: list[str]) -> list[int]:
        return [resolve(args, store, r, PROFILE_KINDS) for r in refs]

    result = top(store, ids(args.ref), sample_type=args.sample_type,
                 base=ids(args.base), diff_base=ids(args.diff_base),
                 nodecount=args.nodecount, nodefraction=args.nodefraction,
                 edgefraction=args.edgefraction, cum=args.cum, mean=args.mean,
                 filters=frame_filters(args), granularity=args.granularity,
                 tags=TagFilters(**{f: getattr(args, f) for f in _TAG_FILTERS}))
    if args.json:
        print_json(result)
        return 0
    if result["format"] == PPROF:
        lines = render_pprof(result, merged_info([profile_info(store, x) for x in result["source_ids"]]))
    else:
        lines = render_cprofile(result)
    for line in lines:
        print(line)
    return 0


def render_pprof(result: dict[str, Any], info: dict[str, Any]) -> list[str]:
    """The text of `go tool pprof -top`, line for line (times in UTC)."""
    rows = result["rows"]
    unit = result["unit"]
    total = result["total"]
    out_unit = report_unit([r["flat"] or r["cum"] for r in rows], total, unit)

    def fmt(v: int) -> str:
        return label(v, unit, out_unit)

    stype = ("mean_" if result["mean"] else "") + result["sample_type"]
    lines = header_lines(info, stype, unit, total, out_unit)
    lines += active_filter_lines(result["filters"])
    shown = sum(r["flat"] for r in rows)
    lines.append(f"Showing nodes accounting for {fmt(shown)}, {percentage(shown, total).strip()} of {fmt(total)} total")
    if total:
        dropped = result["dropped_nodes"]
        if dropped:
            lines.append(f"Dropped {dropped} node{'s' if dropped > 1 else ''} (cum <= {fmt(result['node_cutoff'])})")
        if 0 < len(rows) < result["nodes_before_nodecount"]:
            lines.append(f"Showing top {len(rows)} nodes out of {result['nodes_before_nodecount']}")
    lines.append(f"{'flat':>10} {'flat':>5}% {'sum':>5}% {'cum':>10} {'cum':>5}%")
    running = 0
    for r in rows:
        running += r["flat"]
        inline = f" ({r['inline']})" if r["inline"] else ""
        lines.append(
            f"{fmt(r['flat']):>10} {percentage(r['flat'], total)} {percentage(running, total)} "
            f"{fmt(r['cum']):>10} {percentage(r['cum'], total)}  {r['name']}{inline}"
        )
    return lines


def render_cprofile(result: dict[str, Any]) -> list[str]:
    """pprof's -top layout over pstats' numbers: seconds, and pstats' ncalls
    ("total/primitive" when they differ: recursion)."""
    total = result["total"]
    rows = result["rows"]
    shown = sum(r["flat"] for r in rows)
    lines = ["Type: cpu", f"Showing nodes accounting for {shown:.6f}s, {_pct(shown, total).strip()} "
             f"of {total:.6f}s total"]
    if len(rows) < result["nodes_before_nodecount"]:
        lines.append(f"Showing top {len(rows)} nodes out of {result['nodes_before_nodecount']}")
    lines.append(f"{'flat':>10} {'flat%':>6} {'sum%':>6} {'cum':>10} {'cum%':>6} {'ncalls':>9}")
    running = 0.0
    for r in rows:
        running += r["flat"]
        n = f"{r['calls']}" if r["calls"] == r["primitive_calls"] else f"{r['calls']}/{r['primitive_calls']}"
        lines.append(
            f"{r['flat']:.6f}s".rjust(10) + f" {_pct(r['flat'], total)} {_pct(running, total)} "
            + f"{r['cum']:.6f}s".rjust(10) + f" {_pct(r['cum'], total)} {n:>9}  {r['name']}"
        )
    return lines


def _pct(value: float, total: float) -> str:
    """pprof's percentage for pstats' float seconds."""
    ratio = abs(value / total) * 100 if total else 0.0
    if 99.95 <= ratio <= 100.05:
        return "  100%"
    if ratio >= 1.0:
        return f"{ratio:5.2f}%"
    return f"{ratio:5.2g}%"
