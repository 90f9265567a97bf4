"""Prometheus HTTP API answers: ``/api/v1/query_range`` (a matrix) and ``/api/v1/query``
(a vector, a scalar, or a matrix when the query is a range selector such as ``x[5m]``,
which gives the raw samples with their own timestamps).

The JSON is read by DuckDB in bulk: each series' ``metric`` once (a few per file), its
points unnested in SQL, their ``[time, "value"]`` pairs kept as text until cast, so the
times (seconds with millisecond decimals) and values (Go's shortest float text, ``NaN``,
``+Inf``) are exact.

A series' name is its ``__name__`` label (removed from the labels). A series without one
(the result of an expression, e.g. ``rate(x[1m])``, or a scalar) is named by the query's
text when the file records it — files written by ``perflab ingest --prometheus`` do, under a
top-level ``perflab_query`` object (perflab.ingest.prometheus_pull) — else ``(expression)``.
The API carries no metric types: every sample is ``untyped`` and its family is its name.
Native-histogram points (``histogram``/``histograms``) are skipped and counted in the meta.

``{"status": "error"}`` is refused with Prometheus's own error text; so is a ``string``
result (no numbers), a value that is not a number, and more series than max_series().
"""

from __future__ import annotations

import json
import re
from typing import Any

import duckdb
import pyarrow as pa

from perflab.errors import InputError
from perflab.ingest._k6_common import drop_temp, sql_path, temp_name
from perflab.ingest._metric_samples import canonical_labels, max_series, summary, time_sql, too_many_series
from perflab.ingest._registry import Context, Format, Sniff, one_line, register
from perflab.vocab import PROMETHEUS_API

UNNAMED = "(expression)"  # the name of a name-less series when the file does not record its query
QUERY_KEY = "perflab_query"  # where a pulled file records what was asked: {query, url, start, end, step}
_STATUS = re.compile(rb'^\s*\{\s*"status"\s*:\s*"(?:success|error)"')


def _detect(sniff: Sniff) -> bool:
    head = sniff.head
    return bool(_STATUS.match(head)) and (b'"resultType"' in head or b'"errorType"' in head)


def _document(ctx: Context) -> str:
    path = ctx.plain_path()
    # One document, however large: DuckDB's default cap on one JSON object is 16 MB.
    return (f"read_json_objects({sql_path(path)}, format='unstructured', "
            f"maximum_object_size={path.stat().st_size + 1024})")


def _ingest(ctx: Context) -> dict[str, Any]:
    con = ctx.con
    doc = _document(ctx)
    try:
        heads = con.execute(
            f"SELECT json->>'$.status', json->>'$.errorType', json->>'$.error', json->>'$.data.resultType', "
            f"json->>'$.{QUERY_KEY}.query' FROM {doc}"
        ).fetchall()
    except duckdb.Error as exc:
        raise InputError(ctx.path, f"not valid JSON ({one_line(exc)})") from None
    if len(heads) != 1:
        raise InputError(ctx.path, f"{len(heads)} JSON documents; a Prometheus API answer is one")
    status, error_type, error, result_type, query = heads[0]
    if status == "error":
        raise InputError(ctx.path, f"Prometheus answered an error ({error_type or 'no type'}): {error or ''}")
    if status != "success":
        raise InputError(ctx.path, f"status {status!r}: not a Prometheus API answer")
    unnamed = query or UNNAMED
    if result_type not in ("matrix", "vector", "scalar"):
        raise InputError(ctx.path, f"result type {result_type!r}: perflab reads matrix, vector and scalar "
                                   "results (a string result has no samples)")
    points = temp_name(ctx, "promapi")
    try:
        native = _load_points(ctx, doc, points, result_type)
        meta = _series_meta(ctx, doc, result_type, unnamed)
        _insert(ctx, points, meta)
    finally:
        drop_temp(con, points)
    extra: dict[str, Any] = {"result_type": result_type}
    if query:
        extra["query"] = query
    if native:
        extra["skipped_native_histogram_points"] = native
    counts = summary(ctx, **extra)
    return {**counts, "result": result_type}


def _load_points(ctx: Context, doc: str, table: str, result_type: str) -> int:
    """Every (series index, time text, value text) into a temp table; return the native points skipped."""
    con = ctx.con
    if result_type == "scalar":
        select = (f"SELECT 1 AS i, p[1] AS ts, p[2] AS v FROM (SELECT from_json(json->'$.data.result', "
                  f"'[\"VARCHAR\"]') AS p FROM {doc})")
    else:
        series = (f"SELECT generate_subscripts(l, 1) AS i, unnest(l) AS r FROM "
                  f"(SELECT json_extract(json, '$.data.result[*]') AS l FROM {doc})")
        if result_type == "matrix":
            select = (f"SELECT i, p[1] AS ts, p[2] AS v FROM (SELECT i, unnest(from_json(r->'values', "
                      f"'[[\"VARCHAR\"]]')) AS p FROM ({series}))")
        else:
            select = (f"SELECT i, p[1] AS ts, p[2] AS v FROM (SELECT i, from_json(r->'value', '[\"VARCHAR\"]') AS p "
                      f"FROM ({series})) WHERE p IS NOT NULL")
    try:
        con.execute(f"CREATE TEMP TABLE {table} AS {select}")
        if result_type == "scalar":
            return 0
        native = con.execute(
            f"SELECT coalesce(sum(coalesce(json_array_length(r->'histograms'), 0) + "
            f"CASE WHEN (r->'histogram') IS NULL THEN 0 ELSE 1 END), 0) FROM ({series})"
        ).fetchall()[0][0]
    except duckdb.Error as exc:
        raise InputError(ctx.path, f"not a Prometheus {result_type} result ({one_line(exc)})") from None
    return int(native)


def _series_meta(ctx: Context, doc: str, result_type: str, unnamed: str) -> pa.Table:
    if result_type == "scalar":
        metrics = [(1, "{}")]
    else:
        metrics = ctx.con.execute(
            f"SELECT generate_subscripts(l, 1), CAST(unnest(l)->'metric' AS VARCHAR) FROM "
            f"(SELECT json_extract(json, '$.data.result[*]') AS l FROM {doc})"
        ).fetchall()
    if len(metrics) > max_series():
        raise too_many_series(ctx, len(metrics))
    idx, names, labels = [], [], []
    for i, text in metrics:
        metric = json.loads(text) if text else {}
        if not isinstance(metric, dict) or not all(isinstance(v, str) for v in metric.values()):
            raise InputError(ctx.path, f"result {i}: \"metric\" is not an object of label values")
        name = metric.pop("__name__", None) or unnamed
        idx.append(int(i))
        names.append(name)
        labels.append(canonical_labels(metric))
    return pa.table({"i": pa.array(idx, pa.int64()), "name": names, "labels": labels})


def _insert(ctx: Context, points: str, meta: pa.Table) -> None:
    con = ctx.con
    view = f"_perflab_promapi_meta_{ctx.source_id}"
    con.register(view, meta)
    try:
        bad = con.execute(
            f"SELECT m.name, m.labels, p.ts, p.v, {time_sql('p.ts')} IS NULL FROM {points} p JOIN {view} m USING (i) "
            f"WHERE {time_sql('p.ts')} IS NULL OR try_cast(p.v AS DOUBLE) IS NULL LIMIT 1"
        ).fetchall()
        if bad:
            name, labels, ts, v, bad_time = bad[0]
            what = f"time {ts!r} is not unix seconds" if bad_time else f"value {v!r} is not a number"
            raise InputError(ctx.path, f"{name}{labels if labels != '{}' else ''}: {what}")
        con.execute(
            "INSERT INTO metric_samples (source_id, run_id, t, name, family, type, labels, value, exemplar) "
            f"SELECT ?, ?, {time_sql('p.ts')}, m.name, m.name, 'untyped', m.labels, CAST(p.v AS DOUBLE), NULL "
            f"FROM {points} p JOIN {view} m USING (i)",
            [ctx.source_id, ctx.run_id],
        )
    finally:
        con.unregister(view)


register(Format(
    kind=PROMETHEUS_API,
    description="Prometheus HTTP API JSON: /api/v1/query_range matrix, /api/v1/query vector or scalar",
    detect=_detect,
    ingest=_ingest,
    priority=30,
))
