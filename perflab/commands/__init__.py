"""One module per subcommand (the memray pattern). Each module is a :class:`Command`:

    NAME: str                      the verb on the command line
    HELP: str                      one line for `perflab --help`
    prepare_parser(parser) -> None add the verb's arguments
    run(args) -> int               do it; raise PerflabError for user mistakes

Add a new verb by writing its module and naming it in COMMANDS (mypy checks it against
the protocol).
"""

from __future__ import annotations

import argparse
from typing import Protocol

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
    log,
    nightly,
    pgtop,
    report,
    roles,
    run,
    runs,
    snakeviz,
    sources,
    top,
)


class Command(Protocol):
    NAME: str
    HELP: str

    def prepare_parser(self, p: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# In `perflab --help` order.
COMMANDS: tuple[Command, ...] = (
    ingest,
    sources,
    forget,
    k6,
    pgtop,
    export,
    snakeviz,
    top,
    run,
    runs,
    categories,
    bench_writes,
    compare,
    log,
    doctor,
    roles,
    nightly,
    report,
    cleanup,
)
