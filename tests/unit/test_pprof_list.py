"""`perflab list` prints what `go tool pprof -list` prints, line for line: per matching
function and file, flat and cum per source line (line granularity, inlined calls on their
own lines), the source found through --source-path/--trim-path as pprof finds it, or
pprof's error line. Oracles: tests/fixtures/pprof/list/oracle (commands in cmd.txt)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from perflab.analysis.pprof_views import SourceOptions, source_listing
from perflab.commands.listing import render
from perflab.store import Store
from tests.helpers import run_cli
from tests.unit import test_pprof_peek
from tests.unit.test_pprof_peek import filters_of, grouping_of, view_profile

_shared_store = test_pprof_peek.store  # the fixture "store"
LIST = Path(__file__).resolve().parent.parent / "fixtures" / "pprof" / "list"


def _cases() -> list[tuple[str, list[str]]]:
    out = []
    for line in (LIST / "oracle" / "cmd.txt").read_text().splitlines():
        if line.startswith("go tool pprof -list "):
            command, target = line.rsplit(" > ", 1)
            out.append((target.removeprefix("oracle/"), shlex.split(command)[3:]))
    return out


CASES = _cases()


def _option(words: list[str], name: str) -> str | None:
    return next((w.split("=", 1)[1] for w in words if w.startswith(f"-{name}=")), None)


def _where(words: list[str]) -> SourceOptions:
    # pprof ran inside LIST: its relative -source_path, made absolute, finds the same files
    source = _option(words, "source_path")
    return SourceOptions(source_path=str((LIST / source).resolve()) if source else None,
                         trim_path=_option(words, "trim_path"))


def test_every_list_oracle_is_here() -> None:
    assert len(CASES) == 16
    assert all((LIST / "oracle" / name).stat().st_size > 0 for name, _ in CASES)


@pytest.mark.parametrize(("oracle", "words"), CASES, ids=[c[0] for c in CASES])
def test_list_text_is_go_tool_pprof_list(store: Store, oracle: str, words: list[str]) -> None:
    facts, parts, idx = view_profile(store, LIST, words, regex=True)
    result = {**facts, **source_listing(store, parts, idx, words[1], _where(words), filters=filters_of(words),
                                        tags=grouping_of(words)["tags"], mean="-mean" in words)}
    assert render(store, result) == (LIST / "oracle" / oracle).read_text().splitlines()


def test_cli_list_and_json(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    profile = str(LIST / "listdemo.cpu.pb.gz")
    text = run_cli("list", profile, "sieve|mix", "--trim-path", "/tmp/perflab_listdemo", "--source-path", str(LIST),
                   store=db)
    assert text.returncode == 0, text.stderr
    assert text.stdout == (LIST / "oracle" / "sieve_mix.trim_path.txt").read_text()
    js = run_cli("list", profile, "hashLoop", "--source-path", str(LIST / "listdemo"), "--json", store=db)
    assert js.returncode == 0, js.stderr
    [routine] = json.loads(js.stdout)["routines"]
    # the oracle: 360ms/490ms in all, line 24 "if i%7 == 0 {" 260ms/280ms, lines 20 to 30
    assert (routine["function"], routine["file"], routine["flat"], routine["cum"]) == (
        "main.hashLoop", "main.go", 360_000_000, 490_000_000)
    line24 = next(n for n in routine["lines"] if n["line"] == 24)
    assert (line24["flat"], line24["cum"], line24["source"]) == (260_000_000, 280_000_000, "\t\tif i%7 == 0 {")
    assert [n["line"] for n in routine["lines"]] == list(range(20, 31))


def test_no_match_is_one_line_exit_2(tmp_path: Path) -> None:
    result = run_cli("list", str(LIST / "listdemo.cpu.pb.gz"), "no_such_fn", store=tmp_path / "s.duckdb")
    assert result.returncode == 2
    assert result.stderr.strip() == "perflab: no matches found for regexp: no_such_fn"
