"""SIGKILL (what an OOM killer or a CI timeout sends) at three moments of a lab run and of a
gzip ingest: what perflab started dies with it (the parent-death signal) or is stopped by the
next perflab (its lease), its temp dirs go, and the store holds nothing half-written. Ctrl-C
and SIGTERM at the same moments of an ingest: one line, exit 130, nothing left behind."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from perflab import leases
from perflab.store import Store
from tests.conftest import FIXTURES
from tests.helpers import run_cli, store_fingerprint

pytestmark = pytest.mark.slow

DEADLINE_S = 120
# Inflated size of the gzip ingest's input: long enough to catch inflation half-way.
BIG_BYTES = 300_000_000


def _lease_of(pid: int) -> dict[str, Any]:
    path = leases.lease_dir() / f"{pid}.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _wait(what: str, ready: Callable[[], bool], proc: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not ready():
        assert proc.poll() is None, f"perflab ended before {what}: exit {proc.returncode}"
        assert time.monotonic() < deadline, f"never reached: {what}"
        time.sleep(0.01)


def _killed_when(reached: Callable[[dict[str, Any]], bool], what: str, *args: str
                 ) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """`python -m perflab ARGS`, SIGKILLed once its lease shows ``reached``: (the process, the
    lease it left)."""
    proc = subprocess.Popen([sys.executable, "-m", "perflab", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait(what, lambda: reached(_lease_of(proc.pid)), proc)
        lease = _lease_of(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc, lease


def _gone(pid: int, started: float | None, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while leases.same_process(pid, started):
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.Error:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _has_process(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda lease: any(p["name"] == name for p in lease.get("processes", []))


def _postgres_up(lease: dict[str, Any]) -> bool:
    return any(d.get("kind") == "postgres" and d.get("pid") for d in lease.get("dirs", []))


RUN_MOMENTS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "postgres up, no service yet": _postgres_up,
    "the service up": _has_process("service"),
    "k6 running": _has_process("k6"),
}


@pytest.mark.parametrize("moment", list(RUN_MOMENTS))
def test_a_killed_run_is_cleaned_up_by_the_next_perflab(tmp_path: Path, moment: str) -> None:
    store = tmp_path / "s.duckdb"
    proc, lease = _killed_when(RUN_MOMENTS[moment], moment, "--store", str(store), "run", "healthy",
                               "--duration", "30")
    processes = lease["processes"]
    postgres = [d for d in lease["dirs"] if d.get("kind") == "postgres"]
    assert postgres and all(Path(d["path"]).is_dir() for d in postgres), lease
    # THEN perflab's own children (the service, k6) end with it: the parent-death signal
    for p in processes:
        assert _gone(p["pid"], p["started"], within_s=15), p
    # ... but PostgreSQL's postmaster is pg_ctl's child, not perflab's: it runs until the next perflab
    pg = [(int(d["pid"]), d["started"]) for d in postgres if d.get("pid")]
    assert pg and all(leases.same_process(pid, started) for pid, started in pg)
    # WHEN the next perflab runs (any verb)
    out = run_cli("cleanup", store=store)
    assert out.returncode == 0, out.stderr
    assert f"a perflab that was killed (pid {proc.pid}) left things behind: stopped PostgreSQL (pid {pg[0][0]})" \
        in out.stdout, out.stdout
    # THEN the cluster is stopped and its directory gone, and so is the lease
    assert all(_gone(pid, started, within_s=10) for pid, started in pg)
    assert not any(Path(d["path"]).exists() for d in lease["dirs"])
    assert not (leases.lease_dir() / f"{proc.pid}.json").exists()
    assert "nothing left behind" in run_cli("cleanup", store=store).stdout


@pytest.fixture(scope="module")
def big_gzip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = (FIXTURES / "k6" / "main_small.ndjson").read_bytes().splitlines(keepends=True)
    head = b"".join(ln for ln in lines if b'"Point"' not in ln)
    points = b"".join(ln for ln in lines if b'"Point"' in ln)
    path = tmp_path_factory.mktemp("big") / "big.ndjson.gz"
    path.write_bytes(gzip.compress(head + points * (BIG_BYTES // len(points)), compresslevel=1))
    return path


def _inflated(lease: dict[str, Any]) -> int:
    """Bytes inflated so far into the leased scratch folder (0 before the folder is made)."""
    total = 0
    for d in lease.get("dirs", []):
        if d.get("kind") == "scratch":
            for f in Path(d["path"]).glob("*.inflated"):
                try:
                    total += f.stat().st_size
                except OSError:
                    pass
    return total


INGEST_MOMENTS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "scratch folder made": lambda lease: any(d.get("kind") == "scratch" for d in lease.get("dirs", [])),
    "inflating": lambda lease: _inflated(lease) > BIG_BYTES // 3,
    "parsing": lambda lease: _inflated(lease) >= BIG_BYTES * 0.99,
}


@pytest.mark.parametrize("moment", list(INGEST_MOMENTS))
def test_a_killed_gzip_ingest_leaves_no_temp_file_and_no_rows(tmp_path: Path, big_gzip: Path, moment: str) -> None:
    store = tmp_path / "s.duckdb"
    proc, lease = _killed_when(INGEST_MOMENTS[moment], moment, "--store", str(store), "ingest", str(big_gzip))
    scratch = [Path(d["path"]) for d in lease["dirs"] if d.get("kind") == "scratch"]
    assert scratch and all(s.is_dir() for s in scratch)
    # WHEN the next perflab starts (here: listing what is stored)
    out = run_cli("sources", "--json", store=store)
    # THEN it removed the folder (quietly: temp files only), and the killed ingest stored nothing
    assert out.returncode == 0, out.stderr
    assert out.stderr == "", out.stderr
    assert not any(s.exists() for s in scratch)
    assert json.loads(out.stdout) == []
    assert os.path.getsize(big_gzip) > 0


@pytest.mark.parametrize(("moment", "sig"), [("inflating", signal.SIGINT), ("parsing", signal.SIGINT),
                                             ("parsing", signal.SIGTERM)])
def test_an_interrupted_gzip_ingest_is_one_line_130_and_the_store_unchanged(
        tmp_path: Path, big_gzip: Path, moment: str, sig: signal.Signals) -> None:
    # GIVEN a store that already holds a source
    store = tmp_path / "s.duckdb"
    assert run_cli("ingest", str(FIXTURES / "k6" / "main_small.ndjson"), store=store).returncode == 0
    with Store(store, read_only=True) as s:
        before = store_fingerprint(s)
    # WHEN a big gzip ingest gets Ctrl-C (or SIGTERM) while it inflates, or while DuckDB parses
    proc = subprocess.Popen([sys.executable, "-m", "perflab", "--store", str(store), "ingest", str(big_gzip)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait(moment, lambda: INGEST_MOMENTS[moment](_lease_of(proc.pid)), proc)
        lease = _lease_of(proc.pid)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # THEN one line, exit 130, its scratch folder gone with it, and the store as it was
    assert (proc.returncode, err) == (130, "perflab: interrupted\n")
    scratch = [Path(d["path"]) for d in lease["dirs"] if d.get("kind") == "scratch"]
    assert scratch and not any(s.exists() for s in scratch)
    with Store(store, read_only=True) as s:
        assert store_fingerprint(s) == before
