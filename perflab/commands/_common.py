"""What every verb shares: opening the store from the global options, and output."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perflab import fmt
from perflab.errors import StoreError
from perflab.jsonable import to_jsonable
from perflab.store import Store, default_store_path, file_sha256

if TYPE_CHECKING:
    import polars as pl


def open_store(args: argparse.Namespace, read_only: bool = False) -> Store:
    """The store; ``read_only`` for a verb that only reads: several such verbs (and notebooks
    reading) may then hold it at once. A store not made yet, or one an older perflab wrote,
    is opened to write (made, or migrated) all the same."""
    path = Path(getattr(args, "store", None) or default_store_path())
    if read_only and path.exists():
        try:
            return Store(path, read_only=True)
        except StoreError as err:
            if not err.needs_writing:
                raise
    return Store(path)


def max_decompressed(args: argparse.Namespace) -> int | None:
    from perflab.ingest._io import parse_size  # perflab.ingest loads every format: only when reading files

    value = getattr(args, "max_decompressed", None)
    return parse_size(value) if value else None


def resolve(args: argparse.Namespace, store: Store, ref: str, kinds: tuple[str, ...] | None = None) -> int:
    """FILE_OR_SOURCE → source id; a file is ingested first (once), under the global cap."""
    path = Path(ref)
    if not path.exists():
        return store.find_source(ref, kinds)  # a source id: no reader of any format is needed
    if path.is_file():
        # A file already stored needs no reader either: importing them all (polars, pyarrow,
        # protobuf) would be most of a `perflab top` of a stored profile.
        stored = store.source_by_sha(file_sha256(path))
        if stored is not None and (kinds is None or stored["kind"] in kinds):
            return int(stored["source_id"])
    from perflab import ingest

    return ingest.resolve(store, ref, kinds, max_decompressed=max_decompressed(args))


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def print_json(obj: Any) -> None:
    json.dump(to_jsonable(obj), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def print_table(rows: list[dict[str, Any]] | pl.DataFrame, columns: list[str] | None = None,
                right: set[str] | None = None, max_width: int = 80, headers: dict[str, str] | None = None,
                fit: int | None = None, squeeze: tuple[str, ...] = ()) -> None:
    """A plain aligned table, like `go tool pprof -top`: numbers right, text left, each value
    as people read it in its column's unit (fmt.cell: ``3,209 ms``, ``34.9 %``). ``headers``
    renames columns on the header line; with ``fit`` text columns are shortened (ending in …)
    until every line is at most ``fit`` characters: first the values longer than most of
    their column's (a user's 90-character run id among lab ones), then the ``squeeze``
    columns (what a reader can do without: the rest is a command away), then the widest."""
    for line in table_lines(rows, columns, right, max_width, headers, fit, squeeze):
        print(line)


def table_lines(rows: list[dict[str, Any]] | pl.DataFrame, columns: list[str] | None = None,
                right: set[str] | None = None, max_width: int = 80, headers: dict[str, str] | None = None,
                fit: int | None = None, squeeze: tuple[str, ...] = ()) -> list[str]:
    """:func:`print_table`'s lines."""
    if not isinstance(rows, list):  # a polars DataFrame (not imported here: most verbs never make one)
        rows = rows.to_dicts()
    if not rows:
        return ["(no rows)"]
    cols = columns or list(rows[0].keys())
    names = [(headers or {}).get(c, c) for c in cols]
    cells = [[fmt.cell(r.get(c), c) for c in cols] for r in rows]
    if right is None:
        right = {c for c in cols if all(isinstance(r.get(c), (int, float)) or r.get(c) is None for r in rows)}
    limits = [max_width] * len(cols)
    widths = [min(lim, max(len(n), *(len(row[i]) for row in cells))) for i, (n, lim) in enumerate(zip(
        names, limits, strict=True))]
    text_cols = [i for i, c in enumerate(cols) if c not in right]
    # The order of shortening: (column, down to this width) stages, widest first within one.
    typical = {i: max(len(names[i]), statistics.median_low(len(row[i]) for row in cells)) for i in text_cols}
    stages = [{i: typical[i] for i in text_cols if cols[i] not in squeeze},
              {i: len(names[i]) for i in text_cols if cols[i] in squeeze},
              {i: len(names[i]) for i in text_cols}]
    for floor in stages:
        while fit is not None and sum(widths) + 2 * (len(cols) - 1) > fit:
            above = [i for i in floor if widths[i] > floor[i]]
            if not above:
                break  # nothing left to shorten at this stage
            widths[max(above, key=lambda i: widths[i])] -= 1

    def clip(v: str, w: int) -> str:
        return v if len(v) <= w else v[: w - 1] + "…"

    def line(values: list[str]) -> str:
        return "  ".join(
            clip(v, w).rjust(w) if c in right else clip(v, w).ljust(w)
            for v, w, c in zip(values, widths, cols, strict=True)
        ).rstrip()

    return [line(names)] + [line(row) for row in cells]
