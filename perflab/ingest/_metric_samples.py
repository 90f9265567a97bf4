"""What the metrics readers share: the one writer of ``metric_samples``, canonical labels,
times, and the cap on series per file.

Every metrics format (perflab.ingest.prometheus, prometheus_api, expvar, process_csv)
ends here, so a sample looks the same whichever file it came from:

* ``labels`` is canonical JSON: keys sorted, no spaces (``{"code":"200","le":"0.5"}``),
  ``{}`` when none, so (source_id, name, labels) is a series and labels compare as text;
* ``t`` is a TIMESTAMPTZ in microseconds (Prometheus's milliseconds are exact in it);
* a time in a file is RFC 3339 with a ``Z`` or ``±hh:mm`` offset, or unix seconds; a time
  without an offset is refused rather than read in some local zone;
* a file holds at most :func:`max_series` distinct series.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from perflab.errors import InputError, PerflabError
from perflab.ingest._registry import Context

# A service exposes hundreds to a few thousand series (client_golang's Go and process
# collectors are ~50, a busy HTTP service with routes × codes × buckets a few thousand).
# Tens of thousands in one file mean a label with unbounded values (a user id, a raw URL
# path, a trace id): storing it would add that many rows per scrape and make every query
# over the run slow, and it is almost always a mistake in the exporter. 50,000 leaves room
# for large real services; --max-series or PERFLAB_MAX_SERIES raise it for one that needs more.
DEFAULT_MAX_SERIES = 50_000
MAX_SERIES_ENV = "PERFLAB_MAX_SERIES"
_max_series_override: contextvars.ContextVar[int | None] = contextvars.ContextVar("max_series", default=None)

# RFC 3339: a date, a time, an optional fraction and an offset (never a bare local time;
# upper-case T and Z, as every tool writes them).
RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
_UNIX = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

ARROW_SCHEMA = pa.schema([
    ("t", pa.timestamp("us", tz="UTC")),
    ("name", pa.string()),
    ("family", pa.string()),
    ("type", pa.string()),
    ("labels", pa.string()),
    ("value", pa.float64()),
    ("exemplar", pa.string()),
])


def max_series() -> int:
    """The cap in force: --max-series (through :func:`override_max_series`), else
    $PERFLAB_MAX_SERIES, else DEFAULT_MAX_SERIES."""
    override = _max_series_override.get()
    if override is not None:
        return override
    env = os.environ.get(MAX_SERIES_ENV)
    if env:
        return parse_max_series(env)
    return DEFAULT_MAX_SERIES


def parse_max_series(text: str) -> int:
    try:
        n = int(text.replace("_", ""))
    except ValueError:
        n = 0
    if n <= 0:
        raise PerflabError(f"max series {text!r}: give a positive whole number")
    return n


@contextlib.contextmanager
def override_max_series(n: int | None) -> Iterator[None]:
    """Use ``n`` as the cap inside (None: no override)."""
    token = _max_series_override.set(n)
    try:
        yield
    finally:
        _max_series_override.reset(token)


def too_many_series(ctx: Context, n: int, what: str = "series") -> InputError:
    cap = max_series()
    return InputError(ctx.path, f"more than {cap} {what} in one file ({n} seen; a label with unbounded "
                                f"values?); raise the cap with --max-series or {MAX_SERIES_ENV}")


def canonical_labels(labels: dict[str, str]) -> str:
    """Labels as stored: JSON, keys sorted, no spaces."""
    return json.dumps(labels, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_time(text: str) -> int:
    """RFC 3339 (with its offset) or unix seconds → microseconds since the epoch.

    Fractions beyond microseconds are truncated, as DuckDB's TIMESTAMPTZ does. Raises
    ValueError for anything else (NaN and infinities included)."""
    s = text.strip()
    if _UNIX.fullmatch(s):
        try:
            return int((Decimal(s) * 1_000_000).to_integral_value(rounding=ROUND_DOWN))
        except InvalidOperation:  # pragma: no cover - the pattern admits only finite numbers
            raise ValueError(f"{text!r} is not a time") from None
    if RFC3339.fullmatch(s):
        head, _, frac_tail = s.partition(".")
        if frac_tail:
            digits = re.match(r"\d+", frac_tail)
            assert digits is not None
            s = f"{head}.{digits.group()[:6].ljust(6, '0')}{frac_tail[digits.end():]}"
        dt = datetime.fromisoformat(s)
        delta = dt - datetime.fromtimestamp(0, dt.tzinfo)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    raise ValueError(f"{text!r} is not RFC 3339 (with a Z or ±hh:mm offset) or unix seconds")


def time_sql(expr: str) -> str:
    """A DuckDB expression turning the VARCHAR ``expr`` into a TIMESTAMPTZ as
    :func:`parse_time` does, or NULL when it is no time."""
    return (
        f"(CASE WHEN regexp_full_match(trim({expr}), '{_UNIX.pattern}') "
        f"THEN timezone('UTC', make_timestamp(CAST(trunc(CAST(trim({expr}) AS DECIMAL(38, 9)) * 1000000) AS BIGINT))) "
        f"WHEN regexp_full_match(trim({expr}), '{RFC3339.pattern}') "
        f"THEN try_cast(trim({expr}) AS TIMESTAMPTZ) END)"
    )


def seconds_to_us(seconds: float) -> int:
    """A float of unix seconds (a parser's) → microseconds; ValueError when not finite."""
    if not math.isfinite(seconds):
        raise ValueError(f"{seconds} is not a time")
    return round(seconds * 1_000_000)


@dataclass
class Rows:
    """Samples collected column by column, written with one INSERT (:func:`write`)."""

    t: list[int | None] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    family: list[str] = field(default_factory=list)
    type: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    exemplar: list[str | None] = field(default_factory=list)

    def add(self, t: int | None, name: str, family: str, typ: str, labels: str, value: float,
            exemplar: str | None = None) -> None:
        self.t.append(t)
        self.name.append(name)
        self.family.append(family)
        self.type.append(typ)
        self.labels.append(labels)
        self.value.append(value)
        self.exemplar.append(exemplar)

    def __len__(self) -> int:
        return len(self.value)

    def table(self) -> pa.Table:
        return pa.table([self.t, self.name, self.family, self.type, self.labels, self.value, self.exemplar],
                        schema=ARROW_SCHEMA)


def write(ctx: Context, rows: Rows | pa.Table) -> int:
    """Insert the rows into metric_samples in one statement; return how many."""
    table = rows.table() if isinstance(rows, Rows) else rows
    if table.num_rows == 0:
        return 0
    view = f"_perflab_metrics_{ctx.source_id}"
    ctx.con.register(view, table)
    try:
        ctx.con.execute(
            "INSERT INTO metric_samples (source_id, run_id, t, name, family, type, labels, value, exemplar) "
            f"SELECT ?, ?, t, name, family, type, labels, value, exemplar FROM {view}",
            [ctx.source_id, ctx.run_id],
        )
    finally:
        ctx.con.unregister(view)
    return int(table.num_rows)


def summary(ctx: Context, **extra: Any) -> dict[str, Any]:
    """The counts an ingest reports (and keeps in sources.meta): samples, series, times."""
    n, series, first, last = ctx.con.execute(
        "SELECT count(*), count(DISTINCT (name, labels)), min(t), max(t) FROM metric_samples WHERE source_id = ?",
        [ctx.source_id],
    ).fetchall()[0]
    ctx.meta.update({"samples": int(n), "series": int(series), **extra})
    if first is not None:
        ctx.meta.update({"first": first.isoformat(), "last": last.isoformat()})
    return {"samples": int(n), "series": int(series)}
