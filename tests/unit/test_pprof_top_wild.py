"""`perflab top` prints what `go tool pprof -top` prints, line for line: the header, the
unit pprof picks, the nodefraction cut, the rows it keeps (ties ordered by name), the
(inline) labels. Oracles: tests/fixtures/pprof/wild/oracle (commands in cmd.txt)."""

from __future__ import annotations

import cProfile
import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perflab.analysis import pprof_frames
from perflab.analysis.pprof_frames import FrameFilters
from perflab.analysis.pprof_merge import merged_info
from perflab.analysis.pprof_tags import TagFilters
from perflab.analysis.profiles import profile_info, top
from perflab.commands.top import render_pprof
from perflab.ingest import ingest_path
from perflab.store import Store
from tests.helpers import run_cli

WILD = Path(__file__).resolve().parent.parent / "fixtures" / "pprof" / "wild"

# pprof's flags as top()'s keywords (the filters go into FrameFilters).
_FLAGS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "nodecount": ("nodecount", int), "sample_index": ("sample_type", str), "nodefraction": ("nodefraction", float),
    "edgefraction": ("edgefraction", float), "cum": ("cum", bool), "mean": ("mean", bool),
}
_FILTER_FLAGS = {"focus", "ignore", "hide", "show", "show_from", "prune_from"}
_TAG_FLAGS = {"tagfocus", "tagignore", "tagshow", "taghide"}
_GRANULARITY_FLAGS = {"functions", "filefunctions", "files", "lines", "addresses"}


def _commands() -> list[tuple[str, list[str], dict[str, Any]]]:
    """(oracle file, profiles, top() keywords) for each line of oracle/cmd.txt."""
    out = []
    for line in (WILD / "oracle" / "cmd.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        argv = shlex.split(line)
        assert argv[:4] == ["go", "tool", "pprof", "-top"] and argv[-2] == ">", line
        kwargs: dict[str, Any] = {"base": [], "diff_base": []}
        filters: dict[str, str] = {}
        tags: dict[str, str] = {}
        profiles = []
        for flag in argv[4:-2]:
            if not flag.startswith("-"):
                profiles.append(flag)
                continue
            name, _, value = flag.lstrip("-").partition("=")
            if name == "symbolize":
                continue
            if name in _GRANULARITY_FLAGS:
                kwargs["granularity"] = name
            elif name in ("base", "diff_base"):
                kwargs[name].append(value)
            elif name in _FILTER_FLAGS:
                filters[name] = value
            elif name in _TAG_FLAGS:
                tags[name] = value
            else:
                key, cast = _FLAGS[name]
                kwargs[key] = cast(value) if value else True
        kwargs["filters"] = FrameFilters(**filters)
        kwargs["tags"] = TagFilters(**tags)
        out.append((argv[-1], profiles, kwargs))
    return out


COMMANDS = _commands()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = Store(tmp_path_factory.mktemp("wild") / "store.duckdb")
    yield s
    s.close()


def test_every_wild_profile_has_oracles() -> None:
    profiles = {p.name for p in WILD.iterdir() if p.is_file() and p.suffix != ".md"}
    assert len(profiles) == 20
    # (the tag filters also read two labelled profiles of ../generated)
    read = {p for _, ps, kw in COMMANDS for p in [*ps, *kw["base"], *kw["diff_base"]]}
    assert {p for p in read if "/" not in p} == profiles
    assert len(COMMANDS) == 80
    assert {p.name for p in (WILD / "oracle").glob("*.txt")} == {Path(o).name for o, _, _ in COMMANDS} | {"cmd.txt"}


@pytest.mark.parametrize(("oracle", "profiles", "kwargs"), COMMANDS, ids=[Path(c[0]).name for c in COMMANDS])
def test_top_text_is_go_tool_pprof_top(store: Store, oracle: str, profiles: list[str],
                                       kwargs: dict[str, Any]) -> None:
    def ids(names: list[str]) -> list[int]:
        return [ingest_path(store, WILD / name).source_id for name in names]

    result = top(store, ids(profiles), **dict(kwargs, base=ids(kwargs["base"]), diff_base=ids(kwargs["diff_base"])))
    info = merged_info([profile_info(store, sid) for sid in result["source_ids"]])
    assert render_pprof(result, info) == (WILD / oracle).read_text().splitlines()


_FILTERED = [c for c in COMMANDS if c[2].get("filters") is not None and c[2]["filters"].active()]


@pytest.mark.parametrize(("oracle", "profiles", "kwargs"), _FILTERED, ids=[Path(c[0]).name for c in _FILTERED])
def test_frames_gathered_in_slices_of_stacks_are_the_same(store: Store, monkeypatch: pytest.MonkeyPatch,
                                                          oracle: str, profiles: list[str],
                                                          kwargs: dict[str, Any]) -> None:
    """Frames.finish_tables gathers the rewritten frames a slice of stacks at a time (25,000 on
    big profiles); slices of 3 stacks must give pprof's text all the same."""
    monkeypatch.setattr(pprof_frames, "_GATHER_STACKS", 3)
    test_top_text_is_go_tool_pprof_top(store, oracle, profiles, kwargs)


def test_cli_options_are_pprofs(tmp_path: Path) -> None:
    # --sample-index, --cum, --mean and --nodecount on the command line: the mean_cum oracle
    result = run_cli("top", str(WILD / "eno__heap.pprof"), "--sample-index", "alloc_space", "--mean", "--cum",
                     "--nodecount", "15", store=tmp_path / "s.duckdb")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (WILD / "oracle" / "eno__heap.pprof.mean_cum.txt").read_text()
    # ... several files and a base (negative values, as pprof prints them)
    result = run_cli("top", str(WILD / "apquery__alloc.pb.gz"), "--base", str(WILD / "apquery__alloc2.pb.gz"),
                     store=tmp_path / "s.duckdb")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (WILD / "oracle" / "apquery__alloc.pb.gz.base.txt").read_text()
    assert "-20565.26kB" in result.stdout
    # ... and the frame filters
    result = run_cli("top", str(WILD / "mtg__default.pgo"), "--focus", "net", "--ignore", "tls", "--hide",
                     "internal/poll", store=tmp_path / "s.duckdb")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (WILD / "oracle" / "mtg__default.pgo.filters.txt").read_text()


def test_json_keeps_exact_values_in_the_sample_unit(store: Store) -> None:
    # the "all" oracle shows 23.42s of 29.29s: --json has the nanoseconds behind them
    sid = ingest_path(store, WILD / "mtg__default.pgo").source_id
    result = top(store, sid)
    assert (result["unit"], result["total"]) == ("nanoseconds", 29290000000)
    assert sum(r["flat"] for r in result["rows"]) == 23420000000
    assert result["dropped_nodes"] == 612
    assert all(type(r["flat"]) is int and type(r["cum"]) is int for r in result["rows"])


def test_drop_frames_prunes_as_pprof_does(store: Store) -> None:
    # the same CPU profile, once with drop_frames = runtime\.mallocgc: pprof prunes the
    # matching frames and every frame leafward of them (728 functions instead of 798)
    plain = ingest_path(store, WILD / "mtg__default.pgo").source_id
    dropped = ingest_path(store, WILD / "mtg__default.pgo.dropframes_mallocgc.pb.gz").source_id
    assert profile_info(store, dropped)["drop_frames"] == "runtime\\.mallocgc"
    rows = {r["name"]: r for r in top(store, plain, nodefraction=0)["rows"]}
    pruned = {r["name"]: r for r in top(store, dropped, nodefraction=0)["rows"]}
    assert (len(rows), len(pruned)) == (798, 728)
    assert "runtime.mallocgc" in rows and "runtime.mallocgc" not in pruned
    assert top(store, dropped)["total"] == top(store, plain)["total"]  # samples are cut, not dropped


def test_bad_regexp_and_cprofile_options_are_one_line(tmp_path: Path) -> None:
    store_path = tmp_path / "s.duckdb"
    bad = run_cli("top", str(WILD / "parca__fib.pb.gz"), "--focus", "main.(", store=store_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["perflab: --focus: not a valid regexp 'main.(': missing ): main.("]
    prof = cProfile.Profile()
    prof.enable()
    sorted(range(1000))
    prof.disable()
    prof.dump_stats(str(tmp_path / "run.pstats"))
    for option in (["--hide", "x"], ["--mean"], ["--nodefraction", "0.1"]):
        result = run_cli("top", str(tmp_path / "run.pstats"), *option, store=store_path)
        assert result.returncode == 2, option
        assert len(result.stderr.strip().splitlines()) == 1
        assert "apply to pprof samples only" in result.stderr
    # --cum applies to pstats too: cumtime order
    result = run_cli("top", str(tmp_path / "run.pstats"), "--cum", "--json", store=store_path)
    rows = json.loads(result.stdout)["rows"]
    assert [r["cum"] for r in rows] == sorted((r["cum"] for r in rows), reverse=True)
