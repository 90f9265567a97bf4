"""perflab.analysis.optimization: the conclusion of a fix as a decision table, and the expected
impact derived from the doctor's evidence.

GIVEN compare rows whose intervals are set by hand and a before run's diagnosis, WHEN the
fix is judged, THEN the conclusion follows the targeted metric's interval alone.
"""

from __future__ import annotations

from typing import Any

import pytest

from perflab.analysis.compare import Comparison, MetricRow, ProfileDiff, RunInfo, _row
from perflab.analysis.optimization import expected_impact, judge
from perflab.analysis.signatures import Diagnosis, Finding


def _info(run_id: str, settings: dict[str, Any]) -> RunInfo:
    return RunInfo(run_id, "s", "default", "t", settings, None, None, True)


def _cmp(rows: list[MetricRow], before: dict[str, Any] | None = None, after: dict[str, Any] | None = None
         ) -> Comparison:
    return Comparison(_info("a", before or {}), _info("b", after or {}), {}, {"overall": None, "endpoints": {}},
                      rows, ProfileDiff(None, None), "rule", {})


def _diag(*present: tuple[str, dict[str, Any]]) -> Diagnosis:
    return Diagnosis("a", [Finding(name, "present", ev, None) for name, ev in present])


CALLS, P95, ERR, CPU = "downstream calls per request", "latency p95", "error rate", "service CPU p50"


def rows(calls: tuple[float, float] | None, p95: tuple[float, float] | None = (-400.0, -300.0),
         err: tuple[float, float] | None = (-5.0, 4.0)) -> list[MetricRow]:
    return [_row(CALLS, "", "lower", 2.6, 2.9 if calls and calls[0] > 0 else 1.1, calls, None,
                 None if calls else "not tested: one ratio per run"),
            _row(P95, "ms", "lower", 625.3, 219.1, p95, None),
            _row(ERR, "%", "lower", 34.9, 33.6, err, None)]


@pytest.mark.parametrize("calls, conclusion, why", [
    ((-1.6, -1.4), "confirmed", "the retry-storm hypothesis targets downstream calls per request, and it moved"),
    ((-0.2, 0.1), "not confirmed", "downstream calls per request 2.60 → 1.10 (-57.7 %), within noise"),
    ((0.1, 0.5), "not confirmed", "downstream calls per request 2.60 → 2.90 (+11.5 %), worse beyond noise"),
    (None, "inconclusive", "downstream calls per request: not tested: one ratio per run"),
])
def test_the_conclusion_is_the_targeted_metrics_interval(calls, conclusion, why):
    j = judge(_cmp(rows(calls)), _diag(("retry-storm", {})))
    assert j.conclusion == conclusion
    assert why in j.why
    # p95 and the error rate are judged beside it, whatever the conclusion.
    assert [(o.metric, o.outcome) for o in j.beside] == [(P95, "moved"), (ERR, "unchanged")]


def test_a_large_point_change_with_an_interval_holding_zero_is_within_noise():
    # The case the other way round: a big p95 drop whose interval still holds 0.
    j = judge(_cmp(rows((-1.6, -1.4), p95=(-415.0, 20.0))), _diag(("retry-storm", {})))
    assert j.conclusion == "confirmed"
    assert j.beside[0].text == "latency p95 625.3 ms → 219.1 ms (-65.0 %), within noise"


def test_without_a_signature_p95_is_the_target():
    j = judge(_cmp(rows((-1.6, -1.4), p95=(-415.0, -399.0))), _diag())
    assert j.conclusion == "confirmed" and [o.metric for o in j.targets] == [P95]
    assert "the doctor found no signature in the before run" in j.why


def test_login_storm_expected_impact_is_amdahl_on_the_hashing_share():
    ev = {"hashing_share": 0.99, "hashing_algorithm": "bcrypt", "service_cpu_p50": 195.0, "p95_ms": 5900.0}
    # The lab's login storm at cost 12: 240 ms of CPU a login; k6 asked for 10 logins/s (its schedule, not
    # its http_reqs rate, which the graceful stop stretches: 3/s here).
    measured = [_row("service CPU per request", "ms", "lower", 240.0, 70.0, None, None),
                _row("throughput", "req/s", "higher", 3.0, 10.0, None, None)]
    cmp = _cmp(measured, {"BCRYPT_COST": "12"}, {"BCRYPT_COST": "10"})
    cmp.a.offered_rps = 10.0
    text = expected_impact(cmp, _diag(("login-storm", ev)), cpu_count=2)
    # 1 − 0.99 + 0.99 / 4 = 0.2575 of 240 ms = 61.8 ms; × 10 offered logins/s = 61.8 % of a core
    assert text == ("bcrypt is 99 % of the CPU profile; BCRYPT_COST 12 → 10 (each step halves the work) makes it "
                    "4× cheaper, so service CPU per request 240 ms → about 61.80 ms (Amdahl: 0.258 of today); the "
                    "offered 10 req/s then need about 61.80 % of a core of 2 cores, so p95 5,900 ms → below the "
                    "500 ms HighAPILatency alert")
    # Without k6's schedule (a brought run without a manifest) the offered load is not claimed.
    cmp.a.offered_rps = None
    assert "offered" not in expected_impact(cmp, _diag(("login-storm", ev)), cpu_count=2)
    # Cost 14 → 13 only halves the work: 121.2 ms a login, so 10 logins/s need 121 % of a core,
    # under 80 % of 2 cores but over 80 % of 1.
    slow = _cmp(measured, {"BCRYPT_COST": "14"}, {"BCRYPT_COST": "13"})
    slow.a.offered_rps = 10.0
    assert "below the" in expected_impact(slow, _diag(("login-storm", ev)), cpu_count=2)
    assert "CPU-bound still" in expected_impact(slow, _diag(("login-storm", ev)), cpu_count=1)
    assert expected_impact(cmp, _diag(), cpu_count=2) is None
