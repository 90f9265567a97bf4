"""A k6 source's points, one metric at a time in arrival order: what k6's summary is computed from.

DuckDB keeps insertion order and ingest inserts in file order (``seq`` is checked, and sorted
by only when it is not increasing), and tags are read only for the metrics that need them
(JSON extraction was most of the query's cost). A query per metric bounds memory by the
largest metric: one query for every point held 0.77 GB for a 2.1 GB NDJSON, growing with it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from perflab.store import Store


def json_path(key: str) -> str:
    """A tag name as a JSON path for json_extract_string (quoted: tag names may hold dots)."""
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def metric_points(store: Store, sid: int, name: str, keys: list[str]) -> pl.DataFrame:
    """One metric's points in arrival order: a ``value`` column, plus ``t0``, ``t1``, ... (the
    tags ``keys``, in order).

    One metric at a time, so that what Python holds is the largest metric's points, not the
    run's: reading every point at once took 0.77 GB for a 2.1 GB NDJSON, and grew with it.
    """
    tag_cols = "".join(f", json_extract_string(tags, ?) AS t{i}" for i in range(len(keys)))
    df = store.sql(
        f"SELECT seq{tag_cols}, value FROM k6_points WHERE source_id = ? AND metric = ?",
        [*(json_path(k) for k in keys), sid, name],
    )
    seq = df["seq"].to_numpy()
    if len(seq) > 1 and not bool(np.all(seq[1:] > seq[:-1])):
        df = df.sort("seq")
    return df.drop("seq")
