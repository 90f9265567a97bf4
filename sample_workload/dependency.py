"""GET /report/{user_id}: a dependency call that can time out (the retry storm).

Each request runs one report query under ``SET LOCAL statement_timeout``
(STATEMENT_TIMEOUT_MS). A fraction of requests (HEAVY_FRACTION) is slow: their query
sleeps HEAVY_QUERY_MS in PostgreSQL (pg_sleep) before aggregating, longer than the
timeout, so every attempt of such a request is cancelled, as happens with a query
that needs an index it does not have. What differs is what the service does then:

- RETRY_POLICY=none: answer 504 at once.
- RETRY_POLICY=immediate: retry RETRY_ATTEMPTS more times with no pause. Retries of
  a request that always times out only add load: the retry storm (LAB-NOTES: 2.4-2.6
  statements per request at 30 % heavy and 5 retries).
- RETRY_POLICY=backoff: at most BACKOFF_MAX_ATTEMPTS attempts, pauses drawn with full
  jitter from an exponentially growing window, a retry budget (a token bucket that
  gains RETRY_BUDGET_RATIO tokens per request, so retries stay under ~10 % of
  requests) and a circuit breaker that fails fast (503 circuit_open) for
  BREAKER_COOLDOWN_S after BREAKER_THRESHOLD consecutive timeouts, then lets one
  trial request through. It does not turn a query that always times out into a
  success; it removes the extra load and the latency tail (LAB-NOTES: 1.11
  statements per request).

A request whose attempts all timed out answers 504 {"error": "timeout"}.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from starlette.requests import Request
from starlette.responses import JSONResponse

from sample_workload.db import Database, error_kind
from sample_workload.metrics import Metrics
from sample_workload.settings import Settings
from sample_workload.state import AppState, error_response

# pg_sleep sits in FROM so it runs exactly once, before the aggregate, for 0 rows too.
Q_REPORT_PG = sa.text(
    "SELECT (SELECT coalesce(json_agg(t ORDER BY t.challenge_id), '[]'::json) FROM ("
    "  SELECT challenge_id, count(*) AS games, sum(score) AS total_score, max(score) AS best_score, "
    "         round(avg(duration_ms)) AS avg_duration_ms "
    "  FROM game_records WHERE user_id = :u GROUP BY challenge_id) t) AS report "
    "FROM pg_sleep(:s)")
Q_REPORT_SQLITE = sa.text(
    "SELECT challenge_id, count(*) AS games, sum(score) AS total_score, max(score) AS best_score, "
    "round(avg(duration_ms)) AS avg_duration_ms FROM game_records WHERE user_id = :u "
    "GROUP BY challenge_id ORDER BY challenge_id")
# SQLite has neither pg_sleep nor statement_timeout: a heavy attempt counts in a
# recursive CTE (interruptible, unlike a sleeping SQL function) and the timeout
# interrupts the connection.
Q_BUSY_SQLITE = sa.text(
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) SELECT count(*) FROM c")
SQLITE_STEPS_PER_MS = 5000  # recursive-CTE rows per millisecond, measured on the 2-core machine


class DependencyTimeout(Exception):
    pass


class CircuitOpen(Exception):
    pass


class RetryBudget:
    """Token bucket: each request adds ``ratio`` tokens (up to ``max_tokens``), each
    retry spends one, so retries cannot exceed ~ratio of requests over time."""

    def __init__(self, ratio: float, max_tokens: float, initial: float = 1.0) -> None:
        self.ratio, self.max_tokens = ratio, max_tokens
        self.tokens = min(initial, max_tokens)

    def on_request(self) -> None:
        self.tokens = min(self.max_tokens, self.tokens + self.ratio)

    def try_spend(self) -> bool:
        # Ten deposits of 0.1 add up to 0.9999999999999999 in floats; that is one token.
        if self.tokens >= 1.0 - 1e-9:
            self.tokens = max(0.0, self.tokens - 1.0)
            return True
        return False


class CircuitBreaker:
    """closed → (threshold consecutive timeouts) → open → (cool-down) → half-open:
    one trial request; success closes, a timeout opens again."""

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(self, threshold: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold, self.cooldown_s, self.clock = threshold, cooldown_s, clock
        self.state = self.CLOSED
        self.consecutive = 0
        self.opened_at = 0.0
        self.opened = 0
        self._trial = False

    def allow(self) -> bool:
        if self.state == self.OPEN and self.clock() - self.opened_at >= self.cooldown_s:
            self.state, self._trial = self.HALF_OPEN, False
        if self.state == self.CLOSED:
            return True
        if self.state == self.HALF_OPEN and not self._trial:
            self._trial = True
            return True
        return False

    def record_success(self) -> None:
        self.consecutive, self.state, self._trial = 0, self.CLOSED, False

    def record_timeout(self) -> None:
        self.consecutive += 1
        if self.state == self.HALF_OPEN or (self.state == self.CLOSED and self.consecutive >= self.threshold):
            self.state, self.opened_at, self._trial = self.OPEN, self.clock(), False
            self.opened += 1


def backoff_delay_s(attempt: int, base_ms: float, max_ms: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(max, base × 2^(attempt-1))] (attempt = failed attempts so far)."""
    return rng.uniform(0.0, min(max_ms, base_ms * 2 ** (attempt - 1))) / 1000.0


class ReportClient:
    def __init__(self, db: Database, settings: Settings, metrics: Metrics,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.db, self.settings, self.metrics = db, settings, metrics
        if rng is None:
            rng = random.Random(settings.random_seed) if settings.random_seed >= 0 else random.Random()
        self.rng = rng
        self.budget = RetryBudget(settings.retry_budget_ratio, settings.retry_budget_max_tokens)
        self.breaker = CircuitBreaker(settings.breaker_threshold, settings.breaker_cooldown_s, clock)

    def max_attempts(self) -> int:
        p = self.settings.retry_policy
        return 1 if p == "none" else 1 + self.settings.retry_attempts if p == "immediate" \
            else self.settings.backoff_max_attempts

    async def fetch(self, user_id: int) -> list[dict[str, Any]]:
        backoff = self.settings.retry_policy == "backoff"
        heavy = self.rng.random() < self.settings.heavy_fraction
        if backoff:
            self.budget.on_request()
            if not self.breaker.allow():
                raise CircuitOpen
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await self._attempt(user_id, heavy)
            except DependencyTimeout:
                self.metrics.statement_timeouts += 1
                if backoff:
                    self.breaker.record_timeout()
                if not self._may_retry(attempt):
                    raise
                self.metrics.retries += 1
                if backoff:
                    await asyncio.sleep(backoff_delay_s(attempt, self.settings.backoff_base_ms,
                                                        self.settings.backoff_max_ms, self.rng))
                continue
            if backoff:
                self.breaker.record_success()
            return result

    def _may_retry(self, attempt: int) -> bool:
        if attempt >= self.max_attempts():
            return False
        if self.settings.retry_policy != "backoff":
            return True
        if self.breaker.state != CircuitBreaker.CLOSED:
            return False
        if not self.budget.try_spend():
            self.metrics.retry_budget_exhausted += 1
            return False
        return True

    async def _attempt(self, user_id: int, heavy: bool) -> list[dict[str, Any]]:
        sleep_ms = self.settings.heavy_query_ms if heavy else 0
        try:
            async with self.db.connect() as conn, conn.begin():
                if self.db.dialect == "postgresql":
                    await conn.execute(sa.text(f"SET LOCAL statement_timeout = {int(self.settings.statement_timeout_ms)}"),
                                       execution_options={"perf_setup": True})
                    row = (await conn.execute(Q_REPORT_PG, {"u": user_id, "s": sleep_ms / 1000.0})).first()
                    return list(row.report) if row is not None else []
                return await self._attempt_sqlite(conn, user_id, sleep_ms)
        except exc.DBAPIError as e:
            if error_kind(e) == "timeout":
                raise DependencyTimeout from e
            raise

    async def _attempt_sqlite(self, conn: Any, user_id: int, sleep_ms: int) -> list[dict[str, Any]]:
        raw = await conn.get_raw_connection()
        sqlite_conn = raw.driver_connection._conn  # sqlite3.Connection; interrupt() is thread-safe
        handle = asyncio.get_running_loop().call_later(self.settings.statement_timeout_ms / 1000.0,
                                                       sqlite_conn.interrupt)
        try:
            if sleep_ms:
                await conn.execute(Q_BUSY_SQLITE, {"n": sleep_ms * SQLITE_STEPS_PER_MS})
            rows = (await conn.execute(Q_REPORT_SQLITE, {"u": user_id})).mappings().all()
        finally:
            handle.cancel()
        return [dict(r) for r in rows]


async def get_report(request: Request) -> JSONResponse:
    state: AppState = request.app.state.workload
    assert state.reports is not None
    try:
        user_id = int(request.path_params["user_id"])
    except ValueError:
        return error_response("bad_request", 400, "user_id must be an integer")
    try:
        report = await state.reports.fetch(user_id)
    except DependencyTimeout:
        state.metrics.error("timeout")
        return error_response("timeout", 504, f"report query exceeded statement_timeout "
                                              f"({state.settings.statement_timeout_ms} ms) on every attempt")
    except CircuitOpen:
        state.metrics.error("circuit_open")
        return error_response("circuit_open", 503, "report dependency failing; circuit open, retry later")
    return JSONResponse({"user_id": user_id, "challenges": report})
