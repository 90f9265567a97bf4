"""Integration fixtures: one real, ephemeral PostgreSQL cluster per test session, and the
lab's seven runs (tests/integration/lab_runs.py) made once for the tests that read them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from perflab.lab.postgres import EphemeralPostgres, pid_alive, port_listens
from tests.integration.lab_runs import LabRuns, make_lab_runs


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[EphemeralPostgres]:
    """A started cluster (or the PERFLAB_PG_DSN server), torn down after the session.

    Teardown checks what the lab promises: the server process is gone, its port closed
    and its directory removed.
    """
    pg = EphemeralPostgres()
    pg.start()
    tmpdir = pg.tmpdir
    try:
        yield pg
    finally:
        pg.stop()
    if not pg.external:
        assert pg.pid is not None and not pid_alive(pg.pid)
        assert pg.port is not None and not port_listens(pg.port)
        assert tmpdir is not None and not tmpdir.exists()


@pytest.fixture(scope="session")
def lab_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRuns]:
    """Every lab scenario and its fix, 15 s each, in one store (about 4 min, made once)."""
    yield from make_lab_runs(tmp_path_factory.mktemp("lab-runs"))
