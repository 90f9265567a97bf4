"""`perflab export FORMAT SOURCE`: write a stored source in another tool's format."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perflab.analysis.pstats import write_callgrind
from perflab.commands import HELPS
from perflab.commands._common import open_store, resolve
from perflab.errors import PerflabError
from perflab.store import Store
from perflab.vocab import CPROFILE

NAME = "export"
HELP = HELPS[NAME]


def _callgrind(store: Store, ref: str, out: Any) -> str:
    sid = store.find_source(ref, kinds=(CPROFILE,))
    n = write_callgrind(store, sid, out)
    return f"callgrind of source {sid} ({n} functions)"


# format -> (help, writer(store, SOURCE, text file) -> summary line).
# A new export format is one more entry here.
EXPORTERS: dict[str, tuple[str, Callable[[Store, str, Any], str]]] = {
    "callgrind": ("a cProfile source as a callgrind file (KCachegrind, QCachegrind)", _callgrind),
}


def prepare_parser(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="export_format", metavar="FORMAT")
    sub.required = True
    for name, (help_text, _) in EXPORTERS.items():
        q = sub.add_parser(name, help=help_text, description=help_text)
        q.add_argument("source", metavar="SOURCE", help="a source id, or a file (ingested first)")
        q.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")


def run(args: argparse.Namespace) -> int:
    _, writer = EXPORTERS[args.export_format]
    store = open_store(args)
    try:
        args.source = str(resolve(args, store, args.source, (CPROFILE,)))
        if args.output in (None, "-"):
            writer(store, args.source, sys.stdout)
            return 0
        target = Path(args.output)
        # Written beside the target and renamed, so a failure never leaves half a file.
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
        except OSError as exc:
            raise PerflabError(f"{target}: cannot write: {exc.strerror or exc}") from None
        try:
            with open(fd, "w", encoding="utf-8", newline="\n") as out:
                summary = writer(store, args.source, out)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a plain file is what users expect
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        print(f"{target}: {summary}")
        return 0
    finally:
        store.close()
