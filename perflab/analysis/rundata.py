"""A run's data, gathered from the store into plain polars frames: the I/O edge of the doctor.

``gather(store, run_id)`` reads everything a diagnosis may use, once, and hands it to
the signatures (perflab.analysis.signatures), which are pure functions of these frames.
Each frame has a fixed schema (the ``*_SCHEMA`` dicts below) and is empty, never
missing, when the run has no such data: a lab run has all of them; a group a user
made with ``perflab ingest --run`` has whatever files they brought.

Every time is ``t_s``: seconds since the Unix epoch (float64), so k6 points, resource
samples, /debug/vars samples and pg_stat_activity samples share one axis.

    frame         rows                                   from
    requests      one per HTTP request                   k6 http_req_duration (+ its tags)
    k6            dropped_iterations, vus, vus_max       k6 points
    resources     one per process role per sample        the lab sampler (resource_samples)
    vars          one per /debug/vars key per sample     the service (service_vars)
    pg_activity   one per client backend per sample      pg_stat_activity samples; ``sampler``
                                                         marks the sampler's own backend (in
                                                         every sample, so it enumerates them)
    profiles      one Profile per pprof/cProfile source  with hot-frame categories (CPU)
                                                         or stacks (block/mutex profiles)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from perflab.errors import PerflabError
from perflab.store import Store

REQUESTS_SCHEMA: dict[str, Any] = {
    "t_s": pl.Float64, "duration_ms": pl.Float64, "status": pl.Int64, "error_code": pl.String,
    "failed": pl.Boolean, "endpoint": pl.String,
}
K6_SCHEMA: dict[str, Any] = {"t_s": pl.Float64, "metric": pl.String, "value": pl.Float64}
RESOURCES_SCHEMA: dict[str, Any] = {
    "t_s": pl.Float64, "role": pl.String, "cpu_pct": pl.Float64, "rss_bytes": pl.Float64, "threads": pl.Float64,
}
VARS_SCHEMA: dict[str, Any] = {"t_s": pl.Float64, "key": pl.String, "value": pl.Float64}
PG_ACTIVITY_SCHEMA: dict[str, Any] = {
    "sample_no": pl.Int64, "t_s": pl.Float64, "state": pl.String, "wait_event_type": pl.String,
    "wait_event": pl.String, "sampler": pl.Boolean,
}
STACKS_SCHEMA: dict[str, Any] = {"frames": pl.List(pl.String), "value": pl.Int64}

# The k6 metrics besides the requests that a diagnosis reads.
K6_METRICS = ("dropped_iterations", "vus", "vus_max")
# The lab's own pg_stat_activity sampler is a client backend too; it must not count as load.
PG_SAMPLER_APPLICATION = "perflab-sampler"


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
    stacks: pl.DataFrame | None = None  # frames (leaf first) and value (contention profiles)


@dataclass
class RunData:
    run_id: str
    requests: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REQUESTS_SCHEMA))
    k6: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=K6_SCHEMA))
    resources: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=RESOURCES_SCHEMA))
    vars: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=VARS_SCHEMA))
    pg_activity: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=PG_ACTIVITY_SCHEMA))
    pg_statement_snapshots: int = 0  # pg_stat_statements snapshots in the run (calls need two)
    pg_statement_calls: float | None = None  # pg_stat_statements calls, after − before
    pg_reset: bool = False
    profiles: list[Profile] = field(default_factory=list)
    cpu_count: int | None = None


def gather(store: Store, run_id: str) -> RunData:
    """Everything the signatures may use about ``run_id`` (a lab run or a user's group)."""
    if not store.sql("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).height:
        known = store.sql("SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 3")["run_id"].to_list()
        hint = f" (recent: {', '.join(known)})" if known else " (the store has no runs)"
        raise PerflabError(f"no run {run_id!r} in {store.path}{hint}")
    sources = store.sql("SELECT source_id, kind, path, meta FROM sources WHERE run_id = ? ORDER BY source_id",
                        [run_id]).to_dicts()
    data = RunData(run_id=run_id)
    _k6(store, data, sources)
    data.resources = _frame(store.sql(
        "SELECT epoch_us(t) / 1e6 AS t_s, role, cpu_pct, rss_bytes::DOUBLE AS rss_bytes, "
        "threads::DOUBLE AS threads FROM resource_samples WHERE run_id = ? ORDER BY t, role", [run_id]),
        RESOURCES_SCHEMA)
    data.vars = _frame(store.sql(
        "SELECT epoch_us(t) / 1e6 AS t_s, key, value FROM service_vars WHERE run_id = ? "
        "AND (key LIKE 'gauges.%' OR key LIKE 'counters.%' OR key LIKE 'settings.pool%') ORDER BY t, key",
        [run_id]), VARS_SCHEMA)
    for s in sources:
        meta = json.loads(s["meta"]) if s["meta"] else {}
        if s["kind"] == "resources" and meta.get("cpu_count"):
            data.cpu_count = int(meta["cpu_count"])
    _pg(store, data, sources)
    _profiles(store, data, sources)
    return data


def _frame(df: pl.DataFrame, schema: dict[str, Any]) -> pl.DataFrame:
    if df.is_empty():
        return pl.DataFrame(schema=schema)
    return df.select([pl.col(c).cast(t) for c, t in schema.items()])


def _k6(store: Store, data: RunData, sources: list[dict[str, Any]]) -> None:
    from perflab.ingest.k6 import CSV_KIND, KIND

    # The NDJSON and the CSV of one run hold the same samples: use one kind, all its files
    # (k6 execution segments of one test are several files of one run).
    sids = [s["source_id"] for s in sources if s["kind"] == KIND] or \
           [s["source_id"] for s in sources if s["kind"] == CSV_KIND]
    if not sids:
        return
    req = store.sql(
        """SELECT time_ns / 1e9 AS t_s, value AS duration_ms,
                  TRY_CAST(json_extract_string(tags, '$.status') AS BIGINT) AS status,
                  json_extract_string(tags, '$.error_code') AS error_code,
                  json_extract_string(tags, '$.expected_response') AS expected,
                  json_extract_string(tags, '$.endpoint') AS endpoint
           FROM k6_points WHERE source_id IN ? AND metric = 'http_req_duration' AND time_ns IS NOT NULL
           ORDER BY time_ns, seq""", [sids])
    if not req.is_empty():
        # k6's own definition of a failed request (expected_response), else the status code.
        failed = (pl.when(pl.col("expected").is_not_null()).then(pl.col("expected") == "false")
                  .otherwise((pl.col("status") >= 400) | (pl.col("status") == 0)
                             | pl.col("error_code").is_not_null()))
        data.requests = _frame(req.with_columns(failed.fill_null(False).alias("failed")), REQUESTS_SCHEMA)
    data.k6 = _frame(store.sql(
        "SELECT time_ns / 1e9 AS t_s, metric, value FROM k6_points "
        "WHERE source_id IN ? AND metric IN ? AND time_ns IS NOT NULL ORDER BY time_ns, seq",
        [sids, list(K6_METRICS)]), K6_SCHEMA)


def _pg(store: Store, data: RunData, sources: list[dict[str, Any]]) -> None:
    from perflab.analysis.database import KIND

    views: dict[str, list[dict[str, Any]]] = {}
    for s in sources:
        if s["kind"] == KIND:
            view = (json.loads(s["meta"]) if s["meta"] else {}).get("view")
            views.setdefault(view, []).append(s)
    activity = [s["source_id"] for s in views.get("pg_stat_activity", [])]
    if activity:
        data.pg_activity = _frame(store.sql(
            """SELECT (source_id * 1000000 + sample_no)::BIGINT AS sample_no,
                      epoch_us(coalesce(sample_ts, snapshot_at)) / 1e6 AS t_s,
                      state, wait_event_type, wait_event,
                      coalesce(application_name, '') = ? OR coalesce(query, '') ILIKE '%pg_stat_activity%'
                        AS sampler
               FROM pg_stat_activity_samples
               WHERE source_id IN ? AND backend_type = 'client backend'
               ORDER BY source_id, sample_no, pid""", [PG_SAMPLER_APPLICATION, activity]), PG_ACTIVITY_SCHEMA)
    snaps = views.get("pg_stat_statements", [])
    data.pg_statement_snapshots = len(snaps)
    if len(snaps) >= 2:
        before, after = _before_after(store, snaps)
        from perflab.analysis.database import pg_top_detail

        frame, reset = pg_top_detail(store, before, after)
        data.pg_statement_calls = float(frame["calls"].sum()) if frame.height else 0.0
        data.pg_reset = reset


def _before_after(store: Store, snaps: list[dict[str, Any]]) -> tuple[int, int]:
    """The first and last pg_stat_statements snapshot: by clock when known, else by name, else by id."""
    ids = [s["source_id"] for s in snaps]
    at = dict(store.con.execute(
        "SELECT source_id, min(snapshot_at) FROM pg_stat_statements_snap WHERE source_id IN ? GROUP BY 1",
        [ids]).fetchall())

    def order(s: dict[str, Any]) -> tuple[int, Any, int, int]:
        name = Path(s["path"]).name.lower()
        by_name = 0 if "before" in name else 2 if "after" in name else 1
        when = at.get(s["source_id"])
        return (0 if when is not None else 1, when.timestamp() if when is not None else 0.0,
                by_name, s["source_id"])

    ordered = sorted(snaps, key=order)
    return int(ordered[0]["source_id"]), int(ordered[-1]["source_id"])


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


def _profiles(store: Store, data: RunData, sources: list[dict[str, Any]]) -> None:
    for s in sources:
        sid = int(s["source_id"])
        name = Path(s["path"]).name
        if s["kind"] == "cprofile":
            # A deterministic profiler has no samples; its calls are what it counted.
            total = store.con.execute(
                "SELECT coalesce(sum(tottime), 0), coalesce(sum(calls), 0) FROM cprofile_functions "
                "WHERE source_id = ?", [sid]).fetchall()[0]
            prof = Profile(sid, name, "cprofile", "cpu", "cpu", "seconds", float(total[0]), int(total[1]))
        elif s["kind"] == "pprof":
            types = store.con.execute(
                "SELECT type, unit FROM pprof_sample_types WHERE source_id = ? ORDER BY idx", [sid]).fetchall()
            names = [t for t, _ in types]
            kind, stype = _profile_kind(names)
            head = store.sql("SELECT time_nanos, duration_nanos, num_samples FROM pprof_profiles "
                             "WHERE source_id = ?", [sid]).to_dicts()[0]
            # pprof's total of a type: the sum of |value| (what `go tool pprof` calls "of X total").
            sums = store.con.execute(
                "SELECT " + ", ".join(f"coalesce(sum(abs(value[{i + 1}])), 0)" for i in range(len(types)))
                + " FROM pprof_samples WHERE source_id = ?", [sid]).fetchall()[0] if types else ()
            by_type = dict(zip(names, sums))
            samples = int(by_type["samples"]) if "samples" in by_type else int(head["num_samples"] or 0)
            prof = Profile(
                sid, name, "pprof", kind, stype, dict(types).get(stype) if stype else None,
                float(by_type.get(stype, 0)) if stype else 0.0, samples,
                time_s=head["time_nanos"] / 1e9 if head["time_nanos"] else None,
                duration_s=head["duration_nanos"] / 1e9 if head["duration_nanos"] else None,
            )
        else:
            continue
        if prof.kind == "cpu":
            prof.categories = _categories(store, sid, prof.sample_type if prof.format == "pprof" else None)
        elif prof.kind == "contention":
            from perflab.analysis.profiles import stacks

            prof.stacks = _frame(stacks(store, sid, sample_type=prof.sample_type), STACKS_SCHEMA)
        data.profiles.append(prof)


def _categories(store: Store, sid: int, sample_type: str | None) -> dict[str, Any] | None:
    try:
        # Imported here: the hot-frame categories are a separate analysis the doctor cites
        # when it is there; without it the CPU profile's shares are unknown (the signatures
        # then say "hot-frame categories of FILE" are missing).
        from perflab.analysis.categories import categories
    except ImportError:
        return None
    return categories(store, sid, sample_type=sample_type)
