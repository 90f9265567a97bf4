"""The CLI's contract for inputs that are no format at all: exit 2, one line, store unchanged."""

from __future__ import annotations

import gzip
import json
import os
import random
from pathlib import Path

import pytest

from perflab.store import Store
from tests.helpers import assert_refused, run_cli, store_fingerprint


def _fingerprint(path: Path):
    s = Store(path)
    try:
        return store_fingerprint(s)
    finally:
        s.close()


def _assert_refused(result, path: Path, phrase: str):
    assert_refused(result.returncode, result.stderr, path, phrase)


@pytest.fixture
def seeded_store(tmp_path: Path) -> Path:
    path = tmp_path / "s.duckdb"
    Store(path).close()
    return path


def test_missing_path(seeded_store: Path, tmp_path: Path):
    before = _fingerprint(seeded_store)
    missing = tmp_path / "does-not-exist.pb.gz"
    _assert_refused(run_cli("ingest", str(missing), store=seeded_store), missing, "no such file")
    assert _fingerprint(seeded_store) == before


def test_empty_file(seeded_store: Path, tmp_path: Path):
    before = _fingerprint(seeded_store)
    empty = tmp_path / "empty.ndjson"
    empty.touch()
    _assert_refused(run_cli("ingest", str(empty), store=seeded_store), empty, "empty file")
    assert _fingerprint(seeded_store) == before


def test_random_bytes(seeded_store: Path, tmp_path: Path):
    before = _fingerprint(seeded_store)
    rnd = tmp_path / "random.bin"
    rnd.write_bytes(random.Random(7).randbytes(4096))
    _assert_refused(run_cli("ingest", str(rnd), store=seeded_store), rnd, "not a format perflab reads")
    assert _fingerprint(seeded_store) == before


def test_truncated_gzip(seeded_store: Path, tmp_path: Path):
    before = _fingerprint(seeded_store)
    data = gzip.compress(random.Random(3).randbytes(200_000))
    trunc = tmp_path / "cut.ndjson.gz"
    trunc.write_bytes(data[: len(data) // 2])
    result = run_cli("ingest", str(trunc), store=seeded_store)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert str(trunc) in result.stderr and "Traceback" not in result.stderr
    assert _fingerprint(seeded_store) == before


def test_gzip_bomb_cap_from_the_command_line(seeded_store: Path, tmp_path: Path):
    before = _fingerprint(seeded_store)
    bomb = tmp_path / "bomb.ndjson.gz"
    line = b'{"metric":"vus","type":"Point","data":{"time":"2026-11-22T10:00:00Z","value":1,"tags":{}}}\n'
    bomb.write_bytes(gzip.compress(b'{"type":"Metric","data":{"name":"vus","type":"gauge","contains":"default","thresholds":[],"submetrics":null},"metric":"vus"}\n' + line * 400_000))
    result = run_cli("--max-decompressed", "1M", "ingest", str(bomb), store=seeded_store)
    _assert_refused(result, bomb, "decompresses to more than 1048576 bytes")
    assert _fingerprint(seeded_store) == before


def test_sources_json_shape(seeded_store: Path):
    result = run_cli("sources", "--json", store=seeded_store)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_store_from_environment(tmp_path: Path):
    env = dict(os.environ, PERFLAB_STORE=str(tmp_path / "env.duckdb"))
    result = run_cli("sources", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "env.duckdb").exists()
