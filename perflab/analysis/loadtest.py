"""What a k6 load test measured, with k6 v1.1.0's own numbers.

``k6_summary`` recomputes k6's end-of-test summary from the stored samples (NDJSON or
CSV) so that every value equals k6's, bit for bit, following ``metrics/sink.go``:

* trend ``p(X)``: sort ascending; ``i = X/100 * (n-1)``;
  ``v[floor i] + (v[ceil i] - v[floor i]) * (i - floor i)`` (linear between closest
  ranks, Hyndman-Fan 7); ``med`` = p(50). Nothing is sampled or bucketed.
* trend ``avg``: the float64 sum **in arrival order** (the file's line order) over n.
  A pairwise or compensated sum (numpy ``mean``, polars ``mean``, ``fsum``) differs
  in the last bits, so the sum is a sequential ``np.add.accumulate``.
* rate: passes = values != 0; rate = passes / n. counter: count = Σ values (in order),
  rate = count / test-run seconds. gauge: value = last sample, min, and max starting
  at 0 (a v1.1.0 quirk, grafana/k6#6195: an all-negative gauge reports max 0).
* a sub-metric ``m{k:v,...}`` is the samples of ``m`` whose tags hold every pair.

Counter rates need the test-run duration, which no sample carries. It is taken, in
this order, from a handleSummary() file of the same run (``state.testRunDurationMs``),
from a --summary-export of the same run (its counters' count/rate), or from the span of
the samples (first to last; slightly shorter than k6's, so rates come out a little
high). The answer says which under ``duration_source``. "Same run" means the same
``run_id`` in the store (``perflab ingest --run``), or a file given as ``companion``.

A summary file as the source gives back its own numbers in the same shape.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from perflab.analysis import k6_stored
from perflab.analysis.k6_points_read import json_path as _json_path
from perflab.analysis.k6_points_read import metric_points
from perflab.errors import PerflabError
from perflab.store import Store
from perflab.vocab import K6 as KIND
from perflab.vocab import K6_BUILTIN_METRICS as BUILTIN_METRICS
from perflab.vocab import K6_KINDS as ALL_KINDS
from perflab.vocab import K6_POINT_KINDS as POINT_KINDS
from perflab.vocab import K6_SUMMARY as SUMMARY_KIND

Ref = str | int | os.PathLike[str]

# k6's summaryTrendStats default plus what perflab always shows: p(99) and count.
DEFAULT_TREND_STATS = ("avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "count")
VALUE_FIELDS = {
    "counter": ("count", "rate"),
    "rate": ("rate", "passes", "fails"),
    "gauge": ("value", "min", "max"),
}
_PCT = re.compile(r"^p\((\d+(?:\.\d+)?)\)$")
_THRESHOLD = re.compile(
    r"^\s*(avg|min|max|med|count|rate|value|p\(\d+(?:\.\d+)?\))\s*(<=|>=|===|==|!=|<|>)\s*"
    r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)
# Beyond 2**53 a float64 no longer holds every integer, so it is not printed as one.
_MAX_EXACT_INT = 2.0**53


# -- k6's arithmetic ----------------------------------------------------------------

def k6_percentile(sorted_values: np.ndarray, pct: float) -> float:
    """TrendSink.P of k6 v1.1.0 on ascending values; ``pct`` is X/100 for ``p(X)``."""
    n = len(sorted_values)
    if n == 0:
        return 0.0
    if n == 1:
        return float(sorted_values[0])
    i = pct * (n - 1)
    lo = math.floor(i)
    hi = math.ceil(i)
    low = float(sorted_values[lo])
    return low + (float(sorted_values[hi]) - low) * (i - lo)


def sequential_sum(values: np.ndarray) -> float:
    """float64 sum in the given order, one addition after another (as Go's `+=` does)."""
    if len(values) == 0:
        return 0.0
    return float(np.add.accumulate(values)[-1])


def trend_stat(stat: str, sorted_values: np.ndarray, total: float) -> float:
    n = len(sorted_values)
    if stat == "count":
        return float(n)
    if n == 0:
        return 0.0
    if stat == "avg":
        return total / n
    if stat == "min":
        return float(sorted_values[0])
    if stat == "max":
        return float(sorted_values[-1])
    if stat == "med":
        return k6_percentile(sorted_values, 0.5)
    m = _PCT.match(stat)
    if m:
        return k6_percentile(sorted_values, float(m.group(1)) / 100)
    raise PerflabError(f"unknown trend stat {stat!r} (use avg, min, med, max, count or p(N))")


@dataclass
class _Group:
    """The samples of one metric, sub-metric or --by group, in arrival order."""

    name: str
    type: str
    contains: str | None
    values: np.ndarray
    thresholds: list[str] = field(default_factory=list)


def _stats(g: _Group, trend_stats: tuple[str, ...], duration_s: float | None
           ) -> tuple[dict[str, float], dict[str, bool | None]]:
    v = g.values
    n = len(v)
    out: dict[str, float] = {}
    sorted_v = np.sort(v) if g.type == "trend" else v
    total = sequential_sum(v)
    if g.type == "trend":
        for stat in trend_stats:
            out[stat] = trend_stat(stat, sorted_v, total)
    elif g.type == "counter":
        out["count"] = total
        out["rate"] = total / duration_s if duration_s else (0.0 if duration_s == 0 else math.nan)
    elif g.type == "rate":
        passes = int(np.count_nonzero(v))
        out["rate"] = passes / n if n else 0.0
        out["passes"] = float(passes)
        out["fails"] = float(n - passes)
    elif g.type == "gauge":
        out["value"] = float(v[-1]) if n else 0.0
        out["min"] = float(v.min()) if n else 0.0
        out["max"] = max(0.0, float(v.max())) if n else 0.0
    thresholds = {expr: evaluate_threshold(expr, g.type, out, sorted_v, total) for expr in g.thresholds}
    return out, thresholds


def evaluate_threshold(expr: str, mtype: str, stats: dict[str, float],
                       sorted_values: np.ndarray | None = None, total: float | None = None) -> bool | None:
    """Whether a k6 threshold expression holds (True = passed); None if it cannot apply."""
    m = _THRESHOLD.match(expr)
    if not m:
        return None
    agg, op, literal = m.group(1), m.group(2), float(m.group(3))
    if agg in stats:
        value = stats[agg]
    elif mtype == "trend" and sorted_values is not None and agg not in ("rate", "value"):
        value = trend_stat(agg, sorted_values, total if total is not None else sequential_sum(sorted_values))
    else:
        return None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return {
        "<": value < literal, "<=": value <= literal, ">": value > literal, ">=": value >= literal,
        "==": value == literal, "===": value == literal, "!=": value != literal,
    }[op]


def go_number(x: float) -> float | int:
    """A float64 as Go's encoding/json prints it: 153 rather than 153.0."""
    if isinstance(x, float) and math.isfinite(x) and x == int(x) and abs(x) < _MAX_EXACT_INT:
        return int(x)
    return x


# -- sources ------------------------------------------------------------------------

def _meta(src: dict[str, Any]) -> dict[str, Any]:
    return json.loads(src["meta"]) if src.get("meta") else {}


def _companions(store: Store, src: dict[str, Any], companion: Ref | None) -> list[dict[str, Any]]:
    """Other k6 files of the same run: an explicit one first, then those sharing run_id."""
    out: list[dict[str, Any]] = []
    if companion is not None:
        out.append(store.source(store.find_source(companion, kinds=ALL_KINDS)))
    if src.get("run_id") is not None:
        rows = store.sql(
            "SELECT * FROM sources WHERE run_id = ? AND source_id <> ? AND kind IN ? ORDER BY source_id",
            [src["run_id"], int(src["source_id"]), list(ALL_KINDS)],
        ).to_dicts()
        out += [r for r in rows if r["source_id"] not in {o["source_id"] for o in out}]
    return [o for o in out if o["source_id"] != src["source_id"]]


def _selector_name(parent: str, tags: dict[str, str]) -> str:
    return parent + "{" + ",".join(f"{k}:{v}" for k, v in tags.items()) + "}"


def _parse_selector(name: str) -> dict[str, str]:
    inner = name[name.index("{") + 1: -1]
    out: dict[str, str] = {}
    for pair in inner.split(","):
        k, _, v = pair.partition(":")
        out[k.strip()] = v.strip()
    return out


# -- duration -------------------------------------------------------------------------

def _duration_from_summary(store: Store, src: dict[str, Any]) -> tuple[float, str] | None:
    """(ms, how) from a summary file: handleSummary states it, a summary-export implies it."""
    meta = _meta(src)
    if meta.get("test_run_duration_ms") is not None:
        return float(meta["test_run_duration_ms"]), (
            f"handleSummary state.testRunDurationMs (source {src['source_id']})")
    rows = store.sql(
        """SELECT c.metric, c.value AS count, r.value AS rate
           FROM k6_summary_values c JOIN k6_summary_values r
             ON r.source_id = c.source_id AND r.metric = c.metric AND r.stat = 'rate'
           JOIN k6_summary_metrics m ON m.source_id = c.source_id AND m.metric = c.metric
           WHERE c.source_id = ? AND c.stat = 'count' AND m.type = 'counter' AND r.value > 0
           ORDER BY c.value DESC, c.metric LIMIT 1""",
        [int(src["source_id"])],
    ).to_dicts()
    if not rows:
        return None
    r = rows[0]
    # k6 prints the duration to the nanosecond; the largest count loses the least to rounding.
    ms = round(r["count"] / r["rate"] * 1000, 6)
    return ms, (f"implied by {r['metric']} count/rate of the summary-export (source {src['source_id']})")


def _duration(store: Store, sid: int, companions: list[dict[str, Any]]) -> tuple[float | None, str]:
    """(seconds, how) for counter rates."""
    found = None
    for c in companions:
        if c["kind"] == SUMMARY_KIND and _meta(c).get("test_run_duration_ms") is not None:
            found = _duration_from_summary(store, c)
            break
    if found is None:
        for c in companions:
            if c["kind"] == SUMMARY_KIND:
                found = _duration_from_summary(store, c)
                if found is not None:
                    break
    if found is not None:
        ms, how = found
        # Go: float64(time.Duration) / float64(time.Second), the duration being whole ns.
        return round(ms * 1e6) / 1e9, how
    span = store.con.execute(
        "SELECT max(time_ns) - min(time_ns) FROM k6_points WHERE source_id = ?", [sid]
    ).fetchall()[0][0]
    if span is None:
        return None, "no samples"
    return span / 1e9, ("time span of the samples (first to last; no summary file of the same run, "
                        "so counter rates are approximate)")


# -- definitions ---------------------------------------------------------------------

@dataclass
class _Definitions:
    types: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    thresholds: dict[str, list[str]] = field(default_factory=dict)
    submetrics: dict[str, list[tuple[str, dict[str, str]]]] = field(default_factory=dict)
    trend_stats: list[str] = field(default_factory=list)
    guessed: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def add_threshold(self, name: str, expr: str) -> None:
        lst = self.thresholds.setdefault(name, [])
        if expr not in lst:
            lst.append(expr)

    def add_submetric(self, parent: str, name: str, tags: dict[str, str]) -> None:
        lst = self.submetrics.setdefault(parent, [])
        if name not in [n for n, _ in lst]:
            lst.append((name, tags))


def _metric_lines(store: Store, sid: int, defs: _Definitions) -> bool:
    rows = store.sql(
        "SELECT name, type, contains, thresholds, submetrics FROM k6_metrics WHERE source_id = ? ORDER BY seq",
        [sid],
    ).to_dicts()
    for r in rows:
        if r["name"] in defs.types:
            continue
        defs.types[r["name"]] = (r["type"], r["contains"])
        for expr in json.loads(r["thresholds"] or "[]"):
            defs.add_threshold(r["name"], expr)
        for sub in json.loads(r["submetrics"] or "null") or []:
            defs.add_submetric(r["name"], sub["name"], {k: str(v) for k, v in (sub.get("tags") or {}).items()})
    return bool(rows)


def _summary_definitions(store: Store, src: dict[str, Any], defs: _Definitions) -> None:
    sid = int(src["source_id"])
    for r in store.sql("SELECT metric, parent, type, contains FROM k6_summary_metrics WHERE source_id = ?",
                       [sid]).to_dicts():
        if r["parent"] is None:
            # Metric lines, read first, know `contains`; a summary-export does not.
            if r["type"] is not None and r["metric"] not in defs.types:
                defs.types[r["metric"]] = (r["type"], r["contains"])
        else:
            defs.add_submetric(r["parent"], r["metric"], _parse_selector(r["metric"]))
    for r in store.sql("SELECT metric, expr FROM k6_thresholds WHERE source_id = ?", [sid]).to_dicts():
        defs.add_threshold(r["metric"], r["expr"])
    stats = _meta(src).get("summary_trend_stats") or []
    stats += [s[0] for s in store.con.execute(
        "SELECT DISTINCT stat FROM k6_summary_values WHERE source_id = ? AND stat LIKE 'p(%' ORDER BY stat",
        [sid]).fetchall()]
    for s in stats:
        if s not in defs.trend_stats:
            defs.trend_stats.append(s)


def _definitions(store: Store, src: dict[str, Any], names: list[str],
                 companions: list[dict[str, Any]]) -> _Definitions:
    defs = _Definitions()
    sid = int(src["source_id"])
    if _metric_lines(store, sid, defs):
        defs.sources.append(f"Metric lines (source {sid})")
    for c in companions:
        if c["kind"] == KIND and _metric_lines(store, int(c["source_id"]), defs):
            defs.sources.append(f"Metric lines (source {c['source_id']})")
    for c in companions:
        if c["kind"] == SUMMARY_KIND:
            _summary_definitions(store, c, defs)
            defs.sources.append(f"{_meta(c).get('variant', 'summary')} (source {c['source_id']})")
    for name in names:
        if name not in defs.types:
            if name in BUILTIN_METRICS:
                defs.types[name] = BUILTIN_METRICS[name]
            else:
                # A CSV alone does not say what a custom metric is; a trend shows the most.
                defs.types[name] = ("trend", None)
                defs.guessed.append(name)
    return defs


# -- the summary ---------------------------------------------------------------------

def k6_summary(store: Store, ref: Ref, by: str | None = None, *,
               trend_stats: list[str] | tuple[str, ...] | None = None,
               companion: Ref | None = None) -> dict[str, Any]:
    """k6's end-of-test summary of one source (NDJSON, CSV or a summary file).

    Returns ``{"metrics": {NAME: {"type", "contains", <k6's fields>, "thresholds":
    {EXPR: passed}}}, "checks": {path: {passes, fails}}, "totals", "duration_s",
    "duration_source", ...}``. ``by`` adds ``metric{TAG:value}`` groups for every metric
    whose samples carry TAG. ``trend_stats`` overrides the trend fields (k6's
    ``--summary-trend-stats``); by default k6's plus p(99) and count, plus any the
    run's summary file shows. The default summary of NDJSON/CSV is stored once computed
    (perflab.analysis.k6_stored) and read back while its source and run are unchanged.
    """
    sid = store.find_source(ref, kinds=ALL_KINDS)
    src = store.source(sid)
    if src["kind"] == SUMMARY_KIND:
        if by is not None:
            raise PerflabError(f"{ref}: --by needs the samples; give this run's NDJSON or CSV "
                               "(a summary file holds only totals)")
        return _summary_of_summary_file(store, src)
    default = by is None and not trend_stats and companion is None
    if default and (stored := k6_stored.read(store, sid)) is not None:
        return stored
    summary = _summary_of_points(store, src, by, trend_stats, companion)
    if default:
        k6_stored.write(store, sid, summary)
    return summary


def _summary_of_points(store: Store, src: dict[str, Any], by: str | None,
                       trend_stats: list[str] | tuple[str, ...] | None, companion: Ref | None
                       ) -> dict[str, Any]:
    sid = int(src["source_id"])
    companions = _companions(store, src, companion)
    names = [r[0] for r in store.con.execute(
        "SELECT metric FROM k6_points WHERE source_id = ? GROUP BY metric ORDER BY min(seq)", [sid]
    ).fetchall()]
    defs = _definitions(store, src, names, companions)
    stats_wanted = tuple(trend_stats) if trend_stats else tuple(
        dict.fromkeys([*DEFAULT_TREND_STATS, *defs.trend_stats]))
    for s in stats_wanted:
        trend_stat(s, np.zeros(0), 0.0)  # an unknown stat fails here, before any work
    duration_s, duration_source = _duration(store, sid, companions)

    # Every tag a sub-metric or --by looks at becomes one column, extracted by DuckDB.
    keys: list[str] = []
    for subs in defs.submetrics.values():
        for _, tags in subs:
            keys += [k for k in tags if k not in keys]
    if by is not None and by not in keys:
        keys.append(by)
    needs_tags = sorted(defs.submetrics) if by is None else names
    col = {k: f"t{i}" for i, k in enumerate(keys)}
    groups: list[_Group] = []
    for name in names:
        part = metric_points(store, sid, name, keys if name in needs_tags else [])
        mtype, contains = defs.types[name]
        groups.append(_Group(name, mtype, contains, part["value"].to_numpy(),
                             list(defs.thresholds.get(name, []))))
        for sub_name, tags in defs.submetrics.get(name, []):
            mask = pl.lit(True)
            for k, v in tags.items():
                mask = mask & (pl.col(col[k]) == v)
            groups.append(_Group(sub_name, mtype, contains, part.filter(mask)["value"].to_numpy(),
                                 list(defs.thresholds.get(sub_name, []))))
        if by is not None:
            have = {g.name for g in groups}
            tagged = part.filter(pl.col(col[by]).is_not_null())
            for (tag_value,), sub in tagged.partition_by(col[by], maintain_order=True, as_dict=True).items():
                gname = _selector_name(name, {by: tag_value})
                if gname not in have:
                    groups.append(_Group(gname, mtype, contains, sub["value"].to_numpy(),
                                         list(defs.thresholds.get(gname, []))))
    # A sub-metric of a metric without samples still appears in k6's summary, all zero.
    for parent, subs in defs.submetrics.items():
        if parent not in names and parent in defs.types:
            mtype, contains = defs.types[parent]
            for sub_name, _ in subs:
                groups.append(_Group(sub_name, mtype, contains, np.zeros(0),
                                     list(defs.thresholds.get(sub_name, []))))

    metrics: dict[str, Any] = {}
    for g in groups:
        values, thresholds = _stats(g, stats_wanted, duration_s)
        entry: dict[str, Any] = {"type": g.type, "contains": g.contains}
        entry.update({k: go_number(v) for k, v in values.items()})
        entry["thresholds"] = thresholds
        metrics[g.name] = entry

    checks = {
        r["path"]: {"passes": int(r["passes"]), "fails": int(r["fails"])}
        for r in store.sql(
            """SELECT coalesce(json_extract_string(tags, '$.group'), '') || '::'
                        || json_extract_string(tags, '$.check') AS path,
                      count(*) FILTER (WHERE value <> 0) AS passes, count(*) FILTER (WHERE value = 0) AS fails
               FROM k6_points WHERE source_id = ? AND metric = 'checks'
               GROUP BY path ORDER BY min(seq)""",
            [sid],
        ).to_dicts()
    }
    out = _envelope(src, metrics, checks, duration_s, duration_source)
    out.update({
        "companions": [int(c["source_id"]) for c in companions],
        "definitions_source": defs.sources or ["built-in table of k6 metrics"],
        "guessed_types": defs.guessed,
        "trend_stats": list(stats_wanted),
    })
    if by is not None:
        out["by"] = by
    return out


def _summary_of_summary_file(store: Store, src: dict[str, Any]) -> dict[str, Any]:
    sid = int(src["source_id"])
    meta = _meta(src)
    metrics: dict[str, Any] = {}
    for r in store.sql("SELECT metric, type, contains FROM k6_summary_metrics WHERE source_id = ?",
                       [sid]).to_dicts():
        metrics[r["metric"]] = {"type": r["type"], "contains": r["contains"], "thresholds": {}}
    for r in store.sql("SELECT metric, stat, value FROM k6_summary_values WHERE source_id = ?",
                       [sid]).to_dicts():
        metrics[r["metric"]][r["stat"]] = go_number(r["value"])
    for r in store.sql("SELECT metric, expr, passed FROM k6_thresholds WHERE source_id = ?", [sid]).to_dicts():
        metrics[r["metric"]]["thresholds"][r["expr"]] = bool(r["passed"])
    checks = {
        r["path"]: {"passes": int(r["passes"]), "fails": int(r["fails"])}
        for r in store.sql("SELECT path, passes, fails FROM k6_checks WHERE source_id = ?", [sid]).to_dicts()
    }
    found = _duration_from_summary(store, src)
    duration_s = round(found[0] * 1e6) / 1e9 if found else None
    out = _envelope(src, metrics, checks, duration_s, found[1] if found else "not in the file")
    out["variant"] = meta.get("variant")
    seen = {s for m in metrics.values() if m["type"] == "trend" for s in m} - {"type", "contains", "thresholds"}
    out["trend_stats"] = meta.get("summary_trend_stats") or sorted(
        seen, key=lambda s: (DEFAULT_TREND_STATS.index(s) if s in DEFAULT_TREND_STATS else 99, s))
    return out


def _envelope(src: dict[str, Any], metrics: dict[str, Any], checks: dict[str, Any],
              duration_s: float | None, duration_source: str) -> dict[str, Any]:
    def stat(name: str, field_: str) -> Any:
        return metrics.get(name, {}).get(field_)

    passes = sum(c["passes"] for c in checks.values()) if checks else stat("checks", "passes")
    fails = sum(c["fails"] for c in checks.values()) if checks else stat("checks", "fails")
    totals = {
        "http_reqs": stat("http_reqs", "count"),
        "iterations": stat("iterations", "count"),
        "checks_passes": stat("checks", "passes") if "checks" in metrics else passes,
        "checks_fails": stat("checks", "fails") if "checks" in metrics else fails,
        "checks_rate": stat("checks", "rate"),
        "data_sent": stat("data_sent", "count"),
        "data_received": stat("data_received", "count"),
        "dropped_iterations": stat("dropped_iterations", "count"),
    }
    crossed = sorted(f"{name}: {expr}" for name, m in metrics.items()
                     for expr, ok in m.get("thresholds", {}).items() if ok is False)
    return {
        "source_id": int(src["source_id"]),
        "kind": src["kind"],
        "path": src["path"],
        "run_id": src.get("run_id"),
        "metrics": metrics,
        "checks": checks,
        "totals": totals,
        "thresholds_crossed": crossed,
        "duration_s": duration_s,
        "duration_source": duration_source,
    }


# -- samples for notebooks -----------------------------------------------------------

_POINT_COLUMNS = ("seq", "time", "time_ns", "utc_offset_min", "metric", "value", "metadata")


def k6_points(store: Store, ref: Ref, metric: str | None = None) -> pl.DataFrame:
    """The samples of one NDJSON/CSV source in arrival order, one column per tag key."""
    sid = store.find_source(ref, kinds=POINT_KINDS)
    where, params = "source_id = ?", list[Any]([sid])
    if metric is not None:
        where += " AND metric = ?"
        params.append(metric)
    keys = [r[0] for r in store.con.execute(
        f"SELECT DISTINCT unnest(json_keys(tags)) AS k FROM k6_points WHERE {where} ORDER BY k", params
    ).fetchall()]
    cols = ""
    for k in keys:
        alias = f"tag_{k}" if k in _POINT_COLUMNS else k
        cols += f", json_extract_string(tags, ?) AS \"{alias.replace(chr(34), chr(34) * 2)}\""
    return store.sql(
        f"SELECT seq, time, time_ns, utc_offset_min, metric, value{cols}, metadata "
        f"FROM k6_points WHERE {where} ORDER BY seq",
        [*map(_json_path, keys), *params],
    )


def k6_timeseries(store: Store, sources: int | Sequence[int], interval_s: float = 1) -> pl.DataFrame:
    """Per interval: requests, rps, p50/p95/p99 of http_req_duration (ms), error rate, VUs.

    ``sources``: one k6 NDJSON/CSV source, or a run's (``Run.k6_point_sources``: k6
    execution segments of one test are several files). Intervals start at the first
    sample; an interval without requests is kept
    (requests 0, latencies null) so a chart shows the gap. Percentiles are k6's
    (linear between closest ranks).
    """
    if interval_s <= 0:
        raise PerflabError("interval_s must be positive")
    sids = [int(sources)] if isinstance(sources, int) else [int(s) for s in sources]
    step = int(round(interval_s * 1e9))
    pts = store.sql(
        """SELECT time_ns, metric, value FROM k6_points
           WHERE source_id IN ? AND metric IN ('http_reqs', 'http_req_duration', 'http_req_failed', 'vus')""",
        [sids],
    )
    t0_row = store.con.execute("SELECT min(time_ns), max(time_ns) FROM k6_points WHERE source_id IN ?",
                               [sids]).fetchall()[0]
    schema: dict[str, Any] = {
        "t": pl.Datetime("us", "UTC"), "elapsed_s": pl.Float64, "requests": pl.Int64, "rps": pl.Float64,
        "p50_ms": pl.Float64, "p95_ms": pl.Float64, "p99_ms": pl.Float64, "error_rate": pl.Float64, "vus": pl.Float64}
    if t0_row[0] is None:
        return pl.DataFrame(schema=schema)
    t0, t1 = t0_row
    pts = pts.with_columns(((pl.col("time_ns") - t0) // step).alias("bucket"))
    frame = pl.DataFrame({"bucket": np.arange((t1 - t0) // step + 1, dtype=np.int64)})
    reqs = pts.filter(pl.col("metric") == "http_reqs").group_by("bucket").agg(
        pl.col("value").sum().alias("requests"))
    lat = pts.filter(pl.col("metric") == "http_req_duration").group_by("bucket").agg(
        *[pl.col("value").quantile(q, interpolation="linear").alias(f"p{int(q * 100)}_ms")
          for q in (0.5, 0.95, 0.99)])
    err = pts.filter(pl.col("metric") == "http_req_failed").group_by("bucket").agg(
        (pl.col("value") != 0).mean().alias("error_rate"))
    vus = pts.filter(pl.col("metric") == "vus").group_by("bucket").agg(pl.col("value").max().alias("vus"))
    out = (frame.join(reqs, on="bucket", how="left").join(lat, on="bucket", how="left")
           .join(err, on="bucket", how="left").join(vus, on="bucket", how="left").sort("bucket"))
    return out.select(
        pl.from_epoch(pl.lit(t0) + pl.col("bucket") * step, time_unit="ns")
        .dt.cast_time_unit("us").dt.replace_time_zone("UTC").alias("t"),
        (pl.col("bucket") * (step / 1e9)).alias("elapsed_s"),
        pl.col("requests").fill_null(0).cast(pl.Int64),
        (pl.col("requests").fill_null(0) / (step / 1e9)).alias("rps"),
        "p50_ms", "p95_ms", "p99_ms", "error_rate", pl.col("vus").cast(pl.Float64),
    )
