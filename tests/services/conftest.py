"""The orders Go service for tests: built once per session, started on a free port, stopped by PID."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.services.orders_service import CACHE, OrdersService, build_orders, start_orders, write_target


@pytest.fixture(scope="session")
def orders_binary(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The service built into a temporary folder; Go's build cache lives in pytest's cache
    (.pytest_cache/d/go-orders; the same folder without the cache plugin), so a later session
    only links."""
    cache = Path(request.config.cache.mkdir("go-orders")) if hasattr(request.config, "cache") else CACHE
    return build_orders(tmp_path_factory.mktemp("orders-bin"), cache=cache)


@pytest.fixture
def start_orders_service(orders_binary: Path, tmp_path: Path) -> Iterator[Callable[..., OrdersService]]:
    """start(**settings) -> a running service with those environment settings; every service
    started is stopped at the end of the test, whatever happened."""
    started: list[OrdersService] = []

    def start(**settings: str) -> OrdersService:
        svc = start_orders(orders_binary, settings, log=tmp_path / f"orders-{len(started)}.log")
        started.append(svc)
        return svc

    yield start
    for svc in started:
        svc.stop()
    assert all(svc.proc.poll() is not None for svc in started)


@pytest.fixture
def orders_target(orders_binary: Path, tmp_path: Path) -> Path:
    """target.toml in a folder with the orders binary and load.js, on a free port (for
    `perflab run --target`)."""
    return write_target(orders_binary, tmp_path / "orders-target")
