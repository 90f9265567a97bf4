"""Flame graphs of a profile, and the differential flame graph of two.

Each takes the store and a stored profile's source id (pprof, collapsed stacks, speedscope or cProfile).
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import plotly.graph_objects as go
import polars as pl

from perflab import fmt
from perflab.analysis.call_tree import StackArrays, one_level, path_tree, stack_arrays
from perflab.analysis.categories import OTHER, categorize_frame
from perflab.analysis.pprof_frames import FrameFilters
from perflab.analysis.pprof_view import source_total
from perflab.analysis.profile_diff import diff_basis
from perflab.analysis.profiles import resolve_sample_type
from perflab.analysis.pstats import cprofile_top
from perflab.errors import PerflabError
from perflab.report.charts._base import (
    CATEGORY_COLORS,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MIN_SHARE,
    FLAME_COLORS,
    MAX_NODES,
    READABLE_TEXT,
    finish,
)
from perflab.report.flame_search import DIMMED_COLOR, MATCH_COLOR
from perflab.store import Store
from perflab.vocab import CPROFILE, PPROF, PPROF_SHAPED_KINDS, PROFILE_KINDS

# Thin paths are drawn as one box per caller: invisible one by one, they can add up. Its id
# part holds a bare '%', which no frame's escaped id part (_id_part) can.
FOLDED_LABEL = "(thinner paths)"
FOLDED_ID = "%folded"
FOLDED_COLOR = "#d9d9d9"


def _profile_source(store: Store, source: int) -> tuple[int, str]:
    """(source id, "cprofile" or "pprof": collapsed and speedscope sources read as pprof)."""
    sid = store.find_source(source, kinds=PROFILE_KINDS)
    kind = str(store.source(sid)["kind"])
    return sid, PPROF if kind in PPROF_SHAPED_KINDS else kind


def _id_part(name: str) -> str:
    # ';' separates the frames of an id, as in folded stacks; a name holding one is escaped.
    return name.replace("%", "%25").replace(";", "%3B")


def _paths(tree: pl.DataFrame, root_id: str) -> list[str]:
    """Each node's id: the root's id and the names from the root down, joined by ';'."""
    path = {0: root_id}
    out = []
    for node, parent, name in zip(tree["id"].to_list(), tree["parent"].to_list(), tree["name"].to_list(), strict=True):
        path[node] = f"{path[parent]};{_id_part(name)}"
        out.append(path[node])
    return out


def _frame_color(name: str) -> str:
    cat = categorize_frame(name)
    if cat is not None:
        return CATEGORY_COLORS.get(cat, "#bcbd22")
    package = name.rsplit(".", 1)[0] if "." in name else name
    return FLAME_COLORS[zlib.crc32(package.encode()) % len(FLAME_COLORS)]


def _check_signs(arrays: StackArrays, sid: int) -> None:
    if arrays.values.size and arrays.values.min() < 0:
        raise PerflabError(
            f"source {sid} has negative values (a delta profile); a flame graph needs sizes >= 0. "
            "Compare the two profiles it was made from with diff_flame_graph instead")


def flame_graph(store: Store, source: int, sample_type: str | int | None = None,
                max_depth: int = DEFAULT_MAX_DEPTH, min_share: float = DEFAULT_MIN_SHARE,
                max_nodes: int = MAX_NODES, filters: FrameFilters | None = None,
                granularity: str = "functions", search: str | None = None) -> go.Figure:
    """An icicle of the profile's stacks, root on top: each node is a call path, sized by
    pprof's cum along that path, coloured by hot-frame category (grey-orange: other).

    The root's value is pprof's total (samples without frames included); a node below
    ``min_share`` of the total is folded into its parent, paths deeper than ``max_depth``
    are cut, and at most ``max_nodes`` nodes are drawn (root included). Any sample type
    works (``cpu``, ``alloc_space``, ``delay``...). ``filters`` and ``granularity`` are
    `perflab top`'s (pprof's focus, ignore, ...): the graph then draws the stacks top
    reads, under the whole profile's total as pprof's. ``search`` lights the boxes whose
    frame name holds it (any case), dims the rest, and the title gives the share of the
    total held by the stacks with a matching frame (a recursive match counted once, as
    pprof's cum), as the report page's search box does. A cProfile dump has no stacks, so
    its graph is one level: every function by its own time (tottime) under the pstats total.
    """
    if max_depth < 1 or max_nodes < 2 or not 0 <= min_share < 1:
        raise PerflabError("flame_graph needs max_depth >= 1, max_nodes >= 2 and 0 <= min_share < 1")
    sid, kind = _profile_source(store, source)
    if kind == CPROFILE:
        if (filters and filters.active()) or granularity != "functions":
            raise PerflabError(f"source {sid} is a cProfile dump: it has no stacks to filter or regroup")
        return _cprofile_flame(store, sid, sample_type, min_share, max_nodes)
    idx, stype, unit = resolve_sample_type(store, sid, sample_type)
    total = source_total(store, sid, idx)
    arrays = stack_arrays(store, sid, idx, filters, granularity)
    _check_signs(arrays, sid)
    if total == 0:
        raise PerflabError(f"source {sid} has no {stype} samples (total 0)")
    tree = path_tree([arrays], lambda v: v[:, 0].astype(np.float64), min_share * total, max_depth,
                     max_nodes - 1).rename({"v0": "value", "self0": "self"})
    root = "root"
    ids = [root, *_paths(tree, root)]
    index = {n: i + 1 for i, n in enumerate(tree["id"].to_list())}
    parents = [""] + [root if p == 0 else ids[index[p]] for p in tree["parent"].to_list()]
    names = tree["name"].to_list()
    values = [total, *tree["value"].to_list()]
    cats = ["", *[categorize_frame(n) or OTHER for n in names]]
    colors = ["#e0e0e0", *[_frame_color(n) for n in names]]
    labels, texts = [root, *names], [root, *[short_name(n) for n in names]]
    in_stacks = int(arrays.values[arrays.lens > 0].sum())
    for parent, value in _folded(tree.filter(pl.col("depth") < max_depth), tree, in_stacks, min_share * total,
                                 max_nodes - len(ids)):
        parent_id = root if parent == 0 else ids[index[parent]]
        ids.append(f"{parent_id};{FOLDED_ID}")
        parents.append(parent_id)
        labels.append(FOLDED_LABEL)
        texts.append(FOLDED_LABEL)
        values.append(value)
        cats.append("")
        colors.append(FOLDED_COLOR)
    custom = [[v / total, fmt.scaled(v, unit), c] for v, c in zip(values, cats, strict=True)]
    fig = go.Figure(go.Icicle(
        ids=ids, labels=labels, text=texts, textinfo="text", parents=parents, values=values,
        branchvalues="total", marker={"colors": colors}, customdata=custom, tiling={"orientation": "v"},
        sort=False, hovertemplate="%{label}<br>%{customdata[1]} (%{customdata[0]:.2%} of total)"
                                  "<br>%{customdata[2]}<extra></extra>",
    ))
    folded = f"; paths under {min_share:.2%} folded into '{FOLDED_LABEL}'" if min_share else ""
    if filters and filters.active():
        folded += "; " + ", ".join(filters.legend())
    if search and search.strip():
        q = search.strip().lower()
        lit = [i > 0 and label != FOLDED_LABEL and q in label.lower() for i, label in enumerate(labels)]
        fig.update_traces(marker={"colors": [MATCH_COLOR if h else DIMMED_COLOR for h in lit]})
        share = search_share(arrays, q) / total
        folded += f"; search {search.strip()!r}: {sum(lit)} boxes lit, {share:.2%} of the total"
    return finish(fig, f"Flame graph of source {sid}: {stype}, {fmt.scaled(total, unit)} total{folded}",
                  margin={"t": 60, "l": 10, "r": 10, "b": 10}, uniformtext=READABLE_TEXT)


def search_share(arrays: StackArrays, text: str) -> int:
    """The summed value of the stacks holding a frame whose name holds ``text`` (lower case)."""
    ids = np.array([i for i, n in enumerate(arrays.names) if text in n.lower()], dtype=np.int64)
    framed = arrays.lens > 0
    if ids.size == 0 or not framed.any():
        return 0
    hit = np.isin(arrays.frames, ids).astype(np.int64)
    per_stack = np.add.reduceat(hit, (arrays.ends - arrays.lens)[framed])
    return int(arrays.values[framed][per_stack > 0].sum())


def short_name(name: str) -> str:
    """What a box shows of a frame: the name after its last '/' (``pkg.(*T).Method``,
    ``encoder.py:205(iterencode)``); the hover keeps the full name."""
    return name.rstrip("/").rsplit("/", 1)[-1] or name


def _folded(parents: pl.DataFrame, tree: pl.DataFrame, in_stacks: int, min_value: float,
            budget: int) -> list[tuple[int, int]]:
    """(parent id, value) for each of ``parents`` (and the root) whose folded children (thin,
    or cut by the node cap) add up to ``min_value`` or more, largest first, at most
    ``budget``: a node's value less its self value and its drawn children in ``tree``."""
    if budget <= 0:
        return []
    kids = tree.group_by("parent").agg(pl.col("value").sum().cast(pl.Int64).alias("kids")).rename({"parent": "id"})
    nodes = pl.concat([
        pl.DataFrame({"id": [0], "value": [in_stacks], "self": [0]}, schema={"id": pl.Int64, "value": pl.Int64,
                                                                            "self": pl.Int64}),
        parents.select("id", "value", "self"),
    ])
    other = (nodes.join(kids, on="id", how="left").with_columns(pl.col("kids").fill_null(0))
             .select("id", (pl.col("value") - pl.col("self") - pl.col("kids")).alias("other"))
             .filter((pl.col("other") > 0) & (pl.col("other") >= min_value))
             .sort(["other", "id"], descending=[True, False]).head(budget).sort("id"))
    return list(other.iter_rows())


def _cprofile_functions(store: Store, sid: int, sample_type: str | int | None) -> tuple[float, pl.DataFrame]:
    if sample_type not in (None, "cpu", 0, "0"):
        raise PerflabError(f"source {sid} is a cProfile dump; its only sample type is cpu (seconds)")
    total, df = cprofile_top(store, sid)
    return float(total), df.select("name", pl.col("flat").alias("value")).filter(pl.col("value") > 0)


def _cprofile_flame(store: Store, sid: int, sample_type: str | int | None, min_share: float,
                    max_nodes: int) -> go.Figure:
    total, funcs = _cprofile_functions(store, sid, sample_type)
    if total <= 0:
        raise PerflabError(f"source {sid} has no time (pstats total 0)")
    kept = (funcs.filter(pl.col("value") >= min_share * total)
            .sort(["value", "name"], descending=[True, False]).head(max_nodes - 1))
    names = kept["name"].to_list()
    own = kept["value"].to_list()
    # The root's own part is what the folded functions took; 'remainder' adds the children,
    # so a float sum of the functions can never exceed the pstats total it is drawn under.
    values = [max(total - math.fsum(own), 0.0), *own]
    root = "all functions"
    cats = ["", *[categorize_frame(n) or OTHER for n in names]]
    custom = [[v / total, fmt.scaled(v, "seconds"), c] for v, c in zip([total, *own], cats, strict=True)]
    fig = go.Figure(go.Icicle(
        ids=[root, *[f"{root};{_id_part(n)}" for n in names]], labels=[root, *names],
        parents=["", *[root] * len(names)], values=values, branchvalues="remainder",
        marker={"colors": ["#e0e0e0", *[_frame_color(n) for n in names]]}, customdata=custom,
        tiling={"orientation": "v"}, sort=False,
        hovertemplate="%{label}<br>%{customdata[1]} self time (%{customdata[0]:.2%} of total)"
                      "<br>%{customdata[2]}<extra></extra>",
    ))
    return finish(fig, f"Self time by function of cProfile source {sid} ({fmt.scaled(total, 'seconds')} "
                        "total; cProfile keeps no stacks, so one level)",
                   margin={"t": 60, "l": 10, "r": 10, "b": 10})


def diff_flame_graph(store: Store, source_a: int, source_b: int, sample_type: str | int | None = None,
                     max_depth: int = DEFAULT_MAX_DEPTH, min_share: float = DEFAULT_MIN_SHARE,
                     max_nodes: int = MAX_NODES) -> go.Figure:
    """A differential flame graph: the union of both profiles' call paths, each node
    coloured by its absolute change B − A in the sample type's unit per second of profile
    (perflab.analysis.profile_diff: CPU seconds per second, or whole-profile totals when a
    side records no duration; red grew, blue shrank, white unchanged), as pprof's
    -diff_base reads: a path that became 4× cheaper is deep blue even when its share of a
    smaller total barely moved. Each node is sized by the larger of its two values, so a
    path that vanished in B stays visible. The hover shows A, B, the change and the shares.

    A node's own size is the larger of its two self values; a node below ``min_share`` of
    its profile's total in both profiles is folded into its parent. cProfile sources give
    one level (functions by self time), as in :func:`flame_graph`.
    """
    if max_depth < 1 or max_nodes < 2 or not 0 <= min_share < 1:
        raise PerflabError("diff_flame_graph needs max_depth >= 1, max_nodes >= 2 and 0 <= min_share < 1")
    sid_a, kind_a = _profile_source(store, source_a)
    sid_b, kind_b = _profile_source(store, source_b)
    if kind_a != kind_b:
        raise PerflabError(f"source {sid_a} is {kind_a} and source {sid_b} is {kind_b}; compare profiles of one format")
    if kind_a == CPROFILE:
        total_a, fa = _cprofile_functions(store, sid_a, sample_type)
        total_b, fb = _cprofile_functions(store, sid_b, sample_type)
        unit, stype = "seconds", "cpu"
        sa = one_level(dict(zip(fa["name"].to_list(), fa["value"].to_list(), strict=True)))
        sb = one_level(dict(zip(fb["name"].to_list(), fb["value"].to_list(), strict=True)))
        max_depth = 1
    else:
        idx_a, stype, unit = resolve_sample_type(store, sid_a, sample_type)
        idx_b, stype_b, unit_b = resolve_sample_type(store, sid_b, sample_type)
        if (stype, unit) != (stype_b, unit_b):
            raise PerflabError(f"source {sid_a} shows {stype} ({unit}) and source {sid_b} {stype_b} ({unit_b}); "
                               "pass sample_type to compare the same thing")
        total_a, total_b = source_total(store, sid_a, idx_a), source_total(store, sid_b, idx_b)
        sa, sb = stack_arrays(store, sid_a, idx_a), stack_arrays(store, sid_b, idx_b)
        _check_signs(sa, sid_a)
        _check_signs(sb, sid_b)
    for sid, total in ((sid_a, total_a), (sid_b, total_b)):
        if total <= 0:
            raise PerflabError(f"source {sid} has no {stype} samples (total 0)")
    tree = path_tree([sa, sb], lambda v: np.maximum(v[:, 0] / total_a, v[:, 1] / total_b), min_share,
                     max_depth, max_nodes - 1).rename({"v0": "va", "v1": "vb"}).with_columns(
        pl.col("va").cast(pl.Float64), pl.col("vb").cast(pl.Float64))
    basis = diff_basis(store, sid_a, sid_b, None if kind_a == CPROFILE else sample_type)
    # Remainder sizes: a node's own part is the larger of its two self values, so the
    # drawn size of a node (own part + children) is never less than what it holds.
    tree = tree.with_columns((pl.col("va") * basis.scale_a).alias("na"), (pl.col("vb") * basis.scale_b).alias("nb"))
    children = tree.group_by("parent").agg(pl.col("na").sum().alias("ca"), pl.col("nb").sum().alias("cb"))
    tree = tree.join(children.rename({"parent": "id"}), on="id", how="left").with_columns(
        pl.col("ca").fill_null(0.0), pl.col("cb").fill_null(0.0)).sort("id")
    root_a, root_b = float(sa.values.sum()), float(sb.values.sum())
    top_a = float(tree.filter(pl.col("parent") == 0)["na"].sum())
    top_b = float(tree.filter(pl.col("parent") == 0)["nb"].sum())

    root = "root"
    ids = [root, *_paths(tree, root)]
    index = {n: i + 1 for i, n in enumerate(tree["id"].to_list())}
    parents = [""] + [root if p == 0 else ids[index[p]] for p in tree["parent"].to_list()]
    names = tree["name"].to_list()
    va, vb = [root_a, *tree["va"].to_list()], [root_b, *tree["vb"].to_list()]
    na = [root_a * basis.scale_a, *tree["na"].to_list()]
    nb = [root_b * basis.scale_b, *tree["nb"].to_list()]
    own_a = [na[0] - top_a, *(tree["na"] - tree["ca"]).to_list()]
    own_b = [nb[0] - top_b, *(tree["nb"] - tree["cb"]).to_list()]
    sizes = [max(a, b, 0.0) for a, b in zip(own_a, own_b, strict=True)]
    delta = [b - a for a, b in zip(na, nb, strict=True)]
    bound = max((abs(d) for d in delta), default=0.0) or 1e-9
    per = fmt.PER_SUFFIXES.get(basis.per, "")
    custom = [[fmt.per_basis(x, basis.unit, basis.per), fmt.per_basis(y, basis.unit, basis.per),
               fmt.per_basis(d, basis.unit, basis.per, signed=True), a / total_a, b / total_b,
               b / total_b - a / total_a]
              for x, y, d, a, b in zip(na, nb, delta, va, vb, strict=True)]
    fig = go.Figure(go.Icicle(
        ids=ids, labels=[root, *names], text=[root, *[short_name(n) for n in names]], textinfo="text",
        parents=parents, values=sizes, branchvalues="remainder",
        marker={"colors": delta, "colorscale": "RdBu_r", "cmid": 0.0, "cmin": -bound, "cmax": bound,
                "colorbar": {"title": {"text": f"B − A<br>({basis.unit}{per})"},
                             "tickformat": "+.3~s"}},
        customdata=custom, tiling={"orientation": "v"}, sort=False,
        hovertemplate="%{label}<br>A: %{customdata[0]} (%{customdata[3]:.2%} of A)"
                      "<br>B: %{customdata[1]} (%{customdata[4]:.2%} of B)"
                      "<br>change: %{customdata[2]} (share %{customdata[5]:+.2%})<extra></extra>",
    ))
    note = f"; {basis.note}" if basis.note else ""
    return finish(fig, f"What changed from source {sid_a} (A) to source {sid_b} (B): {stype}, "
                        f"{basis.label} (red grew, blue shrank){note}",
                   margin={"t": 60, "l": 10, "r": 10, "b": 10}, uniformtext=READABLE_TEXT)
