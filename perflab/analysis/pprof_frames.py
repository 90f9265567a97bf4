"""The stacks `go tool pprof` reports on, after it has rewritten the profile it read.

pprof changes the profile before it builds a graph, in this order:

1. ``drop_frames``/``keep_frames`` (the profile's own fields; every profile it fetches,
   driver ``RemoveUninteresting``): a location whose outermost matching Line matches
   ``drop_frames`` (and not ``keep_frames``), full match on the simplified function
   name, keeps only the Lines outside it (or is dropped whole when that Line is the
   physical frame); a sample loses such a location, and every frame leafward, when
   some frame rootward of it is not one of them;
2. ``focus``/``ignore`` (a sample is kept when some location matches focus and none
   matches ignore), ``hide`` (Lines removed), ``show`` (only matching Lines kept); a
   location left without Lines leaves its samples, a sample left empty is dropped;
3. ``show_from``: each sample is cut rootward of its rootmost matching location,
   and that location keeps its Lines up to the last matching one; samples without a
   match are dropped;
4. tag filters (per sample, perflab.analysis.pprof_tags);
5. ``prune_from``: each sample is cut leafward of its leafmost matching location,
   which keeps its Lines from the first matching one;
6. the granularity: each remaining Line becomes a node, keyed by the fields pprof
   keeps at that granularity (its NodeInfo) and named as pprof names it:
   ``function``, ``function file``, ``file``, ``function file:line``,
   ``address function file:line:column``.

Regexps are RE2's (DuckDB's), as Go's are; name filters match anywhere in a function
name, its file name or (per location) its mapping's file, unless said otherwise above.

Everything is computed by DuckDB on temporary tables: one row per (location, Line),
one per (stack, location position); samples are rewritten as their distinct stacks are.
The result is a pair of temporary tables shaped like pprof_stacks and pprof_nodes
(plus each frame's inline flag) that perflab.analysis.pprof_view reads.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import duckdb

from perflab.arrays import arrow_table, lookup, recursive_stacks, to_arrow, to_numpy
from perflab.errors import PerflabError
from perflab.lazy import LazyModule
from perflab.store import Store

if TYPE_CHECKING:
    import numpy as np
    import polars as pl
    import pyarrow as pa
else:  # loaded on first use (perflab.lazy)
    np, pl, pa = LazyModule("numpy"), LazyModule("polars"), LazyModule("pyarrow")

GRANULARITIES = ("functions", "filefunctions", "files", "lines", "addresses")
GRANULARITY_ALIASES = {"filenames": "files"}

_counter = itertools.count()
# Stacks whose frames are gathered at once (see Frames.finish_tables).
_GATHER_STACKS = 25_000


@dataclass(frozen=True)
class FrameFilters:
    """pprof's frame options; None leaves a filter out."""

    focus: str | None = None
    ignore: str | None = None
    hide: str | None = None
    show: str | None = None
    show_from: str | None = None
    prune_from: str | None = None

    def active(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))

    def legend(self) -> list[str]:
        """pprof's "Active filters" lines, in its order (``name=regexp``)."""
        return [f"{f.name}={getattr(self, f.name)}" for f in fields(self)
                if f.name != "prune_from" and getattr(self, f.name)]


def simplified(col: str) -> str:
    """SQL for pprof's simplifyFunc: one leading '.' cut, then everything from the first
    '(' that does not open ``(anonymous namespace)`` or belong to ``operator()``."""
    trimmed = f"(CASE WHEN starts_with({col}, '.') THEN substr({col}, 2) ELSE {col} END)"
    masked = (f"replace(replace({trimmed}, 'operator()', 'operator__'), "
              "'(anonymous namespace)', '_anonymous namespace_')")
    return f"(CASE WHEN instr({masked}, '(') > 0 THEN left({trimmed}, instr({masked}, '(') - 1) ELSE {trimmed} END)"


def check_regexp(store: Store, option: str, rx: str | None) -> None:
    """One line for a regexp RE2 (so Go) refuses, as pprof refuses it."""
    if rx is None:
        return
    try:
        store.con.execute("SELECT regexp_matches('', $rx)", {"rx": rx}).fetchall()
    except duckdb.Error as e:
        raise PerflabError(f"--{option.replace('_', '-')}: not a valid regexp {rx!r}: "
                           f"{str(e).splitlines()[0].split(': ', 1)[-1]}") from None


def _valid(store: Store, rx: str) -> bool:
    try:
        store.con.execute("SELECT regexp_matches('', $rx)", {"rx": rx}).fetchall()
    except duckdb.Error:
        return False
    return True


class Frames:
    """Temporary tables {t}_l (Lines), {t}_loc (locations), {t}_s (stack rows) for one
    source, rewritten step by step; :meth:`finish` leaves {t}_st and {t}_n."""

    def __init__(self, store: Store, sids: list[int]) -> None:
        self.con = store.con
        self.store = store
        self.sids = sids
        self.t = f"_perflab_frames_{next(_counter)}"
        self.tables: list[str] = []
        t = self.t
        # Several sources (pprof merges the profiles it is given) share the tables: each
        # location gets a number of its own, each stack (src << 32 | its stack_id).
        self._create(f"{t}_locmap", " UNION ALL ".join(
            f"SELECT {i} AS src, location_id AS old_id FROM pprof_locations WHERE source_id = {int(sid)}"
            for i, sid in enumerate(sids)) + " ORDER BY src, old_id")
        self._run(f"ALTER TABLE {t}_locmap ADD COLUMN location_id BIGINT", {})
        self._run(f"UPDATE {t}_locmap SET location_id = rowid", {})
        self._create(f"{t}_l", f"""
            SELECT m.location_id, li.line_idx, li.function_id IS NOT NULL AS has_fn,
                   coalesce(f.name, '') AS fn, coalesce(f.filename, '') AS file, f.start_line, li.line, li."column",
                   TRUE AS keep
            FROM pprof_lines li
            JOIN (SELECT * FROM {t}_locmap) m ON m.old_id = li.location_id
                 AND li.source_id = [{", ".join(str(int(x)) for x in sids)}][m.src + 1]
            LEFT JOIN pprof_functions f ON f.source_id = li.source_id AND f.function_id = li.function_id""")
        self._create(f"{t}_loc", f"""
            SELECT m.location_id, lo.mapping_id IS NOT NULL AS has_map, coalesce(mp.filename, '') AS mapfile,
                   lo.address, (SELECT count(*) FROM {t}_l l WHERE l.location_id = m.location_id) AS nlines,
                   FALSE AS hidden
            FROM pprof_locations lo
            JOIN {t}_locmap m ON m.old_id = lo.location_id
                 AND lo.source_id = [{", ".join(str(int(x)) for x in sids)}][m.src + 1]
            LEFT JOIN pprof_mappings mp ON mp.source_id = lo.source_id AND mp.mapping_id = lo.mapping_id""")
        self._create(f"{t}_s", " UNION ALL ".join(f"""
            SELECT ({i}::BIGINT << 32) | s.stack_id AS stack_id, m.location_id, s.pos
            FROM (SELECT stack_id, unnest(location_ids) AS location_id, generate_subscripts(location_ids, 1) AS pos
                  FROM pprof_stacks WHERE source_id = {int(sid)}) s
            JOIN {t}_locmap m ON m.src = {i} AND m.old_id = s.location_id""" for i, sid in enumerate(sids)))

    def _create(self, name: str, sql: str, params: dict[str, Any] | None = None) -> None:
        if name not in self.tables:
            self.tables.append(name)
        self._run(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}", params or {})

    def _run(self, sql: str, params: dict[str, Any]) -> None:
        # DuckDB refuses a parameter the statement does not use.
        self.con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})

    def drop(self) -> None:
        for name in self.tables:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")

    # -- 1. drop_frames / keep_frames ------------------------------------------------
    def prune(self, drop: str, keep: str | None) -> None:
        if not _valid(self.store, drop) or (keep is not None and not _valid(self.store, keep)):
            return  # pprof ignores the error of RemoveUninteresting: nothing is pruned
        t = self.t
        name = simplified("fn")
        self._create(f"{t}_p", f"""
            SELECT location_id, max(line_idx) AS last,
                   max(line_idx) FILTER (WHERE has_fn AND fn <> '' AND regexp_full_match({name}, $drop)
                                         AND NOT coalesce(regexp_full_match({name}, $keep), FALSE)) AS cut
            FROM {t}_l GROUP BY location_id""", {"drop": drop, "keep": keep})
        self._run(f"""
            UPDATE {t}_l SET keep = FALSE FROM {t}_p p
            WHERE {t}_l.location_id = p.location_id AND p.cut < p.last AND {t}_l.line_idx <= p.cut""", {})
        # The cut: the rootmost flagged location that has an unflagged one rootward of it.
        self._create(f"{t}_s", f"""
            WITH f AS (
                SELECT s.stack_id, s.location_id, s.pos, p.cut IS NOT NULL AS beneath,
                       coalesce(p.cut = p.last, FALSE) AS whole
                FROM {t}_s s LEFT JOIN {t}_p p USING (location_id)
            ),
            top_user AS (SELECT stack_id, max(pos) FILTER (WHERE NOT beneath) AS u FROM f GROUP BY stack_id),
            cut AS (
                SELECT f.stack_id, max(f.pos) FILTER (WHERE f.beneath AND f.pos < t.u) AS c
                FROM f JOIN top_user t USING (stack_id) GROUP BY f.stack_id
            )
            SELECT f.stack_id, f.location_id, f.pos FROM f JOIN cut USING (stack_id)
            WHERE cut.c IS NULL OR f.pos > cut.c OR (f.pos = cut.c AND NOT f.whole)""")

    # -- 2.-5. pprof's focus options ---------------------------------------------------
    def _loc_matches(self, rx_param: str) -> str:
        """SQL (per location, over its kept Lines ``l`` joined to ``lo``) for pprof's matchesName."""
        return (f"(coalesce(bool_or(l.keep AND l.has_fn AND (regexp_matches(l.fn, ${rx_param}) "
                f"OR regexp_matches(l.file, ${rx_param}))), FALSE) "
                f"OR (any_value(lo.has_map) AND regexp_matches(any_value(lo.mapfile), ${rx_param})))")

    def by_name(self, f: FrameFilters) -> None:
        """pprof's FilterSamplesByName: focus, ignore, hide, show."""
        if all(x is None for x in (f.focus, f.ignore, f.hide, f.show)):
            return
        t = self.t
        params = {"focus": f.focus, "ignore": f.ignore, "hide": f.hide, "show": f.show}
        cols = []
        for name in params:
            if params[name] is not None:
                cols.append(f"{self._loc_matches(name)} AS {name}_m")
                cols.append(f"(any_value(lo.has_map) AND regexp_matches(any_value(lo.mapfile), ${name})) AS {name}_map")
            else:
                cols.append(f"FALSE AS {name}_m")
                cols.append(f"FALSE AS {name}_map")
        used = {k: v for k, v in params.items() if v is not None}
        self._create(f"{t}_m", f"""
            SELECT lo.location_id, {", ".join(cols)}
            FROM {t}_loc lo LEFT JOIN {t}_l l USING (location_id)
            GROUP BY lo.location_id""", used)
        if f.hide is not None:
            self._run(f"""
                UPDATE {t}_l SET keep = FALSE FROM {t}_m m
                WHERE {t}_l.location_id = m.location_id AND {t}_l.keep AND m.hide_m
                  AND (m.hide_map OR ({t}_l.has_fn AND (regexp_matches({t}_l.fn, $hide)
                                                         OR regexp_matches({t}_l.file, $hide))))""",
                      {"hide": f.hide})
        if f.show is not None:
            self._run(f"""
                UPDATE {t}_l SET keep = FALSE FROM {t}_m m
                WHERE {t}_l.location_id = m.location_id AND {t}_l.keep AND NOT m.show_map
                  AND {t}_l.has_fn AND NOT regexp_matches({t}_l.fn, $show)
                  AND NOT regexp_matches({t}_l.file, $show)""", {"show": f.show})
        # A location left without Lines is hidden (a location that had none is hidden by
        # show always, by hide when its mapping matches).
        self._run(f"""
            UPDATE {t}_loc SET hidden = TRUE FROM {t}_m m
            WHERE {t}_loc.location_id = m.location_id
              AND ({"TRUE" if f.show is not None else "m.hide_m"})
              AND NOT EXISTS (SELECT 1 FROM {t}_l l WHERE l.location_id = m.location_id AND l.keep)""", {})
        focus = "TRUE" if f.focus is None else "m.focus_m"
        self._create(f"{t}_s", f"""
            WITH f AS (
                SELECT s.*, CASE WHEN m.ignore_m THEN FALSE WHEN {focus} THEN TRUE END AS fi, lo.hidden
                FROM {t}_s s JOIN {t}_m m USING (location_id) JOIN {t}_loc lo USING (location_id)
            ),
            ok AS (
                SELECT stack_id FROM f GROUP BY stack_id
                HAVING NOT coalesce(bool_or(fi = FALSE), FALSE) AND coalesce(bool_or(fi), FALSE)
            )
            SELECT stack_id, location_id, pos FROM f SEMI JOIN ok USING (stack_id) WHERE NOT hidden""")

    def show_from(self, rx: str) -> None:
        t = self.t
        self._create(f"{t}_sf", f"""
            SELECT lo.location_id, lo.has_map AND regexp_matches(lo.mapfile, $rx) AS map_m,
                   max(l.line_idx) FILTER (WHERE l.keep AND l.has_fn AND (regexp_matches(l.fn, $rx)
                                                                    OR regexp_matches(l.file, $rx))) AS i
            FROM {t}_loc lo LEFT JOIN {t}_l l USING (location_id)
            GROUP BY lo.location_id, lo.has_map, lo.mapfile""", {"rx": rx})
        self._run(f"""
            UPDATE {t}_l SET keep = FALSE FROM {t}_sf m
            WHERE {t}_l.location_id = m.location_id AND NOT m.map_m AND {t}_l.line_idx > m.i""", {})
        self._create(f"{t}_s", f"""
            WITH f AS (
                SELECT s.*, m.map_m OR m.i IS NOT NULL AS shown FROM {t}_s s JOIN {t}_sf m USING (location_id)
            ),
            top AS (SELECT stack_id, max(pos) FILTER (WHERE shown) AS c FROM f GROUP BY stack_id)
            SELECT f.stack_id, f.location_id, f.pos FROM f JOIN top USING (stack_id) WHERE f.pos <= top.c""")

    def prune_from(self, rx: str) -> None:
        t = self.t
        self._create(f"{t}_pf", f"""
            SELECT location_id,
                   min(line_idx) FILTER (WHERE keep AND has_fn AND fn <> ''
                                         AND regexp_matches({simplified("fn")}, $rx)) AS i
            FROM {t}_l GROUP BY location_id""", {"rx": rx})
        self._run(f"""
            UPDATE {t}_l SET keep = FALSE FROM {t}_pf m
            WHERE {t}_l.location_id = m.location_id AND {t}_l.line_idx < m.i""", {})
        self._create(f"{t}_s", f"""
            WITH f AS (
                SELECT s.*, m.i IS NOT NULL AS beneath FROM {t}_s s LEFT JOIN {t}_pf m USING (location_id)
            ),
            leaf AS (SELECT stack_id, min(pos) FILTER (WHERE beneath) AS c FROM f GROUP BY stack_id)
            SELECT f.stack_id, f.location_id, f.pos FROM f JOIN leaf USING (stack_id)
            WHERE leaf.c IS NULL OR f.pos >= leaf.c""")

    def finish_tables(self) -> tuple[str, str]:
        return f"{self.t}_st", f"{self.t}_n"

    # -- 6. nodes -------------------------------------------------------------------------
    def finish(self, granularity: str = "functions") -> tuple[str, str]:
        """({t}_st: stack_id, node_ids, inl, recursive; {t}_n: node_id, name, info).

        A node is pprof's NodeInfo at the granularity (the fields it keeps), ``name``
        its printed name and ``info`` its Go ``%v`` text, pprof's last tie-breaker.
        Every step above cut a stack to a range of its positions, less the hidden
        locations, so the frames are gathered from the stored location lists in bulk
        (Arrow), each location bringing its kept Lines as nodes.
        """
        if granularity not in GRANULARITIES:
            raise PerflabError(f"--granularity must be one of {', '.join(GRANULARITIES)}, not {granularity!r}")
        t = self.t
        function = granularity in ("functions", "filefunctions", "lines", "addresses")
        filename = granularity != "functions"
        line = granularity in ("lines", "addresses")
        address = granularity == "addresses"  # pprof keeps every field (and columns) at this one
        self._clean_filenames()
        fn_name = "l.fn" if function else "''"
        info = f"""
            SELECT lo.location_id, coalesce(l.line_idx, 0) AS line_idx,
                   coalesce(l.line_idx < max(l.line_idx) OVER (PARTITION BY lo.location_id), FALSE) AS inl,
                   CASE WHEN l.has_fn THEN {fn_name} ELSE '' END AS i_name,
                   {"lo.address" if address else "0::UBIGINT"} AS i_address,
                   CASE WHEN l.has_fn AND {"TRUE" if filename else "FALSE"} THEN coalesce(c.clean, '') ELSE '' END
                       AS i_file,
                   CASE WHEN l.has_fn AND {fn_name} = '' THEN coalesce(l.start_line, 0) ELSE 0 END AS i_start,
                   CASE WHEN l.has_fn THEN {"l.line" if line else "0"} ELSE 0 END AS i_line,
                   CASE WHEN l.has_fn THEN {'l."column"' if address else "0"} ELSE 0 END AS i_column,
                   CASE WHEN NOT coalesce(l.has_fn, FALSE) OR {fn_name} = '' THEN lo.mapfile ELSE '' END AS i_objfile
            FROM {t}_loc lo
            LEFT JOIN (SELECT * FROM {t}_l WHERE keep) l USING (location_id)
            LEFT JOIN {t}_clean c ON c.file = l.file
            WHERE NOT lo.hidden AND (l.location_id IS NOT NULL OR lo.nlines = 0)"""
        self._create(f"{t}_lf", info)
        base = ("CASE WHEN rtrim(i_objfile, '/') = '' THEN '/' "
                "ELSE regexp_extract(rtrim(i_objfile, '/'), '[^/]*$') END")
        # pprof's NameComponents: address, function, then file:line[:column], file,
        # [mapping base name] or <unknown>, joined by spaces.
        printed = f"""concat_ws(' ',
            CASE WHEN i_address <> 0 THEN printf('%016x', i_address) END,
            nullif(i_name, ''),
            CASE WHEN i_line <> 0
                 THEN i_file || ':' || i_line || CASE WHEN i_column <> 0 THEN ':' || i_column ELSE '' END
                 WHEN i_file <> '' THEN i_file
                 WHEN i_name <> '' THEN NULL
                 WHEN i_objfile <> '' THEN '[' || {base} || ']'
                 ELSE '<unknown>' END)"""
        go_v = ("'{' || concat_ws(' ', i_name, '', i_address::VARCHAR, i_file, i_start::VARCHAR, i_line::VARCHAR, "
                "i_column::VARCHAR, i_objfile) || '}'")
        keys = "i_name, i_address, i_file, i_start, i_line, i_column, i_objfile"
        self._create(f"{t}_n", f"""
            SELECT (row_number() OVER (ORDER BY info) - 1)::INTEGER AS node_id, {printed} AS name, {go_v} AS info,
                   {keys}
            FROM (SELECT DISTINCT {keys}, {go_v} AS info FROM {t}_lf)""")
        locs = self.con.sql(f"""
            SELECT location_id, list(n.node_id ORDER BY line_idx) AS frames, list(inl ORDER BY line_idx) AS inl
            FROM {t}_lf JOIN {t}_n n USING ({keys}) GROUP BY location_id""").to_arrow_table()
        ranges = self.con.sql(f"""
            SELECT stack_id, min(pos) AS lo, max(pos) AS hi FROM {t}_s GROUP BY stack_id""").to_arrow_table()
        stored = pa.concat_tables([self._stored_stacks(i, sid) for i, sid in enumerate(self.sids)])
        # In slices of stacks: the whole profile's frames at once held ~0.5 GB of numpy and
        # Arrow arrays more at 250k distinct 40-deep stacks (10M frames).
        self._create_from_arrow(f"{t}_st", _gather_frames(locs, ranges.slice(0, _GATHER_STACKS), stored))
        for start in range(_GATHER_STACKS, ranges.num_rows, _GATHER_STACKS):
            # not con.register: DuckDB 2.0 keeps a registered table alive after unregister
            self.con.from_arrow(_gather_frames(locs, ranges.slice(start, _GATHER_STACKS), stored)
                                ).insert_into(f"{t}_st")
        return f"{t}_st", f"{t}_n"

    def _stored_stacks(self, i: int, sid: int) -> pa.Table:
        """Source ``sid``'s stored stacks with this object's stack and location numbers."""
        tbl = self.con.sql(f"SELECT stack_id, location_ids FROM pprof_stacks WHERE source_id = {int(sid)}"
                           ).to_arrow_table()
        ids = self.con.execute(f"SELECT old_id, location_id FROM {self.t}_locmap WHERE src = {i}").fetchnumpy()
        lists = tbl.column("location_ids").combine_chunks()
        new = np.asarray(ids["location_id"], dtype=np.int64)[
            lookup(np.asarray(ids["old_id"], dtype=np.uint64), to_numpy(lists.flatten()).astype(np.uint64))]
        offsets = np.concatenate(([0], np.cumsum(to_numpy(lists.value_lengths()).astype(np.int64))))
        return arrow_table({
            "stack_id": to_arrow((i << 32) | to_numpy(tbl.column("stack_id").combine_chunks()).astype(np.int64)),
            "location_ids": pa.LargeListArray.from_arrays(to_arrow(offsets), to_arrow(new)),
        })

    def _create_from_arrow(self, name: str, table: pa.Table) -> None:
        view = f"{name}_arrow"
        self.con.register(view, table)
        try:
            self._create(name, f"SELECT * FROM {view}")
        finally:
            self.con.unregister(view)

    def _clean_filenames(self) -> None:
        """{t}_clean(file, clean): each function file name as pprof prints it (its
        report's trimPath, then Go's filepath.Clean), computed once per distinct name."""
        files = [r[0] for r in self.con.execute(f"SELECT DISTINCT file FROM {self.t}_l WHERE file <> ''").fetchall()]
        self._create_from_arrow(f"{self.t}_clean", arrow_table({
            "file": to_arrow(files, pl.String),
            "clean": to_arrow([go_clean(trim_path(f)) for f in files], pl.String),
        }))


def trim_path(path: str) -> str:
    """pprof's trimPath with no -trim_path and no -source_path: the prefixes a process
    sees of its own working directory go."""
    for prefix in ("/proc/self/cwd/./", "/proc/self/cwd/"):
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


def go_clean(path: str) -> str:
    """Go's path/filepath.Clean on Unix: one slash between names, no '.' names, '..'
    resolved lexically, no trailing slash; '' becomes '.'."""
    if not path:
        return "."
    rooted = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    text = "/".join(out)
    return ("/" + text) if rooted else (text or ".")


def _gather_frames(locs: pa.Table, ranges: pa.Table, stored: pa.Table) -> pa.Table:
    """The stacks' frames: positions lo..hi (1-based, leaf first) of each stored stack
    that has a range, less the locations ``locs`` does not hold (hidden ones), each
    location expanded into its frames (node ids and inline flags)."""
    stack_ids = to_numpy(ranges.column("stack_id").combine_chunks())
    lo = to_numpy(ranges.column("lo").combine_chunks()).astype(np.int64)
    hi = to_numpy(ranges.column("hi").combine_chunks()).astype(np.int64)
    stored_ids = to_numpy(stored.column("stack_id").combine_chunks())
    lists = stored.column("location_ids").combine_chunks().take(to_arrow(lookup(stored_ids, stack_ids)))
    lengths = to_numpy(lists.value_lengths()).astype(np.int64)
    loc_ids = to_numpy(lists.flatten()).astype(np.int64)
    owner = np.repeat(np.arange(stack_ids.size), lengths)
    pos = np.arange(loc_ids.size) - np.repeat(np.cumsum(lengths) - lengths, lengths) + 1
    loc_pos = lookup(to_numpy(locs.column("location_id").combine_chunks()).astype(np.int64), loc_ids)
    keep = (pos >= lo[owner]) & (pos <= hi[owner]) & (loc_pos >= 0)
    frames = locs.column("frames").combine_chunks().take(to_arrow(loc_pos[keep]))
    inl = locs.column("inl").combine_chunks().take(to_arrow(loc_pos[keep]))
    per_stack = np.bincount(owner[keep], weights=to_numpy(frames.value_lengths()), minlength=stack_ids.size)
    offsets = np.concatenate(([0], np.cumsum(per_stack.astype(np.int64))))
    node_ids = pa.LargeListArray.from_arrays(to_arrow(offsets), frames.flatten())
    return arrow_table({
        "stack_id": to_arrow(stack_ids.astype(np.int64)),
        "node_ids": node_ids,
        "inl": pa.LargeListArray.from_arrays(to_arrow(offsets), inl.flatten()),
        "recursive": recursive_stacks(node_ids),
    })


def build(store: Store, sids: list[int], filters: FrameFilters, granularity: str = "functions") -> Frames | None:
    """The rewritten stacks for these options, or None when pprof would change nothing
    (one source whose stored stacks, named by function at ingest, serve as they are).
    drop_frames/keep_frames are the first profile's, as pprof's merge keeps them."""
    drop_frames, keep_frames = store.con.execute(
        "SELECT drop_frames, keep_frames FROM pprof_profiles WHERE source_id = ?", [sids[0]]
    ).fetchall()[0]
    if (len(sids) == 1 and not drop_frames and not filters.active() and granularity == "functions"
            and _names_are_keys(store, sids[0])):
        return None
    for f in fields(filters):
        check_regexp(store, f.name, getattr(filters, f.name))
    frames = Frames(store, sids)
    try:
        if drop_frames:
            frames.prune(drop_frames, keep_frames or None)
        frames.by_name(filters)
        if filters.show_from is not None:
            frames.show_from(filters.show_from)
        if filters.prune_from is not None:
            frames.prune_from(filters.prune_from)
        frames.finish(granularity)
    except BaseException:
        frames.drop()
        raise
    return frames


def rewritten(store: Store, sids: list[int], filters: FrameFilters | None = None,
              granularity: str = "functions") -> Frames:
    """:func:`build`'s stacks, finished (nodes at ``granularity``, each frame's inline flag)
    even when pprof would change nothing: what the views read."""
    frames = build(store, sids, filters or FrameFilters(), granularity)
    if frames is None:
        frames = Frames(store, sids)
        try:
            frames.finish(granularity)
        except BaseException:
            frames.drop()
            raise
    return frames


def _names_are_keys(store: Store, sid: int) -> bool:
    """Whether a function name alone keys pprof's function nodes here, as at ingest.

    pprof keys a node by more than its printed name: a Line whose function has no name
    is keyed by the full mapping path and the function's start line, so two of them can
    print the same ``[binary]``; such profiles take the rewritten path."""
    row = store.con.execute(
        """SELECT
               (SELECT count(*) FROM pprof_functions WHERE source_id = $sid AND name = '' AND start_line <> 0),
               (SELECT count(DISTINCT filename) - count(DISTINCT regexp_extract(rtrim(filename, '/'), '[^/]*$'))
                FROM pprof_mappings WHERE source_id = $sid AND filename <> '')""",
        {"sid": sid},
    ).fetchall()[0]
    return not any(row)
