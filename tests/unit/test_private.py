"""What perflab creates to hold measurements is owner-only, whatever the umask."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from perflab.private import private_dirs
from perflab.store import Store


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default: everything readable by every local user
    try:
        yield
    finally:
        os.umask(old)


def _mode(p: Path) -> int:
    return p.stat().st_mode & 0o777


@pytest.mark.usefixtures("open_umask")
def test_a_new_store_and_its_folder_are_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "perflab.duckdb"
    Store(path).close()
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700 and _mode(path.parent.parent) == 0o700


@pytest.mark.usefixtures("open_umask")
def test_an_existing_store_and_folder_keep_their_owners_modes(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    path = shared / "perflab.duckdb"
    Store(path).close()
    os.chmod(path, 0o640)  # its owner chose to share it with a group
    Store(path).close()
    assert _mode(path) == 0o640 and _mode(shared) == 0o755


@pytest.mark.usefixtures("open_umask")
def test_private_dirs_makes_each_missing_level(tmp_path: Path) -> None:
    made = private_dirs(tmp_path / "a" / "b" / "c")
    assert made.is_dir()
    assert [_mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o700] * 3
    private_dirs(made)  # existing: no error, no change
    assert _mode(made) == 0o700
