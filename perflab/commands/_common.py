"""What every verb shares: opening the store from the global options, and output."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import polars as pl

from perflab import fmt, ingest
from perflab.ingest._io import parse_size
from perflab.jsonable import to_jsonable
from perflab.store import Store


def open_store(args: argparse.Namespace, read_only: bool = False) -> Store:
    return Store(getattr(args, "store", None), read_only=read_only)


def max_decompressed(args: argparse.Namespace) -> int | None:
    value = getattr(args, "max_decompressed", None)
    return parse_size(value) if value else None


def resolve(args: argparse.Namespace, store: Store, ref: str, kinds: tuple[str, ...] | None = None) -> int:
    """FILE_OR_SOURCE → source id; a file is ingested first (once), under the global cap."""
    return ingest.resolve(store, ref, kinds, max_decompressed=max_decompressed(args))


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def print_json(obj: Any) -> None:
    json.dump(to_jsonable(obj), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def print_table(rows: list[dict[str, Any]] | pl.DataFrame, columns: list[str] | None = None,
                right: set[str] | None = None, max_width: int = 80) -> None:
    """A plain aligned table, like `go tool pprof -top`: numbers right, text left."""
    if isinstance(rows, pl.DataFrame):
        rows = rows.to_dicts()
    if not rows:
        print("(no rows)")
        return
    cols = columns or list(rows[0].keys())
    cells = [[fmt.cell(r.get(c)) for c in cols] for r in rows]
    cells = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in row] for row in cells]
    if right is None:
        right = {c for c in cols if all(isinstance(r.get(c), (int, float)) or r.get(c) is None for r in rows)}
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if c in right else v.ljust(w) for v, w, c in zip(values, widths, cols, strict=True)
        ).rstrip()

    print(line(cols))
    for row in cells:
        print(line(row))
