"""`perflab snakeviz FILE_OR_SOURCE`: view a cProfile source in snakeviz, on 127.0.0.1 only.

snakeviz's own server shows any path of the machine (directory listings included) to
anyone who reaches its port, so perflab runs snakeviz's handlers in its own server
(perflab.lab.snakeviz_server): that one profile only, to a browser holding a random
token, on the loopback address. It runs in the foreground; Ctrl-C or SIGTERM stops it
(exit 130), and the child is stopped whatever ends perflab (even SIGKILL, through the
parent-death signal on Linux).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import webbrowser
from pathlib import Path
from urllib.parse import quote

from perflab.analysis.pstats import require_edge_times, write_pstats
from perflab.commands import HELPS
from perflab.commands._common import open_store, resolve
from perflab.errors import PerflabError
from perflab.lab.postgres import free_port, port_listens
from perflab.lab.processes import parent_death_signal
from perflab.lab.snakeviz_server import TOKEN_ENV
from perflab.vocab import CPROFILE

NAME = "snakeviz"
HELP = HELPS[NAME]

HOST = "127.0.0.1"
# Seconds the server gets to listen before perflab gives up (it imports tornado and snakeviz).
START_TIMEOUT = 30.0
# Seconds a stopped snakeviz gets to exit before it is killed: tornado exits at once
# on SIGTERM, so waiting longer only delays the user's shell prompt.
STOP_GRACE = 5.0


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("profile", metavar="FILE_OR_SOURCE", help="a cProfile file (ingested first) or a source id")
    p.add_argument("--port", type=int, help="port to serve on (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="only serve; do not open a browser")


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
        token = secrets.token_urlsafe(24)
        cmd = [sys.executable, "-m", "perflab.lab.snakeviz_server", str(profile), str(port)]
        proc = subprocess.Popen(
            cmd,
            env=dict(os.environ, **{TOKEN_ENV: token}),
            # Its own session: a terminal's Ctrl-C reaches perflab only, and perflab
            # decides how the child ends (below), the same way as for SIGTERM.
            start_new_session=True,
            preexec_fn=parent_death_signal(),
        )
        # polars installs its own SIGINT handler, with SA_RESTART: the wait below would never
        # return to Python on Ctrl-C. Python's own handler interrupts it.
        with contextlib.suppress(ValueError):  # only the main thread may; elsewhere no Ctrl-C arrives
            signal.signal(signal.SIGINT, signal.default_int_handler)
        _wait_listening(proc, port)
        url = f"http://{HOST}:{port}/snakeviz/{quote(str(profile), safe='')}?token={token}"
        print(f"perflab: serving source {sid} with snakeviz on {HOST} (only with this link's token); "
              f"Ctrl-C to stop\n{url}", flush=True)
        if not args.no_browser:
            webbrowser.open(url)
        code = proc.wait()
        if code:
            raise PerflabError(f"snakeviz's server ended with exit code {code}")
        return 0
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


def _wait_listening(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not port_listens(port):
        if proc.poll() is not None:
            raise PerflabError(f"snakeviz's server did not start (exit code {proc.returncode})")
        if time.monotonic() > deadline:
            raise PerflabError(f"snakeviz's server did not listen on {HOST}:{port} within {START_TIMEOUT:g} s")
        time.sleep(0.1)
