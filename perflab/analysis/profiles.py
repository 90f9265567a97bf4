"""Profiles as pprof reads them: flat and cum per function, and the stacks behind them.

Contract: every function takes the store and a source (id, or a file path that is
ingested first), and returns plain data (dict or polars DataFrame). For pprof
sources the numbers equal ``go tool pprof -top``'s exactly (fixtures/pprof/README.md):

    sample  (leaf first)          flat                cum (once per sample)
    a <- b <- a <- main   v       a += v              a += v, b += v, main += v

* total = the sum of |value| over all samples (frameless samples count here only);
* flat  = the signed sum of the values of the samples whose leaf frame is the function;
* cum   = the signed sum of the values of the samples whose stack holds the function;
* frames are the Line entries of each location (inlined calls expanded), nodes are
  keyed by function name, and a node whose flat and cum are both 0 is not listed.

Collapsed stacks and speedscope files are stored in the same tables
(perflab.ingest._stacks) and read by the same code: every kind of
:data:`~perflab.vocab.PPROF_SHAPED_KINDS` answers as ``format`` "pprof" (its values are
pprof's, exact ints in the sample type's unit); the source's own kind is in ``sources``.
cProfile sources are answered by perflab.analysis.pstats (flat = tottime, cum = cumtime).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from perflab.errors import PerflabError
from perflab.store import Store
from perflab.vocab import CPROFILE, PPROF, PPROF_SHAPED_KINDS, PROFILE_KINDS

if TYPE_CHECKING:
    # polars and pyarrow are imported by the functions that make frames: `perflab top` of a
    # stored profile makes none, and they would be most of its time (perflab.commands).
    import polars as pl

# One aggregation for flat and cum: per stack first (stacks are shared by many samples),
# then per node. list_distinct makes a recursive function count once per sample in cum;
# it is slow, so only the stacks flagged recursive at ingest go through it.
_NODE_TOTALS_SQL = """
WITH per_stack AS (
    SELECT stack_id, sum(value[$idx]) AS v
    FROM pprof_samples WHERE source_id = $sid
    GROUP BY stack_id
),
st AS (
    SELECT s.node_ids, s.recursive, p.v
    FROM pprof_stacks s JOIN per_stack p USING (stack_id)
    WHERE s.source_id = $sid AND p.v <> 0
),
flat AS (
    SELECT node_ids[1] AS node_id, sum(v) AS flat FROM st WHERE len(node_ids) > 0 GROUP BY 1
),
cum AS (
    SELECT node_id, sum(v) AS cum
    FROM (
        SELECT unnest(CASE WHEN recursive THEN list_distinct(node_ids) ELSE node_ids END) AS node_id, v
        FROM st
    )
    GROUP BY 1
)
SELECT n.name, coalesce(f.flat, 0) AS flat, c.cum
FROM cum c
LEFT JOIN flat f USING (node_id)
JOIN pprof_nodes n ON n.source_id = $sid AND n.node_id = c.node_id
WHERE coalesce(f.flat, 0) <> 0 OR c.cum <> 0
"""


def _source_format(store: Store, ref: str | int | os.PathLike[str]) -> tuple[int, str]:
    """(source id, how it reads: "pprof" for every kind held in the pprof tables, or "cprofile")."""
    sid = store.find_source(ref, kinds=PROFILE_KINDS)
    kind = str(store.source(sid)["kind"])
    return sid, PPROF if kind in PPROF_SHAPED_KINDS else kind


def _pprof_source(store: Store, source_id: int) -> int:
    src = store.source(int(source_id))
    if src["kind"] not in PPROF_SHAPED_KINDS:
        raise PerflabError(f"source {source_id} is {src['kind']}, expected {' or '.join(PPROF_SHAPED_KINDS)}")
    return int(src["source_id"])


def sample_types(store: Store, source_id: int) -> list[dict[str, str]]:
    """The sample types of a pprof source in file order: [{"type", "unit"}, ...]."""
    sid = _pprof_source(store, source_id)
    rows = store.con.execute(
        "SELECT type, unit FROM pprof_sample_types WHERE source_id = ? ORDER BY idx", [sid]
    ).fetchall()
    return [{"type": t, "unit": u} for t, u in rows]


def profile_info(store: Store, source_id: int) -> dict[str, Any]:
    """The header facts of a pprof source (period, time, duration, comments, default type...)."""
    sid = _pprof_source(store, source_id)
    cur = store.con.execute("SELECT * FROM pprof_profiles WHERE source_id = ?", [sid])
    info = dict(zip([d[0] for d in cur.description], cur.fetchall()[0], strict=True))
    del info["source_id"]
    info["sample_types"] = sample_types(store, sid)
    return info


def resolve_sample_type(store: Store, source_id: int, sample_type: str | int | None) -> tuple[int, str, str]:
    """(index, type, unit) chosen the way ``go tool pprof -sample_index`` chooses.

    None is the profile's default; an int or a string of digits is an index; a name
    matches the first type of that name, also without an ``inuse_`` prefix (pprof
    accepts ``inuse_space`` for a legacy ``space``).
    """
    sid = _pprof_source(store, source_id)
    types = sample_types(store, sid)
    if not types:
        raise PerflabError(f"source {sid} has no sample types")
    names = ", ".join(t["type"] or "''" for t in types)
    if sample_type is None:
        row = store.con.execute(
            "SELECT default_sample_index FROM pprof_profiles WHERE source_id = ?", [sid]
        ).fetchall()
        idx = int(row[0][0])
    elif isinstance(sample_type, int) or (isinstance(sample_type, str) and sample_type.isdigit()):
        idx = int(sample_type)
        if not 0 <= idx < len(types):
            raise PerflabError(
                f"sample type index {idx} is outside 0..{len(types) - 1} for source {sid} ({names})"
            )
    else:
        wanted = str(sample_type)
        bare = wanted.removeprefix("inuse_")
        matches = [i for i, t in enumerate(types) if t["type"] in (wanted, bare)]
        if not matches:
            raise PerflabError(f"source {sid} has no sample type {wanted!r}; it has: {names}")
        idx = matches[0]
    return idx, types[idx]["type"], types[idx]["unit"]


def _pprof_nodes(store: Store, sid: int, idx: int) -> tuple[int, list[tuple[str, int, int]]]:
    total_row = store.con.execute(
        "SELECT coalesce(sum(abs(value[$idx])), 0) FROM pprof_samples WHERE source_id = $sid",
        {"idx": idx + 1, "sid": sid},
    ).fetchall()
    rows = store.con.execute(_NODE_TOTALS_SQL, {"idx": idx + 1, "sid": sid}).fetchall()
    out = [(name, int(flat), int(cum)) for name, flat, cum in rows]
    out.sort(key=lambda r: (-r[1], -r[2], r[0]))
    return int(total_row[0][0]), out


def _pct(value: float, total: float) -> float:
    return 100.0 * value / total if total else 0.0


def top(
    store: Store,
    ref: str | int | os.PathLike[str],
    sample_type: str | int | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Flat and cum per function, like ``go tool pprof -top`` (or pstats for cProfile).

    Returns {"source_id", "format", "sample_type", "unit", "total", "rows": [{"name",
    "flat", "cum", "flat_pct", "cum_pct"}]} with rows sorted by flat, then cum
    (both descending), then name; ``limit`` None or 0 keeps every row. pprof values
    are exact ints in the sample type's own unit; cProfile's are seconds and its rows
    also carry calls and primitive_calls.
    """
    sid, kind = _source_format(store, ref)
    if kind == CPROFILE:
        total, rows, stype, unit = _cprofile_rows(store, sid, sample_type)
    else:
        idx, stype, unit = resolve_sample_type(store, sid, sample_type)
        total, nodes = _pprof_nodes(store, sid, idx)
        rows = [
            {"name": n, "flat": f, "cum": c, "flat_pct": _pct(f, total), "cum_pct": _pct(c, total)}
            for n, f, c in nodes
        ]
    if limit:
        rows = rows[:limit]
    return {
        "source_id": sid,
        "format": kind,
        "sample_type": stype,
        "unit": unit,
        "total": total,
        "rows": rows,
    }


def _cprofile_rows(
    store: Store, sid: int, sample_type: str | int | None
) -> tuple[float, list[dict[str, Any]], str, str]:
    if sample_type not in (None, "cpu", 0, "0"):
        raise PerflabError(f"source {sid} is a cProfile dump; its only sample type is cpu (seconds)")
    from perflab.analysis.pstats import cprofile_top

    total, df = cprofile_top(store, sid)
    total = float(total)
    rows = [
        {
            "name": r["name"],
            "flat": r["flat"],
            "cum": r["cum"],
            "flat_pct": _pct(r["flat"], total),
            "cum_pct": _pct(r["cum"], total),
            "calls": r["calls"],
            "primitive_calls": r["primitive_calls"],
        }
        for r in df.to_dicts()
    ]
    return total, rows, "cpu", "seconds"


def top_frame(
    store: Store, ref: str | int | os.PathLike[str], sample_type: str | int | None = None
) -> pl.DataFrame:
    """The rows of :func:`top` (all of them) as a DataFrame, for notebooks."""
    import polars as pl

    result = top(store, ref, sample_type=sample_type)
    rows = result["rows"]
    if result["format"] == PPROF:
        schema: dict[str, Any] = {"name": pl.String, "flat": pl.Int64, "cum": pl.Int64,
                                  "flat_pct": pl.Float64, "cum_pct": pl.Float64}
        if any(abs(r["cum"]) >= 1 << 63 or abs(r["flat"]) >= 1 << 63 for r in rows):
            schema.update(flat=pl.Int128, cum=pl.Int128)
    else:
        schema = {"name": pl.String, "flat": pl.Float64, "cum": pl.Float64, "flat_pct": pl.Float64,
                  "cum_pct": pl.Float64, "calls": pl.Int64, "primitive_calls": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def stacks(store: Store, source_id: int, sample_type: str | int | None = None) -> pl.DataFrame:
    """Every distinct stack of function names with its summed value (for flame graphs, diffs).

    Columns: ``frames`` (list of node names, leaf first, inlined calls expanded) and
    ``value`` (the signed sum over the samples of that stack, in the type's unit).
    Stacks that sum to 0 are left out; samples without frames appear as ``[]``.
    Sorted by value descending, then by first appearance in the file.
    """
    import polars as pl
    import pyarrow as pa

    sid = _pprof_source(store, source_id)
    idx, _, _ = resolve_sample_type(store, sid, sample_type)
    tbl = store.con.sql(
        """
        WITH per_stack AS (
            SELECT stack_id, sum(value[$idx])::BIGINT AS v
            FROM pprof_samples WHERE source_id = $sid GROUP BY stack_id
        )
        SELECT s.stack_id, s.node_ids, p.v AS value
        FROM pprof_stacks s JOIN per_stack p USING (stack_id)
        WHERE s.source_id = $sid AND p.v <> 0
        ORDER BY s.stack_id
        """,
        params={"idx": idx + 1, "sid": sid},
    ).to_arrow_table()
    names = store.con.sql(
        "SELECT name FROM pprof_nodes WHERE source_id = ? ORDER BY node_id", params=[sid]
    ).to_arrow_table().column("name").combine_chunks()
    if tbl.num_rows == 0:
        return pl.DataFrame(schema={"frames": pl.List(pl.String), "value": pl.Int64})
    node_ids = tbl.column("node_ids").combine_chunks()
    # Arrow <-> numpy through polars: pyarrow's own conversions import pandas (0.3 s).
    offsets = pl.Series(node_ids.offsets).cast(pl.Int64)
    # Node ids are dense 0..n-1 per source, so the names are a plain gather.
    frames = pa.LargeListArray.from_arrays(
        (offsets - offsets[0]).to_arrow(), names.take(node_ids.flatten())
    )
    df = pl.from_arrow(pa.Table.from_arrays([frames, tbl.column("value")], names=["frames", "value"]))
    assert isinstance(df, pl.DataFrame)
    return (
        df.with_row_index("first")
        .group_by("frames", maintain_order=True)
        .agg(pl.col("value").sum(), pl.col("first").first())
        .sort(["value", "first"], descending=[True, False])
        .select(pl.col("frames").cast(pl.List(pl.String)), "value")
    )
