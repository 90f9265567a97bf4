from __future__ import annotations

import argparse

from perflab.commands import HELPS
from perflab.commands._common import add_json_flag, open_store, print_json, print_table
from perflab.store import list_sources

NAME = "sources"
HELP = HELPS[NAME]


def prepare_parser(p: argparse.ArgumentParser) -> None:
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    store = open_store(args, read_only=True)
    df = list_sources(store)
    if args.json:
        print_json(df.to_dicts())
    else:
        print_table(df.drop("sha256").with_columns(df["sha256"].str.slice(0, 12).alias("sha256")),
                    ["source_id", "kind", "bytes", "run_id", "ingested_at", "sha256", "path"],
                    max_width=100)
    return 0
