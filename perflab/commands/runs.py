from __future__ import annotations

import argparse

from perflab.analysis.runs import list_runs
from perflab.commands import HELPS
from perflab.commands._common import add_json_flag, open_store, print_json, print_table
from perflab.jsonable import to_jsonable

NAME = "runs"
HELP = HELPS[NAME]

# The headline a reader scans for (throughput, latency, errors, CPU, calls per request) fits
# a 120-column terminal next to a lab run id; --wide adds the rest of RunSummary.
COLUMNS = ["run_id", "status", "requests", "rps", "p95_ms", "error_rate", "service_cpu_p50",
           "downstream_calls_per_request", "doctor"]
WIDE_COLUMNS = ["run_id", "scenario", "variant", "status", "started_at", "duration_s", "requests", "rps",
                "p95_ms", "error_rate", "dropped_iterations", "service_cpu_p50", "service_cpu_mean",
                "downstream_calls_per_request", "doctor"]
HEADERS = {"run_id": "run", "rps": "req/s", "p95_ms": "p95", "error_rate": "errors",
           "dropped_iterations": "dropped", "service_cpu_p50": "CPU p50", "service_cpu_mean": "CPU mean",
           "downstream_calls_per_request": "calls/req", "duration_s": "duration", "started_at": "started"}
TEXT = {"run_id", "scenario", "variant", "status", "started_at", "doctor"}
# What a terminal shows without wrapping; a longer run id is shortened (…) to fit.
TABLE_COLUMNS = 120


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wide", action="store_true", help="every column, however wide the table gets")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    runs = list_runs(open_store(args, read_only=True))
    if args.json:
        print_json(runs)  # made JSON-able there, once
    else:
        rows = [{**row, "doctor": doctor_cell(row["verdicts"])} for row in to_jsonable(runs)]
        print_table(rows, WIDE_COLUMNS if args.wide else COLUMNS, headers=HEADERS,
                    right=set(COLUMNS + WIDE_COLUMNS) - TEXT,
                    max_width=200 if args.wide else 80, fit=None if args.wide else TABLE_COLUMNS,
                    squeeze=("doctor",))
    return 0


def doctor_cell(verdicts: dict[str, str] | None) -> str | None:
    """The doctor's answer in a few words: the signatures present; else ``none`` when every
    signature was judged absent, ``none (2/7)`` when only 2 of 7 could be judged (the others
    had insufficient data; 0/7: none could be). Short, so a lab run id still fits beside it."""
    if verdicts is None:
        return None
    # The words themselves, as doctor.py's labels use them: importing the signatures' module
    # for two constants would load polars, the whole cost of a listing.
    present = [name for name, verdict in verdicts.items() if verdict == "present"]
    if present:
        return ", ".join(present)
    judged = sum(verdict == "absent" for verdict in verdicts.values())
    return "none" if judged == len(verdicts) else f"none ({judged}/{len(verdicts)})"
