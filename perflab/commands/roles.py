"""`perflab roles RUN`: which of the service's metrics fed each signal role of a run."""

from __future__ import annotations

import argparse

from perflab.analysis import roles
from perflab.analysis.run import Run
from perflab.commands import HELPS
from perflab.commands._common import add_json_flag, open_store, print_json, print_table
from perflab.vocab import SIGNAL_ROLES

NAME = "roles"
HELP = HELPS[NAME]


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", metavar="RUN", help="a lab run id or a group made with `perflab ingest --run`")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    with open_store(args, read_only=True) as store:
        found = Run.load(store, args.run_id).roles
    if args.json:
        print_json({"run_id": found.run_id, "roles": {
            role: None if src is None else {"metric": src.metric, "source_id": src.source_id, "samples": src.samples}
            for role, src in found.sources.items()}})
        return 0
    rows = []
    for role, kind in SIGNAL_ROLES.items():
        src = found.sources.get(role)
        std = ", ".join(str(s) for s in roles.STANDARD.get(role, ())[:2])
        rows.append({"role": role, "kind": kind, "metric": src.metric if src else "-",
                     "from": ("your mapping" if src.mapped else "a standard name") if src else
                     (f"none (standard: {std}; or --role {role}=METRIC)" if std else f"none (--role {role}=METRIC)"),
                     "samples": src.samples if src else None, "source": src.source_id if src else None})
    print_table(rows, ["role", "kind", "metric", "from", "samples", "source"], max_width=90)
    return 0
