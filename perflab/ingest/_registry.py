"""The format registry: what a format module registers and what its functions are handed.

A format module calls :func:`register` with a :class:`Format`: a ``detect`` function that
looks at a :class:`Sniff` (the first bytes of the decompressed content) and an ``ingest``
function that writes the file's rows through a :class:`Context`. perflab.ingest imports every
format module once and runs detection and the transaction around ``ingest``; this module
imports none of them, so a format module depends on the registry and never the reverse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from perflab.ingest import _io
from perflab.store import Store


@dataclass
class Sniff:
    """What detection may look at: the first bytes of the decompressed content."""

    path: Path
    head: bytes
    gzipped: bool

    @property
    def text_head(self) -> str:
        return self.head.decode("utf-8", errors="replace")


@dataclass
class Context:
    """Handed to a format's ``ingest``: where to write and how to read the file."""

    store: Store
    source_id: int
    run_id: str | None
    path: Path
    gzipped: bool
    max_decompressed: int
    meta: dict[str, Any] = field(default_factory=dict)  # stored in sources.meta
    _plain: Path | None = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        return self.store.con

    def read_bytes(self, cap: int | None = None) -> bytes | bytearray:
        """The whole decompressed content (for formats parsed in memory, such as pprof), at
        most ``cap`` bytes (a format's own limit) or the global cap."""
        limit = self.max_decompressed if cap is None else min(cap, self.max_decompressed)
        return _io.read_all(self.path, self.gzipped, limit)

    def plain_path(self) -> Path:
        """A path to the uncompressed content, for DuckDB's bulk readers.

        Plain files are read in place; gzip is inflated to a temporary file in a
        stream, checking the cap as it goes (never inflate first, then check).
        """
        if not self.gzipped:
            return self.path
        if self._plain is None:
            self._plain = _io.inflate_to_temp(self.path, self.max_decompressed)
        return self._plain

    def cleanup(self) -> None:
        if self._plain is not None:
            self._plain.unlink(missing_ok=True)
            self._plain = None


@dataclass
class Format:
    kind: str
    description: str
    detect: Callable[[Sniff], bool]
    ingest: Callable[[Context], dict[str, Any]]  # returns counts to report (rows, samples, ...)
    priority: int = 100  # lower is tried first; content checks that are cheap and certain go first


@dataclass
class IngestResult:
    source_id: int
    kind: str
    path: str
    new: bool
    stats: dict[str, Any]

    @property
    def message(self) -> str:
        if not self.new:
            return f"{self.path}: already in the store as source {self.source_id} ({self.kind}); nothing done"
        counts = ", ".join(f"{v} {k}" for k, v in self.stats.items())
        return f"{self.path}: source {self.source_id} ({self.kind}){': ' + counts if counts else ''}"


REGISTRY: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    REGISTRY[fmt.kind] = fmt
    return fmt


def one_line(exc: BaseException) -> str:
    """An exception as one line of at most 300 characters, for an InputError's message."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:300]
