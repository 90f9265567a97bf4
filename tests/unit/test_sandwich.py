"""perflab.report.charts.sandwich_graph: one function's callers above, callees below.

Each tree is checked against the name-based tree (tests/unit/test_call_tree.reference_tree)
of the stacks() name lists cut by hand at the function's root-most occurrence, and its
top box against pprof's cum of the function (`perflab top`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import polars as pl
import pytest

from perflab.analysis.profiles import stacks, top
from perflab.errors import PerflabError
from perflab.ingest import ingest_path
from perflab.report.charts import sandwich_graph
from perflab.store import Store
from tests.unit.test_call_tree import reference_tree

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CASES = [  # (fixture, function): recursion both ways, a Go CPU profile's hot function
    (FIXTURES / "stacks" / "speedscope__stackcollapse_recursion.txt", "a"),
    (FIXTURES / "stacks" / "speedscope__stackcollapse_recursion.txt", "b"),
    (FIXTURES / "pprof" / "generated" / "small_loginstorm.cpu.pb.gz", "crypto/sha256.block"),
    (FIXTURES / "pprof" / "generated" / "small_loginstorm.cpu.pb.gz", "runtime.mallocgc"),
]


def drawn(trace: Any) -> dict[str, int]:
    """Path of names from the function → value, read from the figure's ids."""
    return {i: v for i, v in zip(trace.ids, trace.values, strict=True)}


def expected(df: pl.DataFrame, function: str) -> tuple[dict[str, int], dict[str, int]]:
    callers, callees = [], []
    for frames, value in df.iter_rows():
        if function not in frames:
            continue
        at = len(frames) - 1 - frames[::-1].index(function)  # root-most (frames are leaf first)
        callees.append((frames[:at + 1], value))
        callers.append((frames[at:][::-1], value))

    def tree(rows: list[tuple[list[str], int]]) -> dict[str, int]:
        t = reference_tree(pl.DataFrame(rows, schema={"frames": pl.List(pl.String), "v": pl.Int64}, orient="row"),
                           ["v"], pl.col("v"), 0.0, 100, 10_000)
        path = {0: ""}
        out = {}
        for node, parent, name, v in t.select("id", "parent", "name", "v").iter_rows():
            path[node] = f"{path[parent]};{name}" if parent else name
            out[path[node]] = v
        return out

    return tree(callers), tree(callees)


@pytest.mark.parametrize(("path", "function"), CASES, ids=[f"{p.name}-{f}" for p, f in CASES])
def test_sandwich_trees_equal_the_name_based_ones(store: Store, path: Path, function: str) -> None:
    sid = ingest_path(store, path).source_id
    fig = sandwich_graph(store, sid, function, min_share=0)
    callers, callees = fig.data
    assert isinstance(callers, go.Icicle) and callers.tiling.flip == "y" and callees.tiling.flip is None
    cum = {r["name"]: r["cum"] for r in top(store, sid)["rows"]}[function]
    assert callers.values[0] == callees.values[0] == cum
    want_callers, want_callees = expected(stacks(store, sid), function)
    assert drawn(callers) == want_callers
    assert drawn(callees) == want_callees
    assert len(want_callers) + len(want_callees) > 3


def test_sandwich_refusals(store: Store) -> None:
    sid = ingest_path(store, CASES[0][0]).source_id
    with pytest.raises(PerflabError, match="has no function 'zz'"):
        sandwich_graph(store, sid, "zz")
    dump = ingest_path(store, FIXTURES / "cprofile" / "json.prof").source_id
    with pytest.raises(PerflabError, match="keeps no stacks"):
        sandwich_graph(store, dump, "x")
