"""pprof detection: which bytes are a profile.proto, and which are a legacy pprof format.

A profile.proto has no magic number, so the head is walked as protobuf: every top-level
field must be a Profile field of the right wire type whose content parses. Legacy pprof
formats (gperftools binary CPU, text heapz/contentionz/threadz, Go text heap and count
profiles) are recognised too, so that ingest refuses them with a pointer to
``go tool pprof -proto`` instead of calling them "not a format perflab reads".
"""

from __future__ import annotations

import re

from google.protobuf.message import DecodeError

from perflab.ingest._registry import Sniff
from perflab.ingest.pprof_proto import _F, _MESSAGES, Function, Location, Mapping, Sample, ValueType

LEGACY_MESSAGE = "legacy pprof format; convert it with `go tool pprof -proto`"

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


def _varint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
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


def is_legacy(head: bytes) -> bool:
    """Whether the head is one of the legacy pprof formats (refused, with LEGACY_MESSAGE)."""
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
                # A string table entry is any bytes: pprof reads names that are not UTF-8.
            fields += 1
    except IndexError:
        pass  # the head ends inside a varint
    except DecodeError:
        return False
    return fields > 0


def _wire_types() -> dict[str, dict[int, tuple[frozenset[int], str | None]]]:
    """Per message of profile.proto: field number → (wire types it may come in, message type)."""
    schema: dict[str, dict[int, tuple[frozenset[int], str | None]]] = {}
    for message, fields in _MESSAGES:
        schema[message] = {}
        for _, number, ftype, label, type_name in fields:
            if type_name is not None or ftype in (_F.TYPE_STRING, _F.TYPE_BYTES):
                wires = frozenset({2})
            else:  # a number: repeated ones come packed (2) or one varint each (0)
                wires = frozenset({0, 2}) if label == _F.LABEL_REPEATED else frozenset({0})
            schema[message][number] = (wires, type_name)
    return schema


def _shaped(buf: memoryview, message: str, schema: dict[str, dict[int, tuple[frozenset[int], str | None]]],
            depth: int = 0) -> bool:
    fields = schema[message]
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        known = fields.get(number)
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                return False
            body = buf[pos:pos + length]
            pos += length
            if known is not None and known[1] is not None and not _shaped(body, known[1], schema, depth + 1):
                return False
            if known is not None and known[1] is None and 0 in known[0]:
                inner = 0  # packed varints: the body must be whole varints
                while inner < len(body):
                    _, inner = _varint(body, inner)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            return False  # groups (3, 4) and 6, 7: never in profile.proto
        if known is not None and wire not in known[0]:
            return False
    return pos == end


def profile_shaped(data: bytes | bytearray) -> bool:
    """Whether every field of the whole message, at every depth, has the wire type
    profile.proto gives it (fields profile.proto does not name are let through, as pprof
    does). Protobuf parsers keep a field of the wrong wire type as an unknown field, so a
    message of another kind (perf's PerfDataProto, say) parses as a Profile; it fails this.
    A walk in Python over every byte: only for files that already fail a profile's checks.
    """
    try:
        return _shaped(memoryview(data), "Profile", _wire_types())
    except IndexError:
        return False


def detect(sniff: Sniff) -> bool:
    """The registry's detector: a profile.proto, or a legacy format ingest will refuse."""
    return is_legacy(sniff.head) or _looks_like_profile(sniff.head)
