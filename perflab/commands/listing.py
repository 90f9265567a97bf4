from __future__ import annotations

import argparse
from typing import Any

from perflab.analysis.pprof_units import label, percentage
from perflab.analysis.pprof_views import SourceOptions, source_listing
from perflab.commands import HELPS
from perflab.commands._pprof_text import add_grouping_args, add_profile_args, grouping, open_profile, show
from perflab.store import Store

NAME = "list"
HELP = HELPS[NAME]


def prepare_parser(p: argparse.ArgumentParser) -> None:
    add_profile_args(p, regex=True, mean=False)
    p.add_argument("--mean", action="store_true",
                   help="pprof -list -mean: the total is divided by the first sample type's; the lines stay raw, "
                        "as pprof prints them")
    add_grouping_args(p, granularity=False)
    p.add_argument("--source-path", metavar="DIRS",
                   help="where to look for sources (':'-separated; default: the current directory)")
    p.add_argument("--trim-path", metavar="PREFIXES",
                   help="path prefixes to cut from the profile's file names before the search (':'-separated)")


def run(args: argparse.Namespace) -> int:
    store, idx, facts = open_profile(args)
    where = SourceOptions(source_path=args.source_path, trim_path=args.trim_path)
    result = source_listing(store, facts.pop("parts"), idx, args.regex, where, filters=facts.pop("frame_filters"),
                            tags=grouping(args)["tags"], mean=args.mean)
    return show(args, store, {**facts, "regex": args.regex, **result}, render)


def render(store: Store, result: dict[str, Any]) -> list[str]:
    """The text of `go tool pprof -list`, line for line: each value in its own unit."""
    unit, total = result["unit"], result["total"]

    def fmt(v: int) -> str:
        return label(v, unit, "minimum")

    def dot(v: int) -> str:
        return fmt(v) if v else "."

    lines = [f"Total: {fmt(total)}"]
    for r in result["routines"]:
        if r["file"] is None:
            lines.append(f"No source information for {r['function']}")
            continue
        lines.append(f"ROUTINE ======================== {r['function']} in {r['file']}")
        lines.append(f"{fmt(r['flat']):>10} {fmt(r['cum']):>10} (flat, cum) {percentage(r['cum'], total)} of Total")
        if r["error"] is not None:
            lines.append(f" Error: {r['error']}")
        lines += [f"{dot(n['flat']):>10} {dot(n['cum']):>10} {n['line']:6d}:{n['source']}" for n in r["lines"]]
    return lines
