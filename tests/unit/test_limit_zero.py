"""`--limit 0` means "all rows" for every verb that has a --limit (top, pg-top; compare's
profile rows are covered in test_compare), as `go tool pprof -top` reads it.

GIVEN a verb run with no --limit, WHEN it is run again with --limit 0, THEN it prints the
same rows; a positive limit still cuts, and a negative one is refused with one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import perflab
from perflab.store import Store
from tests.conftest import FIXTURES
from tests.helpers import run_cli

PG = FIXTURES / "pg"
BEFORE, AFTER = PG / "pg_stat_statements_before.csv", PG / "pg_stat_statements_after.csv"
CPU = FIXTURES / "pprof" / "generated" / "small_loginstorm.cpu.pb.gz"


def _json(*args: str, store: Path) -> dict:
    r = run_cli(*args, "--json", store=store)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_pg_top_limit_0_shows_every_statement(store_path: Path) -> None:
    everything = _json("pg-top", str(BEFORE), str(AFTER), store=store_path)
    assert len(everything["rows"]) > 3
    assert _json("pg-top", str(BEFORE), str(AFTER), "--limit", "0", store=store_path) == everything
    three = _json("pg-top", str(BEFORE), str(AFTER), "--limit", "3", store=store_path)
    assert three["rows"] == everything["rows"][:3]


def test_pg_top_table_with_limit_0_is_the_whole_table(store_path: Path) -> None:
    whole = run_cli("pg-top", str(BEFORE), str(AFTER), store=store_path)
    zero = run_cli("pg-top", str(BEFORE), str(AFTER), "--limit", "0", store=store_path)
    assert whole.returncode == zero.returncode == 0, zero.stderr
    assert zero.stdout == whole.stdout
    assert len(zero.stdout.splitlines()) > 4  # the header and every statement, not "(no rows)"


def test_top_limit_0_shows_every_function(store_path: Path) -> None:
    zero = _json("top", str(CPU), "--limit", "0", store=store_path)
    default = _json("top", str(CPU), store=store_path)
    assert len(zero["rows"]) > len(default["rows"]) == 20
    assert zero["rows"][:20] == default["rows"]


@pytest.mark.parametrize("verb", [["pg-top", str(BEFORE), str(AFTER)], ["top", str(CPU)]])
def test_a_negative_limit_is_one_line(store_path: Path, verb: list[str]) -> None:
    r = run_cli(*verb, "--limit", "-1", store=store_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "--limit" in r.stderr


def test_the_python_api_reads_limit_0_as_all(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        everything = perflab.pg_top(store, BEFORE, AFTER)
        assert perflab.pg_top(store, BEFORE, AFTER, limit=0) == everything
        assert perflab.top(store, CPU, limit=0) == perflab.top(store, CPU)
