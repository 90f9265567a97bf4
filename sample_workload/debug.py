"""GET /debug/vars: the service's counters and gauges as JSON, like Go's expvar.

``gauges`` are levels read as they are (in-flight requests, tasks waiting for a
connection, pool state, buffer depth); ``counters`` only grow, so a reader diffs two
samples. perflab's sampler reads this a few times a second and flattens the nesting
into keys such as ``gauges.db_waiting_tasks``.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from sample_workload.state import AppState


async def debug_vars(request: Request) -> JSONResponse:
    state: AppState = request.app.state.workload
    return JSONResponse(await snapshot(state, with_server_stats=request.query_params.get("db", "1") != "0"))


async def snapshot(state: AppState, with_server_stats: bool = True) -> dict[str, Any]:
    m = state.metrics
    pool = state.db.pool_stats()
    reports = state.reports
    gauges = {
        "in_flight_requests": m.in_flight,
        "db_waiting_tasks": m.db_waiting,
        "pool_size": pool["size"],
        "pool_checked_out": pool["checked_out"],
        "pool_checked_in": pool["checked_in"],
        "pool_overflow": pool["overflow"],
        "buffer_depth": state.buffer.depth if state.buffer is not None else 0,
        "retry_tokens": round(reports.budget.tokens, 3) if reports is not None else 0,
        "circuit_open": int(reports is not None and reports.breaker.state != "closed"),
    }
    counters = {
        "requests_total": m.requests_total,
        "requests": {route: dict(by_status) for route, by_status in sorted(m.requests.items())},
        "errors": dict(m.errors),
        "db_checkouts": m.db_checkouts,
        "db_queries": m.db_queries,
        "db_statements": m.db_statements,
        "db_queries_by_route": dict(sorted(m.db_queries_by_route.items())),
        "statement_timeouts": m.statement_timeouts,
        "retries": m.retries,
        "retry_budget_exhausted": m.retry_budget_exhausted,
        "circuit_opened": reports.breaker.opened if reports is not None else 0,
        "records_accepted": m.records_accepted,
        "records_written": m.records_written,
        "records_rejected": m.records_rejected,
        "flushes": m.flushes,
        "flush_failures": m.flush_failures,
        "write_lag_ms_sum": round(m.write_lag_ms_sum, 3),
        "logins_ok": m.logins_ok,
        "logins_failed": m.logins_failed,
    }
    out: dict[str, Any] = {
        "uptime_s": round(m.uptime_s(), 3),
        "pid": os.getpid(),
        "gauges": gauges,
        "counters": counters,
        "max": {"write_lag_ms": round(m.write_lag_ms_max, 3)},
        "settings": state.settings.public(),
    }
    if with_server_stats:
        out["db"] = {"dialect": state.db.dialect, **await state.db.server_stats()}
    else:
        out["db"] = {"dialect": state.db.dialect, "available": False, "reason": "not requested (?db=0)"}
    return out
