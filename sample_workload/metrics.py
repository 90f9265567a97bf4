"""The service's counters and gauges, read by /debug/vars (Go's expvar in spirit).

Everything is updated from the event-loop thread (SQLAlchemy's cursor events fire
inside the greenlet that the loop thread runs), so plain ints need no lock.
Counters only grow: perflab diffs them between samples. Gauges are read as they are.
"""

from __future__ import annotations

import contextvars
import time
from collections import defaultdict
from dataclasses import dataclass, field

# The route being served, so a statement can be attributed to the request that sent it
# (queries per request is the retry storm's signature). Background work (the buffer's
# flusher, seeding) has no route.
current_route: contextvars.ContextVar[str] = contextvars.ContextVar("current_route", default="background")

ERROR_KINDS = ("timeout", "pool_timeout", "buffer_full", "circuit_open", "other")


@dataclass
class Metrics:
    started: float = field(default_factory=time.monotonic)
    in_flight: int = 0
    requests_total: int = 0
    requests: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))
    db_waiting: int = 0
    db_checkouts: int = 0
    db_statements: int = 0
    db_queries: int = 0
    db_queries_by_route: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    statement_timeouts: int = 0
    records_accepted: int = 0
    records_written: int = 0
    records_rejected: int = 0
    flushes: int = 0
    flush_failures: int = 0
    write_lag_ms_sum: float = 0.0
    write_lag_ms_max: float = 0.0
    retries: int = 0
    retry_budget_exhausted: int = 0
    circuit_opened: int = 0
    logins_ok: int = 0
    logins_failed: int = 0

    def uptime_s(self) -> float:
        return time.monotonic() - self.started

    def count_statement(self, setup: bool = False) -> None:
        """Every statement sent, cancelled ones included (pg_stat_statements skips those).

        ``setup`` statements (SET LOCAL) are statements but not queries, so queries per
        request stays comparable with the one-query-per-attempt picture of LAB-NOTES.
        """
        self.db_statements += 1
        if not setup:
            self.db_queries += 1
            self.db_queries_by_route[current_route.get()] += 1

    def count_request(self, route: str, status: int, workload: bool = True) -> None:
        """``workload`` False for /debug and /healthz: listed by route, but kept out of
        requests_total so that queries per request is not diluted by a sampler's polls."""
        self.requests_total += workload
        self.requests[route][str(status)] += 1

    def error(self, kind: str) -> None:
        self.errors[kind if kind in self.errors else "other"] += 1

    def wrote(self, n: int, lag_ms_sum: float, lag_ms_max: float) -> None:
        self.records_written += n
        self.write_lag_ms_sum += lag_ms_sum
        self.write_lag_ms_max = max(self.write_lag_ms_max, lag_ms_max)
