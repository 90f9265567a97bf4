"""One writer or many readers: a store held by another process is waited for, with a line
naming the holder, and given up on after PERFLAB_LOCK_WAIT seconds with one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perflab.errors import StoreError
from perflab.store import Store
from tests.helpers import run_cli

HOLD = ("import sys, time; from perflab.store import Store; s = Store(sys.argv[1], read_only=sys.argv[2] == 'ro'); "
        "print('held', flush=True); time.sleep(float(sys.argv[3])); s.close()")


def _holder(path: Path, mode: str, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), mode, str(seconds)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_writer_gives_up_after_the_wait_naming_the_holder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.duckdb"
    Store(path).close()
    holder = _holder(path, "rw", 30)
    try:
        monkeypatch.setenv("PERFLAB_LOCK_WAIT", "1")
        t = time.monotonic()
        with pytest.raises(StoreError, match=rf"the store is held by PID {holder.pid} \(python[\d.]*\); gave up "
                                             r"after 1 s"):
            Store(path)
        assert 1 <= time.monotonic() - t < 5
        assert f"is held by PID {holder.pid}" in capsys.readouterr().err  # said while waiting
    finally:
        holder.kill()
        holder.wait()


def test_a_writer_waits_for_the_holder_to_let_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.duckdb"
    Store(path).close()
    holder = _holder(path, "rw", 1.5)
    monkeypatch.setenv("PERFLAB_LOCK_WAIT", "30")
    t = time.monotonic()
    with Store(path) as store:
        assert store.schema_version
    assert time.monotonic() - t >= 0.5  # it did wait, then got the store
    assert holder.wait(10) == 0


def test_readers_share_the_store(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    assert run_cli("ingest", str(Path(__file__).parents[1] / "fixtures" / "k6" / "main_small.ndjson"),
                   store=path).returncode == 0
    holder = _holder(path, "ro", 30)  # e.g. a notebook reading
    try:
        # `sources` and `runs` open the store read-only: they run beside the reader, at once
        for verb in ("sources", "runs"):
            t = time.monotonic()
            out = run_cli(verb, store=path, env={**os.environ, "PERFLAB_LOCK_WAIT": "0"})
            assert out.returncode == 0, out.stderr
            assert time.monotonic() - t < 20
    finally:
        holder.kill()
        holder.wait()


def test_a_bad_wait_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFLAB_LOCK_WAIT", "soon")
    with pytest.raises(StoreError, match="PERFLAB_LOCK_WAIT='soon': not a number of seconds"):
        Store(tmp_path / "s.duckdb")
