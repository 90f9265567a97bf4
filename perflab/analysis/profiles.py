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
  keyed by function name, and a node whose flat and cum are both 0 is not listed;
* which rows :func:`top` keeps and their order are pprof's too (perflab.analysis.pprof_view).

Collapsed stacks and speedscope files are stored in the same tables
(perflab.ingest._stacks) and read by the same code: every kind of
:data:`~perflab.vocab.PPROF_SHAPED_KINDS` answers as ``format`` "pprof" (its values are
pprof's, exact ints in the sample type's unit); the source's own kind is in ``sources``.
cProfile sources are answered by perflab.analysis.pstats (flat = tottime, cum = cumtime).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from perflab.analysis.pprof_frames import GRANULARITY_ALIASES, FrameFilters
from perflab.analysis.pprof_merge import merged_types
from perflab.analysis.pprof_tags import TagFilters
from perflab.analysis.pprof_view import DEFAULT_EDGEFRACTION, DEFAULT_NODEFRACTION, Part, TopQuery, pprof_top
from perflab.errors import PerflabError
from perflab.lazy import LazyModule
from perflab.pprof_rules import default_sample_index
from perflab.store import Store
from perflab.vocab import CPROFILE, PPROF, PPROF_SHAPED_KINDS, PROFILE_KINDS

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa
else:  # loaded on first use (perflab.lazy)
    pl, pa = LazyModule("polars"), LazyModule("pyarrow")


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
    # The file's first mapping (the main binary for Go), which pprof's header names.
    first = store.con.execute(
        "SELECT filename, build_id FROM pprof_mappings WHERE source_id = ? LIMIT 1", [sid]
    ).fetchall()
    info["main_mapping"] = {"filename": first[0][0], "build_id": first[0][1]} if first else None
    return info


def resolve_sample_type(store: Store, source_id: int, sample_type: str | int | None) -> tuple[int, str, str]:
    """(index, type, unit) chosen the way ``go tool pprof -sample_index`` chooses.

    None is the profile's default; an int or a string of digits is an index; a name
    matches the first type of that name, also without an ``inuse_`` prefix (pprof
    accepts ``inuse_space`` for a legacy ``space``).
    """
    sid = _pprof_source(store, source_id)
    types = sample_types(store, sid)
    row = store.con.execute(
        "SELECT default_sample_index FROM pprof_profiles WHERE source_id = ?", [sid]
    ).fetchall()
    return _resolve(types, row[0][0], sample_type, f"source {sid}")


def _resolve(types: list[dict[str, str]], default: int | None, sample_type: str | int | None,
             what: str) -> tuple[int, str, str]:
    if not types:
        raise PerflabError(f"{what} has no sample types")
    names = ", ".join(t["type"] or "''" for t in types)
    if sample_type is None:
        idx = int(default if default is not None else len(types) - 1)
    elif isinstance(sample_type, int) or (isinstance(sample_type, str) and sample_type.isdigit()):
        idx = int(sample_type)
        if not 0 <= idx < len(types):
            raise PerflabError(
                f"sample type index {idx} is outside 0..{len(types) - 1} for {what} ({names})"
            )
    else:
        wanted = str(sample_type)
        bare = wanted.removeprefix("inuse_")
        matches = [i for i, t in enumerate(types) if t["type"] in (wanted, bare)]
        if not matches:
            raise PerflabError(f"{what} has no sample type {wanted!r}; it has: {names}")
        idx = matches[0]
    return idx, types[idx]["type"], types[idx]["unit"]


def _pct(value: float, total: float) -> float:
    return 100.0 * value / total if total else 0.0


Ref = str | int | os.PathLike[str]


def top(
    store: Store,
    ref: Ref | Sequence[Ref],
    sample_type: str | int | None = None,
    limit: int | None = None,
    *,
    nodecount: int | None = None,
    nodefraction: float | None = None,
    edgefraction: float | None = None,
    cum: bool = False,
    mean: bool = False,
    filters: FrameFilters | None = None,
    granularity: str = "functions",
    tags: TagFilters | None = None,
    base: Sequence[Ref] = (),
    diff_base: Sequence[Ref] = (),
) -> dict[str, Any]:
    """Flat and cum per function, as ``go tool pprof -top`` shows them (or pstats for cProfile).

    Returns {"source_id", "format", "sample_type", "unit", "mean", "total", "rows":
    [{"name", "flat", "cum", "flat_pct", "cum_pct", "inline"}], "dropped_nodes",
    "node_cutoff", "nodes_before_nodecount"}. Rows are pprof's: nodes whose |cum| is
    under ``nodefraction`` (pprof's default 0.005) of the total are dropped, the rest
    sorted by |flat| descending then name (``cum``: by |cum| then name), and the first
    ``nodecount`` kept (``limit`` is its older name; None or 0 keeps every row).
    ``edgefraction`` (pprof's 0.001) only decides the rows' "inline" labels.
    ``filters`` are pprof's focus, ignore, hide, show, show_from and prune_from
    (perflab.analysis.pprof_frames); the total stays the whole profile's, as pprof's.
    ``tags`` are pprof's tagfocus, tagignore, tagshow and taghide (perflab.analysis.pprof_tags).
    Several profiles (``ref`` a list) are merged, ``base`` profiles subtracted and
    ``diff_base`` ones too with their total as the total, as pprof does
    (perflab.analysis.pprof_merge); "source_id" is then the first profile's.
    ``granularity`` is pprof's: functions, filefunctions, files (or filenames), lines
    or addresses; rows are then named as pprof names them ("function file:line"...).
    pprof values are exact ints in the sample type's unit (``mean``: divided by the
    first sample type, as pprof's -mean); cProfile's are seconds and its rows also carry
    calls and primitive_calls (no nodefraction, no mean: pstats has no samples).
    """
    count = nodecount if nodecount is not None else (limit or 0)
    if count < 0:
        raise PerflabError("nodecount must be 0 (all) or more")
    refs: list[Ref] = list(ref) if isinstance(ref, list | tuple) else [cast(Ref, ref)]
    if not refs:
        raise PerflabError("top needs a profile")
    found = [_source_format(store, r) for r in [*refs, *base, *diff_base]]
    sid, kind = found[0]
    if kind == CPROFILE and len(found) > 1:
        raise PerflabError(f"source {sid} is a cProfile dump: several profiles and bases apply to pprof only")
    if len(found) > 1 and any(k == CPROFILE for _, k in found):
        raise PerflabError("a cProfile dump cannot be merged with pprof profiles")
    if kind == CPROFILE:
        if mean or nodefraction or edgefraction or (filters is not None and filters.active()) \
                or granularity != "functions" or (tags is not None and tags.active()):
            raise PerflabError(
                f"source {sid} is a cProfile dump: --mean, --nodefraction, --edgefraction, --granularity and "
                "the frame and tag filters apply to pprof samples only"
            )
        total, rows, stype, unit = _cprofile_rows(store, sid, sample_type)
        if cum:
            rows.sort(key=lambda r: (-abs(r["cum"]), r["name"], -abs(r["flat"])))
        extra: dict[str, Any] = {"dropped_nodes": 0, "node_cutoff": 0, "nodes_before_nodecount": len(rows),
                                 "filters": [], "granularity": "functions"}
        if count:
            rows = rows[:count]
    else:
        parts, idx, stype, unit = pprof_parts(store, [f[0] for f in found], len(refs), len(base), sample_type)
        query = TopQuery(nodecount=count, cum=cum, mean=mean, filters=filters or FrameFilters(),
                         granularity=GRANULARITY_ALIASES.get(granularity, granularity), tags=tags or TagFilters(),
                         nodefraction=DEFAULT_NODEFRACTION if nodefraction is None else nodefraction,
                         edgefraction=DEFAULT_EDGEFRACTION if edgefraction is None else edgefraction)
        if not (0 <= query.nodefraction <= 1 and 0 <= query.edgefraction <= 1):
            raise PerflabError("nodefraction and edgefraction must be between 0 and 1")
        result = pprof_top(store, parts, idx, query)
        total = result.pop("total")
        rows = [dict(r, flat_pct=_pct(r["flat"], total), cum_pct=_pct(r["cum"], total)) for r in result.pop("rows")]
        extra = dict(result, filters=query.filters.legend() + query.tags.legend(), granularity=query.granularity)
    return {
        "source_id": sid,
        "source_ids": [f[0] for f in found],
        "format": kind,
        "sample_type": stype,
        "unit": unit,
        "mean": mean,
        "total": total,
        "rows": rows,
        **extra,
    }


def pprof_parts(store: Store, sids: list[int], n_sources: int, n_bases: int, sample_type: str | int | None
                ) -> tuple[list[Part], int, str, str]:
    """The profile pprof reads from ``sids`` (the sources, then ``n_bases`` -base profiles,
    then -diff_base ones): its parts, and the index, name and unit of ``sample_type`` (the
    merged profile's default when None) among the merged sample types."""
    infos = [profile_info(store, x) for x in sids]
    types, columns, stages, default_name = merged_types(
        [i["sample_types"] for i in infos], n_sources, [i["default_sample_type"] for i in infos])
    default = default_sample_index([t["type"] for t in types], default_name or "")
    idx, stype, unit = _resolve(types, default, sample_type, f"source {sids[0]}")
    parts = [Part(x, sign=1 if i < n_sources else -1, columns=tuple(columns[i]), stages=tuple(stages[i]),
                  base=i >= n_sources + n_bases)
             for i, x in enumerate(sids)]
    return parts, idx, stype, unit


def _cprofile_rows(
    store: Store, sid: int, sample_type: str | int | None
) -> tuple[float, list[dict[str, Any]], str, str]:
    if sample_type not in (None, "cpu", 0, "0"):
        raise PerflabError(f"source {sid} is a cProfile dump; its only sample type is cpu (seconds)")
    from perflab.analysis.pstats import cprofile_top  # polars: only for cProfile dumps


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
    result = top(store, ref, sample_type=sample_type, nodefraction=0)
    rows = [{k: v for k, v in r.items() if k != "inline"} for r in result["rows"]]
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
