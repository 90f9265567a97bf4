"""A verb that refuses a file stores nothing of it; `perflab forget` removes a source or a run
with every row read from it, in one transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from perflab.cli import main
from perflab.store import Store
from tests.helpers import run_cli, store_fingerprint

FIX = Path(__file__).resolve().parents[1] / "fixtures"
CPU = FIX / "pprof" / "generated" / "small_loginstorm.cpu.pb.gz"
HEAP = FIX / "pprof" / "generated" / "small_loginstorm.heap.pb.gz"
K6 = FIX / "k6" / "main_small.ndjson"
PROF = FIX / "cprofile" / "hashing.prof"


def _fingerprint(path: Path) -> dict[str, tuple[int, str]]:
    with Store(path) as s:
        return store_fingerprint(s)


def _rows_of(path: Path, source_ids: list[int]) -> int:
    with Store(path) as s:
        return sum(s.source_rows(source_ids).values())


@pytest.mark.parametrize("verb, path, phrase", [
    (["k6"], CPU, "is pprof, expected k6"),
    (["top"], K6, "is k6, expected"),
    (["export", "callgrind"], CPU, "is pprof, expected cprofile"),
])
def test_a_refused_file_is_not_stored(tmp_path: Path, capsys: Any, verb: list[str], path: Path, phrase: str) -> None:
    store = tmp_path / "s.duckdb"
    Store(store).close()
    before = _fingerprint(store)
    code = main(["--store", str(store), *verb, str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and phrase in err[0], err
    assert _fingerprint(store) == before


def test_a_file_stored_under_a_forced_kind_is_found_as_that_kind(tmp_path: Path, capsys: Any) -> None:
    # Detection says k6 NDJSON; a source stored as that kind by --kind is what `k6` reads.
    store = tmp_path / "s.duckdb"
    assert main(["--store", str(store), "ingest", "--kind", "k6", str(K6)]) == 0
    capsys.readouterr()
    assert main(["--store", str(store), "k6", "--json", str(K6)]) == 0


@pytest.fixture
def two_runs(tmp_path: Path, capsys: Any) -> Path:
    store = tmp_path / "s.duckdb"
    assert main(["--store", str(store), "ingest", "--run", "a", str(CPU), str(K6)]) == 0
    assert main(["--store", str(store), "ingest", "--run", "b", str(HEAP), str(PROF),
                 "--role", "requests=http_reqs"]) == 0
    capsys.readouterr()
    return store


def test_forget_a_run_removes_its_sources_rows_roles_and_row(two_runs: Path, capsys: Any) -> None:
    with Store(two_runs) as s:
        b_sources = [int(r[0]) for r in s.con.execute("SELECT source_id FROM sources WHERE run_id='b'").fetchall()]
    before_rows = _rows_of(two_runs, b_sources)
    assert before_rows > 100
    with Store(two_runs) as s:
        a_before = s.source_rows([1, 2])

    assert main(["--store", str(two_runs), "forget", "b", "--yes"]) == 0
    out = capsys.readouterr().out
    assert f"run b (2 sources): {before_rows:,} rows" in out
    assert "removed run b" in out

    with Store(two_runs) as s:
        assert s.source_rows(b_sources) == {}
        assert s.con.execute("SELECT count(*) FROM runs WHERE run_id='b'").fetchall()[0][0] == 0
        assert s.con.execute("SELECT count(*) FROM run_roles WHERE run_id='b'").fetchall()[0][0] == 0
        assert s.con.execute("SELECT count(*) FROM sources WHERE run_id='b'").fetchall()[0][0] == 0
        # Run a is untouched, row for row.
        assert s.source_rows([1, 2]) == a_before
    # The content can be ingested again (de-duplication forgot it too).
    assert main(["--store", str(two_runs), "ingest", "--run", "b", str(HEAP)]) == 0
    assert "source 3 (pprof): 115 samples" in capsys.readouterr().out


def test_forget_one_source_by_id_or_by_its_file(two_runs: Path, capsys: Any) -> None:
    assert main(["--store", str(two_runs), "forget", str(CPU), "--yes"]) == 0
    assert "removed source 1 (pprof" in capsys.readouterr().out
    with Store(two_runs) as s:
        assert s.source_rows([1]) == {}
        assert [r[0] for r in s.con.execute("SELECT source_id FROM sources ORDER BY 1").fetchall()] == [2, 3, 4]
        assert s.con.execute("SELECT count(*) FROM runs WHERE run_id='a'").fetchall()[0][0] == 1
    assert main(["--store", str(two_runs), "forget", "2", "--yes"]) == 0
    with Store(two_runs) as s:
        assert s.source_rows([2]) == {}


def test_forget_without_yes_and_without_a_terminal_removes_nothing(two_runs: Path) -> None:
    before = _fingerprint(two_runs)
    r = run_cli("forget", "a", store=two_runs)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == "perflab: nothing removed: add --yes to remove without a terminal to ask"
    assert "run a (2 sources)" in r.stdout
    assert _fingerprint(two_runs) == before


def test_forget_what_is_not_there_or_ambiguous(two_runs: Path, capsys: Any) -> None:
    before = _fingerprint(two_runs)
    assert main(["--store", str(two_runs), "forget", "nope", "--yes"]) == 2
    assert "nope: no such run or source" in capsys.readouterr().err
    assert main(["--store", str(two_runs), "ingest", "--run", "3", str(FIX / "cprofile" / "json.prof")]) == 0
    capsys.readouterr()
    assert main(["--store", str(two_runs), "forget", "3", "--yes"]) == 2
    assert "3: both a run and a source; say --run or --source" in capsys.readouterr().err
    assert main(["--store", str(two_runs), "forget", "3", "--source", "--yes"]) == 0
    with Store(two_runs) as s:
        assert s.source_rows([3]) == {}
        assert s.con.execute("SELECT count(*) FROM runs WHERE run_id='3'").fetchall()[0][0] == 1
    assert before != _fingerprint(two_runs)


def test_forget_is_one_transaction(two_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure half-way (here, the fourth DELETE) leaves every table as it was."""
    before = _fingerprint(two_runs)
    store = Store(two_runs)
    real = store.con

    class Failing:
        deletes = 0

        def execute(self, sql: str, params: Any = None) -> Any:
            if sql.startswith("DELETE"):
                Failing.deletes += 1
                if Failing.deletes == 4:
                    raise duckdb.IOException("disk went away")
            return real.execute(sql, params)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    monkeypatch.setattr(store, "_con", Failing())  # what the con property hands out
    with pytest.raises(duckdb.IOException):
        store.forget_run("a")
    monkeypatch.undo()
    store.close()
    assert Failing.deletes == 4
    assert _fingerprint(two_runs) == before
