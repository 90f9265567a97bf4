from __future__ import annotations

import argparse

from perflab.analysis.runs import list_runs
from perflab.commands._common import add_json_flag, open_store, print_json, print_table
from perflab.jsonable import to_jsonable

NAME = "runs"
HELP = "list lab runs (and user-made run groups) with their headline numbers"

COLUMNS = ["run_id", "scenario", "variant", "status", "started_at", "duration_s", "requests", "rps",
           "p95_ms", "error_rate", "service_cpu_p50", "downstream_calls_per_request"]


def prepare_parser(p: argparse.ArgumentParser) -> None:
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    rows = to_jsonable(list_runs(open_store(args)))
    if args.json:
        print_json(rows)
    else:
        print_table(rows, COLUMNS, max_width=48)
    return 0
