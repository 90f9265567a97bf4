"""``perflab ingest``: files and folders, a live PostgreSQL, a window of a live Prometheus,
and a run's role mappings.

One file is read as before: a problem with it ends the command (exit 2, one line). Several
files, or a folder (every file under it, recursively, in sorted order, hidden names
skipped), are read one by one, each in its own transaction: a file of no format perflab
reads is skipped with one line (``skipped PATH: not a format perflab reads``), a bad file
of a format it reads is reported with one line and the others are still read. The exit
code is 0 when something was ingested (or was already stored) and nothing failed, else 2.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from perflab.analysis.metrics import parse_selector
from perflab.analysis.runs import store_summaries
from perflab.commands import HELPS
from perflab.commands._common import max_decompressed, open_store
from perflab.errors import InputError, PerflabError
from perflab.ingest import IngestResult, formats, ingest_path
from perflab.ingest._metric_samples import DEFAULT_MAX_SERIES, MAX_SERIES_ENV, override_max_series, parse_max_series
from perflab.ingest.pgstat_live import ingest_live
from perflab.ingest.prometheus_pull import pull
from perflab.store import Store
from perflab.vocab import K6_POINT_KINDS, SIGNAL_ROLES

NAME = "ingest"
HELP = HELPS[NAME]
# How perflab.ingest.detect words a file of no known format (the start of its problem).
_NOT_A_FORMAT = "not a format perflab reads"


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="files or folders to ingest (format detected by content; a folder: its files, recursively)")
    p.add_argument("--run", dest="run_id", metavar="RUN_ID", help="group the sources under this run id")
    p.add_argument("--kind", choices=sorted(formats()), help="force the format instead of detecting it")
    p.add_argument("--pg", metavar="DSN", help="snapshot the pg_stat views of a live PostgreSQL")
    p.add_argument("--prometheus", metavar="URL", help="pull --query over [--start, --end] from a live Prometheus")
    p.add_argument("--query", metavar="PROMQL", help="the PromQL expression to pull (with --prometheus)")
    p.add_argument("--start", metavar="T", help="window start: RFC 3339 or unix seconds (with --prometheus)")
    p.add_argument("--end", metavar="T", help="window end: RFC 3339 or unix seconds (with --prometheus)")
    p.add_argument("--step", metavar="S", help="resolution: seconds or 15s/1m (default: the window / 11000, ≥ 1 s)")
    p.add_argument("--role", dest="roles", action="append", default=[], metavar="ROLE=METRIC",
                   help="map a signal role to a metric (name or family, optionally {label=\"value\"}); "
                        "repeatable; needs --run")
    p.add_argument("--max-series", metavar="N",
                   help=f"cap on distinct series in one metrics file (default: ${MAX_SERIES_ENV} or "
                        f"{DEFAULT_MAX_SERIES})")


def parse_roles(specs: list[str]) -> dict[str, str]:
    """ROLE=METRIC specs → {role: metric}, or a PerflabError naming the first bad one."""
    roles: dict[str, str] = {}
    for spec in specs:
        role, sep, metric = spec.partition("=")
        role, metric = role.strip(), metric.strip()
        if not sep or not metric:
            raise PerflabError(f"--role {spec!r}: give ROLE=METRIC")
        if role not in SIGNAL_ROLES:
            raise PerflabError(f"--role {spec!r}: unknown role {role!r}; one of: {', '.join(SIGNAL_ROLES)}")
        try:
            parse_selector(metric)
        except ValueError as exc:
            raise PerflabError(f"--role {spec!r}: {exc}") from None
        roles[role] = metric
    return roles


def expand(paths: list[str]) -> list[Path]:
    """The files to read: each file as given, each folder's files (recursive, sorted, no hidden ones)."""
    out: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*")
                              if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)))
        else:
            out.append(path)
    return out


def _check(args: argparse.Namespace) -> dict[str, str]:
    pulled = [opt for opt in ("query", "start", "end", "step") if getattr(args, opt)]
    if pulled and not args.prometheus:
        raise PerflabError(f"--{pulled[0]} goes with --prometheus URL")
    if not (args.paths or args.pg or args.prometheus or args.roles):
        raise PerflabError("ingest: give PATH..., --pg DSN, --prometheus URL or --run RUN --role ROLE=METRIC")
    if args.prometheus and not all(getattr(args, opt) for opt in ("query", "start", "end")):
        raise PerflabError("--prometheus needs --query, --start and --end")
    roles = parse_roles(args.roles)
    if roles and not args.run_id:
        raise PerflabError("--role needs --run RUN_ID (roles belong to a run)")
    return roles


def run(args: argparse.Namespace) -> int:
    roles = _check(args)
    cap = parse_max_series(args.max_series) if args.max_series else None
    store = open_store(args)
    results: list[IngestResult] = []
    with override_max_series(cap):
        code = _ingest_files(args, store, results) if args.paths else 0
        if args.pg:
            for result in ingest_live(store, args.pg, run_id=args.run_id):
                print(result.message)
        if args.prometheus:
            print(pull(store, args.prometheus, args.query, args.start, args.end, args.step, args.run_id).message)
    if roles and code == 0:
        with store.transaction():
            store.set_roles(args.run_id, roles)
        for role, metric in sorted(roles.items()):
            print(f"run {args.run_id}: {role} = {metric}")
    # After every file, so that a summary file read after its NDJSON counts in its summary.
    _store_k6_summaries(store, results)
    if args.run_id:
        store_summaries(store, [args.run_id])  # `perflab runs` then reads it, not k6's points
    return code


def _store_k6_summaries(store: Store, results: list[IngestResult]) -> None:
    """k6's summary of each new NDJSON/CSV, computed and stored now (perflab.analysis.k6_stored):
    `perflab k6 SOURCE` then reads one row instead of every point."""
    new = [r.source_id for r in results if r.new and r.kind in K6_POINT_KINDS]
    if not new:
        return
    from perflab.analysis.loadtest import k6_summary
    from perflab.ingest import bounded_memory

    # Part of the ingest, so under its memory bound: unbounded, DuckDB's read of every point
    # of a 2.1 GB file lifted the ingest's peak from 0.68 to 0.92 GiB.
    with bounded_memory(store):
        for sid in new:
            # A summary that cannot be computed is not the file's fault: `perflab k6` says why.
            with contextlib.suppress(PerflabError):
                k6_summary(store, sid)


def _ingest_files(args: argparse.Namespace, store: Store, results: list[IngestResult]) -> int:
    cap = max_decompressed(args)
    if len(args.paths) == 1 and not Path(args.paths[0]).is_dir():
        result = ingest_path(store, args.paths[0], kind=args.kind, run_id=args.run_id, max_decompressed=cap)
        results.append(result)
        print(result.message)
        return 0
    files = expand(args.paths)
    new = stored = skipped = failed = 0
    for path in files:
        try:
            result = ingest_path(store, path, kind=args.kind, run_id=args.run_id, max_decompressed=cap)
        except InputError as err:
            if err.problem.startswith(_NOT_A_FORMAT):
                skipped += 1
                print(f"skipped {path}: {_NOT_A_FORMAT}", file=sys.stderr)
            else:
                failed += 1
                print(f"perflab: {err}", file=sys.stderr)
            continue
        results.append(result)
        new, stored = (new + 1, stored) if result.new else (new, stored + 1)
        print(result.message)
    print(f"{new} ingested, {stored} already stored, {skipped} skipped, {failed} failed ({len(files)} files)")
    if failed or not (new or stored):
        if not files:
            print(f"perflab: {', '.join(args.paths)}: no files", file=sys.stderr)
        return 2
    return 0
