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

# Each verb's one line for `perflab --help`, here so that `perflab --help` imports no verb's
# module (each module's HELP is its entry).
HELPS: dict[str, str] = {
    'ingest': ('ingest files or folders (pprof, cProfile, k6, pg_stat snapshots, Prometheus/OpenMetrics, '
         'expvar, process samples), a live PostgreSQL or a window of a live Prometheus into the store'),
    'sources': 'list what is in the store',
    'forget': 'remove a source or a run, with everything read from it, from the store',
    'k6': "k6's end-of-test summary of a k6 NDJSON/CSV/summary file, equal to k6's own numbers",
    'pg-top': "pg_stat_statements deltas between two snapshots, like PgHero's Queries page",
    'export': "write a stored source in another tool's format (callgrind, pprof, speedscope)",
    'snakeviz': 'view a cProfile source in snakeviz (served on 127.0.0.1 only, until Ctrl-C)',
    'top': ('flat and cum per function of a profile (pprof, collapsed stacks, speedscope or cProfile), like '
         '`go tool pprof -top`'),
    'peek': "callers and callees of the functions matching a regexp, with flat and cum, like `go tool pprof -peek`",
    'traces': "every sample of a profile with its labels, value and frames, like `go tool pprof -traces`",
    'list': "flat and cum per source line of the functions matching a regexp, like `go tool pprof -list`",
    'run': ('run a lab scenario (PostgreSQL + the sample service) or your own service (--target FILE.toml) '
         'under real k6 load, ingested as one run'),
    'runs': 'list lab runs (and user-made run groups) with their headline numbers',
    'categories': ('share of a profile in hashing, serialization, regex, GC, locks, network, database driver and '
         'other (leaf-most matching frame wins)'),
    'bench-writes': ('measure the no-batch penalty on a real PostgreSQL (single-row vs executemany, multi-row, COPY, '
         'upsert) and the flush-interval trade-off through the sample service under k6'),
    'compare': "compare two runs (A = before, B = after): each metric's change and whether it is beyond noise",
    'log': 'the optimization log: `log add --before A --after B` writes an entry measured by two runs',
    'doctor': 'diagnose a run: a verdict for every bottleneck signature, with its evidence and the fix',
    'roles': 'which metric fed each signal role of a run (requests, pool_waiting, cpu_seconds, ...), or none',
    'nightly': ('run every scenario and its fix (or your targets and their fixed variants), execute the '
         'notebooks on those runs and write them as offline HTML with an index of verdicts and '
         'regressions under reports/YYYY-MM-DD/'),
    'report': 'write the load-test report of a run (markdown + offline HTML with charts)',
    'cleanup': 'stop the processes and remove the temp dirs a killed perflab left behind',
}

if TYPE_CHECKING:
    # mypy checks every module against the protocol here.
    _ALL: tuple[Command, ...] = (ingest, sources, forget, k6, pgtop, export, snakeviz, top, peek, traces, listing,
                                 run, runs, categories, bench_writes, compare, log, doctor, roles, nightly, report,
                                 cleanup)


def load(verb: str) -> Command:
    """The module of ``verb`` (imported now)."""
    return cast(Command, importlib.import_module(f"perflab.commands.{VERBS[verb]}"))
