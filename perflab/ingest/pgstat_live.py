"""Live pg_stat snapshots: read the views of a running PostgreSQL and ingest them.

All views are read in one read-only transaction, written as canonical JSON lines
(``row_to_json``, sorted, one time zone, shortest exact floats) and ingested through the
file reader of perflab.ingest.pgstat, so a live snapshot and a file snapshot cannot
differ in how they are read. ``perflab ingest --pg`` and the lab's before/after
snapshots (perflab.lab.pgsnap) both write through :func:`canonical_snapshot` and
:func:`write_view`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from perflab.errors import PerflabError
from perflab.ingest._registry import Context, IngestResult, one_line
from perflab.ingest.pgstat import KIND, ingest_snapshot
from perflab.ingest.pgstat_views import PGSS_INFO, VIEWS, View, pg_columns_version
from perflab.store import Store

if TYPE_CHECKING:
    import sqlalchemy

# sqlalchemy and psycopg are imported inside the functions on purpose: together they take
# a quarter of a second, which every other verb (and `perflab --help`) would pay.

LIVE_VIEWS: tuple[str, ...] = tuple(VIEWS)


def engine(dsn: str) -> sqlalchemy.engine.Engine:
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
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
                assert raw is not None  # None only for a connection SQLAlchemy invalidated
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
            raise PerflabError(f"{_redact(dsn)}: {one_line(exc)}") from None
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


def _pgss_problem(conn: sqlalchemy.engine.Connection) -> str | None:
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


def canonical_snapshot(conn: sqlalchemy.engine.Connection) -> None:
    """Make the open transaction one read-only moment whose text is canonical.

    Shortest exact float text whatever the server's default, and one time zone, so equal
    numbers always give equal bytes (and the same sha256): `ingest --pg` and a lab run's
    snapshot files are written alike.
    """
    import sqlalchemy

    conn.execute(sqlalchemy.text("SET TRANSACTION READ ONLY"))
    conn.execute(sqlalchemy.text("SET LOCAL extra_float_digits = 1"))
    conn.execute(sqlalchemy.text("SET LOCAL TimeZone = 'UTC'"))


def write_view(conn: sqlalchemy.engine.Connection, view: View, out: Path) -> list[str]:
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
