"""`perflab runs` on a user-made group: k6's own numbers, and no invented ones."""

from __future__ import annotations

import json

from perflab.analysis.runs import list_runs as _list_runs
from perflab.jsonable import to_jsonable
from perflab.ingest import ingest_path
from tests.conftest import FIXTURES
from tests.helpers import run_cli


def list_runs(store):
    return to_jsonable(_list_runs(store))


def test_a_user_group_reports_k6s_numbers(store):
    ingest_path(store, FIXTURES / "k6" / "main_small.ndjson", run_id="g1")
    ingest_path(store, FIXTURES / "k6" / "main_small.summary.json", run_id="g1")
    oracle = json.loads((FIXTURES / "k6" / "main_small.ndjson.expected.json").read_text())["metrics"]
    [row] = list_runs(store)
    assert row["run_id"] == "g1" and row["status"] == "complete"
    assert row["requests"] == oracle["http_reqs"]["count"] == 153
    assert row["rps"] == oracle["http_reqs"]["rate"]  # with the summary, k6's own duration
    assert row["p95_ms"] == oracle["http_req_duration"]["p(95)"]
    assert row["error_rate"] == oracle["http_req_failed"]["rate"]
    assert row["started_at"] == "2026-11-22T10:08:33.567150+00:00"  # the first sample, not ingest time
    # no resource samples or service vars in a user's k6 file: not measured, not zero
    assert row["service_cpu_p50"] is None and row["downstream_calls_per_request"] is None


def test_runs_json_shape(tmp_path):
    store = tmp_path / "s.duckdb"
    assert run_cli("ingest", "--run", "g1", str(FIXTURES / "k6" / "main_small.ndjson"), store=store).returncode == 0
    out = run_cli("runs", "--json", store=store)
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert set(row) >= {"run_id", "scenario", "variant", "status", "started_at", "duration_s", "requests", "rps",
                        "p95_ms", "error_rate", "service_cpu_p50", "downstream_calls_per_request"}
