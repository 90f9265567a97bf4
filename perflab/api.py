"""The notebook-facing functions of ``import perflab``: files or source ids in, answers out.

The analyses read the store only; here a FILE is ingested first (once), so a user can
hand ``perflab.top`` a path as they would hand it to ``go tool pprof``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from perflab import ingest
from perflab.analysis import database, loadtest, profiles
from perflab.store import Store
from perflab.vocab import K6_KINDS, PGSTAT, PROFILE_KINDS

Ref = str | int | os.PathLike[str]


def top(store: Store, profile: Ref, sample_type: str | int | None = None, limit: int | None = None) -> dict[str, Any]:
    """``go tool pprof -top`` of a profile file or source (dict shaped like ``perflab top --json``)."""
    return profiles.top(store, ingest.resolve(store, profile, PROFILE_KINDS), sample_type=sample_type, limit=limit)


def k6_summary(store: Store, k6_file: Ref, **options: Any) -> dict[str, Any]:
    """k6's end-of-test numbers of a k6 file or source (``perflab k6 --json``)."""
    return loadtest.k6_summary(store, ingest.resolve(store, k6_file, K6_KINDS), **options)


def pg_top(store: Store, before: Ref, after: Ref, order: str = "total", limit: int | None = None) -> dict[str, Any]:
    """Statement deltas between two pg_stat_statements snapshots (``perflab pg-top --json``);
    ``limit`` None or 0 keeps every statement."""
    return database.pg_top(store, pg_snapshot(store, before), pg_snapshot(store, after), order=order,
                           limit=limit or None)


def pg_snapshot(store: Store, ref: Ref, max_decompressed: int | None = None,
                view: str = "pg_stat_statements") -> int:
    """A pg_stat snapshot file or source of ``view``, ingested with its pg_stat_statements_info
    file (the one beside it), which tells pg-top whether the statistics were reset between two."""
    sid = database.snapshot_source(store, ingest.resolve(store, ref, (PGSTAT,), max_decompressed=max_decompressed),
                                   view, label=str(ref))
    sibling = database.info_sibling(Path(str(ref))) if Path(str(ref)).is_file() else None
    if sibling is not None:
        ingest.resolve(store, sibling, (PGSTAT,), max_decompressed=max_decompressed)
    return sid
