"""Real PostgreSQL and real uvicorn subprocesses for the sample service's tests.

One ephemeral cluster per session (perflab.lab.postgres.EphemeralPostgres; importing
perflab is fine in tests, never in sample_workload itself), a fresh database per
service, the service started as users start it (`python -m sample_workload`) on a
free 127.0.0.1 port, and every process stopped at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from perflab.lab.postgres import EphemeralPostgres
from tests.workload.harness import BASE_ENV, ROOT, START_TIMEOUT_S, Databases, Service, free_port


@pytest.fixture(scope="session")
def pg() -> Iterator[EphemeralPostgres]:
    # Durability is not under test; without fsync, creating a database per test and the
    # shutdown checkpoint take milliseconds instead of seconds.
    with EphemeralPostgres(use_env=False, settings={"fsync": "off"}) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def databases(pg: EphemeralPostgres) -> Databases:
    return Databases(pg)


@pytest.fixture(scope="session")
def start_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    started: list[Service] = []

    def start(database_url: str, **env: str) -> Service:
        port = free_port()
        folder = tmp_path_factory.mktemp("svc")
        log = folder / "service.log"
        # Only what a process needs to run: a WRITE_MODE or PG* exported in the shell
        # running the tests must not leak into the service under test.
        full = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
        full.update(BASE_ENV)
        full.update({"DATABASE_URL": database_url, "PORT": str(port), "SPILL_DIR": str(folder)})
        full.update(env)
        with open(log, "wb") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "sample_workload"], cwd=str(ROOT), env=full,
                                    stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        svc = Service(proc, port, log, full)
        started.append(svc)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"service exited with {proc.returncode}:\n{svc.log_text()}")
            try:
                if svc.get("/healthz", timeout=1).status == 200:
                    return svc
            except OSError:
                pass
            if time.monotonic() > deadline:
                svc.stop(signal.SIGKILL)
                raise AssertionError(f"service not ready in {START_TIMEOUT_S} s:\n{svc.log_text()}")
            time.sleep(0.05)

    yield start
    for svc in started:
        svc.stop()
    # Every process this session started has ended.
    assert all(svc.proc.poll() is not None for svc in started)
