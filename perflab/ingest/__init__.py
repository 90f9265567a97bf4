"""Ingest: one module per format, one registry entry each (the papermill pattern).

A format module calls :func:`register` (perflab.ingest._registry) with a :class:`Format`:
a ``detect`` function that looks at the first bytes of the (decompressed) content, and
an ``ingest`` function that writes the file's rows into the store inside the
transaction this module opens. Detection is by content, never by extension
alone; ``kind=`` forces a format.

This module owns what every format shares: missing/empty files, gzip with a
streaming cap on the decompressed size, sha256 de-duplication, the sources row,
one transaction per file, and turning parser errors into one clear line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
from google.protobuf.message import DecodeError

from perflab.errors import InputError, PerflabError
from perflab.ingest import _io
from perflab.ingest._io import INGEST_MEMORY_LIMIT
from perflab.ingest._registry import REGISTRY, Context, Format, IngestResult, Sniff, one_line, register
from perflab.store import Store, file_sha256

# isort: off
# The format modules, imported for their register() calls. Their order is the registry's,
# which breaks ties between detectors of equal priority: keep it.
from perflab.ingest import pprof, cprofile, k6, k6_csv, k6_summary, pgstat, resources, benchwrites
from perflab.ingest import prometheus, prometheus_api, expvar, process_csv, collapsed, speedscope
# isort: on

FORMAT_MODULES = (pprof, cprofile, k6, k6_csv, k6_summary, pgstat, resources, benchwrites,
                  prometheus, prometheus_api, expvar, process_csv, collapsed, speedscope)

__all__ = [
    "REGISTRY", "Context", "Format", "IngestResult", "Sniff", "detect", "formats", "ingest_path", "register",
    "resolve",
]


def formats() -> dict[str, Format]:
    """Every registered format by kind (the bundled ones and any a caller registered)."""
    return REGISTRY


# Errors a parser raises on bad bytes. Anything else is a bug and keeps its traceback.
_INPUT_ERRORS: tuple[type[BaseException], ...] = (
    duckdb.Error,
    ValueError,  # includes json.JSONDecodeError, UnicodeDecodeError
    EOFError,
    zlib.error,
    OSError,
    KeyError,
    IndexError,
    TypeError,
    DecodeError,  # protobuf's, for pprof
)


def detect(path: Path, max_decompressed: int | None = None) -> tuple[str, bool]:
    """Return (kind, gzipped) for a file, or raise InputError."""
    cap = max_decompressed if max_decompressed is not None else _io.max_decompressed_default()
    with _io.without_bom(path, cap) as (readable, _):
        return _detect(readable), _io.sniff(path)[1]


def _detect(path: Path) -> str:
    """The kind of a file's content (read through ``path``: the file or its BOM-free copy)."""
    head, gzipped = _io.sniff(path)
    sniff = Sniff(path=path, head=head, gzipped=gzipped)
    for fmt in sorted(formats().values(), key=lambda f: f.priority):
        try:
            claimed = fmt.detect(sniff)
        except Exception:  # noqa: BLE001 - a detector that chokes on odd bytes just says no
            claimed = False
        if claimed:
            return fmt.kind
    kinds = ", ".join(sorted(formats()))
    raise InputError(path, f"not a format perflab reads ({kinds})")


def ingest_path(
    store: Store,
    path: str | os.PathLike[str],
    kind: str | None = None,
    run_id: str | None = None,
    max_decompressed: int | None = None,
) -> IngestResult:
    """Ingest one file in one transaction; a file whose content is already stored is a no-op."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file")
    if p.is_dir():
        raise InputError(p, "is a directory (give the files in it)")
    size = p.stat().st_size
    if size == 0:
        raise InputError(p, "empty file")
    cap = max_decompressed if max_decompressed is not None else _io.max_decompressed_default()

    if kind is not None and kind not in formats():
        raise PerflabError(f"unknown kind {kind!r}; one of: {', '.join(sorted(formats()))}")
    # A UTF-8 BOM is read past through a copy without it; the source is still the file itself
    # (its path, size and hash).
    with _io.without_bom(p, cap) as (readable, gzipped):
        return _ingest(store, p, readable, gzipped, kind or _detect(readable), run_id, cap, size)


def _ingest(store: Store, p: Path, readable: Path, gzipped: bool, kind: str, run_id: str | None, cap: int,
            size: int) -> IngestResult:
    fmt = formats()[kind]
    # Hash in a thread while the format parses: hashlib and DuckDB both release the
    # GIL, so a large file costs max(hash, parse) rather than their sum.
    hasher = _Hasher(p)
    hasher.start()
    abs_path = str(p.resolve())
    ctx = Context(store=store, source_id=0, run_id=run_id, path=readable, gzipped=gzipped, max_decompressed=cap)
    duplicate: dict[str, Any] | None = None
    try:
        # The limit is set and reset outside the transaction: a statement after a failed one
        # in it would only say "transaction aborted", hiding the format's own message.
        with bounded_memory(store), store.transaction():
            ctx.source_id = store.next_source_id()
            sha = None
            # A small file is hashed before parsing so a re-ingest costs nothing.
            if size <= _io.SMALL_FILE:
                sha = hasher.result()
                duplicate = store.source_by_sha(sha)
            if duplicate is None:
                try:
                    stats = fmt.ingest(ctx)
                except PerflabError:
                    raise
                except _INPUT_ERRORS as exc:
                    raise InputError(p, f"not a valid {kind} file: {one_line(exc)}") from None
                sha = hasher.result()
                duplicate = store.source_by_sha(sha)
                if duplicate is None:
                    meta = json.dumps(ctx.meta, sort_keys=True) if ctx.meta else None
                    store.add_source(ctx.source_id, kind, abs_path, size, sha, run_id, meta)
                    return IngestResult(ctx.source_id, kind, abs_path, True, stats)
            raise _Duplicate()
    except _Duplicate:
        assert duplicate is not None
        return IngestResult(int(duplicate["source_id"]), duplicate["kind"], abs_path, False, {})
    finally:
        ctx.cleanup()
        hasher.join()


def resolve(store: Store, ref: str | int | os.PathLike[str], kinds: tuple[str, ...] | None = None,
            max_decompressed: int | None = None) -> int:
    """FILE_OR_SOURCE → source_id: a stored source's id, or a file, ingested first (once)."""
    text = str(ref)
    path = Path(text)
    if not path.exists():
        return store.find_source(text, kinds)
    kind: str | None = None
    if kinds and path.is_file() and path.stat().st_size:
        # The kind is checked before anything is stored: a verb that refuses a file must
        # not have ingested it. A file already stored (perhaps with --kind) is its stored kind.
        kind, _ = detect(path)
        if kind not in kinds:
            stored = store.source_by_sha(file_sha256(path))
            if stored is None or stored["kind"] not in kinds:
                raise PerflabError(f"{text}: is {stored['kind'] if stored else kind}, "
                                   f"expected {' or '.join(kinds)}")
            return int(stored["source_id"])
    result = ingest_path(store, text, kind=kind, max_decompressed=max_decompressed)  # detected once
    if kinds and result.kind not in kinds:  # a duplicate of a source stored under another kind
        raise PerflabError(f"{text}: is {result.kind}, expected {' or '.join(kinds)}")
    return result.source_id




@contextlib.contextmanager
def bounded_memory(store: Store) -> Iterator[None]:
    """DuckDB held to an ingest's share of memory (INGEST_MEMORY_LIMIT) while inside."""
    con = store.con
    # Spilled to DuckDB's own temp directory (STORE.tmp beside the store, removed by DuckDB):
    # its temp directory cannot be switched once used.
    con.execute(f"SET memory_limit = '{INGEST_MEMORY_LIMIT}'")
    try:
        yield
    finally:
        con.execute("RESET memory_limit")


class _Duplicate(Exception):
    """Raised inside the transaction to roll back a file whose content is already stored."""


class _Hasher(threading.Thread):
    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self._digest: str | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            h = hashlib.sha256()
            with open(self.path, "rb") as fh:
                while chunk := fh.read(4 << 20):
                    h.update(chunk)
            self._digest = h.hexdigest()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self._error = exc

    def result(self) -> str:
        self.join()
        if self._error is not None:
            raise InputError(self.path, f"cannot read: {one_line(self._error)}")
        assert self._digest is not None
        return self._digest
