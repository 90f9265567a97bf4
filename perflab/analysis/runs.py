"""A run's headline numbers and the doctor's verdicts (what ``perflab runs`` lists), for lab
runs and user groups alike.

requests, rps, p95 and error rate are k6's own figures (k6_summary over the run's
samples); service CPU from whichever the run has (perflab.analysis.cpu); downstream calls
per request from the service's own counters (the downstream_calls and requests roles),
because pg_stat_statements does not count the statements a statement_timeout cancelled
(LAB-NOTES); ``verdicts`` is `perflab doctor`'s verdict for every signature.

Computing them reads every k6 point of a run (k6's percentiles need all of them) and every
frame the doctor judges: ~30 ms for the numbers and 15–30 ms for the verdicts of a
15-second run, 8.6 s for 240 runs before the verdicts. So they are stored (run_summaries)
when a run is made or ingested, with a fingerprint of what they came from (the run, its
sources and role mappings, and the analysis code), and ``list_runs`` reads them back in one
query, computing only those whose run changed since (or that no perflab stored yet).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from perflab.analysis.code_version import analysis_code
from perflab.store import Store

if TYPE_CHECKING:
    from perflab.analysis.run import Run


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
    # `perflab doctor`'s verdict per signature, in its order: present, absent or insufficient-data.
    verdicts: dict[str, str] | None = None


# Part of every fingerprint: raise it when RunSummary changes shape (2: verdicts), and every
# stored summary is computed again. A change to how anything is computed changes the
# analysis code's hash, which is part of the fingerprint too.
SUMMARY_VERSION = 2

# What a run's summary is computed from, per run in one query: its runs row (status, the
# manifest), its sources (id and content hash), its role mappings, and the code (parameter 1).
FINGERPRINTS = f"""
SELECT r.run_id, md5(concat_ws('|', '{SUMMARY_VERSION}', ?, coalesce(r.status, ''), coalesce(r.scenario, ''),
           coalesce(r.variant, ''), coalesce(r.manifest::VARCHAR, ''),
           (SELECT coalesce(string_agg(s.source_id::VARCHAR || ':' || s.sha256, ',' ORDER BY s.source_id), '')
              FROM sources s WHERE s.run_id = r.run_id),
           (SELECT coalesce(string_agg(x.role || '=' || x.metric, ',' ORDER BY x.role), '')
              FROM run_roles x WHERE x.run_id = r.run_id))) AS fingerprint
FROM runs r ORDER BY r.created_at, r.run_id
"""


def list_runs(store: Store) -> list[RunSummary]:
    """Every run's summary, oldest first: stored ones as they are, the rest computed (and
    stored, unless the store is open read-only)."""
    current = store.con.execute(FINGERPRINTS, [analysis_code()]).fetchall()
    stored = {r[0]: (r[1], r[2]) for r in store.con.execute(
        "SELECT run_id, fingerprint, summary FROM run_summaries").fetchall()}
    out, fresh = [], []
    for run_id, fingerprint in current:
        kept = stored.get(run_id)
        if kept is not None and kept[0] == fingerprint:
            out.append(RunSummary(**json.loads(kept[1])))
            continue
        summary = run_summary(_load(store, run_id))
        out.append(summary)
        fresh.append((run_id, fingerprint, json.dumps(asdict(summary))))
    if fresh and not store.read_only:
        _store(store, fresh)
    return out


def store_summaries(store: Store, run_ids: list[str]) -> None:
    """Compute and store these runs' summaries (after `perflab run` or `ingest --run`)."""
    # Only these runs' fingerprints: after `perflab run`, one run of maybe a thousand.
    prints = dict(store.con.execute(f"SELECT * FROM ({FINGERPRINTS}) WHERE run_id IN ?",
                                    [analysis_code(), run_ids]).fetchall())
    _store(store, [(rid, prints[rid], json.dumps(asdict(run_summary(_load(store, rid)))))
                   for rid in run_ids if rid in prints])


def _load(store: Store, run_id: str) -> Run:
    # Imported when a summary is computed: reading stored ones needs neither polars nor numpy
    # (a third of `perflab runs`'s start-up).
    from perflab.analysis.run import Run

    return Run.load(store, run_id)


def _store(store: Store, rows: list[tuple[str, str, str]]) -> None:
    now = datetime.now(UTC)
    with store.transaction():
        store.con.executemany("DELETE FROM run_summaries WHERE run_id = ?", [[r[0]] for r in rows])
        store.con.executemany("INSERT INTO run_summaries VALUES (?, ?, ?, ?)", [[*r, now] for r in rows])


def run_summary(run: Run) -> RunSummary:
    import numpy as np

    from perflab.analysis.loadtest import k6_summary
    from perflab.analysis.signatures import diagnose

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
    out.verdicts = {f.signature: f.verdict for f in diagnose(run).findings}
    return out


def calls_per_request(run: Run) -> float | None:
    """Downstream calls per request over the whole run: the downstream_calls role's increase
    over the requests role's (None without both)."""
    from perflab.analysis import roles

    calls = roles.increase(run.signals, "downstream_calls")
    requests = roles.increase(run.signals, "requests")
    if calls is None or not requests:
        return None
    return calls / requests
