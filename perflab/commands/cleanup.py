"""`perflab cleanup`: stop and remove what a killed perflab left (perflab.leases).

Every verb does this first, on its own; this verb does only that, and says so when there
was nothing to clean."""

from __future__ import annotations

import argparse

from perflab.commands import HELPS
from perflab.commands._common import add_json_flag, print_json
from perflab.leases import reap

NAME = "cleanup"
HELP = HELPS[NAME]


def prepare_parser(p: argparse.ArgumentParser) -> None:
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    done = reap()
    if args.json:
        print_json([{"owner": r.owner, "stopped": r.stopped, "removed": r.removed} for r in done])
    elif not done:
        print("nothing left behind: no killed perflab had processes or temp dirs")
    else:
        for r in done:
            print(r.line)
    return 0
