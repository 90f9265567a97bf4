"""Prometheus text exposition and OpenMetrics ingest, on what prometheus_client writes.

GIVEN exposition text generated at test time by the Python client library (0.0.4 and
OpenMetrics, one scrape or a series), WHEN it is ingested, THEN every sample is a row with
its name, family, type, canonical labels, value (NaN and ±Inf kept), time and exemplar; bad
input is refused with one line and leaves the store as it was.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from perflab.ingest import detect, ingest_path
from perflab.store import Store
from tests.helpers import assert_ingest_refused, store_fingerprint

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def registry() -> CollectorRegistry:
    """A counter with labels, a gauge, a histogram with an exemplar, a summary: known values."""
    reg = CollectorRegistry()
    requests = Counter("http_requests", "Requests.", ["code"], registry=reg)
    requests.labels("200").inc(7)
    requests.labels("500").inc(2)
    Gauge("in_flight", "In flight.", registry=reg).set(3)
    latency = Histogram("latency_seconds", "Latency.", buckets=(0.1, 0.5, 1.0), registry=reg)
    for v in (0.05, 0.3, 0.3, 0.7):
        latency.observe(v)
    latency.observe(2.5, exemplar={"trace_id": "abc"})
    Summary("payload_bytes", "Payload.", registry=reg).observe(512)
    return reg


def rows(store: Store, source_id: int) -> list[dict[str, Any]]:
    return store.sql(
        "SELECT epoch_us(t) AS t, name, family, type, CAST(labels AS VARCHAR) AS labels, value, "
        "CAST(exemplar AS VARCHAR) AS exemplar FROM metric_samples WHERE source_id = ? ORDER BY t, name, labels",
        [source_id],
    ).to_dicts()


def test_a_single_scrape_is_every_sample_without_a_time(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "metrics.txt"
    path.write_bytes(generate_latest(registry()))
    result = ingest_path(store, path, run_id="r1")
    assert result.kind == "prometheus"
    got = {(r["name"], r["labels"]): r for r in rows(store, result.source_id)}
    assert all(r["t"] is None for r in got.values())
    assert got[("http_requests_total", '{"code":"200"}')] | {"t": None} == {
        "t": None, "name": "http_requests_total", "family": "http_requests", "type": "counter",
        "labels": '{"code":"200"}', "value": 7.0, "exemplar": None}
    assert got[("in_flight", "{}")]["type"] == "gauge"
    buckets = {r["labels"]: r["value"] for (name, _), r in got.items() if name == "latency_seconds_bucket"}
    assert buckets == {'{"le":"0.1"}': 1.0, '{"le":"0.5"}': 3.0, '{"le":"1.0"}': 4.0, '{"le":"+Inf"}': 5.0}
    assert got[("latency_seconds_count", "{}")]["value"] == 5.0
    assert got[("latency_seconds_sum", "{}")]["value"] == pytest.approx(3.85)
    assert {got[(n, "{}")]["family"] for n in ("latency_seconds_count", "latency_seconds_sum")} == {"latency_seconds"}
    assert got[("payload_bytes_sum", "{}")]["type"] == "summary"
    # 0.0.4 writes _created as a gauge family of its own
    assert got[("http_requests_created", '{"code":"200"}')]["family"] == "http_requests_created"
    assert store.sql("SELECT run_id FROM metric_samples WHERE source_id = ? LIMIT 1",
                     [result.source_id])["run_id"][0] == "r1"


def test_openmetrics_keeps_created_and_exemplars(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "metrics.om"
    path.write_bytes(generate_openmetrics(registry()))
    result = ingest_path(store, path)
    got = {(r["name"], r["labels"]): r for r in rows(store, result.source_id)}
    created = got[("http_requests_created", '{"code":"200"}')]
    assert (created["family"], created["type"]) == ("http_requests", "counter")
    assert got[("latency_seconds_created", "{}")]["family"] == "latency_seconds"
    inf = got[("latency_seconds_bucket", '{"le":"+Inf"}')]
    exemplar = json.loads(inf["exemplar"])
    assert exemplar["labels"] == {"trace_id": "abc"} and exemplar["value"] == "2.5"
    assert isinstance(exemplar["timestamp"], float)
    assert got[("latency_seconds_bucket", '{"le":"0.1"}')]["exemplar"] is None


def test_a_series_of_scrapes_takes_each_scrapes_time(tmp_path: Path, store: Store) -> None:
    reg = CollectorRegistry()
    c = Counter("jobs", "Jobs.", registry=reg)
    parts = []
    for i, stamp in enumerate((str(T0), "2026-01-01T00:00:01.5Z", f"{T0 + 3}.25")):
        c.inc(i + 1)
        parts.append(f"# scrape_timestamp {stamp}\n".encode() + generate_latest(reg))
    path = tmp_path / "scrapes.prom"
    path.write_bytes(b"".join(parts))
    result = ingest_path(store, path)
    assert result.stats["scrapes"] == 3
    jobs = [(r["t"], r["value"]) for r in rows(store, result.source_id) if r["name"] == "jobs_total"]
    assert jobs == [(T0 * 10**6, 1.0), (T0 * 10**6 + 1_500_000, 3.0), ((T0 + 3) * 10**6 + 250_000, 6.0)]


def test_openmetrics_scrapes_may_just_follow_each_other(tmp_path: Path, store: Store) -> None:
    reg = registry()
    path = tmp_path / "two.om"
    path.write_bytes(generate_openmetrics(reg) + f"# scrape_timestamp {T0}\n".encode() + generate_openmetrics(reg))
    result = ingest_path(store, path)
    times = {r["t"] for r in rows(store, result.source_id) if r["name"] == "in_flight"}
    assert times == {None, T0 * 10**6}


def test_samples_with_their_own_timestamps(tmp_path: Path, store: Store) -> None:
    text = (f"# TYPE temp gauge\ntemp{{room=\"a\"}} 21.5 {T0}123\ntemp{{room=\"a\"}} 22 {T0 + 1}000\n"
            f"# scrape_timestamp {T0 + 60}\ntemp{{room=\"a\"}} 23\n")
    p = tmp_path / "own.prom"
    p.write_text(text)
    got = [(r["t"], r["value"]) for r in rows(store, ingest_path(store, p).source_id)]
    assert got == [(T0 * 10**6 + 123_000, 21.5), ((T0 + 1) * 10**6, 22.0), ((T0 + 60) * 10**6, 23.0)]
    om = tmp_path / "own.om"
    om.write_text(f"# TYPE temp gauge\ntemp 1 {T0}.125\ntemp 2 {T0 + 1}\n# EOF\n")
    got = [(r["t"], r["value"]) for r in rows(store, ingest_path(store, om).source_id)]
    assert got == [(T0 * 10**6 + 125_000, 1.0), ((T0 + 1) * 10**6, 2.0)]


def test_values_keep_nan_and_infinities_and_a_counter_keeps_its_name(tmp_path: Path, store: Store) -> None:
    p = tmp_path / "odd.prom"
    p.write_text("# TYPE ratio gauge\nratio{k=\"nan\"} NaN\nratio{k=\"inf\"} +Inf\nratio{k=\"-inf\"} -Inf\n"
                 "# TYPE restarts counter\nrestarts 4\nuntyped_thing{a=\"x\\\"y\"} 1e3\n")
    got = {(r["name"], r["labels"]): r for r in rows(store, ingest_path(store, p).source_id)}
    assert math.isnan(got[("ratio", '{"k":"nan"}')]["value"])
    assert got[("ratio", '{"k":"inf"}')]["value"] == math.inf
    assert got[("ratio", '{"k":"-inf"}')]["value"] == -math.inf
    # a counter declared without _total keeps its exposed name (the parser would add _total)
    assert (got[("restarts", "{}")]["family"], got[("restarts", "{}")]["type"]) == ("restarts", "counter")
    assert got[("untyped_thing", '{"a":"x\\"y"}')]["type"] == "untyped"


def test_detected_by_content_not_by_extension(tmp_path: Path) -> None:
    p = tmp_path / "scrape.csv"
    p.write_bytes(generate_latest(registry()))
    assert detect(p) == ("prometheus", False)
    bare = tmp_path / "bare.dat"
    bare.write_text('up{job="x"} 1\nup{job="y"} 0\n')
    assert detect(bare)[0] == "prometheus"
    stacks = tmp_path / "stacks.txt"
    stacks.write_text("main;handler;bcrypt 12\nmain;idle 3\n")
    assert detect_or_none(stacks) != "prometheus"


def detect_or_none(path: Path) -> str | None:
    from perflab.errors import InputError

    try:
        return detect(path)[0]
    except InputError:
        return None


def test_the_same_file_twice_is_stored_once(tmp_path: Path, store: Store) -> None:
    p = tmp_path / "m.prom"
    p.write_bytes(generate_latest(registry()))
    first = ingest_path(store, p)
    again = ingest_path(store, p)
    assert (again.new, again.source_id) == (False, first.source_id)


# -- bad input ------------------------------------------------------------------------------------------

def _write(name: str, text: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        p = tmp / name
        p.write_text(text)
        return p
    return make


def _many_series(tmp: Path) -> Path:
    p = tmp / "cardinality.prom"
    p.write_text("# TYPE hits counter\n" + "".join(f'hits_total{{user="u{i}"}} 1\n' for i in range(100_000)))
    return p


_GOOD = "# HELP up Up.\n# TYPE up gauge\nup 1\n"
BAD_CASES: dict[str, tuple[Callable[[Path], Path], str, list[str]]] = {
    "malformed line": (_write("bad.prom", _GOOD + "# TYPE x gauge\nx{a=\"1\" 2\n"),
                       "line 5: not a valid exposition line", []),
    "malformed value": (_write("badv.prom", _GOOD + "x 1\nx_two abc\n"), "line 5: not a valid exposition line", []),
    "malformed openmetrics line": (_write("bad.om", "# TYPE x gauge\nx 1\nx{ 2\n# EOF\n"),
                                   "line 3: not a valid OpenMetrics line", []),
    "malformed line in the second scrape": (
        _write("second.prom", f"# scrape_timestamp {T0}\n{_GOOD}# scrape_timestamp {T0 + 1}\n{_GOOD}up one\n"),
        "line 9: not a valid exposition line", []),
    "duplicate series": (_write("dup.prom", _GOOD + 'x{a="1"} 1\nx{a="2"} 1\nx{a="1"} 2\n'),
                         'duplicate series x{a="1"} in the scrape starting at line 1', []),
    "duplicate series in openmetrics": (_write("dup.om", "# TYPE x gauge\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n# EOF\n"),
                                        "duplicate series in the scrape of lines 1–4", []),
    "NaN timestamp": (_write("nants.prom", _GOOD + "x 1 NaN\n"), "x: timestamp nan is not a time", []),
    "le NaN": (_write("lenan.prom", '# TYPE h histogram\nh_bucket{le="NaN"} 1\nh_bucket{le="+Inf"} 1\nh_count 1\n'
                                    'h_sum 1\n'), 'h_bucket{le="NaN"}: a bucket with le="NaN": not a number', []),
    "bucket without le": (_write("nole.prom", '# TYPE h histogram\nh_bucket 1\nh_count 1\nh_sum 1\n'),
                          "h_bucket: a bucket without an le label", []),
    "le NaN in openmetrics": (_write("lenan.om", '# TYPE h histogram\nh_bucket{le="NaN"} 1\nh_bucket{le="+Inf"} 1\n'
                                                 "h_count 1\nh_sum 1\n# EOF\n"),
                              "line 2: not a valid OpenMetrics line (Invalid le label", []),
    "bad scrape timestamp": (_write("badts.prom", f"# scrape_timestamp {T0}\n{_GOOD}# scrape_timestamp soon\n{_GOOD}"),
                             "line 5: scrape timestamp: 'soon' is not RFC 3339", []),
    "NaN scrape timestamp": (_write("nants2.prom", f"# scrape_timestamp NaN\n{_GOOD}"),
                             "line 1: scrape timestamp: 'NaN' is not RFC 3339", []),
    "100,000 series": (_many_series, "more than 50000 series in one file (50001 seen", []),
    "cap from the command line": (_write("few.prom", "".join(f'g{{i="{i}"}} 1\n' for i in range(12))),
                                  "more than 10 series in one file (11 seen", ["--max-series", "10"]),
    "not UTF-8": (lambda tmp: (tmp / "latin.prom").write_bytes(b"# TYPE x gauge\nx{a=\"\xe9\"} 1\n")
                  and tmp / "latin.prom", "line 2: not UTF-8 text", []),
}


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, Any]:
    """A store that already holds a scrape, so "unchanged" means something."""
    store_path = tmp_path / "seeded.duckdb"
    seed = tmp_path / "seed.prom"
    seed.write_bytes(generate_latest(registry()))
    with Store(store_path) as s:
        ingest_path(s, seed, run_id="r1")
        return store_path, store_fingerprint(s)


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_exits_2_with_one_line_and_leaves_the_store_unchanged(
    case: str, tmp_path: Path, seeded: tuple[Path, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    make, phrase, extra = BAD_CASES[case]
    store_path, before = seeded
    assert_ingest_refused(store_path, before, make(tmp_path), phrase, extra, capsys)


def test_the_cap_can_be_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    from perflab.cli import main

    few = _write("few.prom", "".join(f'g{{i="{i}"}} 1\n' for i in range(12)))(tmp_path)
    monkeypatch.setenv("PERFLAB_MAX_SERIES", "11")
    assert main(["--store", str(tmp_path / "a.duckdb"), "ingest", str(few)]) == 2
    assert "more than 11 series" in capsys.readouterr().err
    assert main(["--store", str(tmp_path / "a.duckdb"), "ingest", "--max-series", "12", str(few)]) == 0
    monkeypatch.setenv("PERFLAB_MAX_SERIES", "12")
    with Store(tmp_path / "b.duckdb") as s:
        assert ingest_path(s, few).stats["series"] == 12
