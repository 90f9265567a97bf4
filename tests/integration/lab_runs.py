"""The lab runs the doctor, compare and optimization-log tests read: seven 15 s runs (real
PostgreSQL, the sample service, k6) made once per session (tests/integration/conftest.py).
Every scenario and its fix, as a night makes them; the store stays open in the session, and
is released (Store.release) before a test's CLI process opens it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from perflab.lab.runner import RunOptions, run
from perflab.store import Store
from tests.helpers import wait_for_a_quiet_machine

RUNS = [("login-storm", "default"), ("login-storm", "fixed"), ("false-idle", "default"),
        ("false-idle", "fixed"), ("retry-storm", "default"), ("retry-storm", "fixed"), ("healthy", "default")]
DURATION_S = 15


@dataclass
class LabRuns:
    """The seven runs in one store, in the order a night makes them."""

    store: Store
    ids: dict[tuple[str, str], str] = field(default_factory=dict)  # (scenario, variant) → run id
    load_before: dict[str, float] = field(default_factory=dict)  # run id → 1 min load average before it


def make_lab_runs(folder: Path) -> Iterator[LabRuns]:
    runs = LabRuns(Store(folder / "store.duckdb"))
    try:
        for scenario, variant in RUNS:
            wait_for_a_quiet_machine()
            load = os.getloadavg()[0]
            result = run(runs.store, RunOptions(scenario, variant, duration_s=DURATION_S, live=False))
            runs.ids[(scenario, variant)] = result["run_id"]
            runs.load_before[result["run_id"]] = load
        yield runs
    finally:
        runs.store.close()
