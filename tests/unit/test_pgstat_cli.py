"""`perflab ingest` / `perflab pg-top` on pg_stat snapshots, as a user runs them.

Bad files: exit code 2, one stderr line naming the file, the store exactly as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perflab.analysis.database import pg_top
from perflab.store import Store
from tests.conftest import FIXTURES
from tests.helpers import run_cli, store_fingerprint

PG = FIXTURES / "pg"
BEFORE, AFTER = PG / "pg_stat_statements_before.csv", PG / "pg_stat_statements_after.csv"


def _fingerprint(path: Path) -> dict:
    with Store(path) as s:
        return store_fingerprint(s)


@pytest.fixture
def filled_store(store_path: Path) -> Path:
    """A store that already holds something, so 'unchanged' means something."""
    r = run_cli("ingest", str(PG / "pg_stat_user_tables_before.jsonl"), store=store_path)
    assert r.returncode == 0, r.stderr
    return store_path


def test_pg_top_json_is_the_api_result(store_path: Path) -> None:
    r = run_cli("pg-top", str(BEFORE), str(AFTER), "--order", "mean", "--limit", "5", "--json", store=store_path)
    assert r.returncode == 0, r.stderr
    with Store(store_path) as s:
        expected = pg_top(s, BEFORE, AFTER, order="mean", limit=5)
    assert json.loads(r.stdout) == json.loads(json.dumps(expected))
    assert len(expected["rows"]) == 5


def test_pg_top_table_reads_like_pghero(store_path: Path) -> None:
    r = run_cli("pg-top", str(BEFORE), str(AFTER), "--limit", "3", store=store_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["total_ms", "%", "mean_ms", "calls", "rows", "hit%", "query"]
    assert len(lines) == 4  # header + 3 rows, and no reset note
    with Store(store_path) as s:
        top = pg_top(s, BEFORE, AFTER)["rows"]
    total = sum(row["total_exec_time"] for row in top)
    first = top[0]
    assert lines[1].split()[:6] == [
        f"{first['total_exec_time']:,.1f}", f"{100 * first['total_exec_time'] / total:.1f}",
        f"{first['mean_exec_time']:,.3f}", f"{first['calls']:,}", f"{first['rows']:,}",
        f"{100 * first['cache_hit_ratio']:.1f}"]
    assert lines[1].endswith(first["query"])  # short enough to show whole
    # a long query is cut to one line
    r = run_cli("pg-top", str(BEFORE), str(AFTER), "--order", "calls", store=store_path)
    assert all(len(line) < 200 for line in r.stdout.splitlines())
    assert any(line.endswith("…") for line in r.stdout.splitlines())


def test_pg_top_marks_reset_rows(store_path: Path, tmp_path: Path) -> None:
    # GIVEN an `after` in which one statement has fewer calls than in `before`
    after = tmp_path / "after.csv"
    lines = AFTER.read_text().splitlines(keepends=True)
    assert lines[0].split(",")[11] == "calls"
    in_before = {ln.split(",")[3] for ln in BEFORE.read_text().splitlines() if ln.count(",") > 10}
    target = next(i for i, ln in enumerate(lines)
                  if ",SELECT abalance FROM pgbench_accounts WHERE aid = $1," in ln and ln.split(",")[3] in in_before)
    cells = lines[target].split(",")
    cells[11] = "1"  # calls: far below `before`
    lines[target] = ",".join(cells)
    after.write_text("".join(lines))
    r = run_cli("pg-top", str(BEFORE), str(after), store=store_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[-1].startswith("note: pg_stat_statements was reset")
    marked = [ln for ln in out if "* SELECT abalance FROM pgbench_accounts WHERE aid = $1" in ln]
    assert len(marked) == 1 and marked[0].split()[3] == "1"


def _assert_rejected(args: list[str], bad: Path, store_path: Path, problem: str) -> None:
    before = _fingerprint(store_path)
    r = run_cli(*args, store=store_path)
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"perflab: {bad}") and problem in lines[0], lines[0]
    assert "Traceback" not in r.stderr
    assert _fingerprint(store_path) == before


def test_csv_with_a_wrong_header(filled_store: Path, tmp_path: Path) -> None:
    bad = tmp_path / "stats.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    _assert_rejected(["ingest", str(bad)], bad, filled_store, "not a format perflab reads")
    _assert_rejected(["ingest", "--kind", "pgstat", str(bad)], bad, filled_store,
                     "columns (a,b,c) are not those of a pg_stat view")


def test_jsonl_with_a_corrupt_line_in_the_middle(filled_store: Path, tmp_path: Path) -> None:
    lines = (PG / "pg_stat_user_indexes_after.jsonl").read_text().splitlines(keepends=True)
    lines[3] = lines[3][: len(lines[3]) // 2] + "\n"  # cut mid-object
    bad = tmp_path / "indexes.jsonl"
    bad.write_text("".join(lines))
    _assert_rejected(["ingest", str(bad)], bad, filled_store, "not a valid pgstat file")


def test_jsonl_whose_objects_are_no_known_view(filled_store: Path, tmp_path: Path) -> None:
    bad = tmp_path / "other.jsonl"
    bad.write_text('{"metric": "http_reqs", "value": 1}\n{"metric": "http_reqs", "value": 2}\n')
    _assert_rejected(["ingest", str(bad)], bad, filled_store, "not a format perflab reads")
    _assert_rejected(["ingest", "--kind", "pgstat", str(bad)], bad, filled_store,
                     "are not those of a pg_stat view")


def test_jsonl_with_a_line_of_another_view(filled_store: Path, tmp_path: Path) -> None:
    tables = (PG / "pg_stat_user_tables_after.jsonl").read_text().splitlines(keepends=True)
    index = (PG / "pg_stat_user_indexes_after.jsonl").read_text().splitlines(keepends=True)
    bad = tmp_path / "mixed.jsonl"
    bad.write_text("".join(tables[:2] + index[:1] + tables[2:]))
    _assert_rejected(["ingest", str(bad)], bad, filled_store, "record 3 has other columns than record 1")


def test_csv_with_text_in_a_number_column(filled_store: Path, tmp_path: Path) -> None:
    lines = (PG / "pg_stat_user_tables_after.csv").read_text().splitlines(keepends=True)
    cells = lines[2].split(",")
    cells[3] = "many"  # seq_scan
    lines[2] = ",".join(cells)
    bad = tmp_path / "tables.csv"
    bad.write_text("".join(lines))
    _assert_rejected(["ingest", str(bad)], bad, filled_store, "not a valid pgstat file")


def test_pg_top_on_a_snapshot_of_another_view(filled_store: Path) -> None:
    before = _fingerprint(filled_store)
    r = run_cli("pg-top", "1", str(AFTER), store=filled_store)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "perflab: 1: source 1 is a pg_stat_user_tables snapshot, expected pg_stat_statements"]
    assert _fingerprint(filled_store) == before
