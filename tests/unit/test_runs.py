"""`perflab runs` on a user-made group: k6's own numbers, and no invented ones."""

from __future__ import annotations

import json

import duckdb
import pytest

from perflab.analysis.runs import list_runs as _list_runs
from perflab import fmt
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


def test_runs_table_fits_120_columns_and_wide_shows_all(tmp_path):
    # GIVEN a lab-length run id and a much longer one of a user's group
    store = tmp_path / "s.duckdb"
    lab_id = "20261205T091500Z-login-storm-default-ab12"
    long_id = "my-teams-orders-service-load-test-against-staging-" + "x" * 40
    # (two files: the same content is stored once)
    for rid, name in ((lab_id, "main_small.ndjson"), (long_id, "main_dropped.ndjson")):
        assert run_cli("ingest", "--run", rid, str(FIXTURES / "k6" / name), store=store).returncode == 0
    oracle = json.loads((FIXTURES / "k6" / "main_small.ndjson.expected.json").read_text())["metrics"]
    # WHEN listed by default THEN every line fits 120 columns, the numbers with their units
    out = run_cli("runs", store=store)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines) <= 120
    assert lines[0].split() == ["run", "status", "requests", "req/s", "p95", "errors", "CPU", "p50", "calls/req",
                                "doctor"]
    row = next(line for line in lines if line.startswith(lab_id))
    # a k6 file alone: the doctor could judge one signature of seven (retry storm: absent)
    assert row.endswith("none (1/7)")
    p95 = oracle["http_req_duration"]["p(95)"]
    assert f"{oracle['http_reqs']['count']:,}" in row and fmt.by_name("p95_ms", p95) in row
    assert fmt.percent(oracle["http_req_failed"]["rate"], digits=1).replace(" ", "") in row.replace(" ", "")
    assert "e+" not in out.stdout and "e-0" not in out.stdout
    assert any(line.startswith("my-teams-orders") and "…" in line for line in lines)  # shortened to fit
    # WHEN --wide THEN every column, the long id in full
    wide = run_cli("runs", "--wide", store=store).stdout
    assert long_id in wide and "dropped" in wide.splitlines()[0] and "CPU mean" in wide.splitlines()[0]


def test_summaries_are_stored_and_recomputed_only_when_their_run_changes(store, monkeypatch):
    from perflab.analysis import runs as runs_module
    from perflab.store import Store

    ingest_path(store, FIXTURES / "k6" / "main_small.ndjson", run_id="g1")
    first = list_runs(store)
    assert store.sql("SELECT run_id FROM run_summaries")["run_id"].to_list() == ["g1"]
    # WHEN nothing changed THEN the stored summary is read back, nothing is computed
    computed = []
    real = runs_module.run_summary
    monkeypatch.setattr(runs_module, "run_summary", lambda run: computed.append(run.run_id) or real(run))
    assert list_runs(store) == first and computed == []
    # WHEN the run gains a source THEN its summary is computed again (the summary file: k6's own duration)
    ingest_path(store, FIXTURES / "k6" / "main_small.summary.json", run_id="g1")
    [again] = list_runs(store)
    assert computed == ["g1"] and again["rps"] != first[0]["rps"]
    assert list_runs(store) == [again] and computed == ["g1"]
    # WHEN its role mappings change THEN too
    with store.transaction():
        store.set_roles("g1", {"requests": "http_requests_total"})
    list_runs(store)
    assert computed == ["g1", "g1"]
    # A read-only store is listed without writing (a kernel may hold the store read-only)
    path = store.path
    store.close()
    con = duckdb.connect(str(path))
    con.execute("DELETE FROM run_summaries")
    con.close()
    ro = Store(path, read_only=True)
    try:
        assert [r.run_id for r in runs_module.list_runs(ro)] == ["g1"]
        assert ro.sql("SELECT count(*) AS n FROM run_summaries")["n"][0] == 0
    finally:
        ro.close()


def test_ingest_run_stores_the_summary(tmp_path):
    from perflab.store import Store

    path = tmp_path / "s.duckdb"
    assert run_cli("ingest", "--run", "g1", str(FIXTURES / "k6" / "main_small.ndjson"), store=path).returncode == 0
    with Store(path) as store:
        [stored] = store.sql("SELECT run_id, summary FROM run_summaries").to_dicts()
        assert stored["run_id"] == "g1" and json.loads(stored["summary"])["requests"] == 153


# -- the doctor's verdicts, stored with the headline numbers ---------------------------------------

RUNS = FIXTURES / "runs"


def test_verdicts_are_the_doctors_and_shown_in_few_words(tmp_path):
    # GIVEN a real retry storm ingested as a group, with the lab's role mappings
    store = tmp_path / "s.duckdb"
    folder = RUNS / "retry-storm-default"
    roles = [f"{k}={v}" for k, v in json.loads((folder / "manifest.json").read_text())["roles"].items()]
    files = [str(folder / name) for name in ("k6.ndjson.gz", "metrics.prom.gz", "resources.jsonl.gz")]
    args = ["ingest", "--run", "storm", *files, *(a for r in roles for a in ("--role", r))]
    assert run_cli(*args, store=store).returncode == 0
    # WHEN listed THEN every verdict equals `perflab doctor --json`'s
    doctor = json.loads(run_cli("doctor", "storm", "--json", store=store).stdout)
    listed = run_cli("runs", "--json", store=store)
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["verdicts"] == {f["signature"]: f["verdict"] for f in doctor["findings"]}
    assert row["verdicts"]["retry-storm"] == "present"
    # AND the table names what is present
    [_, line] = run_cli("runs", store=store).stdout.splitlines()
    assert line.startswith("storm") and line.endswith("  retry-storm")


def test_verdicts_go_stale_with_the_run(store):
    # GIVEN a run of k6 samples only: the retry storm cannot be judged present without the
    # service's own counters
    folder = RUNS / "retry-storm-default"
    ingest_path(store, folder / "k6.ndjson.gz", run_id="storm")
    [before] = list_runs(store)
    assert before["verdicts"]["retry-storm"] != "present"
    # WHEN the service's metrics and their roles join the run THEN its verdicts are judged again
    ingest_path(store, folder / "metrics.prom.gz", run_id="storm")
    with store.transaction():
        store.set_roles("storm", json.loads((folder / "manifest.json").read_text())["roles"])
    [after] = list_runs(store)
    assert after["verdicts"]["retry-storm"] == "present"
    from perflab.analysis.run import Run
    from perflab.analysis.signatures import diagnose

    assert after["verdicts"] == {f.signature: f.verdict for f in diagnose(Run.load(store, "storm")).findings}
    [stored] = store.sql("SELECT summary FROM run_summaries").to_dicts()
    assert json.loads(stored["summary"])["verdicts"] == after["verdicts"]


def test_summaries_from_other_analysis_code_are_computed_again(store, monkeypatch):
    from perflab.analysis import code_version
    from perflab.analysis import runs as runs_module

    ingest_path(store, FIXTURES / "k6" / "main_small.ndjson", run_id="g1")
    list_runs(store)
    computed = []
    real = runs_module.run_summary
    monkeypatch.setattr(runs_module, "run_summary", lambda run: computed.append(run.run_id) or real(run))
    list_runs(store)
    assert computed == []
    # WHEN perflab's analysis code differs (an upgrade changed a threshold) THEN it is recomputed
    monkeypatch.setattr(runs_module, "analysis_code", lambda: code_version.analysis_code() + "-changed")
    list_runs(store)
    assert computed == ["g1"]


@pytest.mark.parametrize(("verdicts", "cell"), [
    (None, None),
    ({"a": "absent", "b": "absent"}, "none"),
    ({"a": "absent", "b": "insufficient-data", "c": "insufficient-data"}, "none (1/3)"),
    ({"a": "insufficient-data", "b": "insufficient-data"}, "none (0/2)"),
    ({"a": "present", "b": "insufficient-data", "c": "present"}, "a, c"),
])
def test_the_doctor_cell(verdicts, cell):
    from perflab.commands.runs import doctor_cell

    assert doctor_cell(verdicts) == cell
