"""An ephemeral PostgreSQL cluster from the machine's own server binaries.

``with EphemeralPostgres() as pg:`` runs initdb into a temporary directory, starts a
server that listens on a free 127.0.0.1 port and on a Unix socket inside that
directory only, with pg_stat_statements preloaded (track=all) and track_io_timing on,
creates a database with the extension, and on *every* way out of the block (normal
exit, exception, Ctrl-C) stops the server and removes the directory.

As root, initdb refuses to run, so the cluster then belongs to the ``postgres`` user:
the directory is chowned to it and initdb/pg_ctl run under its uid.

With ``PERFLAB_PG_DSN`` set, that existing server is used instead and nothing is
started or stopped.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

from perflab.errors import PerflabError
from perflab.leases import lease, process_start_time

SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
INSTALL_HINT = ("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; install them with "
                "`apt-get install postgresql` or `conda install -c conda-forge postgresql`, "
                "or set PERFLAB_PG_DSN to use an existing server")
DATABASE = "perflab"
SUPERUSER = "postgres"
# pg_ctl -w waits this long for start/stop; a cold start on a loaded 2-core VM takes ~1 s.
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
# After SIGKILL the postmaster's exit is reaped by init; wait this long for it to vanish.
KILL_WAIT_S = 10
# A free port can be taken by someone else between our probe and the server's bind.
START_ATTEMPTS = 3

SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "shared_preload_libraries": "'pg_stat_statements'",
    "pg_stat_statements.track": "all",
    "track_io_timing": "on",
    "fsync": "on",
    "max_connections": "50",
    "log_min_messages": "warning",
}


def find_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres (newest version wins), or raise."""
    candidates: list[Path] = []
    env = os.environ.get("PERFLAB_PG_BINDIR")
    if env:
        candidates.append(Path(env))
    which = shutil.which("initdb")
    if which:
        candidates.append(Path(which).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
    candidates += sorted((Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
                         key=_version_key, reverse=True)
    for d in candidates:
        if all(os.access(d / b, os.X_OK) for b in SERVER_BINARIES):
            return d
    raise PerflabError(INSTALL_HINT)


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", path.parent.name)) or (0,)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_listens(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) counts as gone: it holds no port or files.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


class EphemeralPostgres:
    """A throw-away PostgreSQL server. Attributes once started: ``dsn`` (SQLAlchemy URL,
    ``postgresql+psycopg://``), ``libpq_dsn`` (``host=… port=…`` for psql/psycopg),
    ``port``, ``pid`` (the postmaster; None for an external PERFLAB_PG_DSN server),
    ``datadir``, ``socket_dir``; ``start_seconds``/``stop_seconds`` as measured."""

    def __init__(self, database: str = DATABASE, settings: dict[str, str] | None = None,
                 use_env: bool = True) -> None:
        self.database = database
        self.settings = {**SERVER_SETTINGS, **(settings or {})}
        self.use_env = use_env
        self.dsn = ""
        self.libpq_dsn = ""
        self.port: int | None = None
        self.pid: int | None = None
        self.external = False
        self.tmpdir: Path | None = None
        self.start_seconds: float | None = None
        self.stop_seconds: float | None = None
        self._bindir: Path | None = None
        self._password = ""
        self._finalizer: weakref.finalize[..., EphemeralPostgres] | None = None

    # -- paths ------------------------------------------------------------------------
    @property
    def workdir(self) -> Path:
        """The cluster's temp dir; only while started (stop() removes it and sets tmpdir None)."""
        if self.tmpdir is None:
            raise PerflabError("the ephemeral PostgreSQL is not started")
        return self.tmpdir

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.workdir / "sock"

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> EphemeralPostgres:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> EphemeralPostgres:
        env_dsn = os.environ.get("PERFLAB_PG_DSN") if self.use_env else None
        if env_dsn:
            self._use_external(env_dsn)
            return self
        t0 = time.perf_counter()
        self._bindir = find_bindir()
        try:
            self._make_dirs()
            self._initdb()
            for attempt in range(START_ATTEMPTS):
                self.port = free_port()
                if self._start_server():
                    break
                if attempt == START_ATTEMPTS - 1:
                    raise PerflabError(f"PostgreSQL did not start: {self._log_tail()}")
            self._create_database()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.perf_counter() - t0
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown, then SIGKILL) and remove the directory. Idempotent."""
        if self.external or self.tmpdir is None:
            return
        t0 = time.perf_counter()
        try:
            pid = self.pid or self._read_pid()
            if pid is not None and pid_alive(pid):
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    self._run([str(self._bin("pg_ctl")), "stop", "-D", str(self.datadir), "-m", "fast",
                               "-w", "-t", str(STOP_TIMEOUT_S)], check=False, timeout=STOP_TIMEOUT_S + 10)
                if pid_alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    deadline = time.monotonic() + KILL_WAIT_S
                    while pid_alive(pid) and time.monotonic() < deadline:
                        time.sleep(0.05)
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            lease().drop_dir(self.tmpdir)
            self.tmpdir = None
            if self._finalizer is not None:
                self._finalizer.detach()
                self._finalizer = None
            self.stop_seconds = time.perf_counter() - t0

    # -- steps ------------------------------------------------------------------------------
    def _use_external(self, dsn: str) -> None:
        self.external = True
        if "://" in dsn:
            scheme, rest = dsn.split("://", 1)
            self.dsn = "postgresql+psycopg://" + rest
            parts = urlsplit("postgresql://" + rest)
            self.port = parts.port or 5432
            self.libpq_dsn = "postgresql://" + rest
        else:
            self.libpq_dsn = dsn
            self.dsn = dsn  # a keyword DSN; perflab.ingest.pgstat accepts both forms
            m = re.search(r"\bport=(\d+)", dsn)
            self.port = int(m.group(1)) if m else 5432

    def _owner(self) -> pwd.struct_passwd | None:
        """The user the cluster runs as when we are root (initdb refuses root)."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SUPERUSER)
        except KeyError:
            raise PerflabError("running as root, and initdb refuses root: create a 'postgres' "
                               "user (useradd postgres) or run as a normal user") from None

    def _make_dirs(self) -> None:
        self.tmpdir = Path(tempfile.mkdtemp(prefix="perflab-pg-"))
        lease().add_dir(self.tmpdir, kind="postgres")  # a SIGKILLed perflab's next run removes it
        # Registered at once, so even a crash between here and __exit__ removes the cluster.
        self._finalizer = weakref.finalize(self, _cleanup, str(self.tmpdir), self._bin("pg_ctl"),
                                           self._owner())
        self.socket_dir.mkdir(mode=0o700)
        self._password = secrets.token_hex(16)
        (self.tmpdir / "pwfile").write_text(self._password + "\n")
        owner = self._owner()
        if owner is not None:
            for p in (self.tmpdir, self.socket_dir, self.tmpdir / "pwfile"):
                os.chown(p, owner.pw_uid, owner.pw_gid)

    def _bin(self, name: str) -> Path:
        assert self._bindir is not None
        return self._bindir / name

    def _run(self, cmd: list[str], check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        owner = self._owner()
        kwargs: dict[str, Any] = {}
        if owner is not None:
            kwargs.update(user=owner.pw_uid, group=owner.pw_gid, extra_groups=[])
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        # stdin/stdout never stay connected to us: the postmaster pg_ctl forks would keep a
        # captured pipe open and make this call wait for the server's whole life.
        out = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, timeout=timeout, env=env,
                             cwd=str(self.tmpdir), **kwargs)
        if check and out.returncode != 0:
            first = (out.stderr.strip().splitlines() or [f"exit code {out.returncode}"])[-1]
            raise PerflabError(f"{Path(cmd[0]).name} failed: {first}")
        return out

    def _initdb(self) -> None:
        # --no-sync only skips initdb's own final fsync of a directory we delete anyway;
        # the running server keeps fsync=on.
        self._run([str(self._bin("initdb")), "-D", str(self.datadir), "-U", SUPERUSER,
                   "--auth-local=trust", "--auth-host=scram-sha-256",
                   f"--pwfile={self.workdir / 'pwfile'}", "-E", "UTF8", "--no-locale", "--no-sync"])
        conf = self.datadir / "postgresql.conf"
        lines = [f"{k} = {v}" for k, v in self.settings.items()]
        lines.append(f"unix_socket_directories = '{self.socket_dir}'")
        with open(conf, "a", encoding="utf-8") as fh:
            fh.write("\n# perflab ephemeral cluster\n" + "\n".join(lines) + "\n")

    def _start_server(self) -> bool:
        assert self.port is not None
        log = self.workdir / "server.log"
        out = self._run([str(self._bin("pg_ctl")), "start", "-D", str(self.datadir), "-l", str(log),
                         "-w", "-t", str(START_TIMEOUT_S), "-o", f"-p {self.port}"],
                        check=False, timeout=START_TIMEOUT_S + 10)
        if out.returncode != 0:
            return False
        self.pid = self._read_pid()
        if self.pid is not None:
            # The postmaster is pg_ctl's child, not ours: no parent-death signal reaches it.
            lease().add_dir(self.workdir, kind="postgres", pid=self.pid, started=process_start_time(self.pid))
        self.libpq_dsn = (f"host=127.0.0.1 port={self.port} dbname={self.database} "
                          f"user={SUPERUSER} password={self._password}")
        self.dsn = (f"postgresql+psycopg://{SUPERUSER}:{quote(self._password, safe='')}"
                    f"@127.0.0.1:{self.port}/{self.database}")
        return True

    def _read_pid(self) -> int | None:
        if self.tmpdir is None:
            return None
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
        return None

    def _create_database(self) -> None:
        import psycopg

        admin = self.libpq_dsn.replace(f"dbname={self.database}", "dbname=postgres")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        with psycopg.connect(self.libpq_dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def _log_tail(self) -> str:
        if self.tmpdir is None:
            return "no server log"
        with contextlib.suppress(OSError):
            lines = (self.tmpdir / "server.log").read_text().strip().splitlines()
            return lines[-1] if lines else "no server log"
        return "no server log"


def _cleanup(tmpdir: str, pg_ctl: Path, owner: pwd.struct_passwd | None) -> None:
    """Last resort when an EphemeralPostgres is dropped without stop() (e.g. interpreter exit)."""
    datadir = Path(tmpdir) / "data"
    if (datadir / "postmaster.pid").exists():
        kwargs: dict[str, Any] = {}
        if owner is not None:
            kwargs.update(user=owner.pw_uid, group=owner.pw_gid, extra_groups=[])
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run([str(pg_ctl), "stop", "-D", str(datadir), "-m", "immediate", "-w"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=STOP_TIMEOUT_S, **kwargs)
    shutil.rmtree(tmpdir, ignore_errors=True)
