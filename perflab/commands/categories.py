from __future__ import annotations

import argparse
from typing import Any

from perflab.analysis.categories import CATEGORIES, DESCRIPTIONS, categories
from perflab.commands import HELPS
from perflab.commands._common import add_json_flag, open_store, print_json, print_table, resolve
from perflab.vocab import PROFILE_KINDS

NAME = "categories"
HELP = HELPS[NAME]


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", metavar="FILE_OR_SOURCE", help="a profile file (ingested first) or a source id")
    p.add_argument("--sample-type", metavar="TYPE",
                   help="sample type by name (cpu, delay, alloc_space, ...) or index "
                        "(default: the profile's default)")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    store = open_store(args)
    result = categories(store, resolve(args, store, args.ref, PROFILE_KINDS), sample_type=args.sample_type)
    if args.json:
        print_json(result)
        return 0
    print(f"Type: {result['sample_type']} ({result['unit']}), total {result['total']}")
    print_table(rows(result), columns=["category", "share", "value", "top frame"],
                right={"share", "value"})
    if result["unattributed"]:
        print(f"unattributed (samples without frames): {100 * result['unattributed']:.2f}%")
    return 0


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per category, largest share first (ties in registry order)."""
    order = sorted(CATEGORIES, key=lambda c: (-result["categories"][c], CATEGORIES.index(c)))
    out = []
    for cat in order:
        top = result["top_frames"][cat]
        out.append({
            "category": cat,
            "share": f"{100 * result['categories'][cat]:.2f}%",
            "value": result["values"][cat],
            "top frame": top[0]["name"] if top else "",
            "description": DESCRIPTIONS.get(cat, ""),
        })
    return out
