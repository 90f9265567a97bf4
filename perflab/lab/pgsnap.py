"""pg_stat snapshots and pg_stat_activity samples of a lab run, written as files.

The run folder keeps them as JSON lines (PostgreSQL's own ``row_to_json`` encoding,
the format a user exports with psql), so a run can be re-ingested or shared, and
they enter the store through the same pgstat ingest as a user's files (written by
perflab.ingest.pgstat_live, as `perflab ingest --pg` writes them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import sqlalchemy

from perflab.ingest.pgstat_live import canonical_snapshot, engine, write_view
from perflab.ingest.pgstat_views import VIEWS

SNAPSHOT_VIEWS = (
    "pg_stat_statements",
    "pg_stat_statements_info",
    "pg_stat_user_tables",
    "pg_stat_user_indexes",
    "pg_stat_database",
)
ACTIVITY_INTERVAL_S = 1.0  # once a second: states change slower than requests; cheap for PG


def libpq(dsn: str) -> str:
    """SQLAlchemy's postgresql+psycopg:// URL → a libpq URL psycopg accepts."""
    return dsn.replace("postgresql+psycopg://", "postgresql://", 1)


def snapshot_views(dsn: str, out_dir: Path, suffix: str, say: Callable[[str], None] | None = None) -> list[Path]:
    """The run's "before"/"after" snapshot: every view in one read-only transaction, one moment.

    A view the server cannot show (a user's database without pg_stat_statements, or one
    older than PostgreSQL 14 without pg_stat_statements_info) is left out with one line
    through ``say``; the lab's own cluster has them all.
    """
    eng = engine(dsn)
    out: list[Path] = []
    try:
        with eng.connect() as conn, conn.begin():
            canonical_snapshot(conn)
            # Probed first: a savepoint after a streamed read is refused by the driver.
            problems = {name: _unreadable(conn, name) for name in SNAPSHOT_VIEWS}
            for name in SNAPSHOT_VIEWS:
                problem = problems[name]
                if problem:
                    if say is not None:
                        say(f"{name} left out of the {suffix} snapshot: {problem}")
                    continue
                path = out_dir / f"{name}_{suffix}.jsonl"
                write_view(conn, VIEWS[name], path)
                out.append(path)
    finally:
        eng.dispose()
    return out


def _unreadable(conn: sqlalchemy.engine.Connection, name: str) -> str | None:
    """Why a view cannot be read in this transaction (tried in a savepoint), or None."""
    try:
        with conn.begin_nested():
            conn.execute(sqlalchemy.text(f"SELECT 1 FROM {VIEWS[name].live_from} s LIMIT 0"))
    except sqlalchemy.exc.DBAPIError as exc:
        return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else "not readable"
    return None


class ActivitySampler:
    """Appends pg_stat_activity, numbered per sample, once a second until stopped."""

    def __init__(self, dsn: str, path: Path, interval_s: float = ACTIVITY_INTERVAL_S) -> None:
        self.dsn, self.path, self.interval_s = libpq(dsn), path, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="perflab-pg-activity", daemon=True)
        self.samples = 0
        self.error: str | None = None

    def __enter__(self) -> ActivitySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True, application_name="perflab-sampler") as conn, \
                    open(self.path, "w") as fh:
                conn.execute("SET TimeZone = 'UTC'")
                while not self._stop.is_set():
                    self.samples += 1
                    rows = conn.execute(
                        "SELECT row_to_json(s)::text FROM (SELECT %s::int AS sample_no, "
                        "clock_timestamp() AS sample_ts, a.* FROM pg_stat_activity a) s",
                        [self.samples],
                    ).fetchall()
                    fh.write("".join(r[0] + "\n" for r in rows))
                    fh.flush()
                    self._stop.wait(self.interval_s)
        except psycopg.Error as exc:
            # The server going away at the end of a run is not an error of the run.
            if not self._stop.is_set():
                self.error = str(exc).strip().splitlines()[0]
