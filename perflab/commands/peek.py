from __future__ import annotations

import argparse
from typing import Any

from perflab.analysis.pprof_units import label, percentage
from perflab.analysis.pprof_views import peek
from perflab.commands import HELPS
from perflab.commands._pprof_text import (
    active_filter_lines,
    add_grouping_args,
    add_profile_args,
    grouping,
    merged_header,
    open_profile,
    show,
)
from perflab.store import Store

NAME = "peek"
HELP = HELPS[NAME]

_SEPARATOR = "----------------------------------------------------------+-------------"
_LEGEND = "      flat  flat%   sum%        cum   cum%   calls calls% + context \t \t "


def prepare_parser(p: argparse.ArgumentParser) -> None:
    add_profile_args(p, regex=True, mean=True)
    add_grouping_args(p)
    p.add_argument("--cum", action="store_true", help="functions by |cum| (then name), as pprof -peek -cum")


def run(args: argparse.Namespace) -> int:
    store, idx, facts = open_profile(args)
    options = grouping(args)
    facts["filters"] += options["tags"].legend()  # pprof lists frame filters, then tag filters
    result = peek(store, facts.pop("parts"), idx, args.regex, facts["unit"], mean=args.mean,
                  filters=facts.pop("frame_filters"), cum=args.cum, **options)
    return show(args, store, {**facts, "regex": args.regex, **result}, render)


def render(store: Store, result: dict[str, Any]) -> list[str]:
    """The text of `go tool pprof -peek`, line for line."""
    unit, out_unit, total = result["unit"], result["output_unit"], result["total"]

    def fmt(v: int) -> str:
        return label(v, unit, out_unit)

    def edge(e: dict[str, Any], cum: int) -> str:
        inline = " (inline)" if e["inline"] else ""
        return f"{fmt(e['weight']):>50} {percentage(e['weight'], cum)} |   {e['name']}{inline}"

    stype = ("mean_" if result["mean"] else "") + result["sample_type"]
    lines = merged_header(store, result, stype, total, out_unit)
    lines += active_filter_lines(result.get("filters") or [])
    shown = result["shown"]
    lines += [f"Showing nodes accounting for {fmt(shown)}, {percentage(shown, total).strip()} of {fmt(total)} total",
              _SEPARATOR, _LEGEND]
    running = 0
    for n in result["nodes"]:
        running += n["flat"]
        lines.append(_SEPARATOR)
        lines += [edge(e, n["cum"]) for e in n["callers"]]
        lines.append(f"{fmt(n['flat']):>10} {percentage(n['flat'], total)} {percentage(running, total)} "
                     f"{fmt(n['cum']):>10} {percentage(n['cum'], total)}                | {n['name']}")
        lines += [edge(e, n["cum"]) for e in n["callees"]]
    if result["nodes"]:
        lines.append(_SEPARATOR)
    return lines
