"""bench-writes results: one JSON document written by `perflab bench-writes`.

Detected by content: a JSON object whose ``"perflab"`` key says ``"bench-writes"``
(the lab writes it first, so it is in the head). Two fact tables, one row per method
and one per flush interval; host, versions and settings go to ``sources.meta``.

The document is small (a dozen rows), so it is validated in Python, field by field,
and a bad one is refused with one line naming what is wrong; nothing is written.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from perflab.errors import InputError
from perflab.ingest._registry import Context, Format, Sniff, register
from perflab.vocab import BENCH_WRITES

KIND = BENCH_WRITES
VERSION = 1
_TAG = re.compile(rb'"perflab"\s*:\s*"bench-writes"')

# (key, type check, required). Numbers may be int or float in JSON; bools are not numbers.
METHOD_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("method", "str", True),
    ("rows", "int", True),
    ("seconds", "num", True),
    ("rows_per_s", "num", True),
    ("x_single", "num", False),
    ("reps_seconds", "nums", False),
    ("description", "str", False),
)
INTERVAL_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("interval_s", "num", True),
    ("e2e_latency_p95_ms", "num", True),
    ("db_writes_per_s", "num", True),
    ("records_per_s", "num", True),
    ("duration_s", "num", False),
    ("record_rate", "num", False),
    ("records_written", "int", False),
    ("flushes", "int", False),
    ("write_transactions", "int", False),
    ("records_per_flush", "num", False),
    ("e2e_latency_p50_ms", "num", False),
    ("e2e_latency_max_ms", "num", False),
    ("post_p95_ms", "num", False),
    ("post_p50_ms", "num", False),
    ("k6_requests", "int", False),
    ("k6_failed_rate", "num", False),
    ("k6_dropped_iterations", "int", False),
)


_WHAT = {"str": "a string", "int": "an integer", "num": "a finite number", "nums": "a list of finite numbers"}


def detect(sniff: Sniff) -> bool:
    return sniff.head.lstrip().startswith(b"{") and _TAG.search(sniff.head) is not None


def _ok(value: Any, kind: str) -> bool:
    def num(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "num":
        return num(value)
    if kind == "nums":
        return isinstance(value, list) and all(num(v) for v in value)
    raise AssertionError(kind)


def _rows(ctx: Context, doc: dict[str, Any], key: str, fields: tuple[tuple[str, str, bool], ...],
          allow_empty: bool) -> list[list[Any]]:
    items = doc.get(key)
    if not isinstance(items, list):
        raise InputError(ctx.path, f"{KIND} file has no {key!r} list")
    if not items and not allow_empty:
        raise InputError(ctx.path, f"{KIND} file: {key!r} is empty")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InputError(ctx.path, f"{KIND} file: {key}[{i}] is not an object")
        row = []
        for name, kind, required in fields:
            value = item.get(name)
            if value is None:
                if required:
                    raise InputError(ctx.path, f"{KIND} file: {key}[{i}] has no {name!r}")
            elif not _ok(value, kind):
                raise InputError(ctx.path, f"{KIND} file: {key}[{i}].{name} = {value!r:.60} is not {_WHAT[kind]}")
            row.append(value)
        out.append(row)
    return out


def ingest(ctx: Context) -> dict[str, Any]:
    doc = json.loads(ctx.read_bytes())
    if not isinstance(doc, dict) or doc.get("perflab") != KIND:
        raise InputError(ctx.path, f"not a {KIND} document (no \"perflab\": \"{KIND}\")")
    if doc.get("version") != VERSION:
        raise InputError(ctx.path, f"{KIND} file version {doc.get('version')!r}; this perflab reads {VERSION}")
    methods = _rows(ctx, doc, "methods", METHOD_FIELDS, allow_empty=False)
    intervals = _rows(ctx, doc, "flush_intervals", INTERVAL_FIELDS, allow_empty=True)
    names = [m[0] for m in methods]
    if len(set(names)) != len(names):
        raise InputError(ctx.path, f"{KIND} file: a method is listed twice ({', '.join(names)})")
    ctx.meta.update({k: doc[k] for k in ("bench_id", "started_at", "finished_at", "host", "versions", "settings")
                     if k in doc})
    head = [ctx.source_id, ctx.run_id]
    if methods:
        ctx.con.executemany(
            "INSERT INTO bench_write_methods (source_id, run_id, method, rows, seconds, rows_per_s, x_single, "
            "reps_seconds, description, reps) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [head + m + [len(m[5]) if m[5] is not None else None] for m in methods],
        )
    if intervals:
        cols = ", ".join(name for name, _, _ in INTERVAL_FIELDS)
        marks = ", ".join("?" for _ in range(len(INTERVAL_FIELDS) + 2))
        ctx.con.executemany(f"INSERT INTO bench_flush_intervals (source_id, run_id, {cols}) VALUES ({marks})",
                            [head + r for r in intervals])
    return {"methods": len(methods), "flush intervals": len(intervals)}


register(Format(kind=KIND, description="perflab bench-writes results (JSON)", detect=detect, ingest=ingest,
                priority=10))
