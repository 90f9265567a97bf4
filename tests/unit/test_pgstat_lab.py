"""EphemeralPostgres without starting a server: finding binaries, and PERFLAB_PG_DSN."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perflab.errors import PerflabError
from perflab.lab import postgres as lab_pg
from perflab.lab.postgres import EphemeralPostgres, find_bindir


def _fake_bindir(root: Path, version: str = "pg") -> Path:
    d = root / version / "bin"
    d.mkdir(parents=True)
    for name in ("initdb", "pg_ctl", "postgres"):
        (d / name).write_text("#!/bin/sh\nexit 0\n")
        (d / name).chmod(0o755)
    return d


def test_missing_server_binaries_say_how_to_install_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # GIVEN no initdb on PATH, no pg_config and nothing under /usr/lib/postgresql
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("PERFLAB_PG_BINDIR", raising=False)
    monkeypatch.setattr(lab_pg.glob, "glob", lambda pattern: [])
    # WHEN a cluster is asked for
    with pytest.raises(PerflabError) as err:
        EphemeralPostgres(use_env=False).start()
    # THEN one line names both ways to install them
    message = str(err.value)
    assert "\n" not in message
    assert "apt-get install postgresql" in message and "conda install -c conda-forge postgresql" in message


def test_binaries_are_found_on_path_then_pg_config_then_usr_lib(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    monkeypatch.delenv("PERFLAB_PG_BINDIR", raising=False)
    on_path = _fake_bindir(tmp_path / "a")
    monkeypatch.setenv("PATH", str(on_path))
    assert find_bindir() == on_path.resolve()
    # only versioned directories under /usr/lib/postgresql: the newest complete one wins
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    dirs = [str(_fake_bindir(tmp_path / "lib", v)) for v in ("9", "16", "13")]
    (Path(dirs[1]) / "postgres").unlink()  # 16 lacks the server: not a candidate
    monkeypatch.setattr(lab_pg.glob, "glob", lambda pattern: dirs)
    assert find_bindir() == Path(dirs[2])


def test_perflab_pg_dsn_uses_that_server_and_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFLAB_PG_DSN", "postgresql://app:secret@db.example:6543/shop")
    with EphemeralPostgres() as pg:
        assert pg.external and pg.pid is None and pg.tmpdir is None
        assert pg.dsn == "postgresql+psycopg://app:secret@db.example:6543/shop"
        assert pg.port == 6543
    assert pg.stop_seconds is None  # nothing was stopped
    assert os.environ["PERFLAB_PG_DSN"].endswith("/shop")
