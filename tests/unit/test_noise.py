"""perflab.analysis.noise: the one rule (an interval that excludes 0) and the intervals it reads.

Oracles: Newcombe (1998, Statistics in Medicine 17:873), Table II, method 10, to his four
decimals; scipy's binomial test for the exact conditional interval; seeded synthetic series
with a known shift for the bootstraps.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from perflab.analysis import noise


@pytest.mark.parametrize("interval, verdict", [
    ((0.1, 2.0), True),      # all of it above 0
    ((-3.0, -0.5), True),    # all of it below 0
    ((-0.1, 2.0), False),    # holds 0
    ((0.0, 2.0), False),     # touches 0: not excluded
    ((0.0, 0.0), False),     # no change at all
    (None, None),            # no interval: not tested
])
def test_the_rule_is_the_interval_excluding_zero(interval, verdict):
    assert noise.beyond_noise(interval) is verdict


@pytest.mark.parametrize("a, b, expected", [
    ((48, 80), (56, 70), (0.0524, 0.3339)),   # Newcombe's example (a): 56/70 − 48/80
    ((3, 10), (9, 10), (0.1705, 0.8090)),     # example (b): 9/10 − 3/10
    ((0, 10), (0, 20), (-0.2775, 0.1611)),    # example (h) reversed: 0/20 − 0/10
])
def test_newcombe_interval_is_newcombes_own(a, b, expected):
    lo, hi = noise.newcombe_diff(*a, *b)
    assert (round(lo, 4), round(hi, 4)) == expected


def test_an_error_rate_that_did_not_move_is_within_noise():
    # The retry storm's error rate and its fix's: 34.9 % → 33.6 % of ~300 requests each.
    lo, hi = noise.newcombe_diff(105, 301, 101, 301)
    assert lo < 0 < hi
    assert noise.beyond_noise((lo, hi)) is False


def test_poisson_interval_is_the_exact_binomial_share_mapped_to_counts():
    assert noise.poisson_diff(0, 15.0, 0, 15.0) == (0.0, 0.0)
    lo, hi = noise.poisson_diff(4, 15.0, 20, 15.0)
    ci = stats.binomtest(20, 24).proportion_ci(confidence_level=0.95, method="exact")
    assert (lo, hi) == pytest.approx((24 * ci.low - 24 * (1 - ci.low), 24 * ci.high - 24 * (1 - ci.high)))
    assert lo > 0
    # Equal counts over equal durations hold 0; the same counts over twice the time for B do not.
    assert noise.beyond_noise(noise.poisson_diff(10, 15.0, 10, 15.0)) is False
    lo, hi = noise.poisson_diff(40, 15.0, 10, 30.0)  # A's 40 at B's 30 s would be 80: B is far lower
    assert hi < 0


def test_block_bootstrap_of_an_autocorrelated_series_is_wider_than_treating_samples_as_independent():
    rng = np.random.default_rng(3)
    # AR(1) with φ = 0.8: each sample is mostly the one before, as CPU readings at 4 Hz are.
    e = rng.normal(0, 1, (2, 240))
    x = np.zeros((2, 240))
    for i in range(1, 240):
        x[:, i] = 0.8 * x[:, i - 1] + e[:, i]
    iid = noise.bootstrap_diff(x[0], x[1], (None,))[0]
    blocks = noise.series_diff(x[0], x[1], None)
    assert noise.block_length(240) == 6
    assert blocks[1] - blocks[0] > iid[1] - iid[0]
    # Block 1 is the plain bootstrap, draw for draw.
    assert noise.bootstrap_diff(x[0], x[1], (0.5,), block=1) == noise.bootstrap_diff(x[0], x[1], (0.5,))


def test_ratio_interval_finds_a_known_change_in_calls_per_request():
    rng = np.random.default_rng(5)
    req_a, req_b = rng.poisson(20, 30).astype(float), rng.poisson(20, 30).astype(float)
    calls_a, calls_b = req_a * 2.6, req_b * 1.1
    lo, hi = noise.ratio_diff(calls_a, req_a, calls_b, req_b)
    assert lo == pytest.approx(-1.5) and hi == pytest.approx(-1.5)  # exact ratios: no spread at all
    noisy_b = calls_b + rng.normal(0, 2, 30)
    lo, hi = noise.ratio_diff(calls_a, req_a, noisy_b, req_b)
    assert lo < -1.5 < hi < 0
    same = noise.ratio_diff(calls_a + rng.normal(0, 2, 30), req_a, calls_a, req_a)
    assert noise.beyond_noise(same) is False
