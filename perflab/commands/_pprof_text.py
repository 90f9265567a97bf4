"""What `go tool pprof`'s text views share: the profile's header lines (report.ProfileLabels)
and the options every view takes."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from perflab.analysis.pprof_frames import GRANULARITIES, GRANULARITY_ALIASES, FrameFilters
from perflab.analysis.pprof_merge import merged_info
from perflab.analysis.pprof_tags import TagFilters
from perflab.analysis.pprof_units import duration_label, in_nanoseconds, label, percentage
from perflab.analysis.profiles import pprof_parts, profile_info
from perflab.commands._common import add_json_flag, open_store, print_json, resolve
from perflab.pprof_rules import go_base
from perflab.store import Store
from perflab.vocab import PPROF_SHAPED_KINDS

# pprof's frame filters (RE2 regexps, matched anywhere in a function's name, its file or
# its location's mapping file; perflab.analysis.pprof_frames): top and every view take them.
FRAME_FILTERS = {
    "focus": "only samples with a frame that matches",
    "ignore": "no samples with a frame that matches",
    "hide": "drop the matching frames from the stacks",
    "show": "keep only the matching frames",
    "show_from": "drop the frames rootward of the rootmost match (and samples without one)",
    "prune_from": "drop the frames leafward of the leafmost frame whose function name matches",
}


def add_filter_args(p: argparse.ArgumentParser) -> None:
    for option, what in FRAME_FILTERS.items():
        p.add_argument(f"--{option.replace('_', '-')}", metavar="REGEXP", help=what)


def frame_filters(args: argparse.Namespace) -> FrameFilters:
    return FrameFilters(**{f: getattr(args, f, None) for f in FRAME_FILTERS})


def active_filter_lines(legend: list[str]) -> list[str]:
    """pprof's "Active filters:" block (each filter cut at 80 bytes, as pprof cuts it)."""
    if not legend:
        return []
    return ["Active filters:"] + [f"   {f.encode()[:80].decode(errors='ignore')}…" if len(f.encode()) > 80
                                  else f"   {f}" for f in legend]


def add_grouping_args(p: argparse.ArgumentParser, *, granularity: bool = True, shown_tags: bool = False) -> None:
    """--granularity and the tag filters, as `perflab top` takes them (--tagshow/--taghide
    where labels are shown: traces)."""
    if granularity:
        p.add_argument("--granularity", default="functions", metavar="G",
                       choices=[*GRANULARITIES, *GRANULARITY_ALIASES],
                       help="nodes per functions (default), filefunctions, files (filenames), lines or addresses")
    if shown_tags:
        p.add_argument("--tagshow", metavar="REGEXP", help="list only the labels whose key matches")
        p.add_argument("--taghide", metavar="REGEXP", help="do not list the labels whose key matches")
    p.add_argument("--tagfocus", metavar="[KEY=]VALUES",
                   help="only samples with a label that matches (key=regexps, regexps, or key=N:M with units)")
    p.add_argument("--tagignore", metavar="[KEY=]VALUES", help="no samples with a label that matches")


def grouping(args: argparse.Namespace) -> dict[str, Any]:
    """The granularity and tag filters of a verb's arguments, as its view function takes them."""
    g = getattr(args, "granularity", "functions")
    return {"granularity": GRANULARITY_ALIASES.get(g, g),
            "tags": TagFilters(**{t: getattr(args, t, None) for t in ("tagfocus", "tagignore", "tagshow", "taghide")})}


def add_profile_args(p: argparse.ArgumentParser, *, regex: bool, mean: bool) -> None:
    p.add_argument("ref", metavar="FILE_OR_SOURCE", nargs="+",
                   help="a pprof profile (ingested first) or a source id; several are merged, as pprof merges them")
    if regex:
        p.add_argument("regex", metavar="REGEX", help="functions whose name this RE2 regexp finds (as pprof)")
    add_base_args(p)
    p.add_argument("--sample-index", "--sample-type", dest="sample_type", metavar="TYPE",
                   help="sample type by name (alloc_space, cpu, ...) or index (default: the profile's default)")
    if mean:
        p.add_argument("--mean", action="store_true",
                       help="average per event: values divided by the first sample type's (pprof -mean)")
    add_filter_args(p)
    add_json_flag(p)


def add_base_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", action="append", default=[], metavar="FILE_OR_SOURCE",
                   help="subtract this profile (pprof -base); may repeat")
    p.add_argument("--diff-base", action="append", default=[], metavar="FILE_OR_SOURCE",
                   help="subtract this profile and show percentages of its total (pprof -diff_base); may repeat")


def open_profile(args: argparse.Namespace) -> tuple[Store, int, dict[str, Any]]:
    """(store, sample index, the view's facts: source_id, source_ids, parts, info (the
    merged profile's header facts), sample_type, unit, mean) of the verb's profiles: its
    FILE_OR_SOURCEs merged, less its --base and --diff-base ones."""
    store = open_store(args)
    sources, bases, diffs = ([resolve(args, store, r, PPROF_SHAPED_KINDS) for r in group]
                             for group in (args.ref, args.base, args.diff_base))
    sids = [*sources, *bases, *diffs]
    parts, idx, stype, unit = pprof_parts(store, sids, len(sources), len(bases), args.sample_type)
    filters = frame_filters(args)
    return store, idx, {"source_id": sids[0], "source_ids": sids, "parts": parts, "sample_type": stype,
                        "unit": unit, "mean": getattr(args, "mean", False),
                        "filters": filters.legend(), "frame_filters": filters}


def merged_header(store: Store, result: dict[str, Any], sample_type: str, total: int, out_unit: str) -> list[str]:
    """pprof's header of the profile a view read (one or several merged)."""
    info = merged_info([profile_info(store, x) for x in result["source_ids"]])
    return header_lines(info, sample_type, result["unit"], total, out_unit)


def show(args: argparse.Namespace, store: Store, result: dict[str, Any],
         render: Callable[[Store, dict[str, Any]], list[str]]) -> int:
    """Print the view: --json, or its text."""
    if args.json:
        print_json(result)
        return 0
    for line in render(store, result):
        print(line)
    return 0


def header_lines(info: dict[str, Any], sample_type: str, unit: str, total: int, out_unit: str) -> list[str]:
    """pprof's header of a profile (report.ProfileLabels): its binary, comments, type, time
    and duration (values in ``out_unit``, "minimum" scaling each one on its own; times in
    UTC). ``info`` is profile_info's, or merged_info's for several profiles."""
    out = []
    mapping = info.get("main_mapping")
    if mapping:
        out += [f"File: {go_base(mapping['filename'])}"] if mapping["filename"] else []
        out += [f"Build ID: {mapping['build_id']}"] if mapping["build_id"] else []
    out += [c for c in info.get("comments") or [] if not c.startswith("#")]
    out += [f"Type: {sample_type}"] if sample_type else []
    out += [f"Doc: {info['doc_url']}"] if info.get("doc_url") else []
    if info.get("time_nanos"):
        out.append(f"Time: {datetime.fromtimestamp(info['time_nanos'] // 10**9, tz=UTC):%Y-%m-%d %H:%M:%S} UTC")
    if info.get("duration_nanos"):
        nanos = in_nanoseconds(total, unit)
        share = f"({percentage(nanos, info['duration_nanos'])})" if nanos else ""
        out.append(f"Duration: {duration_label(info['duration_nanos'])}, "
                   f"Total samples = {label(total, unit, out_unit)} {share}")
    return out
