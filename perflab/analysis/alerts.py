"""The tuning guide's monitoring alerts, evaluated over a run's steady state.

Each rule of the guide's "Monitoring Alerts" section becomes a threshold on one series
of the run. A rule **fires** when a sample of its series inside the steady window is
strictly above the threshold; it is reported with how long the series stayed above
(seconds, summed over the samples above), the longest unbroken stretch above, and the
peak::

    value
      │         peak ─►  ▄█▄
      │ threshold ─ ─ ─ ███─█▄─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ─      fired: yes
      │      ▂▃▅▆▇▇▇▇▇▇▇██████▇▇▆▅▃▂                  above: the width of the samples over
      │ ▁▁▂▂▃                                          the line; longest: their longest run
      └──┬──────────────────────────────────┬── time
       window start                      window end

The guide's ``for:`` durations (1–5 minutes) are longer than a lab run (12–30 s), so
"fired" does not wait for them; ``sustained`` says whether the longest stretch above
lasted the rule's ``for:`` as well, i.e. whether a production alert would have paged.

    rule                        series                                        threshold
    DatabaseConnectionPoolHigh  pool_in_use / pool_size (roles)               > 0.8
    HighAPILatency              k6 p95 of http_req_duration per interval      > 500 ms
    HighErrorRate               k6 http_req_failed rate per interval          > 1 %
    BufferSizeHigh              buffer_depth / buffer_limit (roles)           > 0.8

Samples carry the time they cover (``dt_s``): a k6 interval covers the interval; a
gauge sample (the service's metrics, by role) holds until the next sample (the last one for the median
spacing of the series). The pure functions (:func:`evaluate_rule`,
:func:`sample_durations`) take plain arrays and are what the decision-table tests
drive; :func:`evaluate_alerts` reads the series of a run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from perflab.analysis.loadtest import k6_timeseries
from perflab.analysis.roles import gauge_levels
from perflab.analysis.run import Run
from perflab.analysis.steady import Window
from perflab.jsonable import optional

# The k6 interval over which p95 and error rate are computed: the lab samples resources
# at 4 Hz and k6 at every request, and a second holds 10–40 requests at the lab's rates,
# enough for an error rate of 1 % to be told from 0 (a shorter interval holds too few).
ALERT_INTERVAL_S = 1.0
# The guide's "80% of 100,000 limit": used only when the run publishes no buffer_limit and
# its settings name no BUFFER_LIMIT.
DEFAULT_BUFFER_LIMIT = 100_000.0
# "80 % of" is the guide's margin for the pool and the buffer: enough warning to add
# connections or flush faster before requests queue or are refused.
FILL_FRACTION = 0.8
# The guide's HighAPILatency: p95 over 500 ms. It is also the doctor's latency bar for
# the false-idle and login-storm signatures (ten times the healthy p95 of 33–38 ms).
P95_THRESHOLD_MS = 500.0
# The guide's HighErrorRate: more than 1 % of requests failing.
ERROR_RATE_THRESHOLD = 0.01

POOL_ROLES = ("pool_in_use", "pool_size")


@dataclass(frozen=True)
class AlertRule:
    """One alert of the tuning guide: what it watches and when it fires."""

    name: str
    expr: str          # the condition in the run's own terms
    threshold: float   # fires when the series is strictly above this
    unit: str          # of the series and the threshold: "ratio", "ms", "rate"
    for_s: float       # the guide's `for:` duration
    severity: str
    action: str
    series: str        # where the series comes from


POOL_RULE = AlertRule(
    "DatabaseConnectionPoolHigh", f"pool_in_use / pool_size > {FILL_FRACTION:g}",
    FILL_FRACTION, "ratio", 300.0, "warning", "Increase connection pool or scale database",
    "the service's pool metrics (roles pool_in_use, pool_size)")
LATENCY_RULE = AlertRule(
    "HighAPILatency", f"k6 http_req_duration p95 per {ALERT_INTERVAL_S:g} s > {P95_THRESHOLD_MS:g} ms",
    P95_THRESHOLD_MS, "ms", 120.0, "warning", "Scale up backend instances", "k6 requests")
ERROR_RULE = AlertRule(
    "HighErrorRate", f"k6 http_req_failed rate per {ALERT_INTERVAL_S:g} s > {ERROR_RATE_THRESHOLD:.0%}",
    ERROR_RATE_THRESHOLD, "rate", 60.0, "critical", "Investigate immediately, check logs", "k6 requests")
BUFFER_RULE = AlertRule(
    "BufferSizeHigh", f"buffer_depth / buffer_limit > {FILL_FRACTION:g}",
    FILL_FRACTION, "ratio", 300.0, "warning", "Increase flush frequency or scale event handler",
    "the service's buffer metrics (roles buffer_depth, buffer_limit)")
RULES: tuple[AlertRule, ...] = (POOL_RULE, LATENCY_RULE, ERROR_RULE, BUFFER_RULE)


@dataclass
class AlertResult:
    """One rule over a run's steady window. ``fired`` is None when the run lacks the rule's
    series (``reason`` says which); times are seconds since the run's first sample."""

    rule: str
    fired: bool | None
    threshold: float
    unit: str
    for_s: float
    reason: str | None = optional()
    seconds_above: float | None = optional()
    longest_above_s: float | None = optional()
    sustained: bool | None = optional()
    peak: float | None = optional()
    peak_at_s: float | None = optional()
    first_above_s: float | None = optional()
    samples: int | None = optional()
    samples_above: int | None = optional()
    buffer_limit: float | None = optional()  # BufferSizeHigh only: the limit the depth is a share of
    buffer_limit_from: str | None = optional()
    peak_depth: float | None = optional()


# -- the pure part ------------------------------------------------------------------------

def sample_durations(t_s: Sequence[float]) -> np.ndarray:
    """How long each gauge sample holds: until the next sample; the last one for the median
    spacing (a lone sample covers 0 s). ``t_s`` ascending."""
    t = np.asarray(t_s, dtype=np.float64)
    if t.size < 2:
        return np.zeros(t.size)
    gaps = np.diff(t)
    return np.append(gaps, float(np.median(gaps)))


def evaluate_rule(rule: AlertRule, t_s: Sequence[float], values: Sequence[float | None],
                  dt_s: Sequence[float]) -> AlertResult:
    """Whether ``rule`` fired over the samples given (already cut to the window).

    A null or NaN value (an interval without requests) is no evidence either way: it is
    not above, and it breaks an unbroken stretch. Peak and its time are None when there
    is no sample with a value.
    """
    t = np.asarray(t_s, dtype=np.float64)
    v = np.asarray([math.nan if x is None else float(x) for x in values], dtype=np.float64)
    dt = np.asarray(dt_s, dtype=np.float64)
    if not (t.size == v.size == dt.size):
        raise ValueError("t_s, values and dt_s must have the same length")
    known = ~np.isnan(v)
    above = known & (v > rule.threshold)
    longest = current = 0.0
    for is_above, d in zip(above.tolist(), dt.tolist(), strict=True):
        current = current + d if is_above else 0.0
        longest = max(longest, current)
    peak = peak_at = None
    if known.any():
        i = int(np.nanargmax(v))
        peak, peak_at = float(v[i]), float(t[i])
    return AlertResult(
        rule=rule.name, fired=bool(above.any()), threshold=rule.threshold, unit=rule.unit, for_s=rule.for_s,
        seconds_above=float(dt[above].sum()), longest_above_s=float(longest),
        sustained=bool(above.any()) and longest >= rule.for_s, peak=peak, peak_at_s=peak_at,
        first_above_s=float(t[above][0]) if above.any() else None,
        samples=int(known.sum()), samples_above=int(above.sum()),
    )


def not_measured(rule: AlertRule, reason: str) -> AlertResult:
    """The answer for a rule whose series the run does not have."""
    return AlertResult(rule=rule.name, fired=None, threshold=rule.threshold, unit=rule.unit, for_s=rule.for_s,
                       reason=reason)


# -- the run's series ---------------------------------------------------------------------

def _in_window(df: pl.DataFrame, window: Window | None) -> pl.DataFrame:
    return df if window is None or df.is_empty() else window.filter(df)


def _gauge(run: Run, role: str) -> pl.DataFrame:
    return gauge_levels(run.signals, role)


def buffer_limit(run: Run) -> tuple[float, str]:
    """(the buffer's limit, where it came from): the service's buffer_limit role, the run's
    settings (BUFFER_LIMIT), else the guide's default."""
    limit = _gauge(run, "buffer_limit")
    if limit.height and limit["value"][-1] > 0:
        src = run.roles.sources.get("buffer_limit")
        return float(limit["value"][-1]), f"the service's {src.metric if src else 'buffer_limit'}"
    setting = str(run.settings.get("BUFFER_LIMIT", "")).strip()
    if setting.isdigit():
        return float(setting), "the run's manifest (BUFFER_LIMIT)"
    return DEFAULT_BUFFER_LIMIT, f"the guide's default ({DEFAULT_BUFFER_LIMIT:,.0f}; the run does not publish it)"


def _gauge_series(df: pl.DataFrame) -> tuple[list[float], list[float], list[float]]:
    t = df["t_s"].to_list()
    return t, df["value"].to_list(), sample_durations(t).tolist()


def evaluate_alerts(run: Run, interval_s: float = ALERT_INTERVAL_S) -> list[AlertResult]:
    """Every rule of :data:`RULES` over the run's steady window (the whole run when it has
    none). One answer per rule, in order; a rule without its series answers ``fired:
    None`` with the reason. Times in the answers are seconds since the run's first sample."""
    window = run.window
    origin = window.t0_s if window else 0.0
    out: list[AlertResult] = []

    # Pool: both gauges are written by one /debug/vars poll, so they share the instant.
    checked, size = _gauge(run, POOL_ROLES[0]), _gauge(run, POOL_ROLES[1])
    if checked.is_empty() or size.is_empty():
        missing = " and ".join(k for k, d in zip(POOL_ROLES, (checked, size), strict=True) if d.is_empty())
        out.append(not_measured(POOL_RULE, f"no metric for the {missing} role in this run"))
    else:
        ratio = (checked.join(size.rename({"value": "size"}), on="t_s", how="inner")
                 .filter(pl.col("size") > 0)
                 .select("t_s", (pl.col("value") / pl.col("size")).alias("value")).sort("t_s"))
        out.append(_evaluate_series(POOL_RULE, _in_window(ratio, window), origin,
                                    "no pool sample with a positive pool size in the steady window"))

    ts = _k6_intervals(run, interval_s)
    if ts is None:
        out.append(not_measured(LATENCY_RULE, "no k6 requests in this run"))
        out.append(not_measured(ERROR_RULE, "no k6 requests in this run"))
    else:
        for rule, col in ((LATENCY_RULE, "p95_ms"), (ERROR_RULE, "error_rate")):
            part = _in_window(ts, window).select("t_s", pl.col(col).alias("value"), "dt_s")
            if part.is_empty() or part["value"].drop_nulls().is_empty():
                out.append(not_measured(rule, "no k6 requests in the steady window"))
                continue
            r = evaluate_rule(rule, part["t_s"].to_list(), part["value"].to_list(), part["dt_s"].to_list())
            out.append(_relative(r, origin))

    depth = _gauge(run, "buffer_depth")
    if depth.is_empty():
        out.append(not_measured(BUFFER_RULE, "no metric for the buffer_depth role in this run"))
    else:
        limit, limit_from = buffer_limit(run)
        frac = depth.select("t_s", (pl.col("value") / limit).alias("value"))
        r = _evaluate_series(BUFFER_RULE, _in_window(frac, window), origin,
                             "no buffer sample in the steady window")
        r.buffer_limit, r.buffer_limit_from = limit, limit_from
        if r.peak is not None:
            r.peak_depth = r.peak * limit
        out.append(r)
    return out


def _evaluate_series(rule: AlertRule, df: pl.DataFrame, origin: float, empty_reason: str) -> AlertResult:
    if df.is_empty():
        return not_measured(rule, empty_reason)
    t, v, dt = _gauge_series(df)
    return _relative(evaluate_rule(rule, t, v, dt), origin)


def _relative(r: AlertResult, origin: float) -> AlertResult:
    if r.peak_at_s is not None:
        r.peak_at_s = round(r.peak_at_s - origin, 3)
    if r.first_above_s is not None:
        r.first_above_s = round(r.first_above_s - origin, 3)
    return r


def _k6_intervals(run: Run, interval_s: float) -> pl.DataFrame | None:
    """k6's per-interval p95 and error rate, with each interval's middle as ``t_s``
    (an interval belongs to the window when its middle does)."""
    sids = run.k6_point_sources
    if not sids:
        return None
    ts = k6_timeseries(run.store, sids, interval_s)
    if ts.is_empty():
        return None
    return ts.select(
        (pl.col("t").dt.epoch("us") / 1e6 + interval_s / 2).alias("t_s"),
        pl.lit(interval_s).alias("dt_s"), "p95_ms", "error_rate")


def rules_table() -> list[dict[str, Any]]:
    """The rules as plain data (for the report's and the JSON's rule list)."""
    return [asdict(r) for r in RULES]
