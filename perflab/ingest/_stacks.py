"""Stack profiles other tools write, moved into the pprof tables.

Collapsed stacks and speedscope files (perflab.ingest.collapsed, perflab.ingest.speedscope)
are parsed into a :class:`StackProfile`: distinct frames, and samples as frame indices
(leaf first) with one value per sample type. :func:`write` stores it exactly as
perflab.ingest.pprof stores a profile.proto, so every profile view (top, stacks, categories,
flame graphs, diffs, the doctor) reads it unchanged:

    frame i of the file  ->  function i+1 and location i+1 (one Line: function i+1, its line)
    a function's name    ->  its pprof node (nodes are keyed by name, as pprof's are;
                             an empty name is pprof's ``<unknown>``)
    a distinct stack     ->  one pprof_stacks row (location and node ids, leaf first)
    a sample             ->  one pprof_samples row (a value per sample type)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from perflab.arrays import arrow_table, distinct_stacks, recursive_stacks, to_arrow
from perflab.ingest._registry import Context
from perflab.pprof_rules import default_sample_index

# pprof's name for a frame without a function name (perflab.ingest.pprof._node).
UNKNOWN = "<unknown>"


@dataclass
class StackProfile:
    """A profile as stacks of frames, ready for the pprof tables."""

    names: list[str]                # per distinct frame: the function (node) name
    system_names: list[str]         # per distinct frame: the frame as the file wrote it
    filenames: list[str]            # per distinct frame ('' when the file names none)
    lines: list[int]                # per distinct frame (0 when the file gives none)
    frame_ids: np.ndarray           # int64: every sample's frame indices, leaf first, concatenated
    offsets: np.ndarray             # int64, samples + 1: sample i is frame_ids[offsets[i]:offsets[i+1]]
    values: np.ndarray              # int64 (samples, sample types)
    sample_types: list[tuple[str, str]]
    default_sample_type: str | None = None
    labels: list[tuple[int, str, str]] = field(default_factory=list)  # (sample, key, string value)
    period_type: tuple[str, str] = ("", "")
    period: int = 0
    time_nanos: int | None = None
    duration_nanos: int | None = None
    comments: list[str] = field(default_factory=list)


def write(ctx: Context, prof: StackProfile) -> dict[str, Any]:
    """Insert ``prof`` into the pprof tables under ``ctx.source_id``; returns ingest counts."""
    n = prof.offsets.size - 1
    n_frames = len(prof.names)
    frame_ids = prof.frame_ids.astype(np.int64, copy=False)
    ids = np.arange(1, n_frames + 1, dtype=np.uint64)

    nodes: dict[str, int] = {}
    frame_node = np.array([nodes.setdefault(name or UNKNOWN, len(nodes)) for name in prof.names], dtype=np.int32)

    stack_of_sample, is_first, st_frames, st_lengths = _distinct(frame_ids, prof.offsets)
    st_offsets = to_arrow(np.concatenate(([0], np.cumsum(st_lengths))).astype(np.int64))
    node_ids = pa.LargeListArray.from_arrays(st_offsets, to_arrow(frame_node[st_frames]))
    n_types = len(prof.sample_types)
    tables = {
        "pprof_functions": arrow_table({
            "function_id": to_arrow(ids, pl.UInt64),
            "name": to_arrow(prof.names, pl.String),
            "system_name": to_arrow(prof.system_names, pl.String),
            "filename": to_arrow(prof.filenames, pl.String),
            "start_line": to_arrow(np.zeros(n_frames, dtype=np.int64)),
        }),
        "pprof_locations": arrow_table({
            "location_id": to_arrow(ids, pl.UInt64),
            "mapping_id": to_arrow([None] * n_frames, pl.UInt64),
            "address": to_arrow(np.zeros(n_frames, dtype=np.uint64), pl.UInt64),
            "is_folded": to_arrow([False] * n_frames, pl.Boolean),
        }),
        "pprof_lines": arrow_table({
            "location_id": to_arrow(ids, pl.UInt64),
            "line_idx": to_arrow(np.zeros(n_frames, dtype=np.int32), pl.Int32),
            "function_id": to_arrow(ids, pl.UInt64),
            "line": to_arrow(np.array(prof.lines, dtype=np.int64)),
            "column": to_arrow(np.zeros(n_frames, dtype=np.int64)),
        }),
        "pprof_nodes": arrow_table({
            "node_id": to_arrow(list(nodes.values()), pl.Int32),
            "name": to_arrow(list(nodes.keys()), pl.String),
        }),
        "pprof_stacks": arrow_table({
            "stack_id": to_arrow(np.arange(st_lengths.size, dtype=np.int32)),
            "location_ids": pa.LargeListArray.from_arrays(st_offsets, to_arrow(ids[st_frames], pl.UInt64)),
            "node_ids": node_ids,
            "recursive": recursive_stacks(node_ids),
        }),
        "pprof_samples": arrow_table({
            "sample_idx": to_arrow(np.arange(n, dtype=np.int64)),
            "stack_id": to_arrow(stack_of_sample.astype(np.int32)),
            "value": pa.FixedSizeListArray.from_arrays(
                to_arrow(prof.values.astype(np.int64).reshape(-1), pl.Int64), n_types),
        }),
        "pprof_labels": arrow_table({
            "sample_idx": to_arrow([s for s, _, _ in prof.labels], pl.Int64),
            "key": to_arrow([k for _, k, _ in prof.labels], pl.String),
            "str": to_arrow([v for _, _, v in prof.labels], pl.String),
            "num": to_arrow([None] * len(prof.labels), pl.Int64),
            "num_unit": to_arrow([None] * len(prof.labels), pl.String),
        }),
    }
    _write_header(ctx, prof, n)
    for table, arrow in tables.items():
        _insert(ctx, table, arrow)
    return {
        "samples": n,
        "stacks": int(st_lengths.size),
        "functions": len(nodes),
        "sample types": n_types,
    }


def _distinct(frame_ids: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(stack of each sample, whether a sample is its stack's first, the distinct stacks'
    frames concatenated in stack order, their lengths)."""
    n = offsets.size - 1
    lengths = np.diff(offsets)
    # distinct_stacks reads each sample's frames closed by a -1 (perflab.arrays).
    ends = offsets[1:] + np.arange(n)
    loc_pos = np.full(frame_ids.size + n, -1, dtype=np.int64)
    keep = np.ones(loc_pos.size, dtype=bool)
    keep[ends] = False
    loc_pos[keep] = frame_ids
    stack_of_sample, is_first = distinct_stacks(loc_pos, ends)
    # A stack is numbered by its first sample, so the first samples in file order are the
    # stacks in id order.
    st_frames = frame_ids[np.repeat(is_first, lengths)]
    return stack_of_sample, is_first, st_frames, lengths[is_first]


def _write_header(ctx: Context, prof: StackProfile, num_samples: int) -> None:
    type_names = [t for t, _ in prof.sample_types]
    default_index = default_sample_index(type_names, prof.default_sample_type or "")
    ctx.con.execute(
        "INSERT INTO pprof_profiles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ctx.source_id, ctx.run_id, prof.period_type[0], prof.period_type[1], prof.period,
            prof.time_nanos, prof.duration_nanos, prof.default_sample_type, default_index,
            None, None, prof.comments, None, num_samples, len(prof.names),
        ],
    )
    if prof.sample_types:
        ctx.con.executemany(
            "INSERT INTO pprof_sample_types VALUES (?, ?, ?, ?, ?)",
            [[ctx.source_id, ctx.run_id, i, t, u] for i, (t, u) in enumerate(prof.sample_types)],
        )
    ctx.meta.update(
        sample_types=[f"{t}/{u}" for t, u in prof.sample_types],
        default_sample_type=type_names[default_index] if default_index is not None else None,
        period_type="/".join(prof.period_type) if any(prof.period_type) else None,
        period=prof.period,
    )


def _insert(ctx: Context, table: str, arrow: pa.Table) -> None:
    if arrow.num_rows == 0:
        return
    view = f"_perflab_stacks_{table}"
    ctx.con.register(view, arrow)
    try:
        cols = ", ".join(f'"{c}"' for c in arrow.column_names)
        ctx.con.execute(
            f"INSERT INTO {table} (source_id, run_id, {cols}) SELECT ?, ?, {cols} FROM {view}",
            [ctx.source_id, ctx.run_id],
        )
    finally:
        ctx.con.unregister(view)
