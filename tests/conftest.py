from __future__ import annotations

from pathlib import Path

import pytest

from perflab.store import Store

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store.duckdb")
    yield s
    s.close()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "cli-store.duckdb"
