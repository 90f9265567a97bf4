"""k6's default summary, stored (perflab.analysis.k6_stored): what is read back is what k6_summary
computes, byte for byte, and a summary is never read once its source or its run changed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from perflab.analysis import k6_stored
from perflab.analysis.loadtest import k6_summary
from perflab.ingest import ingest_path
from perflab.store import Store
from tests.helpers import run_cli

K6 = Path(__file__).resolve().parent.parent / "fixtures" / "k6"
# (a k6 NDJSON/CSV fixture, the other k6 files of its run)
CASES = [
    ("main_small.ndjson", []),
    ("main_small.ndjson", ["main_small.summary.json"]),
    ("main_small.csv", []),
    ("main_small.csv", ["main_small.ndjson", "main_small.summary.json"]),
    ("main_kolkata.ndjson.gz", ["main_kolkata.summary.json"]),
    ("main_kolkata.csv", []),
    ("main_dropped.ndjson", ["main_dropped.summary.json"]),
    ("summary_small.ndjson", ["summary_small.summary.json", "summary_small.handle.json"]),
]


def computed(store: Store, sid: int) -> dict[str, Any]:
    """k6_summary's answer with nothing stored to read (what every call computed before)."""
    with store.transaction():
        store.con.execute("DELETE FROM k6_summaries WHERE source_id = ?", [sid])
    return k6_summary(store, sid)


def stored_rows(store: Store) -> list[int]:
    return [r[0] for r in store.con.execute("SELECT source_id FROM k6_summaries ORDER BY 1").fetchall()]


@pytest.mark.parametrize(("name", "others"), CASES)
def test_the_stored_summary_is_the_computed_one(store: Store, name: str, others: list[str]) -> None:
    # GIVEN a k6 file and the other files of its run
    sid = ingest_path(store, K6 / name, run_id="r").source_id
    for other in others:
        ingest_path(store, K6 / other, run_id="r")
    # WHEN its summary is computed THEN it is stored, and read back equal to the byte
    want = computed(store, sid)
    got = k6_stored.read(store, sid)
    assert got is not None and sid in stored_rows(store)
    assert json.dumps(got) == json.dumps(want)
    # AND k6_summary answers with the stored one from then on
    assert json.dumps(k6_summary(store, sid)) == json.dumps(want)


def test_cli_reads_what_ingest_stored_and_prints_the_same(tmp_path: Path) -> None:
    # GIVEN an NDJSON ingested by the CLI: its summary is stored at once
    path = tmp_path / "s.duckdb"
    assert run_cli("ingest", str(K6 / "main_small.ndjson"), store=path).returncode == 0
    with Store(path) as store:
        assert stored_rows(store) == [1]
    stored_json, stored_text = (run_cli("k6", "1", *flag, store=path).stdout for flag in (["--json"], []))
    # WHEN nothing is stored THEN `perflab k6` computes the same JSON and the same table
    with Store(path) as store, store.transaction():
        store.con.execute("DELETE FROM k6_summaries")
    fresh_json = run_cli("k6", "1", "--json", store=path)
    assert fresh_json.returncode == 0, fresh_json.stderr
    assert fresh_json.stdout == stored_json and json.loads(stored_json)["metrics"]["http_reqs"]["count"] == 153
    with Store(path) as store, store.transaction():
        store.con.execute("DELETE FROM k6_summaries")
    assert run_cli("k6", "1", store=path).stdout == stored_text


def test_a_summary_file_joining_the_run_makes_it_stale(store: Store) -> None:
    sid = ingest_path(store, K6 / "main_small.ndjson", run_id="r").source_id
    alone = k6_summary(store, sid)
    assert alone["duration_source"].startswith("time span of the samples")
    # WHEN the run's summary-export is ingested THEN the stored summary is not read
    ingest_path(store, K6 / "main_small.summary.json", run_id="r")
    assert k6_stored.read(store, sid) is None
    # AND the next summary has k6's own duration, and is the one stored
    joined = k6_summary(store, sid)
    assert "summary-export" in joined["duration_source"]
    assert k6_stored.read(store, sid) == joined != alone


def test_forgetting_removes_or_invalidates_it(tmp_path: Path) -> None:
    # GIVEN a run of an NDJSON and its summary file, the NDJSON's summary stored
    path = tmp_path / "s.duckdb"
    files = [str(K6 / "main_small.ndjson"), str(K6 / "main_small.summary.json")]
    assert run_cli("ingest", "--run", "r", *files, store=path).returncode == 0
    with Store(path) as store:
        assert stored_rows(store) == [1] and k6_stored.read(store, 1) is not None
    # WHEN the summary file is forgotten THEN the NDJSON's stored summary is stale
    forget = run_cli("forget", "--yes", "2", store=path)
    assert forget.returncode == 0, forget.stderr
    with Store(path) as store:
        assert k6_stored.read(store, 1) is None
        assert k6_summary(store, 1)["duration_source"].startswith("time span of the samples")
    # WHEN the NDJSON is forgotten THEN its row goes with it, and forget does not count it as read data
    said = run_cli("forget", "--yes", "1", store=path).stdout
    assert "k6_summaries" not in said and "1,960 in k6_points" in said
    with Store(path) as store:
        assert stored_rows(store) == []


def test_a_read_only_store_is_answered_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path) as store:
        sid = ingest_path(store, K6 / "main_small.ndjson").source_id
    with Store(path, read_only=True) as ro:
        assert k6_summary(ro, sid)["metrics"]["http_reqs"]["count"] == 153
        assert stored_rows(ro) == []


def test_other_options_are_computed_not_stored(store: Store) -> None:
    sid = ingest_path(store, K6 / "main_small.ndjson").source_id
    by = k6_summary(store, sid, by="status")
    trend = k6_summary(store, sid, trend_stats=["p(50)"])
    assert stored_rows(store) == []
    assert "http_req_duration{status:200}" in by["metrics"] and trend["trend_stats"] == ["p(50)"]


def test_reading_a_stored_summary_loads_neither_numpy_nor_polars(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    assert run_cli("ingest", str(K6 / "main_small.ndjson"), store=path).returncode == 0
    code = ("import sys; from perflab.cli import main; code = main(['--store', sys.argv[1], 'k6', '1', '--json']); "
            "heavy = sorted(m for m in ('numpy', 'polars', 'pyarrow') if m in sys.modules); "
            "print(heavy, file=sys.stderr); raise SystemExit(code)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().splitlines()[-1] == "[]"
    assert json.loads(out.stdout)["source_id"] == 1
