"""Shared test helpers."""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil

from perflab.lab.runner import ingest_run_dir
from perflab.store import Store

T = TypeVar("T")

# The machine is shared (CI measured a 1-min load of 3.6 before a lab test's first run): lab
# tests wait (up to QUIET_WAIT_S) for a second in which the machine's CPU is below
# QUIET_CPU_PCT of all cores, so that other work distorts their measurements less.
QUIET_CPU_PCT = 50.0
QUIET_WAIT_S = 60.0


def wait_for_a_quiet_machine() -> None:
    deadline = time.monotonic() + QUIET_WAIT_S
    while psutil.cpu_percent(interval=1.0) >= QUIET_CPU_PCT and time.monotonic() < deadline:
        pass


def store_fingerprint(store: Store) -> dict[str, tuple[int, str]]:
    """Every table's row count and a hash of its sorted content: equal fingerprints, equal stores."""
    out: dict[str, tuple[int, str]] = {}
    tables = [r[0] for r in store.con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema='main' ORDER BY 1"
    ).fetchall()]
    for t in tables:
        rows = store.con.execute(f'SELECT * FROM "{t}"').fetchall()
        digest = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
        out[t] = (len(rows), digest)
    return out


def load_lab_run(store: Store, folder: Path) -> str:
    """A stored lab run folder into the store as the lab leaves it: manifest, roles, files."""
    manifest = json.loads((folder / "manifest.json").read_text())
    run_id = manifest["run_id"]
    with store.transaction():
        store.ensure_run(run_id, scenario=manifest["scenario"], variant=manifest["variant"], status="complete",
                         manifest=json.dumps(manifest, sort_keys=True))
        store.set_roles(run_id, manifest["roles"])
    ingest_run_dir(store, folder, run_id)
    return run_id


def run_cli(*args: str, store: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `python -m perflab ...` as a user would, capturing stdout/stderr."""
    cmd = [sys.executable, "-m", "perflab"]
    if store is not None:
        cmd += ["--store", str(store)]
    cmd += list(args)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def assert_refused(code: int, stderr: str, path: object, phrase: str) -> None:
    """The bad-input contract: exit 2, one stderr line naming the file and the problem."""
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"perflab: {path}: "), lines[0]
    assert phrase in lines[0], lines[0]
    assert "Traceback" not in stderr


def assert_ingest_refused(store_path: Path, before: dict[str, tuple[int, str]], path: Path, phrase: str,
                          extra: list[str], capsys) -> None:  # type: ignore[no-untyped-def]
    """`perflab ingest` of a bad file, in process for speed (the same main() as `python -m
    perflab`): refused by the contract, and the store exactly as ``before``."""
    from perflab.cli import main

    code = main(["--store", str(store_path), "ingest", *extra, str(path)])
    assert_refused(code, capsys.readouterr().err, path, phrase)
    with Store(store_path) as s:
        assert store_fingerprint(s) == before


def stored(store: Store, ref: object) -> object:
    """A file as the analyses take it: ingested first (once), its source id; anything else as is.

    The analyses read the store only (the CLI and ``perflab.api`` ingest a FILE first);
    tests that hand them fixture paths go through this, as a user's command would."""
    from perflab import ingest
    from perflab.analysis.database import info_sibling

    if isinstance(ref, (str, Path)) and Path(ref).is_file():
        path = Path(ref)
        # The snapshot files read in pairs: a pg_stat_statements file's _info partner (pg-top
        # reads resets from it), a pg_stat_user_indexes file's user_tables partner (index_usage).
        tables = path.with_name(path.name.replace("pg_stat_user_indexes", "pg_stat_user_tables", 1))
        for partner in (info_sibling(path), tables if tables != path and tables.is_file() else None):
            if partner is not None:
                ingest.resolve(store, partner)
        return ingest.resolve(store, ref)
    return ref


def via_files(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn(store, ...)`` as a user reaches it with files: each argument that is an existing
    file is ingested first and handed over as its source id (see :func:`stored`)."""
    @functools.wraps(fn)
    def call(store: Store, *args: object, **kwargs: object) -> T:
        return fn(store, *(stored(store, a) for a in args), **{k: stored(store, v) for k, v in kwargs.items()})
    return call
