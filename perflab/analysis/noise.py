"""When a change is beyond noise: one rule, and the intervals it reads.

Contract: a change B − A is **beyond noise exactly when its interval excludes zero**
(:func:`beyond_noise`); a change with no interval is "not tested". Every interval here
is a BOOTSTRAP_LEVEL (95 %) interval of stat(B) − stat(A), in the unit of the statistic::

    what                      values resampled                 interval
    latency p50/p95/p99/mean  per-request latencies            percentile bootstrap, requests resampled
    CPU, RSS, waiting tasks   per-sample values (4 Hz, 1 Hz)   moving-block bootstrap of the p50 / mean
    throughput                requests per whole second        moving-block bootstrap of the mean
    calls per request         per-scrape counter increments    moving-block bootstrap of Σcalls ÷ Σrequests
    error rate                failed / all requests            Newcombe's hybrid score (Wilson) interval
    dropped iterations        two counts over two durations    exact conditional (Clopper–Pearson)
    a maximum                 —                                none: a resample's max never exceeds the sample's

           0
    ───────┼───[=====]────   excludes 0: beyond noise (its side says better or worse)
    ────[==┼=====]───────    holds 0: within noise, whatever the size of the point change

Samples of a time series are not independent (a CPU reading at 4 Hz is much like the one
before it), so they are resampled in consecutive blocks; requests are resampled one by one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

BOOTSTRAP_LEVEL = 0.95
# 2,000 resamples put the 2.5 % and 97.5 % ends of the interval on 50 resamples each,
# enough for their position to move by less than the p95's own resolution.
BOOTSTRAP_RESAMPLES = 2_000
# Resampling cost is resamples × n; beyond 5,000 values per run a seeded subsample is
# used. A smaller sample can only widen the interval, so the cap never invents a change.
BOOTSTRAP_MAX_N = 5_000
# Resamples drawn per numpy call: 250 × 5,000 values is 10 MB of indices, bounded memory.
BOOTSTRAP_CHUNK = 250
# A fixed seed: the same two runs give the same interval every time (deterministic output).
BOOTSTRAP_SEED = 20240601

Interval = tuple[float, float]


def beyond_noise(interval: Sequence[float] | None) -> bool | None:
    """THE rule: True when the interval of B − A excludes zero, False when it holds it,
    None when there is no interval (the change was not tested)."""
    if interval is None:
        return None
    lo, hi = interval
    return bool(lo > 0 or hi < 0)


def block_length(n: int) -> int:
    """Consecutive samples resampled together: n^(1/3), the rate that is optimal for a
    moving-block bootstrap of a mean or quantile (Hall, Horowitz & Jing 1995); 4 for the
    60 samples of a 15 s run at 4 Hz, 2 for its 15 seconds."""
    return max(1, int(round(math.pow(n, 1 / 3))))


def _cap(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if len(x) <= BOOTSTRAP_MAX_N:
        return x
    return x[np.sort(rng.choice(len(x), BOOTSTRAP_MAX_N, replace=False))]


def _indices(rng: np.random.Generator, n: int, k: int, block: int) -> np.ndarray:
    """k resamples of n positions: single positions (block 1) or runs of ``block`` consecutive ones."""
    if block <= 1:
        return rng.integers(0, n, size=(k, n))
    nb = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=(k, nb))
    return (starts[:, :, None] + np.arange(block)).reshape(k, nb * block)[:, :n]


def _ends(diffs: np.ndarray) -> np.ndarray:
    tail = (1 - BOOTSTRAP_LEVEL) / 2
    ends: np.ndarray = np.nanquantile(diffs, [tail, 1 - tail], axis=-1)
    return ends


def bootstrap_diff(a: np.ndarray, b: np.ndarray, quantiles: tuple[float | None, ...] = (0.95,),
                   resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED, block: int = 1
                   ) -> list[Interval]:
    """Percentile-bootstrap intervals (BOOTSTRAP_LEVEL) of stat(B) − stat(A) for each statistic.

    A statistic is a quantile in 0..1 (linear between closest ranks, k6's rule) or None
    for the mean. ``block`` > 1 resamples runs of consecutive values (a time series).
    Deterministic: one seeded generator, drawn in a fixed order.
    """
    rng = np.random.default_rng(seed)
    a = _cap(np.asarray(a, dtype=np.float64), rng)
    b = _cap(np.asarray(b, dtype=np.float64), rng)
    qs = [q for q in quantiles if q is not None]
    diffs = np.empty((len(quantiles), resamples))
    for start in range(0, resamples, BOOTSTRAP_CHUNK):
        k = min(BOOTSTRAP_CHUNK, resamples - start)
        ra = a[_indices(rng, len(a), k, block)]
        rb = b[_indices(rng, len(b), k, block)]
        qa = np.quantile(ra, qs, axis=1) if qs else np.empty((0, k))
        qb = np.quantile(rb, qs, axis=1) if qs else np.empty((0, k))
        j = 0
        for i, q in enumerate(quantiles):
            if q is None:
                diffs[i, start:start + k] = rb.mean(axis=1) - ra.mean(axis=1)
            else:
                diffs[i, start:start + k] = qb[j] - qa[j]
                j += 1
    lo, hi = _ends(diffs)
    return [(float(x), float(y)) for x, y in zip(lo, hi, strict=True)]


def series_diff(a: np.ndarray, b: np.ndarray, quantile: float | None) -> Interval:
    """The interval of stat(B) − stat(A) for two time series (moving blocks of n^(1/3))."""
    block = block_length(min(len(a), len(b)))
    return bootstrap_diff(a, b, (quantile,), block=block)[0]


def ratio_diff(num_a: np.ndarray, den_a: np.ndarray, num_b: np.ndarray, den_b: np.ndarray,
               resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Interval:
    """The interval of Σnum_B/Σden_B − Σnum_A/Σden_A (e.g. calls per request), resampling the
    paired per-step increments of each run in moving blocks; a resample with no denominator
    is left out."""
    rng = np.random.default_rng(seed)

    def ratios(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        idx = _indices(rng, len(num), resamples, block_length(len(num)))
        d = den[idx].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(d > 0, num[idx].sum(axis=1) / d, np.nan)

    ra = ratios(np.asarray(num_a, dtype=np.float64), np.asarray(den_a, dtype=np.float64))
    rb = ratios(np.asarray(num_b, dtype=np.float64), np.asarray(den_b, dtype=np.float64))
    lo, hi = _ends(rb - ra)
    return float(lo), float(hi)


def wilson(k: int, n: int) -> Interval:
    """Wilson's score interval of a proportion k/n (0..1) at BOOTSTRAP_LEVEL."""
    z = float(stats.norm.ppf(1 - (1 - BOOTSTRAP_LEVEL) / 2))
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, mid - half), min(1.0, mid + half)


def newcombe_diff(k_a: int, n_a: int, k_b: int, n_b: int) -> Interval:
    """Newcombe's hybrid score interval (his method 10) of k_b/n_b − k_a/n_a, from the two
    Wilson intervals: good coverage even at 0 % or 100 %, where a Wald interval collapses."""
    pa, pb = k_a / n_a, k_b / n_b
    la, ua = wilson(k_a, n_a)
    lb, ub = wilson(k_b, n_b)
    d = pb - pa
    return d - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2), d + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2)


def poisson_diff(count_a: int, duration_a: float, count_b: int, duration_b: float) -> Interval:
    """The interval of count_B − count_A × duration_B/duration_A (A's count at B's duration).

    Given the total n, B's share is binomial, with p0 = duration_B / (duration_A +
    duration_B) when the two rates are equal; the exact (Clopper–Pearson) interval of that
    share, mapped to the difference it implies at n, holds 0 exactly when the share's
    interval holds p0. No count at all is no change: (0, 0)."""
    n = count_a + count_b
    if n == 0:
        return 0.0, 0.0
    ci = stats.binomtest(count_b, n).proportion_ci(confidence_level=BOOTSTRAP_LEVEL, method="exact")
    scale = duration_b / duration_a

    def diff(share: float) -> float:
        return n * share - n * (1 - share) * scale

    return diff(float(ci.low)), diff(float(ci.high))
