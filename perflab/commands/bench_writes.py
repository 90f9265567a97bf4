from __future__ import annotations

import argparse

from perflab.commands import HELPS
from perflab.commands._common import add_json_flag, open_store, print_json, print_table
from perflab.errors import PerflabError

NAME = "bench-writes"
HELP = HELPS[NAME]

# The defaults repeat perflab.lab.benchwrites' constants (a test keeps them equal) so that
# building `perflab --help` does not import the lab for every verb.
METHOD_COLUMNS = ["method", "rows", "seconds", "rows_per_s", "x_single"]
INTERVAL_COLUMNS = ["interval_s", "e2e_latency_p95_ms", "db_writes_per_s", "records_per_s", "post_p95_ms",
                    "records_written", "flushes"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value


def parse_intervals(text: str) -> list[float]:
    """'0.5,1,2,5' -> [0.5, 1.0, 2.0, 5.0]; a user mistake is one line."""
    out = []
    for part in text.split(","):
        part = part.strip()
        try:
            value = float(part)
        except ValueError:
            raise PerflabError(f"--intervals {text!r}: {part!r} is not a number of seconds") from None
        if not value > 0 or value != value or value == float("inf"):
            raise PerflabError(f"--intervals {text!r}: {part!r} must be a positive number of seconds")
        out.append(value)
    if len(set(out)) != len(out):
        raise PerflabError(f"--intervals {text!r}: an interval is listed twice")
    return out


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", type=_positive_int, default=5000, metavar="N",
                   help="rows each write method writes per repetition (default 5000)")
    p.add_argument("--reps", type=_positive_int, default=3, metavar="N",
                   help="repetitions per method; the median is reported, all are stored (default 3)")
    p.add_argument("--intervals", default="0.5,1,2,5", metavar="S,S,...",
                   help="service flush intervals in seconds (default 0.5,1,2,5)")
    p.add_argument("--record-rate", type=float, default=200.0, metavar="R",
                   help="k6 POST /records per second during each interval's run (default 200)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="k6 duration of each interval's run (default max(10, 3 x interval))")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    # Deferred on purpose: perflab.lab brings psycopg, psutil and asyncio (~0.1 s), which
    # every other verb, and `perflab --help`, would otherwise pay for (see METHOD_COLUMNS).
    from perflab.lab.benchwrites import BenchOptions
    from perflab.lab.benchwrites import run as run_bench

    opts = BenchOptions(rows=args.rows, reps=args.reps, intervals=parse_intervals(args.intervals),
                        record_rate=args.record_rate, duration_s=args.duration, live=True)
    opts.validate()  # before the store is opened or anything started
    store = open_store(args)
    result = run_bench(store, opts)
    if args.json:
        print_json(result)
        return 0
    print(f"bench {result['bench_id']}  (source {result['source_id']}, {result['file']})")
    print()
    print_table(result["methods"], METHOD_COLUMNS)
    print()
    print_table(result["flush_intervals"], INTERVAL_COLUMNS)
    return 0
