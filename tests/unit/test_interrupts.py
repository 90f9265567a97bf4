"""Ctrl-C anywhere in a verb ends with one line and exit 130, the store unchanged."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pytest

from perflab import cli
from perflab.commands import sources as sources_command
from perflab.store import Store
from tests.helpers import store_fingerprint

# A query DuckDB needs seconds for: long enough to be interrupted from another thread.
SLOW_QUERY = "SELECT count(*) FROM range(4000000000) a WHERE a.range % 7 = 3"


def _interrupted_query(con: duckdb.DuckDBPyConnection) -> BaseException:
    timer = threading.Timer(0.3, con.interrupt)
    timer.start()
    try:
        con.execute(SLOW_QUERY).fetchall()
    except BaseException as exc:  # noqa: BLE001 - the point is what DuckDB raises
        return exc
    finally:
        timer.cancel()
    raise AssertionError("the query was not interrupted")


def test_duckdb_reports_ctrl_c_as_an_interrupt_perflab_recognises() -> None:
    exc = _interrupted_query(duckdb.connect())
    assert cli.is_interrupt(exc), repr(exc)
    assert cli.is_interrupt(RuntimeError("Query interrupted"))
    assert not cli.is_interrupt(RuntimeError("out of memory"))


def test_an_interrupted_write_is_one_line_130_and_the_store_unchanged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path) as store:
        before = store_fingerprint(store)

    def run(args: object) -> int:
        # GIVEN a verb that writes in a transaction and is interrupted inside a query
        with Store(path) as store, store.transaction():
            store.con.execute("INSERT INTO perflab_meta VALUES ('half', 'written')")
            raise _interrupted_query(store.con)
        return 0

    monkeypatch.setattr(sources_command, "run", run)
    # WHEN perflab runs it THEN one line, exit 130, and the insert rolled back
    assert cli.main(["--store", str(path), "sources"]) == 130
    err = capsys.readouterr().err
    assert err == "perflab: interrupted\n"
    with Store(path) as store:
        assert store_fingerprint(store) == before


def test_a_keyboard_interrupt_while_the_verbs_load_is_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def slow_build(verb: str | None = None) -> None:
        raise KeyboardInterrupt  # Ctrl-C while polars and DuckDB import

    monkeypatch.setattr(cli, "build_parser", slow_build)
    assert cli.main(["sources"]) == 130
    assert capsys.readouterr().err == "perflab: interrupted\n"
