"""`go tool pprof -top` over the stored pprof tables: which rows, in which order, with
which labels, computed in bulk by DuckDB and Arrow. The stacks come from the store, or
rewritten by pprof's frame options (perflab.analysis.pprof_frames); the samples from one
profile or several merged (perflab.analysis.pprof_merge), less the tag filters'
(perflab.analysis.pprof_tags).

pprof builds a graph of nodes and caller->callee edges from the samples, then
(report.newTrimmedGraph):

1. drops every node whose |cum| is below ``nodefraction`` x the sum of all flats
   (the cut is truncated to an integer; the header says ``Dropped N nodes (cum <= X)``
   with X taken from the report's total instead);
2. sorts the rest, by |flat| descending, then printable name, then |cum| (``-cum``:
   |cum|, name, |flat|), and keeps the first ``nodecount``;
3. rebuilds the graph from the kept nodes only. A kept node's flat and cum do not
   change, but its in-edges now come from the nearest *kept* caller, and a node
   is labelled ``(inline)`` when some caller reaches it only through inlined
   frames, ``(partial-inline)`` when another caller reaches it through a real call;
   only edges whose |weight| reaches ``edgefraction`` x the flats' sum count.

Values are raw sums for the sort and the cuts; with ``mean`` each shown value is
divided (Go's truncating integer division) by the matching sum of the profile's
first sample type, as pprof's -mean does.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from perflab.analysis.pprof_frames import FrameFilters, build
from perflab.analysis.pprof_merge import merged_total
from perflab.analysis.pprof_tags import TagFilters, kept_samples_sql
from perflab.arrays import lookup
from perflab.lazy import LazyModule
from perflab.store import Store

if TYPE_CHECKING:
    import numpy as np
    import polars as pl
    import pyarrow as pa
else:  # loaded on first use (perflab.lazy)
    np, pl, pa = LazyModule("numpy"), LazyModule("polars"), LazyModule("pyarrow")

# flat and cum per node in one aggregation: per stack first (stacks are shared by many
# samples), then per node. list_distinct makes a recursive function count once per
# sample in cum; it is slow, so only the stacks flagged recursive at ingest go through it.
# {sample_rows} holds the merged profile's samples: v the chosen type's value, d the
# first type's (what -mean divides by; 0 without -mean); {samples} the tag filters.
_NODE_TOTALS_SQL = """
WITH per_stack AS (
    SELECT stack_id, sum(v) AS v, sum(CASE WHEN $mean THEN d ELSE 0 END) AS d
    FROM {sample_rows} WHERE {samples}
    GROUP BY stack_id
),
st AS (
    SELECT s.node_ids, s.recursive, p.v, p.d
    FROM {stacks} s JOIN per_stack p USING (stack_id)
    WHERE p.v <> 0 OR p.d <> 0
),
flat AS (
    SELECT node_ids[1] AS node_id, sum(v) AS flat, sum(d) AS flat_div
    FROM st WHERE len(node_ids) > 0 GROUP BY 1
),
cum AS (
    SELECT node_id, sum(v) AS cum, sum(d) AS cum_div
    FROM (
        SELECT unnest(CASE WHEN recursive THEN list_distinct(node_ids) ELSE node_ids END) AS node_id, v, d
        FROM st
    )
    GROUP BY 1
)
SELECT c.node_id, n.name, n.info, coalesce(f.flat, 0) AS flat, c.cum,
       coalesce(f.flat_div, 0) AS flat_div, c.cum_div
FROM cum c
LEFT JOIN flat f USING (node_id)
JOIN {nodes} n ON n.node_id = c.node_id
WHERE coalesce(f.flat, 0) <> 0 OR c.cum <> 0
"""

_TOTAL_SQL = """
SELECT coalesce(sum(abs(v)), 0), coalesce(sum(CASE WHEN $mean THEN d ELSE 0 END), 0) FROM {sample_rows}
"""

# The stacks pprof reads for the inline labels: those with a sample whose value (or
# -mean's divisor) is not 0, with the summed value (an edge's weight is a sum of these;
# int64, as pprof's own sums).
_LIVE_STACKS_SQL = """
WITH live AS (
    SELECT stack_id, sum(v)::BIGINT AS v FROM {sample_rows}
    WHERE (v <> 0 OR ($mean AND d <> 0)) AND {samples}
    GROUP BY stack_id
)
SELECT s.stack_id, live.v, s.node_ids, {extra} FROM {stacks} s JOIN live USING (stack_id)
"""
_STORED_STACKS = "(SELECT stack_id, node_ids, recursive, location_ids FROM pprof_stacks WHERE source_id = $sid)"
_STORED_NODES = "(SELECT node_id, name, name AS info FROM pprof_nodes WHERE source_id = $sid)"

DEFAULT_NODEFRACTION = 0.005
DEFAULT_EDGEFRACTION = 0.001


@dataclass(frozen=True)
class TopQuery:
    """The options of `go tool pprof -top` that perflab honours (pprof's defaults)."""

    nodecount: int = 0  # 0: every row left after the nodefraction cut
    nodefraction: float = DEFAULT_NODEFRACTION
    edgefraction: float = DEFAULT_EDGEFRACTION
    cum: bool = False
    mean: bool = False
    filters: FrameFilters = FrameFilters()
    granularity: str = "functions"
    tags: TagFilters = TagFilters()


def go_div(a: int, b: int) -> int:
    """Go's integer division: truncated toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def mean_value(raw: int, div: int, mean: bool) -> int:
    """A value as pprof's -mean shows it: divided (Go's truncation) by the first sample
    type's sum when ``mean`` and that sum is not 0."""
    return go_div(raw, div) if mean and div else raw


@dataclass(frozen=True)
class Part:
    """One profile of the merge pprof makes of all it reads: ``sign`` -1 for a base
    (subtracted), ``columns`` the index in its own values of each merged sample type,
    ``stages`` the ratios its values go through, one tuple per merge (pprof's
    ScaleProfiles), ``base`` True for a -diff_base profile."""

    sid: int
    sign: int = 1
    columns: tuple[int, ...] = ()
    stages: tuple[tuple[float, ...], ...] = ()
    base: bool = False


def value_sql(j: int, part: Part) -> str:
    """Merged sample type ``j`` of a sample as pprof's merged profile holds it: negated
    for a base, then scaled to each merge's unit and rounded (pprof's ScaleN)."""
    column = (part.columns[j] if part.columns else j) + 1
    expr = f"value[{column}]" if part.sign == 1 else f"(-value[{column}])"
    for ratios in part.stages:
        if ratios[j] != 1.0:
            expr = f"round({expr}::DOUBLE * {float(ratios[j])!r})::BIGINT"
    return expr


def sample_rows(parts: list[Part], idx: int) -> str:
    """The merged profile's samples: (stack_id, src, sample_idx, v, d, base)."""
    return "(" + " UNION ALL ".join(
        f"""SELECT ({i}::BIGINT << 32) | stack_id AS stack_id, {i} AS src, sample_idx,
                   {value_sql(idx, part)} AS v, {value_sql(0, part)} AS d, {part.base} AS base
            FROM pprof_samples WHERE source_id = {int(part.sid)}"""
        for i, part in enumerate(parts)) + ")"


def pprof_top(store: Store, parts: list[Part], idx: int, q: TopQuery) -> dict[str, Any]:
    """The rows of `go tool pprof -top` for sample type ``idx`` of the merge of ``parts``.

    Returns {"total", "rows": [{"name", "flat", "cum", "inline"}], "dropped_nodes",
    "node_cutoff", "nodes_before_nodecount"}; "inline" is "", "inline" or "partial-inline".
    """
    sids = [p.sid for p in parts]
    frames = build(store, sids, q.filters, q.granularity)
    try:
        tables = {"sample_rows": sample_rows(parts, idx)}
        if frames is None:
            tables.update(stacks=_STORED_STACKS, nodes=_STORED_NODES)
        else:
            st, nodes = frames.finish_tables()
            tables.update(stacks=st, nodes=nodes)
        return _top(store, parts, q, tables)
    finally:
        if frames is not None:
            frames.drop()


def profile_total(store: Store, parts: list[Part], rows: str, mean: bool) -> int:
    """The total pprof's report takes: the whole merged profile's (``rows``, its
    :func:`sample_rows`), before any filter; with ``mean`` divided as -mean divides."""
    if len(parts) == 1:
        sql = _TOTAL_SQL.format(sample_rows=rows)
        raw_total, total_div = store.con.execute(sql, {"mean": mean}).fetchall()[0]
    else:
        raw_total, total_div = merged_total(store, parts, rows, mean)
    return mean_value(int(raw_total), int(total_div), mean)


def source_total(store: Store, sid: int, idx: int) -> int:
    """pprof's total of sample type ``idx`` (0-based) of one stored profile: Σ |value|."""
    parts = [Part(sid)]
    return profile_total(store, parts, sample_rows(parts, idx), False)


def _top(store: Store, parts: list[Part], q: TopQuery, tables: dict[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = {"sid": parts[0].sid, "mean": q.mean}
    tagged = kept_samples_sql(store, [p.sid for p in parts], q.tags)
    if tagged is not None:
        tables = dict(tables, samples=tagged[0])
        params.update(tagged[1])
    total = profile_total(store, parts, tables["sample_rows"], q.mean)
    nodes = node_totals(store, tables, params)
    # The cut is a share of the sum of the raw flats, as pprof's graph computes it.
    flat_sum = float(sum(n[2] for n in nodes))
    cutoff = abs(int(flat_sum * q.nodefraction))
    edge_cutoff = abs(int(flat_sum * q.edgefraction))
    kept = [n for n in nodes if abs(n[3]) >= cutoff] if cutoff > 0 else nodes
    dropped = len(nodes) - len(kept)
    # Names can repeat (files, [binary]). pprof's comparator finds two such nodes with
    # the same |flat| equivalent and its unstable sort leaves them in Go's map order, so
    # pprof itself orders them differently from run to run; perflab takes |cum|, then
    # the node's %v text (pprof's own last tie-breaker), one of pprof's orders.
    if q.cum:
        kept.sort(key=lambda n: (-abs(n[3]), n[1], -abs(n[2]), n[6]))
    else:
        kept.sort(key=lambda n: (-abs(n[2]), n[1], -abs(n[3]), n[6]))
    shown = kept[: q.nodecount] if q.nodecount > 0 else kept
    inline = {}
    if shown and any(_has_inlined_frames(store, p.sid) for p in parts):
        inline = _inline_labels(store, tables, params, [n[0] for n in shown], edge_cutoff)
    rows = [
        {"name": name, "flat": mean_value(flat, fdiv, q.mean), "cum": mean_value(cum, cdiv, q.mean),
         "inline": inline.get(nid, "")}
        for nid, name, flat, cum, fdiv, cdiv, _ in shown
    ]
    return {
        "total": total,
        "rows": rows,
        "dropped_nodes": dropped,
        "node_cutoff": abs(int(float(total) * q.nodefraction)),
        "nodes_before_nodecount": len(kept),
    }


def node_totals(store: Store, tables: dict[str, str], params: dict[str, Any]
                ) -> list[tuple[int, str, int, int, int, int, str]]:
    """(node id, name, flat, cum, flat's and cum's -mean divisors, %v text) of every node
    whose raw flat or cum is not 0, as pprof's graph has them; ``tables``: "stacks",
    "nodes", "sample_rows" and optionally "samples" (a condition on them); ``params``
    holds "mean" and the condition's parameters."""
    sql = _NODE_TOTALS_SQL.format(stacks=tables["stacks"], nodes=tables["nodes"],
                                  samples=tables.get("samples", "TRUE"), sample_rows=tables["sample_rows"])
    return [
        (int(nid), str(name), int(flat), int(cum), int(fdiv), int(cdiv), str(info))
        for nid, name, info, flat, cum, fdiv, cdiv in store.con.execute(sql, _used(sql, params)).fetchall()
    ]


def _has_inlined_frames(store: Store, sid: int) -> bool:
    """Whether some location has more than one Line (else no frame is an inlined call)."""
    row = store.con.execute(
        "SELECT coalesce(max(line_idx), 0) FROM pprof_lines WHERE source_id = ?", [sid]
    ).fetchall()
    return bool(row[0][0])


def _used(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters ``sql`` names (DuckDB refuses the others)."""
    return {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}


def _inline_labels(store: Store, tables: dict[str, str], params: dict[str, Any], kept: list[int],
                   edge_cutoff: int) -> dict[int, str]:
    """{node id: "inline" | "partial-inline"} for the kept nodes, from their in-edges.

    Over the frames of kept nodes only (leaf first), a frame's caller is the next kept
    frame of its stack; an edge (caller, callee) counts once per stack with the flag of
    its rootmost occurrence, is inline when every stack reaches it inlined, and is
    dropped when its |weight| is under the edgefraction cut, as pprof trims edges.

    DuckDB hands the frames over flat (fetchnumpy) and numpy groups them: no Arrow or
    polars, whose imports were most of `perflab top`'s time on a small Go profile.
    """
    stored = tables["stacks"] == _STORED_STACKS
    sql = _LIVE_STACKS_SQL.format(stacks=tables["stacks"], extra="s.location_ids" if stored else "s.inl",
                                  samples=tables.get("samples", "TRUE"), sample_rows=tables["sample_rows"])
    live = f"_perflab_live_{next(_live_counter)}"
    con = store.con
    # Stored in k order: DuckDB keeps insertion order (preserve_insertion_order), so the flat
    # reads below need no sort of their tens of millions of frames.
    con.execute(f"CREATE TEMP TABLE {live} AS SELECT row_number() OVER (ORDER BY stack_id) - 1 AS k, * "
                f"FROM ({sql}) ORDER BY k", _used(sql, params))
    try:
        weights = con.execute(f"SELECT v FROM {live}").fetchnumpy()["v"]
        if weights.size == 0:
            return {}
        nodes, stack = _flat(con, live, "node_ids")
        inl = (_stored_inline_flags(store, params["sid"], _flat(con, live, "location_ids")[0]) if stored
               else _flat(con, live, "inl")[0].astype(bool))
    finally:
        con.execute(f"DROP TABLE IF EXISTS {live}")
    if inl.size != nodes.size:
        raise AssertionError("inline flags and frames disagree")
    mine = np.isin(nodes, np.asarray(kept, dtype=nodes.dtype))
    nodes, stack, inl = nodes[mine], stack[mine], inl[mine]
    has_caller = np.zeros(nodes.size, dtype=bool)
    has_caller[:-1] = stack[:-1] == stack[1:]
    caller = np.roll(nodes, -1)
    ok = has_caller & (caller != nodes)
    stack, nodes, caller, inl = stack[ok], nodes[ok], caller[ok], inl[ok]
    if stack.size == 0:
        return {}
    # Per (stack, node, caller): the rootmost occurrence's flag (frames are leaf first, and
    # lexsort is stable, so a group's last row is its rootmost), the stack's weight once.
    order = _stable_order(stack, nodes, caller)
    s_stack, s_node, s_caller, s_inl = stack[order], nodes[order], caller[order], inl[order]
    ends = _group_ends(s_stack, s_node, s_caller)
    g_node, g_caller, g_inl, g_v = s_node[ends], s_caller[ends], s_inl[ends], np.asarray(weights)[s_stack[ends]]
    # Per edge (node, caller): inline when every stack reaches it inlined; weights summed.
    order = _stable_order(g_node, g_caller)
    e_node, e_caller, e_inl, e_v = g_node[order], g_caller[order], g_inl[order], g_v[order]
    starts = _group_starts(e_node, e_caller)
    edge_node = e_node[starts]
    edge_inl = np.logical_and.reduceat(e_inl, starts)
    edge_v = np.add.reduceat(e_v.astype(np.int64), starts)
    keep = np.abs(edge_v) >= edge_cutoff
    edge_node, edge_inl = edge_node[keep], edge_inl[keep]
    if edge_node.size == 0:
        return {}
    # Per node: some inlined in-edge, and some real one.
    order = np.argsort(edge_node, kind="stable")
    edge_node, edge_inl = edge_node[order], edge_inl[order]
    starts = _group_starts(edge_node)
    inline = np.logical_or.reduceat(edge_inl, starts)
    real = np.logical_or.reduceat(~edge_inl, starts)
    return {int(n): "partial-inline" if r else "inline"
            for n, i, r in zip(edge_node[starts].tolist(), inline.tolist(), real.tolist(), strict=True) if i}


_live_counter = itertools.count()


def _flat(con: Any, table: str, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Every element of list ``column``, stack after stack in list order: (values, stack k)."""
    got = con.execute(f"SELECT k, unnest({column}) AS x FROM {table}").fetchnumpy()
    k = np.asarray(got["k"], dtype=np.int64)
    if k.size > 1 and bool(np.any(k[1:] < k[:-1])):  # insertion order not kept after all: sort
        got = con.execute(f"SELECT k, unnest({column}) AS x, generate_subscripts({column}, 1) AS pos "
                          f"FROM {table} ORDER BY k, pos").fetchnumpy()
        k = np.asarray(got["k"], dtype=np.int64)
    return np.asarray(got["x"]), k


def _stable_order(*keys: np.ndarray) -> np.ndarray:
    """np.lexsort's order of non-negative integer ``keys`` (the first the most significant):
    packed into one int64 when their bits fit, whose stable argsort is several times faster
    than lexsort's passes over ten million frames."""
    widths = [max(int(k.max()).bit_length(), 1) if k.size else 1 for k in keys]
    if sum(widths) > 62 or any(k.size and int(k.min()) < 0 for k in keys):
        return np.lexsort(keys[::-1])
    packed = np.zeros(keys[0].size, dtype=np.int64)
    for key, width in zip(keys, widths, strict=True):
        packed = (packed << width) | key.astype(np.int64)
    return np.argsort(packed, kind="stable")


def _group_starts(*keys: np.ndarray) -> np.ndarray:
    """Where each run of equal keys begins, in arrays sorted by those keys."""
    change = np.zeros(keys[0].size, dtype=bool)
    change[0] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(change)


def _group_ends(*keys: np.ndarray) -> np.ndarray:
    """Where each run of equal keys ends (its last row), in arrays sorted by those keys."""
    return np.append(_group_starts(*keys)[1:] - 1, keys[0].size - 1)


def _stored_inline_flags(store: Store, sid: int, location_ids: np.ndarray) -> np.ndarray:
    """Each stored frame's inline flag: a frame is an inlined call when it is not the
    last Line of its location (stored node_ids hold one frame per Line, leaf first)."""
    counts = store.con.execute(
        """SELECT lo.location_id, greatest(count(li.line_idx), 1)
           FROM pprof_locations lo
           LEFT JOIN pprof_lines li ON li.source_id = lo.source_id AND li.location_id = lo.location_id
           WHERE lo.source_id = ? GROUP BY lo.location_id""", [sid]
    ).fetchnumpy()
    ids = np.asarray(counts["location_id"], dtype=np.uint64)
    n_lines = np.asarray(counts[list(counts)[1]], dtype=np.int64)
    per_frame = n_lines[lookup(ids, location_ids.astype(np.uint64))]
    starts = np.cumsum(per_frame) - per_frame
    within = np.arange(int(per_frame.sum())) - np.repeat(starts, per_frame)
    flags: np.ndarray = within < np.repeat(per_frame, per_frame) - 1
    return flags
