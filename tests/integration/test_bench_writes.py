"""`perflab bench-writes`: a real run (PostgreSQL, the service, k6) and its stored numbers,
the benchmark's own row-count check, and the bench-writes format's refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perflab.errors import PerflabError
from perflab.ingest import ingest_path
from perflab.lab import benchwrites
from perflab.lab.postgres import pid_alive, port_listens
from perflab.store import Store
from tests.helpers import run_cli, store_fingerprint

ROWS = 500
RATE = 100
DURATION_S = 4
# k6 starts iterations on a fixed schedule, so records/s should sit on the requested rate;
# 20 % leaves room for a loaded 2-core machine shared with other test runs.
RATE_TOLERANCE = 0.20
# COPY beats one transaction per row by ~30-70x here; 3x can only fail if something is broken.
COPY_OVER_SINGLE_MIN = 3.0


# -- the real thing -----------------------------------------------------------------------------

@pytest.mark.slow
def test_a_small_real_run_measures_and_stores_the_same_numbers(tmp_path: Path):
    # GIVEN a fresh store WHEN a small benchmark runs end to end through the CLI
    store_path = tmp_path / "s.duckdb"
    result = run_cli("bench-writes", "--rows", str(ROWS), "--reps", "1", "--intervals", "0.5,1",
                     "--duration", str(DURATION_S), "--record-rate", str(RATE), "--json",
                     store=store_path, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)

    # THEN every method wrote the rows (the benchmark counts them in PostgreSQL after each
    # repetition and stops otherwise), and the figures hang together
    methods = {m["method"]: m for m in out["methods"]}
    assert list(methods) == ["single", "executemany", "multirow", "copy", "upsert"]
    for m in methods.values():
        assert m["rows"] == ROWS and m["reps"] == 1 and len(m["reps_seconds"]) == 1
        assert m["seconds"] == m["reps_seconds"][0] > 0
        assert m["rows_per_s"] == pytest.approx(ROWS / m["seconds"], rel=1e-3)
        assert m["x_single"] == pytest.approx(m["rows_per_s"] / methods["single"]["rows_per_s"], abs=0.01)
    assert methods["single"]["x_single"] == 1.0
    assert methods["copy"]["rows_per_s"] > COPY_OVER_SINGLE_MIN * methods["single"]["rows_per_s"]

    # ... a longer flush interval waits longer and writes less often
    by_interval = {i["interval_s"]: i for i in out["flush_intervals"]}
    assert sorted(by_interval) == [0.5, 1.0]
    fast, slow = by_interval[0.5], by_interval[1.0]
    assert slow["e2e_latency_p95_ms"] > fast["e2e_latency_p95_ms"]
    assert slow["db_writes_per_s"] < fast["db_writes_per_s"]
    for i in (fast, slow):
        assert i["duration_s"] == DURATION_S and i["record_rate"] == RATE
        # every record k6 sent was accepted and reached game_records (checked inside too)
        assert i["records_written"] == i["k6_requests"] > 0
        assert i["records_per_s"] == pytest.approx(RATE, rel=RATE_TOLERANCE)
        assert i["records_per_s"] == pytest.approx(i["k6_requests"] / DURATION_S, rel=RATE_TOLERANCE)
        assert i["db_writes_per_s"] == pytest.approx(i["flushes"] / DURATION_S, abs=1e-3)
        # the lag of a uniformly arriving record is spread over one interval: p95 ~ 0.95 x interval
        assert 500 * i["interval_s"] < i["e2e_latency_p95_ms"] < 1000 * i["interval_s"] + 1000
        assert i["e2e_latency_p50_ms"] < i["e2e_latency_p95_ms"] <= i["e2e_latency_max_ms"]
        # the client does not wait for the flush: its POST is answered at acceptance
        assert i["post_p95_ms"] < i["e2e_latency_p95_ms"]
        assert i["write_transactions"] >= i["flushes"] > 0
        assert i["k6_dropped_iterations"] == 0

    # ... a progress line per step went to stderr
    assert "methods rep 1/1: copy" in result.stderr
    assert "interval 0.5 s: e2e p95" in result.stderr and "interval 1 s: e2e p95" in result.stderr

    # ... nothing it started is still running or listening
    procs = out["processes"]
    if procs["postgres"]["pid"] is not None:  # None: an external PERFLAB_PG_DSN server
        assert not pid_alive(procs["postgres"]["pid"])
        assert not port_listens(procs["postgres"]["port"])
        assert not Path(procs["postgres"]["datadir"]).exists()
    assert [p["interval_s"] for p in procs["intervals"]] == [0.5, 1.0]
    for p in procs["intervals"]:
        assert not pid_alive(p["service_pid"]) and not pid_alive(p["k6_pid"])
        assert not port_listens(p["service_port"])

    # ... and the file in the run folder and the store hold the same numbers as the JSON
    bench_id = out["bench_id"]
    doc_path = store_path.parent / "runs" / bench_id / "bench-writes.json"
    assert Path(out["file"]) == doc_path
    doc = json.loads(doc_path.read_text())
    assert doc["perflab"] == "bench-writes" and doc["methods"] == out["methods"]
    assert doc["flush_intervals"] == out["flush_intervals"]
    assert doc["host"]["cpu_count"] >= 1 and doc["versions"]["postgres"] and doc["versions"]["k6"]

    store = Store(store_path)
    try:
        src = store.sql("SELECT source_id, kind, run_id FROM sources WHERE run_id = ?", [bench_id]).to_dicts()
        assert src == [{"source_id": out["source_id"], "kind": "bench-writes", "run_id": bench_id}]
        stored = store.sql("SELECT * EXCLUDE (source_id, run_id) FROM bench_write_methods "
                           "WHERE run_id = ? ORDER BY rowid", [bench_id]).to_dicts()
        assert stored == out["methods"]
        cols = [c for c in store.sql("SELECT * FROM bench_flush_intervals LIMIT 0").columns
                if c not in ("source_id", "run_id")]
        stored = store.sql("SELECT * EXCLUDE (source_id, run_id) FROM bench_flush_intervals "
                           "WHERE run_id = ? ORDER BY interval_s", [bench_id]).to_dicts()
        assert stored == [{c: i.get(c) for c in cols} for i in out["flush_intervals"]]
        assert set(cols) == set(out["flush_intervals"][0])
        run = store.sql("SELECT scenario, status FROM runs WHERE run_id = ?", [bench_id]).to_dicts()
        assert run == [{"scenario": "bench-writes", "status": "complete"}]
    finally:
        store.close()


@pytest.mark.slow
def test_a_method_that_writes_a_row_short_stops_the_benchmark(pg_cluster, monkeypatch):
    # GIVEN a COPY that drops the last row WHEN the methods are measured
    real = benchwrites.METHOD_TABLE["copy"]

    def short_copy(conn, rows, prep):
        real.write(conn, rows[:-1], prep)

    monkeypatch.setitem(benchwrites.METHOD_TABLE, "copy", benchwrites.Method("copy", real.description, short_copy))
    # THEN the benchmark fails loudly, naming the method and both counts
    with pytest.raises(benchwrites.BenchmarkError, match=r"method copy \(rep 1\) left 49 rows .* expected 50"):
        benchwrites.bench_methods(pg_cluster.libpq_dsn, 50, 1)
    assert benchwrites.BenchmarkError("x").exit_code == 1


# -- the format -----------------------------------------------------------------------------------

def _doc(**changes) -> dict:
    doc = {
        "perflab": "bench-writes", "version": 1, "bench_id": "b1", "host": {"cpu_count": 2},
        "settings": {"rows": 10}, "versions": {"postgres": "15"},
        "methods": [
            {"method": "single", "rows": 10, "seconds": 0.5, "rows_per_s": 20.0, "x_single": 1.0,
             "reps": 2, "reps_seconds": [0.5, 0.6], "description": "one by one"},
            {"method": "copy", "rows": 10, "seconds": 0.01, "rows_per_s": 1000.0, "x_single": 50.0,
             "reps": 2, "reps_seconds": [0.01, 0.02], "description": "COPY"},
        ],
        "flush_intervals": [
            {"interval_s": 0.5, "e2e_latency_p95_ms": 480.5, "db_writes_per_s": 2.0, "records_per_s": 199.5,
             "flushes": 20, "records_written": 1995},
        ],
    }
    doc.update(changes)
    return doc


def test_a_bench_writes_file_is_detected_by_content_and_stored(store: Store, tmp_path: Path):
    path = tmp_path / "results.txt"  # no telling extension: detection reads the content
    path.write_text(json.dumps(_doc()))
    result = ingest_path(store, path, run_id="b1")
    assert result.kind == "bench-writes" and result.new
    assert result.stats == {"methods": 2, "flush intervals": 1}
    rows = store.sql("SELECT method, rows, seconds, rows_per_s, x_single, reps, reps_seconds "
                     "FROM bench_write_methods ORDER BY rowid").to_dicts()
    assert rows == [
        {"method": "single", "rows": 10, "seconds": 0.5, "rows_per_s": 20.0, "x_single": 1.0, "reps": 2,
         "reps_seconds": [0.5, 0.6]},
        {"method": "copy", "rows": 10, "seconds": 0.01, "rows_per_s": 1000.0, "x_single": 50.0, "reps": 2,
         "reps_seconds": [0.01, 0.02]},
    ]
    iv = store.sql("SELECT run_id, interval_s, e2e_latency_p95_ms, flushes, post_p95_ms "
                   "FROM bench_flush_intervals").to_dicts()
    assert iv == [{"run_id": "b1", "interval_s": 0.5, "e2e_latency_p95_ms": 480.5, "flushes": 20,
                   "post_p95_ms": None}]
    meta = json.loads(store.source(result.source_id)["meta"])
    assert meta["bench_id"] == "b1" and meta["host"] == {"cpu_count": 2}
    assert not ingest_path(store, path).new  # same content: a no-op


def test_a_bench_writes_file_without_methods_is_refused_in_one_line(store_path: Path, tmp_path: Path):
    # GIVEN a store with one good bench file in it, and a second file missing `methods`
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_doc()))
    bad_doc = _doc(bench_id="b2")
    del bad_doc["methods"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bad_doc))
    with Store(store_path) as s:
        ingest_path(s, good)
        before = store_fingerprint(s)
    # WHEN it is ingested
    result = run_cli("ingest", str(bad), store=store_path, timeout=60)
    # THEN exit 2, one line naming the file and the problem, and the store is unchanged
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == [f"perflab: {bad}: bench-writes file has no 'methods' list"]
    with Store(store_path) as s:
        assert store_fingerprint(s) == before


@pytest.mark.parametrize("change, message", [
    ({"methods": []}, "'methods' is empty"),
    ({"version": 2}, "version 2; this perflab reads 1"),
    ({"flush_intervals": [{"interval_s": 1}]}, "flush_intervals[0] has no 'e2e_latency_p95_ms'"),
    ({"methods": [{"method": "copy", "rows": "10", "seconds": 1, "rows_per_s": 10}]},
     "methods[0].rows = '10' is not an integer"),
    ({"methods": [{"method": "copy", "rows": 1, "seconds": 1, "rows_per_s": 1}] * 2}, "a method is listed twice"),
])
def test_bad_bench_writes_files_name_the_problem(store: Store, tmp_path: Path, change, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_doc(**change)))
    before = store_fingerprint(store)
    with pytest.raises(PerflabError) as err:
        ingest_path(store, path)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert store_fingerprint(store) == before


# -- pure pieces ------------------------------------------------------------------------------------

def test_summaries_take_the_median_and_compare_with_single():
    out = benchwrites.summarize_methods(100, {"single": [1.0, 3.0, 2.0], "copy": [0.05, 0.04, 0.5]})
    assert [(m["method"], m["seconds"], m["rows_per_s"], m["x_single"]) for m in out] == [
        ("single", 2.0, 50.0, 1.0), ("copy", 0.05, 2000.0, 40.0)]
    assert out[1]["reps_seconds"] == [0.05, 0.04, 0.5]
    assert benchwrites.summarize_methods(10, {"copy": [1.0]})[0]["x_single"] is None


def test_multirow_statements_stay_under_the_bind_parameter_cap():
    rows = benchwrites.event_rows(30_000)
    chunks = benchwrites.multirow_chunks(rows)
    assert len(chunks) == 3  # 13,107 rows of 5 columns fit under 65,535 parameters
    assert all(len(params) <= benchwrites.PG_MAX_BIND_PARAMS for _, params in chunks)
    assert sum(len(p) for _, p in chunks) == 5 * 30_000
    assert chunks[-1][0].count("(%s, %s, %s, %s, %s)") == 30_000 - 2 * 13_107


def test_durations_cover_several_flush_periods_and_options_are_checked():
    assert [benchwrites.interval_duration(i) for i in (0.5, 1, 2, 5)] == [10, 10, 10, 15]
    assert benchwrites.interval_duration(5, 4) == 4
    for bad in (dict(rows=0), dict(reps=0), dict(intervals=[]), dict(intervals=[0.5, -1]),
                dict(record_rate=0), dict(duration_s=1)):
        with pytest.raises(PerflabError):
            benchwrites.BenchOptions(**bad).validate()


def test_bad_intervals_on_the_command_line_are_one_line(store_path: Path):
    result = run_cli("bench-writes", "--intervals", "0.5,x", store=store_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["perflab: --intervals '0.5,x': 'x' is not a number of seconds"]
    assert not store_path.exists()  # refused before the store was opened or anything started


def test_the_command_line_defaults_are_the_labs():
    import argparse

    from perflab.commands import bench_writes

    p = argparse.ArgumentParser()
    bench_writes.prepare_parser(p)
    args = p.parse_args([])
    assert args.rows == benchwrites.DEFAULT_ROWS and args.reps == benchwrites.DEFAULT_REPS
    assert bench_writes.parse_intervals(args.intervals) == list(benchwrites.DEFAULT_INTERVALS)
    assert args.record_rate == benchwrites.DEFAULT_RECORD_RATE and args.duration is None
