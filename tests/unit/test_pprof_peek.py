"""`perflab peek` prints what `go tool pprof -peek` prints, line for line: pprof's header and
unit, each matching function's callers and callees with their weights, percentages of the
function's cum and (inline) marks. Oracles: tests/fixtures/pprof/views (commands in cmd.txt)."""

from __future__ import annotations

import json
import shlex
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from perflab.analysis.pprof_frames import FrameFilters
from perflab.analysis.pprof_tags import TagFilters
from perflab.analysis.pprof_units import label
from perflab.analysis.pprof_view import Part
from perflab.analysis.pprof_views import peek
from perflab.analysis.profiles import pprof_parts
from perflab.commands.peek import render
from perflab.ingest import ingest_path
from perflab.store import Store
from tests.helpers import run_cli

PPROF = Path(__file__).resolve().parent.parent / "fixtures" / "pprof"
VIEWS = PPROF / "views"


def oracle_commands(view: str) -> list[tuple[str, list[str]]]:
    """(oracle file name, the go tool pprof arguments) of each ``-view`` line of cmd.txt."""
    out = []
    for line in (VIEWS / "cmd.txt").read_text().splitlines():
        if line.startswith(f"go tool pprof -{view} "):
            words = shlex.split(line.split(" | ")[0].split(" > ")[0])[3:]
            target = line.rsplit(" > ", 1)[1]
            out.append((target.removeprefix("views/"), words))
    return out


def option(words: list[str], name: str) -> str | None:
    return next((w.split("=", 1)[1] for w in words if w.startswith(f"-{name}=")), None)


_GRANULARITY_FLAGS = {"-functions": "functions", "-filefunctions": "filefunctions", "-files": "files",
                      "-lines": "lines", "-addresses": "addresses"}


def grouping_of(words: list[str]) -> dict[str, Any]:
    """The granularity flag and tag filters of a go tool pprof command line."""
    return {"granularity": next((g for f, g in _GRANULARITY_FLAGS.items() if f in words), "functions"),
            "tags": TagFilters(**{t: option(words, t) for t in ("tagfocus", "tagignore", "tagshow", "taghide")})}


def filters_of(words: list[str]) -> FrameFilters:
    """The frame filters of a go tool pprof command line (-focus=..., -show_from=...)."""
    return FrameFilters(**{f.name: option(words, f.name) for f in fields(FrameFilters)})


def view_profile(store: Store, root: Path, words: list[str], regex: bool) -> tuple[dict[str, Any], list[Part], int]:
    """Ingest every profile of a go tool pprof command line (its files, -base=, -diff_base=,
    relative to ``root``); (the facts `open_profile` gives a view, the merged profile's
    parts, the sample index), as the CLI reads them."""
    files = [w for w in words[2 if regex else 1:] if not w.startswith("-")]
    groups = [files, [w.split("=", 1)[1] for w in words if w.startswith("-base=")],
              [w.split("=", 1)[1] for w in words if w.startswith("-diff_base=")]]
    sids = [ingest_path(store, root / f).source_id for g in groups for f in g]
    parts, idx, stype, unit = pprof_parts(store, sids, len(groups[0]), len(groups[1]), option(words, "sample_index"))
    return {"source_id": sids[0], "source_ids": sids, "sample_type": stype, "unit": unit}, parts, idx


CASES = oracle_commands("peek")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = Store(tmp_path_factory.mktemp("views") / "store.duckdb")
    yield s
    s.close()


def test_every_peek_oracle_is_here() -> None:
    assert len(CASES) == 20
    assert all((VIEWS / name).stat().st_size > 0 for name, _ in CASES)


@pytest.mark.parametrize(("oracle", "words"), CASES, ids=[c[0] for c in CASES])
def test_peek_text_is_go_tool_pprof_peek(store: Store, oracle: str, words: list[str]) -> None:
    facts, parts, idx = view_profile(store, PPROF, words, regex=True)
    mean = "-mean" in words
    filters, grouped = filters_of(words), grouping_of(words)
    result = {**facts, "mean": mean, "filters": filters.legend() + grouped["tags"].legend(),
              **peek(store, parts, idx, words[1], facts["unit"], mean=mean, filters=filters, cum="-cum" in words,
                     **grouped)}
    assert render(store, result) == (VIEWS / oracle).read_text().splitlines()


def test_cli_peek_and_json(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    profile = str(PPROF / "wild" / "eno__heap.pprof")
    text = run_cli("peek", profile, "json", "--sample-index", "alloc_space", store=db)
    assert text.returncode == 0, text.stderr
    assert text.stdout == (VIEWS / "peek.eno.json_alloc_space.txt").read_text()
    js = run_cli("peek", profile, "decodeState\\).objectInterface$", "--sample-index", "alloc_space", "--json",
                 store=db)
    assert js.returncode == 0, js.stderr
    result = json.loads(js.stdout)
    assert (result["sample_type"], result["unit"], result["output_unit"]) == ("alloc_space", "bytes", "MB")
    [node] = result["nodes"]
    # the oracle's 45.51MB / 57.51MB, and its callees 29.50MB and 5.50MB (inline), as exact bytes
    assert [label(node[k], "bytes", "MB") for k in ("flat", "cum")] == ["45.51MB", "57.51MB"]
    callees = [(e["name"].rsplit(".", 1)[-1], label(e["weight"], "bytes", "MB"), e["inline"]) for e in node["callees"]]
    assert callees == [("valueInterface", "29.50MB", False), ("unquote", "5.50MB", True)]
    assert all(type(e["weight"]) is int for e in node["callers"] + node["callees"])


@pytest.mark.parametrize(("regex", "phrase"), [("no_such_function_xyz", "no matches found for regexp"),
                                               ("(unclosed", "not a valid regexp")])
def test_bad_regex_is_one_line_exit_2(tmp_path: Path, regex: str, phrase: str) -> None:
    result = run_cli("peek", str(PPROF / "wild" / "parca__fib.pb.gz"), regex, store=tmp_path / "s.duckdb")
    assert result.returncode == 2
    assert phrase in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_views_merge_profiles_and_subtract_bases(tmp_path: Path) -> None:
    """Several FILE_OR_SOURCEs are merged and --base/--diff-base subtracted, as `go tool pprof
    a b -base c` does: the CLI's text is pprof's (oracles in views/cmd.txt)."""
    db = tmp_path / "s.duckdb"
    wild = PPROF / "wild"
    alloc, alloc2 = str(wild / "apquery__alloc.pb.gz"), str(wild / "apquery__alloc2.pb.gz")
    many = [str(wild / f"parca__many_{t}.pb.gz") for t in ("1644509272337470000", "1644509275338070000")]
    runs = {
        "peek.apquery.base.txt": ("peek", alloc2, "main\\.|flate", "--sample-index", "alloc_space", "--base", alloc),
        "peek.apquery.diff_base.txt": ("peek", alloc2, "pprof", "--sample-index", "alloc_objects",
                                       "--diff-base", alloc),
        "peek.parca__many.merged.txt": ("peek", *many, "sroar|decoder"),
        "traces.apquery.merged.txt": ("traces", alloc, alloc2),
    }
    for oracle, argv in runs.items():
        done = run_cli(*argv, store=db)
        assert done.returncode == 0, done.stderr
        assert done.stdout == (VIEWS / oracle).read_text(), oracle
    # the diff: pprof's 51,696 objects shown of a 27,959 total (the base's), 184.90 %
    js = json.loads(run_cli(*runs["peek.apquery.diff_base.txt"], "--json", store=db).stdout)
    assert (js["total"], js["shown"]) == (27959, 51696) and len(js["source_ids"]) == 2
    # a base that is not a profile is one line
    bad = run_cli("traces", alloc, "--base", str(tmp_path / "missing.pb.gz"), store=db)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
