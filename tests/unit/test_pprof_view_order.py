"""pprof_view._stable_order: the order np.lexsort gives, packed keys or not."""

from __future__ import annotations

import numpy as np
import pytest

from perflab.analysis.pprof_view import _stable_order


@pytest.mark.parametrize(("highs", "n"), [((50, 7, 7), 10_000), ((3, 2), 5), ((2**40, 2**30), 1_000), ((1,), 0)])
def test_stable_order_is_lexsorts(highs: tuple[int, ...], n: int) -> None:
    rng = np.random.default_rng(7)
    keys = [rng.integers(0, h, size=n, dtype=np.int64) for h in highs]
    # lexsort's last key is the most significant; _stable_order's first is
    assert np.array_equal(_stable_order(*keys), np.lexsort(keys[::-1]))
