"""A tiny writer of pprof's profile.proto (perftools.profiles.Profile), gzipped as Go serves it.

No protobuf runtime, no protoc: profile.proto uses only varints and length-delimited
fields, so a few helpers write it. Field numbers follow google/pprof's
proto/profile.proto. Conventions kept from Go: string_table[0] is "", ids start at 1,
a sample's location_ids go leaf first, one mapping marked has_functions so tools do
not try to symbolize addresses.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

_U64 = (1 << 64) - 1


def _varint(n: int) -> bytes:
    n &= _U64  # int64 fields encode negatives as two's complement, ten bytes
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _int(field_no: int, value: int) -> bytes:
    """A varint field; 0 is the default and is left out, as proto3 writers do."""
    return _varint(field_no << 3) + _varint(value) if value else b""


def _bytes(field_no: int, payload: bytes) -> bytes:
    return _varint(field_no << 3 | 2) + _varint(len(payload)) + payload


def _packed(field_no: int, values: Iterable[int]) -> bytes:
    body = b"".join(_varint(v) for v in values)
    return _bytes(field_no, body) if body else b""


@dataclass(frozen=True)
class Frame:
    """One stack frame: the function it is in and the line it is at."""

    name: str  # module-qualified, e.g. sample_workload.auth.check_password
    filename: str
    start_line: int
    line: int


@dataclass
class ProfileBuilder:
    sample_types: Sequence[tuple[str, str]]  # e.g. [("samples", "count"), ("cpu", "nanoseconds")]
    period_type: tuple[str, str]
    period: int
    time_nanos: int = 0
    duration_nanos: int = 0
    _strings: dict[str, int] = field(default_factory=lambda: {"": 0})
    _functions: dict[tuple[str, str, int], int] = field(default_factory=dict)
    _locations: dict[tuple[int, int], int] = field(default_factory=dict)
    _samples: dict[tuple[int, ...], list[int]] = field(default_factory=dict)

    def _s(self, text: str) -> int:
        return self._strings.setdefault(text, len(self._strings))

    def _location(self, f: Frame) -> int:
        fkey = (f.name, f.filename, f.start_line)
        fid = self._functions.get(fkey)
        if fid is None:
            fid = self._functions[fkey] = len(self._functions) + 1
        return self._locations.setdefault((fid, f.line), len(self._locations) + 1)

    def add(self, stack_leaf_first: Sequence[Frame], values: Sequence[int]) -> None:
        """Add values to the sample of this stack (identical stacks are merged)."""
        key = tuple(self._location(f) for f in stack_leaf_first)
        acc = self._samples.get(key)
        if acc is None:
            self._samples[key] = list(values)
        else:
            for i, v in enumerate(values):
                acc[i] += v

    def encode(self) -> bytes:
        out = bytearray()
        for typ, unit in self.sample_types:
            out += _bytes(1, _int(1, self._s(typ)) + _int(2, self._s(unit)))
        for locs, values in self._samples.items():
            out += _bytes(2, _packed(1, locs) + _packed(2, values))
        # One mapping for the interpreter; has_functions/filenames/line_numbers = true.
        mapping = _int(1, 1) + _int(5, self._s("python")) + _int(7, 1) + _int(8, 1) + _int(9, 1)
        out += _bytes(3, mapping)
        for (fid, line), lid in self._locations.items():
            out += _bytes(4, _int(1, lid) + _int(2, 1) + _bytes(4, _int(1, fid) + _int(2, line)))
        for (name, filename, start_line), fid in self._functions.items():
            out += _bytes(5, _int(1, fid) + _int(2, self._s(name)) + _int(3, self._s(name))
                          + _int(4, self._s(filename)) + _int(5, start_line))
        period_type = _bytes(11, _int(1, self._s(self.period_type[0])) + _int(2, self._s(self.period_type[1])))
        # The string table goes last: every index above has been handed out by now.
        for text in self._strings:
            out += _bytes(6, text.encode("utf-8"))
        out += _int(9, self.time_nanos) + _int(10, self.duration_nanos) + period_type + _int(12, self.period)
        return bytes(out)

    def encode_gzip(self) -> bytes:
        return gzip.compress(self.encode(), compresslevel=6)
