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

from perflab.analysis.pprof_frames import FrameFilters, Frames, build, go_clean
from perflab.analysis.pprof_tags import TagFilters, kept_samples_sql
from perflab.analysis.pprof_units import report_unit
from perflab.analysis.pprof_view import go_div, mean_value
from perflab.errors import PerflabError
from perflab.pprof_rules import go_base
from perflab.store import Store


def _frames(store: Store, sid: int, filters: FrameFilters | None = None, granularity: str = "functions") -> Frames:
    """The stacks pprof reads: drop_frames and the frame filters (focus, ignore, hide,
    show, show_from, prune_from) applied, nodes at ``granularity``, and the inline flag of
    each frame."""
    drop, keep = store.con.execute(
        "SELECT drop_frames, keep_frames FROM pprof_profiles WHERE source_id = ?", [sid]
    ).fetchall()[0]
    frames = build(store, [sid], filters or FrameFilters(), drop, keep, granularity)
    if frames is None:
        frames = Frames(store, [sid])
        try:
            frames.finish(granularity)
        except BaseException:
            frames.drop()
            raise
    return frames


@contextlib.contextmanager
def _kept_samples(store: Store, sid: int, tags: TagFilters | None) -> Iterator[str]:
    """The samples the tag filters keep (tagfocus, tagignore): ``pprof_samples`` itself
    without them, else a temporary table of the kept rows. Totals stay the whole profile's,
    as pprof's."""
    cond = kept_samples_sql(store, [sid], tags) if tags is not None else None
    if cond is None:
        yield "pprof_samples"
        return
    table = f"_perflab_kept_{next(_kept_counter)}"
    store.con.execute(f"CREATE TEMP TABLE {table} AS SELECT * EXCLUDE (src) FROM "
                      f"(SELECT 0 AS src, * FROM pprof_samples WHERE source_id = $sid) WHERE {cond[0]}",
                      {"sid": sid, **cond[1]})
    try:
        yield table
    finally:
        store.con.execute(f"DROP TABLE IF EXISTS {table}")


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
    WHERE stack_id IN (SELECT stack_id FROM pprof_samples
                       WHERE source_id = $sid AND (value[$idx] <> 0 OR ($mean AND value[1] <> 0)))
),
weights AS (SELECT stack_id, sum(value[$idx]) AS w FROM pprof_samples WHERE source_id = $sid GROUP BY stack_id),
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


# Flat and cum per node (cum once per sample), raw and as -mean's divisors, from the same
# stacks as the edges; pprof keeps a node when its raw flat or cum is not 0.
_NODES_SQL = """
WITH weights AS (
    SELECT stack_id, sum(value[$idx]) AS w, sum(CASE WHEN $mean THEN value[1] ELSE 0 END) AS d
    FROM pprof_samples WHERE source_id = $sid GROUP BY stack_id
),
leafs AS (
    SELECT s.node_ids[1] AS node_id, sum(w) AS flat, sum(d) AS flat_div
    FROM {stacks} s JOIN weights USING (stack_id) GROUP BY 1
),
holds AS (
    SELECT h.node_id, sum(w) AS cum, sum(d) AS cum_div
    FROM (SELECT DISTINCT stack_id, unnest(node_ids) AS node_id FROM {stacks}) h JOIN weights USING (stack_id)
    GROUP BY 1
)
SELECT n.name, coalesce(l.flat, 0)::BIGINT, h.cum::BIGINT, coalesce(l.flat_div, 0)::BIGINT, h.cum_div::BIGINT
FROM holds h LEFT JOIN leafs l USING (node_id) JOIN {nodes} n ON n.node_id = h.node_id
WHERE coalesce(l.flat, 0) <> 0 OR h.cum <> 0
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
            _EDGES_SQL.format(stacks=st, nodes=nodes).replace("pprof_samples", kept),
            {**params, "names": sorted(wanted)}).fetchall()
    ]
    return rows, wanted, edges


def _edge_order(e: dict[str, Any]) -> tuple[int, str, str]:
    return -abs(e["weight"]), e["caller"], e["callee"]


def peek(store: Store, sid: int, idx: int, regex: str, mean: bool = False,
         filters: FrameFilters | None = None, granularity: str = "functions",
         tags: TagFilters | None = None, cum: bool = False) -> dict[str, Any]:
    """The callers and callees of each function matching ``regex``, as `go tool pprof -peek`.

    Returns {"total", "shown" (the flats of every node), "output_unit" (pprof's unit for
    the text), "nodes": [{"name", "flat", "cum", "callers", "callees"}]} in pprof's
    order (|flat|, then name); callers and callees are [{"name", "weight", "inline"}].
    """
    params = {"sid": sid, "idx": idx + 1, "mean": mean}
    frames = _frames(store, sid, filters, granularity)
    try:
        st, nodes = frames.finish_tables()
        with _kept_samples(store, sid, tags) as kept:
            found = store.con.execute(_NODES_SQL.format(stacks=st, nodes=nodes).replace("pprof_samples", kept),
                                      params).fetchall()
            edge_rows = _edges(store, st, nodes, kept, params, found, regex, cum)
    finally:
        frames.drop()
    rows, wanted, edges = edge_rows
    total_raw, total_div = store.con.execute(
        "SELECT coalesce(sum(abs(value[$idx])), 0), coalesce(sum(CASE WHEN $mean THEN value[1] ELSE 0 END), 0) "
        "FROM pprof_samples WHERE source_id = $sid", params).fetchall()[0]
    total = mean_value(int(total_raw), int(total_div), True)
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
        "output_unit": _graph_unit(rows, total, store, sid, idx),
        "nodes": shown,
    }


def _graph_unit(rows: list[dict[str, Any]], total: int, store: Store, sid: int, idx: int) -> str:
    """pprof's selectOutputUnit over every node of the graph."""
    unit = store.con.execute(
        "SELECT unit FROM pprof_sample_types WHERE source_id = ? AND idx = ?", [sid, idx]
    ).fetchall()[0][0]
    return report_unit([r["flat"] or r["cum"] for r in rows], total, str(unit))


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


def traces(store: Store, sid: int, idx: int, mean: bool = False,
           filters: FrameFilters | None = None, granularity: str = "functions",
           tags: TagFilters | None = None) -> dict[str, Any]:
    """Every sample that has frames, in file order, as `go tool pprof -traces` lists them.

    Returns {"total", "num_label_units": {key: unit}, "samples": [{"value", "labels":
    {key: [str]}, "num_labels": {key: [int]}, "frames": [{"name", "inline"}]}]};
    values are exact ints in the sample type's unit (``mean``: divided by the first
    sample type's value, truncated, when that is not 0). ``filters``: a sample the filters
    drop is not listed, and its frames are those the filters leave.
    """
    frames = _frames(store, sid, filters, granularity)
    try:
        st, nodes = frames.finish_tables()
        stacks = {
            int(s): [{"name": str(n), "inline": bool(i)} for n, i in zip(names, inl, strict=True)]
            for s, names, inl in store.con.execute(_TRACE_STACKS_SQL.format(stacks=st, nodes=nodes)).fetchall()
        }
    finally:
        frames.drop()
    params = {"sid": sid, "idx": idx + 1}
    with _kept_samples(store, sid, tags) as kept:
        samples = store.con.execute(
            f"SELECT sample_idx, stack_id, value[$idx], value[1] FROM {kept} WHERE source_id = $sid "
            "ORDER BY sample_idx", params).fetchall()
    labels: dict[int, dict[str, list[str]]] = {}
    num_labels: dict[int, dict[str, list[int]]] = {}
    for sample_idx, key, numeric, strs, nums in store.con.execute(_TRACE_LABELS_SQL, {"sid": sid}).fetchall():
        if numeric:
            num_labels.setdefault(int(sample_idx), {})[str(key)] = [int(v) for v in nums]
        else:
            labels.setdefault(int(sample_idx), {})[str(key)] = [str(v) for v in strs]
    units = {str(k): str(u) for k, u in store.con.execute(_NUM_UNITS_SQL, {"sid": sid}).fetchall()}
    if tags is not None and (tags.tagshow or tags.taghide):
        # pprof's -tagshow/-taghide: which label keys are listed (regexps on the key)
        keys = sorted({k for d in labels.values() for k in d} | {k for n in num_labels.values() for k in n})
        shown = _matching(store, keys, tags.tagshow) if tags.tagshow else set(keys)
        shown -= _matching(store, keys, tags.taghide) if tags.taghide else set()
        labels = {i: {k: v for k, v in d.items() if k in shown} for i, d in labels.items()}
        num_labels = {i: {k: v for k, v in d.items() if k in shown} for i, d in num_labels.items()}
    total_raw, total_div = store.con.execute(
        "SELECT coalesce(sum(abs(value[$idx])), 0), coalesce(sum(value[1]), 0) FROM pprof_samples "
        "WHERE source_id = $sid", params).fetchall()[0]
    total = go_div(int(total_raw), int(total_div)) if mean and total_div else int(total_raw)
    out = []
    for sample_idx, stack_id, v, d in samples:
        frames_of = stacks.get(int(stack_id))
        if not frames_of:
            continue
        value = go_div(int(v), int(d)) if mean and d else int(v)
        out.append({"value": value, "labels": labels.get(int(sample_idx), {}),
                    "num_labels": num_labels.get(int(sample_idx), {}), "frames": frames_of})
    return {"total": total, "num_label_units": units, "samples": out}


# -- list ------------------------------------------------------------------------------

# The line-granularity nodes of the samples pprof reads, with their flat and cum: one
# node per (function, file, line, binary, start line) of a kept Line; a location without
# Lines is a frame of no function (it only ends flat's walk there).
_LINE_NODES_SQL = """
WITH per_stack AS (
    SELECT stack_id, sum(value[$idx]) AS v FROM pprof_samples WHERE source_id = $sid GROUP BY stack_id
),
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


def source_listing(store: Store, sid: int, idx: int, regex: str, where: SourceOptions,
                   filters: FrameFilters | None = None, tags: TagFilters | None = None) -> dict[str, Any]:
    """The annotated source of each function matching ``regex``, as `go tool pprof -list`.

    Returns {"total", "routines": [{"function", "file" (None: no source information),
    "flat", "cum", "error" (why the source was not read, or None), "lines": [{"line",
    "flat", "cum", "source"}]}]}: functions by name, then their files by path.
    """
    frames = _frames(store, sid, filters)
    try:
        with _kept_samples(store, sid, tags) as kept:
            rows = store.con.execute(_LINE_NODES_SQL.format(t=frames.t).replace("pprof_samples", kept),
                                     {"sid": sid, "idx": idx + 1}).fetchall()
    finally:
        frames.drop()
    total = int(store.con.execute(
        "SELECT coalesce(sum(abs(value[$idx])), 0) FROM pprof_samples WHERE source_id = $sid",
        {"sid": sid, "idx": idx + 1}).fetchall()[0][0])
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
