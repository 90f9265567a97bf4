"""`make clean` never deletes measurements; `make clean-data` asks first."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tree(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for d in (".venv/bin", "data/runs/r1", "perflab/__pycache__", ".mypy_cache"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "data" / "perflab.duckdb").write_bytes(b"store")
    (tmp_path / "data" / "runs" / "r1" / "k6.ndjson").write_text("{}\n")
    return tmp_path


def _make(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"}, timeout=60)


def test_clean_keeps_the_store_and_the_runs(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    assert _make(tree, "clean").returncode == 0
    assert not (tree / ".venv").exists() and not (tree / ".mypy_cache").exists()
    assert not (tree / "perflab" / "__pycache__").exists()
    assert (tree / "data" / "perflab.duckdb").read_bytes() == b"store"
    assert (tree / "data" / "runs" / "r1" / "k6.ndjson").is_file()


def test_clean_data_asks_and_keeps_without_a_yes(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    # WHEN nobody answers (no terminal) THEN nothing is removed and make fails
    refused = _make(tree, "clean-data")
    assert refused.returncode != 0 and "clean-data: kept" in refused.stdout
    assert (tree / "data" / "perflab.duckdb").is_file() and (tree / "data" / "runs").is_dir()
    # WHEN the answer is given THEN the store and its run folders go, and nothing else
    done = _make(tree, "clean-data", "CONFIRM=yes")
    assert done.returncode == 0 and "clean-data: removed" in done.stdout
    assert not (tree / "data" / "perflab.duckdb").exists() and not (tree / "data" / "runs").exists()
    assert (tree / ".venv").is_dir()
