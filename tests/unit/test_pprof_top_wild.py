"""`perflab top` prints what `go tool pprof -top` prints, line for line: the header, the
unit pprof picks, the nodefraction cut, the rows it keeps (ties ordered by name), the
(inline) labels. Oracles: tests/fixtures/pprof/wild/oracle (commands in cmd.txt)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from perflab.analysis.profiles import profile_info, top
from perflab.commands.top import render_pprof
from perflab.ingest import ingest_path
from perflab.store import Store
from tests.helpers import run_cli

WILD = Path(__file__).resolve().parent.parent / "fixtures" / "pprof" / "wild"
ORACLES = sorted(p for p in (WILD / "oracle").glob("*.txt") if p.name != "cmd.txt")

# The options behind each named oracle (cmd.txt), as top()'s keywords.
_OPTIONS: dict[str, dict[str, Any]] = {
    "cum20": {"cum": True, "nodecount": 20},
    "all": {},
    "all_nf0": {"nodefraction": 0, "edgefraction": 0},
    "nf05": {"nodefraction": 0.05},
    "mean": {"mean": True},
    "mean_cum": {"mean": True, "cum": True, "nodecount": 15},
}
_SAMPLE_INDEX = {"eno__heap.pprof.cum20": "alloc_space", "eno__heap.pprof.nf05": "inuse_space",
                 "ddtracego__block.after.pprof.mean": "delay", "eno__heap.pprof.mean_cum": "alloc_space"}


def _case(oracle: Path) -> tuple[str, str | None, dict[str, Any]]:
    """(profile file, sample type, options) of one oracle file name."""
    stem = oracle.name.removesuffix(".txt")
    profile, tail = stem.rsplit(".", 1)
    if tail.isdigit():
        return profile, tail, {"nodecount": 20}
    return profile, _SAMPLE_INDEX.get(stem), _OPTIONS[tail]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    s = Store(tmp_path_factory.mktemp("wild") / "store.duckdb")
    yield s
    s.close()


def test_every_wild_profile_has_oracles() -> None:
    profiles = {p.name for p in WILD.iterdir() if p.is_file() and p.suffix != ".md"}
    assert len(profiles) == 10
    assert {_case(o)[0] for o in ORACLES} == profiles
    assert len(ORACLES) == 34


@pytest.mark.parametrize("oracle", ORACLES, ids=lambda p: p.name)
def test_top_text_is_go_tool_pprof_top(store: Store, oracle: Path) -> None:
    profile, sample_type, options = _case(oracle)
    sid = ingest_path(store, WILD / profile).source_id
    result = top(store, sid, sample_type, **options)
    assert render_pprof(result, profile_info(store, sid)) == oracle.read_text().splitlines()


def test_cli_options_are_pprofs(tmp_path: Path) -> None:
    # --sample-index, --cum, --mean and --nodecount on the command line: the mean_cum oracle
    result = run_cli("top", str(WILD / "eno__heap.pprof"), "--sample-index", "alloc_space", "--mean", "--cum",
                     "--nodecount", "15", store=tmp_path / "s.duckdb")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (WILD / "oracle" / "eno__heap.pprof.mean_cum.txt").read_text()


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
