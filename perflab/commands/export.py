"""`perflab export FORMAT SOURCE`: write a stored source in another tool's format."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perflab.analysis.profile_export import StackProfile, speedscope_document, stack_profile
from perflab.analysis.pstats import write_callgrind
from perflab.commands import HELPS
from perflab.commands._common import open_store, resolve
from perflab.errors import PerflabError
from perflab.store import Store
from perflab.vocab import CPROFILE, PROFILE_KINDS

NAME = "export"
HELP = HELPS[NAME]


def _callgrind(store: Store, ref: str, out: Any, args: argparse.Namespace) -> str:
    sid = store.find_source(ref, kinds=(CPROFILE,))
    n = write_callgrind(store, sid, out)
    return f"callgrind of source {sid} ({n} functions)"


def pprof_bytes(profile: StackProfile) -> bytes:
    """profile.proto, gzipped: one function and one location per name, one sample per stack."""
    from perflab.ingest.pprof_proto import Profile

    prof = Profile()
    table = {"": 0}  # string → its index in the string table, in order of first use

    def s(text: str) -> int:
        return table.setdefault(text, len(table))

    for stype, unit in profile.sample_types:
        prof.sample_type.add(type=s(stype), unit=s(unit))
    prof.default_sample_type = s(profile.sample_types[profile.default_index][0])
    if profile.period_type:
        prof.period_type.type, prof.period_type.unit = s(profile.period_type[0]), s(profile.period_type[1])
    prof.period, prof.duration_nanos, prof.time_nanos = profile.period, profile.duration_nanos, profile.time_nanos
    prof.comment.extend(s(c) for c in profile.comments)
    for i, name in enumerate(profile.names, 1):
        prof.function.add(id=i, name=s(name), system_name=s(name))
        prof.location.add(id=i).line.add(function_id=i)
    for stack, values in zip(profile.stacks, profile.values, strict=True):
        prof.sample.add(location_id=[n + 1 for n in stack], value=values)
    prof.string_table.extend(table)
    return gzip.compress(prof.SerializeToString(), mtime=0)


def _pprof(store: Store, ref: str, out: Any, args: argparse.Namespace) -> str:
    profile = stack_profile(store, ref)
    out.write(pprof_bytes(profile))
    return f"pprof of source {profile.source_id} ({len(profile.stacks)} stacks, {len(profile.names)} functions)"


def _speedscope(store: Store, ref: str, out: Any, args: argparse.Namespace) -> str:
    profile = stack_profile(store, ref)
    doc = speedscope_document(profile, f"perflab source {profile.source_id}", args.sample_type)
    json.dump(doc, out, separators=(",", ":"))
    out.write("\n")
    return f"speedscope of source {profile.source_id} ({len(doc['profiles'][0]['samples'])} stacks)"


# format -> (help, writer(store, SOURCE, file, args) -> summary line, writes bytes, source kinds).
# A new export format is one more entry here.
EXPORTERS: dict[str, tuple[str, Callable[[Store, str, Any, argparse.Namespace], str], bool, tuple[str, ...]]] = {
    "callgrind": ("a cProfile source as a callgrind file (KCachegrind, QCachegrind)", _callgrind, False,
                  (CPROFILE,)),
    "pprof": ("a profile (pprof, collapsed stacks, speedscope, cProfile) as profile.proto, gzipped "
              "(go tool pprof, any pprof UI)", _pprof, True, PROFILE_KINDS),
    "speedscope": ("a profile as a speedscope JSON file (one sampled profile of one sample type)",
                   _speedscope, False, PROFILE_KINDS),
}


def prepare_parser(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="export_format", metavar="FORMAT")
    sub.required = True
    for name, (help_text, *_) in EXPORTERS.items():
        q = sub.add_parser(name, help=help_text, description=help_text)
        q.add_argument("source", metavar="SOURCE", help="a source id, or a file (ingested first)")
        q.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
        if name == "speedscope":
            q.add_argument("--sample-type", metavar="TYPE",
                           help="the sample type to write (name or index; default: the profile's own)")


def run(args: argparse.Namespace) -> int:
    _, writer, binary, kinds = EXPORTERS[args.export_format]
    store = open_store(args)
    try:
        args.source = str(resolve(args, store, args.source, kinds))
        if args.output in (None, "-"):
            writer(store, args.source, sys.stdout.buffer if binary else sys.stdout, args)
            return 0
        target = Path(args.output)
        # Written beside the target and renamed, so a failure never leaves half a file.
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
        except OSError as exc:
            raise PerflabError(f"{target}: cannot write: {exc.strerror or exc}") from None
        try:
            with (open(fd, "wb") if binary else open(fd, "w", encoding="utf-8", newline="\n")) as out:
                summary = writer(store, args.source, out, args)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a plain file is what users expect
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        print(f"{target}: {summary}")
        return 0
    finally:
        store.close()
