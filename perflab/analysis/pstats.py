"""cProfile sources read back as pstats would: top functions, callers, callees, and the
stats dict itself (for pstats, snakeviz and the callgrind export).

Names are ``pstats.func_std_string(key)``: ``file:line(function)``, or
``{built-in method builtins.len}`` for built-ins. Times are in seconds.
"""

from __future__ import annotations

import marshal
import os
import pstats
from typing import Any

import polars as pl

from perflab.errors import PerflabError
from perflab.store import Store

KIND = "cprofile"


def _check(store: Store, source_id: int) -> int:
    src = store.source(int(source_id))
    if src["kind"] != KIND:
        raise PerflabError(f"source {source_id} is {src['kind']}, not a cProfile profile")
    return int(source_id)


def totals(store: Store, source_id: int) -> dict[str, Any]:
    """pstats' own totals: ``total_tt``, ``total_calls``, ``prim_calls``, and the function count."""
    sid = _check(store, source_id)
    df = store.sql(
        "SELECT calls, primitive_calls, tottime FROM cprofile_functions "
        "WHERE source_id = ? AND calls IS NOT NULL ORDER BY func_id",
        [sid],
    )
    # Summed one by one in the file's key order, as pstats does, so the float total is
    # bit-for-bit pstats' (a pairwise or compensated sum could differ in the last digit).
    total_tt = 0.0
    for tt in df["tottime"].to_list():
        total_tt += tt
    return {
        "total_tt": total_tt,
        "total_calls": int(df["calls"].sum()),
        "prim_calls": int(df["primitive_calls"].sum()),
        "functions": df.height,
    }


def cprofile_top(store: Store, source_id: int) -> tuple[float, pl.DataFrame]:
    """(total self time, one row per function: name, flat, cum, calls, primitive_calls).

    Rows are sorted by flat (tottime) descending, then cum descending, then name, as
    ``pstats.Stats.sort_stats("tottime", "cumulative", "name")`` would list them.
    """
    sid = _check(store, source_id)
    df = store.sql(
        "SELECT std_name AS name, tottime AS flat, cumtime AS cum, calls, primitive_calls "
        "FROM cprofile_functions WHERE source_id = ? AND calls IS NOT NULL "
        "ORDER BY flat DESC, cum DESC, name, func_id",
        [sid],
    )
    return totals(store, sid)["total_tt"], df


def _match(store: Store, sid: int, name: str) -> list[int]:
    # Like pstats' restrictions, a name selects every function it fits: the exact
    # std name first, then the bare function name ('fib'), then any std name containing it.
    for where in ("std_name = ?", "name = ?", "contains(std_name, ?)"):
        rows = store.con.execute(
            f"SELECT func_id FROM cprofile_functions WHERE source_id = ? AND {where} ORDER BY func_id",
            [sid, name],
        ).fetchall()
        if rows:
            return [r[0] for r in rows]
    return []


def _edges(store: Store, source_id: int, name: str, this: str, other: str, label: str) -> pl.DataFrame:
    sid = _check(store, source_id)
    ids = _match(store, sid, name)
    return store.sql(
        f"""
        SELECT f.std_name AS function, o.std_name AS {label},
               e.calls, e.primitive_calls, e.tottime, e.cumtime
        FROM cprofile_edges e
        JOIN cprofile_functions f ON f.source_id = e.source_id AND f.func_id = e.{this}
        JOIN cprofile_functions o ON o.source_id = e.source_id AND o.func_id = e.{other}
        WHERE e.source_id = ? AND list_contains(?, e.{this})
        ORDER BY e.{this}, e.cumtime DESC NULLS LAST, e.calls DESC, {label}
        """,
        [sid, ids],
    )


def callers(store: Store, source_id: int, name: str) -> pl.DataFrame:
    """Who called ``name`` (pstats ``print_callers``): function, caller, calls,
    primitive_calls, tottime, cumtime of each caller→function edge."""
    return _edges(store, source_id, name, "callee_id", "caller_id", "caller")


def callees(store: Store, source_id: int, name: str) -> pl.DataFrame:
    """Whom ``name`` called (pstats ``print_callees``): function, callee, calls,
    primitive_calls, tottime, cumtime of each function→callee edge."""
    return _edges(store, source_id, name, "caller_id", "callee_id", "callee")


def to_pstats_dict(store: Store, source_id: int) -> dict[tuple[str, int, str], tuple[Any, ...]]:
    """The source's stats dict as ``pstats.Stats(file).stats`` holds it (equal, key by key)."""
    sid = _check(store, source_id)
    funcs = store.sql(
        "SELECT func_id, file, line, name, calls, primitive_calls, tottime, cumtime "
        "FROM cprofile_functions WHERE source_id = ? ORDER BY func_id",
        [sid],
    )
    keys: dict[int, tuple[str, int, str]] = {}
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = {}
    callers_of: dict[int, dict[tuple[str, int, str], Any]] = {}
    for fid, file, line, name, nc, cc, tt, ct in funcs.iter_rows():
        key = (file, line, name)
        keys[fid] = key
        if nc is not None:  # a key known only as a caller has no entry of its own
            callers_of[fid] = {}
            stats[key] = (cc, nc, tt, ct, callers_of[fid])
    edges = store.sql(
        "SELECT caller_id, callee_id, calls, primitive_calls, tottime, cumtime "
        "FROM cprofile_edges WHERE source_id = ? ORDER BY callee_id, caller_id",
        [sid],
    )
    for caller, callee, nc, cc, tt, ct in edges.iter_rows():
        # The `profile` module stores a bare count per caller; cProfile a 4-tuple.
        callers_of[callee][keys[caller]] = nc if cc is None else (nc, cc, tt, ct)
    return stats


def require_edge_times(store: Store, source_id: int, tool: str) -> None:
    """Refuse a dump of the pure-Python `profile` module for tools that need edge times
    (pyprof2calltree and snakeviz unpack every caller value as a 4-tuple)."""
    sid = _check(store, source_id)
    count_only = store.con.execute(
        "SELECT count(*) FROM cprofile_edges WHERE source_id = ? AND primitive_calls IS NULL", [sid]
    ).fetchall()[0][0]
    if count_only:
        raise PerflabError(
            f"source {sid} was written by the pure-Python `profile` module, whose edges carry "
            f"no times; {tool} needs cProfile's (profile with cProfile instead)"
        )


class _Snapshot:
    """What pstats.Stats accepts besides a file: an object with create_stats() and stats."""

    def __init__(self, stats: dict[Any, Any]) -> None:
        self.stats = stats

    def create_stats(self) -> None:
        pass


def to_stats(store: Store, source_id: int) -> pstats.Stats:
    """A ``pstats.Stats`` of the source, without a file."""
    return pstats.Stats(_Snapshot(to_pstats_dict(store, source_id)))  # type: ignore[arg-type]


def write_pstats(store: Store, source_id: int, path: str | os.PathLike[str]) -> None:
    """Write the source as a pstats file (what ``dump_stats`` writes) that pstats,
    snakeviz and pyprof2calltree read."""
    data = marshal.dumps(to_pstats_dict(store, source_id))
    with open(path, "wb") as fh:
        fh.write(data)


def write_callgrind(store: Store, source_id: int, out: Any) -> int:
    """Write the source in callgrind format (KCachegrind, QCachegrind) through
    pyprof2calltree to the text file ``out``; return the number of functions.

    Costs are nanoseconds: pyprof2calltree writes ``int(seconds * 1e9)`` per function.
    """
    from pyprof2calltree import CalltreeConverter

    require_edge_times(store, source_id, "callgrind")
    stats = to_pstats_dict(store, source_id)
    # pyprof2calltree looks every caller up as a function; give keys known only as
    # callers an empty entry (they cost nothing of their own) rather than fail.
    for value in list(stats.values()):
        for caller in value[4]:
            stats.setdefault(caller, (0, 0, 0.0, 0.0, {}))
    CalltreeConverter(pstats.Stats(_Snapshot(stats))).output(out)  # type: ignore[arg-type]
    return len(stats)
