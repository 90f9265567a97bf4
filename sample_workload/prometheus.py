"""GET /metrics: the service's counters and gauges in Prometheus's text format.

What perflab reads from any service (its signals by role): the process collector's
``process_cpu_seconds_total`` and ``process_resident_memory_bytes``, the connection pool
under OpenTelemetry's semantic-convention names (``db_client_connections_max``,
``db_client_connections_usage{state}``, ``db_client_connections_pending_requests``), the
requests in flight as ``http_server_active_requests``, and the service's own counters
(``app_requests_total``, ``app_errors_total{kind}``, ``app_db_queries_total``,
``app_retries_total``, ``app_buffer_depth``...), which a target file maps to roles.

The values are read from the app's state when scraped (one collector, no second copy of
the bookkeeping); /debug/vars shows the same numbers as JSON.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from sample_workload.state import AppState


class StateCollector:
    """The app's Metrics, pool and buffer as metric families, read at each scrape."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        s = self.state
        m = s.metrics
        pool = s.db.pool_stats()

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, value=value)

        yield counter("app_requests", "Workload requests answered (not /debug, /healthz or /metrics).",
                      m.requests_total)
        by_route = CounterMetricFamily("app_http_requests", "Every request answered, by route and status.",
                                       labels=["route", "status"])
        for route, statuses in sorted(m.requests.items()):
            for status, n in sorted(statuses.items()):
                by_route.add_metric([route, status], n)
        yield by_route
        errors = CounterMetricFamily("app_errors", "Failed requests by kind.", labels=["kind"])
        for kind, n in m.errors.items():
            errors.add_metric([kind], n)
        yield errors
        yield counter("app_db_queries", "Database queries sent, cancelled ones included (retries too).",
                      m.db_queries)
        yield counter("app_db_statements", "Database statements sent, SET LOCAL included.", m.db_statements)
        yield counter("app_db_checkouts", "Connections checked out of the pool.", m.db_checkouts)
        yield counter("app_statement_timeouts", "Statements cancelled by statement_timeout.", m.statement_timeouts)
        yield counter("app_retries", "Report queries retried.", m.retries)
        yield counter("app_retry_budget_exhausted", "Retries refused by the retry budget.", m.retry_budget_exhausted)
        yield counter("app_circuit_opened", "Times the circuit breaker opened.",
                      s.reports.breaker.opened if s.reports is not None else 0)
        yield counter("app_records_written", "Records written to the database.", m.records_written)
        yield counter("app_records_accepted", "Records accepted by POST /records.", m.records_accepted)
        yield counter("app_flushes", "Buffer flushes.", m.flushes)
        yield GaugeMetricFamily("http_server_active_requests", "Workload requests being served (OpenTelemetry "
                                "http.server.active_requests).", value=m.in_flight)
        # Capacity is what the pool opens before a request waits: its size plus overflow.
        yield GaugeMetricFamily("db_client_connections_max", "Most connections the pool opens (pool size + "
                                "max overflow; OpenTelemetry db.client.connections.max).",
                                value=pool["size"] + s.settings.pool_max_overflow if pool["size"] else 0)
        usage = GaugeMetricFamily("db_client_connections_usage", "Connections by state (OpenTelemetry "
                                  "db.client.connections.usage).", labels=["state"])
        usage.add_metric(["used"], pool["checked_out"])
        usage.add_metric(["idle"], pool["checked_in"])
        yield usage
        yield GaugeMetricFamily("db_client_connections_pending_requests", "Tasks waiting for a connection "
                                "(OpenTelemetry db.client.connections.pending_requests).", value=m.db_waiting)
        yield GaugeMetricFamily("app_buffer_depth", "Records waiting in the write buffer.",
                                value=s.buffer.depth if s.buffer is not None else 0)
        yield GaugeMetricFamily("app_buffer_limit", "The write buffer's capacity (BUFFER_LIMIT).",
                                value=s.settings.buffer_limit)


def registry(state: AppState) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=reg)
    PlatformCollector(registry=reg)
    GCCollector(registry=reg)
    reg.register(StateCollector(state))
    return reg


async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
