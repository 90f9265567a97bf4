"""perflab against a real Prometheus (Debian's package): the same samples, the same answers.

GIVEN a small HTTP service serving prometheus_client's exposition of a histogram observed
with known values, a counter that resets once, a gauge and a summary, scraped every second
by a Prometheus started here (127.0.0.1, a free port, a temporary TSDB; stopped by its PID),
WHEN perflab ingests what Prometheus stored (the raw samples of a range selector through
/api/v1/query, a window through `perflab ingest --prometheus`), THEN perflab's
histogram_quantile, rate() and increase() over them equal Prometheus's own answers exactly
(==), edge cases included.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge, Histogram, Summary, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from perflab.analysis import metrics as m
from perflab.cli import main
from perflab.ingest import ingest_path
from perflab.store import Store

pytestmark = pytest.mark.slow

SCRAPES_WANTED = 14  # enough for 5 s and 10 s windows with several samples each, and the reset
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0)
# What each scrape observes first: a fixed cycle, so bucket rates differ between windows.
OBSERVATIONS = [(0.01, 3), (0.07, 1), (0.2, 4), (0.3, 2), (0.7, 1), (2.0, 1), (0.12, 5)]
RESET_AT_SCRAPE = 8  # the counter restarts from 0 here, as a restarted process's would


class RestartingCounter(Collector):
    """jobs_total: +7 a scrape, back to 0 once (a process restart)."""

    def __init__(self) -> None:
        self.value = 0.0

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("jobs", "Jobs done.", labels=["queue"])
        family.add_metric(["default"], self.value)
        yield family


@dataclass
class Target:
    url: str
    scrapes: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    reg = CollectorRegistry()
    latency = Histogram("lab_latency_seconds", "Latency.", buckets=BUCKETS, registry=reg)
    in_flight = Gauge("lab_in_flight", "In flight.", registry=reg)
    payload = Summary("lab_payload_bytes", "Payload.", registry=reg)
    jobs = RestartingCounter()
    reg.register(jobs)
    lock = threading.Lock()
    state = Target(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path != "/metrics":
                self.send_error(404)
                return
            with lock:
                state.scrapes += 1
                n = state.scrapes
                value, times = OBSERVATIONS[n % len(OBSERVATIONS)]
                for _ in range(times):
                    latency.observe(value)
                in_flight.set(n % 5)
                payload.observe(100 * n)
                jobs.value = 0.0 if n == RESET_AT_SCRAPE else jobs.value + 7
                body = generate_latest(reg)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def prometheus_binary() -> str:
    found = os.environ.get("PERFLAB_PROMETHEUS") or shutil.which("prometheus")
    if not found:
        pytest.fail("no prometheus binary (Debian package prometheus; scripts/ensure_system_packages.sh installs it)")
    return found


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def api_raw(base: str, path: str, **params: str) -> bytes:
    with urllib.request.urlopen(f"{base}{path}?{urllib.parse.urlencode(params)}", timeout=30) as response:
        body: bytes = response.read()
        return body


@pytest.fixture(scope="module")
def prometheus(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus scraping the target every second, until it has SCRAPES_WANTED samples of up."""
    tmp = tmp_path_factory.mktemp("prometheus")
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        f"scrape_configs:\n  - job_name: lab\n    static_configs:\n      - targets: ['{target.url}']\n"
    )
    port = free_port()
    log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [prometheus_binary(), f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp / "prometheus.log").read_text()[-2000:]
            try:
                doc = api(base, "/api/v1/query", query="count_over_time(up[10m])")
                result = doc["data"]["result"]
                if result and int(float(result[0]["value"][1])) >= SCRAPES_WANTED:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Prometheus did not scrape enough in 90 s"
            time.sleep(0.5)
        yield base
    finally:
        pid = proc.pid
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        assert proc.returncode is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def ms_time(base: str) -> tuple[str, datetime]:
    """An evaluation time (in ms) 0.3 s after the last stored scrape: the next scrape, a second
    after the last, falls after it, so Prometheus's samples up to it cannot change while we ask."""
    doc = api(base, "/api/v1/query", query="timestamp(up)")
    last = float(doc["data"]["result"][0]["value"][1])
    ms = round(last * 1000) + 300
    return f"{ms // 1000}.{ms % 1000:03d}", datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def prom_value(base: str, query: str, at: str) -> list[tuple[dict[str, str], float]]:
    doc = api(base, "/api/v1/query", query=query, time=at)
    assert doc["status"] == "success", doc
    return [(r["metric"], float(r["value"][1])) for r in doc["data"]["result"]]


@pytest.fixture(scope="module")
def raw(prometheus: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict[str, int], str, datetime]:
    """Prometheus's raw samples of each metric (range selectors through /api/v1/query), ingested."""
    tmp = tmp_path_factory.mktemp("raw")
    at_text, at = ms_time(prometheus)
    store = Store(tmp / "store.duckdb")
    sources = {}
    for name in ("lab_latency_seconds_bucket", "jobs_total", "lab_in_flight", "lab_payload_bytes_count"):
        path = tmp / f"{name}.json"
        path.write_bytes(api_raw(prometheus, "/api/v1/query", query=f"{name}[10m]", time=at_text))
        sources[name] = ingest_path(store, path, run_id="prom").source_id
    return store, sources, at_text, at


def test_the_raw_samples_are_prometheus_own(raw: tuple[Store, dict[str, int], str, datetime], prometheus: str) -> None:
    store, sources, at_text, _ = raw
    (jobs,) = m.series(store, sources["jobs_total"], "jobs_total")
    assert jobs.labels == {"instance": jobs.labels["instance"], "job": "lab", "queue": "default"}
    assert len(jobs.values) >= SCRAPES_WANTED
    assert min(jobs.values[i + 1] - jobs.values[i] for i in range(len(jobs.values) - 1)) < 0  # the reset
    buckets = m.series(store, sources["lab_latency_seconds_bucket"], "lab_latency_seconds_bucket")
    assert sorted(s.labels["le"] for s in buckets) == sorted(["0.05", "0.1", "0.25", "0.5", "1.0", "+Inf"])


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("range_s", [5, 10])
def test_histogram_quantile_of_rates_equals_prometheus(q: float, range_s: int, prometheus: str,
                                                       raw: tuple[Store, dict[str, int], str, datetime]) -> None:
    store, sources, at_text, at = raw
    ((_, theirs),) = prom_value(prometheus, f"histogram_quantile({q}, rate(lab_latency_seconds_bucket[{range_s}s]))",
                                at_text)
    (ours,) = m.prom_histogram_quantile(store, sources["lab_latency_seconds_bucket"], "lab_latency_seconds", q, at,
                                        range_s)
    assert ours.value == theirs, (q, range_s, ours.value, theirs)
    assert not math.isnan(theirs)


@pytest.mark.parametrize("q", ["0.5", "0.9", "0.99", "0", "1", "-0.5", "1.5", "NaN"])
def test_histogram_quantile_of_raw_buckets_equals_prometheus(q: str, prometheus: str,
                                                             raw: tuple[Store, dict[str, int], str, datetime]) -> None:
    store, sources, at_text, at = raw
    ((_, theirs),) = prom_value(prometheus, f"histogram_quantile({q}, lab_latency_seconds_bucket)", at_text)
    (ours,) = m.bucket_quantiles(store, sources["lab_latency_seconds_bucket"], "lab_latency_seconds", float(q), end=at)
    assert ours.value == theirs or (math.isnan(ours.value) and math.isnan(theirs)), (q, ours.value, theirs)


@pytest.mark.parametrize("range_s", [3, 5, 10, 20])
def test_rate_and_increase_across_the_reset_equal_prometheus(range_s: int, prometheus: str,
                                                            raw: tuple[Store, dict[str, int], str, datetime]) -> None:
    store, sources, at_text, at = raw
    for fn, ours_fn in (("rate", m.prom_rate), ("increase", m.prom_increase)):
        ((_, theirs),) = prom_value(prometheus, f"{fn}(jobs_total[{range_s}s])", at_text)
        (ours,) = ours_fn(store, sources["jobs_total"], "jobs_total", at, range_s)
        assert ours.value == theirs, (fn, range_s, ours.value, theirs)


def test_rate_at_every_step_of_a_range_equals_prometheus(prometheus: str,
                                                         raw: tuple[Store, dict[str, int], str, datetime]) -> None:
    store, sources, at_text, at = raw
    end_ms = round(at.timestamp() * 1000)
    start_ms = end_ms - 10_000
    doc = api(prometheus, "/api/v1/query_range", query="rate(jobs_total[4s])", start=f"{start_ms / 1000:.3f}",
              end=f"{end_ms / 1000:.3f}", step="1")
    theirs = {round(float(t) * 1000): float(v) for t, v in doc["data"]["result"][0]["values"]}
    (ours,) = m.prom_rate_range(store, sources["jobs_total"], "jobs_total", 4, at - timedelta(seconds=10), at, 1)
    assert {round(p.at.timestamp() * 1000): p.value for p in ours} == theirs
    assert len(theirs) == 11


def test_a_window_pulled_with_the_cli_gives_prometheus_quantiles(prometheus: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 raw: tuple[Store, dict[str, int], str, datetime]
                                                                 ) -> None:
    _, _, at_text, at = raw
    store_path = tmp_path / "pulled.duckdb"
    start = (at - timedelta(seconds=8)).isoformat().replace("+00:00", "Z")
    code = main(["--store", str(store_path), "ingest", "--prometheus", prometheus,
                 "--query", "lab_latency_seconds_bucket", "--start", start, "--end", at_text, "--step", "1s",
                 "--run", "pulled"])
    out = capsys.readouterr().out
    assert code == 0 and "(prometheus-api): " in out, out
    saved = list((tmp_path / "runs" / "pulled").glob("prometheus-*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["perflab_query"]["query"] == "lab_latency_seconds_bucket"
    doc = api(prometheus, "/api/v1/query_range", query="histogram_quantile(0.9, lab_latency_seconds_bucket)",
              start=f"{(at - timedelta(seconds=8)).timestamp():.3f}", end=at_text, step="1")
    theirs = [(round(float(t) * 1000), float(v)) for t, v in doc["data"]["result"][0]["values"]]
    with Store(store_path) as s:
        ours = []
        for t_ms, _ in theirs:
            when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=t_ms)
            buckets = [(float(x.labels["le"]), x.values[x.times.index(when)])
                       for x in m.series(s, "pulled", "lab_latency_seconds_bucket", start=when, end=when)]
            ours.append((t_ms, m.histogram_quantile(0.9, buckets)))
    assert ours == theirs and len(theirs) == 9


def test_a_nameless_expression_is_named_by_its_query_and_errors_are_prometheus_own(
        prometheus: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        raw: tuple[Store, dict[str, int], str, datetime]) -> None:
    _, _, at_text, at = raw
    store_path = tmp_path / "expr.duckdb"
    start = f"{(at - timedelta(seconds=5)).timestamp():.3f}"
    assert main(["--store", str(store_path), "ingest", "--prometheus", prometheus, "--query",
                 "sum(rate(jobs_total[3s]))", "--start", start, "--end", at_text]) == 0
    with Store(store_path) as s:
        assert s.sql("SELECT DISTINCT name FROM metric_samples")["name"].to_list() == ["sum(rate(jobs_total[3s]))"]
    capsys.readouterr()
    code = main(["--store", str(store_path), "ingest", "--prometheus", prometheus, "--query", "rate((",
                 "--start", start, "--end", at_text])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"perflab: {prometheus}: Prometheus answered an error (bad_data): ")
    assert "parse error" in err


def test_the_gauge_and_summary_samples_arrive_too(raw: tuple[Store, dict[str, int], str, datetime]) -> None:
    store, sources, _, _ = raw
    (gauge,) = m.series(store, sources["lab_in_flight"], "lab_in_flight")
    assert set(gauge.values) <= {0.0, 1.0, 2.0, 3.0, 4.0} and len(gauge.values) >= SCRAPES_WANTED
    (count,) = m.increase(store, sources["lab_payload_bytes_count"], "lab_payload_bytes_count")
    assert count.increase == count.samples - 1  # one observation a scrape

