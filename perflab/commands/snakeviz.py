"""`perflab snakeviz FILE_OR_SOURCE`: view a cProfile source in snakeviz, on 127.0.0.1 only.

snakeviz serves any path of the machine under /snakeviz/ (a directory listing
included), so it is bound to the loopback address and never to a public one.
It runs in the foreground; Ctrl-C or SIGTERM stops it, and the child process is
stopped whatever ends perflab (even SIGKILL, through the parent-death signal on Linux).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from perflab.analysis.pstats import require_edge_times, write_pstats
from perflab.commands._common import open_store, resolve
from perflab.errors import PerflabError
from perflab.vocab import CPROFILE

NAME = "snakeviz"
HELP = "view a cProfile source in snakeviz (served on 127.0.0.1 only, until Ctrl-C)"

HOST = "127.0.0.1"
# Seconds a stopped snakeviz gets to exit before it is killed: tornado exits at once
# on SIGTERM, so waiting longer only delays the user's shell prompt.
STOP_GRACE = 5.0


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("profile", metavar="FILE_OR_SOURCE", help="a cProfile file (ingested first) or a source id")
    p.add_argument("--port", type=int, help="port to serve on (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="only serve; do not open a browser")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _parent_death_signal() -> Callable[[], None] | None:
    """On Linux, a preexec_fn making the kernel send SIGTERM to the child when perflab
    dies, even by SIGKILL. libc is looked up here, in the parent: the child between
    fork and exec must not import anything."""
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


def run(args: argparse.Namespace) -> int:
    if args.port is not None and not 0 < args.port < 65536:
        raise PerflabError(f"--port {args.port}: not a port number (1-65535)")
    tmpdir = Path(tempfile.mkdtemp(prefix="perflab-snakeviz-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        store = open_store(args)
        try:
            sid = resolve(args, store, args.profile, (CPROFILE,))
            require_edge_times(store, sid, "snakeviz")
            stem = Path(store.source(sid)["path"]).name.split(".")[0] or "profile"
            profile = tmpdir / f"{stem}-source{sid}.prof"
            write_pstats(store, sid, profile)
        finally:
            # Closed before serving: DuckDB locks the file, and snakeviz may run for hours.
            store.close()
        port = args.port or free_port()
        cmd = [sys.executable, "-m", "snakeviz", "-H", HOST, "-p", str(port)]
        if args.no_browser:
            cmd.append("-s")
        cmd.append(str(profile))
        env = dict(os.environ, PYTHONUNBUFFERED="1")  # its URL line must reach a pipe at once
        print(f"perflab: serving source {sid} with snakeviz on {HOST}; Ctrl-C to stop", flush=True)
        proc = subprocess.Popen(
            cmd,
            env=env,
            # Its own session: a terminal's Ctrl-C reaches perflab only, and perflab
            # decides how the child ends (below), the same way as for SIGTERM.
            start_new_session=True,
            preexec_fn=_parent_death_signal(),
        )
        try:
            return proc.wait()
        except KeyboardInterrupt:
            return 0  # Ctrl-C/SIGTERM is how a snakeviz session ends
    finally:
        if proc is not None and proc.poll() is None:
            # A second Ctrl-C while stopping must not leave the child running.
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(ValueError):  # not the main thread: nothing to protect
                    signal.signal(sig, signal.SIG_IGN)
            proc.terminate()
            try:
                proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmpdir, ignore_errors=True)
