"""`perflab traces` prints what `go tool pprof -traces` prints, line for line: every sample
with frames in file order, its string and numeric labels (sorted, pprof's units), its value
scaled on its own, its frames leaf first with (inline) marks, drop_frames applied.
Oracles: tests/fixtures/pprof/views (commands in cmd.txt)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from perflab.analysis.pprof_views import traces
from perflab.commands.traces import render
from perflab.store import Store
from tests.helpers import run_cli
from tests.unit import test_pprof_peek
from tests.unit.test_pprof_peek import PPROF, VIEWS, filters_of, grouping_of, oracle_commands, view_profile

CASES = oracle_commands("traces")
_shared_store = test_pprof_peek.store  # the fixture "store": one store for the views' tests


def _oracle(name: str) -> list[str]:
    path = VIEWS / name
    data = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    return data.decode().splitlines()


def test_every_traces_oracle_is_here() -> None:
    assert len(CASES) == 21
    assert all((VIEWS / name).stat().st_size > 0 for name, _ in CASES)


@pytest.mark.parametrize(("oracle", "words"), CASES, ids=[c[0] for c in CASES])
def test_traces_text_is_go_tool_pprof_traces(store: Store, oracle: str, words: list[str]) -> None:
    facts, parts, idx = view_profile(store, PPROF, words, regex=False)
    mean = "-mean" in words
    result = {**facts, "mean": mean,
              **traces(store, parts, idx, mean=mean, filters=filters_of(words), **grouping_of(words))}
    assert render(store, result) == _oracle(oracle)


def test_cli_traces_and_json(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    profile = str(PPROF / "generated" / "small_loginstorm.heap.pb.gz")
    text = run_cli("traces", profile, "--sample-index", "alloc_space", store=db)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines() == _oracle("traces.loginstorm_heap.alloc_space.txt")
    js = run_cli("traces", profile, "--sample-index", "alloc_space", "--json", store=db)
    assert js.returncode == 0, js.stderr
    result = json.loads(js.stdout)
    # the oracle's second sample: "bytes:  40kB", 56.06kB, emitLocation first of 4 frames
    second = result["samples"][1]
    assert second["num_labels"] == {"bytes": [40960]} and result["num_label_units"]["bytes"] == "bytes"
    assert round(second["value"] / 1024, 2) == 56.06 and type(second["value"]) is int
    assert [f["name"] for f in second["frames"]][0] == "runtime/pprof.(*profileBuilder).emitLocation"
    assert len(second["frames"]) == 4


def test_cprofile_is_refused_in_one_line(tmp_path: Path) -> None:
    prof = next((PPROF.parent / "cprofile").glob("*.prof"), None) if (PPROF.parent / "cprofile").is_dir() else None
    if prof is None:
        pytest.skip("no cProfile fixture")
    result = run_cli("traces", str(prof), store=tmp_path / "s.duckdb")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
