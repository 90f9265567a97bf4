"""Every process a run starts is stopped when the run ends, whatever the exit path.

Children are started in their own session (start_new_session) so a Ctrl-C in the
terminal reaches perflab only; perflab then stops them in reverse start order, each
politely first (SIGTERM: the service flushes its write buffer) and by force after a
grace period, together with anything they forked.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import psutil

from perflab.lab.target import is_loopback
from perflab.leases import lease

GRACE_S = 10.0  # the service's shutdown flush of a full buffer takes well under this


class ProcessGroup:
    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen[Any]]] = []

    def start(self, name: str, cmd: Sequence[str], env: dict[str, str] | None = None,
              cwd: str | Path | None = None, log: Path | None = None) -> subprocess.Popen[Any]:
        with contextlib.ExitStack() as stack:
            out: IO[Any] | int = subprocess.DEVNULL
            if log is not None:
                log.parent.mkdir(parents=True, exist_ok=True)
                out = stack.enter_context(open(log, "ab"))  # the child keeps its own descriptor
            proc = subprocess.Popen(list(cmd), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=parent_death_signal())
        self.adopt(name, proc)
        return proc

    def adopt(self, name: str, proc: subprocess.Popen[Any]) -> None:
        """Track a process started elsewhere (k6, started by the load generator)."""
        self._procs.append((name, proc))
        lease().add_process(name, proc.pid)

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self._procs if p.poll() is None}

    def stop(self, name: str) -> None:
        for n, p in self._procs:
            if n == name:
                stop_process(p)

    def stop_all(self) -> None:
        for _, p in reversed(self._procs):
            stop_process(p)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def stop_process(proc: subprocess.Popen[Any], grace_s: float = GRACE_S) -> None:
    if proc.poll() is not None:
        lease().drop_process(proc.pid)
        return
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the whole group
    except (ProcessLookupError, PermissionError):
        proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait()
    # Anything that left the group (double-forked) goes too.
    for d in descendants:
        with contextlib.suppress(psutil.Error):
            d.kill()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and any(_alive(d) for d in descendants):
        time.sleep(0.05)
    lease().drop_process(proc.pid)


def parent_death_signal() -> Callable[[], None] | None:
    """On Linux, a preexec_fn making the kernel send SIGTERM to the child when perflab
    dies, even by SIGKILL. libc is looked up here, in the parent: the child between
    fork and exec must not import anything. The signal follows the *thread* that started
    the child: start children from a thread that outlives them (the main thread, or one
    that waits for the child)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    PR_SET_PDEATHSIG = 1

    def set_signal() -> None:  # pragma: no cover - runs in the child
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_signal


def is_local_host(host: str) -> bool:
    """A name or address of this machine: loopback, or an address of one of its interfaces."""
    if is_loopback(host):
        return True
    try:
        addrs = {str(info[4][0]).split("%")[0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    mine = {a.address.split("%")[0] for nics in psutil.net_if_addrs().values() for a in nics}
    return bool(addrs) and addrs <= mine


def pid_listening_on(port: int) -> int | None:
    """The process that listens on a local TCP port, or None (nothing listens, or the
    listener belongs to a user whose sockets this one cannot see).

    A pre-forking server's workers share their parent's socket: the topmost of the
    listeners is returned, and a role's samples include its descendants anyway.
    """
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return None
    pids = {c.pid for c in conns
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid}
    for pid in sorted(pids):
        try:
            if psutil.Process(pid).ppid() not in pids:
                return pid
        except psutil.Error:
            continue
    return None


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
