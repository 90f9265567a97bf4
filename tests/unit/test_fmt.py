"""perflab.fmt: numbers as people read them, with units and no exponent notation."""

from __future__ import annotations

import pytest

from perflab import fmt


@pytest.mark.parametrize(("v", "text"), [
    (3209.08, "3,209"), (1.36352, "1.36"), (39.9925, "40.0"), (0.000123456, "0.000123"),
    (999.6, "1,000"), (-0.245, "-0.245"), (1234567.0, "1,234,567"), (1e-9, "0"), (0.0, "0"),
])
def test_sig_is_three_significant_digits_without_exponent(v: float, text: str) -> None:
    assert fmt.sig(v) == text


@pytest.mark.parametrize(("key", "v", "text"), [
    ("p95_ms", 3209.08, "3,209 ms"), ("service_cpu_p50", 39.9925, "40.0 %"), ("error_rate", 0.348837, "34.9 %"),
    ("rps", 593.25, "593/s"), ("bytes", 7_600_000, "7.25 MiB"), ("duration_s", 15.02, "15.0 s"),
    ("requests", 1098, "1,098"), ("cpu_p95_correlation", -0.245, "-0.245"), ("cache_hit_ratio", 0.7712, "77.1 %"),
    ("pool_capacity", 20.0, "20"), ("ok", True, "yes"),
])
def test_by_name_reads_the_unit_from_the_name(key: str, v: object, text: str) -> None:
    assert fmt.by_name(key, v) == text


def test_no_formatter_prints_an_exponent() -> None:
    for v in (3.21e3, 1.2e-10, 4.5e7, 7.7e-5):
        outs = [fmt.short(v), fmt.number(v), fmt.sig(v), fmt.cell(v, "x"), fmt.evidence_value("x", v),
                fmt.evidence_brief("x", v), fmt.scaled(v, "nanoseconds"), fmt.p_value(min(v, 1.0))]
        assert not [o for o in outs if "e+" in o or "e-" in o], outs
    assert fmt.short(3209.08) == "3,209"  # the nightly index's cell, once "3.21e+03"
    assert fmt.p_value(1.2e-10) == "< 0.001" and fmt.p_value(0.0432) == "0.043"
    assert fmt.evidence_value("service_cpu_p95", 195.04) == "195 % of a core"
