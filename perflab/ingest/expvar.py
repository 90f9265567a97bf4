"""Go expvar JSON (``/debug/vars``): one object, or NDJSON of objects each with a time key.

* One object is what ``curl /debug/vars > vars.json`` saves (Go writes it over several
  lines): its samples have no time (t NULL) unless it has a time key.
* A series is one object per line, each with a time key: ``time``, ``timestamp`` or ``ts``
  (looked for in that order), RFC 3339 with its offset or unix seconds, e.g. written by
  ``while sleep 1; do curl -s .../debug/vars | jq -c --arg t "$(date -Is)" '. + {time: $t}'; done``.
  The time key is not a sample; every line of a series must have one.

Nested maps are flattened with dots (``errors.pool_timeout``, ``memstats.HeapInuse``);
``memstats`` is read like any map. Arrays are skipped, with everything inside them
(``cmdline``, ``memstats.PauseNs``, ``memstats.PauseEnd``, ``memstats.BySize``), and so are
strings and nulls; booleans are 1 or 0. Every sample is ``untyped``, its family is its name,
its labels ``{}``: expvar says nothing about counters and gauges (roles say what a name is).

Detected by content: a JSON object with Go's standard ``cmdline`` or ``memstats`` var
(every program that imports expvar publishes both). The file is read by DuckDB
(``read_json_objects`` + ``json_tree``) in bulk. Refused: a line that is not JSON or not an
object (its line number), a line of a series without a time key, a time that is not one,
and more distinct names than max_series().
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb

from perflab.errors import InputError
from perflab.ingest._k6_common import drop_temp, insertion_order, row_base, sql_path, temp_name
from perflab.ingest._metric_samples import max_series, summary, time_sql, too_many_series
from perflab.ingest._registry import Context, Format, Sniff, one_line, register
from perflab.vocab import EXPVAR

TIME_KEYS = ("time", "timestamp", "ts")
_GO_VARS = re.compile(rb'(?m)^\s*\{?\s*"(?:cmdline|memstats)"\s*:')
_NUMERIC = ("UBIGINT", "BIGINT", "HUGEINT", "UHUGEINT", "DOUBLE", "BOOLEAN")


def _first_line(head: bytes) -> bytes:
    return head.lstrip().split(b"\n", 1)[0].strip()


def _detect(sniff: Sniff) -> bool:
    head = sniff.head.lstrip()
    if not head.startswith(b"{") or head.startswith(b'{"perflab"'):
        return False
    try:
        first = json.loads(_first_line(head))
    except ValueError:
        return bool(_GO_VARS.search(head[:4096]))  # one object over several lines, as Go writes it
    return isinstance(first, dict) and ("cmdline" in first or "memstats" in first)


def _nth_line(path: Path, n: int) -> tuple[int, bytes]:
    """The n-th non-blank line (1-based) and its line number in the file."""
    seen = 0
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                seen += 1
                if seen == n:
                    return number, line
    return 0, b""


def _bad_json_line(path: Path) -> tuple[int, str] | None:
    """The first line of an NDJSON file that is not a JSON value (only on the error path)."""
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                json.loads(line)
            except ValueError as exc:
                return number, one_line(exc)
    return None


def _load(ctx: Context, table: str) -> bool:
    """The objects into a temp table in file order; return whether the file is NDJSON."""
    path = ctx.plain_path()
    with open(path, "rb") as fh:
        first = fh.readline()
        while first and not first.strip():
            first = fh.readline()
    try:
        json.loads(first)
        ndjson = True
    except ValueError:
        ndjson = False  # one document over several lines
    fmt = "newline_delimited" if ndjson else "unstructured"
    try:
        with insertion_order(ctx.con):
            ctx.con.execute(
                f"CREATE TEMP TABLE {table} AS SELECT json FROM read_json_objects({sql_path(path)}, format='{fmt}', "
                f"maximum_object_size={max(path.stat().st_size + 1024, 16 << 20)})"
            )
    except duckdb.Error as exc:
        if ndjson:
            found = _bad_json_line(path)
            if found is not None:
                raise InputError(ctx.path, f"line {found[0]}: not valid JSON ({found[1]})") from None
        else:
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except ValueError as err:
                raise InputError(ctx.path, f"not valid JSON ({one_line(err)})") from None
        raise InputError(ctx.path, f"not valid expvar JSON ({one_line(exc)})") from None
    return ndjson


def _ingest(ctx: Context) -> dict[str, Any]:
    con = ctx.con
    raw = temp_name(ctx, "expvar")
    objs = temp_name(ctx, "expvar_objs")
    try:
        ndjson = _load(ctx, raw)
        base = row_base(con, raw)
        tkey = " ".join(f"WHEN json_exists(json, '$.{k}') THEN '{k}'" for k in TIME_KEYS)
        con.execute(
            f"CREATE TEMP TABLE {objs} AS SELECT rowid - {base} + 1 AS n, json, json_type(json) AS jtype, "
            f"CASE {tkey} END AS tkey FROM {raw}"
        )
        _check_objects(ctx, objs, ndjson)
        names = _flatten_sql(objs)
        n_names = con.execute(f"SELECT count(DISTINCT name) FROM ({names})").fetchall()[0][0]
        if n_names > max_series():
            raise too_many_series(ctx, int(n_names), "names")
        con.execute(
            "INSERT INTO metric_samples (source_id, run_id, t, name, family, type, labels, value, exemplar) "
            f"SELECT ?, ?, t, name, name, 'untyped', '{{}}', value, NULL FROM ({names})",
            [ctx.source_id, ctx.run_id],
        )
        objects = con.execute(f"SELECT count(*) FROM {objs}").fetchall()[0][0]
    finally:
        drop_temp(con, objs)
        drop_temp(con, raw)
    counts = summary(ctx, objects=int(objects), layout="ndjson" if ndjson else "object")
    return {**counts, "objects": int(objects)}


def _check_objects(ctx: Context, objs: str, ndjson: bool) -> None:
    con = ctx.con
    n_objects = con.execute(f"SELECT count(*) FROM {objs}").fetchall()[0][0]
    if n_objects == 0:
        raise InputError(ctx.path, "no JSON object")
    bad = con.execute(
        f"SELECT n, jtype, tkey, json->>tkey FROM {objs} "
        f"WHERE jtype <> 'OBJECT' OR (tkey IS NULL AND ?) OR (tkey IS NOT NULL AND {time_sql('json->>tkey')} IS NULL) "
        "ORDER BY n LIMIT 1",
        [n_objects > 1],
    ).fetchall()
    if not bad:
        return
    n, jtype, key, text = bad[0]
    line = _nth_line(ctx.plain_path(), int(n))[0] if ndjson else 1
    if jtype != "OBJECT":
        raise InputError(ctx.path, f"line {line}: not a JSON object (a JSON {str(jtype).lower()})")
    if key is None:
        raise InputError(ctx.path, f"line {line}: no time key ({', '.join(TIME_KEYS)}); every object of a "
                                   "series needs its time")
    raise InputError(ctx.path, f"line {line}: {key} {str(text)[:60]!r} is not RFC 3339 (with its offset) "
                               "or unix seconds")


def _flatten_sql(objs: str) -> str:
    """(t, name, value) of every numeric leaf outside arrays, the time key excepted."""
    # json_tree's fullkey is $.a.b with "quoted" segments for odd keys and [i] inside arrays.
    dotted = r"""regexp_replace(regexp_replace(regexp_replace(t.fullkey[3:], '\."((?:[^"\\]|\\.)*)"', '.\1', 'g'),
                 '^"((?:[^"\\]|\\.)*)"', '\1'), '\\(.)', '\1', 'g')"""
    return (
        f"SELECT {time_sql('o.json->>o.tkey')} AS t, {dotted} AS name, "
        "CASE t.type WHEN 'BOOLEAN' THEN CAST(t.atom = 'true' AS DOUBLE) ELSE CAST(t.atom AS DOUBLE) END AS value "
        f"FROM {objs} o, json_tree(o.json) t "
        f"WHERE t.type IN {_NUMERIC} AND NOT regexp_matches(t.fullkey, '\\[[0-9]+\\]') "
        "AND (o.tkey IS NULL OR t.fullkey <> ('$.' || o.tkey))"
    )


register(Format(
    kind=EXPVAR,
    description="Go expvar JSON (/debug/vars): one object, or NDJSON of objects with a time key",
    detect=_detect,
    ingest=_ingest,
    priority=40,
))
