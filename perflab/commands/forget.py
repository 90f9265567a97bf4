"""perflab forget: remove a source, or a run, and every row that came from it.

What goes is said first (sources, rows per table); without ``--yes`` an interactive terminal
is asked, anything else is refused with nothing removed, so a script never deletes by
accident. Files on disk (the file a source was read from, a lab run's folder) are left
alone: the store forgets, the evidence stays where the user put it.
"""

from __future__ import annotations

import argparse
import sys

from perflab import fmt
from perflab.commands import HELPS
from perflab.commands._common import open_store
from perflab.errors import PerflabError
from perflab.store import Store

NAME = "forget"
HELP = HELPS[NAME]


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", metavar="SOURCE_OR_RUN",
                   help="a run id, a source id, or the path of a file whose content is stored")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--run", action="store_true", help="REF is a run id (when it could be both)")
    what.add_argument("--source", action="store_true", help="REF is a source id or file")
    p.add_argument("--yes", action="store_true", help="remove without asking")


def _is_run(store: Store, ref: str) -> bool:
    return bool(store.con.execute("SELECT 1 FROM runs WHERE run_id = ?", [ref]).fetchall())


def _source_id(store: Store, ref: str) -> int | None:
    try:
        return store.find_source(ref)
    except PerflabError:  # neither a source id nor a stored file
        return None


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise PerflabError("nothing removed: add --yes to remove without a terminal to ask")
    try:
        return input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}
    except EOFError:
        return False


def run(args: argparse.Namespace) -> int:
    store = open_store(args)
    ref = str(args.ref)
    run_id = ref if not args.source and _is_run(store, ref) else None
    sid = _source_id(store, ref) if not args.run else None
    if run_id is not None and sid is not None:
        raise PerflabError(f"{ref}: both a run and a source; say --run or --source")
    if run_id is None and sid is None:
        what = "run" if args.run else "source" if args.source else "run or source"
        raise PerflabError(f"{ref}: no such {what} in {store.path} (perflab runs, perflab sources)")

    if run_id is not None:
        ids = store.run_source_ids(run_id)
        subject = f"run {run_id} ({fmt.count(len(ids))} source{'s' if len(ids) != 1 else ''})"
    else:
        assert sid is not None
        ids = [sid]
        src = store.source(sid)
        subject = f"source {sid} ({src['kind']}, {src['path']})"
    rows = store.source_rows(ids)
    detail = ", ".join(f"{fmt.count(n)} in {t}" for t, n in sorted(rows.items())) or "no rows"
    print(f"{subject}: {fmt.count(sum(rows.values()))} rows ({detail})")
    if not args.yes and not _confirm("Remove it from the store?"):
        print("nothing removed")
        return 1
    if run_id is not None:
        store.forget_run(run_id)
    else:
        store.forget_sources(ids)
    print(f"removed {subject} from {store.path}; files on disk are left as they were")
    return 0
