"""What the k6 readers share: DuckDB temp tables whose rowids give each line its number.

k6's ``avg`` is a float64 sum in arrival order, so every point keeps its line number.
Both the NDJSON reader (perflab.ingest.k6) and the CSV reader (perflab.ingest.k6_csv)
load the file into a temporary table under ``preserve_insertion_order``; its rowids are
then dense and in line order from a base DuckDB picks, so ``line = rowid - base + 1``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb

from perflab.ingest._registry import Context


def sql_path(path: Path) -> str:
    """A path as a SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


@contextlib.contextmanager
def insertion_order(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Make sure scans keep file order while inside (rowid order = line order)."""
    on = bool(con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0])
    if not on:
        con.execute("SET preserve_insertion_order = true")
    try:
        yield
    finally:
        if not on:
            with contextlib.suppress(duckdb.Error):
                con.execute("SET preserve_insertion_order = false")


def temp_name(ctx: Context, what: str) -> str:
    return f"perflab_{what}_{ctx.source_id}"


def row_base(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """rowid of the first row of a temp table: rowid - base + 1 is the row's line number."""
    base, last, n = con.execute(f"SELECT min(rowid), max(rowid), count(*) FROM {table}").fetchall()[0]
    if n and last - base + 1 != n:  # never seen; it would mean DuckDB changed how it numbers rows
        raise RuntimeError(f"rowids of {table} are not dense ({base}..{last} for {n} rows)")
    return int(base) if base is not None else 0


def drop_temp(con: duckdb.DuckDBPyConnection, name: str) -> None:
    # After a failed statement the transaction is aborted and the rollback drops it anyway.
    with contextlib.suppress(duckdb.Error):
        con.execute(f"DROP TABLE IF EXISTS {name}")
