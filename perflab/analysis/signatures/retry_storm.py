"""retry-storm: do timeouts come back as retries that multiply the load on the database?

A slow dependency (here: a query that always exceeds statement_timeout) fails; the
service retries at once, several times, with no budget. Every failing request becomes
several statements, which slows the dependency further::

    requests      ────────────────────────    20/s
    statements    ════════════════════════    2.4–2.8 per request (1 with no retries)
    timeouts      ▃▃▃▃▃▃▃▃▃▃▃▃▃▃▃▃▃▃▃▃▃▃▃▃    ~30 % of requests
    after the fix (backoff + jitter, retry budget, breaker): 1.1 statements per request,
    the same timeouts (backoff cannot make an always-slow query fast; LAB-NOTES)

Present when both hold in the steady window: database queries per request ≥ QPR_MIN and
timeouts per request ≥ TIMEOUT_RATE_MIN. Queries per request come from the service's
counters (db_queries ÷ requests_total) or, without them, from pg_stat_statements
(calls after − before ÷ k6 requests; a lower bound: PostgreSQL does not count the
statements a statement_timeout cancelled, so a low value there proves nothing).
Timeouts come from the service's counters (errors.timeout) or from k6 (status 504 or
408, or k6's request-timeout error 1050).
"""

from __future__ import annotations

import polars as pl

from perflab.analysis.rundata import RunData
from perflab.analysis.signatures._measure import (
    MIN_REQUESTS,
    Evidence,
    Finding,
    all_of,
    at_least,
    counter_delta,
    finding,
    latency,
    missing_recommendation,
)
from perflab.analysis.steady import Window

NAME = "retry-storm"
SUMMARY = "timeouts retried at once: several database queries per request"

# Twice the work of a request that is not retried. The storm measured 2.4–2.8, its backoff
# fix 1.10–1.11; the healthy mix 1.55 (its challenges page runs five queries, the others
# one), so "above 1" alone would call every chatty page a storm.
QPR_MIN = 2.0
# 5 % of requests timing out: below that, even five immediate retries add less than a
# quarter to the load. The storm and its fix both measured ~30 % (heavy reports).
TIMEOUT_RATE_MIN = 0.05
# What a client sees of a timeout: gateway timeout, request timeout, k6's own timeout error.
TIMEOUT_STATUSES = (504, 408)
K6_TIMEOUT_ERROR = "1050"

# How an insufficient-data verdict says to get the data.
HOW_TO_COLLECT = ("needs the service's query and request counters (`perflab run` samples /debug/vars), or "
                  "pg_stat_statements snapshots before and after the load with the k6 NDJSON")

KEY_EVIDENCE = ("queries_per_request", "pg_queries_per_request", "timeout_rate", "k6_timeout_rate",
                "retries_per_request", "statement_timeouts_per_request", "p95_ms", "error_rate")

RECOMMENDATION = "exponential backoff with jitter, a retry budget and a circuit breaker"


def queries_per_request(data: RunData, window: Window | None, ev: Evidence) -> tuple[float | None, bool]:
    """(queries per request, is_lower_bound)."""
    queries = counter_delta(data, window, "counters.db_queries")
    requests = counter_delta(data, window, "counters.requests_total")
    if queries is not None and requests:
        qpr = queries / requests
        ev.add(queries_per_request=qpr, app_requests=requests)
        retries = counter_delta(data, window, "counters.retries")
        if retries is not None:
            ev.add(retries_per_request=retries / requests)
        st = counter_delta(data, window, "counters.statement_timeouts")
        if st is not None:
            ev.add(statement_timeouts_per_request=st / requests)
        ev.use("/debug/vars counters.db_queries / requests_total in the steady window")
        return qpr, False
    ev.miss("the service's /debug/vars counters.db_queries and counters.requests_total")
    if data.pg_statement_calls is not None and data.requests.height >= MIN_REQUESTS:
        qpr = data.pg_statement_calls / data.requests.height
        ev.add(pg_queries_per_request=qpr, pg_statement_calls=data.pg_statement_calls)
        ev.use("pg_stat_statements calls (after − before, every client of the database) / k6 requests, "
               "whole run")
        ev.caveat("pg_stat_statements leaves out statements cancelled by statement_timeout: "
                  "queries per request from it are a lower bound")
        if data.pg_reset:
            ev.caveat("pg_stat_statements was reset between the snapshots")
        return qpr, True
    if data.pg_statement_calls is None:
        ev.miss("pg_stat_statements snapshots before and after the run" if data.pg_statement_snapshots == 0
                else "a second pg_stat_statements snapshot (calls are after − before)")
    return None, False


def timeout_rate(data: RunData, window: Window | None, ev: Evidence) -> float | None:
    timeouts = counter_delta(data, window, "counters.errors.timeout")
    requests = counter_delta(data, window, "counters.requests_total")
    if timeouts is None and requests and counter_delta(data, window, "counters.db_queries") is not None:
        # The service counts errors by kind and only once one happened: no key, no timeouts.
        timeouts = 0.0
    if timeouts is not None and requests:
        ev.add(timeout_rate=timeouts / requests)
        ev.use("/debug/vars counters.errors.timeout / requests_total")
        return timeouts / requests
    if window is None or data.requests.is_empty():
        ev.miss("timeout counts (/debug/vars counters.errors.timeout, or k6 request statuses)")
        return None
    req = window.filter(data.requests)
    if req.height < MIN_REQUESTS:
        ev.miss(f"at least {MIN_REQUESTS} k6 requests in the steady window (have {req.height})")
        return None
    is_timeout = pl.col("status").is_in(TIMEOUT_STATUSES).fill_null(False) | \
        (pl.col("error_code") == K6_TIMEOUT_ERROR).fill_null(False)
    rate = float(req.select(is_timeout.mean()).item())
    ev.add(k6_timeout_rate=rate)
    ev.use("k6 request statuses 504/408 and error code 1050 in the steady window")
    return rate


def judge(data: RunData, window: Window | None) -> Finding:
    ev = Evidence(window)
    latency(data, window, ev)
    # Latency is context here, not a condition: do not list it as missing.
    ev.missing = [m for m in ev.missing if "http_req_duration" not in m]
    qpr, lower_bound = queries_per_request(data, window, ev)
    rate = timeout_rate(data, window, ev)
    amplified = at_least(qpr, QPR_MIN)
    if lower_bound and amplified is False:
        amplified = None  # a lower bound under the threshold says nothing
    cond = all_of(amplified, at_least(rate, TIMEOUT_RATE_MIN))
    if cond is True:
        rec = (f"{qpr:.2f} database queries per request with {rate:.0%} of requests timing out: "
               f"failed calls are retried at once. " + RECOMMENDATION)
    elif cond is None:
        rec = missing_recommendation(ev, HOW_TO_COLLECT)
    else:
        rec = None
    return finding(NAME, cond, ev, rec)
