"""`go tool pprof -peek`, `-traces` and `-list` over the stored pprof tables, computed in
bulk by DuckDB (read from pprof's report and graph packages, not copied).

All three read the profile as pprof does after ``drop_frames``/``keep_frames``
(perflab.analysis.pprof_frames), and none trims nodes (pprof turns trimming off for
peek and list; traces never builds a graph):

* **peek** is pprof's call graph at function granularity: per node, flat and cum as
  ``-top`` has them (perflab.analysis.pprof_view with every cut at 0), and per edge
  caller->callee the sum of the values of the samples whose stack holds that call
  (once per sample), ``(inline)`` when every such sample reaches the callee through an
  inlined frame at the edge's rootmost occurrence. Edges print their raw weight, in
  the node's cum percentage, ordered by |weight|, then caller, then callee name.
* **traces** is every sample with frames, in file order: its labels, its value and
  its frames leaf first, each frame that is not its location's last Line ``(inline)``.
* **list** is the graph at line granularity (function, file, line, binary, start
  line): per matching function and source file, each source line with the flat and
  cum of that line's nodes, from the function's start line (or 5 lines above its
  first sampled line) to 5 lines below its last one.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from perflab.analysis.pprof_frames import FrameFilters, go_clean, rewritten
from perflab.analysis.pprof_merge import sample_keys_sql
from perflab.analysis.pprof_tags import TagFilters, kept_samples_sql
from perflab.analysis.pprof_units import report_unit
from perflab.analysis.pprof_view import Part, mean_value, node_totals, profile_total, sample_rows, value_sql
from perflab.errors import PerflabError
from perflab.pprof_rules import go_base
from perflab.store import Store


@contextlib.contextmanager
def _kept_samples(store: Store, parts: list[Part], idx: int, tags: TagFilters | None) -> Iterator[str]:
    """The samples (stack_id, src, sample_idx, v, d) of the profile pprof reads that the
    tag filters keep (tagfocus, tagignore), in order (by src, sample_idx): one profile's
    as stored; several merged as pprof merges them (:data:`_MERGED_SAMPLES_SQL`), which
    decides what pprof's graph sees (a call in samples that cancel out is not there, one
    in samples whose values merely sum to 0 is). Totals stay the whole profile's."""
    rows = sample_rows(parts, idx)
    cond = kept_samples_sql(store, [p.sid for p in parts], tags) if tags is not None else None
    if cond is None and len(parts) == 1:
        yield rows
        return
    table = f"_perflab_kept_{next(_kept_counter)}"
    kept = f"(SELECT * FROM {rows} WHERE {cond[0]})" if cond is not None else rows
    if len(parts) == 1:
        sql = f"CREATE TEMP TABLE {table} AS SELECT * FROM {kept}"
    else:
        sql = f"CREATE TEMP TABLE {table} AS " + _MERGED_SAMPLES_SQL.format(
            keys=" UNION ALL ".join(sample_keys_sql(p.sid, i, p.base) for i, p in enumerate(parts)),
            samples=_all_values(parts, kept), nonzero=_nonzero(parts))
    store.con.execute(sql, cond[1] if cond is not None else {})
    try:
        yield table
    finally:
        store.con.execute(f"DROP TABLE IF EXISTS {table}")


# The samples of several profiles as pprof's merge leaves them (profile.Merge): samples
# equal in locations and labels become one, in order of first appearance (src, then
# sample_idx: the representative), with their values summed; a sample whose every value
# sums to 0 is gone.
_MERGED_SAMPLES_SQL = """
WITH k AS ({keys}),
rows AS (
    SELECT ((s.src::BIGINT << 40) | s.sample_idx) AS pos, s.*, k.key
    FROM {samples} s JOIN k USING (src, sample_idx)
)
SELECT arg_min(stack_id, pos) AS stack_id, arg_min(src, pos) AS src, arg_min(sample_idx, pos) AS sample_idx,
       sum(v) AS v, sum(d) AS d
FROM rows GROUP BY key
HAVING {nonzero}
ORDER BY min(pos)
"""


def _all_values(parts: list[Part], kept: str) -> str:
    """The kept samples with every merged sample type's value (v0, v1, ...): pprof's merge
    drops a sample only when all of them sum to 0."""
    n = len(parts[0].columns)
    values = " UNION ALL ".join(
        f"SELECT {i} AS src, sample_idx, " + ", ".join(f"{value_sql(j, p)} AS v{j}" for j in range(n))
        + f" FROM pprof_samples WHERE source_id = {int(p.sid)}" for i, p in enumerate(parts))
    every = ", ".join(f"a.v{j}" for j in range(n))
    return f"(SELECT k.*, {every} FROM {kept} k JOIN ({values}) a USING (src, sample_idx))"


def _nonzero(parts: list[Part]) -> str:
    return " OR ".join(f"sum(v{j}) <> 0" for j in range(len(parts[0].columns)))


_kept_counter = itertools.count()


def _matching(store: Store, names: list[str], regex: str) -> set[str]:
    """The names RE2 (as Go's regexp) finds ``regex`` in; one line for a bad regexp."""
    try:
        rows = store.con.execute(
            "SELECT n FROM (SELECT unnest($names::VARCHAR[]) AS n) WHERE regexp_matches(n, $rx)",
            {"names": names, "rx": regex},
        ).fetchall()
    except duckdb.Error as e:
        reason = str(e).splitlines()[0].split(": ", 1)[-1]
        raise PerflabError(f"not a valid regexp {regex!r}: {reason}") from None
    found = {str(r[0]) for r in rows}
    if not found:
        raise PerflabError(f"no matches found for regexp: {regex}")
    return found


# -- peek ------------------------------------------------------------------------------

# Every call edge touching a node of $names: per stack (one stack stands for all its
# samples), each (caller, callee) pair once, flagged inline by its rootmost occurrence;
# then summed over the stacks whose samples pprof reads (a value, or -mean's divisor).
_EDGES_SQL = """
WITH walk AS (
    SELECT stack_id, unnest(node_ids) AS callee, unnest(inl) AS inl,
           unnest(node_ids[2:]) AS caller, generate_subscripts(node_ids, 1) AS depth
    FROM {stacks}
    WHERE stack_id IN (SELECT stack_id FROM {samples} WHERE v <> 0 OR ($mean AND d <> 0))
),
weights AS (SELECT stack_id, sum(v) AS w FROM {samples} GROUP BY stack_id),
named AS (
    SELECT w.stack_id, weights.w, w.depth, w.inl, a.name AS caller, b.name AS callee
    FROM walk w JOIN weights USING (stack_id)
    JOIN {nodes} a ON a.node_id = w.caller JOIN {nodes} b ON b.node_id = w.callee
    WHERE w.caller IS NOT NULL AND w.caller <> w.callee
      AND (a.name IN (SELECT unnest($names::VARCHAR[])) OR b.name IN (SELECT unnest($names::VARCHAR[])))
),
once AS (
    SELECT caller, callee, any_value(w) AS w, arg_max(inl, depth) AS inl
    FROM named GROUP BY stack_id, caller, callee
)
SELECT caller, callee, sum(w)::BIGINT, bool_and(inl) FROM once GROUP BY caller, callee
"""


def _edges(store: Store, st: str, nodes: str, kept: str, params: dict[str, Any], found: list[Any], regex: str,
           cum: bool = False) -> tuple[list[dict[str, Any]], set[str], list[dict[str, Any]]]:
    """(every node's row in pprof's order, the names ``regex`` matches, their edges)."""
    mean = bool(params["mean"])
    # pprof's order: |flat|, then name, then |cum| (raw sums, before -mean divides them);
    # -cum: |cum|, then name, then |flat|
    if cum:
        found.sort(key=lambda n: (-abs(n[2]), n[0], -abs(n[1])))
    else:
        found.sort(key=lambda n: (-abs(n[1]), n[0], -abs(n[2])))
    rows: list[dict[str, Any]] = [
        {"name": str(name), "flat": mean_value(flat, fd, mean), "cum": mean_value(cum, cd, mean)}
        for name, flat, cum, fd, cd in found]
    wanted = _matching(store, [r["name"] for r in rows], regex)
    edges: list[dict[str, Any]] = [
        {"caller": str(a), "callee": str(b), "weight": int(w), "inline": bool(inl)}
        for a, b, w, inl in store.con.execute(
            _EDGES_SQL.format(stacks=st, nodes=nodes, samples=kept),
            {**params, "names": sorted(wanted)}).fetchall()
    ]
    return rows, wanted, edges


def _edge_order(e: dict[str, Any]) -> tuple[int, str, str]:
    return -abs(e["weight"]), e["caller"], e["callee"]


def peek(store: Store, parts: list[Part], idx: int, regex: str, unit: str, mean: bool = False,
         filters: FrameFilters | None = None, granularity: str = "functions",
         tags: TagFilters | None = None, cum: bool = False) -> dict[str, Any]:
    """The callers and callees of each function matching ``regex``, as `go tool pprof -peek`.

    ``parts``, ``idx`` and ``unit``: the profile pprof reads and its sample type
    (perflab.analysis.profiles.pprof_parts). Returns {"total", "shown"
    (the flats of every node), "output_unit" (pprof's unit for the text), "nodes":
    [{"name", "flat", "cum", "callers", "callees"}]} in pprof's order (|flat|, then
    name); callers and callees are [{"name", "weight", "inline"}].
    """
    params = {"mean": mean}
    frames = rewritten(store, [p.sid for p in parts], filters, granularity)
    try:
        st, nodes = frames.finish_tables()
        with _kept_samples(store, parts, idx, tags) as kept:
            found = [(name, flat, cum, fdiv, cdiv) for _, name, flat, cum, fdiv, cdiv, _ in
                     node_totals(store, {"stacks": st, "nodes": nodes, "sample_rows": kept}, {"mean": mean})]
            edge_rows = _edges(store, st, nodes, kept, params, found, regex, cum)
    finally:
        frames.drop()
    rows, wanted, edges = edge_rows
    total = profile_total(store, parts, sample_rows(parts, idx), mean)
    edges.sort(key=_edge_order)
    callers: dict[str, list[dict[str, Any]]] = {}
    callees: dict[str, list[dict[str, Any]]] = {}
    for e in edges:
        callers.setdefault(e["callee"], []).append({"name": e["caller"], "weight": e["weight"], "inline": e["inline"]})
        callees.setdefault(e["caller"], []).append({"name": e["callee"], "weight": e["weight"], "inline": e["inline"]})
    shown = [{"name": r["name"], "flat": r["flat"], "cum": r["cum"],
              "callers": callers.get(r["name"], []), "callees": callees.get(r["name"], [])}
             for r in rows if r["name"] in wanted]
    return {
        "total": total,
        "shown": sum(r["flat"] for r in rows),
        "output_unit": report_unit([r["flat"] or r["cum"] for r in rows], total, unit),
        "nodes": shown,
    }


# -- traces ----------------------------------------------------------------------------

_TRACE_STACKS_SQL = """
SELECT stack_id, list(n.name ORDER BY f.depth), list(f.inl ORDER BY f.depth)
FROM (
    SELECT stack_id, unnest(node_ids) AS node_id, unnest(inl) AS inl, generate_subscripts(node_ids, 1) AS depth
    FROM {stacks}
) f JOIN {nodes} n USING (node_id)
GROUP BY stack_id
"""

# Each sample's labels: string ones as key -> values, numeric ones as key -> (values,
# units), values in file order.
_TRACE_LABELS_SQL = """
SELECT sample_idx, key, str IS NULL AS numeric,
       list(coalesce(str, '') ORDER BY rowid), list(coalesce(num, 0) ORDER BY rowid)
FROM pprof_labels WHERE source_id = $sid
GROUP BY sample_idx, key, str IS NULL
"""

# pprof's unit of each numeric label key: the first unit given for it in any sample;
# without one, bytes for "alignment" and "request", else the key itself.
_NUM_UNITS_SQL = """
SELECT key, coalesce(first(num_unit ORDER BY sample_idx, rowid) FILTER (WHERE num_unit <> ''),
                     CASE WHEN key IN ('alignment', 'request') THEN 'bytes' ELSE key END)
FROM pprof_labels WHERE source_id = $sid AND str IS NULL
GROUP BY key
"""

def traces(store: Store, parts: list[Part], idx: int, mean: bool = False,
           filters: FrameFilters | None = None, granularity: str = "functions",
           tags: TagFilters | None = None) -> dict[str, Any]:
    """Every sample that has frames, in file order, as `go tool pprof -traces` lists them.

    ``parts``: the profile pprof reads (perflab.analysis.profiles.pprof_parts); several
    are merged as pprof merges them, and a -diff_base profile's carry the
    label ``pprof::base`` as pprof's do. Returns {"total", "num_label_units": {key:
    unit}, "samples": [{"value", "labels": {key: [str]}, "num_labels": {key: [int]},
    "frames": [{"name", "inline"}]}]}; values are exact ints in the sample type's unit
    (``mean``: divided by the first sample type's value, truncated, when that is not 0).
    ``filters``: a sample the filters drop is not listed, and its frames are those the
    filters leave.
    """
    frames = rewritten(store, [p.sid for p in parts], filters, granularity)
    try:
        st, nodes = frames.finish_tables()
        stacks = {
            int(s): [{"name": str(n), "inline": bool(i)} for n, i in zip(names, inl, strict=True)]
            for s, names, inl in store.con.execute(_TRACE_STACKS_SQL.format(stacks=st, nodes=nodes)).fetchall()
        }
    finally:
        frames.drop()
    with _kept_samples(store, parts, idx, tags) as kept:
        samples = store.con.execute(
            f"SELECT src, sample_idx, stack_id, v, d FROM {kept} ORDER BY src, sample_idx").fetchall()
    listed = [(int(src), int(i), int(v), int(d)) for src, i, stack, v, d in samples if stacks.get(int(stack))]
    frames_of = [stacks[int(stack)] for _, _, stack, _, _ in samples if stacks.get(int(stack))]
    labels, num_labels, units = _trace_labels(store, parts, listed)
    if tags is not None and (tags.tagshow or tags.taghide):
        # pprof's -tagshow/-taghide: which label keys are listed (regexps on the key)
        keys = sorted({k for d in labels for k in d} | {k for n in num_labels for k in n})
        shown = _matching(store, keys, tags.tagshow) if tags.tagshow else set(keys)
        shown -= _matching(store, keys, tags.taghide) if tags.taghide else set()
        labels = [{k: v for k, v in d.items() if k in shown} for d in labels]
        num_labels = [{k: v for k, v in d.items() if k in shown} for d in num_labels]
    out = [{"value": mean_value(v, d, mean), "labels": lab, "num_labels": num, "frames": fr}
           for (_, _, v, d), lab, num, fr in zip(listed, labels, num_labels, frames_of, strict=True)]
    return {"total": profile_total(store, parts, sample_rows(parts, idx), mean), "num_label_units": units,
            "samples": out}


def _trace_labels(store: Store, parts: list[Part], listed: list[tuple[int, int, int, int]]
                  ) -> tuple[list[dict[str, list[str]]], list[dict[str, list[int]]], dict[str, str]]:
    """The labels of each listed sample ((src, sample_idx, ...)), and each numeric key's unit."""
    by_src = sorted({src for src, _, _, _ in listed})
    strs: dict[tuple[int, int], dict[str, list[str]]] = {}
    nums: dict[tuple[int, int], dict[str, list[int]]] = {}
    units: dict[str, str] = {}
    for src in by_src:
        sid = parts[src].sid
        for i, key, numeric, s, n in store.con.execute(_TRACE_LABELS_SQL, {"sid": sid}).fetchall():
            if numeric:
                nums.setdefault((src, int(i)), {})[str(key)] = [int(v) for v in n]
            else:
                strs.setdefault((src, int(i)), {})[str(key)] = [str(v) for v in s]
    for p in parts:
        for key, unit in store.con.execute(_NUM_UNITS_SQL, {"sid": p.sid}).fetchall():
            units.setdefault(str(key), str(unit))
    labels = [dict(strs.get((src, i), {}), **({"pprof::base": ["true"]} if parts[src].base else {}))
              for src, i, _, _ in listed]
    return labels, [nums.get((src, i), {}) for src, i, _, _ in listed], units


# -- list ------------------------------------------------------------------------------

# The line-granularity nodes of the samples pprof reads, with their flat and cum: one
# node per (function, file, line, binary, start line) of a kept Line; a location without
# Lines is a frame of no function (it only ends flat's walk there).
_LINE_NODES_SQL = """
WITH per_stack AS (SELECT stack_id, sum(v) AS v FROM {samples} GROUP BY stack_id),
lines AS (
    SELECT location_id, line_idx, has_fn, fn, file, line, coalesce(start_line, 0) AS start_line
    FROM {t}_l WHERE keep
),
frames AS (
    SELECT s.stack_id, s.pos, coalesce(l.line_idx, 0) AS line_idx, coalesce(l.has_fn, FALSE) AS has_fn,
           l.fn, l.file, coalesce(l.line, 0) AS line, l.start_line, lo.mapfile
    FROM {t}_s s JOIN {t}_loc lo USING (location_id)
    LEFT JOIN lines l ON l.location_id = s.location_id
    WHERE l.location_id IS NOT NULL OR lo.nlines = 0
),
leaf AS (
    SELECT stack_id, first(has_fn ORDER BY pos, line_idx) AS has_fn,
           first({{'fn': fn, 'file': file, 'line': line, 'mapfile': mapfile, 'start_line': start_line}}
                 ORDER BY pos, line_idx) AS k
    FROM frames GROUP BY stack_id
),
flat AS (
    SELECT k.fn, k.file, k.line, k.mapfile, k.start_line, sum(p.v) AS flat
    FROM leaf JOIN per_stack p USING (stack_id) WHERE has_fn GROUP BY ALL
),
cum AS (
    SELECT fn, file, line, mapfile, start_line, sum(p.v) AS cum
    FROM (SELECT DISTINCT stack_id, fn, file, line, mapfile, start_line FROM frames WHERE has_fn)
    JOIN per_stack p USING (stack_id) GROUP BY ALL
)
SELECT fn, file, line, start_line, coalesce(flat.flat, 0)::BIGINT, cum.cum::BIGINT
FROM cum LEFT JOIN flat USING (fn, file, line, mapfile, start_line)
WHERE coalesce(flat.flat, 0) <> 0 OR cum.cum <> 0
"""

_MARGIN = 5  # lines pprof shows around the sampled ones


@dataclass(frozen=True)
class SourceOptions:
    """Where `go tool pprof -list` looks for sources: ``-source_path`` (pprof's default:
    the current directory) and ``-trim_path`` (prefixes cut from the profile's paths)."""

    source_path: str | None = None
    trim_path: str | None = None


def source_listing(store: Store, parts: list[Part], idx: int, regex: str, where: SourceOptions,
                   filters: FrameFilters | None = None, tags: TagFilters | None = None,
                   mean: bool = False) -> dict[str, Any]:
    """The annotated source of each function matching ``regex``, as `go tool pprof -list`.

    ``parts``: the profile pprof reads (perflab.analysis.profiles.pprof_parts).
    ``mean`` divides the total only: pprof's -list prints each line's raw flat and cum
    (its source report sums the nodes' Flat and Cum, not their mean values), so with
    -mean a CPU profile's lines read thousands of percent of a total of one sample.
    Returns {"total", "routines": [{"function", "file" (None: no source information),
    "flat", "cum", "error" (why the source was not read, or None), "lines": [{"line",
    "flat", "cum", "source"}]}]}: functions by name, then their files by path.
    """
    frames = rewritten(store, [p.sid for p in parts], filters)
    try:
        with _kept_samples(store, parts, idx, tags) as kept:
            rows = store.con.execute(_LINE_NODES_SQL.format(t=frames.t, samples=kept)).fetchall()
    finally:
        frames.drop()
    total = profile_total(store, parts, sample_rows(parts, idx), mean)
    wanted = _matching(store, sorted({str(r[0]) for r in rows}), regex)
    search = where.source_path or ""
    trim = where.trim_path or ""
    # pprof cleans each function's file name (its trim, then filepath.Clean) before the graph.
    files = {f: (go_clean(_trim(f, trim, search)) if f else "") for f in {str(r[1] or "") for r in rows}}
    per_fn: dict[str, dict[str, list[tuple[int, int, int, int]]]] = {}
    for fn, file, line, start, flat, cum in rows:
        if fn in wanted:
            per_fn.setdefault(str(fn), {}).setdefault(files[str(file or "")], []).append(
                (int(line), int(start), int(flat), int(cum)))
    reader = _SourceReader(where.source_path or os.getcwd(), trim)
    routines: list[dict[str, Any]] = []
    for fn in sorted(per_fn):
        by_file = {f: n for f, n in per_fn[fn].items() if f}
        if not by_file:
            routines.append({"function": fn, "file": None, "flat": 0, "cum": 0, "error": None, "lines": []})
            continue
        for file in sorted(by_file):
            nodes = by_file[file]
            lines, error = _annotated(reader, file, nodes)
            routines.append({"function": fn, "file": file, "flat": sum(n[2] for n in nodes),
                             "cum": sum(n[3] for n in nodes), "error": error, "lines": lines})
    return {"total": total, "routines": routines}


def _annotated(reader: _SourceReader, file: str, nodes: list[tuple[int, int, int, int]]
               ) -> tuple[list[dict[str, Any]], str | None]:
    start = min(n[1] or n[0] - _MARGIN for n in nodes)
    end = max(n[0] for n in nodes) + _MARGIN
    per_line: dict[int, tuple[int, int]] = {}
    for line, _, flat, cum in nodes:
        f, c = per_line.get(line, (0, 0))
        per_line[line] = (f + flat, c + cum)
    text, error = reader.read(file)
    if error is not None:
        return [], error
    out = []
    for n in range(max(start, 1), min(end, len(text)) + 1):
        flat, cum = per_line.get(n, (0, 0))
        out.append({"line": n, "flat": flat, "cum": cum, "source": text[n - 1]})
    return out, None


def _go_dir(path: str) -> str:
    return go_clean(posixpath.dirname(path) or ".")


def _split_list(paths: str) -> list[str]:
    return paths.split(os.pathsep) if paths else []


def _trim(path: str, trim: str, search: str) -> str:
    """pprof's trimPath: without a trim path, cut everything up to a search directory's
    base name found in the path; then cut a trim prefix (or /proc/self/cwd/)."""
    if not trim:
        for d in _split_list(search):
            want = "/" + go_base(d) + "/"
            found = path.find(want)
            if found != -1:
                return path[found + len(want):]
    for prefix in [*_split_list(trim), "/proc/self/cwd/./", "/proc/self/cwd/"]:
        prefix = prefix if prefix.endswith("/") else prefix + "/"
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


class _SourceReader:
    """pprof's source search: a relative path is tried under each search directory and
    each of its parents; an absolute one must exist as it is."""

    def __init__(self, search: str, trim: str) -> None:
        self.search = search
        self.trim = trim
        self.cache: dict[str, tuple[list[str], str | None]] = {}

    def read(self, file: str) -> tuple[list[str], str | None]:
        if file not in self.cache:
            self.cache[file] = self._load(file)
        return self.cache[file]

    def _load(self, file: str) -> tuple[list[str], str | None]:
        path = _trim(file, self.trim, self.search)
        if posixpath.isabs(path):
            return self._open(path, path)
        for d in _split_list(self.search):
            while True:
                lines, err = self._open(go_clean(posixpath.join(d, path)), path)
                if err is None:
                    return lines, None
                parent = _go_dir(d)
                if parent == d:
                    break
                d = parent
        return [], f"could not find file {path} on path {self.search}"

    @staticmethod
    def _open(path: str, shown: str) -> tuple[list[str], str | None]:
        try:
            data = Path(path).read_bytes()
        except IsADirectoryError:
            return [], None  # pprof opens it, reads nothing and says nothing
        except OSError as e:
            return [], f"open {shown}: {(e.strerror or str(e)).lower()}"
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        return [ln.removesuffix(b"\r").decode("utf-8", "replace") for ln in lines], None
