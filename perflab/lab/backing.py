"""What a run has before its service starts: a database, and the processes that serve it.

The runner calls a *setup* inside the run's ExitStack (so whatever it starts is stopped
on every exit path) and gets a :class:`Backing`. A user's target has the database its
``[postgres] dsn`` names, already running (:func:`user_setup`); a lab scenario's setup
starts an ephemeral cluster and seeds it (perflab.lab.sample).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from perflab.errors import PerflabError
from perflab.lab.processes import is_local_host, pid_listening_on
from perflab.lab.target import Target

Say = Callable[[str], None]
PG_DEFAULT_PORT = 5432


@dataclass
class SetupContext:
    stack: ExitStack  # enter what must be stopped when the run ends
    target: Target
    run_dir: Path
    settings: Mapping[str, str]  # the service's settings for this run (variant and --set applied)
    say: Say
    timings: dict[str, float]  # the manifest's timings_s, for the setup's own steps


@dataclass
class Backing:
    dsn: str | None = None  # snapshot pg_stat before and after, sample pg_stat_activity
    postgres_pids: list[int] = field(default_factory=list)  # sampled as the "postgres" role
    service_env: dict[str, str] = field(default_factory=dict)  # for a service perflab starts
    k6_env: dict[str, str] = field(default_factory=dict)
    postgres: dict[str, Any] = field(default_factory=dict)  # the manifest's `postgres`
    versions: dict[str, str] = field(default_factory=dict)
    # The sample service's /debug/vars, saved once at the end (its metrics are scraped from
    # /metrics like any target's).
    final_vars_url: str | None = None


class Setup(Protocol):
    def __call__(self, ctx: SetupContext) -> Backing: ...


def user_setup(ctx: SetupContext) -> Backing:
    """A user's target: its PostgreSQL (if it names one), sampled when it runs on this machine."""
    dsn = ctx.target.postgres_dsn
    if not dsn:
        return Backing()
    host, port = pg_host_port(dsn)
    pids: list[int] = []
    # A Unix socket (host "" or a directory) or a local address: the server is here.
    if not host or host.startswith("/") or is_local_host(host):
        pid = pid_listening_on(port)
        pids = [pid] if pid else []
    if not pids:
        ctx.say(f"PostgreSQL at {redact(dsn)}: no local process found to sample")
    return Backing(dsn=dsn, postgres_pids=pids,
                   postgres={"external": True, "dsn": redact(dsn), "pid": pids[0] if pids else None},
                   versions={"postgres": pg_version(dsn)})


def pg_host_port(dsn: str) -> tuple[str, int]:
    """The host (empty for the default socket) and port a libpq URL or keyword DSN names."""
    import psycopg.conninfo

    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn.replace("postgresql+psycopg://", "postgresql://", 1))
    except psycopg.Error as exc:
        raise PerflabError(f"[postgres] dsn {redact(dsn)}: {str(exc).strip().splitlines()[0]}") from None
    host = str(info.get("host") or "").split(",")[0]
    port = str(info.get("port") or PG_DEFAULT_PORT).split(",")[0]
    return host, int(port)


def pg_version(dsn: str) -> str:
    import psycopg
    import sqlalchemy

    from perflab.ingest.pgstat_live import engine

    eng = engine(dsn)
    try:
        with eng.connect() as conn:
            return str(conn.execute(sqlalchemy.text("SHOW server_version")).scalar_one())
    except (sqlalchemy.exc.SQLAlchemyError, psycopg.Error) as exc:
        raise PerflabError(f"PostgreSQL at {redact(dsn)}: {str(exc).strip().splitlines()[0]}") from None
    finally:
        eng.dispose()


def redact(dsn: str) -> str:
    """The DSN without its password, for messages and the manifest."""
    if "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        netloc, sep, tail = rest.partition("/")
        if "@" in netloc:
            auth, host = netloc.rsplit("@", 1)
            netloc = f"{auth.split(':', 1)[0]}@{host}"
        return f"{scheme}://{netloc}{sep}{tail}"
    return " ".join(p for p in dsn.split() if not p.startswith("password="))


def last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"
