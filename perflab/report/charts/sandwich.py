"""The sandwich of one function: who calls it (above) and what it calls (below).

Every stack holding the function is split at its root-most occurrence (so a recursive
function counts once per sample, as pprof's cum does): the part from the root down to the
function becomes a callers path read upward from the function, the part from the function
down to the leaf a callees path. Both are grown into trees by perflab.analysis.call_tree,
so each tree's top node holds the function's cum exactly, and a callee node the cum along
that path below the function.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from perflab import fmt
from perflab.analysis.call_tree import StackArrays, path_tree, stack_arrays
from perflab.analysis.profiles import resolve_sample_type
from perflab.errors import PerflabError
from perflab.report.charts._base import DEFAULT_MAX_DEPTH, DEFAULT_MIN_SHARE, MAX_NODES, READABLE_TEXT, finish
from perflab.report.charts.flame import _frame_color, _id_part, _paths, _profile_source, short_name
from perflab.store import Store
from perflab.vocab import CPROFILE


def split_at(arrays: StackArrays, node_id: int) -> tuple[StackArrays, StackArrays]:
    """(callers, callees) of node ``node_id``: the stacks holding it, cut at its root-most
    occurrence. Callers are read from the function upward (its caller is depth 2)."""
    n = arrays.frames.size
    starts = arrays.ends - arrays.lens
    hit = np.flatnonzero(arrays.frames == node_id)
    if hit.size == 0:
        empty = np.zeros(0, np.int64)
        none = StackArrays(arrays.frames, empty, empty, arrays.values[:0], arrays.names)
        return none, none
    # Frames are leaf first, so the root-most occurrence in a stack is its last hit.
    stack_of_hit = np.searchsorted(arrays.ends, hit, side="right")
    last = np.r_[stack_of_hit[1:] != stack_of_hit[:-1], True]
    stack, at = stack_of_hit[last], hit[last]
    values = arrays.values[stack]
    # Callees: frames[start .. at], leaf first, the function at the root end.
    callees = StackArrays(arrays.frames, at + 1, at + 1 - starts[stack], values, arrays.names)
    # Callers: frames[at .. end) reversed, so the function is the root end and its callers follow.
    reversed_frames = arrays.frames[::-1]
    callers = StackArrays(reversed_frames, n - at, arrays.ends[stack] - at, values, arrays.names)
    return callers, callees


def sandwich_graph(store: Store, source: int, function: str, sample_type: str | int | None = None,
                   max_depth: int = DEFAULT_MAX_DEPTH, min_share: float = DEFAULT_MIN_SHARE,
                   max_nodes: int = MAX_NODES) -> go.Figure:
    """Two icicles sharing the function's box: its callers above (the function at the bottom,
    each caller above the one it called), its callees below (as in a flame graph). Sizes
    are pprof's cum along each path; ``min_share`` of the profile's total folds a path into
    its neighbour, as in flame_graph."""
    sid, kind = _profile_source(store, source)
    if kind == CPROFILE:
        raise PerflabError(f"source {sid} is a cProfile dump: it keeps no stacks, so no sandwich "
                           "(perflab.analysis.pstats callers and callees list one level)")
    idx, stype, unit = resolve_sample_type(store, sid, sample_type)
    arrays = stack_arrays(store, sid, idx)
    if arrays.values.size and arrays.values.min() < 0:
        raise PerflabError(f"source {sid} has negative values (a delta profile); a sandwich needs sizes >= 0")
    if function not in arrays.names:
        raise PerflabError(f"source {sid} has no function {function!r} (perflab top lists them)")
    total = int(np.abs(arrays.values).sum())
    callers, callees = split_at(arrays, arrays.names.index(function))
    fig = make_subplots(rows=2, cols=1, specs=[[{"type": "domain"}], [{"type": "domain"}]],
                        vertical_spacing=0.02)
    for row, (part, flip) in enumerate(((callers, "y"), (callees, None)), start=1):
        tree = path_tree([part], lambda v: v[:, 0].astype(np.float64), min_share * total, max_depth,
                         max_nodes // 2)
        if tree.is_empty():
            raise PerflabError(f"{function} holds less than min_share ({min_share:.2%}) of source {sid}'s total")
        # The function is the tree's one top node (id 1): it becomes the root of the drawing.
        below = tree.filter(pl.col("id") != 1).with_columns(
            pl.when(pl.col("parent") == 1).then(0).otherwise(pl.col("parent")).alias("parent"))
        root_id = _id_part(function)
        all_ids = [root_id, *_paths(below, root_id)]
        index = {n: i + 1 for i, n in enumerate(below["id"].to_list())}
        parents = [""] + [root_id if q == 0 else all_ids[index[q]] for q in below["parent"].to_list()]
        labels = [function, *below["name"].to_list()]
        values = tree["v0"].to_list()
        custom = [[v / total, fmt.scaled(v, unit)] for v in values]
        fig.add_trace(go.Icicle(
            ids=all_ids, labels=labels, text=[short_name(n) for n in labels], textinfo="text", parents=parents,
            values=values, branchvalues="total", sort=False,
            marker={"colors": [_frame_color(n) for n in labels]}, customdata=custom,
            tiling={"orientation": "v", **({"flip": flip} if flip else {})},
            hovertemplate="%{label}<br>%{customdata[1]} (%{customdata[0]:.2%} of total)<extra></extra>",
        ), row=row, col=1)
    cum = int(callees.values.sum())
    return finish(fig, f"Sandwich of {function} in source {sid}: {stype}, cum {fmt.scaled(cum, unit)} "
                       f"({cum / total:.2%} of total); callers above, callees below",
                  margin={"t": 60, "l": 10, "r": 10, "b": 10}, uniformtext=READABLE_TEXT)
