"""A service's signals by role, whatever the service calls them.

A diagnosis asks for roles (``requests``, ``pool_waiting``, ``cpu_seconds``...: the list
and each role's kind are perflab.vocab.SIGNAL_ROLES), never for one service's metric
names. Which metric feeds a role is decided per run, in this order:

1. the user's mapping (``perflab ingest --run R --role downstream_calls=app_calls_total``,
   a target file's ``[roles]``, the lab's scenarios), stored in ``run_roles``;
2. the names the standard exporters use: prometheus/client_golang's Go, process and
   DBStats collectors, Python prometheus_client's process collector, Node prom-client's
   defaults, Go expvar's ``memstats``, and the OpenTelemetry semantic conventions' names
   as Prometheus exports them (``http_server_active_requests``, ``db_client_connections_*``).

A metric is matched by its sample name (``go_sql_wait_count_total``), by its family (a
histogram or summary family feeds a counter role through its ``_count`` series and a
seconds role through ``_sum``), or, for a flattened JSON map (expvar, /debug/vars), by
the map's path: ``errors`` reads ``errors.timeout``, ``errors.pool_timeout``... as the
series ``{key="timeout"}``, ``{key="pool_timeout"}``. Label matchers narrow it
(``x{state="used"}``). It is read from metric_samples (Prometheus scrapes, the Prometheus
API, expvar, process samples) or from the lab's /debug/vars samples of older runs
(service_vars, keys such as ``gauges.pool_size``).

A counter role is read as increases (a drop is a restart: the new value is the increase,
as Prometheus's ``increase`` treats a reset), summed over its series; a gauge role as
levels, summed over its series at each instant (two pools: their connections add up).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from perflab.analysis.metrics import Matcher, Selector, matcher_sql, parse_selector
from perflab.store import Store
from perflab.vocab import SIGNAL_ROLES

SIGNALS_SCHEMA: dict[str, Any] = {
    "t_s": pl.Float64, "role": pl.String, "series": pl.String, "value": pl.Float64,
}


@dataclass(frozen=True)
class RoleMetric:
    """A metric a role reads: its selector and the factor to the role's unit."""

    selector: Selector
    scale: float = 1.0  # to the role's unit (expvar's nanoseconds → seconds)

    @property
    def name(self) -> str:
        return self.selector.name

    def __str__(self) -> str:
        return str(self.selector)


def _s(name: str, scale: float = 1.0, **labels: str) -> RoleMetric:
    return RoleMetric(Selector(name, tuple(Matcher(k, "=", v) for k, v in sorted(labels.items()))), scale)


# The names standard exporters give each role, most specific first. Every name here is
# an exporter's documented default; anything else the user maps once.
STANDARD: dict[str, tuple[RoleMetric, ...]] = {
    "requests": (_s("http_server_request_duration_seconds_count"),),  # OTel http.server.request.duration
    "errors": (),
    "in_flight": (_s("http_server_active_requests"),),  # OTel http.server.active_requests
    "downstream_calls": (_s("db_client_operation_duration_seconds_count"),  # OTel db.client.operation.duration
                         _s("http_client_request_duration_seconds_count")),  # OTel http.client.request.duration
    "retries": (),
    "pool_size": (_s("go_sql_max_open_connections"),  # client_golang's DBStats collector
                  _s("db_client_connections_max")),  # OTel db.client.connections.max
    "pool_in_use": (_s("go_sql_in_use_connections"), _s("db_client_connections_usage", state="used")),
    "pool_waiting": (_s("db_client_connections_pending_requests"),),  # OTel
    "pool_wait_count": (_s("go_sql_wait_count_total"),),
    "pool_wait_seconds": (_s("go_sql_wait_duration_seconds_total"),
                          _s("db_client_connections_wait_time_seconds_sum")),  # OTel histogram's sum
    "tasks": (_s("go_goroutines"), _s("nodejs_active_handles_total"), _s("nodejs_active_handles")),
    "cpu_seconds": (_s("process_cpu_seconds_total"),),  # client_golang, prometheus_client, prom-client
    "rss_bytes": (_s("process_resident_memory_bytes"),),
    "heap_inuse_bytes": (_s("go_memstats_heap_inuse_bytes"), _s("nodejs_heap_size_used_bytes"),
                         _s("memstats.HeapInuse")),  # Go expvar
    "gc_pause_seconds": (_s("go_gc_duration_seconds_sum"), _s("nodejs_gc_duration_seconds_sum"),
                         _s("memstats.PauseTotalNs", scale=1e-9)),  # expvar: nanoseconds
    "event_loop_lag_seconds": (_s("nodejs_eventloop_lag_seconds"),),
    "buffer_depth": (),
    "buffer_limit": (),
}


@dataclass(frozen=True)
class RoleSource:
    """Which metric fed a role in a run (``perflab roles RUN``)."""

    role: str
    metric: str  # the sample name and matchers read
    source_id: int
    samples: int
    mapped: bool  # the user's (or target's) mapping, not a standard name


@dataclass
class _Known:
    """One sample name a run has: where it is stored and how many samples."""

    name: str
    family: str
    type: str
    table: str  # metric_samples | service_vars
    source_id: int
    samples: int


@dataclass
class Roles:
    """A run's roles: which metric fed each (None: no metric found) and the signal frame."""

    run_id: str
    sources: dict[str, RoleSource | None]
    signals: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SIGNALS_SCHEMA))

    def has(self, role: str) -> bool:
        return self.sources.get(role) is not None


def _known_names(store: Store, run_id: str) -> list[_Known]:
    rows = store.con.execute(
        """SELECT name, family, any_value(type), 'metric_samples', min(source_id), count(*)
           FROM metric_samples WHERE run_id = ? AND t IS NOT NULL GROUP BY name, family
           UNION ALL
           SELECT key, key, 'untyped', 'service_vars', min(source_id), count(*)
           FROM service_vars WHERE run_id = ? GROUP BY key
           ORDER BY 1""", [run_id, run_id]).fetchall()
    return [_Known(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), int(r[5])) for r in rows]


@dataclass(frozen=True)
class _Hit:
    """The samples a selector reads: one name, or the members of a flattened map (prefix)."""

    names: tuple[str, ...]
    prefix: str | None  # a map's path: each name's rest becomes the series' "key" label
    where: _Known


def _match(sel: RoleMetric, role: str, known: list[_Known]) -> _Hit | None:
    """The samples of a selector: the sample name itself, else its family, else a map's members."""
    by_name = {k.name: k for k in known}
    if sel.name in by_name:
        return _Hit((sel.name,), None, by_name[sel.name])
    kind = SIGNAL_ROLES[role]
    for k in known:
        if k.family != sel.name:
            continue
        if k.type == "counter" and k.name in (sel.name, sel.name + "_total"):
            return _Hit((k.name,), None, k)
        if k.type in ("histogram", "summary") and kind == "counter":
            # A histogram feeds a count role through _count and a seconds role through _sum.
            suffix = "_sum" if role.endswith("_seconds") else "_count"
            if k.name == sel.name + suffix:
                return _Hit((k.name,), None, k)
    members = [k for k in known if k.type == "untyped" and k.name.startswith(sel.name + ".")
               and "." not in k.name[len(sel.name) + 1:]]
    if members:
        return _Hit(tuple(k.name for k in members), sel.name + ".", members[0])
    return None


def resolve(store: Store, run_id: str) -> dict[str, tuple[RoleMetric, _Hit, bool] | None]:
    """For each role: (the selector read, its samples, mapped by the user?) or None."""
    mapped = dict(store.con.execute("SELECT role, metric FROM run_roles WHERE run_id = ?", [run_id]).fetchall())
    known = _known_names(store, run_id)
    out: dict[str, tuple[RoleMetric, _Hit, bool] | None] = {}
    for role in SIGNAL_ROLES:
        candidates = (RoleMetric(parse_selector(mapped[role])),) if role in mapped else STANDARD[role]
        out[role] = None
        for sel in candidates:
            hit = _match(sel, role, known)
            if hit is not None:
                out[role] = (sel, hit, role in mapped)
                break
    return out


def load(store: Store, run_id: str) -> Roles:
    """Every role of a run: which metric feeds it and its samples (t_s, role, series, value)."""
    frames: list[pl.DataFrame] = []
    sources: dict[str, RoleSource | None] = {}
    for role, found in resolve(store, run_id).items():
        df = _samples(store, run_id, *found[:2]) if found is not None else pl.DataFrame()
        if found is None or df.is_empty():
            sources[role] = None
            continue
        sel, hit, mapped = found
        shown = Selector(hit.names[0] if hit.prefix is None else sel.name, sel.selector.matchers)
        sources[role] = RoleSource(role, str(shown), hit.where.source_id, df.height, mapped)
        frames.append(df.select(pl.col("t_s").cast(pl.Float64), pl.lit(role).alias("role"),
                                pl.col("series").cast(pl.String), pl.col("value").cast(pl.Float64)))
    signals = pl.concat(frames) if frames else pl.DataFrame(schema=SIGNALS_SCHEMA)
    return Roles(run_id, sources, signals)


def _samples(store: Store, run_id: str, sel: RoleMetric, hit: _Hit) -> pl.DataFrame:
    """(t_s, series, value) of a selector's samples in the run, scaled to the role's unit, from
    one source (the first that has the name): two files of one run may both measure a name
    (a scrape's process_cpu_seconds_total and a process sampler's), and their samples
    interleaved as one series made a CPU rate of 5,000 % out of two 3 % ones."""
    names = list(hit.names)
    if hit.where.table == "service_vars":
        series = (f"json_object('key', substr(key, {len(hit.prefix) + 1}))::VARCHAR" if hit.prefix
                  else "'{}'")
        return store.sql(
            f"SELECT epoch_us(t) / 1e6 AS t_s, {series} AS series, value * ? AS value FROM service_vars "
            "WHERE run_id = ? AND key IN ? AND source_id = ? ORDER BY series, t",
            [sel.scale, run_id, names, hit.where.source_id])
    tests, params = matcher_sql(sel.selector.matchers)
    extra = "".join(" AND " + c for c in tests)
    series = (f"json_object('key', substr(name, {len(hit.prefix) + 1}))::VARCHAR" if hit.prefix
              else "labels::VARCHAR")
    return store.sql(
        f"""SELECT epoch_us(t) / 1e6 AS t_s, {series} AS series, value * ? AS value
            FROM metric_samples WHERE run_id = ? AND name IN ? AND source_id = ? AND t IS NOT NULL{extra}
            ORDER BY series, t""", [sel.scale, run_id, names, hit.where.source_id, *params])


# -- reading a role's samples (pure: what the signatures and charts call) -----------------------

def role_rows(signals: pl.DataFrame, role: str) -> pl.DataFrame:
    return signals.filter(pl.col("role") == role)


def gauge_levels(signals: pl.DataFrame, role: str) -> pl.DataFrame:
    """A gauge role's level at each instant (t_s, value), summed over its series."""
    rows = role_rows(signals, role)
    if rows.is_empty():
        return pl.DataFrame(schema={"t_s": pl.Float64, "value": pl.Float64})
    return rows.group_by("t_s").agg(pl.col("value").sum()).sort("t_s")


def counter_steps(signals: pl.DataFrame, role: str) -> pl.DataFrame:
    """A counter role's increase between consecutive samples of each series (t_s of the
    later sample, dt_s, delta, series); a drop is a restart, so the new value is the increase."""
    rows = role_rows(signals, role).sort("series", "t_s")
    if rows.is_empty():
        return pl.DataFrame(schema={"t_s": pl.Float64, "dt_s": pl.Float64, "delta": pl.Float64,
                                    "series": pl.String})
    d = pl.col("value").diff().over("series")
    return (rows.with_columns(pl.when(d < 0).then(pl.col("value")).otherwise(d).alias("delta"),
                              pl.col("t_s").diff().over("series").alias("dt_s"))
            .filter(pl.col("delta").is_not_null())
            .select("t_s", "dt_s", "delta", "series"))


def increase(signals: pl.DataFrame, role: str, start_s: float = -math.inf, end_s: float = math.inf) -> float | None:
    """How much a counter role grew between start_s and end_s (steps whose both samples
    fall inside), summed over its series; None when no series has two samples inside."""
    rows = role_rows(signals, role).filter(pl.col("t_s").is_between(start_s, end_s))
    steps = counter_steps(rows, role)
    if steps.is_empty():
        return None
    return float(steps["delta"].sum())


def covered_s(signals: pl.DataFrame, role: str, start_s: float = -math.inf, end_s: float = math.inf) -> float:
    """Seconds between a counter role's first and last sample inside the window (the span its
    increase covers; of the longest series when there are several)."""
    rows = role_rows(signals, role).filter(pl.col("t_s").is_between(start_s, end_s))
    if rows.is_empty():
        return 0.0
    spans = rows.group_by("series").agg((pl.col("t_s").max() - pl.col("t_s").min()).alias("span"))
    return float(spans["span"].to_numpy().max())


def label_values(series: str) -> str:
    """A series' labels as text for a legend: ``timeout`` for one label, ``code=500, route=/a``
    for several, ``all`` for none."""
    labels = json.loads(series) if series else {}
    if len(labels) == 1:
        return str(next(iter(labels.values())))
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "all"
