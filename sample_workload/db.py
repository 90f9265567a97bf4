"""The database: schema, the async engine, an instrumented checkout, error kinds.

Async SQLAlchemy 2 over psycopg 3 (PostgreSQL) or aiosqlite (SQLite, when no
PostgreSQL can be had). Two things SQLAlchemy does not give and the lab needs:

- how many tasks are waiting for a pooled connection: there is no event for the
  *start* of a checkout, so ``Database.connect()`` counts around it;
- every statement sent, including the ones PostgreSQL cancels for statement_timeout
  (pg_stat_statements does not count those): a ``before_cursor_execute`` listener.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from sample_workload.metrics import Metrics
from sample_workload.settings import Settings

log = logging.getLogger("sample_workload.db")

SERVER_STATS_TTL_S = 1.0  # perflab samples /debug/vars at 4 Hz; one stats query a second is plenty
SERVER_STATS_TIMEOUT_S = 0.3  # /debug/vars must answer within the sampler's 0.5 s even if PG is stuck
QUERY_CANCELED = "57014"  # SQLSTATE of a statement cancelled by statement_timeout

metadata = sa.MetaData()

# SQLite makes only an INTEGER PRIMARY KEY auto-increment.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(60), nullable=False),
    sa.Column("display_name", sa.String(128), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

challenges = sa.Table(
    "challenges", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("code", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
)

goals = sa.Table(
    "goals", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("challenge_id", sa.Integer, sa.ForeignKey("challenges.id"), nullable=False, index=True),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # total_score | games | best_score
    sa.Column("target", sa.Integer, nullable=False),
    sa.Column("reward_points", sa.Integer, nullable=False),
    sa.Column("sort_order", sa.Integer, nullable=False),
)

user_challenges = sa.Table(
    "user_challenges", metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("challenge_id", sa.Integer, sa.ForeignKey("challenges.id"), primary_key=True),
    sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
)

# Game records carry no foreign keys on purpose: a buffered record that could never be
# written (a user deleted meanwhile) would block every flush behind it; ids are
# validated when the record is accepted instead.
game_records = sa.Table(
    "game_records", metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    # Made by the service when it accepts a record: a flush retried after a commit
    # whose acknowledgement was lost must not write the record twice.
    sa.Column("record_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("challenge_id", sa.Integer, nullable=False),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
    # accepted_at → written_at is the end-to-end lag the flush interval trades for fewer writes.
    sa.Column("written_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("ix_game_records_user_time", "user_id", "accepted_at"),
    sa.Index("ix_game_records_challenge_score", "challenge_id", "score"),
)

RECORD_COLUMNS = ("record_id", "user_id", "challenge_id", "score", "duration_ms", "level", "accepted_at")


class Database:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.dialect = settings.dialect
        kwargs: dict[str, Any] = dict(
            pool_size=settings.pool_size,
            max_overflow=settings.pool_max_overflow,
            pool_timeout=settings.pool_timeout_s,
        )
        if self.dialect == "sqlite":
            # Writers queue on SQLite's file lock; wait for it rather than fail at once.
            kwargs["connect_args"] = {"timeout": 30}
        self.engine: AsyncEngine = create_async_engine(settings.database_url, **kwargs)
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._on_statement)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._stats_engine: AsyncEngine | None = None
        self._stats_cache: tuple[float, dict[str, Any]] | None = None

    def _on_statement(self, conn: Any, cursor: Any, statement: str, parameters: Any,
                      context: Any, executemany: bool) -> None:
        setup = bool(context is not None and context.execution_options.get("perf_setup"))
        self.metrics.count_statement(setup=setup)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection; the time spent getting it counts as waiting."""
        conn = self.engine.connect()
        self.metrics.db_waiting += 1
        try:
            await conn.start()
        finally:
            self.metrics.db_waiting -= 1
        self.metrics.db_checkouts += 1
        try:
            yield conn
        finally:
            await conn.close()

    async def hold(self) -> None:
        """The simulated latency spent holding a connection (RECORD_HOLD_MS ± jitter).

        An asyncio sleep, not pg_sleep: it costs no CPU anywhere and sends no statement,
        like a slow network round trip or other work done inside the transaction.
        """
        ms = self.settings.record_hold_ms
        if ms <= 0:
            return
        j = self.settings.record_hold_jitter
        await asyncio.sleep(ms * random.uniform(1 - j, 1 + j) / 1000.0)

    def pool_stats(self) -> dict[str, int]:
        pool: Any = self.engine.pool
        if not hasattr(pool, "checkedout"):
            return {"size": 0, "checked_out": 0, "checked_in": 0, "overflow": 0}
        return {
            "size": pool.size(),
            "checked_out": pool.checkedout(),
            "checked_in": pool.checkedin(),
            # SQLAlchemy counts overflow from -pool_size (no connection made yet) upward;
            # only connections beyond pool_size are overflow in the usual sense.
            "overflow": max(0, pool.overflow()),
        }

    async def server_stats(self) -> dict[str, Any]:
        """pg_stat_database and pg_stat_activity for this database, on a separate
        connection whose statements are not counted as the service's."""
        if self.dialect != "postgresql":
            return {"available": False,
                    "reason": "SQLite has no statistics views (pg_stat_database, pg_stat_activity, "
                              "pg_stat_statements); set DATABASE_URL to a PostgreSQL database for them"}
        now = time.monotonic()
        if self._stats_cache is not None and now - self._stats_cache[0] < SERVER_STATS_TTL_S:
            return self._stats_cache[1]
        try:
            out = await asyncio.wait_for(self._read_server_stats(), SERVER_STATS_TIMEOUT_S)
        except (asyncio.TimeoutError, exc.SQLAlchemyError, OSError) as e:
            out = {"available": False, "reason": f"reading pg_stat_* failed: {type(e).__name__}: {e}"[:300]}
        self._stats_cache = (now, out)
        return out

    async def _read_server_stats(self) -> dict[str, Any]:
        if self._stats_engine is None:
            self._stats_engine = create_async_engine(self.settings.database_url, pool_size=1, max_overflow=0)
        async with self._stats_engine.connect() as conn:
            row = (await conn.execute(sa.text(
                "SELECT numbackends, xact_commit, xact_rollback, tup_inserted, tup_fetched, "
                "blks_hit, blks_read, deadlocks FROM pg_stat_database WHERE datname = current_database()"
            ))).mappings().first()
            states = (await conn.execute(sa.text(
                "SELECT coalesce(state, 'unknown') AS state, count(*) AS n FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend' GROUP BY 1"
            ))).all()
            await conn.rollback()
        return {"available": True,
                "database": {k: int(v) for k, v in (row or {}).items()},
                "backends_by_state": {s: int(n) for s, n in states}}

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._stats_engine is not None:
            await self._stats_engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the read paths run while a flush writes.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def error_kind(e: BaseException) -> str | None:
    """timeout | pool_timeout for the failures the service answers on purpose, else None."""
    if isinstance(e, exc.TimeoutError):  # QueuePool: no connection within pool_timeout
        return "pool_timeout"
    if isinstance(e, exc.DBAPIError):
        orig = getattr(e, "orig", None)
        if getattr(orig, "sqlstate", None) == QUERY_CANCELED:
            return "timeout"
        # SQLite has no statement_timeout: dependency.py interrupts the connection instead.
        if orig is not None and "interrupted" in str(orig):
            return "timeout"
    return None


def is_unique_violation(e: BaseException) -> bool:
    orig = getattr(e, "orig", e)
    return getattr(orig, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in str(orig)
