"""The call tree of a profile's stacks, built from the stored node ids (for flame graphs).

Contract: a node of the tree is a call path from the root (a prefix of some stacks), and
holds the summed values of the stacks through it: pprof's cum along that path. A recursive
function appears once per level it recurs at, as in any flame graph.

Why not names: a 1M-sample profile holds ~46M frames; turning each into a string before
grouping took 10 s and 14 GB. Here the stacks stay integer arrays (pprof_stacks.node_ids,
leaf first) and the tree grows level by level from the root: at depth d each stack still in
play contributes its d-th frame from the root, and the pair (parent node, frame) is one
integer key, grouped by a sort. A node below the score cut-off takes its stacks out of
play, so with the default 0.1 % cut-off only a few levels see many stacks. Only the kept
nodes (a few thousand at most) are given names.

Node ids follow (level, parent id, name) order, so the tree and the figure drawn from it
are the same on every call and equal to what grouping the name lists would give.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from perflab.analysis.pprof_frames import FrameFilters, build
from perflab.store import Store

# score(values of the candidate nodes, one column per profile) -> one float per node.
Score = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class StackArrays:
    """The distinct stacks of one source with a nonzero sum, as flat integer arrays.

    ``frames`` holds every stack's node ids leaf first, one stack after another; stack i
    ends (exclusive) at ``ends[i]`` and has ``lens[i]`` frames, so its frame at depth d
    from the root is ``frames[ends[i] - d]``. ``values`` is the signed sum of the chosen
    sample type over the samples of each stack; ``names`` maps node id to function name.
    """

    frames: np.ndarray
    ends: np.ndarray
    lens: np.ndarray
    values: np.ndarray
    names: list[str]


def stack_arrays(store: Store, sid: int, idx: int, filters: FrameFilters | None = None,
                 granularity: str = "functions") -> StackArrays:
    """The stacks of pprof-shaped source ``sid`` for sample type index ``idx`` (0-based).

    With ``filters`` (pprof's focus, ignore, hide, show, ...) or another ``granularity``,
    the stacks are the ones `perflab top` reads with the same options: the profile as
    pprof rewrites it (perflab.analysis.pprof_frames), drop_frames applied."""
    frames = build(store, [sid], filters or FrameFilters(), granularity)
    if frames is None:
        return _arrays(store, sid, idx, "pprof_stacks", "pprof_nodes")
    try:
        # One source: the rewritten stacks keep the stored stack ids (source 0 << 32 | id).
        st, nodes = frames.finish_tables()
        return _arrays(store, sid, idx, st, nodes)
    finally:
        frames.drop()


def _arrays(store: Store, sid: int, idx: int, stacks: str, nodes: str) -> StackArrays:
    stored = stacks == "pprof_stacks"
    where = "WHERE s.source_id = $sid AND p.v <> 0" if stored else "WHERE p.v <> 0"
    tbl = store.con.sql(
        f"""
        WITH per_stack AS (
            SELECT stack_id, sum(value[$idx])::BIGINT AS v
            FROM pprof_samples WHERE source_id = $sid GROUP BY stack_id
        )
        SELECT s.node_ids, p.v AS value
        FROM {stacks} s JOIN per_stack p USING (stack_id)
        {where}
        """,
        params={"idx": idx + 1, "sid": sid},
    ).to_arrow_table()
    # Node ids index the names: dense per source when stored, possibly sparse when rewritten.
    rows = store.con.execute(
        f"SELECT node_id, name FROM {nodes}" + (" WHERE source_id = ?" if stored else ""),
        [sid] if stored else [],
    ).fetchall()
    names = [""] * (max((int(i) for i, _ in rows), default=-1) + 1)
    for i, name in rows:
        names[int(i)] = str(name)
    frames_parts, lens_parts = [], []
    # Chunk by chunk: combining the chunks of a 46M-element list column first costs a copy.
    for chunk in tbl.column("node_ids").chunks:
        offsets = pl.Series(chunk.offsets).to_numpy().astype(np.int64)
        frames_parts.append(pl.Series(chunk.values).to_numpy()[offsets[0]:offsets[-1]])
        lens_parts.append(np.diff(offsets))
    lens = np.concatenate(lens_parts) if lens_parts else np.zeros(0, np.int64)
    frames = np.concatenate(frames_parts) if frames_parts else np.zeros(0, np.int32)
    values = pl.Series(tbl.column("value").combine_chunks()).to_numpy().astype(np.int64)
    return StackArrays(frames=frames, ends=np.cumsum(lens), lens=lens, values=values, names=names)


def one_level(values: dict[str, float]) -> StackArrays:
    """Stacks of one frame each, one per name (a cProfile's functions by self time)."""
    n = len(values)
    return StackArrays(frames=np.arange(n, dtype=np.int32), ends=np.arange(1, n + 1, dtype=np.int64),
                       lens=np.ones(n, np.int64), values=np.array(list(values.values()), np.float64),
                       names=list(values))


def path_tree(sets: Sequence[StackArrays], score: Score, min_score: float, max_depth: int,
              max_nodes: int) -> pl.DataFrame:
    """The call tree of the union of ``sets`` (one value column ``v0``, ``v1``... per set).

    Level by level from the root: a node is (parent node, function name) and holds each
    set's summed values of the stacks through it. A node whose ``score`` is below
    ``min_score`` (or not above 0) is dropped with everything under it; its value stays in
    its parent. At most ``max_nodes`` nodes are kept, by score (then depth, then id): a
    child never outscores its parent, so the kept set is always a tree.
    Returns id (> 0; the root is 0), parent, name, v0.., depth, self0.. (the values of the
    stacks that end at the node); the values keep the sets' dtype (Int64 for pprof's ints).
    """
    k = len(sets)
    cols = [f"v{i}" for i in range(k)]
    # One name space for all sets: a node id of set i maps to the rank of its name, so a
    # key's order is (parent, name) and the same function in two profiles is one node.
    all_names = sorted({n for s in sets for n in s.names})
    rank_of = {n: i for i, n in enumerate(all_names)}
    ranks = [np.array([rank_of[n] for n in s.names], dtype=np.int64) for s in sets]
    width = max(len(all_names), 1)
    dtype = np.result_type(*[s.values.dtype for s in sets])
    # Per set: the stacks still in play and the node each one is under.
    active = [np.arange(s.lens.size) for s in sets]
    parent_of = [np.zeros(s.lens.size, np.int64) for s in sets]
    levels: list[dict[str, np.ndarray]] = []
    next_id = 1
    for depth in range(1, max_depth + 1):
        keys, vals, ends_here = [], [], []
        for i, s in enumerate(sets):
            keep = s.lens[active[i]] >= depth
            active[i], parent_of[i] = active[i][keep], parent_of[i][keep]
            frame = s.frames[s.ends[active[i]] - depth]
            keys.append(parent_of[i] * width + ranks[i][frame])
            v = np.zeros((active[i].size, k), dtype)
            v[:, i] = s.values[active[i]]
            vals.append(v)
            ends_here.append(s.lens[active[i]] == depth)
        key = np.concatenate(keys)
        if key.size == 0:
            break
        # Group by sorting (any sort: the sums do not depend on the order of equal keys).
        order = np.argsort(key)
        sorted_key = key[order]
        first = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
        starts = np.flatnonzero(first)
        group = np.empty(key.size, np.int64)
        group[order] = np.cumsum(first) - 1
        node_key = sorted_key[starts]
        all_vals = np.concatenate(vals)
        node_vals = np.add.reduceat(all_vals[order], starts, axis=0)
        # A node's self value: the stacks that end at it (pprof's flat along that path).
        node_self = np.add.reduceat((all_vals * np.concatenate(ends_here)[:, None])[order], starts, axis=0)
        node_score = score(node_vals)
        kept = np.flatnonzero((node_score >= min_score) & (node_score > 0))
        ids = np.arange(next_id, next_id + kept.size, dtype=np.int64)
        next_id += kept.size
        if kept.size > max_nodes:
            # No node beyond the max_nodes best of its own level can be among the best overall.
            best = np.sort(np.lexsort((ids, -node_score[kept]))[:max_nodes])
            kept, ids = kept[best], ids[best]
        if kept.size == 0:
            break
        levels.append({"id": ids, "parent": node_key[kept] // width, "rank": node_key[kept] % width,
                       "vals": node_vals[kept], "self": node_self[kept], "score": node_score[kept],
                       "depth": np.full(ids.size, depth, np.int64)})
        # Each stack in play moves under its node, or leaves play if that node was dropped.
        id_of_group = np.full(starts.size, -1, np.int64)
        id_of_group[kept] = ids
        at = 0
        for i in range(k):
            new_parent = id_of_group[group[at:at + keys[i].size]]
            at += keys[i].size
            stay = new_parent >= 0
            active[i], parent_of[i] = active[i][stay], new_parent[stay]
    if not levels:
        vtype = pl.Float64 if dtype.kind == "f" else pl.Int64
        return pl.DataFrame(schema={"id": pl.Int64, "parent": pl.Int64, "name": pl.String,
                                    **{c: vtype for c in cols}, "depth": pl.Int64,
                                    **{f"self{c[1:]}": vtype for c in cols}})
    tree = {f: np.concatenate([lv[f] for lv in levels]) for f in levels[0]}
    if tree["id"].size > max_nodes:
        best = np.sort(np.lexsort((tree["id"], tree["depth"], -tree["score"]))[:max_nodes])
        tree = {f: a[best] for f, a in tree.items()}
    return pl.DataFrame({
        "id": tree["id"], "parent": tree["parent"],
        "name": pl.Series([all_names[r] for r in tree["rank"].tolist()], dtype=pl.String),
        **{c: tree["vals"][:, i] for i, c in enumerate(cols)},
        "depth": tree["depth"],
        **{f"self{i}": tree["self"][:, i] for i in range(k)},
    })
