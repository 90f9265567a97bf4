"""cProfile / pstats dumps: what ``cProfile.Profile.dump_stats``, ``python -m cProfile -o``
and ``pstats.Stats.dump_stats`` write.

The file is one ``marshal``-ed dict::

    {(file, line, name): (cc, nc, tt, ct, {caller_key: (nc, cc, tt, ct), ...}), ...}

cc counts primitive calls (not made from inside the same function), nc every call,
tt the time spent in the function itself, ct the time including its callees. The
pure-Python ``profile`` module writes the same dict with plain call counts as the
caller values; pstats reads both, and so does this module.

Why not ``marshal.loads``: it runs no code, but it allocates what the header of a
tuple or long claims before reading the items, so the 6 bytes ``{(\\xff\\xff\\xff\\x7f``
make it fill 16 GiB of memory (measured: 53 s, 16 GiB RSS on CPython 3.11). The
reader below accepts the subset of marshal a pstats file uses, caps tuple sizes,
nesting and integer widths, and so never allocates more than a small multiple of
the input. It returns exactly what ``marshal.loads`` returns for every pstats file
(tests compare the two on real dumps and on generated dicts in every marshal version).
"""

from __future__ import annotations

import math
import struct
from typing import Any

import pyarrow as pa

from perflab.errors import InputError
from perflab.ingest._registry import Context, Format, Sniff, register
from perflab.vocab import CPROFILE

Key = tuple[str, int, str]
Stats = dict[Key, tuple[Any, ...]]

# The deepest container in a pstats dict is a caller's key or 4-tuple, at depth 4:
# stats dict > value 5-tuple > callers dict > tuple. Anything deeper is not pstats.
MAX_DEPTH = 4
# The widest tuple in a pstats dict is the 5-tuple value; a larger claimed size is
# either another format or a header crafted to make the reader allocate.
MAX_TUPLE = 5
# Five 15-bit digits hold 75 bits, more than the BIGINT (int64) the store keeps.
MAX_LONG_DIGITS = 5
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

_FLAG_REF = 0x80
# marshal type codes (CPython Python/marshal.c).
_NULL, _INT, _LONG, _FLOAT, _BINARY_FLOAT = 0x30, 0x69, 0x6C, 0x66, 0x67
_REF, _TUPLE, _SMALL_TUPLE, _DICT = 0x72, 0x28, 0x29, 0x7B
_UNICODE, _INTERNED = 0x75, 0x74
_ASCII, _ASCII_INTERNED, _SHORT_ASCII, _SHORT_ASCII_INTERNED = 0x61, 0x41, 0x7A, 0x5A
_BYTES = 0x73  # Python 2's str: a pstats file written by Python 2
_STRING_CODES = frozenset(
    {_UNICODE, _INTERNED, _ASCII, _ASCII_INTERNED, _SHORT_ASCII, _SHORT_ASCII_INTERNED, _BYTES}
)
_NAMES = {
    0x4E: "None", 0x46: "False", 0x54: "True", 0x53: "StopIteration", 0x2E: "Ellipsis",
    0x78: "complex", 0x79: "complex", 0x5B: "list", 0x3C: "set", 0x3E: "frozenset",
    0x63: "code object", 0x3F: "unknown object", _BYTES: "bytes", 0x49: "int64",
}

_I32 = struct.Struct("<i")
_F64 = struct.Struct("<d")
_IN_PROGRESS = object()  # a ref slot whose container is still being read


class PstatsError(ValueError):
    """The bytes are not a pstats dump; the message says where and why."""


class _Reader:
    """A marshal reader for the types a pstats dict is made of, and nothing more."""

    __slots__ = ("data", "pos", "end", "refs")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.refs: list[Any] = []

    def fail(self, at: int, problem: str) -> PstatsError:
        return PstatsError(f"at byte {at}: {problem}")

    def take(self, n: int) -> bytes:
        pos = self.pos
        if n > self.end - pos:
            raise self.fail(pos, f"truncated (needs {n} more bytes, {self.end - pos} left)")
        self.pos = pos + n
        return self.data[pos : pos + n]

    def i32(self) -> int:
        pos = self.pos
        if self.end - pos < 4:
            raise self.fail(pos, "truncated (needs 4 more bytes)")
        self.pos = pos + 4
        value: int = _I32.unpack_from(self.data, pos)[0]
        return value

    def obj(self, depth: int) -> Any:
        """One object; returns _NULL_MARK for the end-of-dict marker."""
        at = self.pos
        if at >= self.end:
            raise self.fail(at, "truncated (the data ends where an object should start)")
        byte = self.data[at]
        self.pos = at + 1
        code = byte & ~_FLAG_REF
        slot = -1
        if byte & _FLAG_REF:
            # Containers take their ref index before their items (CPython's R_REF order).
            slot = len(self.refs)
            self.refs.append(_IN_PROGRESS)

        if code == _REF:
            n = self.i32()
            if not 0 <= n < len(self.refs):
                raise self.fail(at, f"reference {n} to an object not read yet")
            value = self.refs[n]
            if value is _IN_PROGRESS:
                raise self.fail(at, "reference to a container from inside itself")
            return value
        if code in (_SMALL_TUPLE, _TUPLE):
            n = self.take(1)[0] if code == _SMALL_TUPLE else self.i32()
            if not 0 <= n <= MAX_TUPLE:
                raise self.fail(at, f"a tuple of {n} items (pstats tuples have at most {MAX_TUPLE})")
            if depth >= MAX_DEPTH:
                raise self.fail(at, "containers nested deeper than a pstats dict")
            items = []
            for _ in range(n):
                item = self.obj(depth + 1)
                if item is _NULL_MARK:
                    raise self.fail(self.pos - 1, "end-of-dict marker inside a tuple")
                items.append(item)
            value = tuple(items)
        elif code == _BINARY_FLOAT:
            value = _F64.unpack(self.take(8))[0]
        elif code == _INT:
            value = self.i32()
        elif code in (_SHORT_ASCII, _SHORT_ASCII_INTERNED):
            value = self.take(self.take(1)[0]).decode("latin-1")
        elif code in (_ASCII, _ASCII_INTERNED):
            value = self.take(self._size(at)).decode("latin-1")
        elif code in (_UNICODE, _INTERNED):
            raw = self.take(self._size(at))
            try:
                value = raw.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError as exc:
                raise self.fail(at, f"a string that is not UTF-8 ({exc.reason})") from None
        elif code == _DICT:
            if depth >= MAX_DEPTH:
                raise self.fail(at, "containers nested deeper than a pstats dict")
            value = {}
            while True:
                key = self.obj(depth + 1)
                if key is _NULL_MARK:
                    break
                item = self.obj(depth + 1)
                if item is _NULL_MARK:
                    raise self.fail(self.pos - 1, "a dict key without a value")
                try:
                    value[key] = item
                except TypeError:
                    raise self.fail(at, "a dict key that cannot be hashed") from None
        elif code == _LONG:
            n = self.i32()
            ndigits = abs(n)
            if ndigits > MAX_LONG_DIGITS:
                raise self.fail(at, f"an integer of {ndigits} 15-bit digits (the limit is 64 bits)")
            raw = self.take(2 * ndigits)
            value = 0
            for i in range(ndigits - 1, -1, -1):
                digit = raw[2 * i] | (raw[2 * i + 1] << 8)
                if digit >= 1 << 15:
                    raise self.fail(at, "an integer digit out of range")
                if i == ndigits - 1 and digit == 0:
                    raise self.fail(at, "an unnormalized integer")
                value = (value << 15) | digit
            if n < 0:
                value = -value
        elif code == _FLOAT:
            text = self.take(self.take(1)[0])
            try:
                value = float(text.decode("ascii"))
            except (UnicodeDecodeError, ValueError):
                raise self.fail(at, f"a float written as {text[:20]!r}") from None
        elif code == _NULL:
            return _NULL_MARK
        else:
            what = _NAMES.get(code, f"type code {byte:#04x}")
            raise self.fail(at, f"a marshal {what}, which a pstats file never holds")
        if slot >= 0:
            self.refs[slot] = value
        return value

    def _size(self, at: int) -> int:
        n = self.i32()
        if n < 0:
            raise self.fail(at, f"a negative length {n}")
        return n


_NULL_MARK = object()


def read_marshal(data: bytes) -> Any:
    """marshal.loads for the subset of marshal a pstats file is made of, with bounded memory."""
    reader = _Reader(data)
    value = reader.obj(0)
    if value is _NULL_MARK:
        raise reader.fail(0, "an end-of-dict marker where the dict should start")
    if reader.pos != reader.end:
        raise reader.fail(reader.pos, f"{reader.end - reader.pos} bytes after the end of the dict")
    return value


def _is_int(x: object) -> bool:
    return type(x) is int and INT64_MIN <= x <= INT64_MAX


def _is_time(x: object) -> bool:
    # cProfile writes floats; a dict built by hand may hold ints, which pstats sums alike.
    return (type(x) is float and math.isfinite(x)) or _is_int(x)


def _is_key(k: object) -> bool:
    return (
        type(k) is tuple
        and len(k) == 3
        and type(k[0]) is str
        and _is_int(k[1])
        and type(k[2]) is str
    )


def _why_not_times(values: tuple[Any, ...]) -> str:
    bad = [v for v in values if type(v) is float and not math.isfinite(v)]
    return f" (a time of {bad[0]} is no time)" if bad else ""


def _show(x: object) -> str:
    text = repr(x)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_text(k: Key) -> bool:
    # marshal keeps lone surrogates (surrogatepass); the store is UTF-8 and no real
    # file or function name holds one, so such a key is refused rather than mangled.
    try:
        k[0].encode("utf-8")
        k[2].encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate(stats: Any) -> Stats:
    """Check the pstats shape and return the dict; PstatsError names the first bad entry."""
    if type(stats) is not dict:
        raise PstatsError(f"the file holds a {type(stats).__name__}, not a pstats dict")
    if not stats:
        raise PstatsError("an empty profile (no functions; pstats refuses it too)")
    for key, value in stats.items():
        if not _is_key(key):
            raise PstatsError(f"function key {_show(key)} is not (file, line, name)")
        if not _is_text(key):
            raise PstatsError(f"function key {_show(key)} is not valid UTF-8 text")
        if not (
            type(value) is tuple
            and len(value) == 5
            and _is_int(value[0])
            and _is_int(value[1])
            and _is_time(value[2])
            and _is_time(value[3])
            and type(value[4]) is dict
        ):
            raise PstatsError(
                f"{_std_name(key)}: value {_show(value)} is not "
                "(primitive calls, calls, tottime, cumtime, callers)"
                + (_why_not_times(value[2:4]) if type(value) is tuple else "")
            )
        for caller, edge in value[4].items():
            if not _is_key(caller):
                raise PstatsError(f"{_std_name(key)}: caller key {_show(caller)} is not (file, line, name)")
            if not _is_text(caller):
                raise PstatsError(f"{_std_name(key)}: caller key {_show(caller)} is not valid UTF-8 text")
            if _is_int(edge):
                continue  # the `profile` module: a call count only
            if not (
                type(edge) is tuple
                and len(edge) == 4
                and _is_int(edge[0])
                and _is_int(edge[1])
                and _is_time(edge[2])
                and _is_time(edge[3])
            ):
                raise PstatsError(
                    f"{_std_name(key)}: caller {_std_name(caller)} has {_show(edge)}, "
                    "not (calls, primitive calls, tottime, cumtime)"
                    + (_why_not_times(edge[2:4]) if type(edge) is tuple else "")
                )
    return stats


def load_pstats(data: bytes | bytearray) -> Stats:
    """The stats dict of a pstats dump, equal to what ``pstats.Stats(file).stats`` holds."""
    return validate(read_marshal(bytes(data)))  # dumps are small: the reader wants bytes


def _std_name(key: Key) -> str:
    # pstats.func_std_string, inlined so a malformed key cannot make it raise.
    path, line, name = key
    if path == "~" and line == 0:
        # Built-ins: cProfile's key is ('~', 0, '<built-in method builtins.len>').
        if name.startswith("<") and name.endswith(">"):
            return f"{{{name[1:-1]}}}"
        return name
    return f"{path}:{line:d}({name})"



def detect(sniff: Sniff) -> bool:
    """A marshal dict whose first key is a tuple of three items starting with a string.

    JSON also starts with '{', but its next byte is '"', '}' or whitespace, never a
    marshal tuple code, so k6 summaries and NDJSON are not claimed. An empty dict
    ('{0') is claimed so its ingest can say precisely why it is refused.
    """
    head = sniff.head
    if len(head) < 2 or head[0] & ~_FLAG_REF != _DICT:
        return False
    if head[1] == _NULL:
        return len(head) == 2
    second = head[1] & ~_FLAG_REF
    if second == _SMALL_TUPLE:
        return len(head) > 3 and head[2] == 3 and head[3] & ~_FLAG_REF in _STRING_CODES
    if second == _TUPLE:
        return (
            len(head) > 6
            and head[2:6] == b"\x03\x00\x00\x00"
            and head[6] & ~_FLAG_REF in _STRING_CODES
        )
    return False


FUNCTION_SCHEMA = pa.schema(
    [
        ("func_id", pa.int32()),
        ("file", pa.string()),
        ("line", pa.int64()),
        ("name", pa.string()),
        ("std_name", pa.string()),
        ("calls", pa.int64()),
        ("primitive_calls", pa.int64()),
        ("tottime", pa.float64()),
        ("cumtime", pa.float64()),
    ]
)
EDGE_SCHEMA = pa.schema(
    [
        ("caller_id", pa.int32()),
        ("callee_id", pa.int32()),
        ("calls", pa.int64()),
        ("primitive_calls", pa.int64()),
        ("tottime", pa.float64()),
        ("cumtime", pa.float64()),
    ]
)


def to_arrow(stats: Stats) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    """Function and edge tables of a validated stats dict, and facts for sources.meta."""
    ids: dict[Key, int] = {key: i for i, key in enumerate(stats)}
    # Keys pstats knows only as callers (hand-merged dicts can hold them) get ids after
    # the listed ones, so the listed ones keep the file's order.
    for value in stats.values():
        for caller in value[4]:
            if caller not in ids:
                ids[caller] = len(ids)
    listed = len(stats)
    keys = list(ids)
    f_calls: list[int | None] = [None] * len(keys)
    f_prim: list[int | None] = [None] * len(keys)
    f_tt: list[float | None] = [None] * len(keys)
    f_ct: list[float | None] = [None] * len(keys)
    e_caller: list[int] = []
    e_callee: list[int] = []
    e_calls: list[int] = []
    e_prim: list[int | None] = []
    e_tt: list[float | None] = []
    e_ct: list[float | None] = []
    count_only = 0
    for i, (cc, nc, tt, ct, callers) in enumerate(stats.values()):
        f_calls[i], f_prim[i], f_tt[i], f_ct[i] = nc, cc, tt, ct
        for caller, edge in callers.items():
            e_caller.append(ids[caller])
            e_callee.append(i)
            if type(edge) is int:
                count_only += 1
                e_calls.append(edge)
                e_prim.append(None)
                e_tt.append(None)
                e_ct.append(None)
            else:
                e_calls.append(edge[0])
                e_prim.append(edge[1])
                e_tt.append(edge[2])
                e_ct.append(edge[3])
    functions = pa.table(
        [
            pa.array(range(len(keys)), pa.int32()),
            pa.array([k[0] for k in keys], pa.string()),
            pa.array([k[1] for k in keys], pa.int64()),
            pa.array([k[2] for k in keys], pa.string()),
            pa.array([_std_name(k) for k in keys], pa.string()),
            pa.array(f_calls, pa.int64()),
            pa.array(f_prim, pa.int64()),
            pa.array(f_tt, pa.float64()),
            pa.array(f_ct, pa.float64()),
        ],
        schema=FUNCTION_SCHEMA,
    )
    edges = pa.table(
        [
            pa.array(e_caller, pa.int32()),
            pa.array(e_callee, pa.int32()),
            pa.array(e_calls, pa.int64()),
            pa.array(e_prim, pa.int64()),
            pa.array(e_tt, pa.float64()),
            pa.array(e_ct, pa.float64()),
        ],
        schema=EDGE_SCHEMA,
    )
    meta = {
        "functions": listed,
        "caller_only_functions": len(keys) - listed,
        "edges": len(e_caller),
        # 'profile' = the pure-Python module, whose edges carry a call count only.
        "profiler": "profile" if count_only and count_only == len(e_caller) else "cProfile",
    }
    if count_only and count_only != len(e_caller):
        meta["profiler"] = "mixed"
    return functions, edges, meta


def _ingest(ctx: Context) -> dict[str, Any]:
    try:
        stats = load_pstats(ctx.read_bytes())
    except PstatsError as exc:
        raise InputError(ctx.path, f"not a valid cprofile file: {exc}") from None
    functions, edges, meta = to_arrow(stats)
    ctx.meta.update(meta)
    con = ctx.con
    # One INSERT per table over the Arrow data; the views are unregistered even on error.
    con.register("_cprofile_functions_in", functions)
    con.register("_cprofile_edges_in", edges)
    try:
        con.execute(
            "INSERT INTO cprofile_functions SELECT ?, ?, func_id, file, line, name, std_name, "
            "calls, primitive_calls, tottime, cumtime FROM _cprofile_functions_in",
            [ctx.source_id, ctx.run_id],
        )
        con.execute(
            "INSERT INTO cprofile_edges SELECT ?, ?, caller_id, callee_id, calls, "
            "primitive_calls, tottime, cumtime FROM _cprofile_edges_in",
            [ctx.source_id, ctx.run_id],
        )
    finally:
        con.unregister("_cprofile_functions_in")
        con.unregister("_cprofile_edges_in")
    return {"functions": meta["functions"], "edges": meta["edges"]}


register(
    Format(
        kind=CPROFILE,
        description="cProfile/profile pstats dump (marshal), as written by dump_stats or python -m cProfile -o",
        detect=detect,
        ingest=_ingest,
        # Early: the check is cheap and certain (JSON can never follow '{' with a marshal
        # tuple code, see detect()), and text detectors need not guess at binary bytes.
        priority=30,
    )
)
