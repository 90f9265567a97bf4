"""k6 outputs: ``--out json`` NDJSON (kind ``k6``), ``--out csv`` (``k6-csv``) and the two
summary files, ``--summary-export`` and ``handleSummary()`` JSON (``k6-summary``).

This module reads the NDJSON; the CSV and the summaries are read (and registered) by
:mod:`perflab.ingest.k6_csv` and :mod:`perflab.ingest.k6_summary`.

The NDJSON is read by DuckDB's ``read_json`` in one bulk pass. Tags stay JSON (a
``MAP`` column parses 5× slower). Two facts decide the shape of the load:

* k6's ``avg`` is a float64 sum in arrival order, so each point keeps ``seq``, its
  line number. ``WITH ORDINALITY`` would give it but forces the scan onto one thread
  (2× slower here), so the lines go to a temporary table instead: under
  ``preserve_insertion_order`` (the default, ensured below) its rowids are dense and
  in line order, starting at a base that DuckDB picks (2**55 inside a transaction), so
  ``seq = rowid - min(rowid) + 1``. tests/unit/test_k6_ingest.py checks this on a file
  large enough to be read by several threads.
* ``time`` is RFC 3339 with up to 9 fraction digits and the k6 process's UTC offset.
  DuckDB's TIMESTAMPTZ keeps the instant but truncates to µs; TIMESTAMP_NS keeps the
  nanoseconds but reads the wall clock and drops the offset. Parsing the text both ways
  gives all three: the wall-clock minus the instant is the offset, and the nanoseconds
  of the wall clock minus the offset are the exact instant.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb

from perflab.errors import InputError
from perflab.ingest._k6_common import drop_temp, insertion_order, row_base, sql_path, temp_name
from perflab.ingest._registry import Context, Format, Sniff, register
from perflab.vocab import (
    K6,
    K6_METRIC_TYPES,
)

# The exact first bytes k6 writes: `{"type":"Metric",...` or `{"metric":"x","type":"Point",...`.
_FIRST_LINE = re.compile(rb'^\{"type":"Metric"|^\{"metric":"(?:[^"\\]|\\.)*","type":"Point"')
_DATA_STRUCT = (
    "STRUCT(time VARCHAR, value DOUBLE, tags JSON, metadata JSON, "
    "name VARCHAR, type VARCHAR, contains VARCHAR, thresholds JSON, submetrics JSON)"
)
_DUCKDB_LINE = re.compile(r"\bline (\d+)")


def _detect_ndjson(sniff: Sniff) -> bool:
    first = sniff.head.split(b"\n", 1)[0].strip()
    if _FIRST_LINE.match(first):
        return True
    # Leniently: any first line that is a k6 line, e.g. written by another JSON encoder.
    try:
        obj = json.loads(first)
    except ValueError:
        return False
    return (isinstance(obj, dict) and obj.get("type") in ("Metric", "Point")
            and isinstance(obj.get("data"), dict) and "metric" in obj)


def _bad_line(path: Path, hint: int) -> tuple[int, str] | None:
    """(line, problem) of the first line near DuckDB's reported one that is not a JSON object.

    DuckDB reports a malformed line as the one after it, so both are looked at. Only
    on the error path, so reading up to there line by line costs nothing in the normal case."""
    wanted = {max(1, hint - 1), hint}
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            if n in wanted:
                try:
                    doc = json.loads(line.rstrip(b"\r\n"))
                except ValueError as exc:
                    return n, f"not valid JSON ({exc})"
                if not isinstance(doc, dict):
                    what = "array" if isinstance(doc, list) else "string" if isinstance(doc, str) else "scalar"
                    return n, f"not a k6 line (a JSON {what}, not an object)"
            if n >= hint:
                return None
    return None


def _read_error(ctx: Context, path: Path, exc: duckdb.Error) -> InputError:
    text = str(exc).strip()
    m = _DUCKDB_LINE.search(text)
    if m:
        hint = int(m.group(1))
        found = _bad_line(path, hint)
        if found is not None:
            return InputError(ctx.path, f"line {found[0]}: {found[1]}")
        # A transform error (valid JSON, wrong shape): DuckDB's line number is exact.
        reason = text.split(":", 2)[-1].splitlines()[0].strip() if "transform" in text else "malformed JSON"
        return InputError(ctx.path, f"line {hint}: not a k6 line ({reason[:200]})")
    return InputError(ctx.path, f"not a valid k6 NDJSON file: {text.splitlines()[0][:300]}")


def _ingest_ndjson(ctx: Context) -> dict[str, Any]:
    path = ctx.plain_path()
    con = ctx.con
    raw = temp_name(ctx, "k6raw")
    with insertion_order(con):
        try:
            con.execute(
                f"CREATE TEMP TABLE {raw} AS SELECT metric, type, data FROM read_json({sql_path(path)}, "
                f"format='newline_delimited', columns={{'metric': 'VARCHAR', 'type': 'VARCHAR', "
                f"'data': '{_DATA_STRUCT}'}})"
            )
        except duckdb.Error as exc:
            raise _read_error(ctx, path, exc) from None
    try:
        base = row_base(con, raw)
        bad = con.execute(
            f"""SELECT rowid - {base} + 1, type, metric FROM {raw}
                WHERE NOT coalesce((type = 'Point' AND metric IS NOT NULL AND data.time IS NOT NULL
                                    AND data.value IS NOT NULL)
                                OR (type = 'Metric' AND data.name IS NOT NULL
                                    AND data.type IN {K6_METRIC_TYPES}), false)
                ORDER BY rowid LIMIT 1"""
        ).fetchall()
        if bad:
            line, typ, metric = bad[0]
            if typ not in ("Point", "Metric") or metric is None:
                raise InputError(ctx.path, f"line {line}: not a k6 line (needs \"metric\" and \"type\" "
                                           "Metric or Point)")
            raise InputError(ctx.path, f"line {line}: k6 {typ} line without its "
                                       f"{'time/value' if typ == 'Point' else 'name/type'}")
        n_points = _insert_points(con, raw, base, ctx)
        # try_cast in the bulk insert, then one look at the new rows: a failing cast would
        # abort the transaction without saying which line.
        bad = con.execute(
            "SELECT min(seq) FROM k6_points WHERE source_id = ? AND (time IS NULL OR time_ns IS NULL)",
            [ctx.source_id],
        ).fetchall()
        if bad and bad[0][0] is not None:
            line = bad[0][0]
            text = con.execute(f"SELECT data.time FROM {raw} WHERE rowid = ?",
                               [base + line - 1]).fetchall()[0][0]
            raise InputError(ctx.path, f"line {line}: time {text[:60]!r} is not an RFC 3339 time")
        n_metrics = con.execute(
            f"""INSERT INTO k6_metrics
                SELECT ?, ?, rowid - {base} + 1, data.name, data.type, data.contains, data.thresholds, data.submetrics
                FROM {raw} WHERE type = 'Metric'""",
            [ctx.source_id, ctx.run_id],
        ).fetchall()[0][0]
    finally:
        drop_temp(con, raw)
    ctx.meta.update({"format": "ndjson", "points": n_points, "metric_lines": n_metrics})
    return {"points": n_points, "metrics": n_metrics}


def _insert_points(con: duckdb.DuckDBPyConnection, raw: str, base: int, ctx: Context) -> int:
    return int(con.execute(
        f"""INSERT INTO k6_points
            SELECT ?, ?, line, metric, ts,
                   ns - (ns // 1000 - epoch_us(ts)) * 1000,
                   CAST((ns // 1000 - epoch_us(ts)) // 60000000 AS SMALLINT),
                   value, tags, metadata
            FROM (SELECT rowid - {base} + 1 AS line, metric,
                         try_cast(data.time AS TIMESTAMPTZ) AS ts,
                         epoch_ns(try_cast(data.time AS TIMESTAMP_NS)) AS ns,
                         data.value AS value, data.tags AS tags, data.metadata AS metadata
                  FROM {raw} WHERE type = 'Point')""",
        [ctx.source_id, ctx.run_id],
    ).fetchall()[0][0])


register(Format(
    kind=K6,
    description="k6 --out json NDJSON (plain or gzip): every metric sample with its tags",
    detect=_detect_ndjson,
    ingest=_ingest_ndjson,
    priority=20,
))
