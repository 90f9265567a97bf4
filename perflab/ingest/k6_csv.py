"""k6 ``--out csv``: the same samples as the NDJSON, one row each, in the same order.

Header: ``metric_name,timestamp,metric_value,<one column per indexable system tag>,
extra_tags,metadata``. What the CSV loses, and how it is stored:

* ``metric_value`` is Go ``%f``: 6 decimals, rounded. Built-in metrics (integer ns / 1e6,
  counts, bytes) survive exactly; custom metrics with more decimals do not.
* ``timestamp`` follows ``K6_CSV_TIME_FORMAT``: ``unix`` (whole seconds, the default),
  ``unix_milli|micro|nano`` or ``rfc3339[_nano]`` text. The unix forms carry no zone,
  so ``utc_offset_min`` is NULL for them.
* An empty tag cell cannot be told from an absent tag, so empty cells are dropped
  (the root group's ``group: ""`` included; checks treat a missing group as the root).
* ``extra_tags``/``metadata`` are ``k=v&k2=v2`` in random order and unescaped; they are
  split on ``&`` and the first ``=``.
* There are no Metric lines: types come from a companion file or the built-in table.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb

from perflab.errors import InputError
from perflab.ingest._k6_common import drop_temp, insertion_order, row_base, sql_path, temp_name
from perflab.ingest._registry import Context, Format, Sniff, register
from perflab.vocab import K6_CSV

HEADER_START = "metric_name,timestamp,metric_value"
HEADER_END = ("extra_tags", "metadata")
_TAG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Digits of an integer timestamp → ns per unit. Seconds have 10 digits until 2286.
_UNIX_UNITS = ((11, 1_000_000_000), (14, 1_000_000), (17, 1_000), (20, 1))


def detect_csv(sniff: Sniff) -> bool:
    return sniff.head.startswith(HEADER_START.encode())


def _header(ctx: Context, path: Path) -> list[str]:
    with open(path, "rb") as fh:
        first = fh.readline(1 << 16).decode("utf-8", errors="replace").rstrip("\r\n")
    cols = first.split(",")
    tags = cols[3:-2]
    if (first.startswith(HEADER_START) and tuple(cols[-2:]) == HEADER_END and len(cols) >= 5
            and all(_TAG_NAME.match(t) for t in tags) and len(set(cols)) == len(cols)):
        return cols
    raise InputError(
        ctx.path,
        f"not a k6 CSV header (expected {HEADER_START},<tag columns>,extra_tags,metadata; "
        f"got {first[:120]!r})",
    )


def _pairs(column: str) -> str:
    """`k=v&k2=v2` → a list of {k, v} structs (SQL)."""
    return (f"list_filter(list_transform(string_split({column}, '&'), lambda x: struct_pack("
            f"k := CASE WHEN strpos(x, '=') > 0 THEN substr(x, 1, strpos(x, '=') - 1) ELSE x END, "
            f"v := CASE WHEN strpos(x, '=') > 0 THEN substr(x, strpos(x, '=') + 1) ELSE '' END)), "
            f"lambda e: e.k <> '')")


def _object(entries: str) -> str:
    return f"to_json(map_from_entries(list_sort({entries})))"


def ingest_csv(ctx: Context) -> dict[str, Any]:
    path = ctx.plain_path()
    cols = _header(ctx, path)
    con = ctx.con
    raw = temp_name(ctx, "k6csv")
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in cols) + "}"
    with insertion_order(con):
        try:
            con.execute(
                f"CREATE TEMP TABLE {raw} AS SELECT * FROM read_csv({sql_path(path)}, header = true, "
                f"auto_detect = false, delim = ',', quote = '\"', escape = '\"', columns = {columns}, "
                "null_padding = false, strict_mode = true)"
            )
        except duckdb.Error as exc:
            raise _csv_error(ctx, exc) from None
    try:
        base = row_base(con, raw)
        first = con.execute(f"SELECT timestamp FROM {raw} WHERE rowid = ?", [base]).fetchall()
        if not first:
            raise InputError(ctx.path, "k6 CSV with a header and no rows")
        time_sql, time_format = _time_sql(ctx, first[0][0])
        # value is NOT NULL in k6_points, so a bad one is found before the insert would fail unnamed.
        bad_value = con.execute(
            f"SELECT min(rowid) FROM {raw} WHERE coalesce(metric_name, '') = '' "
            "OR try_cast(metric_value AS DOUBLE) IS NULL"
        ).fetchall()[0][0]
        if bad_value is not None:
            _bad_row(ctx, con, raw, base, bad_value - base + 2)
        column_tags = ", ".join(f"struct_pack(k := '{t}', v := \"{t}\")" for t in cols[3:-2])
        tags = _object(f"list_filter([{column_tags}], lambda e: e.v IS NOT NULL AND e.v <> '') "
                       f"|| {_pairs('extra_tags')}")
        metadata = f"CASE WHEN coalesce(metadata, '') = '' THEN NULL ELSE {_object(_pairs('metadata'))} END"
        n = int(con.execute(
            f"""INSERT INTO k6_points
                SELECT ?, ?, line, metric_name, ts, ns, off, value, tags, metadata
                FROM (SELECT rowid - {base} + 2 AS line, metric_name, {time_sql},
                             try_cast(metric_value AS DOUBLE) AS value,
                             {tags} AS tags, {metadata} AS metadata
                      FROM {raw})""",
            [ctx.source_id, ctx.run_id],
        ).fetchall()[0][0])
        bad = con.execute(
            "SELECT min(seq) FROM k6_points WHERE source_id = ? AND (time IS NULL OR time_ns IS NULL)",
            [ctx.source_id],
        ).fetchall()[0][0]
        if bad is not None:
            _bad_row(ctx, con, raw, base, bad)
    finally:
        drop_temp(con, raw)
    ctx.meta.update({"format": "csv", "points": n, "time_format": time_format,
                     "tag_columns": cols[3:-2]})
    return {"points": n}


def _bad_row(ctx: Context, con: duckdb.DuckDBPyConnection, raw: str, base: int, line: int) -> None:
    row = con.execute(f"SELECT metric_name, timestamp, metric_value FROM {raw} WHERE rowid = ?",
                      [base + line - 2]).fetchall()[0]
    raise InputError(ctx.path, f"line {line}: not a k6 sample (metric_name, timestamp, metric_value = "
                               f"{', '.join(repr(str(v)[:40]) for v in row)})")


def _time_sql(ctx: Context, sample: str | None) -> tuple[str, str]:
    """SQL for `ts, ns, off` from the `timestamp` column, and the K6_CSV_TIME_FORMAT seen."""
    text = (sample or "").strip()
    if "T" in text:
        return ("try_cast(timestamp AS TIMESTAMPTZ) AS ts, "
                "epoch_ns(try_cast(timestamp AS TIMESTAMP_NS)) - "
                "(epoch_ns(try_cast(timestamp AS TIMESTAMP_NS)) // 1000 - epoch_us(ts)) * 1000 AS ns, "
                "CAST((epoch_ns(try_cast(timestamp AS TIMESTAMP_NS)) // 1000 - epoch_us(ts)) // 60000000 "
                "AS SMALLINT) AS off"), "rfc3339"
    if text.isdigit():
        for digits, unit in _UNIX_UNITS:
            if len(text) <= digits:
                name = {1_000_000_000: "unix", 1_000_000: "unix_milli", 1_000: "unix_micro", 1: "unix_nano"}[unit]
                ns = f"try_cast(timestamp AS BIGINT) * {unit}"
                return (f"timezone('UTC', make_timestamp({ns} // 1000)) AS ts, {ns} AS ns, "
                        "CAST(NULL AS SMALLINT) AS off"), name
    raise InputError(ctx.path, f"line 2: timestamp {text[:40]!r} is neither unix time nor RFC 3339")


def _csv_error(ctx: Context, exc: duckdb.Error) -> InputError:
    text = str(exc).strip()
    m = re.search(r"\bLine: (\d+)|\bline (\d+)", text)
    where = f"line {m.group(1) or m.group(2)}: " if m else ""
    cells = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    if cells:
        reason = f"{cells.group(2)} cells where the header has {cells.group(1)}"
    else:
        reason = text.splitlines()[0].split("Error: ", 1)[-1][:200]
    return InputError(ctx.path, f"{where}not a valid k6 CSV row ({reason})")


register(Format(
    kind=K6_CSV,
    description="k6 --out csv (plain or gzip): every metric sample, values rounded to 6 decimals",
    detect=detect_csv,
    ingest=ingest_csv,
    priority=20,
))
