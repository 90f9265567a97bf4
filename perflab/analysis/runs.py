"""A run's headline numbers, from the store alone (works for lab runs and user groups).

requests, rps, p95 and error rate are k6's own figures (k6_summary over the run's
NDJSON); service CPU comes from the lab sampler; DB queries per request from the
service's /debug/vars counters, because pg_stat_statements does not count the
statements a statement_timeout cancelled (LAB-NOTES).
"""

from __future__ import annotations

import json
from typing import Any

from perflab.store import Store


def list_runs(store: Store) -> list[dict[str, Any]]:
    ids = store.sql("SELECT run_id FROM runs ORDER BY created_at, run_id")["run_id"].to_list()
    return [run_summary(store, rid) for rid in ids]


def run_summary(store: Store, run_id: str) -> dict[str, Any]:
    rows = store.sql("SELECT * FROM runs WHERE run_id = ?", [run_id]).to_dicts()
    if not rows:
        from perflab.errors import PerflabError

        raise PerflabError(f"no run {run_id!r} in {store.path}")
    run = rows[0]
    manifest = json.loads(run["manifest"]) if run["manifest"] else {}
    out: dict[str, Any] = {
        "run_id": run_id,
        "scenario": run["scenario"],
        "variant": run["variant"],
        "status": run["status"] or "complete",  # a user-made group is as complete as its files
        "started_at": manifest.get("started_at") or _first_sample_at(store, run_id) or run["created_at"].isoformat(),
        "duration_s": None,
        "requests": None,
        "rps": None,
        "p95_ms": None,
        "error_rate": None,
        "dropped_iterations": None,
        "service_cpu_p50": None,
        "service_cpu_mean": None,
        "db_queries_per_request": None,
    }
    out.update(_k6_numbers(store, run_id))
    out.update(_cpu(store, run_id))
    out["db_queries_per_request"] = queries_per_request(store, run_id)
    return out


def _first_sample_at(store: Store, run_id: str) -> str | None:
    # A user's group has no manifest: its first k6 sample is when it started, and unlike
    # the ingest time it is the same whenever the files are ingested.
    t = store.sql("SELECT min(time) AS t FROM k6_points WHERE run_id = ?", [run_id])["t"][0]
    return t.isoformat() if t is not None else None


def k6_source(store: Store, run_id: str) -> int | None:
    """The run's k6 samples: its first NDJSON source, else its first CSV (the same samples)."""
    rows = store.con.execute(
        "SELECT source_id FROM sources WHERE run_id = ? AND kind IN ('k6', 'k6-csv') "
        "ORDER BY kind = 'k6' DESC, source_id LIMIT 1", [run_id]).fetchall()
    return int(rows[0][0]) if rows else None


def cpu_profile_source(store: Store, run_id: str) -> int | None:
    """The run's CPU profile: a pprof source with a cpu sample type, else a cProfile dump
    (the first of each, by source id)."""
    rows = store.con.execute(
        """SELECT s.source_id FROM sources s
           WHERE s.run_id = ? AND (
                 (s.kind = 'pprof' AND EXISTS (SELECT 1 FROM pprof_sample_types t
                                               WHERE t.source_id = s.source_id AND t.type = 'cpu'))
              OR s.kind = 'cprofile')
           ORDER BY s.kind = 'pprof' DESC, s.source_id LIMIT 1""", [run_id]).fetchall()
    return int(rows[0][0]) if rows else None


def _k6_numbers(store: Store, run_id: str) -> dict[str, Any]:
    from perflab.analysis.loadtest import k6_summary

    sid = k6_source(store, run_id)
    if sid is None:
        return {}
    summary = k6_summary(store, sid)
    m = summary["metrics"]
    reqs = m.get("http_reqs", {})
    dur = m.get("http_req_duration", {})
    failed = m.get("http_req_failed", {})
    dropped = m.get("dropped_iterations", {})
    return {
        "duration_s": summary.get("duration_s"),
        "requests": int(reqs["count"]) if "count" in reqs else None,
        "rps": reqs.get("rate"),
        "p95_ms": dur.get("p(95)"),
        "error_rate": failed.get("rate"),
        "dropped_iterations": int(dropped.get("count", 0)),
    }


def _cpu(store: Store, run_id: str) -> dict[str, Any]:
    r = store.sql(
        "SELECT median(cpu_pct) AS p50, avg(cpu_pct) AS mean FROM resource_samples "
        "WHERE run_id = ? AND role = 'service' AND cpu_pct IS NOT NULL", [run_id]
    ).to_dicts()[0]
    return {"service_cpu_p50": r["p50"], "service_cpu_mean": r["mean"]}


def counter_delta(store: Store, run_id: str, key: str) -> float | None:
    """last − first of a /debug/vars counter over the run."""
    r = store.sql(
        "SELECT arg_max(value, elapsed_s) - arg_min(value, elapsed_s) AS d FROM service_vars "
        "WHERE run_id = ? AND key = ?", [run_id, key]
    )
    d = r["d"][0] if not r.is_empty() else None
    return float(d) if d is not None else None


def queries_per_request(store: Store, run_id: str) -> float | None:
    queries = counter_delta(store, run_id, "counters.db_queries")
    requests = counter_delta(store, run_id, "counters.requests_total")
    if queries is None or not requests:
        return None
    return queries / requests
