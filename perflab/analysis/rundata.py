"""A run's data as plain polars frames: what the signatures (pure functions) judge.

``perflab.analysis.run.Run`` builds these once per run, with the builders below, and
hands them to the signatures as a ``RunData``; tests build a ``RunData`` by hand.
Each frame has a fixed schema (the ``*_SCHEMA`` dicts below) and is empty, never
missing, when the run has no such data: a lab run has all of them; a group a user
made with ``perflab ingest --run`` has whatever files they brought.

Every time is ``t_s``: seconds since the Unix epoch (float64), so k6 points, resource
samples, /debug/vars samples and pg_stat_activity samples share one axis.

    frame         rows                                   from
    requests      one per HTTP request                   k6 http_req_duration (+ its tags)
    k6            dropped_iterations, vus, vus_max       k6 points
    resources     one per process role per sample        the lab sampler (resource_samples)
    signals       one per role, series and sample        the service's metrics by role (analysis.roles)
    pg_activity   one per client backend per sample      pg_stat_activity samples; ``sampler``
                                                         marks the sampler's own backend (in
                                                         every sample, so it enumerates them)
    profiles      one Profile per pprof/cProfile source  with hot-frame categories (CPU)
                                                         or stacks (block/mutex profiles)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from perflab.analysis.categories import categories
from perflab.analysis.database import pg_top_detail
from perflab.analysis.profiles import stacks, top
from perflab.analysis.roles import SIGNALS_SCHEMA, RoleSource
from perflab.store import Store
from perflab.vocab import CPROFILE, PPROF, PPROF_SHAPED_KINDS

REQUESTS_SCHEMA: dict[str, Any] = {
    "t_s": pl.Float64, "duration_ms": pl.Float64, "status": pl.Int64, "error_code": pl.String,
    "failed": pl.Boolean, "endpoint": pl.String,
}
K6_SCHEMA: dict[str, Any] = {"t_s": pl.Float64, "metric": pl.String, "value": pl.Float64}
RESOURCES_SCHEMA: dict[str, Any] = {
    "t_s": pl.Float64, "role": pl.String, "cpu_pct": pl.Float64, "rss_bytes": pl.Float64, "threads": pl.Float64,
}
PG_ACTIVITY_SCHEMA: dict[str, Any] = {
    "sample_no": pl.Int64, "t_s": pl.Float64, "state": pl.String, "wait_event_type": pl.String,
    "wait_event": pl.String, "sampler": pl.Boolean,
}
STACKS_SCHEMA: dict[str, Any] = {"frames": pl.List(pl.String), "value": pl.Int64}

# Functions kept per CPU profile by cum: enough to find the library a hot frame sits
# under (a PBKDF2 loop is a few frames above the SHA-256 block function).
TOP_CUM = 60
# The snapshot table of each pg_stat view a run pairs before and after.
SNAPSHOT_TABLES = {"pg_stat_statements": "pg_stat_statements_snap", "pg_stat_user_tables": "pg_stat_user_tables_snap",
                   "pg_stat_user_indexes": "pg_stat_user_indexes_snap", "pg_stat_database": "pg_stat_database_snap"}
# The k6 metrics besides the requests that a diagnosis reads.
K6_METRICS = ("dropped_iterations", "vus", "vus_max")
# The lab's own pg_stat_activity sampler is a client backend too; it must not count as load.
PG_SAMPLER_APPLICATION = "perflab-sampler"


class SnapshotSource(Protocol):
    @property
    def source_id(self) -> int: ...
    @property
    def path(self) -> str: ...


@dataclass
class Profile:
    """One profile of the run, reduced to what the signatures read.

    ``kind`` is what the sample types say it is: ``cpu`` (cpu/nanoseconds, or a cProfile
    dump), ``contention`` (Go block or mutex: contentions/count + delay/nanoseconds),
    ``heap`` (inuse_space/alloc_space), ``goroutine`` or ``other``. ``samples`` is the
    number of samples taken (the samples/count type's sum when there is one: a sampler
    that aggregates identical stacks writes few records for many samples).
    """

    source_id: int
    name: str
    format: str
    kind: str
    sample_type: str | None
    unit: str | None
    total: float
    samples: int
    time_s: float | None = None
    duration_s: float | None = None
    categories: dict[str, Any] | None = None  # perflab.analysis.categories' answer (cpu profiles)
    # (function, cum share of the total) of the TOP_CUM functions with the most cum (cpu
    # profiles): which hashing or serialization code the hot frames sit under.
    cum_shares: list[tuple[str, float]] = field(default_factory=list)
    stacks: pl.DataFrame | None = None  # frames (leaf first) and value (contention profiles)


@dataclass
class RunData:
    run_id: str
    requests: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REQUESTS_SCHEMA))
    k6: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=K6_SCHEMA))
    resources: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=RESOURCES_SCHEMA))
    signals: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SIGNALS_SCHEMA))
    # Which metric fed each role (None: the run has none): what a missing-data line names.
    role_sources: dict[str, RoleSource | None] = field(default_factory=dict)
    pg_activity: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=PG_ACTIVITY_SCHEMA))
    pg_statement_snapshots: int = 0  # pg_stat_statements snapshots in the run (calls need two)
    pg_statement_calls: float | None = None  # pg_stat_statements calls, after − before
    pg_reset: bool = False
    profiles: list[Profile] = field(default_factory=list)
    cpu_count: int | None = None


def _frame(df: pl.DataFrame, schema: dict[str, Any]) -> pl.DataFrame:
    if df.is_empty():
        return pl.DataFrame(schema=schema)
    return df.select([pl.col(c).cast(t) for c, t in schema.items()])


def requests_frame(store: Store, k6_sources: list[int]) -> pl.DataFrame:
    """One row per HTTP request of the k6 sources (k6's http_req_duration and its tags)."""
    if not k6_sources:
        return pl.DataFrame(schema=REQUESTS_SCHEMA)
    req = store.sql(
        """SELECT time_ns / 1e9 AS t_s, value AS duration_ms,
                  TRY_CAST(json_extract_string(tags, '$.status') AS BIGINT) AS status,
                  json_extract_string(tags, '$.error_code') AS error_code,
                  json_extract_string(tags, '$.expected_response') AS expected,
                  json_extract_string(tags, '$.endpoint') AS endpoint
           FROM k6_points WHERE source_id IN ? AND metric = 'http_req_duration' AND time_ns IS NOT NULL
           ORDER BY time_ns, seq""", [k6_sources])
    if req.is_empty():
        return pl.DataFrame(schema=REQUESTS_SCHEMA)
    # k6's own definition of a failed request (expected_response), else the status code.
    failed = (pl.when(pl.col("expected").is_not_null()).then(pl.col("expected") == "false")
              .otherwise((pl.col("status") >= 400) | (pl.col("status") == 0)
                         | pl.col("error_code").is_not_null()))
    return _frame(req.with_columns(failed.fill_null(False).alias("failed")), REQUESTS_SCHEMA)


def k6_frame(store: Store, k6_sources: list[int]) -> pl.DataFrame:
    """k6's dropped_iterations, vus and vus_max points."""
    if not k6_sources:
        return pl.DataFrame(schema=K6_SCHEMA)
    return _frame(store.sql(
        "SELECT time_ns / 1e9 AS t_s, metric, value FROM k6_points "
        "WHERE source_id IN ? AND metric IN ? AND time_ns IS NOT NULL ORDER BY time_ns, seq",
        [k6_sources, list(K6_METRICS)]), K6_SCHEMA)


def resources_frame(store: Store, run_id: str) -> pl.DataFrame:
    return _frame(store.sql(
        "SELECT epoch_us(t) / 1e6 AS t_s, role, cpu_pct, rss_bytes::DOUBLE AS rss_bytes, "
        "threads::DOUBLE AS threads FROM resource_samples WHERE run_id = ? ORDER BY t, role", [run_id]),
        RESOURCES_SCHEMA)


def activity_frame(store: Store, activity_sources: list[int]) -> pl.DataFrame:
    """pg_stat_activity's client backends per sample (the lab's own sampler marked)."""
    if not activity_sources:
        return pl.DataFrame(schema=PG_ACTIVITY_SCHEMA)
    return _frame(store.sql(
        """SELECT (source_id * 1000000 + sample_no)::BIGINT AS sample_no,
                  epoch_us(coalesce(sample_ts, snapshot_at)) / 1e6 AS t_s,
                  state, wait_event_type, wait_event,
                  coalesce(application_name, '') = ? OR coalesce(query, '') ILIKE '%pg_stat_activity%'
                    AS sampler
           FROM pg_stat_activity_samples
           WHERE source_id IN ? AND backend_type = 'client backend'
           ORDER BY source_id, sample_no, pid""", [PG_SAMPLER_APPLICATION, activity_sources]), PG_ACTIVITY_SCHEMA)


def statement_calls(store: Store, before: int, after: int) -> tuple[float, bool]:
    """(pg_stat_statements calls after − before, whether the statistics were reset)."""
    frame, reset = pg_top_detail(store, before, after)
    return (float(frame["calls"].sum()) if frame.height else 0.0), reset


def before_after(store: Store, snaps: Sequence[SnapshotSource], view: str) -> tuple[int, int]:
    """The first and last of a view's snapshots: by clock when known, else by name, else by id."""
    ids = [s.source_id for s in snaps]
    at = dict(store.con.execute(
        f"SELECT source_id, min(snapshot_at) FROM {SNAPSHOT_TABLES[view]} WHERE source_id IN ? GROUP BY 1",
        [ids]).fetchall())

    def order(s: SnapshotSource) -> tuple[int, float, int, int]:
        name = Path(s.path).name.lower()
        by_name = 0 if "before" in name else 2 if "after" in name else 1
        when = at.get(s.source_id)
        return (0 if when is not None else 1, when.timestamp() if when is not None else 0.0,
                by_name, s.source_id)

    ordered = sorted(snaps, key=order)
    return ordered[0].source_id, ordered[-1].source_id


def _profile_kind(types: list[str]) -> tuple[str, str | None]:
    """(kind, the sample type a diagnosis reads) from a profile's sample type names."""
    if "cpu" in types:
        return "cpu", "cpu"
    if "delay" in types or "contentions" in types:
        return "contention", "delay" if "delay" in types else "contentions"
    for t in ("inuse_space", "space", "alloc_space"):
        if t in types:
            return "heap", t
    if "goroutine" in types:
        return "goroutine", "goroutine"
    return "other", None


def profile(store: Store, sid: int, kind: str, name: str) -> Profile | None:
    """One source as a Profile the signatures read, or None when it is not a profile."""
    if kind == CPROFILE:
        # A deterministic profiler has no samples; its calls are what it counted.
        total = store.con.execute(
            "SELECT coalesce(sum(tottime), 0), coalesce(sum(calls), 0) FROM cprofile_functions "
            "WHERE source_id = ?", [sid]).fetchall()[0]
        prof = Profile(sid, name, "cprofile", "cpu", "cpu", "seconds", float(total[0]), int(total[1]))
    elif kind in PPROF_SHAPED_KINDS:  # profile.proto, collapsed stacks, speedscope: the pprof tables
        types = store.con.execute(
            "SELECT type, unit FROM pprof_sample_types WHERE source_id = ? ORDER BY idx", [sid]).fetchall()
        names = [t for t, _ in types]
        pkind, stype = _profile_kind(names)
        head = store.sql("SELECT time_nanos, duration_nanos, num_samples FROM pprof_profiles "
                         "WHERE source_id = ?", [sid]).to_dicts()[0]
        # pprof's total of a type: the sum of |value| (what `go tool pprof` calls "of X total").
        sums = store.con.execute(
            "SELECT " + ", ".join(f"coalesce(sum(abs(value[{i + 1}])), 0)" for i in range(len(types)))
            + " FROM pprof_samples WHERE source_id = ?", [sid]).fetchall()[0] if types else ()
        by_type = dict(zip(names, sums, strict=True))
        samples = int(by_type["samples"]) if "samples" in by_type else int(head["num_samples"] or 0)
        prof = Profile(
            sid, name, PPROF, pkind, stype, dict(types).get(stype) if stype else None,
            float(by_type.get(stype, 0)) if stype else 0.0, samples,
            time_s=head["time_nanos"] / 1e9 if head["time_nanos"] else None,
            duration_s=head["duration_nanos"] / 1e9 if head["duration_nanos"] else None,
        )
    else:
        return None
    if prof.kind == "cpu":
        stype = prof.sample_type if prof.format == PPROF else None
        prof.categories = categories(store, sid, sample_type=stype)
        rows = sorted(top(store, sid, sample_type=stype, nodefraction=0)["rows"],
                      key=lambda r: (-r["cum"], r["name"]))[:TOP_CUM]
        prof.cum_shares = [(str(r["name"]), float(r["cum_pct"]) / 100.0) for r in rows]
    elif prof.kind == "contention":
        prof.stacks = _frame(stacks(store, sid, sample_type=prof.sample_type), STACKS_SCHEMA)
    return prof
