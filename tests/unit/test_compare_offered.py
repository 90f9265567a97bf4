"""The load k6 was asked for, from its schedule, not from its http_reqs rate."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from perflab.analysis.compare import offered_rps


def _run(duration_s: float | None) -> Any:
    return SimpleNamespace(manifest=SimpleNamespace(duration_s=duration_s) if duration_s is not None else None)


def test_offered_rps_counts_started_and_dropped_iterations_over_the_schedule() -> None:
    # A login storm measured here: 15 s at 10/s, 123 logins done, 28 dropped; k6's own rate (6.56/s)
    # divides by the run stretched to ~23 s by the graceful stop.
    summary = {"totals": {"http_reqs": 123, "iterations": 123, "dropped_iterations": 28}}
    assert offered_rps(_run(15.0), summary) == pytest.approx(151 / 15)
    # Two requests an iteration: the drops count twice.
    two = {"totals": {"http_reqs": 246, "iterations": 123, "dropped_iterations": 28}}
    assert offered_rps(_run(15.0), two) == pytest.approx(2 * 151 / 15)
    # No schedule (a brought run) or no iterations: not stated.
    assert offered_rps(_run(None), summary) is None
    assert offered_rps(_run(15.0), {"totals": {"http_reqs": 10, "iterations": 0}}) is None
    assert offered_rps(_run(15.0), None) is None
