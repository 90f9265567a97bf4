"""What a killed perflab leaves behind, found and stopped by the next one.

A `perflab run` starts PostgreSQL, the service, k6 and py-spy, and makes temp dirs. Its
own exit paths stop them all (ProcessGroup, EphemeralPostgres.stop), Ctrl-C included, but
SIGKILL (an OOM killer, a CI timeout) runs none of them. So each perflab process that
starts something keeps a lease: a JSON file in a per-user folder naming itself (pid and
start time) and everything it started that is still running or on disk. A lease whose
owner is gone is an orphan: `reap` stops its processes (each checked by its own start
time, so a reused pid is never signalled), stops its PostgreSQL and removes its dirs.
Every verb reaps first (`perflab cleanup` does only that).

Children that perflab forks directly also get the parent-death signal (Linux), so the
service and k6 end with a killed perflab at once; PostgreSQL's postmaster is pg_ctl's
child, not ours, which is why the lease exists.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Seconds an orphan gets to end on SIGTERM before SIGKILL (a service flushing its buffer).
REAP_GRACE_S = 5.0


def lease_dir() -> Path:
    """The per-user folder of leases (owner-only: it names processes and paths)."""
    d = Path(tempfile.gettempdir()) / f"perflab-leases-{os.getuid()}"
    d.mkdir(mode=0o700, exist_ok=True)
    return d


def process_start_time(pid: int) -> float | None:
    """When ``pid`` started, or None when no process runs under it (a zombie has ended: in a
    container whose init does not reap, an orphan's zombie stays until the container ends)."""
    import psutil  # here: every command reaps, and most find no lease to check (40 ms saved)

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(proc.create_time())
    except psutil.Error:
        return None


def same_process(pid: int, started: float | None) -> bool:
    """Is ``pid`` still the process that had it when it was recorded (not a reused pid)?"""
    now = process_start_time(pid)
    return now is not None and started is not None and abs(now - started) < 0.01


@dataclass
class Lease:
    """This process's lease: written on every change, removed when nothing is left."""

    path: Path
    processes: dict[int, dict[str, Any]] = field(default_factory=dict)
    dirs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_process(self, name: str, pid: int) -> None:
        with self._lock:
            self.processes[pid] = {"name": name, "pid": pid, "started": process_start_time(pid)}
            self._write()

    def drop_process(self, pid: int) -> None:
        with self._lock:
            if self.processes.pop(pid, None) is not None:
                self._write()

    def add_dir(self, path: Path, **how: Any) -> None:
        """A temp dir to remove; ``how`` says how to stop what runs in it (postgres: pg_ctl,
        owner, postmaster pid)."""
        with self._lock:
            self.dirs[str(path)] = {"path": str(path), **how}
            self._write()

    def drop_dir(self, path: Path) -> None:
        with self._lock:
            if self.dirs.pop(str(path), None) is not None:
                self._write()

    def _write(self) -> None:
        if not self.processes and not self.dirs:
            self.path.unlink(missing_ok=True)
            return
        doc = {"owner": os.getpid(), "owner_started": process_start_time(os.getpid()),
               "processes": list(self.processes.values()), "dirs": list(self.dirs.values())}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.path)  # a reader never sees half a lease


_LEASE: Lease | None = None


def lease() -> Lease:
    """This process's lease (one per perflab process)."""
    global _LEASE
    if _LEASE is None or _LEASE.path.parent != lease_dir():
        _LEASE = Lease(lease_dir() / f"{os.getpid()}.json")
    return _LEASE


@dataclass
class Reaped:
    owner: int
    stopped: list[str]
    removed: list[str]

    @property
    def line(self) -> str:
        what = [f"stopped {', '.join(self.stopped)}" if self.stopped else "",
                f"removed {', '.join(self.removed)}" if self.removed else ""]
        return (f"a perflab that was killed (pid {self.owner}) left things behind: "
                + ("; ".join(w for w in what if w) or "nothing still there") + ".")


def reap(say: Callable[[str], None] | None = None) -> list[Reaped]:
    """Stop and remove what dead perflab processes left; one line each through ``say``."""
    out = []
    for path in sorted(lease_dir().glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being written, or not ours to judge
        owner = int(doc.get("owner", 0))
        if owner == os.getpid() or same_process(owner, doc.get("owner_started")):
            continue  # alive: its own exit paths will clean up
        done = Reaped(owner, [], [])
        for p in doc.get("processes", []):
            if _stop(int(p["pid"]), p.get("started")):
                done.stopped.append(f"{p.get('name', 'process')} (pid {p['pid']})")
        for d in doc.get("dirs", []):
            if d.get("kind") == "postgres" and _stop_postgres(d):
                done.stopped.append(f"PostgreSQL (pid {d.get('pid')})")
            if Path(d["path"]).exists():
                shutil.rmtree(d["path"], ignore_errors=True)
                done.removed.append(d["path"])
        path.unlink(missing_ok=True)
        # An ingest's scratch folder alone (a notebook kernel's, killed at its shutdown, leaves
        # one every time) is removed without a word; a lab's leftovers are said.
        scratch_only = not done.stopped and all(d.get("kind") == "scratch" for d in doc.get("dirs", []))
        if say is not None and not scratch_only:
            say(done.line)
        out.append(done)
    return out


def _stop(pid: int, started: float | None) -> bool:
    """SIGTERM, then SIGKILL after REAP_GRACE_S, to the process and its group; False when it
    is gone already (or its pid now belongs to another process)."""
    if not same_process(pid, started):
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        family = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return False
    for p in family:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(family, timeout=REAP_GRACE_S)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=REAP_GRACE_S)
    return True


def _stop_postgres(d: dict[str, Any]) -> bool:
    """An orphaned ephemeral cluster: an immediate shutdown (SIGQUIT to the postmaster, whose
    backends follow it), SIGKILL if it lingers."""
    pid, started = d.get("pid"), d.get("started")
    if pid is None or not same_process(int(pid), started):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(int(pid), signal.SIGQUIT)
    deadline = time.monotonic() + REAP_GRACE_S
    while same_process(int(pid), started) and time.monotonic() < deadline:
        time.sleep(0.05)
    if same_process(int(pid), started):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(pid), signal.SIGKILL)
    return True
