"""perflab.analysis.metrics: selectors, counter increases (resets), Prometheus's rate(), and
histogram_quantile's rules as a decision table. (Against a real Prometheus:
tests/integration/test_prometheus_server.py.)
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from perflab.analysis import metrics as m
from perflab.ingest import ingest_path
from perflab.store import Store

INF, NAN = math.inf, math.nan
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def scrapes(tmp_path: Path, store: Store, bodies: list[tuple[float, str]], run: str = "r") -> int:
    """Ingest a series of 0.0.4 scrapes, each (seconds after T0, body); return the source id."""
    p = tmp_path / f"scrapes{len(list(tmp_path.iterdir()))}.prom"
    p.write_text("".join(f"# scrape_timestamp {at(s).isoformat()}\n{body}" for s, body in bodies))
    return ingest_path(store, p, run_id=run).source_id


# -- histogram_quantile: Prometheus's rules, one row each ----------------------------------------------

B = [(0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (INF, 50.0)]
QUANTILE_CASES = [
    ("interpolates inside a bucket", 0.5, B, 0.1 + 0.4 * (15 / 20)),
    ("the lowest bucket starts at 0", 0.05, B, 0.1 * (2.5 / 10)),
    ("q = 0 is the lowest bucket's start", 0.0, B, 0.0),
    ("a rank on a bucket's count is its upper bound", 0.6, B, 0.5),
    ("in the +Inf bucket: the second highest bound", 0.95, B, 1.0),
    ("q = 1 lands in +Inf too", 1.0, B, 1.0),
    ("q < 0 is -Inf", -0.1, B, -INF),
    ("q > 1 is +Inf", 1.1, B, INF),
    ("q NaN is NaN", NAN, B, NAN),
    ("no buckets", 0.5, [], NAN),
    ("no +Inf bucket", 0.5, [(0.1, 1.0), (1.0, 2.0)], NAN),
    ("only the +Inf bucket (fewer than two)", 0.5, [(INF, 5.0)], NAN),
    ("no observations", 0.5, [(0.1, 0.0), (INF, 0.0)], NAN),
    ("any order", 0.5, list(reversed(B)), 0.1 + 0.4 * (15 / 20)),
    ("a lowest bound ≤ 0 is returned as is", 0.1, [(-1.0, 10.0), (0.0, 20.0), (INF, 30.0)], -1.0),
    ("a lowest bound of 0", 0.2, [(0.0, 10.0), (1.0, 20.0), (INF, 30.0)], 0.0),
    ("negative bounds interpolate between them", 0.5, [(-2.0, 10.0), (-1.0, 20.0), (INF, 30.0)], -2.0 + 1.0 * 0.5),
    ("equal bounds are added together", 0.5, [(0.5, 10.0), (0.5, 10.0), (1.0, 30.0), (INF, 40.0)], 0.5),
    ("a count below a lower bucket's is raised to it", 0.75, [(0.1, 10.0), (0.5, 5.0), (1.0, 20.0), (INF, 20.0)],
     0.5 + 0.5 * (5 / 10)),
    ("non-monotonic +Inf is raised too", 0.75, [(0.1, 10.0), (1.0, 20.0), (INF, 15.0)], 0.1 + 0.9 * 0.5),
    # without the step the rank (a hair above 10) would fall in the 0.5 bucket, giving ~0.3
    ("counts within 1e-12 count as equal", 0.5000000000000025,
     [(0.1, 10.0), (0.5, 10.0 + 1e-13), (1.0, 20.0), (INF, 20.0)],
     0.5 + (1.0 - 0.5) * ((0.5000000000000025 * 20.0 - 10.0) / (20.0 - 10.0))),
    ("a NaN count of observations", 0.5, [(0.1, 1.0), (INF, NAN)], 0.1),
    ("rates (fractions) work like counts", 0.9, [(0.25, 0.5), (0.5, 1.5), (INF, 2.0)], 0.5),
]


@pytest.mark.parametrize(("case", "q", "buckets", "want"), QUANTILE_CASES, ids=[c[0] for c in QUANTILE_CASES])
def test_histogram_quantile(case: str, q: float, buckets: list[tuple[float, float]], want: float) -> None:
    got = m.histogram_quantile(q, buckets)
    assert (math.isnan(got) and math.isnan(want)) or got == want, (case, got, want)


def test_histogram_quantile_does_not_change_its_input() -> None:
    buckets = [(0.5, 5.0), (0.1, 10.0), (INF, 20.0)]
    m.histogram_quantile(0.5, buckets)
    assert buckets == [(0.5, 5.0), (0.1, 10.0), (INF, 20.0)]


# -- selectors ------------------------------------------------------------------------------------------

def test_parse_selector() -> None:
    sel = m.parse_selector('http_requests_total{code="200", method!="GET",path=~"/api/.*",x!~"a|b"}')
    assert sel == m.Selector("http_requests_total", (m.Matcher("code", "=", "200"), m.Matcher("method", "!=", "GET"),
                                                     m.Matcher("path", "=~", "/api/.*"), m.Matcher("x", "!~", "a|b")))
    assert str(sel) == 'http_requests_total{code="200",method!="GET",path=~"/api/.*",x!~"a|b"}'
    assert m.parse_selector("memstats.HeapInuse") == m.Selector("memstats.HeapInuse")
    assert m.parse_selector('x{a="q\\"uote"}').matchers[0].value == 'q"uote'
    for bad in ("", "9x", 'x{a=1}', 'x{a="1"', 'x{a=~"("}', "x y"):
        with pytest.raises(ValueError):
            m.parse_selector(bad)


def test_series_by_name_family_and_matchers(tmp_path: Path, store: Store) -> None:
    body = ('# TYPE req_total counter\nreq_total{code="200",path="/a"} 1\nreq_total{code="500",path="/b"} 2\n'
            'req_total{code="200"} 3\n')
    sid = scrapes(tmp_path, store, [(0, body), (1, body)])
    assert len(m.series(store, "r", "req_total")) == 3
    assert len(m.series(store, sid, "req")) == 3  # a counter's family finds its _total samples
    assert [s.labels for s in m.series(store, [sid], 'req_total{code="200"}')] == [
        {"code": "200", "path": "/a"}, {"code": "200"}]
    assert [s.labels for s in m.series(store, "r", 'req_total{path=""}')] == [{"code": "200"}]
    assert [s.labels["code"] for s in m.series(store, "r", 'req_total{path=~"/.*",code!~"2.."}')] == ["500"]
    one = m.series(store, "r", 'req_total{code="500"}')[0]
    assert (one.times, one.values, one.family, one.type) == ([at(0), at(1)], (2.0, 2.0), "req", "counter")
    assert m.series(store, "other-run", "req_total") == []
    assert m.series(store, [], "req_total") == []


# -- counters --------------------------------------------------------------------------------------------

COUNTER = [1.0, 5.0, 2.0, 4.0, 4.0, 10.0]  # one reset (5 → 2): it restarted from 0


@pytest.fixture
def counter(tmp_path: Path, store: Store) -> int:
    return scrapes(tmp_path, store, [(10 * i, f"# TYPE c_total counter\nc_total {v}\n") for i, v in enumerate(COUNTER)])


def test_plain_increase_handles_a_reset(store: Store, counter: int) -> None:
    (inc,) = m.increase(store, counter, "c_total")
    # 1→5: 4, reset: 2 (from 0), 2→4: 2, 4→4: 0, 4→10: 6 = 14 = last - first + the value before the reset
    assert (inc.increase, inc.resets, inc.samples, inc.seconds, inc.first, inc.last) == (14.0, 1, 6, 50.0, at(0),
                                                                                          at(50))
    assert inc.rate == 14.0 / 50.0
    (window,) = m.increase(store, counter, "c_total", start=at(20), end=at(40))
    assert (window.increase, window.resets, window.samples) == (2.0, 0, 3)
    (single,) = m.increase(store, counter, "c_total", start=at(45), end=at(55))
    assert (single.increase, single.rate, single.samples) == (None, None, 1)


def test_increase_by_step_adds_up_to_the_window(store: Store, counter: int) -> None:
    (steps,) = m.increase_by_step(store, counter, "c_total", at(0), at(60), 20)
    assert steps.starts == (at(0), at(20), at(40))
    # pairs end at 10 (4) | 20 (2, the reset) and 30 (2) | 40 (0) and 50 (6)
    assert steps.increases == (4.0, 4.0, 6.0)
    assert steps.rates == [0.2, 0.2, 0.3]
    (gappy,) = m.increase_by_step(store, counter, "c_total", at(0), at(100), 25)
    assert gappy.increases == (6.0, 2.0, 6.0, None)


def prom_reference(times: list[float], values: list[float], start: float, end: float, range_s: float) -> float:
    """Prometheus 2.x's extrapolatedRate for a counter, written out from its documentation."""
    inc = values[-1] - values[0] + sum(prev for prev, v in zip(values, values[1:], strict=False) if v < prev)
    to_start, to_end = times[0] - start, end - times[-1]
    sampled = times[-1] - times[0]
    avg = sampled / (len(times) - 1)
    if inc > 0 and values[0] >= 0:
        to_start = min(to_start, sampled * values[0] / inc)
    interval = sampled + (to_start if to_start < avg * 1.1 else avg / 2) + (to_end if to_end < avg * 1.1 else avg / 2)
    return inc * interval / sampled / range_s


def test_prom_rate_extrapolates_as_prometheus(store: Store, counter: int) -> None:
    # at 55 over 60 s: samples at 0..50 (all six); the start is 5 s before the first, the end 5 s after the last
    (rate,) = m.prom_rate(store, counter, "c_total", at(55), 60)
    assert rate.value == pytest.approx(prom_reference([0, 10, 20, 30, 40, 50], COUNTER, -5, 55, 60), rel=1e-15)
    (inc,) = m.prom_increase(store, counter, "c_total", at(55), 60)
    assert inc.value == pytest.approx(rate.value * 60, rel=1e-15)
    # the window [0, 60] includes the sample at 0 (Prometheus 2.x); left-open (3.x) does not
    (closed,) = m.prom_increase(store, counter, "c_total", at(60), 60)
    (opened,) = m.prom_increase(store, counter, "c_total", at(60), 60, left_open=True)
    assert closed.value == pytest.approx(prom_reference([0, 10, 20, 30, 40, 50], COUNTER, 0, 60, 60) * 60)
    assert opened.value == pytest.approx(prom_reference([10, 20, 30, 40, 50], COUNTER[1:], 0, 60, 60) * 60)
    # fewer than two samples in the range: no value
    assert m.prom_rate(store, counter, "c_total", at(50), 5) == []


def test_extrapolation_stops_at_the_counters_zero() -> None:
    # a counter at 1 then 11 ten seconds later: its zero lies 1 s before the first sample
    us = [10_000_000, 20_000_000]
    assert m.extrapolated_increase(us, [1.0, 11.0], 0, 20_000_000) == 10.0 * ((10 + 1) / 10)
    # far from the edges: half an interval each side
    assert m.extrapolated_increase(us, [100.0, 110.0], -100_000_000, 100_000_000) == 10.0 * ((10 + 5 + 5) / 10)
    assert m.extrapolated_increase(us[:1], [1.0], 0, 20_000_000) is None


def test_prom_rate_range_steps(store: Store, counter: int) -> None:
    (points,) = m.prom_rate_range(store, counter, "c_total", 20, at(20), at(50), 10)
    assert [p.at for p in points] == [at(20), at(30), at(40), at(50)]
    assert points[0].value == pytest.approx(prom_reference([0, 10, 20], COUNTER[:3], 0, 20, 20))


# -- histograms and summaries over stored samples --------------------------------------------------------

def _histogram(counts: list[float], code: str = "200") -> str:
    bounds = ["0.1", "0.5", "+Inf"]
    lines = "".join(f'lat_bucket{{code="{code}",le="{b}"}} {c}\n' for b, c in zip(bounds, counts, strict=True))
    return f"{lines}lat_count{{code=\"{code}\"}} {counts[-1]}\nlat_sum{{code=\"{code}\"}} 1\n"


def test_bucket_quantiles_latest_and_over_a_window(tmp_path: Path, store: Store) -> None:
    sid = scrapes(tmp_path, store, [
        (0, "# TYPE lat histogram\n" + _histogram([10, 10, 10]) + _histogram([0, 0, 0], "500")),
        (10, "# TYPE lat histogram\n" + _histogram([10, 30, 30]) + _histogram([0, 2, 4], "500")),
    ])
    latest = {q.labels["code"]: q for q in m.bucket_quantiles(store, sid, "lat", 0.5)}
    assert (latest["200"].value, latest["200"].observations) == (0.1 + 0.4 * (5 / 20), 30.0)
    assert latest["500"].value == 0.5  # rank 2 = the 0.5 bucket's count
    window = {q.labels["code"]: q for q in m.bucket_quantiles(store, sid, "lat", 0.5, start=at(0), end=at(10))}
    # only what was observed in the window: 20 observations, all between 0.1 and 0.5
    assert (window["200"].value, window["200"].observations) == (0.1 + 0.4 * (10 / 20), 20.0)
    only = m.bucket_quantiles(store, sid, "lat", 0.9, matchers=[m.Matcher("code", "=", "500")])
    assert [q.labels for q in only] == [{"code": "500"}]


def test_prom_histogram_quantile_is_histogram_quantile_of_rates(tmp_path: Path, store: Store) -> None:
    sid = scrapes(tmp_path, store, [(10 * i, "# TYPE lat histogram\n" + _histogram([i, 3 * i, 4 * i]))
                                    for i in range(5)])
    (q,) = m.prom_histogram_quantile(store, sid, "lat", 0.5, at(40), 40)
    rates = {p.labels["le"]: p.value for p in m.prom_rate(store, sid, "lat_bucket", at(40), 40)}
    assert q.value == m.histogram_quantile(0.5, [(float(le) if le != "+Inf" else INF, r) for le, r in rates.items()])
    assert q.observations == rates["+Inf"]


def test_summary_quantiles(tmp_path: Path, store: Store) -> None:
    body = ('# TYPE gc summary\ngc{quantile="0"} 0.001\ngc{quantile="0.5"} 0.002\ngc{quantile="1"} 0.01\n'
            "gc_sum 0.5\ngc_count {n}\n")
    sid = scrapes(tmp_path, store, [(0, body.replace("{n}", "10")), (5, body.replace("{n}", "12"))])
    (s,) = m.summary_quantiles(store, sid, "gc")
    assert (s.quantiles, s.count, s.sum, s.at, s.labels) == ({0.0: 0.001, 0.5: 0.002, 1.0: 0.01}, 12.0, 0.5, at(5),
                                                             {})
    (early,) = m.summary_quantiles(store, sid, "gc", at=at(1))
    assert early.count == 10.0
