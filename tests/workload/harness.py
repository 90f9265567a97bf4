"""Helpers for the sample service's tests: the service as a subprocess, a database per test."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from perflab.lab.postgres import EphemeralPostgres

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 15


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    env: dict[str, str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Response:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - loopback
                return Response(r.status, r.read(), dict(r.headers))
        except urllib.error.HTTPError as e:
            return Response(e.code, e.read(), dict(e.headers))

    def get(self, path: str, timeout: float = 30) -> Response:
        return self.request("GET", path, timeout=timeout)

    def post(self, path: str, body: Any) -> Response:
        return self.request("POST", path, body)

    def vars(self) -> dict[str, Any]:
        return self.get("/debug/vars").json()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def stop_gracefully(self) -> bool:
        """SIGTERM, as perflab's lab stops it: True if the lifespan shutdown ran to the end.

        uvicorn re-raises the signal once it has shut down, so the exit status is -SIGTERM."""
        rc = self.stop(signal.SIGTERM)
        return rc in (0, -signal.SIGTERM) and "Application shutdown complete." in self.log_text()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Databases:
    pg: EphemeralPostgres
    made: list[str] = field(default_factory=list)

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.pg.libpq_dsn.replace(f"dbname={self.pg.database}", "dbname=postgres"),
                               autocommit=True)

    def new(self) -> str:
        """A fresh empty database; returns its SQLAlchemy URL."""
        name = f"wl{len(self.made) + 1}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return self.pg.dsn.rsplit("/", 1)[0] + "/" + name

    def connect(self, url: str) -> psycopg.Connection[Any]:
        name = url.rsplit("/", 1)[1]
        return psycopg.connect(self.pg.libpq_dsn.replace(f"dbname={self.pg.database}", f"dbname={name}"),
                               autocommit=True)

    def scalar(self, url: str, sql: str) -> Any:
        with self.connect(url) as conn:
            row = conn.execute(sql).fetchone()
            return row[0] if row else None


# Small and fast unless a test says otherwise: cost 4 is bcrypt's minimum (~1 ms).
BASE_ENV = {
    "SEED": "1",
    "SEED_USERS": "200",
    "SEED_RECORDS_PER_USER": "5",
    "BCRYPT_COST": "4",
    "LOG_LEVEL": "info",
}


