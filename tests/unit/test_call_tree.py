"""perflab.analysis.call_tree against the exact name-based computation it replaced.

The reference below groups the frame names of stacks() level by level (the flame graph's
code before the tree was built from node ids); every tree must equal it row for row:
ids, parents, names, values and depths, with folding, depth cuts and the node cap, on
real pprof fixtures, collapsed stacks with recursion, and two profiles at once (the diff).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from perflab.analysis.call_tree import one_level, path_tree, stack_arrays
from perflab.analysis.profiles import resolve_sample_type, stacks, top
from perflab.ingest import ingest_path
from perflab.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LOGINSTORM_CPU, HEAP, BLOCK, MUTEX = (FIXTURES / "pprof" / "generated" / f"small_{name}.pb.gz" for name in (
    "loginstorm.cpu", "loginstorm.heap", "falseidle.block", "falseidle.mutex"))
LARGE = FIXTURES / "pprof" / "public" / "google-pprof" / "large.cpu"
RECURSION = FIXTURES / "stacks" / "speedscope__stackcollapse_recursion.txt"
PERF = FIXTURES / "stacks" / "apquery__perf.collapsed"


def reference_tree(df: pl.DataFrame, value_cols: list[str], score: pl.Expr, min_score: float,
                   max_depth: int, max_nodes: int) -> pl.DataFrame:
    """The tree grown from name lists (``frames`` leaf first), as flame.py built it before."""
    work = df.select(pl.col("frames").list.reverse().alias("path"), *value_cols).with_columns(
        pl.lit(0, pl.Int64).alias("parent"))
    levels: list[pl.DataFrame] = []
    next_id = 1
    for depth in range(1, max_depth + 1):
        work = work.filter(pl.col("path").list.len() >= depth)
        if work.is_empty():
            break
        work = work.with_columns(pl.col("path").list.get(depth - 1).alias("name"))
        nodes = (
            work.group_by("parent", "name").agg(*[pl.col(c).sum() for c in value_cols])
            .filter((score >= min_score) & (score > 0))
            .sort("parent", "name")
            .with_row_index("id", offset=next_id).with_columns(pl.col("id").cast(pl.Int64))
        )
        next_id += nodes.height
        if nodes.height > max_nodes:
            nodes = nodes.with_columns(score.alias("_s")).sort(["_s", "id"], descending=[True, False]) \
                .head(max_nodes).drop("_s").sort("id")
        if nodes.is_empty():
            break
        levels.append(nodes.with_columns(pl.lit(depth, pl.Int64).alias("depth")))
        work = work.join(nodes.select("parent", "name", "id"), on=["parent", "name"], how="inner") \
            .select("path", *value_cols, pl.col("id").alias("parent"))
    tree = pl.concat(levels)
    if tree.height > max_nodes:
        tree = tree.with_columns(score.alias("_s")).sort(["_s", "depth", "id"], descending=[True, False, False]) \
            .head(max_nodes).drop("_s")
    return tree.sort("id").select("id", "parent", "name", *value_cols, "depth")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("tree") / "store.duckdb")
    yield store
    store.close()


def _sid(store: Store, path: Path) -> int:
    return ingest_path(store, path).source_id


CASES = [  # (file, sample type, min_share, max_depth, max_nodes)
    (LOGINSTORM_CPU, None, 0.0, 100, 10_000),
    (LOGINSTORM_CPU, None, 0.001, 100, 1999),
    (LOGINSTORM_CPU, None, 0.0, 4, 10_000),
    (HEAP, "alloc_space", 0.05, 3, 1999),
    (HEAP, "inuse_space", 0.0, 100, 10_000),
    (LARGE, None, 0.001, 100, 1999),
    (LARGE, None, 0.0, 1000, 1999),  # the node cap decides, per level and overall
    (LARGE, None, 0.0, 1000, 50),
    (RECURSION, None, 0.0, 100, 10_000),  # a;b;a;b...: a function at several depths of one path
    (RECURSION, None, 0.0, 100, 5),
    (PERF, None, 0.0, 100, 10_000),
]


@pytest.mark.parametrize(("path", "stype", "min_share", "max_depth", "max_nodes"), CASES,
                         ids=[f"{c[0].name}-{c[2]}-{c[3]}-{c[4]}" for c in CASES])
def test_tree_equals_the_name_based_tree(lab: Store, path: Path, stype: str | None, min_share: float,
                                         max_depth: int, max_nodes: int) -> None:
    sid = _sid(lab, path)
    idx, _, _ = resolve_sample_type(lab, sid, stype)
    arrays = stack_arrays(lab, sid, idx)
    total = int(np.abs(arrays.values).sum())
    got = path_tree([arrays], lambda v: v[:, 0].astype(np.float64), min_share * total, max_depth, max_nodes)
    want = reference_tree(stacks(lab, sid, idx).rename({"value": "v0"}), ["v0"], pl.col("v0"),
                          min_share * total, max_depth, max_nodes)
    assert got.height > 1
    assert got.select(want.columns).to_dicts() == want.to_dicts()
    # self: what ends at a node, so with nothing folded a function's self values add up to its flat.
    if min_share == 0 and max_depth >= 100 and max_nodes > 2000:
        flat = {r["name"]: r["flat"] for r in top(lab, sid, sample_type=idx, nodefraction=0, nodecount=0)["rows"]}
        by_name = got.group_by("name").agg(pl.col("self0").sum())
        assert {n: v for n, v in by_name.rows() if v} == {n: v for n, v in flat.items() if v}


def test_recursion_values_by_hand(lab: Store) -> None:
    # The path a;b;a;b holds every stack that starts with it: 2 + 2 (…;c) + 1 (…;a;b) = 5,
    # and a on its own again at depth 5 holds a;b;a;b;a;b only.
    sid = _sid(lab, RECURSION)
    tree = path_tree([stack_arrays(lab, sid, 0)], lambda v: v[:, 0].astype(np.float64), 0.0, 100, 100)
    rows = {r["id"]: r for r in tree.to_dicts()}

    def path(node: int) -> str:
        r = rows[node]
        return r["name"] if r["parent"] == 0 else f"{path(r['parent'])};{r['name']}"

    values = {path(i): r["v0"] for i, r in rows.items()}
    assert values["a"] == 9 and values["b"] == 1 and values["a;b"] == 8 and values["a;a"] == 1
    assert values["a;b;a;b"] == 5 and values["a;b;a;b;a"] == 1 and values["a;b;a;b;a;b"] == 1


def test_two_profiles_share_one_tree(lab: Store) -> None:
    # The differential flame graph's tree: the union of both profiles' paths, one value
    # column each, scored by the larger of the two shares.
    sa, sb = _sid(lab, BLOCK), _sid(lab, MUTEX)
    ia, _, _ = resolve_sample_type(lab, sa, "delay")
    ib, _, _ = resolve_sample_type(lab, sb, "delay")
    aa, ab = stack_arrays(lab, sa, ia), stack_arrays(lab, sb, ib)
    ta, tb = int(np.abs(aa.values).sum()), int(np.abs(ab.values).sum())
    for min_share, max_nodes in ((0.0, 10_000), (0.01, 10_000), (0.0, 7)):
        got = path_tree([aa, ab], lambda v: np.maximum(v[:, 0] / ta, v[:, 1] / tb), min_share, 100, max_nodes)
        df = pl.concat([
            stacks(lab, sa, ia).select("frames", pl.col("value").alias("v0"), pl.lit(0, pl.Int64).alias("v1")),
            stacks(lab, sb, ib).select("frames", pl.lit(0, pl.Int64).alias("v0"), pl.col("value").alias("v1")),
        ])
        want = reference_tree(df, ["v0", "v1"], pl.max_horizontal(pl.col("v0") / ta, pl.col("v1") / tb),
                              min_share, 100, max_nodes)
        assert got.select(want.columns).to_dicts() == want.to_dicts()
        assert got.filter(pl.col("v0") > 0).height and got.filter(pl.col("v1") > 0).height


def test_one_level_keeps_float_seconds() -> None:
    tree = path_tree([one_level({"f": 0.25, "g": 1.5}), one_level({"g": 0.5, "h": 0.125})],
                     lambda v: np.maximum(v[:, 0], v[:, 1]), 0.0, 1, 10)
    assert tree.select("name", "v0", "v1").rows() == [("f", 0.25, 0.0), ("g", 1.5, 0.5), ("h", 0.0, 0.125)]
    assert tree["v0"].dtype == pl.Float64
