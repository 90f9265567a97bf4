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

from perflab.analysis.roles import increase, label_values, role_rows
from perflab.analysis.rundata import RunData
from perflab.analysis.signatures._measure import (
    MIN_REQUESTS,
    Evidence,
    Finding,
    at_least,
    decided,
    finding,
    latency,
    missing_recommendation,
    role_increase,
    role_missing,
    role_used,
)
from perflab.analysis.steady import Window

NAME = "retry-storm"
SUMMARY = "timeouts retried at once: several downstream calls (database queries, dependency calls) per request"

# Twice the downstream work of a request that is not retried. The storm measured 2.4–2.8, its backoff
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
HOW_TO_COLLECT = ("needs a counter of the service's downstream calls (database queries or dependency calls, "
                  "retries included: --role downstream_calls=METRIC) sampled during the load with its request "
                  "counter or the k6 NDJSON, or pg_stat_statements snapshots before and after the load")

KEY_EVIDENCE = ("downstream_calls_per_request", "pg_queries_per_request", "timeout_rate", "k6_timeout_rate",
                "retries_per_request", "p95_ms", "error_rate")

RECOMMENDATION = "exponential backoff with jitter, a retry budget and a circuit breaker"


def calls_per_request(data: RunData, window: Window | None, ev: Evidence) -> tuple[float | None, bool]:
    """(downstream calls per request, is_lower_bound): the downstream_calls role over the
    requests role, else over k6's requests at the same rate; else pg_stat_statements calls."""
    calls = role_increase(data, window, "downstream_calls")
    if calls is not None and calls[1] > 0 and window is not None:
        requests = role_increase(data, window, "requests")
        per_request: float | None = None
        if requests is not None and requests[0] > 0:
            per_request = calls[0] / requests[0]
            ev.add(downstream_calls=calls[0], app_requests=requests[0])
            ev.use(role_used(data, "downstream_calls", "increase in the steady window") + " / "
                   + role_used(data, "requests", "increase in the steady window"))
        else:
            # No request counter: the calls' rate over k6's request rate in the same window.
            k6_n = window.filter(data.requests).height
            if k6_n >= MIN_REQUESTS and window.duration_s > 0:
                per_request = (calls[0] / calls[1]) / (k6_n / window.duration_s)
                ev.add(downstream_calls_per_s=calls[0] / calls[1], k6_requests_per_s=k6_n / window.duration_s)
                ev.use(role_used(data, "downstream_calls", "rate in the steady window") + " / k6 request rate")
        if per_request is not None:
            ev.add(downstream_calls_per_request=per_request)
            retries = role_increase(data, window, "retries")
            if retries is not None and per_request > 0:
                ev.add(retries_per_request=retries[0] / calls[0] * per_request if calls[0] else 0.0)
            return per_request, False
    ev.miss(role_missing(data, "downstream_calls"))
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
    """Share of requests that timed out: the errors role's timeout series (a series whose
    labels name a timeout) over the requests role, else k6's timeout statuses."""
    errors = role_rows(data.signals, "errors")
    timeout_series = [s for s in errors["series"].unique().to_list() if "timeout" in label_values(s).lower()
                      and "pool" not in label_values(s).lower()]
    requests = role_increase(data, window, "requests")
    if timeout_series and requests is not None and requests[0] > 0 and window is not None:
        rows = errors.filter(pl.col("series").is_in(timeout_series))
        timeouts = increase(rows, "errors", window.start_s, window.end_s)
        if timeouts is not None:
            ev.add(timeout_rate=timeouts / requests[0])
            ev.use(role_used(data, "errors", "its timeout series") + " / requests")
            return timeouts / requests[0]
    if window is None or data.requests.is_empty():
        ev.miss("timeout counts (an errors role with a timeout series, or k6 request statuses)")
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
    qpr, lower_bound = calls_per_request(data, window, ev)
    rate = timeout_rate(data, window, ev)
    amplified = at_least(qpr, QPR_MIN)
    if lower_bound and amplified is False:
        amplified = None  # a lower bound under the threshold says nothing
    cond = decided(True, amplified, at_least(rate, TIMEOUT_RATE_MIN))
    if cond is True:
        rec = (f"{qpr:.2f} downstream calls per request with {rate:.0%} of requests timing out: "
               f"failed calls are retried at once. " + RECOMMENDATION)
    elif cond is None:
        rec = missing_recommendation(ev, HOW_TO_COLLECT)
    else:
        rec = None
    return finding(NAME, cond, ev, rec)
