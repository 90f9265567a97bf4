"""Bombs are refused early and in bounded memory: a pprof bomb never holds more than the
profile limit (it peaked at 8.15 GiB RSS before), a k6 bomb writes at most ~1 GiB to the
scratch folder before the ratio gives it away, and neither leaves a row or a temp file."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perflab.ingest import _io
from perflab.ingest.pprof import MAX_PROFILE_BYTES

pytestmark = pytest.mark.slow

GiB = 1 << 30


def _zeros_bomb(path: Path, inflated: int, prefix: bytes = b"") -> Path:
    """A multi-member gzip of ``inflated`` bytes: one 64 MiB member of zeros, repeated."""
    member_bytes = 64 << 20
    member = gzip.compress(b"\0" * member_bytes, compresslevel=9)
    with open(path, "wb") as fh:
        if prefix:
            fh.write(gzip.compress(prefix))
        for _ in range(inflated // member_bytes):
            fh.write(member)
    return path


def _run_measured(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, int]:
    """(exit code, stderr, peak RSS in bytes) of `python -m perflab ARGS` (wait4's maxrss)."""
    proc = subprocess.Popen([sys.executable, "-m", "perflab", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err, usage.ru_maxrss * 1024


def test_a_pprof_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    bomb = _zeros_bomb(tmp_path / "cpu.pb.gz", GiB)
    assert bomb.stat().st_size < 10 << 20
    code, err, rss = _run_measured("--store", str(tmp_path / "s.duckdb"), "ingest", "--kind", "pprof", str(bomb))
    print(f"pprof bomb of 1 GiB: exit {code}, peak RSS {rss / 2**20:.0f} MiB")
    assert code == 2 and err.strip() == f"perflab: {bomb}: decompresses to more than {MAX_PROFILE_BYTES} bytes " \
                                         "(the cap; raise it with PERFLAB_MAX_DECOMPRESSED or --max-decompressed)"
    assert rss < GiB


def test_a_k6_bomb_is_refused_by_its_ratio_before_the_cap(tmp_path: Path) -> None:
    head = (Path(__file__).parents[1] / "fixtures" / "k6" / "main_small.ndjson").read_bytes()[:4000]
    bomb = _zeros_bomb(tmp_path / "k6.ndjson.gz", 2 * GiB, prefix=head.rsplit(b"\n", 1)[0] + b"\n")
    tmp = tmp_path / "tmp"  # the run's own TMPDIR: its scratch folder and lease land here
    tmp.mkdir()
    code, err, rss = _run_measured("--store", str(tmp_path / "s.duckdb"), "ingest", "--kind", "k6", str(bomb),
                                   env={**os.environ, "TMPDIR": str(tmp)})
    print(f"k6 bomb of 2 GiB: exit {code}, peak RSS {rss / 2**20:.0f} MiB")
    assert code == 2 and f"inflates more than {_io.BOMB_RATIO}×" in err and "a gzip bomb?" in err, err
    assert len(err.strip().splitlines()) == 1 and rss < GiB
    # the refused inflation's scratch folder (and the lease naming it) went with the process
    leases = f"perflab-leases-{os.getuid()}"
    assert [p.name for p in tmp.iterdir()] == [leases] and not any((tmp / leases).iterdir())


def test_the_ratio_is_judged_only_past_its_floor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A small, very repetitive file is no danger: nothing is judged below BOMB_MIN_BYTES
    small = tmp_path / "small.gz"
    small.write_bytes(gzip.compress(b"x=1\n" * (1 << 20)))  # 4 MiB at ~1000x
    assert sum(len(c) for c in _io._chunks(small, 8 * GiB)) == 4 << 20
    monkeypatch.setattr(_io, "BOMB_MIN_BYTES", 1 << 20)
    with pytest.raises(_io.InputError, match="inflates more than 200×"):
        sum(len(c) for c in _io._chunks(small, 8 * GiB))
