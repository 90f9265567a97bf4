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
``<unknown>`` when there is no mapping file; names that are not UTF-8 are keyed by
their bytes (as pprof does) and stored with U+FFFD for each invalid sequence (what a
UTF-8 terminal shows of pprof's raw bytes). drop_frames/keep_frames are stored
as they are; readers apply them (perflab.analysis.pprof_frames), as pprof does on
every profile it reads.

Legacy pprof formats (gperftools binary CPU, text heapz/contentionz/threadz, Go
text heap and count profiles) are recognised (perflab.ingest.pprof_detect) and refused
with a pointer to ``go tool pprof -proto``. The array work lives in
perflab.arrays; this module is the loader: profile.proto → store tables.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
from typing import Any, NoReturn

import numpy as np
import polars as pl
import pyarrow as pa
from google.protobuf.message import DecodeError

from perflab.arrays import arrow_table, lookup, recursive_stacks, to_arrow, to_numpy
from perflab.errors import InputError
from perflab.ingest._io import HEAD_BYTES, INGEST_MEMORY_LIMIT
from perflab.ingest._registry import Context, Format, register
from perflab.ingest.pprof_detect import LEGACY_MESSAGE, detect, is_legacy, profile_shaped
from perflab.ingest.pprof_proto import Label, ProfileRawStrings, ProfileSampleBytes, Sample
from perflab.pprof_rules import default_sample_index, go_base
from perflab.vocab import PPROF

# Separator between raw samples (see the module docstring). Location id 0 is reserved
# by profile.proto, a string index cannot be negative, and INT64_MIN is not a count,
# a duration or a size; a file that does hold one of them takes the exact slow path.
_SEP_VALUE = -(1 << 63)
_SEP_LABEL_KEY = -1
_SEPARATOR = Sample(location_id=[0], value=[_SEP_VALUE], label=[Label(key=_SEP_LABEL_KEY)]).SerializeToString()
# Samples decoded at a time: a chunk of deep stacks is a few tens of MB of arrays.
_SAMPLE_CHUNK = 25_000
_STAGING_MEMORY_LIMIT = "384MB"
# Connection-local staging tables (see _Loader.samples), dropped before the ingest ends.
_STAGE = "_perflab_pprof_stage"
_FIRSTS = "_perflab_pprof_stage_firsts"
_STACKS = "_perflab_pprof_stage_stacks"
# NULL in np.where: an object array, so the result holds None where a column has no value.
_NULL = np.array(None, dtype=object)


# A profile.proto this large is not a profile: the largest real ones seen (65 public profiles,
# the 1M-sample benchmark) are tens of MB. A gzipped one that inflates past this is refused
# after holding at most this much, whatever --max-decompressed allows other formats.
MAX_PROFILE_BYTES = 512 << 20


# -- ingest -----------------------------------------------------------------------------
def ingest(ctx: Context) -> dict[str, Any]:
    data = ctx.read_bytes(MAX_PROFILE_BYTES)
    if is_legacy(bytes(data[:HEAD_BYTES])):
        raise InputError(ctx.path, LEGACY_MESSAGE)
    try:
        prof = ProfileSampleBytes.FromString(data)
        strings: list[str] = list(prof.string_table)
        keys = None
    except DecodeError:
        # Perhaps only names that are not UTF-8: pprof reads those, keeping the bytes; they
        # are stored with U+FFFD for each invalid sequence (what a UTF-8 terminal shows
        # for pprof's raw bytes).
        try:
            prof = ProfileRawStrings.FromString(data)
        except DecodeError:
            raise InputError(ctx.path, "not a valid profile.proto message (protobuf decoding failed)") from None
        # pprof keys a function by its bytes: two names that differ only in invalid bytes
        # stay two nodes, so the nodes are keyed by the bytes (as surrogate escapes).
        keys = [s.decode("utf-8", "surrogateescape") for s in prof.string_table]
        strings = [_shown(k) for k in keys]
    if (not strings or strings[0] != "") and not profile_shaped(data):
        # Every profile.proto writer puts "" first: a message without it whose fields do
        # not have profile.proto's wire types is some other protobuf.
        raise InputError(ctx.path, "not a pprof profile (a protobuf message of another kind)")
    del data
    return _Loader(ctx, prof, strings, keys).load()


class _Loader:
    def __init__(self, ctx: Context, prof: Any, strings: list[str], keys: list[str] | None = None) -> None:
        self.ctx = ctx
        self.prof = prof
        self.strings = strings
        # The names as pprof tells them apart, when some are not UTF-8 (else the strings).
        self.keys = keys
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
        ):
            self.insert(con, table, arrow)
        return {
            "samples": samples["num_samples"],
            "stacks": samples["stacks"],
            "locations": locations["table"].num_rows,
            "functions": functions["table"].num_rows,
            "sample types": len(self.sample_types),
        }

    def insert(self, con: Any, table: str, arrow: pa.Table) -> None:
        self.insert_into(con, table, arrow, ["source_id", "run_id"])

    def insert_into(self, con: Any, table: str, arrow: pa.Table, ids: list[str] | None = None) -> None:
        if arrow.num_rows == 0:
            return
        view = f"_perflab_pprof_{table}"
        con.register(view, arrow)
        try:
            cols = ", ".join(f'"{c}"' for c in arrow.column_names)
            head = "".join(f"{c}, " for c in ids or [])
            con.execute(
                f"INSERT INTO {table} ({head}{cols}) SELECT {'?, ' * len(ids or [])}{cols} FROM {view}",
                [self.ctx.source_id, self.ctx.run_id] if ids else [],
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
        table = arrow_table({
            "mapping_id": to_arrow(ids, pl.UInt64),
            "memory_start": to_arrow([m.memory_start for m in ms], pl.UInt64),
            "memory_limit": to_arrow([m.memory_limit for m in ms], pl.UInt64),
            "file_offset": to_arrow([m.file_offset for m in ms], pl.UInt64),
            "filename": to_arrow(filenames.tolist(), pl.String),
            "build_id": to_arrow(self.strs(build_idx, "mapping {} build_id", ids).tolist(), pl.String),
            "has_functions": to_arrow([m.has_functions for m in ms], pl.Boolean),
            "has_filenames": to_arrow([m.has_filenames for m in ms], pl.Boolean),
            "has_line_numbers": to_arrow([m.has_line_numbers for m in ms], pl.Boolean),
            "has_inline_frames": to_arrow([m.has_inline_frames for m in ms], pl.Boolean),
        })
        return {"ids": ids, "filenames": filenames, "table": table}

    def functions(self) -> dict[str, Any]:
        fs = self.prof.function
        n = len(fs)
        ids = np.fromiter((f.id for f in fs), np.uint64, n)
        self.unique_ids(ids, "function")
        name_idx = np.fromiter((f.name for f in fs), np.int64, n)
        names = self.strs(name_idx, "function {} name", ids)
        keys = names if self.keys is None else np.array(self.keys, dtype=object)[name_idx]
        table = arrow_table({
            "function_id": to_arrow(ids, pl.UInt64),
            "name": to_arrow(names.tolist(), pl.String),
            "system_name": to_arrow(
                self.strs(np.fromiter((f.system_name for f in fs), np.int64, n), "function {} system_name",
                          ids).tolist(),
                pl.String),
            "filename": to_arrow(
                self.strs(np.fromiter((f.filename for f in fs), np.int64, n), "function {} filename", ids).tolist(),
                pl.String),
            "start_line": to_arrow(np.fromiter((f.start_line for f in fs), np.int64, n)),
        })
        return {"ids": ids, "names": names, "keys": keys, "table": table}

    def locations(self, mappings: dict[str, Any], functions: dict[str, Any]) -> dict[str, Any]:
        locs = self.prof.location
        n = len(locs)
        ids = np.fromiter((loc.id for loc in locs), np.uint64, n)
        self.unique_ids(ids, "location")
        mapping_ids = np.fromiter((loc.mapping_id for loc in locs), np.uint64, n)
        # The mapping file of each location ('' without one), for pprof's [basename] names.
        map_pos = lookup(mappings["ids"], mapping_ids)
        missing = np.flatnonzero((mapping_ids != 0) & (map_pos < 0))
        if missing.size:
            i = int(missing[0])
            self.fail(f"location {int(ids[i])} refers to mapping {int(mapping_ids[i])}, which does not exist")
        objfiles = [
            go_base(mappings["filenames"][j]) if j >= 0 and mappings["filenames"][j] else ""
            for j in map_pos.tolist()
        ]

        line_lists = [loc.line for loc in locs]
        n_lines = np.fromiter(map(len, line_lists), np.int64, n)
        all_lines = list(itertools.chain.from_iterable(line_lists))
        fn_ids = np.fromiter((ln.function_id for ln in all_lines), np.uint64, len(all_lines))
        fn_pos = lookup(functions["ids"], fn_ids)
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
        fn_names = functions["keys"].tolist()
        nodes: dict[str, int] = {}
        frame_nodes = [
            _node(nodes, fn_names[f] if f >= 0 else "", objfiles[loc])
            for f, loc in zip(frame_fn.tolist(), frame_loc.tolist(), strict=True)
        ]
        frames = pa.LargeListArray.from_arrays(
            to_arrow(np.append(frame_start, frame_loc.size).astype(np.int64)),
            to_arrow(np.array(frame_nodes, dtype=np.int32)),
        )

        table = arrow_table({
            "location_id": to_arrow(ids, pl.UInt64),
            "mapping_id": to_arrow(np.where(mapping_ids == 0, _NULL, mapping_ids).tolist(), pl.UInt64),
            "address": to_arrow([loc.address for loc in locs], pl.UInt64),
            "is_folded": to_arrow([loc.is_folded for loc in locs], pl.Boolean),
        })
        lines = arrow_table({
            "location_id": to_arrow(ids[line_loc], pl.UInt64),
            "line_idx": to_arrow(line_idx, pl.Int32),
            "function_id": to_arrow(np.where(fn_ids == 0, _NULL, fn_ids).tolist(), pl.UInt64),
            "line": to_arrow([ln.line for ln in all_lines], pl.Int64),
            "column": to_arrow([ln.column for ln in all_lines], pl.Int64),
        })
        node_table = arrow_table({
            "node_id": to_arrow(list(nodes.values()), pl.Int32),
            "name": to_arrow(list(nodes) if self.keys is None else [_shown(k) for k in nodes], pl.String),
        })
        return {
            "ids": ids, "table": table, "lines": lines, "nodes": node_table,
            "frames": frames, "one_frame_each": bool(np.all(frame_count == 1)),
        }

    def samples(self, locations: dict[str, Any]) -> dict[str, Any]:
        """Samples → pprof_samples, pprof_stacks and pprof_labels, _SAMPLE_CHUNK samples at a time.

        Each chunk's samples (location ids, their frames' node ids, values) go to a temp table
        as they are decoded; DuckDB then numbers the distinct stacks by first appearance,
        comparing the location lists exactly. Nothing the size of the whole profile is held in
        Python: above the ingest's memory limit DuckDB spills the staging table to disk, which
        keeps a 1M-sample profile under 1 GiB (it peaked at 3 GiB decoded in one piece).
        """
        raw = self.prof.sample
        n = len(raw)
        con = self.ctx.con
        # Python holds the decoded profile (~1.6x the file) beside DuckDB's share: a smaller
        # share here keeps the whole ingest of a 1M-sample profile under 1 GiB.
        con.execute(f"SET memory_limit = '{_STAGING_MEMORY_LIMIT}'")
        con.execute(f"CREATE TEMP TABLE {_STAGE} (sample_idx BIGINT, location_ids UBIGINT[], node_ids INTEGER[], "
                    "recursive BOOLEAN, value BIGINT[])")
        try:
            for start in range(0, n, _SAMPLE_CHUNK):
                chunk = raw[start:start + _SAMPLE_CHUNK]
                staged, labels = self.sample_chunk(chunk, start, locations)
                # Not con.register: DuckDB 2.0 keeps a registered Arrow table alive after
                # unregister (17 MB a chunk here, never freed).
                con.from_arrow(staged).insert_into(_STAGE)
                self.insert(con, "pprof_labels", labels)
                del staged, labels
                _give_back_freed_memory()
            n_stacks = self.number_stacks(con)
        finally:
            for table in (_STAGE, _FIRSTS, _STACKS):
                con.execute(f"DROP TABLE IF EXISTS {table}")
            con.execute(f"SET memory_limit = '{INGEST_MEMORY_LIMIT}'")
        return {"num_samples": n, "stacks": n_stacks}

    def sample_chunk(self, raw: Any, start: int, locations: dict[str, Any]) -> tuple[pa.Table, pa.Table]:
        """One chunk of raw samples decoded in bulk: (staged rows, label rows)."""
        n = len(raw)
        n_types = len(self.sample_types)
        merged = Sample.FromString(_SEPARATOR.join(raw) + _SEPARATOR) if n else Sample()
        # Location ids with a 0 closing each sample (the separators).
        flat_ids = np.fromiter(merged.location_id, np.uint64, len(merged.location_id))
        values = np.fromiter(merged.value, np.int64, len(merged.value))
        ends = np.flatnonzero(flat_ids == 0)
        layout_ok = (
            ends.size == n
            and values.size == n * (n_types + 1)
            and bool(np.all(values[n_types::n_types + 1] == _SEP_VALUE))
            and np.count_nonzero(values == _SEP_VALUE) == n
        )
        values = values.reshape(n, n_types + 1)[:, :n_types] if layout_ok else self.values_slowly(raw, start)
        lengths = np.diff(ends, prepend=-1) - 1

        loc_pos = lookup(locations["ids"], flat_ids)  # the separators (id 0) map to -1
        if np.count_nonzero(loc_pos < 0) != n:
            i = int(np.flatnonzero((loc_pos < 0) & (flat_ids != 0))[0])
            sample = start + int(np.searchsorted(ends, i))
            self.fail(f"sample {sample} refers to location {int(flat_ids[i])}, which does not exist")
        keep = flat_ids != 0
        loc_pos, flat_ids = loc_pos[keep], flat_ids[keep]
        offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        # Expanded into pprof's frames: one per Line, innermost inlined call first.
        loc_frames = locations["frames"]
        if locations["one_frame_each"]:
            frames = to_arrow(to_numpy(loc_frames.values)[loc_pos])
            node_offsets = offsets
        else:
            # Arrow's take on the per-location frame lists is the whole expansion in C++.
            taken = loc_frames.take(to_arrow(loc_pos))
            frames = taken.values
            node_offsets = to_numpy(taken.offsets)[offsets]
        node_ids = pa.LargeListArray.from_arrays(to_arrow(node_offsets.astype(np.int64)), frames)
        staged = arrow_table({
            "sample_idx": to_arrow(np.arange(start, start + n, dtype=np.int64)),
            "location_ids": pa.LargeListArray.from_arrays(to_arrow(offsets), to_arrow(flat_ids, pl.UInt64)),
            "node_ids": node_ids,
            "recursive": recursive_stacks(node_ids),
            "value": pa.LargeListArray.from_arrays(
                to_arrow(np.arange(0, n * n_types + 1, max(n_types, 1), dtype=np.int64)[: n + 1]
                         if n_types else np.zeros(n + 1, dtype=np.int64)),
                to_arrow(values.reshape(-1), pl.Int64)),
        })
        return staged, self.labels(merged, n, start)

    def number_stacks(self, con: Any) -> int:
        """The staged samples' distinct stacks, numbered by first appearance, into
        pprof_stacks; each sample into pprof_samples with its stack's number."""
        params = [self.ctx.source_id, self.ctx.run_id]
        # Each sample's first sample with the same locations (one sort by the lists: an exact
        # comparison, spilled when large); from there on integers only, and no sort of rows
        # that carry lists.
        con.execute(f"""
            CREATE TEMP TABLE {_FIRSTS} AS
            SELECT sample_idx, min(sample_idx) OVER (PARTITION BY location_ids) AS first FROM {_STAGE}
        """)
        con.execute(f"""
            CREATE TEMP TABLE {_STACKS} AS
            SELECT first, (row_number() OVER (ORDER BY first) - 1)::INTEGER AS stack_id
            FROM {_FIRSTS} WHERE sample_idx = first
        """)
        con.execute(f"""
            INSERT INTO pprof_stacks (source_id, run_id, stack_id, location_ids, node_ids, recursive)
            SELECT ?, ?, k.stack_id, s.location_ids, s.node_ids, s.recursive
            FROM {_STAGE} s JOIN {_STACKS} k ON s.sample_idx = k.first
        """, params)
        con.execute(f"""
            INSERT INTO pprof_samples (source_id, run_id, sample_idx, stack_id, value)
            SELECT ?, ?, s.sample_idx, k.stack_id, s.value
            FROM {_STAGE} s JOIN {_FIRSTS} f USING (sample_idx) JOIN {_STACKS} k USING (first)
            ORDER BY s.sample_idx
        """, params)
        return int(con.execute(f"SELECT count(*) FROM {_STACKS}").fetchall()[0][0])

    def labels(self, merged: Any, n: int, start: int) -> pa.Table:
        labels = merged.label
        empty = arrow_table({"sample_idx": to_arrow([], pl.Int64), "key": to_arrow([], pl.String),
                          "str": to_arrow([], pl.String), "num": to_arrow([], pl.Int64),
                          "num_unit": to_arrow([], pl.String)})
        if len(labels) == n:  # only the separators: no sample has labels
            return empty
        cols = np.array([(lb.key, lb.str, lb.num, lb.num_unit) for lb in labels], dtype=np.int64).reshape(-1, 4)
        is_sep = cols[:, 0] == _SEP_LABEL_KEY
        if np.count_nonzero(is_sep) != n:
            self.values_slowly(self.prof.sample[start:start + n], start)  # raises on the negative label key
        sample_idx = start + np.cumsum(is_sep) - is_sep  # separators end a sample
        real = ~is_sep
        cols, sample_idx = cols[real], sample_idx[real]
        keys = self.strs(cols[:, 0], "sample {} label key", sample_idx)
        strs = self.strs(cols[:, 1], "sample {} label", sample_idx)
        units = self.strs(cols[:, 3], "sample {} label num_unit", sample_idx)
        # pprof reads a label as a string label when str is set, else as a number.
        is_str = cols[:, 1] != 0
        return arrow_table({
            "sample_idx": to_arrow(sample_idx, pl.Int64),
            "key": to_arrow(keys.tolist(), pl.String),
            "str": to_arrow(np.where(is_str, strs, _NULL).tolist(), pl.String),
            "num": to_arrow(np.where(is_str, _NULL, cols[:, 2]).tolist(), pl.Int64),
            "num_unit": to_arrow(np.where(cols[:, 3] != 0, units, _NULL).tolist(), pl.String),
        })

    def values_slowly(self, raw: Any, start: int) -> np.ndarray:
        """Sample by sample, for the rare file the separators cannot split: find the
        malformed sample, or (when a value is INT64_MIN) read the values exactly."""
        n_types = len(self.sample_types)
        rows = []
        for i, blob in enumerate(raw, start):
            sample = Sample.FromString(blob)
            if len(sample.value) != n_types:
                self.fail(f"sample {i} has {len(sample.value)} values, but the profile has {n_types} sample types")
            if 0 in sample.location_id:
                self.fail(f"sample {i} refers to location 0, which does not exist (0 is reserved)")
            for lb in sample.label:
                self.s(lb.key, f"sample {i} label key")
            rows.append(list(sample.value))
        return np.array(rows, dtype=np.int64).reshape(len(rows), n_types)


def _give_back_freed_memory() -> None:
    """glibc keeps the heap freed by a chunk's arrays for the next, fragmented: a 1M-sample
    profile then held 200 MB more than its live data. Trimming is a no-op elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _node(nodes: dict[str, int], function_name: str, objfile: str) -> int:
    name = function_name or (f"[{objfile}]" if objfile else "<unknown>")
    node = nodes.get(name)
    if node is None:
        node = nodes[name] = len(nodes)
    return node


def _shown(key: str) -> str:
    """A name kept as surrogate escapes, as a UTF-8 terminal shows pprof's raw bytes: U+FFFD
    for each invalid sequence."""
    return key.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


register(Format(
    kind=PPROF,
    description="pprof profile.proto (Go's cpu, heap, allocs, goroutine, block, mutex; gzipped or raw)",
    detect=detect,
    ingest=ingest,
    # Binary: the text formats' cheap, certain checks go first.
    priority=150,
))
