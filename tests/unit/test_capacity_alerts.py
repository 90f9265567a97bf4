"""Decision tables for the alert rules and the capacity estimate (pure functions)."""

from __future__ import annotations

import math

import pytest

from perflab.analysis.alerts import (
    BUFFER_RULE, ERROR_RULE, LATENCY_RULE, POOL_RULE, RULES, evaluate_rule, sample_durations,
)
from perflab.analysis.capacity import DEFAULT_TARGET_MULTIPLIER, HEADROOM_CPU_FRACTION, Pool, estimate


# -- alerts ---------------------------------------------------------------------------------

def test_the_rules_are_the_tuning_guides():
    assert [(r.name, r.threshold, r.for_s) for r in RULES] == [
        ("DatabaseConnectionPoolHigh", 0.8, 300.0), ("HighAPILatency", 500.0, 120.0),
        ("HighErrorRate", 0.01, 60.0), ("BufferSizeHigh", 0.8, 300.0)]


# (rule, values per 1 s sample, fired, seconds above, longest above, peak, samples above)
ALERT_TABLE = [
    # never reaches the threshold
    (LATENCY_RULE, [100, 200, 499.99], False, 0.0, 0.0, 499.99, 0),
    # exactly at the threshold is not above it
    (LATENCY_RULE, [500, 500, 500], False, 0.0, 0.0, 500.0, 0),
    # one interval above
    (LATENCY_RULE, [100, 500.01, 100], True, 1.0, 1.0, 500.01, 1),
    # two stretches: 2 s and 1 s above, the longest is 2 s
    (LATENCY_RULE, [600, 700, 100, 900, 100], True, 3.0, 2.0, 900.0, 3),
    # an interval without requests is no evidence and breaks a stretch
    (LATENCY_RULE, [600, None, 600], True, 2.0, 1.0, 600.0, 2),
    (ERROR_RULE, [0.0, 0.01, 0.0], False, 0.0, 0.0, 0.01, 0),
    (ERROR_RULE, [0.0, 0.02, 0.5, 0.0], True, 2.0, 2.0, 0.5, 2),
    (POOL_RULE, [0.5, 0.8, 0.7], False, 0.0, 0.0, 0.8, 0),
    (POOL_RULE, [0.5, 0.9, 1.2], True, 2.0, 2.0, 1.2, 2),
    (BUFFER_RULE, [0.0, 0.79, 0.81], True, 1.0, 1.0, 0.81, 1),
]


@pytest.mark.parametrize("rule, values, fired, above, longest, peak, n_above", ALERT_TABLE)
def test_alert_decision_table(rule, values, fired, above, longest, peak, n_above):
    t = [float(i) for i in range(len(values))]
    r = evaluate_rule(rule, t, values, [1.0] * len(values))
    assert r.fired is fired
    assert r.seconds_above == pytest.approx(above)
    assert r.longest_above_s == pytest.approx(longest)
    assert r.peak == pytest.approx(peak)
    assert r.samples_above == n_above
    assert r.samples == sum(v is not None for v in values)
    assert r.sustained is False  # a few seconds never last the guide's `for:`
    assert (r.first_above_s is None) is (not fired)


def test_sustained_when_the_longest_stretch_lasts_the_rules_for():
    n = int(ERROR_RULE.for_s)  # 60 one-second intervals above 1 %
    r = evaluate_rule(ERROR_RULE, list(range(n)), [0.05] * n, [1.0] * n)
    assert r.sustained is True and r.longest_above_s == ERROR_RULE.for_s
    r = evaluate_rule(ERROR_RULE, list(range(n)), [0.05] * (n - 1) + [0.0], [1.0] * n)
    assert r.sustained is False


def test_peak_is_where_the_series_peaks():
    r = evaluate_rule(LATENCY_RULE, [10.0, 11.0, 12.0], [300, 800, 700], [1.0] * 3)
    assert (r.peak, r.peak_at_s, r.first_above_s) == (800.0, 11.0, 11.0)


def test_no_values_no_peak():
    r = evaluate_rule(LATENCY_RULE, [0.0, 1.0], [None, float("nan")], [1.0, 1.0])
    assert r.fired is False and r.peak is None and r.samples == 0


def test_gauge_samples_hold_until_the_next():
    assert sample_durations([0.0, 0.25, 0.75, 1.0]).tolist() == [0.25, 0.5, 0.25, 0.25]
    assert sample_durations([5.0]).tolist() == [0.0]
    r = evaluate_rule(POOL_RULE, [0.0, 0.25, 0.75, 1.0], [0.9, 0.9, 0.5, 0.9],
                      sample_durations([0.0, 0.25, 0.75, 1.0]))
    assert r.seconds_above == pytest.approx(1.0) and r.longest_above_s == pytest.approx(0.75)


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError):
        evaluate_rule(POOL_RULE, [0.0, 1.0], [0.5], [1.0, 1.0])


# -- capacity --------------------------------------------------------------------------------

# (rps, cpu mean, cpu p50, cores, target, dropped, host p50)
#   -> (per core, replica, replicas, saturated, machine saturated, upper bound)
CAPACITY_TABLE = [
    # 10 req/s at 50 % of a core: 20 req/s per core; 2 cores at 70 % = 28 req/s; 100 req/s needs 4
    (10.0, 50.0, 50.0, 2, 100.0, 0, 60.0, 20.0, 28.0, 4, False, False, False),
    # default target: 10 × the measured rate
    (10.0, 50.0, 50.0, 2, None, 0, 60.0, 20.0, 28.0, 4, False, False, False),
    # exactly one replica's worth
    (14.0, 100.0, 100.0, 1, 9.8, 0, 100.0, 14.0, 9.8, 1, True, False, True),
    # the login storm: 195 % of 200 % is saturated (≥ 80 %)
    (4.0, 195.0, 196.0, 2, 40.0, 0, 199.0, 4.0 / 1.95, 4.0 / 1.95 * 2 * 0.7, 14, True, False, True),
    # exactly at 80 % of the cores is saturated, just below is not
    (4.0, 160.0, 160.0, 2, 40.0, 0, 150.0, 4.0 / 1.6, 4.0 / 1.6 * 1.4, 12, True, False, True),
    (4.0, 150.0, 159.9, 2, 40.0, 0, 150.0, 4.0 / 1.5, 4.0 / 1.5 * 1.4, 11, False, False, False),
    # dropped iterations are not saturation, but the estimate is an upper bound
    (8.0, 40.0, 40.0, 2, 80.0, 3, 50.0, 20.0, 28.0, 3, False, False, True),
    # the false idle: 8 % of a core and dropped iterations: never "saturated"
    (40.0, 8.0, 8.0, 2, 400.0, 26, 60.0, 500.0, 700.0, 1, False, False, True),
    # the machine pinned (k6 and PostgreSQL too) is said as such, not as the service saturated
    (8.0, 40.0, 40.0, 2, 80.0, 0, 185.0, 20.0, 28.0, 3, False, True, True),
]


@pytest.mark.parametrize("rps, mean, p50, cores, target, dropped, host, per_core, replica, replicas, saturated, "
                         "machine, bound", CAPACITY_TABLE)
def test_capacity_decision_table(rps, mean, p50, cores, target, dropped, host, per_core, replica, replicas,
                                 saturated, machine, bound):
    c = estimate(rps, mean, cpu_p50_pct=p50, cores=cores, target_rps=target, dropped_iterations=dropped,
                 host_cpu_p50_pct=host)
    assert c.reason is None
    assert c.rps_per_core == pytest.approx(per_core)
    assert c.replica_rps == pytest.approx(replica)
    assert c.replicas == replicas
    assert c.target_rps == pytest.approx(target if target is not None else DEFAULT_TARGET_MULTIPLIER * rps)
    assert c.cores_needed == pytest.approx(c.target_rps / (per_core * HEADROOM_CPU_FRACTION))
    assert (c.saturated, c.machine_saturated, c.upper_bound) == (saturated, machine, bound)
    assert bool(c.saturation_reasons) is (saturated or machine)
    assert c.limited_by == "cpu" and [lim.resource for lim in c.limits] == ["cpu"]


def test_a_machine_pinned_by_the_service_is_one_reason_not_two():
    c = estimate(4.0, 195.0, cpu_p50_pct=196.0, cores=2, host_cpu_p50_pct=199.0)
    assert len(c.saturation_reasons) == 1 and c.saturation_reasons[0].startswith("service CPU p50 196 %")
    c = estimate(4.0, 40.0, cpu_p50_pct=40.0, cores=2, host_cpu_p50_pct=199.0, dropped_iterations=2)
    assert [r.split(" ")[:2] for r in c.saturation_reasons] == [["the", "machine's"]]


def test_the_pool_limits_by_littles_law_when_it_is_the_smallest():
    # The false idle: 34.73 req/s, 2 connections always in use (57.6 ms held per request),
    # 11.5 % of a core. The pool allows 2 / 0.0576 s = 34.73 req/s; the CPU 200 / (11.5 / 34.73) = 604.
    pool = Pool(capacity=2.0, in_use_mean=2.0, source="test")
    c = estimate(34.73, 11.5, cpu_p50_pct=12.0, cores=2, dropped_iterations=26, pool=pool,
                 database_cpu_mean_pct=2.0)
    assert c.limited_by == "pool" and [lim.resource for lim in c.limits] == ["pool", "cpu", "database"]
    assert c.limits[0].rps == pytest.approx(34.73) and c.limits[0].used == pytest.approx(1.0)
    assert c.limits[1].rps == pytest.approx(34.73 * 200 / 11.5)
    assert c.limits[2].rps == pytest.approx(34.73 * 200 / 2.0)
    assert c.replica_rps == pytest.approx(34.73 * HEADROOM_CPU_FRACTION)
    assert 0.5 <= c.replica_rps / c.rps <= 2  # within 2x of what was measured, not 593 req/s
    assert "57.6 ms held per request" in c.limits[0].basis
    assert c.saturated is False and c.upper_bound is True
    # A pool used at a quarter: four times the measured rate, the CPU (20 req/s per core) comes first.
    c = estimate(10.0, 50.0, cpu_p50_pct=50.0, cores=2, pool=Pool(capacity=10.0, in_use_mean=2.5, source="t"))
    assert c.limited_by == "cpu" and c.limits[1].rps == pytest.approx(40.0)
    # A pool never seen in use gives no hold time, so no limit.
    c = estimate(10.0, 50.0, cpu_p50_pct=50.0, cores=2, pool=Pool(capacity=10.0, in_use_mean=0.0, source="t"))
    assert [lim.resource for lim in c.limits] == ["cpu"]


def test_a_pool_alone_still_gives_a_limit():
    c = estimate(30.0, None, cores=None, pool=Pool(capacity=4.0, in_use_mean=3.0, source="t"))
    assert c.reason is None and c.limited_by == "pool" and c.rps_per_core is None
    assert c.replica_rps == pytest.approx(40.0 * HEADROOM_CPU_FRACTION)


def test_unknown_cores_still_give_cores_needed():
    c = estimate(10.0, 50.0, cpu_p50_pct=50.0, cores=None, target_rps=56.0)
    assert c.replicas is None and c.replica_rps is None
    assert c.cores_needed == pytest.approx(4.0)
    assert c.saturated is False


@pytest.mark.parametrize("rps, mean, why", [
    (None, 50.0, "no request rate"), (0.0, 50.0, "no request rate"), (10.0, None, "no service CPU"),
    (10.0, 0.0, "no service CPU"), (float("nan"), 50.0, "no request rate"),
])
def test_no_estimate_without_both_numbers(rps, mean, why):
    c = estimate(rps, mean, cores=2)
    assert why in c.reason
    assert c.rps_per_core is None and c.replicas is None


def test_low_cpu_carries_a_caveat():
    c = estimate(40.0, 4.0, cpu_p50_pct=4.0, cores=2)
    assert c.rps_per_core == pytest.approx(1000.0)
    assert len(c.caveats) == 1 and "4.0 %" in c.caveats[0]
    assert estimate(40.0, 40.0, cores=2).caveats == []


def test_replicas_round_up_not_down():
    # 28 req/s per replica, 28.0001 req/s wanted: a second replica.
    assert estimate(10.0, 50.0, cores=2, target_rps=28.0001).replicas == 2
    assert estimate(10.0, 50.0, cores=2, target_rps=28.0).replicas == 1
    assert math.isclose(estimate(10.0, 50.0, cores=2, target_rps=28.0).replica_rps, 28.0)
