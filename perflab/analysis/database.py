"""What the database did between two snapshots: PgHero-style deltas of pg_stat views.

PostgreSQL's statistics are cumulative counters since the last reset, so every answer
here is ``after - before`` per key::

    calls of one statement
      │           ┌──── after
      │     ┌─────┘            delta = after - before (the workload's own cost)
      │  ┌──┘ before
      │──┘                     a statement new in `after` is diffed against 0
      └──────────────── time

A counter that went *down* means the statistics were reset in between (or the entry
was evicted and came back). Such a row is flagged ``reset`` and reports its ``after``
value, i.e. what was counted since the reset; no delta is ever negative. For
pg_stat_statements a changed ``pg_stat_statements_info.stats_reset`` resets every row,
and a grown ``dealloc`` (entries evicted) sets ``reset_detected`` too.

Snapshots are named by source id or file path (``store.resolve``); a path is ingested
first. Functions return polars DataFrames, or plain dicts for the CLI's ``--json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import polars as pl

from perflab.errors import PerflabError
from perflab.store import Store
from perflab.vocab import PGSTAT as KIND

ORDERS = {"total": "total_exec_time", "mean": "mean_exec_time", "calls": "calls"}
# Before PostgreSQL 14 an entry had no toplevel and (with track=all) merged nested and
# top-level executions; such an entry counts as top level.
TOPLEVEL_WHEN_UNKNOWN = True

PG_TOP_COLUMNS = ["queryid", "userid", "dbid", "toplevel", "query", "calls", "total_exec_time",
                  "mean_exec_time", "rows", "shared_blks_hit", "shared_blks_read", "cache_hit_ratio"]

Ref = str | int | os.PathLike[str]


# -- resolving snapshots ----------------------------------------------------------------

def _meta(store: Store, source_id: int) -> dict[str, Any]:
    raw = store.source(source_id).get("meta")
    return json.loads(raw) if raw else {}


def snapshot_source(store: Store, ref: Ref, view: str, label: str | None = None) -> int:
    """A stored source holding a snapshot of ``view``; ``label`` names it in the error."""
    sid = store.find_source(ref, kinds=(KIND,))
    got = _meta(store, sid).get("view")
    if got != view:
        raise PerflabError(f"{label or ref}: source {sid} is a {got} snapshot, expected {view}")
    return sid


def _info_source(store: Store, ref: Ref, sid: int) -> int | None:
    """The pg_stat_statements_info snapshot taken with pg_stat_statements snapshot ``sid``.

    Live snapshots share a ``snapshot`` label in sources.meta; a file's partner is the
    file beside it with ``pg_stat_statements_info`` in its name.
    """
    meta = _meta(store, sid)
    if meta.get("snapshot"):
        rows = store.con.execute(
            "SELECT source_id FROM sources WHERE kind = ? "
            "AND json_extract_string(meta, '$.view') = 'pg_stat_statements_info' "
            "AND json_extract_string(meta, '$.snapshot') = ? ORDER BY source_id",
            [KIND, meta["snapshot"]],
        ).fetchall()
        return int(rows[0][0]) if rows else None
    given = Path(str(ref))
    path = given if given.exists() else Path(store.source(sid)["path"])
    sibling = info_sibling(path)
    if sibling is None:
        return None
    try:
        return snapshot_source(store, sibling, "pg_stat_statements_info")
    except PerflabError:
        return None  # not stored (the command layer ingests it), or not an info snapshot


def info_sibling(path: Path) -> Path | None:
    """The pg_stat_statements_info file beside a pg_stat_statements snapshot file, if any."""
    name = path.name
    if "pg_stat_statements" not in name or "pg_stat_statements_info" in name:
        return None
    sibling = path.with_name(name.replace("pg_stat_statements", "pg_stat_statements_info", 1))
    return sibling if sibling.exists() else None


# -- the generic delta ---------------------------------------------------------------------

def _delta_sql(table: str, keys: dict[str, str], counters: list[str], carry: list[str], *,
               before_extra: dict[str, str] | None = None, reset_if: str | None = None,
               all_reset: bool = False, extra: dict[str, str] | None = None) -> str:
    """SQL for per-key ``after - before`` of ``counters``, with the reset rule applied.

    ``keys`` maps output name → expression; duplicate keys within one snapshot (a PG 12/13
    file read with toplevel unknown) are summed, as PostgreSQL itself would have merged them.
    ``carry`` columns come from ``after``; ``before_extra`` aggregates of ``before`` are
    visible as ``b_NAME``; ``reset_if`` is one more reason to call a row reset (over ``a.``
    and ``b.``); ``extra`` adds computed output columns. Parameters: $1 before, $2 after.
    """
    before_extra = before_extra or {}
    key_sel = ", ".join(f"{expr} AS {name}" for name, expr in keys.items())
    sums = ", ".join(f"sum({c}) AS {c}" for c in counters)
    b_extra = "".join(f", {expr} AS {name}" for name, expr in before_extra.items())
    carried = "".join(f", arg_min({c}, {c} IS NULL) AS {c}" for c in carry)
    on = " AND ".join(f"a.{k} IS NOT DISTINCT FROM b.{k}" for k in keys)
    reasons = [f"coalesce(a.{c} < b.{c}, false)" for c in counters]
    if reset_if:
        reasons.append(f"coalesce({reset_if}, false)")
    reset = "true" if all_reset else f"(coalesce(b.present, false) AND ({' OR '.join(reasons)}))"
    b_cols = ", ".join(f"b.{c} AS b_{c}" for c in [*counters, *before_extra])
    out = ", ".join(
        f"CAST(CASE WHEN reset THEN {c} ELSE {c} - coalesce(b_{c}, 0) END AS "
        f"{'DOUBLE' if c.endswith('_time') else 'BIGINT'}) AS {c}"
        for c in counters
    )
    extra_sel = "".join(f", {expr} AS {name}" for name, expr in (extra or {}).items())
    return f"""
        WITH b AS (SELECT {key_sel}, {sums}{b_extra}, true AS present FROM {table}
                   WHERE source_id = $1 GROUP BY ALL),
             a AS (SELECT {key_sel}, {sums}{carried} FROM {table}
                   WHERE source_id = $2 GROUP BY ALL),
             j AS (SELECT a.*, {b_cols}, {reset} AS reset FROM a LEFT JOIN b ON {on})
        SELECT {', '.join(keys)}{''.join(', ' + c for c in carry)}, {out}, reset{extra_sel}
        FROM j
    """


# -- pg_stat_statements ---------------------------------------------------------------------

_PGSS_COUNTERS = ["calls", "total_exec_time", "rows", "shared_blks_hit", "shared_blks_read"]


def pg_top_detail(store: Store, before: Ref, after: Ref, order: str = "total",
                  limit: int | None = None) -> tuple[pl.DataFrame, bool]:
    """(:func:`pg_top_frame`'s frame, reset_detected) from one computation."""
    if order not in ORDERS:
        raise PerflabError(f"unknown order {order!r}; one of: {', '.join(ORDERS)}")
    if limit is not None and limit < 0:
        raise PerflabError("limit must be >= 0")
    b_id = snapshot_source(store, before, "pg_stat_statements")
    a_id = snapshot_source(store, after, "pg_stat_statements")

    stats_reset_changed = dealloc_grew = False
    b_info, a_info = _info_source(store, before, b_id), _info_source(store, after, a_id)
    if b_info is not None and a_info is not None:
        (stats_reset_changed, dealloc_grew), = store.con.execute(
            "SELECT coalesce(a.stats_reset IS DISTINCT FROM b.stats_reset, false), "
            "       coalesce(a.dealloc > b.dealloc, false) "
            "FROM (SELECT max(stats_reset) AS stats_reset, max(dealloc) AS dealloc "
            "      FROM pg_stat_statements_info_snap WHERE source_id = ?) b, "
            "     (SELECT max(stats_reset) AS stats_reset, max(dealloc) AS dealloc "
            "      FROM pg_stat_statements_info_snap WHERE source_id = ?) a",
            [b_info, a_info],
        ).fetchall()

    sql = _delta_sql(
        "pg_stat_statements_snap",
        keys={"userid": "userid", "dbid": "dbid",
              "toplevel": f"coalesce(toplevel, {str(TOPLEVEL_WHEN_UNKNOWN).lower()})",
              "queryid": "queryid"},
        counters=_PGSS_COUNTERS,
        carry=["query"],
        all_reset=bool(stats_reset_changed),
    )
    deltas = store.sql(sql, [b_id, a_id])
    any_reset = bool(deltas["reset"].any()) if deltas.height else False

    ratio = pl.col("shared_blks_hit") + pl.col("shared_blks_read")
    frame = (
        deltas.filter(pl.col("calls") != 0)
        .with_columns(
            (pl.col("total_exec_time") / pl.col("calls")).alias("mean_exec_time"),
            pl.when(ratio == 0).then(None)
            .otherwise(pl.col("shared_blks_hit").cast(pl.Float64) / ratio.cast(pl.Float64))
            .alias("cache_hit_ratio"),
        )
        .sort([ORDERS[order], "queryid", "userid", "dbid", "toplevel"],
              descending=[True, False, False, False, False])
        .select(PG_TOP_COLUMNS + ["reset"])
    )
    if limit is not None:
        frame = frame.head(limit)
    return frame, any_reset or bool(stats_reset_changed) or bool(dealloc_grew)


def pg_top_frame(store: Store, before: Ref, after: Ref, order: str = "total",
                 limit: int | None = None) -> pl.DataFrame:
    """Per-statement deltas, one row per (userid, dbid, toplevel, queryid) with calls > 0.

    Columns: PG_TOP_COLUMNS plus ``reset`` (the row counts since a reset). Times in ms;
    ``mean_exec_time`` = delta total / delta calls; ``cache_hit_ratio`` = hit / (hit + read),
    null when both are 0. Sorted by ``order`` ("total", "mean" or "calls"), largest first.
    """
    return pg_top_detail(store, before, after, order, limit)[0]


def pg_top(store: Store, before: Ref, after: Ref, order: str = "total",
           limit: int | None = None) -> dict[str, Any]:
    """``{"reset_detected": bool, "rows": [...]}``: PgHero's "Queries" page for two snapshots.

    Each row has exactly the keys of PG_TOP_COLUMNS (see :func:`pg_top_frame`, whose
    ``reset`` column tells which rows count since a reset).
    """
    frame, reset = pg_top_detail(store, before, after, order, limit)
    return {"reset_detected": reset, "rows": frame.select(PG_TOP_COLUMNS).to_dicts()}


# -- tables, indexes, databases ----------------------------------------------------------------

_TABLE_COUNTERS = ["seq_scan", "seq_tup_read", "idx_scan", "idx_tup_fetch", "n_tup_ins", "n_tup_upd",
                   "n_tup_del", "n_tup_hot_upd", "vacuum_count", "autovacuum_count",
                   "analyze_count", "autoanalyze_count"]


def table_deltas(store: Store, before: Ref, after: Ref) -> pl.DataFrame:
    """Per table (relid): counter deltas (seq_scan, idx_scan, n_tup_ins/upd/del, vacuums…),
    ``n_live_tup``/``n_dead_tup`` as in ``after`` (they are gauges, not counters) and
    ``n_dead_tup_change`` (after - before, may be negative). ``idx_scan`` is null for a
    table without an index."""
    b_id = snapshot_source(store, before, "pg_stat_user_tables")
    a_id = snapshot_source(store, after, "pg_stat_user_tables")
    sql = _delta_sql(
        "pg_stat_user_tables_snap", keys={"relid": "relid"}, counters=_TABLE_COUNTERS,
        carry=["schemaname", "relname", "n_live_tup", "n_dead_tup", "last_autovacuum",
               "last_autoanalyze"],
        before_extra={"n_dead_tup_before": "sum(n_dead_tup)"},
        extra={"n_dead_tup_change": "CAST(n_dead_tup - coalesce(b_n_dead_tup_before, 0) AS BIGINT)"},
    )
    return store.sql(sql + " ORDER BY schemaname, relname, relid", [b_id, a_id])


def index_usage(store: Store, before: Ref, after: Ref) -> pl.DataFrame:
    """Per index (indexrelid): ``idx_scan``/``idx_tup_read``/``idx_tup_fetch`` deltas,
    ``idx_scan_total`` (the cumulative count in ``after``) and ``unused`` (no scan in between)."""
    b_id = snapshot_source(store, before, "pg_stat_user_indexes")
    a_id = snapshot_source(store, after, "pg_stat_user_indexes")
    sql = _delta_sql(
        "pg_stat_user_indexes_snap", keys={"indexrelid": "indexrelid"},
        counters=["idx_scan", "idx_tup_read", "idx_tup_fetch"],
        carry=["relid", "schemaname", "relname", "indexrelname"],
    )
    frame = store.sql(
        f"SELECT d.*, a.idx_scan AS idx_scan_total, d.idx_scan = 0 AS unused FROM ({sql}) d "
        "LEFT JOIN (SELECT indexrelid, sum(idx_scan)::BIGINT AS idx_scan "
        "           FROM pg_stat_user_indexes_snap WHERE source_id = $2 GROUP BY ALL) a "
        "USING (indexrelid) ORDER BY schemaname, relname, indexrelname, indexrelid",
        [b_id, a_id],
    )
    return frame


_DATABASE_COUNTERS = ["xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_returned",
                      "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted", "conflicts",
                      "temp_files", "temp_bytes", "deadlocks", "checksum_failures",
                      "blk_read_time", "blk_write_time", "session_time", "active_time",
                      "idle_in_transaction_time", "sessions", "sessions_abandoned",
                      "sessions_fatal", "sessions_killed"]


def database_deltas(store: Store, before: Ref, after: Ref) -> pl.DataFrame:
    """Per database (datid; 0 is the shared catalogs): transaction, block, tuple, temp-file,
    deadlock and session deltas, and ``cache_hit_ratio`` = blks_hit / (blks_hit + blks_read)
    of the deltas (null when both are 0). A changed ``stats_reset`` marks the row ``reset``."""
    b_id = snapshot_source(store, before, "pg_stat_database")
    a_id = snapshot_source(store, after, "pg_stat_database")
    # A per-database reset shows as a new stats_reset even before any counter goes down.
    sql = _delta_sql("pg_stat_database_snap", keys={"datid": "datid"}, counters=_DATABASE_COUNTERS,
                     carry=["datname", "numbackends", "stats_reset"],
                     before_extra={"stats_reset_before": "max(stats_reset)"},
                     reset_if="a.stats_reset IS DISTINCT FROM b.stats_reset_before")
    frame = store.sql(sql + " ORDER BY datid", [b_id, a_id])
    total = pl.col("blks_hit") + pl.col("blks_read")
    return frame.with_columns(
        pl.when(total == 0).then(None)
        .otherwise(pl.col("blks_hit").cast(pl.Float64) / total.cast(pl.Float64))
        .alias("cache_hit_ratio")
    )


# -- pg_stat_activity --------------------------------------------------------------------------

def activity_states(store: Store, source: Ref, backend_type: str | None = None) -> pl.DataFrame:
    """Per sample: how many backends were in each (state, wait_event_type).

    ``backend_type="client backend"`` keeps the sessions and drops the background
    processes (checkpointer, walwriter, …), whose state is null.
    """
    sid = snapshot_source(store, source, "pg_stat_activity")
    where = "source_id = ?" + (" AND backend_type = ?" if backend_type is not None else "")
    params: list[Any] = [sid] + ([backend_type] if backend_type is not None else [])
    return store.sql(
        f"SELECT sample_no, min(snapshot_at) AS sample_at, state, wait_event_type, "
        f"count(*)::BIGINT AS backends FROM pg_stat_activity_samples WHERE {where} "
        "GROUP BY sample_no, state, wait_event_type "
        "ORDER BY sample_no, state NULLS FIRST, wait_event_type NULLS FIRST",
        params,
    )
