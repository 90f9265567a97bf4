"""The steady-state window: the part of a run where the load was what the test meant it to be.

Every signature judges only this window. The start of a load test is warm-up (pools
filling, VUs being allocated, caches cold) and its end is the drain (k6 stops starting
iterations and waits for the last ones), so both would bend every percentile::

    requests/s
      │           ┌──────────────────────────────┐
      │          ╱                                ╲      warm-up, ramp-up and the drain
      │         ╱    ←── steady state ──→          ╲     of the last iterations are not
      │ _______╱                                    ╲__  what the test measures
      └─┬─────────┬─────────────────────────────┬──────┬── time
        t0   t0 + 15 % of the span         t1 − 15 %   t1
                  │←──────── window ───────────→│

Method (the timeline is the k6 requests; without them, the resource and /debug/vars
samples, which are not refined further):

1. Drop the first and last ``TRIM_FRACTION`` of the span from the first to the last sample.
2. With k6 data, refine for scripts that ramp longer than that: count the requests
   per second inside the trimmed window; the window then starts at the first second
   whose rate reaches ``RAMP_FRACTION`` of the window's median rate and ends after the
   last such second::

       req/s  2  4  9 10 11  9 10 10  3        median 9, half of it 4.5
              ·  ·  ▲                 ·        → the window is the 3rd to the 8th second
                    └── starts here   └── ends before this one

   At least half of the seconds reach half the median (the median's own definition),
   so the refinement keeps at least half of the trimmed window: it can skip a ramp,
   never shrink the window to a moment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

# 15 % at each end: the lab's runs (15–30 s) spend ~1–2 s warming up and k6 drains for up
# to ~2.5 s after the last arrival (the login storm: 17.5 s of samples for a 15 s test);
# 15 % of 17.5 s is 2.6 s. Clinic Doctor trims by detection alone; a fixed trim is the
# floor that detection may only widen.
TRIM_FRACTION = 0.15
# A second whose request rate is below half the window's median is ramping (or stalled).
RAMP_FRACTION = 0.5
# The rate per second is counted in buckets this long.
RATE_BUCKET_S = 1.0


@dataclass(frozen=True)
class Window:
    """[start_s, end_s] in seconds since the epoch; t0_s/t1_s are the run's first/last sample."""

    start_s: float
    end_s: float
    t0_s: float
    t1_s: float
    method: str

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def filter(self, df: pl.DataFrame) -> pl.DataFrame:
        """The rows of a frame with a ``t_s`` column that fall inside the window."""
        return df.filter(pl.col("t_s").is_between(self.start_s, self.end_s))

    def evidence(self) -> dict[str, float | str]:
        """The window as evidence: seconds from the run's first sample."""
        return {"window_start_s": round(self.start_s - self.t0_s, 3),
                "window_end_s": round(self.end_s - self.t0_s, 3),
                "run_span_s": round(self.t1_s - self.t0_s, 3),
                "window_method": self.method}


def find_window(request_times: pl.Series, fallback_times: pl.Series | None = None) -> Window | None:
    """The steady-state window of a run (see the module docstring), or None without any timeline.

    ``request_times``: the t_s of every k6 request; ``fallback_times``: t_s of the other
    series (resource or /debug/vars samples), used only when there are no requests.
    """
    if request_times.len() >= 2:
        times, source = request_times.drop_nulls(), "k6 requests"
    elif fallback_times is not None and fallback_times.drop_nulls().len() >= 2:
        times, source = fallback_times.drop_nulls(), "resource/vars samples (no k6 data)"
    else:
        return None
    t0, t1 = float(times.min()), float(times.max())  # type: ignore[arg-type]
    span = t1 - t0
    if span <= 0:
        return None
    start, end = t0 + TRIM_FRACTION * span, t1 - TRIM_FRACTION * span
    method = f"{source}: first and last {TRIM_FRACTION:.0%} of the span dropped"
    if source == "k6 requests":
        refined = _refine(times.to_numpy(), start, end)
        if refined is not None and refined != (start, end):
            start, end = refined
            method += f"; narrowed to where the request rate is ≥ {RAMP_FRACTION:.0%} of its median"
    return Window(start, end, t0, t1, method)


def _refine(times: np.ndarray, start: float, end: float) -> tuple[float, float] | None:
    inside = times[(times >= start) & (times <= end)]
    n_buckets = int(np.floor((end - start) / RATE_BUCKET_S))
    if n_buckets < 3 or inside.size == 0:
        return None
    edges = start + RATE_BUCKET_S * np.arange(n_buckets + 1)
    counts, _ = np.histogram(inside, bins=edges)
    median = float(np.median(counts))
    if median <= 0:
        return None
    ok = np.nonzero(counts >= RAMP_FRACTION * median)[0]
    first, last = int(ok[0]), int(ok[-1])
    new_start = float(edges[first])
    # The last full bucket of the trim ends at edges[-1]; a remainder after it stays in.
    new_end = float(edges[last + 1]) if last + 1 < n_buckets else end
    return new_start, new_end
