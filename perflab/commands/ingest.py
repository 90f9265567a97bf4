from __future__ import annotations

import argparse
import sys

from perflab.commands._common import max_decompressed, open_store
from perflab.ingest import formats, ingest_path
from perflab.ingest.pgstat_live import ingest_live

NAME = "ingest"
HELP = "ingest files (pprof, cProfile, k6, pg_stat snapshots) or a live PostgreSQL into the store"


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH", help="files to ingest (format detected by content)")
    p.add_argument("--run", dest="run_id", metavar="RUN_ID", help="group the sources under this run id")
    p.add_argument("--kind", choices=sorted(formats()), help="force the format instead of detecting it")
    p.add_argument("--pg", metavar="DSN", help="snapshot the pg_stat views of a live PostgreSQL")


def run(args: argparse.Namespace) -> int:
    if not args.paths and not args.pg:
        print("perflab ingest: give PATH... or --pg DSN", file=sys.stderr)
        return 2
    store = open_store(args)
    cap = max_decompressed(args)
    for path in args.paths:
        result = ingest_path(store, path, kind=args.kind, run_id=args.run_id, max_decompressed=cap)
        print(result.message)
    if args.pg:
        for result in ingest_live(store, args.pg, run_id=args.run_id):
            print(result.message)
    return 0
