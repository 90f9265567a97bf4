"""pprof's array work: numpy and Arrow conversions, id lookups, distinct stacks.

Pure functions over numpy/Arrow arrays, used by perflab.ingest.pprof to move a decoded
profile into the store without a Python object per sample, and by the analysis of the
stacks it stored (perflab.analysis.pprof_frames, pprof_view). Conversions go through polars,
never ``pa.array``/``pa.table``/``to_numpy``, which import pandas (a third of a second added
to every ``perflab top``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from perflab.lazy import LazyModule

if TYPE_CHECKING:
    import numpy as np
    import polars as pl
    import pyarrow as pa
else:  # loaded on first use (perflab.lazy)
    np, pl, pa = LazyModule("numpy"), LazyModule("polars"), LazyModule("pyarrow")



def arrow_table(columns: dict[str, Any]) -> pa.Table:
    # Not pa.table(dict): that imports pandas, see to_arrow.
    return pa.Table.from_arrays(list(columns.values()), names=list(columns))


def to_arrow(values: Any, dtype: Any = None) -> pa.Array:
    """A numpy array or list as Arrow, through polars (no copy for numpy numbers).

    Not pa.array(): it imports pandas, only to ask whether its input is a pandas
    object, which adds a third of a second to every `perflab top`.
    """
    return pl.Series(values=values, dtype=dtype).to_arrow()


def to_numpy(array: pa.Array) -> np.ndarray:
    # Not array.to_numpy(): it imports pandas too (see to_arrow).
    series = pl.from_arrow(array)
    assert isinstance(series, pl.Series)
    return series.to_numpy()


# Dense lookup tables are used while they stay this small relative to the ids they
# index (Go numbers ids 1..n); sparse ids fall back to a binary search.
_DENSE_LOOKUP_MAX = 1 << 24


def lookup(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions of ``wanted`` in ``ids`` (which holds unique values), -1 where absent."""
    if ids.size == 0:
        return np.full(wanted.shape, -1, dtype=np.int32)
    top = int(ids.max())
    if top < max(_DENSE_LOOKUP_MAX, 4 * ids.size):
        table = np.full(top + 2, -1, dtype=np.int32)
        table[ids.astype(np.int64)] = np.arange(ids.size, dtype=np.int32)
        if wanted.size and int(wanted.max()) > top:
            # Anything beyond the largest id lands on the slot top + 1, which holds -1.
            wanted = np.minimum(wanted, np.asarray(top + 1, dtype=wanted.dtype))
        # ids are < 2**63 here, so the uint64 → int64 view (no copy) keeps every value.
        return np.take(table, wanted.view(np.int64) if wanted.dtype == np.uint64 else wanted)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    pos = np.minimum(np.searchsorted(sorted_ids, wanted), sorted_ids.size - 1)
    return np.where(sorted_ids[pos] == wanted, order[pos], -1).astype(np.int32)


def recursive_stacks(node_ids: pa.LargeListArray) -> pa.Array:
    """Whether a stack holds some node more than once: only those need de-duplicating
    for cum, which makes the cum query several times faster on deep profiles."""
    series = pl.from_arrow(node_ids)
    assert isinstance(series, pl.Series)
    return (series.list.n_unique() < series.list.len()).fill_null(False).to_arrow()


def distinct_stacks(loc_pos: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Number the distinct location sequences by first appearance, comparing them exactly.

    ``loc_pos`` holds every sample's location positions, each sample closed by a -1
    at ``ends``. Returns (stack id of each sample, whether a sample is its stack's first).
    """
    n = ends.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    # Each list keeps its closing -1: the same suffix on every list changes no comparison,
    # and the offsets stay contiguous, so Arrow and polars read the array without a copy.
    offsets = np.concatenate(([0], ends + 1)).astype(np.int64)
    lists = pa.LargeListArray.from_arrays(to_arrow(offsets), to_arrow(loc_pos))
    frame = pl.from_arrow(arrow_table({"locs": lists}))
    assert isinstance(frame, pl.DataFrame)
    first = (
        frame.with_row_index("i")
        .select(pl.col("i").first().over("locs"))
        .to_series()
        .to_numpy()
    )
    is_first = first == np.arange(n)
    stack_of = (np.cumsum(is_first) - 1)[first]
    return stack_of, is_first
