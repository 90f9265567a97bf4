"""A run's headline numbers (what ``perflab runs`` lists), for lab runs and user groups alike.

requests, rps, p95 and error rate are k6's own figures (k6_summary over the run's
samples); service CPU from whichever the run has (perflab.analysis.cpu); downstream calls
per request from the service's own counters (the downstream_calls and requests roles),
because pg_stat_statements does not count the statements a statement_timeout cancelled
(LAB-NOTES).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perflab.analysis import roles
from perflab.analysis.loadtest import k6_summary
from perflab.analysis.run import Run
from perflab.store import Store


@dataclass
class RunSummary:
    run_id: str
    scenario: str | None
    variant: str | None
    status: str
    started_at: str
    duration_s: float | None = None
    requests: int | None = None
    rps: float | None = None
    p95_ms: float | None = None
    error_rate: float | None = None
    dropped_iterations: int | None = None
    service_cpu_p50: float | None = None
    service_cpu_mean: float | None = None
    downstream_calls_per_request: float | None = None


def list_runs(store: Store) -> list[RunSummary]:
    return [run_summary(run) for run in Run.all(store)]


def run_summary(run: Run) -> RunSummary:
    out = RunSummary(run_id=run.run_id, scenario=run.scenario, variant=run.variant, status=run.status,
                     started_at=run.started_at)
    sid = run.k6_source
    if sid is not None:
        m = k6_summary(run.store, sid)
        summary = m["metrics"]
        reqs = summary.get("http_reqs", {})
        out.duration_s = m.get("duration_s")
        out.requests = int(reqs["count"]) if "count" in reqs else None
        out.rps = reqs.get("rate")
        out.p95_ms = summary.get("http_req_duration", {}).get("p(95)")
        out.error_rate = summary.get("http_req_failed", {}).get("rate")
        out.dropped_iterations = int(summary.get("dropped_iterations", {}).get("count", 0))
    samples = run.service_cpu
    if samples is not None and samples.values.height:
        cpu = samples.values["cpu_pct"].to_numpy()
        out.service_cpu_p50, out.service_cpu_mean = float(np.median(cpu)), float(cpu.mean())
    out.downstream_calls_per_request = calls_per_request(run)
    return out


def calls_per_request(run: Run) -> float | None:
    """Downstream calls per request over the whole run: the downstream_calls role's increase
    over the requests role's (None without both)."""
    calls = roles.increase(run.signals, "downstream_calls")
    requests = roles.increase(run.signals, "requests")
    if calls is None or not requests:
        return None
    return calls / requests
