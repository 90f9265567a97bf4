"""pprof: profile.proto (gzipped or raw), every sample type, stacks kept.

The bytes are decoded by the ``protobuf`` package (upb, in C); this module only
moves the decoded columns into the store, in bulk:

* The profile is parsed once with a *view* of profile.proto in which
  ``Profile.sample`` is ``repeated bytes`` (see ``pprof_proto.ProfileSampleBytes``):
  the 250k samples of a large CPU profile then cost no Python object each.
  Protobuf merges concatenated messages by appending their repeated fields, so
  the raw samples joined with a *separator sample* and parsed as ONE ``Sample``
  give every location id, value and label of the file in three flat
  containers; the separators (location id 0, value INT64_MIN, label key -1,
  none of which a valid sample can hold) mark where each sample ends.
* Locations are mapped to pprof's function-level *nodes* (a name each, after
  inline expansion and pprof's naming rules), and every distinct stack of
  locations becomes one ``pprof_stacks`` row holding its node ids leaf first, so
  flat/cum per function is a single SQL aggregation (perflab.analysis.profiles).

pprof's rules (fixtures/pprof/README.md, checked against ``go tool pprof``):
a location expands to its Line entries, line[0] (the innermost inlined call)
first; a node is keyed by function name; a location without Lines, or a Line
whose function has no name, is named ``[basename of the mapping file]``, or
``<unknown>`` when there is no mapping file. drop_frames/keep_frames are stored
but not applied: pprof applies them only to the legacy formats it converts.

Legacy pprof formats (gperftools binary CPU, text heapz/contentionz/threadz, Go
text heap and count profiles) are recognised and refused with a pointer to
``go tool pprof -proto``.
"""

from __future__ import annotations

import functools
import itertools
import re
from typing import Any, NoReturn

import numpy as np
import polars as pl
import pyarrow as pa
from google.protobuf.message import DecodeError

from perflab.errors import InputError
from perflab.ingest import Context, Format, Sniff, register
from perflab.ingest._io import HEAD_BYTES
from perflab.ingest.pprof_proto import (
    Function,
    Label,
    Location,
    Mapping,
    ProfileSampleBytes,
    Sample,
    ValueType,
)

LEGACY_MESSAGE = "legacy pprof format; convert it with `go tool pprof -proto`"

# Separator between raw samples (see the module docstring). Location id 0 is reserved
# by profile.proto, a string index cannot be negative, and INT64_MIN is not a count,
# a duration or a size; a file that does hold one of them takes the exact slow path.
_SEP_VALUE = -(1 << 63)
_SEP_LABEL_KEY = -1
_SEPARATOR = Sample(location_id=[0], value=[_SEP_VALUE], label=[Label(key=_SEP_LABEL_KEY)]).SerializeToString()

# Wire types a profile.proto Profile may carry per field number (0 varint, 2 length-delimited).
# Field 13 (comment, repeated int64) comes packed or one varint per element.
_PROFILE_WIRE: dict[int, frozenset[int]] = {
    1: frozenset({2}), 2: frozenset({2}), 3: frozenset({2}), 4: frozenset({2}), 5: frozenset({2}),
    6: frozenset({2}), 7: frozenset({0}), 8: frozenset({0}), 9: frozenset({0}), 10: frozenset({0}),
    11: frozenset({2}), 12: frozenset({0}), 13: frozenset({0, 2}), 14: frozenset({0}), 15: frozenset({0}),
}
_SUBMESSAGE = {1: ValueType, 2: Sample, 3: Mapping, 4: Location, 5: Function, 11: ValueType}
# Enough fields to tell a profile from any text or other binary format; the head of a
# real profile holds thousands, and walking them all would only cost time.
_DETECT_MAX_FIELDS = 2000

# gperftools' binary CPU profile starts with the header words 0, 3 (header size) and the
# version (0; Java's variant writes 1), in 32- or 64-bit words of either byte order.
_LEGACY_BINARY_HEADS = tuple(
    b"".join(w.to_bytes(size, order) for w in (0, 3, version))
    for size in (8, 4) for order in ("little", "big") for version in (0, 1)
)
_LEGACY_TEXT = re.compile(
    rb"\A\s*(?:---\s*(?:heapz|growthz|contentionz|contention|threadz|thread|heap|mutex)\b"
    rb"|heap profile:|heap_v2/|[a-z]+ profile: total \d+)"
)


# -- detection ---------------------------------------------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise IndexError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _is_legacy(head: bytes) -> bool:
    return head.startswith(_LEGACY_BINARY_HEADS) or bool(_LEGACY_TEXT.match(head[:256]))


def _looks_like_profile(head: bytes) -> bool:
    """Walk the Profile's top-level fields in the head and trial-parse each complete one.

    The head may end inside a field (it is a prefix, or the file is truncated, which
    ingest then reports precisely), but every field before must be a Profile field of
    the right wire type whose content parses.
    """
    pos = fields = 0
    try:
        while pos < len(head) and fields < _DETECT_MAX_FIELDS:
            tag, pos = _varint(head, pos)
            number, wire = tag >> 3, tag & 7
            if wire not in _PROFILE_WIRE.get(number, ()):
                return False
            if wire == 0:
                _, pos = _varint(head, pos)
            else:
                length, pos = _varint(head, pos)
                if pos + length > len(head):
                    break  # the head ends inside this field
                body = head[pos:pos + length]
                pos += length
                if number in _SUBMESSAGE:
                    _SUBMESSAGE[number].FromString(body)
                elif number == 6:
                    body.decode("utf-8")
            fields += 1
    except IndexError:
        pass  # the head ends inside a varint
    except (DecodeError, UnicodeDecodeError):
        return False
    return fields > 0


def detect(sniff: Sniff) -> bool:
    return _is_legacy(sniff.head) or _looks_like_profile(sniff.head)


# -- ingest -----------------------------------------------------------------------------
def ingest(ctx: Context) -> dict[str, Any]:
    data = ctx.read_bytes()
    if _is_legacy(data[:HEAD_BYTES]):
        raise InputError(ctx.path, LEGACY_MESSAGE)
    try:
        prof = ProfileSampleBytes.FromString(data)
    except DecodeError:
        raise InputError(ctx.path, "not a valid profile.proto message (protobuf decoding failed)") from None
    del data
    return _Loader(ctx, prof).load()


class _Loader:
    def __init__(self, ctx: Context, prof: Any) -> None:
        self.ctx = ctx
        self.prof = prof
        self.strings: list[str] = list(prof.string_table)
        if not self.strings or self.strings[0] != "":
            self.fail("string table entry 0 must be the empty string")

    def fail(self, problem: str) -> NoReturn:
        raise InputError(self.ctx.path, problem)

    def s(self, index: int, what: str) -> str:
        if 0 <= index < len(self.strings):
            return self.strings[index]
        self.fail(f"{what} refers to string {index}, beyond the string table ({len(self.strings)} strings)")

    def strs(self, indices: np.ndarray, what: str, ids: np.ndarray | None = None) -> np.ndarray:
        """String-table indices → an object array of strings, or a precise error."""
        bad = np.flatnonzero((indices < 0) | (indices >= len(self.strings)))
        if bad.size:
            i = int(bad[0])
            label = what if ids is None else what.format(int(ids[i]))
            self.s(int(indices[i]), label)
        return self.string_array[indices] if indices.size else np.array([], dtype=object)

    @functools.cached_property
    def string_array(self) -> np.ndarray:
        return np.array(self.strings, dtype=object)

    def unique_ids(self, ids: np.ndarray, what: str) -> None:
        if ids.size and not np.all(ids):
            self.fail(f"a {what} has the reserved id 0")
        uniq, counts = np.unique(ids, return_counts=True)
        if uniq.size != ids.size:
            self.fail(f"{what} id {int(uniq[counts > 1][0])} is used more than once")

    # -- the parts of the profile ----------------------------------------------------
    def load(self) -> dict[str, Any]:
        p = self.prof
        self.sample_types = [
            (self.s(st.type, f"sample type {i}"), self.s(st.unit, f"sample type {i} unit"))
            for i, st in enumerate(p.sample_type)
        ]
        mappings = self.mappings()
        functions = self.functions()
        locations = self.locations(mappings, functions)
        samples = self.samples(locations)
        self.write_header(samples["num_samples"])
        con = self.ctx.con
        for table, arrow in (
            ("pprof_mappings", mappings["table"]),
            ("pprof_functions", functions["table"]),
            ("pprof_locations", locations["table"]),
            ("pprof_lines", locations["lines"]),
            ("pprof_nodes", locations["nodes"]),
            ("pprof_stacks", samples["stacks"]),
            ("pprof_samples", samples["samples"]),
            ("pprof_labels", samples["labels"]),
        ):
            self.insert(con, table, arrow)
        return {
            "samples": samples["num_samples"],
            "stacks": samples["stacks"].num_rows,
            "locations": locations["table"].num_rows,
            "functions": functions["table"].num_rows,
            "sample types": len(self.sample_types),
        }

    def insert(self, con: Any, table: str, arrow: pa.Table) -> None:
        if arrow.num_rows == 0:
            return
        view = f"_perflab_pprof_{table}"
        con.register(view, arrow)
        try:
            cols = ", ".join(f'"{c}"' for c in arrow.column_names)
            con.execute(
                f"INSERT INTO {table} (source_id, run_id, {cols}) SELECT ?, ?, {cols} FROM {view}",
                [self.ctx.source_id, self.ctx.run_id],
            )
        finally:
            con.unregister(view)

    def write_header(self, num_samples: int) -> None:
        p = self.prof
        period_type = self.s(p.period_type.type, "period type")
        period_unit = self.s(p.period_type.unit, "period unit")
        default_name = self.s(p.default_sample_type, "default_sample_type")
        comments = [self.s(c, f"comment {i}") for i, c in enumerate(p.comment)]
        drop_frames = self.s(p.drop_frames, "drop_frames")
        keep_frames = self.s(p.keep_frames, "keep_frames")
        doc_url = self.s(p.doc_url, "doc_url")
        default_index = default_sample_index([t for t, _ in self.sample_types], default_name)
        con = self.ctx.con
        con.execute(
            "INSERT INTO pprof_profiles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                self.ctx.source_id, self.ctx.run_id, period_type, period_unit, p.period,
                p.time_nanos or None, p.duration_nanos or None, default_name or None, default_index,
                drop_frames or None, keep_frames or None, comments, doc_url or None,
                num_samples, len(p.location),
            ],
        )
        if self.sample_types:
            con.executemany(
                "INSERT INTO pprof_sample_types VALUES (?, ?, ?, ?, ?)",
                [[self.ctx.source_id, self.ctx.run_id, i, t, u] for i, (t, u) in enumerate(self.sample_types)],
            )
        self.ctx.meta.update(
            sample_types=[f"{t}/{u}" for t, u in self.sample_types],
            default_sample_type=self.sample_types[default_index][0] if default_index is not None else None,
            period_type=f"{period_type}/{period_unit}" if period_type or period_unit else None,
            period=p.period,
        )

    def mappings(self) -> dict[str, Any]:
        ms = self.prof.mapping
        ids = np.fromiter((m.id for m in ms), np.uint64, len(ms))
        self.unique_ids(ids, "mapping")
        filename_idx = np.fromiter((m.filename for m in ms), np.int64, len(ms))
        build_idx = np.fromiter((m.build_id for m in ms), np.int64, len(ms))
        filenames = self.strs(filename_idx, "mapping {} filename", ids)
        table = _table({
            "mapping_id": _arrow(ids, pl.UInt64),
            "memory_start": _arrow([m.memory_start for m in ms], pl.UInt64),
            "memory_limit": _arrow([m.memory_limit for m in ms], pl.UInt64),
            "file_offset": _arrow([m.file_offset for m in ms], pl.UInt64),
            "filename": _arrow(filenames.tolist(), pl.String),
            "build_id": _arrow(self.strs(build_idx, "mapping {} build_id", ids).tolist(), pl.String),
            "has_functions": _arrow([m.has_functions for m in ms], pl.Boolean),
            "has_filenames": _arrow([m.has_filenames for m in ms], pl.Boolean),
            "has_line_numbers": _arrow([m.has_line_numbers for m in ms], pl.Boolean),
            "has_inline_frames": _arrow([m.has_inline_frames for m in ms], pl.Boolean),
        })
        return {"ids": ids, "filenames": filenames, "table": table}

    def functions(self) -> dict[str, Any]:
        fs = self.prof.function
        n = len(fs)
        ids = np.fromiter((f.id for f in fs), np.uint64, n)
        self.unique_ids(ids, "function")
        names = self.strs(np.fromiter((f.name for f in fs), np.int64, n), "function {} name", ids)
        table = _table({
            "function_id": _arrow(ids, pl.UInt64),
            "name": _arrow(names.tolist(), pl.String),
            "system_name": _arrow(
                self.strs(np.fromiter((f.system_name for f in fs), np.int64, n), "function {} system_name", ids).tolist(),
                pl.String),
            "filename": _arrow(
                self.strs(np.fromiter((f.filename for f in fs), np.int64, n), "function {} filename", ids).tolist(),
                pl.String),
            "start_line": _arrow(np.fromiter((f.start_line for f in fs), np.int64, n)),
        })
        return {"ids": ids, "names": names, "table": table}

    def locations(self, mappings: dict[str, Any], functions: dict[str, Any]) -> dict[str, Any]:
        locs = self.prof.location
        n = len(locs)
        ids = np.fromiter((loc.id for loc in locs), np.uint64, n)
        self.unique_ids(ids, "location")
        mapping_ids = np.fromiter((loc.mapping_id for loc in locs), np.uint64, n)
        # The mapping file of each location ('' without one), for pprof's [basename] names.
        map_pos = _lookup(mappings["ids"], mapping_ids)
        missing = np.flatnonzero((mapping_ids != 0) & (map_pos < 0))
        if missing.size:
            i = int(missing[0])
            self.fail(f"location {int(ids[i])} refers to mapping {int(mapping_ids[i])}, which does not exist")
        objfiles = [
            _go_base(mappings["filenames"][j]) if j >= 0 and mappings["filenames"][j] else ""
            for j in map_pos.tolist()
        ]

        line_lists = [loc.line for loc in locs]
        n_lines = np.fromiter(map(len, line_lists), np.int64, n)
        all_lines = list(itertools.chain.from_iterable(line_lists))
        fn_ids = np.fromiter((ln.function_id for ln in all_lines), np.uint64, len(all_lines))
        fn_pos = _lookup(functions["ids"], fn_ids)
        line_loc = np.repeat(np.arange(n), n_lines)
        line_idx = np.arange(len(all_lines)) - np.repeat(np.cumsum(n_lines) - n_lines, n_lines)
        missing = np.flatnonzero((fn_ids != 0) & (fn_pos < 0))
        if missing.size:
            i = int(missing[0])
            self.fail(
                f"location {int(ids[line_loc[i]])} refers to function {int(fn_ids[i])}, which does not exist"
            )

        # Frames: one per Line in line order, or one for a location without Lines (an
        # address only), each named by pprof's rule (see _node).
        frame_count = np.maximum(n_lines, 1)
        frame_start = np.cumsum(frame_count) - frame_count
        frame_loc = np.repeat(np.arange(n), frame_count)
        frame_fn = np.full(frame_loc.size, -1, dtype=np.int64)
        frame_fn[frame_start[line_loc] + line_idx] = fn_pos
        fn_names = functions["names"].tolist()
        nodes: dict[str, int] = {}
        frame_nodes = [
            _node(nodes, fn_names[f] if f >= 0 else "", objfiles[loc])
            for f, loc in zip(frame_fn.tolist(), frame_loc.tolist())
        ]
        frames = pa.LargeListArray.from_arrays(
            _arrow(np.append(frame_start, frame_loc.size).astype(np.int64)),
            _arrow(np.array(frame_nodes, dtype=np.int32)),
        )

        table = _table({
            "location_id": _arrow(ids, pl.UInt64),
            "mapping_id": _arrow(np.where(mapping_ids == 0, None, mapping_ids).tolist(), pl.UInt64),
            "address": _arrow([loc.address for loc in locs], pl.UInt64),
            "is_folded": _arrow([loc.is_folded for loc in locs], pl.Boolean),
        })
        lines = _table({
            "location_id": _arrow(ids[line_loc], pl.UInt64),
            "line_idx": _arrow(line_idx, pl.Int32),
            "function_id": _arrow(np.where(fn_ids == 0, None, fn_ids).tolist(), pl.UInt64),
            "line": _arrow([ln.line for ln in all_lines], pl.Int64),
            "column": _arrow([ln.column for ln in all_lines], pl.Int64),
        })
        node_table = _table({
            "node_id": _arrow(list(nodes.values()), pl.Int32),
            "name": _arrow(list(nodes.keys()), pl.String),
        })
        return {
            "ids": ids, "table": table, "lines": lines, "nodes": node_table,
            "frames": frames, "one_frame_each": bool(np.all(frame_count == 1)),
        }

    def samples(self, locations: dict[str, Any]) -> dict[str, Any]:
        raw = self.prof.sample
        n = len(raw)
        n_types = len(self.sample_types)
        merged = Sample.FromString(_SEPARATOR.join(raw) + _SEPARATOR) if n else Sample()
        # Location ids with a 0 closing each sample (the separators), kept in place:
        # removing them would copy the largest array of the profile once more.
        flat_ids = np.fromiter(merged.location_id, np.uint64, len(merged.location_id))
        values = np.fromiter(merged.value, np.int64, len(merged.value))
        ends = np.flatnonzero(flat_ids == 0)
        layout_ok = (
            ends.size == n
            and values.size == n * (n_types + 1)
            and bool(np.all(values[n_types::n_types + 1] == _SEP_VALUE))
            and np.count_nonzero(values == _SEP_VALUE) == n
        )
        if layout_ok:
            values = values.reshape(n, n_types + 1)[:, :n_types]
        else:
            values = self.values_slowly()
        lengths = np.diff(ends, prepend=-1) - 1

        loc_pos = _lookup(locations["ids"], flat_ids)  # the separators (id 0) map to -1
        if np.count_nonzero(loc_pos < 0) != n:
            i = int(np.flatnonzero((loc_pos < 0) & (flat_ids != 0))[0])
            sample = int(np.searchsorted(ends, i))
            self.fail(f"sample {sample} refers to location {int(flat_ids[i])}, which does not exist")
        del flat_ids

        stack_of_sample, is_first = _distinct_stacks(loc_pos, ends)
        # The distinct stacks' locations, in stack order (a stack is numbered by its first sample).
        if is_first.all():
            st_loc_pos = loc_pos[loc_pos >= 0]
        else:
            st_loc_pos = loc_pos[np.repeat(is_first, lengths + 1) & (loc_pos >= 0)]
        del loc_pos
        st_lengths = lengths[is_first]
        st_offsets = np.concatenate(([0], np.cumsum(st_lengths)))
        # ... then expanded into pprof's frames: one per Line, innermost inlined call first.
        loc_frames = locations["frames"]
        if locations["one_frame_each"]:
            frames = _arrow(_numpy(loc_frames.values)[st_loc_pos])
            node_offsets = st_offsets
        else:
            # Arrow's take on the per-location frame lists is the whole expansion in C++.
            taken = loc_frames.take(_arrow(st_loc_pos))
            frames = taken.values
            node_offsets = _numpy(taken.offsets)[st_offsets]
        node_ids = pa.LargeListArray.from_arrays(_arrow(node_offsets.astype(np.int64)), frames)
        stacks = _table({
            "stack_id": _arrow(np.arange(st_lengths.size, dtype=np.int32)),
            "location_ids": pa.LargeListArray.from_arrays(
                _arrow(st_offsets.astype(np.int64)), _arrow(locations["ids"][st_loc_pos], pl.UInt64)),
            "node_ids": node_ids,
            "recursive": _recursive(node_ids),
        })
        samples = _table({
            "sample_idx": _arrow(np.arange(n, dtype=np.int64)),
            "stack_id": _arrow(stack_of_sample.astype(np.int32)),
            "value": pa.FixedSizeListArray.from_arrays(_arrow(values.reshape(-1), pl.Int64), n_types)
            if n_types else _arrow([[]] * n, pl.List(pl.Int64)),
        })
        return {"num_samples": n, "stacks": stacks, "samples": samples, "labels": self.labels(merged, n)}

    def labels(self, merged: Any, n: int) -> pa.Table:
        labels = merged.label
        empty = _table({"sample_idx": _arrow([], pl.Int64), "key": _arrow([], pl.String),
                          "str": _arrow([], pl.String), "num": _arrow([], pl.Int64),
                          "num_unit": _arrow([], pl.String)})
        if len(labels) == n:  # only the separators: no sample has labels
            return empty
        cols = np.array([(lb.key, lb.str, lb.num, lb.num_unit) for lb in labels], dtype=np.int64).reshape(-1, 4)
        is_sep = cols[:, 0] == _SEP_LABEL_KEY
        if np.count_nonzero(is_sep) != n:
            self.values_slowly()  # raises on the sample whose label key is negative
        sample_idx = np.cumsum(is_sep) - is_sep  # separators end a sample
        real = ~is_sep
        cols, sample_idx = cols[real], sample_idx[real]
        keys = self.strs(cols[:, 0], "sample {} label key", sample_idx)
        strs = self.strs(cols[:, 1], "sample {} label", sample_idx)
        units = self.strs(cols[:, 3], "sample {} label num_unit", sample_idx)
        # pprof reads a label as a string label when str is set, else as a number.
        is_str = cols[:, 1] != 0
        return _table({
            "sample_idx": _arrow(sample_idx, pl.Int64),
            "key": _arrow(keys.tolist(), pl.String),
            "str": _arrow(np.where(is_str, strs, None).tolist(), pl.String),
            "num": _arrow(np.where(is_str, None, cols[:, 2]).tolist(), pl.Int64),
            "num_unit": _arrow(np.where(cols[:, 3] != 0, units, None).tolist(), pl.String),
        })

    def values_slowly(self) -> np.ndarray:
        """Sample by sample, for the rare file the separators cannot split: find the
        malformed sample, or (when a value is INT64_MIN) read the values exactly."""
        n_types = len(self.sample_types)
        rows = []
        for i, blob in enumerate(self.prof.sample):
            sample = Sample.FromString(blob)
            if len(sample.value) != n_types:
                self.fail(f"sample {i} has {len(sample.value)} values, but the profile has {n_types} sample types")
            if 0 in sample.location_id:
                self.fail(f"sample {i} refers to location 0, which does not exist (0 is reserved)")
            for lb in sample.label:
                self.s(lb.key, f"sample {i} label key")
            rows.append(list(sample.value))
        return np.array(rows, dtype=np.int64).reshape(len(rows), n_types)


def _table(columns: dict[str, Any]) -> pa.Table:
    # Not pa.table(dict): that imports pandas, see _arrow.
    return pa.Table.from_arrays(list(columns.values()), names=list(columns))


def _arrow(values: Any, dtype: Any = None) -> pa.Array:
    """A numpy array or list as Arrow, through polars (no copy for numpy numbers).

    Not pa.array(): it imports pandas, only to ask whether its input is a pandas
    object, which adds a third of a second to every `perflab top`.
    """
    return pl.Series(values=values, dtype=dtype).to_arrow()


def _numpy(array: pa.Array) -> np.ndarray:
    # Not array.to_numpy(): it imports pandas too (see _arrow).
    series = pl.from_arrow(array)
    assert isinstance(series, pl.Series)
    return series.to_numpy()


def default_sample_index(type_names: list[str], default_name: str) -> int | None:
    """pprof's rule: the type named by default_sample_type if any matches, else the last."""
    if not type_names:
        return None
    if default_name:
        for i, name in enumerate(type_names):
            if name == default_name:
                return i
    return len(type_names) - 1


def _node(nodes: dict[str, int], function_name: str, objfile: str) -> int:
    name = function_name or (f"[{objfile}]" if objfile else "<unknown>")
    node = nodes.get(name)
    if node is None:
        node = nodes[name] = len(nodes)
    return node


def _go_base(path: str) -> str:
    """Go's filepath.Base on Unix, which pprof uses for the [mapping] node names."""
    trimmed = path.rstrip("/")
    if not trimmed:
        return "/" if path else "."
    return trimmed.rsplit("/", 1)[-1]


# Dense lookup tables are used while they stay this small relative to the ids they
# index (Go numbers ids 1..n); sparse ids fall back to a binary search.
_DENSE_LOOKUP_MAX = 1 << 24


def _lookup(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
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


def _recursive(node_ids: pa.LargeListArray) -> pa.Array:
    """Whether a stack holds some node more than once: only those need de-duplicating
    for cum, which makes the cum query several times faster on deep profiles."""
    series = pl.from_arrow(node_ids)
    assert isinstance(series, pl.Series)
    return (series.list.n_unique() < series.list.len()).fill_null(False).to_arrow()


def _distinct_stacks(loc_pos: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    lists = pa.LargeListArray.from_arrays(_arrow(offsets), _arrow(loc_pos))
    first = (
        pl.from_arrow(_table({"locs": lists}))
        .with_row_index("i")
        .select(pl.col("i").first().over("locs"))
        .to_series()
        .to_numpy()
    )
    is_first = first == np.arange(n)
    stack_of = (np.cumsum(is_first) - 1)[first]
    return stack_of, is_first


register(Format(
    kind="pprof",
    description="pprof profile.proto (Go's cpu, heap, allocs, goroutine, block, mutex; gzipped or raw)",
    detect=detect,
    ingest=ingest,
    # Binary: the text formats' cheap, certain checks go first.
    priority=150,
))
