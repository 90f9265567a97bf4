"""`perflab report RUN`: the load-test analysis of a run, as report.md and report.html."""

from __future__ import annotations

import argparse

from perflab.analysis.run import Run
from perflab.commands import HELPS
from perflab.commands._common import add_json_flag, open_store, print_json, print_table
from perflab.errors import PerflabError
from perflab.report.loadtest_report import write_report

NAME = "report"
HELP = HELPS[NAME]


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", metavar="RUN", help="a lab run id or a group made with `perflab ingest --run`")
    p.add_argument("--out", metavar="DIR", default="reports",
                   help="write DIR/RUN/report.md and report.html (default: reports)")
    p.add_argument("--target-rps", type=float, metavar="N",
                   help="size the scaling estimate for N requests/s (default: 10× the measured rate)")
    p.add_argument("--png", action="store_true",
                   help="also export every chart as PNG and link them from the markdown "
                        "(kaleido with a local chromium; off by default)")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    if args.target_rps is not None and not args.target_rps > 0:
        raise PerflabError("--target-rps must be positive")
    store = open_store(args, read_only=True)
    try:
        result = write_report(Run.load(store, args.run_id), out_dir=args.out, target_rps=args.target_rps,
                              png=args.png)
    finally:
        store.close()
    if args.json:
        print_json(result)
        return 0
    rows = [{"file": "markdown", "path": result.markdown}, {"file": "html", "path": result.html}]
    rows += [{"file": "png", "path": p} for p in result.png]
    print_table(rows, columns=["file", "path"], max_width=200)
    if result.png_error:
        print(f"PNG export failed: {result.png_error}")
    return 0
