"""The Starlette application: routes, the instrumenting middleware, the lifespan.

Run it with ``python -m sample_workload`` (binds 127.0.0.1:PORT, one worker) or
``uvicorn sample_workload.app:app --host 127.0.0.1``. Settings come from the
environment (settings.py); the lifespan seeds when SEED=1, starts the record buffer
in batch mode, and on shutdown (uvicorn's SIGTERM/SIGINT) flushes it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sample_workload import auth, challenges, debug, dependency, profiling, prometheus, records
from sample_workload.db import Database, error_kind
from sample_workload.metrics import Metrics, current_route
from sample_workload.records import RecordBuffer, restore_spills
from sample_workload.seed import hash_cost, seed
from sample_workload.settings import Settings
from sample_workload.state import AppState, BadRequest

log = logging.getLogger("sample_workload")

LOOPBACK_CLIENTS = ("127.0.0.1", "::1", "localhost")
# (status, detail) of the errors answered on purpose; anything else is a 500 "other".
ERROR_ANSWERS = {
    "pool_timeout": (503, "no database connection free within POOL_TIMEOUT_S"),
    "timeout": (504, "statement_timeout exceeded"),
}


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


ROUTES = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/login", auth.login, methods=["POST"]),
    Route("/records", records.post_record, methods=["POST"]),
    Route("/challenges/{user_id}", challenges.get_challenges, methods=["GET"]),
    Route("/report/{user_id}", dependency.get_report, methods=["GET"]),
    Route("/debug/vars", debug.debug_vars, methods=["GET"]),
    Route("/metrics", prometheus.metrics, methods=["GET"]),
    Route("/debug/pprof/", profiling.index, methods=["GET"]),
    Route("/debug/pprof/profile", profiling.cpu_profile, methods=["GET"]),
    Route("/debug/pprof/heap", profiling.heap, methods=["GET"]),
    Route("/debug/cprofile", profiling.cprofile, methods=["GET"]),
]


class Instrument:
    """Counts in-flight requests and requests by route and status, names the route
    for statement attribution, turns known failures into their error answers, and
    keeps /debug/* to loopback clients whatever address the server was bound to."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    def _route(self, scope: Scope) -> str:
        for route in ROUTES:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return f"{scope['method']} {route.path}"
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        m = self.metrics
        route = self._route(scope)
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        # The admin endpoints are not the workload: a sampler polling /debug/vars or a
        # scraper of /metrics must not show up as an in-flight request, nor dilute requests_total.
        workload = not scope["path"].startswith(("/debug", "/healthz", "/metrics"))
        m.in_flight += workload
        token = current_route.set(route)
        try:
            client = (scope.get("client") or ("",))[0]
            if scope["path"].startswith("/debug") and client not in LOOPBACK_CLIENTS:
                await _error("forbidden", 403, "/debug is served to loopback clients only")(scope, receive, send_wrapper)
                return
            try:
                await self.app(scope, receive, send_wrapper)
            except Exception as e:
                if started:
                    raise
                await self._answer(e)(scope, receive, send_wrapper)
        finally:
            current_route.reset(token)
            m.in_flight -= workload
            m.count_request(route, status, workload)

    def _answer(self, e: Exception) -> Response:
        if isinstance(e, BadRequest):
            return _error("bad_request", 400, e.detail)
        kind = error_kind(e)
        if kind in ERROR_ANSWERS:
            self.metrics.error(kind)
            status, detail = ERROR_ANSWERS[kind]
            return _error(kind, status, detail)
        self.metrics.error("other")
        log.exception("unhandled error")
        return _error("other", 500, f"{type(e).__name__}")


def _error(kind: str, status: int, detail: str) -> JSONResponse:
    return JSONResponse({"error": kind, "detail": detail}, status_code=status)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    metrics = Metrics()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("sample_workload").setLevel(settings.log_level.upper())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(settings, metrics)
        state = AppState(settings=settings, metrics=metrics, db=db)
        try:
            # Start-up work gets its own engine and counters: /debug/vars counts serving only.
            setup = Database(settings, Metrics())
            try:
                if settings.seed:
                    await seed(setup, settings)
                await _warn_hash_cost(setup, settings)
            finally:
                await setup.dispose()
            restored = await restore_spills(db, settings)
            if restored:
                metrics.records_written += restored
            if settings.write_mode == "batch":
                state.buffer = RecordBuffer(db, settings, metrics)
                state.buffer.start()
            state.reports = dependency.ReportClient(db, settings, metrics)
            app.state.workload = state
            app.state.metrics_registry = prometheus.registry(state)
            log.info("ready on %s:%d (write_mode=%s, pool=%d+%d, bcrypt cost %d, retry %s)",
                     settings.host, settings.port, settings.write_mode, settings.pool_size,
                     settings.pool_max_overflow, settings.bcrypt_cost, settings.retry_policy)
            yield
        finally:
            if state.buffer is not None:
                await state.buffer.close()
            await db.dispose()

    app = Starlette(routes=ROUTES, lifespan=lifespan)
    app.add_middleware(Instrument, metrics=metrics)
    app.state.metrics = metrics
    return app


async def _warn_hash_cost(db: Database, settings: Settings) -> None:
    import sqlalchemy as sa

    from sample_workload.db import users

    try:
        async with db.engine.connect() as conn:
            stored: Any = (await conn.execute(sa.select(users.c.password_hash).limit(1))).scalar_one_or_none()
    except Exception as e:  # noqa: BLE001 - no schema yet is fine: the service can still start
        log.warning("no seeded users (%s); run `python -m sample_workload seed` or start with SEED=1",
                    type(e).__name__)
        return
    if stored is not None and hash_cost(stored) != settings.bcrypt_cost:
        log.warning("stored password hashes have cost %d but BCRYPT_COST=%d: logins cost %d; "
                    "start with SEED=1 (or run the seed) to rehash", hash_cost(stored), settings.bcrypt_cost,
                    hash_cost(stored))


def __getattr__(name: str) -> Any:
    # `uvicorn sample_workload.app:app` reads this; built on first access, so importing
    # the module (python -m, tests) does not read the environment.
    if name == "app":
        built = create_app()
        globals()["app"] = built
        return built
    raise AttributeError(name)
