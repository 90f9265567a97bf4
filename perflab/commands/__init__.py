"""One module per subcommand (the memray pattern). Each module is a :class:`Command`:

    NAME: str                      the verb on the command line
    HELP: str                      one line for `perflab --help`
    prepare_parser(parser) -> None add the verb's arguments
    run(args) -> int               do it; raise PerflabError for user mistakes

Add a new verb by writing its module and naming it in VERBS and _ALL (mypy checks it
against the protocol).
"""

from __future__ import annotations

import argparse
import importlib
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from perflab.commands import (
        bench_writes,
        categories,
        cleanup,
        compare,
        doctor,
        export,
        forget,
        ingest,
        k6,
        listing,
        log,
        nightly,
        peek,
        pgtop,
        report,
        roles,
        run,
        runs,
        snakeviz,
        sources,
        top,
        traces,
    )


class Command(Protocol):
    NAME: str
    HELP: str

    def prepare_parser(self, p: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# Verb → module, in `perflab --help` order. A command imports only its own module: together
# they load polars, DuckDB, scipy and plotly (1.8 s), which `perflab runs` does not need.
VERBS: dict[str, str] = {
    "ingest": "ingest", "sources": "sources", "forget": "forget", "k6": "k6", "pg-top": "pgtop",
    "export": "export", "snakeviz": "snakeviz", "top": "top", "peek": "peek", "traces": "traces", "list": "listing",
    "run": "run", "runs": "runs",
    "categories": "categories", "bench-writes": "bench_writes", "compare": "compare", "log": "log",
    "doctor": "doctor", "roles": "roles", "nightly": "nightly", "report": "report", "cleanup": "cleanup",
}

if TYPE_CHECKING:
    # mypy checks every module against the protocol here.
    _ALL: tuple[Command, ...] = (ingest, sources, forget, k6, pgtop, export, snakeviz, top, peek, traces, listing,
                                 run, runs, categories, bench_writes, compare, log, doctor, roles, nightly, report,
                                 cleanup)


def load(verb: str) -> Command:
    """The module of ``verb`` (imported now)."""
    return cast(Command, importlib.import_module(f"perflab.commands.{VERBS[verb]}"))
