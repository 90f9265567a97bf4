"""A service's metrics from ``metric_samples``: series, counter increases and rates,
histogram and summary quantiles. Pure reads; every selection is one DuckDB query.

Where to look (``scope``): a run id (str), a source id (int) or several source ids. A
series is (source_id, name, labels): the same name and labels in two files are two series.

What to look at (``selector``): ``name`` or ``name{label="v",other!="x",re=~"a|b",nre!~"c"}``
with PromQL's four matchers (regexes fully anchored, RE2 in both; an absent label matches
as ""). ``name`` is a sample's name; when no sample has it, a family's value samples
(``family`` itself, or ``family_total`` for a counter), so ``process_cpu_seconds`` finds
``process_cpu_seconds_total``.

Two ways to read a counter (a drop means the counter restarted from 0, so the new value
is the increase since the restart, as in Prometheus):

* :func:`increase` / :func:`increase_by_step`, for the doctor: the plain increase between
  the first and last samples inside the window, ``last - first + the value before each
  reset``, nothing extrapolated; its ``rate`` divides by the seconds between those samples.
* :func:`prom_increase` / :func:`prom_rate` / :func:`prom_rate_range`: Prometheus 2.x's
  ``increase()``/``rate()`` exactly (2.40 and later: the same float operations in the same
  order, checked against a real 2.42 in tests/integration/test_prometheus_server.py): the samples
  in ``[at - range, at]`` (both ends included, as Prometheus 2.x selects them; Prometheus
  3 excludes the start: ``left_open=True``), fewer than two give nothing, the increase is
  extrapolated to the range's edges when the first/last sample is within 1.1 average
  intervals of them (else by half an interval), never to before the counter's zero.

:func:`histogram_quantile` follows Prometheus's rules (see its docstring);
:func:`bucket_quantiles` applies it to stored buckets (their latest values, or their plain
increases over a window), :func:`prom_histogram_quantile` to ``rate(x_bucket[range])`` as
``histogram_quantile(q, rate(x_bucket[range]))`` does. :func:`summary_quantiles` reads a
summary's ``quantile`` series.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from perflab.store import Store

Scope = str | int | Sequence[int]

# Prometheus (≥ 2.49) treats neighbouring bucket counts that differ by at most one part in
# 10^12 as equal before forcing monotonicity: float error from summing rates, not data.
# (2.42, the version the tests run, lacks this step; it changes nothing unless two
# neighbouring counts differ by less than that.)
SMALL_DELTA_TOLERANCE = 1e-12
# Prometheus extrapolates a rate to a range's edge when its first/last sample lies within
# this many average sample intervals of it.
EXTRAPOLATION_THRESHOLD = 1.1

_NAME = re.compile(r"\s*([A-Za-z_:][A-Za-z0-9_:.]*)\s*(?:\{(.*)\})?\s*", re.S)
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


# -- selectors ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # =, !=, =~, !~
    value: str


@dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[Matcher, ...] = ()

    def __str__(self) -> str:
        if not self.matchers:
            return self.name
        inner = ",".join(f"{m.label}{m.op}{json.dumps(m.value, ensure_ascii=False)}" for m in self.matchers)
        return f"{self.name}{{{inner}}}"


def parse_selector(text: str) -> Selector:
    """``name`` or ``name{label="value",...}`` → Selector; ValueError saying what is wrong."""
    m = _NAME.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not a metric name, optionally with {{label=\"value\",...}}")
    name, inner = m.group(1), m.group(2)
    matchers: list[Matcher] = []
    pos = 0
    inner = (inner or "").strip()
    while pos < len(inner):
        mm = _MATCHER.match(inner, pos)
        if not mm or mm.end() == pos:
            raise ValueError(f"{text!r}: cannot read the matcher at {inner[pos:pos + 30]!r} "
                             "(label=\"value\", !=, =~ or !~)")
        value = json.loads('"' + mm.group(3) + '"')
        if mm.group(2) in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"{text!r}: {value!r} is not a regular expression ({exc})") from None
        matchers.append(Matcher(mm.group(1), mm.group(2), value))
        pos = mm.end()
    return Selector(name, tuple(matchers))


def _selector(selector: str | Selector) -> Selector:
    return selector if isinstance(selector, Selector) else parse_selector(selector)


def matcher_sql(matchers: Sequence[Matcher]) -> tuple[list[str], list[Any]]:
    """SQL tests on metric_samples.labels for label matchers (a missing label is "", as in PromQL)."""
    tests: list[str] = []
    params: list[Any] = []
    for m in matchers:
        value = "coalesce(json_extract_string(labels, ?), '')"
        tests.append({"=": f"{value} = ?", "!=": f"{value} <> ?", "=~": f"regexp_full_match({value}, ?)",
                      "!~": f"NOT regexp_full_match({value}, ?)"}[m.op])
        params += [m.label, m.value]
    return tests, params


def _scope_sql(scope: Scope) -> tuple[str, list[Any]]:
    if isinstance(scope, str):
        return "run_id = ?", [scope]
    if isinstance(scope, int):
        return "source_id = ?", [scope]
    ids = [int(s) for s in scope]
    if not ids:
        return "false", []
    return f"source_id IN ({', '.join('?' for _ in ids)})", ids


def _where(store: Store, scope: Scope, sel: Selector, start: datetime | None = None,
           end: datetime | None = None, timed: bool = False) -> tuple[str, list[Any]]:
    """The WHERE clause selecting ``sel``'s samples in scope (and window)."""
    where, params = _scope_sql(scope)
    names = [r[0] for r in store.con.execute(
        f"SELECT DISTINCT name FROM metric_samples WHERE {where} AND "
        "(name = ? OR (family = ? AND name IN (?, ? || '_total')))",
        [*params, sel.name, sel.name, sel.name, sel.name],
    ).fetchall()]
    chosen = [sel.name] if sel.name in names else sorted(names)
    clauses = [where, f"name IN ({', '.join('?' for _ in chosen)})" if chosen else "false"]
    params = [*params, *chosen]
    tests, values = matcher_sql(sel.matchers)
    clauses += tests
    params += values
    if timed or start is not None or end is not None:
        clauses.append("t IS NOT NULL")
    if start is not None:
        clauses.append("t >= ?")
        params.append(start)
    if end is not None:
        clauses.append("t <= ?")
        params.append(end)
    return " AND ".join(clauses), params


# -- series -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Series:
    """One series' samples in time order (``times_us`` None for a sample without a time)."""

    source_id: int
    name: str
    family: str
    type: str
    labels: dict[str, str]
    times_us: tuple[int | None, ...] = field(repr=False)
    values: tuple[float, ...] = field(repr=False)

    @property
    def times(self) -> list[datetime | None]:
        return [None if t is None else _datetime(t) for t in self.times_us]


def series(store: Store, scope: Scope, selector: str | Selector, start: datetime | None = None,
           end: datetime | None = None) -> list[Series]:
    """Every series ``selector`` picks in ``scope``, samples in [start, end] (both optional)."""
    where, params = _where(store, scope, _selector(selector), start, end)
    rows = store.con.execute(
        f"""SELECT source_id, name, any_value(family), any_value(type), CAST(labels AS VARCHAR),
                   list(epoch_us(t) ORDER BY t NULLS FIRST), list(value ORDER BY t NULLS FIRST)
            FROM metric_samples WHERE {where}
            GROUP BY source_id, name, labels ORDER BY source_id, name, CAST(labels AS VARCHAR)""",
        params,
    ).fetchall()
    return [Series(int(sid), name, fam, typ, json.loads(labels), tuple(ts), tuple(float(v) for v in vs))
            for sid, name, fam, typ, labels, ts, vs in rows]


# -- plain increases (the doctor's) ----------------------------------------------------------------

@dataclass(frozen=True)
class Increase:
    """A counter's plain increase between its first and last samples in a window."""

    source_id: int
    name: str
    labels: dict[str, str]
    first: datetime | None
    last: datetime | None
    samples: int
    resets: int
    increase: float | None  # None with fewer than two samples
    seconds: float  # between the first and last samples

    @property
    def rate(self) -> float | None:
        if self.increase is None or self.seconds <= 0:
            return None
        return self.increase / self.seconds


def increase(store: Store, scope: Scope, selector: str | Selector, start: datetime | None = None,
             end: datetime | None = None) -> list[Increase]:
    """Each selected counter's increase over [start, end], resets handled, not extrapolated."""
    where, params = _where(store, scope, _selector(selector), start, end, timed=True)
    rows = store.con.execute(
        f"""SELECT source_id, name, CAST(labels AS VARCHAR), min(t), max(t), count(*),
                   coalesce(count_if(value < prev), 0),
                   arg_max(value, t) - arg_min(value, t) + coalesce(sum(prev) FILTER (WHERE value < prev), 0)
            FROM (SELECT source_id, name, labels, t, value,
                         lag(value) OVER (PARTITION BY source_id, name, labels ORDER BY t) AS prev
                  FROM metric_samples WHERE {where})
            GROUP BY source_id, name, labels ORDER BY source_id, name, CAST(labels AS VARCHAR)""",
        params,
    ).fetchall()
    return [Increase(int(sid), name, json.loads(labels), first, last, int(n), int(resets),
                     float(inc) if n >= 2 else None, (last - first).total_seconds())
            for sid, name, labels, first, last, n, resets, inc in rows]


@dataclass(frozen=True)
class StepIncreases:
    """A counter's plain increase in each step of a window (None: no two samples ended in it).

    The increase between two consecutive samples counts in the step of the later one, so
    the steps add up to the increase over the window."""

    source_id: int
    name: str
    labels: dict[str, str]
    step_seconds: float
    starts: tuple[datetime, ...]
    increases: tuple[float | None, ...]

    @property
    def rates(self) -> list[float | None]:
        return [None if v is None else v / self.step_seconds for v in self.increases]


def increase_by_step(store: Store, scope: Scope, selector: str | Selector, start: datetime, end: datetime,
                     step_seconds: float) -> list[StepIncreases]:
    """Each selected counter's increase per step over [start, end]."""
    if step_seconds <= 0:
        raise ValueError("step_seconds must be positive")
    step_us = round(step_seconds * 1e6)
    n_steps = max(1, math.ceil((end - start) / timedelta(microseconds=step_us)))
    where, params = _where(store, scope, _selector(selector), start, end, timed=True)
    rows = store.con.execute(
        f"""SELECT source_id, name, CAST(labels AS VARCHAR),
                   list(step ORDER BY step), list(inc ORDER BY step)
            FROM (SELECT source_id, name, labels, (epoch_us(t) - ?) // ? AS step,
                         sum(CASE WHEN value < prev THEN value ELSE value - prev END) AS inc
                  FROM (SELECT source_id, name, labels, t, value,
                               lag(value) OVER (PARTITION BY source_id, name, labels ORDER BY t) AS prev
                        FROM metric_samples WHERE {where})
                  WHERE prev IS NOT NULL GROUP BY ALL)
            GROUP BY source_id, name, labels ORDER BY source_id, name, CAST(labels AS VARCHAR)""",
        [_us(start), step_us, *params],
    ).fetchall()
    starts = tuple(start + timedelta(microseconds=step_us * k) for k in range(n_steps))
    out = []
    for sid, name, labels, steps, incs in rows:
        by_step = {min(int(s), n_steps - 1): float(v) for s, v in zip(steps, incs, strict=True)}
        out.append(StepIncreases(int(sid), name, json.loads(labels), step_seconds, starts,
                                 tuple(by_step.get(k) for k in range(n_steps))))
    return out


# -- Prometheus's rate() and increase() -------------------------------------------------------------

@dataclass(frozen=True)
class PromPoint:
    """One series' value of a Prometheus range function at ``at``."""

    source_id: int
    name: str
    labels: dict[str, str]
    at: datetime
    value: float


def extrapolated_increase(times_us: Sequence[int], values: Sequence[float], range_start_us: int,
                          range_end_us: int, is_counter: bool = True, per_second_over: float | None = None
                          ) -> float | None:
    """Prometheus 2.x's extrapolated increase of samples already inside the range (None: < 2);
    with ``per_second_over`` (the range in seconds) its rate, divided as Prometheus divides:
    the extrapolation factor first, then the increase times it (float results differ otherwise)."""
    n = len(values)
    if n < 2:
        return None
    result = values[-1] - values[0]
    if is_counter:
        last_value = 0.0
        for v in values:
            if v < last_value:
                result += last_value
            last_value = v
    to_start = (times_us[0] - range_start_us) / 1e6
    to_end = (range_end_us - times_us[-1]) / 1e6
    sampled = (times_us[-1] - times_us[0]) / 1e6
    average = sampled / (n - 1)
    if is_counter and result > 0 and values[0] >= 0:
        # A counter cannot have been below zero: extrapolate no further back than its zero.
        to_zero = sampled * _div(values[0], result)
        if to_zero < to_start:
            to_start = to_zero
    threshold = average * EXTRAPOLATION_THRESHOLD
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    factor = _div(interval, sampled)
    if per_second_over is not None:
        factor = _div(factor, per_second_over)
    return result * factor


def _prom(store: Store, scope: Scope, selector: str | Selector, times: Sequence[datetime], range_seconds: float,
          is_rate: bool, left_open: bool) -> list[list[PromPoint]]:
    range_us = round(range_seconds * 1e6)
    lo = _us(min(times)) - range_us
    found = series(store, scope, selector, start=_datetime(lo), end=max(times))
    out = []
    for s in found:
        # A window's samples by bisection: a series is in time order (and timed, with start/end).
        ts = [t for t in s.times_us if t is not None]
        points = []
        for at in times:
            end_us = _us(at)
            start_us = end_us - range_us
            first = (bisect_right if left_open else bisect_left)(ts, start_us)
            last = bisect_right(ts, end_us)
            value = extrapolated_increase(ts[first:last], s.values[first:last], start_us, end_us,
                                          per_second_over=range_seconds if is_rate else None)
            if value is not None:
                points.append(PromPoint(s.source_id, s.name, s.labels, at, value))
        out.append(points)
    return out


def prom_increase(store: Store, scope: Scope, selector: str | Selector, at: datetime, range_seconds: float,
                  left_open: bool = False) -> list[PromPoint]:
    """``increase(selector[range])`` evaluated at ``at``, as Prometheus does."""
    return [p for pts in _prom(store, scope, selector, [at], range_seconds, False, left_open) for p in pts]


def prom_rate(store: Store, scope: Scope, selector: str | Selector, at: datetime, range_seconds: float,
              left_open: bool = False) -> list[PromPoint]:
    """``rate(selector[range])`` evaluated at ``at``, as Prometheus does."""
    return [p for pts in _prom(store, scope, selector, [at], range_seconds, True, left_open) for p in pts]


def prom_rate_range(store: Store, scope: Scope, selector: str | Selector, range_seconds: float, start: datetime,
                    end: datetime, step_seconds: float, left_open: bool = False) -> list[list[PromPoint]]:
    """``rate(selector[range])`` at start, start + step, … ≤ end (a query_range), per series."""
    step = timedelta(microseconds=round(step_seconds * 1e6))
    times = []
    t = start
    while t <= end:
        times.append(t)
        t += step
    return [pts for pts in _prom(store, scope, selector, times, range_seconds, True, left_open) if pts]


# -- histograms and summaries -----------------------------------------------------------------------

def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """The q-quantile of a classic histogram's buckets, (upper bound, cumulative count), any order.

    Prometheus's rules: q NaN → NaN, q < 0 → -Inf, q > 1 → +Inf; no bucket, or no +Inf
    bucket → NaN; buckets of one bound are added together; neighbouring counts within
    SMALL_DELTA_TOLERANCE are made equal and any count below a lower bucket's is raised to it
    (monotonicity); fewer than two buckets or no observations → NaN. The rank q × total falls
    in the first bucket whose count reaches it: in the +Inf bucket the answer is the second
    highest bound; in the lowest bucket with a bound ≤ 0, that bound; else linear
    interpolation inside the bucket, the lowest one starting at 0."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if not buckets:
        return math.nan
    ordered = sorted(buckets, key=lambda b: b[0])
    if ordered[-1][0] != math.inf:
        return math.nan
    merged: list[list[float]] = []
    for bound, count in ordered:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    reference = merged[0][1]
    for b in merged[1:]:
        delta = abs(b[1] - reference)
        if delta == 0:
            continue
        if _div(delta, b[1]) <= SMALL_DELTA_TOLERANCE:
            b[1] = reference
        else:
            reference = b[1]
    highest = merged[0][1]
    for b in merged[1:]:
        if b[1] > highest:
            highest = b[1]
        elif b[1] < highest:
            b[1] = highest
    if len(merged) < 2:
        return math.nan
    total = merged[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    i = next((k for k in range(len(merged) - 1) if merged[k][1] >= rank), len(merged) - 1)
    if i == len(merged) - 1:
        return merged[-2][0]
    if i == 0 and merged[0][0] <= 0:
        return merged[0][0]
    lower, upper, count = 0.0, merged[i][0], merged[i][1]
    if i > 0:
        lower = merged[i - 1][0]
        count -= merged[i - 1][1]
        rank -= merged[i - 1][1]
    return lower + (upper - lower) * _div(rank, count)


@dataclass(frozen=True)
class HistogramQuantile:
    source_id: int
    family: str
    labels: dict[str, str]  # the series' labels without le
    q: float
    value: float
    observations: float  # the +Inf bucket's count (or increase, or rate) the quantile is of


def _le(text: str | None) -> float | None:
    if text is None or "_" in text:
        return None
    try:
        return float(text)
    except ValueError:
        return None  # Prometheus ignores a bucket whose le is no number


def _by_group(q: float, family: str, items: Sequence[tuple[int, dict[str, str], float]]) -> list[HistogramQuantile]:
    groups: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for sid, labels, value in items:
        rest = dict(labels)
        bound = _le(rest.pop("le", None))
        if bound is not None:
            groups.setdefault((sid, json.dumps(rest, sort_keys=True)), []).append((bound, value))
    out = []
    for (sid, rest_text), buckets in sorted(groups.items()):
        inf = [c for b, c in buckets if b == math.inf]
        out.append(HistogramQuantile(sid, family, json.loads(rest_text), q, histogram_quantile(q, buckets),
                                     inf[0] if inf else math.nan))
    return out


def bucket_quantiles(store: Store, scope: Scope, family: str, q: float, start: datetime | None = None,
                     end: datetime | None = None, matchers: Sequence[Matcher] = ()) -> list[HistogramQuantile]:
    """The q-quantile of histogram ``family`` per label set: over the observations made in
    [start, end] (each bucket's plain increase) when ``start`` is given, else over every
    observation counted by the latest samples at or before ``end``."""
    sel = Selector(family + "_bucket", tuple(matchers))
    if start is not None:
        items = [(i.source_id, i.labels, i.increase) for i in increase(store, scope, sel, start, end)
                 if i.increase is not None]
    else:
        items = [(s.source_id, s.labels, s.values[-1]) for s in series(store, scope, sel, end=end)]
    return _by_group(q, family, items)


def prom_histogram_quantile(store: Store, scope: Scope, family: str, q: float, at: datetime, range_seconds: float,
                            matchers: Sequence[Matcher] = (), left_open: bool = False) -> list[HistogramQuantile]:
    """``histogram_quantile(q, rate(family_bucket[range]))`` at ``at``, as Prometheus evaluates it."""
    sel = Selector(family + "_bucket", tuple(matchers))
    rates = prom_rate(store, scope, sel, at, range_seconds, left_open)
    return _by_group(q, family, [(p.source_id, p.labels, p.value) for p in rates])


@dataclass(frozen=True)
class SummaryQuantiles:
    source_id: int
    family: str
    labels: dict[str, str]  # without quantile
    at: datetime | None
    quantiles: dict[float, float]
    count: float | None
    sum: float | None


def summary_quantiles(store: Store, scope: Scope, family: str, at: datetime | None = None,
                      matchers: Sequence[Matcher] = ()) -> list[SummaryQuantiles]:
    """A summary's quantiles, count and sum per label set, from the latest samples at or before ``at``."""
    latest: dict[tuple[int, str], dict[str, Any]] = {}
    for suffix in ("", "_count", "_sum"):
        for s in series(store, scope, Selector(family + suffix, tuple(matchers)), end=at):
            rest = dict(s.labels)
            quantile = rest.pop("quantile", None)
            if suffix == "" and quantile is None:
                continue
            entry = latest.setdefault((s.source_id, json.dumps(rest, sort_keys=True)),
                                      {"at": None, "quantiles": {}, "count": None, "sum": None})
            if s.times_us[-1] is not None:
                t = _datetime(s.times_us[-1])
                entry["at"] = t if entry["at"] is None else max(entry["at"], t)
            if suffix == "":
                assert quantile is not None
                entry["quantiles"][float(quantile)] = s.values[-1]
            else:
                entry[suffix[1:]] = s.values[-1]
    return [SummaryQuantiles(sid, family, json.loads(rest), e["at"], dict(sorted(e["quantiles"].items())),
                             e["count"], e["sum"])
            for (sid, rest), e in sorted(latest.items()) if e["quantiles"]]


# -- helpers ----------------------------------------------------------------------------------------

def _div(a: float, b: float) -> float:
    """a / b with IEEE 754's answers for a zero divisor (Go's, where Prometheus divides)."""
    if b != 0:
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _us(t: datetime) -> int:
    delta = t - datetime(1970, 1, 1, tzinfo=UTC) if t.tzinfo else t - datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _datetime(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
