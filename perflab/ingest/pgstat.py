"""PostgreSQL statistics: pg_stat_statements & co. as CSV/JSONL snapshots, or read live.

A file holds one view. Which view is decided by its column set, never by its name
or column order, and the column sets of PostgreSQL 12 to 18 map onto one schema per
view (schema.PG_DDL): renamed columns get their newest name (``total_time`` →
``total_exec_time`` in 13, ``blk_read_time`` → ``shared_blk_read_time`` in 17),
columns a version lacks are NULL.

Two encodings, as PostgreSQL writes them (see tests/fixtures/pg/FORMAT.md):

- CSV from ``COPY … (FORMAT csv, HEADER)``: NULL is an empty unquoted field, ``""``
  an empty string, booleans ``t``/``f``, records span lines inside quotes, and one
  ``query`` field can be hundreds of kB.
- JSON lines from ``row_to_json``: oid and xid columns are JSON strings, ``queryid``
  is a 64-bit integer that a float would corrupt.

Both are read in bulk by DuckDB with an explicit type per column, so ``queryid`` is
parsed straight into BIGINT and never passes through a double.

Live snapshots (:func:`ingest_live`) query the same views with ``row_to_json``, write
each view to a canonical JSON-lines file and ingest that file through the same reader,
so a live snapshot and a file snapshot cannot differ in how they are read.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from perflab.errors import InputError, PerflabError
from perflab.ingest import Context, Format, IngestResult, Sniff, register
from perflab.ingest._io import HEAD_BYTES
from perflab.store import Store

KIND = "pgstat"

# PostgreSQL's own limit on one text value is 1 GB, so no legal snapshot line is longer.
# DuckDB allocates its buffers as lines need them, so the generous cap costs nothing.
MAX_LINE_BYTES = 1 << 30
# Detection reads at most this much of the first JSON line (the 64 kB sniff head can
# end inside a long query text); a first record above this is not a snapshot we sniff.
MAX_SNIFF_LINE = 64 << 20

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
        "userid dbid queryid query calls total_exec_time min_exec_time max_exec_time "
        "mean_exec_time stddev_exec_time rows shared_blks_hit shared_blks_read "
        "shared_blks_dirtied shared_blks_written local_blks_hit local_blks_read "
        "temp_blks_read temp_blks_written".split()
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
        "relid schemaname relname seq_scan seq_tup_read idx_scan idx_tup_fetch n_tup_ins "
        "n_tup_upd n_tup_del n_tup_hot_upd n_live_tup n_dead_tup n_mod_since_analyze "
        "last_vacuum last_autovacuum last_analyze last_autoanalyze vacuum_count "
        "autovacuum_count analyze_count autoanalyze_count".split()
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
        "relid indexrelid schemaname relname indexrelname idx_scan idx_tup_read idx_tup_fetch".split()
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
        "datid datname numbackends xact_commit xact_rollback blks_read blks_hit tup_returned "
        "tup_fetched tup_inserted tup_updated tup_deleted conflicts temp_files temp_bytes "
        "deadlocks blk_read_time blk_write_time stats_reset".split()
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
        "datid datname pid usesysid usename application_name client_addr client_hostname "
        "client_port backend_start xact_start query_start state_change wait_event_type "
        "wait_event state backend_xid backend_xmin query backend_type".split()
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
        mapping = {c: k for c, k in zip(columns, canon) if k in types}
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


# -- detection ---------------------------------------------------------------------------

def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


def _csv_header(line: str) -> list[str]:
    return next(csv.reader([_strip_bom(line).rstrip("\r\n")]), [])


def _json_keys(line: str) -> list[str] | None:
    try:
        obj = json.loads(_strip_bom(line))
    except ValueError:
        return None
    return list(obj) if isinstance(obj, dict) else None


def _first_line(path: Path, gzipped: bool) -> str:
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as fh:  # type: ignore[operator]
        return fh.readline(MAX_SNIFF_LINE).decode("utf-8", errors="replace")


def _columns_from_head(sniff: Sniff) -> tuple[str, list[str]] | None:
    text = _strip_bom(sniff.text_head).lstrip(" \t\r\n")
    if not text:
        return None
    if text.startswith("{"):
        line = text.split("\n", 1)[0]
        if "\n" not in text and len(sniff.head) >= HEAD_BYTES:
            # The head ends inside the first record (a long query text): read the whole line.
            line = _first_line(sniff.path, sniff.gzipped)
        keys = _json_keys(line)
        return ("jsonl", keys) if keys else None
    if "\n" not in text:
        return None
    return "csv", _csv_header(text.split("\n", 1)[0])


def _detect(sniff: Sniff) -> bool:
    found = _columns_from_head(sniff)
    return found is not None and identify(found[1]) is not None


# -- ingest ------------------------------------------------------------------------------

def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _struct(columns: dict[str, str]) -> str:
    return "{" + ", ".join(f"{_sql_str(k)}: {_sql_str(v)}" for k, v in columns.items()) + "}"


def _file_columns(path: Path) -> tuple[str, list[str]]:
    with open(path, "rb") as fh:
        line = fh.readline(MAX_SNIFF_LINE).decode("utf-8", errors="replace")
    stripped = _strip_bom(line).lstrip(" \t")
    if stripped.startswith("{"):
        keys = _json_keys(line)
        if keys is None:
            raise InputError(path, "line 1 is not a JSON object")
        return "jsonl", keys
    return "csv", _csv_header(line)


def _check_json_keys(ctx: Context, path: Path, keys: list[str]) -> None:
    """Every line must be an object with line 1's keys: a line of another view is an error,
    not a row of NULLs."""
    bad = ctx.con.execute(
        f"""
        SELECT n, json_type(json) = 'OBJECT' FROM (
            SELECT row_number() OVER () AS n, json
            FROM read_ndjson_objects({_sql_str(str(path))}, maximum_object_size={MAX_LINE_BYTES})
        )
        WHERE json_type(json) <> 'OBJECT' OR list_sort(json_keys(json)) <> ?::VARCHAR[]
        ORDER BY n LIMIT 1
        """,
        [sorted(keys)],
    ).fetchall()
    if bad:
        n, is_object = bad[0]
        what = "has other columns than record 1" if is_object else "is not a JSON object"
        raise InputError(ctx.path, f"record {n} {what}")


def ingest_snapshot(
    ctx: Context, view_name: str | None = None, snapshot_at: datetime | None = None
) -> dict[str, Any]:
    """Read one snapshot file into its view's table (the registry's ingest, and the live path's)."""
    path = ctx.plain_path()
    fmt, columns = _file_columns(path)
    match = identify(columns)
    if match is None:
        shown = ",".join(columns[:6]) + (",…" if len(columns) > 6 else "")
        raise InputError(ctx.path, f"columns ({shown}) are not those of a pg_stat view perflab reads "
                         f"({', '.join(VIEWS)})")
    view = match.view
    if view_name is not None and view.name != view_name:
        raise InputError(ctx.path, f"holds {view.name}, expected {view_name}")
    types = view.types
    # Every file column gets a type: its canonical one, or VARCHAR for a column we ignore.
    read_types = {c: (types.get(match.source_to_canonical.get(c, ""), _T if c == SNAPSHOT_COLUMN else _V))
                  for c in columns}
    src = _sql_str(str(path))
    if fmt == "csv":
        reader = (
            f"read_csv({src}, header=true, columns={_struct(read_types)}, auto_detect=false, "
            "delim=',', quote='\"', escape='\"', nullstr='', allow_quoted_nulls=false, "
            f"strict_mode=true, null_padding=false, max_line_size={MAX_LINE_BYTES})"
        )
    else:
        _check_json_keys(ctx, path, columns)
        reader = (
            f"read_json({src}, format='newline_delimited', records=true, "
            f"columns={_struct(read_types)}, maximum_object_size={MAX_LINE_BYTES})"
        )

    by_canonical = {k: c for c, k in match.source_to_canonical.items()}
    select = []
    for name, typ in view.columns:
        if name in by_canonical:
            select.append(f"{_ident(by_canonical[name])}::{typ} AS {_ident(name)}")
        elif view is ACTIVITY and name == "sample_no":
            select.append("1 AS sample_no")  # a plain pg_stat_activity export is one sample
        else:
            select.append(f"NULL::{typ} AS {_ident(name)}")
    params: list[Any] = [ctx.source_id, ctx.run_id]
    if SNAPSHOT_COLUMN in columns:
        snap = f"{_ident(SNAPSHOT_COLUMN)}::TIMESTAMPTZ"
    else:
        snap = "?::TIMESTAMPTZ"
        params.append(snapshot_at)
    if view is ACTIVITY and "sample_ts" in columns:
        # sample_ts is clock_timestamp() per row: a sample happened at its first row's time.
        sample_no = _ident(by_canonical["sample_no"]) if "sample_no" in by_canonical else "1"
        snap = f"coalesce(min(sample_ts) OVER (PARTITION BY {sample_no}), {snap})"
    count = ctx.con.execute(
        f"INSERT INTO {view.table} BY NAME "
        f"SELECT ?::BIGINT AS source_id, ?::VARCHAR AS run_id, {snap} AS snapshot_at, "
        f"{', '.join(select)} FROM {reader}",
        params,
    ).fetchall()[0][0]

    ctx.meta.update({"view": view.name, "pg_columns_version": pg_columns_version(view, columns),
                     "format": fmt})
    if match.ignored:
        ctx.meta["ignored_columns"] = list(match.ignored)
    return {f"{view.name} rows": int(count)}


register(
    Format(
        kind=KIND,
        description="PostgreSQL pg_stat_statements/_info, pg_stat_user_tables/_indexes, "
        "pg_stat_database and pg_stat_activity snapshots (CSV from COPY, JSON lines from row_to_json)",
        detect=_detect,
        ingest=ingest_snapshot,
        # The column set check is exact and cheap, so it may run before looser JSON/CSV sniffers.
        priority=40,
    )
)


# -- live --------------------------------------------------------------------------------

LIVE_VIEWS: tuple[str, ...] = tuple(VIEWS)


def engine(dsn: str):  # type: ignore[no-untyped-def]
    """A SQLAlchemy engine on psycopg for a PostgreSQL URL or libpq keyword DSN."""
    import sqlalchemy

    if "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        if scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
            raise PerflabError(f"{_redact(dsn)}: not a PostgreSQL URL (postgresql://user@host:port/db)")
        return sqlalchemy.create_engine("postgresql+psycopg://" + rest, poolclass=sqlalchemy.pool.NullPool)
    import psycopg

    # A libpq keyword DSN ("host=… dbname=…") goes to psycopg as is.
    return sqlalchemy.create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(dsn), poolclass=sqlalchemy.pool.NullPool
    )


def _redact(dsn: str) -> str:
    """The DSN without its password, for messages."""
    if "://" in dsn and "@" in dsn.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = dsn.split("://", 1)
        auth, host = rest.split("@", 1)
        return f"{scheme}://{auth.split(':', 1)[0]}@{host}"
    return " ".join(p for p in dsn.split() if not p.startswith("password="))


def _server_label(info: Any) -> str:
    host = info.host or "localhost"
    if host.startswith("/"):
        host = quote(host, safe="")  # a Unix-socket directory
    return f"postgresql://{host}:{info.port}/{info.dbname}"


def _timestamp(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ingest_live(
    store: Store,
    dsn: str,
    run_id: str | None = None,
    views: Sequence[str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[IngestResult]:
    """Snapshot the pg_stat views of a live server, one source per view.

    All views are read in one read-only transaction, so they describe one moment
    (snapshot_at = the server's ``now()``). Each view's rows become a canonical
    JSON-lines file (``row_to_json``, sorted), which is ingested like a user's file:
    path ``postgresql://host:port/db#VIEW@TIME``, bytes its size, sha256 over the view
    name and that content, so a repeat snapshot with the same numbers is a no-op.
    A missing pg_stat_statements is reported through ``warn`` (one line on stderr by
    default) and the other views are still taken.
    """
    import psycopg
    import sqlalchemy

    wanted = list(views) if views is not None else list(LIVE_VIEWS)
    unknown = [v for v in wanted if v not in VIEWS]
    if unknown:
        raise PerflabError(f"unknown view(s) {', '.join(unknown)}; one of: {', '.join(VIEWS)}")
    say = warn or (lambda line: print(f"perflab: {line}", file=sys.stderr))

    tmpdir = Path(tempfile.mkdtemp(prefix="perflab-pglive-"))
    files: list[tuple[View, Path, list[str]]] = []
    try:
        eng = engine(dsn)
        try:
            with eng.connect() as conn:
                raw = conn.connection.driver_connection
                label = _server_label(raw.info)
                with conn.begin():
                    canonical_snapshot(conn)
                    now = conn.execute(sqlalchemy.text("SELECT now()")).scalar_one()
                    server_version = int(conn.execute(sqlalchemy.text("SHOW server_version_num")).scalar_one())
                    missing = _pgss_problem(conn) if any(v.startswith("pg_stat_statements") for v in wanted) else None
                    if missing:
                        say(f"{label}: {missing}; snapshotting the other views")
                    for name in wanted:
                        view = VIEWS[name]
                        if missing and name.startswith("pg_stat_statements"):
                            continue
                        if name == PGSS_INFO.name and server_version < 140000:
                            continue  # the view arrived with PostgreSQL 14
                        out = tmpdir / f"{name}.jsonl"
                        files.append((view, out, write_view(conn, view, out)))
        except (sqlalchemy.exc.SQLAlchemyError, psycopg.Error) as exc:
            raise PerflabError(f"{_redact(dsn)}: {_one_line(exc)}") from None
        finally:
            eng.dispose()

        results = []
        snapshot = f"{label}@{_timestamp(now)}"
        for view, out, columns in files:
            results.append(_ingest_canonical(store, view, out, columns, snapshot, now, run_id,
                                             server_version))
        return results
    finally:
        for _, out, _ in files:
            out.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            tmpdir.rmdir()


def _pgss_problem(conn: Any) -> str | None:
    """Why pg_stat_statements cannot be read in this database, or None."""
    import sqlalchemy

    installed = conn.execute(
        sqlalchemy.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
    ).fetchall()
    if not installed:
        return ("pg_stat_statements is not installed in this database "
                "(CREATE EXTENSION pg_stat_statements, with it in shared_preload_libraries)")
    loaded = conn.execute(
        sqlalchemy.text("SELECT 'pg_stat_statements' = ANY(string_to_array("
                        "replace(current_setting('shared_preload_libraries'), ' ', ''), ','))")
    ).scalar_one()
    if not loaded:
        return "pg_stat_statements is installed but not in shared_preload_libraries"
    return None


def canonical_snapshot(conn: Any) -> None:
    """Make the open transaction one read-only moment whose text is canonical.

    Shortest exact float text whatever the server's default, and one time zone, so equal
    numbers always give equal bytes (and the same sha256): `ingest --pg` and a lab run's
    snapshot files are written alike.
    """
    import sqlalchemy

    conn.execute(sqlalchemy.text("SET TRANSACTION READ ONLY"))
    conn.execute(sqlalchemy.text("SET LOCAL extra_float_digits = 1"))
    conn.execute(sqlalchemy.text("SET LOCAL TimeZone = 'UTC'"))


def write_view(conn: Any, view: View, out: Path) -> list[str]:
    """Write the view as sorted JSON lines (inside canonical_snapshot); return its column names."""
    import sqlalchemy

    columns = list(conn.execute(sqlalchemy.text(f"SELECT * FROM {view.live_from} s LIMIT 0")).keys())
    # row_to_json is PostgreSQL's own encoding of every type (oid as string, bigint as an
    # exact number); sorting makes the content, hence the sha256, independent of scan order.
    result = conn.execution_options(stream_results=True, yield_per=1000).execute(
        sqlalchemy.text(f"SELECT row_to_json(s)::text AS j FROM {view.live_from} s ORDER BY 1")
    )
    with open(out, "w", encoding="utf-8", newline="\n") as fh:
        for part in result.partitions():
            fh.write("".join(row[0] + "\n" for row in part))
    return columns


def _ingest_canonical(
    store: Store, view: View, path: Path, columns: list[str], snapshot: str, now: datetime,
    run_id: str | None, server_version: int,
) -> IngestResult:
    content = path.read_bytes()
    # The view name is part of the hashed content: two empty views are different snapshots.
    sha = hashlib.sha256(view.name.encode() + b"\n" + content).hexdigest()
    label = f"{snapshot.split('@', 1)[0]}#{view.name}@{snapshot.rsplit('@', 1)[1]}"
    duplicate = store.source_by_sha(sha)
    if duplicate is not None:
        return IngestResult(int(duplicate["source_id"]), duplicate["kind"], label, False, {})
    ctx = Context(store=store, source_id=0, run_id=run_id, path=path, gzipped=False,
                  max_decompressed=len(content) + 1)
    with store.transaction():
        ctx.source_id = store.next_source_id()
        if content:
            stats = ingest_snapshot(ctx, view_name=view.name, snapshot_at=now)
        else:  # an empty view (no user tables yet): a source with no rows
            stats = {f"{view.name} rows": 0}
            ctx.meta.update({"view": view.name, "format": "jsonl",
                             "pg_columns_version": pg_columns_version(view, columns)})
        ctx.meta.update({"snapshot": snapshot, "server_version_num": server_version, "live": True})
        store.add_source(ctx.source_id, KIND, label, len(content), sha, run_id,
                         json.dumps(ctx.meta, sort_keys=True))
    return IngestResult(ctx.source_id, KIND, label, True, stats)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


__all__ = ["VIEWS", "View", "identify", "ingest_live", "ingest_snapshot", "pg_columns_version"]
