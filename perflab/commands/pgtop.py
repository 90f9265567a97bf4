"""`perflab pg-top BEFORE AFTER`: the statements that cost the most between two snapshots."""

from __future__ import annotations

import argparse
import re

from perflab.analysis.database import ORDERS, pg_top, pg_top_detail
from perflab.api import pg_snapshot
from perflab.commands import HELPS
from perflab.commands._common import add_json_flag, max_decompressed, open_store, print_json, print_table
from perflab.errors import PerflabError

NAME = "pg-top"
HELP = HELPS[NAME]

# Wide enough to recognise a statement, narrow enough for one terminal line per row.
QUERY_WIDTH = 80


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("before", metavar="BEFORE", help="pg_stat_statements snapshot: file or source id")
    p.add_argument("after", metavar="AFTER", help="the later snapshot: file or source id")
    p.add_argument("--order", choices=sorted(ORDERS), default="total",
                   help="sort by total time (default), mean time or calls")
    p.add_argument("--limit", type=int, metavar="N", help="show the first N statements (default and 0: all)")
    add_json_flag(p)


def _one_line(query: str | None) -> str:
    return re.sub(r"\s+", " ", query or "").strip()


def run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 0:
        raise PerflabError("--limit must be 0 or more")
    limit = args.limit or None  # 0 means all rows, as for every verb with --limit
    store = open_store(args)
    cap = max_decompressed(args)
    args.before, args.after = (pg_snapshot(store, r, cap) for r in (args.before, args.after))
    if args.json:
        print_json(pg_top(store, args.before, args.after, order=args.order, limit=limit))
        return 0
    everything, reset_detected = pg_top_detail(store, args.before, args.after, order=args.order)
    frame = everything if limit is None else everything.head(limit)
    # The share is of all statements, also those --limit hides.
    total = float(everything["total_exec_time"].sum()) if everything.height else 0.0
    rows = []
    for r in frame.to_dicts():
        ratio = r["cache_hit_ratio"]
        rows.append({
            "total_ms": f"{r['total_exec_time']:,.1f}",
            "%": f"{100 * r['total_exec_time'] / total:.1f}" if total > 0 else "-",
            "mean_ms": f"{r['mean_exec_time']:,.3f}",
            "calls": f"{r['calls']:,}",
            "rows": f"{r['rows']:,}",
            "hit%": f"{100 * ratio:.1f}" if ratio is not None else "-",
            "query": ("* " if r["reset"] else "") + _one_line(r["query"]),
        })
    print_table(rows, ["total_ms", "%", "mean_ms", "calls", "rows", "hit%", "query"],
                right={"total_ms", "%", "mean_ms", "calls", "rows", "hit%"}, max_width=QUERY_WIDTH)
    if reset_detected:
        print("note: pg_stat_statements was reset (or evicted entries) between the snapshots; "
              "rows marked * count since their reset")
    return 0
