"""A run's headline numbers (what ``perflab runs`` lists), for lab runs and user groups alike.

requests, rps, p95 and error rate are k6's own figures (k6_summary over the run's
samples); service CPU comes from the lab sampler; DB queries per request from the
service's /debug/vars counters, because pg_stat_statements does not count the
statements a statement_timeout cancelled (LAB-NOTES).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    db_queries_per_request: float | None = None


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
    p50, mean = run.store.con.execute(
        "SELECT median(cpu_pct), avg(cpu_pct) FROM resource_samples "
        "WHERE run_id = ? AND role = 'service' AND cpu_pct IS NOT NULL", [run.run_id]).fetchall()[0]
    out.service_cpu_p50, out.service_cpu_mean = p50, mean
    out.db_queries_per_request = queries_per_request(run)
    return out


def counter_delta(run: Run, key: str) -> float | None:
    """last − first of a /debug/vars counter over the run."""
    d = run.store.con.execute(
        "SELECT arg_max(value, elapsed_s) - arg_min(value, elapsed_s) FROM service_vars WHERE run_id = ? AND key = ?",
        [run.run_id, key]).fetchall()[0][0]
    return float(d) if d is not None else None


def queries_per_request(run: Run) -> float | None:
    queries = counter_delta(run, "counters.db_queries")
    requests = counter_delta(run, "counters.requests_total")
    if queries is None or not requests:
        return None
    return queries / requests
