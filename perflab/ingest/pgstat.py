"""PostgreSQL statistics: pg_stat_statements & co. as CSV/JSONL snapshots, or read live.

A file holds one view. Which view is decided by its column set, never by its name
or column order, and the column sets of PostgreSQL 12 to 18 map onto one schema per
view (schema.PG_DDL): renamed columns get their newest name (``total_time`` →
``total_exec_time`` in 13, ``blk_read_time`` → ``shared_blk_read_time`` in 17),
columns a version lacks are NULL.

Two encodings, as PostgreSQL writes them (see tests/fixtures/pg/FORMAT.md):

- CSV from ``COPY … (FORMAT csv, HEADER)``: NULL is an empty unquoted field, ``""``
  an empty string, booleans ``t``/``f``, records span lines inside quotes, and one
  ``query`` field can be hundreds of kB.
- JSON lines from ``row_to_json``: oid and xid columns are JSON strings, ``queryid``
  is a 64-bit integer that a float would corrupt.

Both are read in bulk by DuckDB with an explicit type per column, so ``queryid`` is
parsed straight into BIGINT and never passes through a double.

Live snapshots (:func:`ingest_live`) query the same views with ``row_to_json``, write
each view to a canonical JSON-lines file and ingest that file through the same reader,
so a live snapshot and a file snapshot cannot differ in how they are read.
"""

from __future__ import annotations

import csv
import gzip
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from perflab.errors import InputError
from perflab.ingest._io import HEAD_BYTES
from perflab.ingest._registry import Context, Format, Sniff, register
from perflab.ingest.pgstat_views import ACTIVITY, SNAPSHOT_COLUMN, VIEWS, View, identify, pg_columns_version
from perflab.vocab import PGSTAT

KIND = PGSTAT

# PostgreSQL's own limit on one text value is 1 GB, so no legal snapshot line is longer.
MAX_LINE_BYTES = 1 << 30


def _line_cap(path: Path) -> int:
    """The longest line DuckDB must allow for this file: no line is longer than the file.
    DuckDB sizes its read buffer from the cap (twice it), which an ingest's memory limit
    counts: 1 GB for every file failed at 512 MB."""
    return min(MAX_LINE_BYTES, max(path.stat().st_size + 1024, 16 << 20))
# Detection reads at most this much of the first JSON line (the 64 kB sniff head can
# end inside a long query text); a first record above this is not a snapshot we sniff.
MAX_SNIFF_LINE = 64 << 20

# -- detection ---------------------------------------------------------------------------

def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


def _csv_header(line: str) -> list[str]:
    return next(csv.reader([_strip_bom(line).rstrip("\r\n")]), [])


def _json_keys(line: str) -> list[str] | None:
    try:
        obj = json.loads(_strip_bom(line))
    except ValueError:
        return None
    return list(obj) if isinstance(obj, dict) else None


def _first_line(path: Path, gzipped: bool) -> str:
    with gzip.open(path, "rb") if gzipped else open(path, "rb") as fh:
        return fh.readline(MAX_SNIFF_LINE).decode("utf-8", errors="replace")


def _columns_from_head(sniff: Sniff) -> tuple[str, list[str]] | None:
    text = _strip_bom(sniff.text_head).lstrip(" \t\r\n")
    if not text:
        return None
    if text.startswith("{"):
        line = text.split("\n", 1)[0]
        if "\n" not in text and len(sniff.head) >= HEAD_BYTES:
            # The head ends inside the first record (a long query text): read the whole line.
            line = _first_line(sniff.path, sniff.gzipped)
        keys = _json_keys(line)
        return ("jsonl", keys) if keys else None
    if "\n" not in text:
        return None
    return "csv", _csv_header(text.split("\n", 1)[0])


def _detect(sniff: Sniff) -> bool:
    found = _columns_from_head(sniff)
    return found is not None and identify(found[1]) is not None


# -- ingest ------------------------------------------------------------------------------

def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _struct(columns: dict[str, str]) -> str:
    return "{" + ", ".join(f"{_sql_str(k)}: {_sql_str(v)}" for k, v in columns.items()) + "}"


def _file_columns(path: Path) -> tuple[str, list[str]]:
    with open(path, "rb") as fh:
        line = fh.readline(MAX_SNIFF_LINE).decode("utf-8", errors="replace")
    stripped = _strip_bom(line).lstrip(" \t")
    if stripped.startswith("{"):
        keys = _json_keys(line)
        if keys is None:
            raise InputError(path, "line 1 is not a JSON object")
        return "jsonl", keys
    return "csv", _csv_header(line)


def _check_json_keys(ctx: Context, path: Path, keys: list[str]) -> None:
    """Every line must be an object with line 1's keys: a line of another view is an error,
    not a row of NULLs."""
    bad = ctx.con.execute(
        f"""
        SELECT n, json_type(json) = 'OBJECT' FROM (
            SELECT row_number() OVER () AS n, json
            FROM read_ndjson_objects({_sql_str(str(path))}, maximum_object_size={_line_cap(path)})
        )
        WHERE json_type(json) <> 'OBJECT' OR list_sort(json_keys(json)) <> ?::VARCHAR[]
        ORDER BY n LIMIT 1
        """,
        [sorted(keys)],
    ).fetchall()
    if bad:
        n, is_object = bad[0]
        what = "has other columns than record 1" if is_object else "is not a JSON object"
        raise InputError(ctx.path, f"record {n} {what}")


def ingest_snapshot(
    ctx: Context, view_name: str | None = None, snapshot_at: datetime | None = None
) -> dict[str, Any]:
    """Read one snapshot file into its view's table (the registry's ingest, and the live path's)."""
    path = ctx.plain_path()
    fmt, columns = _file_columns(path)
    match = identify(columns)
    if match is None:
        shown = ",".join(columns[:6]) + (",…" if len(columns) > 6 else "")
        raise InputError(ctx.path, f"columns ({shown}) are not those of a pg_stat view perflab reads "
                         f"({', '.join(VIEWS)})")
    view = match.view
    if view_name is not None and view.name != view_name:
        raise InputError(ctx.path, f"holds {view.name}, expected {view_name}")
    types = view.types
    # Every file column gets a type: its canonical one, or VARCHAR for a column we ignore.
    read_types = {c: types.get(match.source_to_canonical.get(c, ""),
                               "TIMESTAMPTZ" if c == SNAPSHOT_COLUMN else "VARCHAR")
                  for c in columns}
    src = _sql_str(str(path))
    if fmt == "csv":
        reader = (
            f"read_csv({src}, header=true, columns={_struct(read_types)}, auto_detect=false, "
            "delim=',', quote='\"', escape='\"', nullstr='', allow_quoted_nulls=false, "
            f"strict_mode=true, null_padding=false, max_line_size={_line_cap(path)})"
        )
    else:
        _check_json_keys(ctx, path, columns)
        reader = (
            f"read_json({src}, format='newline_delimited', records=true, "
            f"columns={_struct(read_types)}, maximum_object_size={_line_cap(path)})"
        )

    by_canonical = {k: c for c, k in match.source_to_canonical.items()}
    select = []
    for name, typ in view.columns:
        if name in by_canonical:
            select.append(f"{_ident(by_canonical[name])}::{typ} AS {_ident(name)}")
        elif view is ACTIVITY and name == "sample_no":
            select.append("1 AS sample_no")  # a plain pg_stat_activity export is one sample
        else:
            select.append(f"NULL::{typ} AS {_ident(name)}")
    params: list[Any] = [ctx.source_id, ctx.run_id]
    if SNAPSHOT_COLUMN in columns:
        snap = f"{_ident(SNAPSHOT_COLUMN)}::TIMESTAMPTZ"
    else:
        snap = "?::TIMESTAMPTZ"
        params.append(snapshot_at)
    if view is ACTIVITY and "sample_ts" in columns:
        # sample_ts is clock_timestamp() per row: a sample happened at its first row's time.
        sample_no = _ident(by_canonical["sample_no"]) if "sample_no" in by_canonical else "1"
        snap = f"coalesce(min(sample_ts) OVER (PARTITION BY {sample_no}), {snap})"
    count = ctx.con.execute(
        f"INSERT INTO {view.table} BY NAME "
        f"SELECT ?::BIGINT AS source_id, ?::VARCHAR AS run_id, {snap} AS snapshot_at, "
        f"{', '.join(select)} FROM {reader}",
        params,
    ).fetchall()[0][0]

    ctx.meta.update({"view": view.name, "pg_columns_version": pg_columns_version(view, columns),
                     "format": fmt})
    if match.ignored:
        ctx.meta["ignored_columns"] = list(match.ignored)
    return {f"{view.name} rows": int(count)}


register(
    Format(
        kind=KIND,
        description="PostgreSQL pg_stat_statements/_info, pg_stat_user_tables/_indexes, "
        "pg_stat_database and pg_stat_activity snapshots (CSV from COPY, JSON lines from row_to_json)",
        detect=_detect,
        ingest=ingest_snapshot,
        # The column set check is exact and cheap, so it may run before looser JSON/CSV sniffers.
        priority=40,
    )
)


__all__ = ["KIND", "VIEWS", "View", "identify", "ingest_snapshot", "pg_columns_version"]
