"""The profile.proto message classes, built from a descriptor written in Python.

There is no protoc on the machines perflab targets, and generated ``_pb2`` files
pin a protobuf runtime version; building the FileDescriptorProto here keeps the
dependency to the ``protobuf`` package alone, and parsing still runs in its C
(upb) backend. Field numbers and types follow google/pprof's proto/profile.proto
(``perftools.profiles``); keep them identical so any pprof file reads the same.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "perftools.profiles"

_F = descriptor_pb2.FieldDescriptorProto
_INT64 = _F.TYPE_INT64
_UINT64 = _F.TYPE_UINT64
_BOOL = _F.TYPE_BOOL
_MESSAGE = _F.TYPE_MESSAGE
_OPT = _F.LABEL_OPTIONAL
_REP = _F.LABEL_REPEATED

# (message, [(field name, number, type, label, message type name or None)])
_MESSAGES: list[tuple[str, list[tuple[str, int, int, int, str | None]]]] = [
    ("Profile", [
        ("sample_type", 1, _MESSAGE, _REP, "ValueType"),
        ("sample", 2, _MESSAGE, _REP, "Sample"),
        ("mapping", 3, _MESSAGE, _REP, "Mapping"),
        ("location", 4, _MESSAGE, _REP, "Location"),
        ("function", 5, _MESSAGE, _REP, "Function"),
        ("string_table", 6, _F.TYPE_STRING, _REP, None),
        ("drop_frames", 7, _INT64, _OPT, None),
        ("keep_frames", 8, _INT64, _OPT, None),
        ("time_nanos", 9, _INT64, _OPT, None),
        ("duration_nanos", 10, _INT64, _OPT, None),
        ("period_type", 11, _MESSAGE, _OPT, "ValueType"),
        ("period", 12, _INT64, _OPT, None),
        ("comment", 13, _INT64, _REP, None),
        ("default_sample_type", 14, _INT64, _OPT, None),
        ("doc_url", 15, _INT64, _OPT, None),
    ]),
    ("ValueType", [
        ("type", 1, _INT64, _OPT, None),
        ("unit", 2, _INT64, _OPT, None),
    ]),
    ("Sample", [
        ("location_id", 1, _UINT64, _REP, None),
        ("value", 2, _INT64, _REP, None),
        ("label", 3, _MESSAGE, _REP, "Label"),
    ]),
    ("Label", [
        ("key", 1, _INT64, _OPT, None),
        ("str", 2, _INT64, _OPT, None),
        ("num", 3, _INT64, _OPT, None),
        ("num_unit", 4, _INT64, _OPT, None),
    ]),
    ("Mapping", [
        ("id", 1, _UINT64, _OPT, None),
        ("memory_start", 2, _UINT64, _OPT, None),
        ("memory_limit", 3, _UINT64, _OPT, None),
        ("file_offset", 4, _UINT64, _OPT, None),
        ("filename", 5, _INT64, _OPT, None),
        ("build_id", 6, _INT64, _OPT, None),
        ("has_functions", 7, _BOOL, _OPT, None),
        ("has_filenames", 8, _BOOL, _OPT, None),
        ("has_line_numbers", 9, _BOOL, _OPT, None),
        ("has_inline_frames", 10, _BOOL, _OPT, None),
    ]),
    ("Location", [
        ("id", 1, _UINT64, _OPT, None),
        ("mapping_id", 2, _UINT64, _OPT, None),
        ("address", 3, _UINT64, _OPT, None),
        ("line", 4, _MESSAGE, _REP, "Line"),
        ("is_folded", 5, _BOOL, _OPT, None),
    ]),
    ("Line", [
        ("function_id", 1, _UINT64, _OPT, None),
        ("line", 2, _INT64, _OPT, None),
        ("column", 3, _INT64, _OPT, None),
    ]),
    ("Function", [
        ("id", 1, _UINT64, _OPT, None),
        ("name", 2, _INT64, _OPT, None),
        ("system_name", 3, _INT64, _OPT, None),
        ("filename", 4, _INT64, _OPT, None),
        ("start_line", 5, _INT64, _OPT, None),
    ]),
]


# The same wire format seen with each sample left undecoded: parsing a Profile then
# makes no Python object per sample (perflab.ingest.pprof joins and re-parses them).
_MESSAGES.append((
    "ProfileSampleBytes",
    [("sample", 2, _F.TYPE_BYTES, _REP, None) if f[0] == "sample" else f for f in _MESSAGES[0][1]],
))
# ... and with the string table as bytes: a proto3 ``string`` must be valid UTF-8, so the
# upb parser refuses a profile whose function names are not, though pprof (Go strings are
# bytes) reads it. Parsed only when the UTF-8 parse fails, so valid files pay nothing.
_MESSAGES.append((
    "ProfileRawStrings",
    [("string_table", 6, _F.TYPE_BYTES, _REP, None) if f[0] == "string_table" else f
     for f in _MESSAGES[-1][1]],
))


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="perflab/profile.proto", package=_PACKAGE, syntax="proto3"
    )
    for msg_name, fields in _MESSAGES:
        msg = fdp.message_type.add(name=msg_name)
        for name, number, ftype, label, type_name in fields:
            field = msg.field.add(name=name, number=number, type=ftype, label=label)
            if type_name is not None:
                field.type_name = f".{_PACKAGE}.{type_name}"
    return fdp


# A private pool: another library registering its own perftools.profiles must not clash.
_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file_descriptor())


# Any: message classes made at run time from a descriptor have fields no type checker knows.
def _cls(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


Profile = _cls("Profile")
ValueType = _cls("ValueType")
Sample = _cls("Sample")
Label = _cls("Label")
Mapping = _cls("Mapping")
Location = _cls("Location")
Line = _cls("Line")
Function = _cls("Function")
ProfileSampleBytes = _cls("ProfileSampleBytes")
ProfileRawStrings = _cls("ProfileRawStrings")
