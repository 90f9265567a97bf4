from __future__ import annotations

import argparse
from typing import Any

from perflab.analysis.pprof_units import label
from perflab.analysis.pprof_views import traces
from perflab.commands import HELPS
from perflab.commands._pprof_text import (
    add_grouping_args,
    add_profile_args,
    grouping,
    merged_header,
    open_profile,
    show,
)
from perflab.store import Store

NAME = "traces"
HELP = HELPS[NAME]

_SEPARATOR = "-----------+-------------------------------------------------------"


def prepare_parser(p: argparse.ArgumentParser) -> None:
    add_profile_args(p, regex=False, mean=True)
    add_grouping_args(p, shown_tags=True)


def run(args: argparse.Namespace) -> int:
    store, idx, facts = open_profile(args)
    filters, parts = facts.pop("frame_filters"), facts.pop("parts")
    result = traces(store, parts, idx, mean=args.mean, filters=filters, **grouping(args))
    return show(args, store, {**facts, **result}, render)


def render(store: Store, result: dict[str, Any]) -> list[str]:
    """The text of `go tool pprof -traces`, line for line: each value in its own unit."""
    unit = result["unit"]
    stype = ("mean_" if result["mean"] else "") + result["sample_type"]
    # pprof prints its header lines joined as one: an empty header is an empty line.
    lines = merged_header(store, result, stype, result["total"], "minimum") or [""]
    units = result["num_label_units"]
    for s in result["samples"]:
        lines.append(_SEPARATOR)
        lines += sorted(f"{k:>10}:  {' '.join(v)}" for k, v in s["labels"].items())
        lines += sorted(f"{k:>10}:  {' '.join(label(n, units[k], 'auto') for n in v)}"
                        for k, v in s["num_labels"].items())
        for i, f in enumerate(s["frames"]):
            value = label(s["value"], unit, "minimum") if i == 0 else ""
            lines.append(f"{value:>10}   {f['name']}{' (inline)' if f['inline'] else ''}")
    lines.append(_SEPARATOR)
    return lines
