"""`perflab log add`: an optimization-log entry from a before run and an after run."""

from __future__ import annotations

import argparse

from perflab.analysis.run import Run
from perflab.commands import HELPS
from perflab.commands._common import add_json_flag, open_store, print_json
from perflab.errors import PerflabError
from perflab.report.optlog import DEFAULT_LOG, add_entry_detail

NAME = "log"
HELP = HELPS[NAME]


def prepare_parser(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="log_command", metavar="SUBCOMMAND")
    sub.required = True
    add = sub.add_parser("add", help="add (or replace) the entry of a before/after pair of runs",
                         description="Add the entry of a before/after pair to the optimization log; "
                         "adding the same pair again replaces its entry.")
    add.add_argument("--before", required=True, metavar="RUN", help="the run before the change")
    add.add_argument("--after", required=True, metavar="RUN", help="the run after the change")
    add.add_argument("--title", required=True, help="the change in a few words")
    add.add_argument("--hypothesis", required=True, help="why the change should help")
    add.add_argument("--expected", help="the impact predicted before measuring")
    add.add_argument("--implementation", help="what was changed (default: the settings that differ)")
    add.add_argument("--out", metavar="FILE",
                     help="the log file (default reports/optimization-log.md, created if missing)")
    add_json_flag(add)


def run(args: argparse.Namespace) -> int:
    if not args.title.strip() or not args.hypothesis.strip():
        raise PerflabError("--title and --hypothesis must not be empty")
    out = args.out or DEFAULT_LOG
    with open_store(args, read_only=True) as store:
        entry, number, replaced = add_entry_detail(
            Run.load(store, args.before), Run.load(store, args.after), args.title, args.hypothesis,
            expected=args.expected, implementation=args.implementation, out=out)
    if args.json:
        print_json({"path": str(out), "number": number, "replaced": replaced, "entry": entry,
                    "before": args.before, "after": args.after})
    else:
        print(entry, end="")
        print(f"\n{'replaced' if replaced else 'added'} entry #{number} in {out}")
    return 0
