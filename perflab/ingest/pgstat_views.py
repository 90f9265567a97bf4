"""The pg_stat views perflab reads: one canonical schema per view, and how the column sets
of PostgreSQL 12 to 18 map onto it.

A snapshot is recognised by its column set alone (:func:`identify`): renamed columns get
their newest name (``total_time`` → ``total_exec_time`` in 13, ``blk_read_time`` →
``shared_blk_read_time`` in 17), columns a version lacks are NULL, and the columns present
tell which PostgreSQL versions could have written the file (:func:`pg_columns_version`).
The tables are declared in perflab.schema (PG_DDL); readers of files and of live servers
both start from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# The oldest column sets the views are mapped from (pg_stat_statements 1.7 of PG 12).
OLDEST_PG = 12

_B, _D, _T, _V, _I, _BOOL = "BIGINT", "DOUBLE", "TIMESTAMPTZ", "VARCHAR", "INTEGER", "BOOLEAN"


@dataclass(frozen=True)
class View:
    """One pg_stat view: its table, its canonical columns and how versions name them."""

    name: str
    table: str
    columns: tuple[tuple[str, str], ...]  # canonical name, DuckDB type; the table's order
    required: frozenset[str]  # canonical names every supported version (12-18) has
    renames: tuple[tuple[str, str], ...] = ()  # (name in an older/newer version, canonical name)
    # (column as a file names it, first PG version that has it, last one or None):
    # the column set then narrows down which versions could have written the file.
    versions: tuple[tuple[str, int, int | None], ...] = ()
    live_from: str = ""  # the FROM clause of the live snapshot query

    @property
    def types(self) -> dict[str, str]:
        return dict(self.columns)


def _cols(spec: str) -> tuple[tuple[str, str], ...]:
    out = []
    for item in spec.split(","):
        name, _, typ = item.strip().partition(" ")
        out.append((name, typ.strip()))
    return tuple(out)


PGSS = View(
    name="pg_stat_statements",
    table="pg_stat_statements_snap",
    columns=_cols(
        f"userid {_B}, dbid {_B}, toplevel {_BOOL}, queryid {_B}, query {_V}, "
        f"plans {_B}, total_plan_time {_D}, min_plan_time {_D}, max_plan_time {_D}, "
        f"mean_plan_time {_D}, stddev_plan_time {_D}, calls {_B}, total_exec_time {_D}, "
        f"min_exec_time {_D}, max_exec_time {_D}, mean_exec_time {_D}, stddev_exec_time {_D}, "
        f"rows {_B}, shared_blks_hit {_B}, shared_blks_read {_B}, shared_blks_dirtied {_B}, "
        f"shared_blks_written {_B}, local_blks_hit {_B}, local_blks_read {_B}, "
        f"local_blks_dirtied {_B}, local_blks_written {_B}, temp_blks_read {_B}, "
        f"temp_blks_written {_B}, shared_blk_read_time {_D}, shared_blk_write_time {_D}, "
        f"local_blk_read_time {_D}, local_blk_write_time {_D}, temp_blk_read_time {_D}, "
        f"temp_blk_write_time {_D}, wal_records {_B}, wal_fpi {_B}, wal_bytes {_B}, "
        f"wal_buffers_full {_B}, jit_functions {_B}, jit_generation_time {_D}, "
        f"jit_inlining_count {_B}, jit_inlining_time {_D}, jit_optimization_count {_B}, "
        f"jit_optimization_time {_D}, jit_emission_count {_B}, jit_emission_time {_D}, "
        f"jit_deform_count {_B}, jit_deform_time {_D}, parallel_workers_to_launch {_B}, "
        f"parallel_workers_launched {_B}, stats_since {_T}, minmax_stats_since {_T}"
    ),
    required=frozenset(
        [
            "userid", "dbid", "queryid", "query", "calls", "total_exec_time", "min_exec_time", "max_exec_time",
            "mean_exec_time", "stddev_exec_time", "rows", "shared_blks_hit", "shared_blks_read", "shared_blks_dirtied",
            "shared_blks_written", "local_blks_hit", "local_blks_read", "temp_blks_read", "temp_blks_written",
        ]
    ),
    renames=(
        ("total_time", "total_exec_time"),
        ("min_time", "min_exec_time"),
        ("max_time", "max_exec_time"),
        ("mean_time", "mean_exec_time"),
        ("stddev_time", "stddev_exec_time"),
        ("blk_read_time", "shared_blk_read_time"),
        ("blk_write_time", "shared_blk_write_time"),
    ),
    versions=(
        ("total_time", 12, 12),
        ("total_exec_time", 13, None),
        ("plans", 13, None),
        ("wal_records", 13, None),
        ("toplevel", 14, None),
        ("temp_blk_read_time", 15, None),
        ("jit_functions", 15, None),
        ("blk_read_time", 12, 16),
        ("shared_blk_read_time", 17, None),
        ("local_blk_read_time", 17, None),
        ("jit_deform_count", 17, None),
        ("stats_since", 17, None),
        ("wal_buffers_full", 18, None),
        ("parallel_workers_to_launch", 18, None),
    ),
    live_from="pg_stat_statements",
)

PGSS_INFO = View(
    name="pg_stat_statements_info",
    table="pg_stat_statements_info_snap",
    columns=_cols(f"dealloc {_B}, stats_reset {_T}"),
    required=frozenset({"dealloc", "stats_reset"}),
    versions=(("dealloc", 14, None),),
    live_from="pg_stat_statements_info",
)

USER_TABLES = View(
    name="pg_stat_user_tables",
    table="pg_stat_user_tables_snap",
    columns=_cols(
        f"relid {_B}, schemaname {_V}, relname {_V}, seq_scan {_B}, last_seq_scan {_T}, "
        f"seq_tup_read {_B}, idx_scan {_B}, last_idx_scan {_T}, idx_tup_fetch {_B}, "
        f"n_tup_ins {_B}, n_tup_upd {_B}, n_tup_del {_B}, n_tup_hot_upd {_B}, "
        f"n_tup_newpage_upd {_B}, n_live_tup {_B}, n_dead_tup {_B}, n_mod_since_analyze {_B}, "
        f"n_ins_since_vacuum {_B}, last_vacuum {_T}, last_autovacuum {_T}, last_analyze {_T}, "
        f"last_autoanalyze {_T}, vacuum_count {_B}, autovacuum_count {_B}, analyze_count {_B}, "
        f"autoanalyze_count {_B}, total_vacuum_time {_D}, total_autovacuum_time {_D}, "
        f"total_analyze_time {_D}, total_autoanalyze_time {_D}"
    ),
    required=frozenset(
        [
            "relid", "schemaname", "relname", "seq_scan", "seq_tup_read", "idx_scan", "idx_tup_fetch", "n_tup_ins",
            "n_tup_upd", "n_tup_del", "n_tup_hot_upd", "n_live_tup", "n_dead_tup", "n_mod_since_analyze", "last_vacuum",
            "last_autovacuum", "last_analyze", "last_autoanalyze", "vacuum_count", "autovacuum_count", "analyze_count",
            "autoanalyze_count",
        ]
    ),
    versions=(
        ("n_ins_since_vacuum", 13, None),
        ("last_seq_scan", 16, None),
        ("n_tup_newpage_upd", 16, None),
        ("total_vacuum_time", 18, None),
    ),
    live_from="pg_stat_user_tables",
)

USER_INDEXES = View(
    name="pg_stat_user_indexes",
    table="pg_stat_user_indexes_snap",
    columns=_cols(
        f"relid {_B}, indexrelid {_B}, schemaname {_V}, relname {_V}, indexrelname {_V}, "
        f"idx_scan {_B}, last_idx_scan {_T}, idx_tup_read {_B}, idx_tup_fetch {_B}"
    ),
    required=frozenset(
        ["relid", "indexrelid", "schemaname", "relname", "indexrelname", "idx_scan", "idx_tup_read", "idx_tup_fetch"]
    ),
    versions=(("last_idx_scan", 16, None),),
    live_from="pg_stat_user_indexes",
)

DATABASE = View(
    name="pg_stat_database",
    table="pg_stat_database_snap",
    columns=_cols(
        f"datid {_B}, datname {_V}, numbackends {_I}, xact_commit {_B}, xact_rollback {_B}, "
        f"blks_read {_B}, blks_hit {_B}, tup_returned {_B}, tup_fetched {_B}, tup_inserted {_B}, "
        f"tup_updated {_B}, tup_deleted {_B}, conflicts {_B}, temp_files {_B}, temp_bytes {_B}, "
        f"deadlocks {_B}, checksum_failures {_B}, checksum_last_failure {_T}, "
        f"blk_read_time {_D}, blk_write_time {_D}, session_time {_D}, active_time {_D}, "
        f"idle_in_transaction_time {_D}, sessions {_B}, sessions_abandoned {_B}, "
        f"sessions_fatal {_B}, sessions_killed {_B}, parallel_workers_to_launch {_B}, "
        f"parallel_workers_launched {_B}, stats_reset {_T}"
    ),
    required=frozenset(
        [
            "datid", "datname", "numbackends", "xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_returned",
            "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted", "conflicts", "temp_files", "temp_bytes",
            "deadlocks", "blk_read_time", "blk_write_time", "stats_reset",
        ]
    ),
    versions=(
        ("checksum_failures", 12, None),
        ("session_time", 14, None),
        ("sessions", 14, None),
        ("parallel_workers_to_launch", 18, None),
    ),
    live_from="pg_stat_database",
)

ACTIVITY = View(
    name="pg_stat_activity",
    table="pg_stat_activity_samples",
    columns=_cols(
        f"sample_no {_I}, sample_ts {_T}, datid {_B}, datname {_V}, pid {_I}, leader_pid {_I}, "
        f"usesysid {_B}, usename {_V}, application_name {_V}, client_addr {_V}, "
        f"client_hostname {_V}, client_port {_I}, backend_start {_T}, xact_start {_T}, "
        f"query_start {_T}, state_change {_T}, wait_event_type {_V}, wait_event {_V}, "
        f"state {_V}, backend_xid {_B}, backend_xmin {_B}, query_id {_B}, query {_V}, "
        f"backend_type {_V}"
    ),
    required=frozenset(
        [
            "datid", "datname", "pid", "usesysid", "usename", "application_name", "client_addr", "client_hostname",
            "client_port", "backend_start", "xact_start", "query_start", "state_change", "wait_event_type",
            "wait_event", "state", "backend_xid", "backend_xmin", "query", "backend_type",
        ]
    ),
    versions=(("leader_pid", 13, None), ("query_id", 14, None)),
    # One live sample; the files hold many, numbered by the sampler.
    live_from="(SELECT 1 AS sample_no, clock_timestamp() AS sample_ts, a.* FROM pg_stat_activity a)",
)

VIEWS: dict[str, View] = {v.name: v for v in (PGSS, PGSS_INFO, USER_TABLES, USER_INDEXES, DATABASE, ACTIVITY)}
# Not a PostgreSQL column: a snapshot file may carry its own time (e.g. `now() AS snapshot_at`).
SNAPSHOT_COLUMN = "snapshot_at"


@dataclass(frozen=True)
class Match:
    view: View
    source_to_canonical: dict[str, str]  # file column -> canonical column (known ones only)
    ignored: tuple[str, ...]  # file columns no supported version has (a newer PostgreSQL?)


def identify(columns: Sequence[str]) -> Match | None:
    """The one view whose required columns the file has (after renames), or None."""
    if len(set(columns)) != len(columns):
        return None
    found: list[Match] = []
    for view in VIEWS.values():
        renames = dict(view.renames)
        canon = [renames.get(c, c) for c in columns]
        if len(set(canon)) != len(canon) or not view.required <= set(canon):
            continue
        types = view.types
        mapping = {c: k for c, k in zip(columns, canon, strict=True) if k in types}
        if SNAPSHOT_COLUMN in columns:
            mapping[SNAPSHOT_COLUMN] = SNAPSHOT_COLUMN
        ignored = tuple(c for c in columns if c not in mapping)
        found.append(Match(view, mapping, ignored))
    return found[0] if len(found) == 1 else None


def pg_columns_version(view: View, columns: Sequence[str]) -> str:
    """Which PostgreSQL versions write this column set: '15-16', '17', '14+'; 'mixed' if none."""
    lo, hi = OLDEST_PG, None
    present = set(columns)
    for col, first, last in view.versions:
        if col in present:
            lo = max(lo, first)
            if last is not None:
                hi = last if hi is None else min(hi, last)
        elif last is not None and first <= OLDEST_PG:
            lo = max(lo, last + 1)  # a column that was dropped (renamed): a later version
        elif last is None:
            hi = first - 1 if hi is None else min(hi, first - 1)  # a column not added yet
    if hi is not None and lo > hi:
        return "mixed"
    if hi is None:
        return f"{lo}+"
    return str(lo) if lo == hi else f"{lo}-{hi}"
