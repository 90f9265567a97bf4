"""The sample service against real PostgreSQL, run as a real uvicorn subprocess."""

from __future__ import annotations

import gzip
import json
import marshal
import pstats
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

from perflab.ingest import pprof_proto
from tests.helpers import run_cli
from tests.workload.harness import ROOT, Databases, Service

pytestmark = pytest.mark.slow

RECORDS = "SELECT count(*) FROM game_records"


def wait_for(cond: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def record(i: int = 0) -> dict[str, int]:
    return {"user_id": 1 + i % 200, "challenge_id": 1 + i % 10, "score": 100 + i, "duration_ms": 60_000}


def counters(svc: Service) -> dict[str, Any]:
    return svc.vars()["counters"]


def test_login_bcrypt_and_loopback_only(databases: Databases, start_service: Any) -> None:
    url = databases.new()
    svc = start_service(url, HOST="0.0.0.0")

    ok = svc.post("/login", {"user": "user7", "password": "password"})
    assert ok.status == 200 and ok.json()["user_id"] == 7 and len(ok.json()["token"]) == 32
    assert svc.post("/login", {"user": "user7", "password": "wrong"}).status == 401
    assert svc.post("/login", {"user": "nobody", "password": "password"}).status == 401
    assert svc.post("/login", {"user": 5}).status == 400

    # The hash stored at seed has the configured cost.
    assert databases.scalar(url, "SELECT string_agg(DISTINCT substr(password_hash, 1, 7), ',') FROM users") == "$2b$04$"
    c = counters(svc)
    assert (c["logins_ok"], c["logins_failed"]) == (1, 2)
    assert c["requests"]["POST /login"] == {"200": 1, "401": 2, "400": 1}
    # readiness polls and /debug/vars reads are listed by route but are not workload requests
    assert c["requests_total"] == 4 and c["requests"]["GET /healthz"]["200"] >= 1

    # HOST=0.0.0.0 was refused: every listening socket is on 127.0.0.1.
    listening = [conn.laddr for conn in psutil.Process(svc.proc.pid).net_connections("inet")
                 if conn.status == psutil.CONN_LISTEN]
    assert listening and {a.ip for a in listening} == {"127.0.0.1"} and {a.port for a in listening} == {svc.port}
    assert "HOST=0.0.0.0 ignored" in svc.log_text()


def test_single_mode_writes_one_row_per_accepted_request(databases: Databases, start_service: Any) -> None:
    url = databases.new()
    svc = start_service(url, WRITE_MODE="single")
    before = databases.scalar(url, RECORDS)
    q0 = counters(svc)["db_queries"]

    statuses = [svc.post("/records", record(i)).status for i in range(30)]
    assert svc.post("/records", {"user_id": "x", "challenge_id": 1, "score": 1}).status == 400

    assert statuses == [201] * 30
    assert databases.scalar(url, RECORDS) - before == 30
    c = counters(svc)
    assert c["records_accepted"] == c["records_written"] == 30
    assert c["db_queries_by_route"]["POST /records"] == 30
    assert c["db_queries"] - q0 == 30  # one INSERT per record, nothing else
    assert c["requests"]["POST /records"] == {"201": 30, "400": 1}
    assert svc.stop_gracefully()


@pytest.mark.parametrize("method", ["copy", "upsert"])
def test_batch_mode_flushes_by_size_and_at_sigterm(databases: Databases, start_service: Any, method: str) -> None:
    url = databases.new()
    svc = start_service(url, WRITE_MODE="batch", FLUSH_METHOD=method, FLUSH_INTERVAL_S="60", FLUSH_MAX_RECORDS="10")
    before = databases.scalar(url, RECORDS)

    # GIVEN ten records: FLUSH_MAX_RECORDS triggers a flush long before the 60 s interval
    assert [svc.post("/records", record(i)).status for i in range(10)] == [202] * 10
    wait_for(lambda: counters(svc)["records_written"] == 10, what="the size-triggered flush")
    assert databases.scalar(url, RECORDS) - before == 10
    # AND seven more that stay buffered
    assert [svc.post("/records", record(i)).status for i in range(10, 17)] == [202] * 7
    v = svc.vars()
    assert v["gauges"]["buffer_depth"] == 7 and v["counters"]["flushes"] == 1
    assert databases.scalar(url, RECORDS) - before == 10

    # WHEN the service gets SIGTERM THEN the buffer is flushed before it exits
    assert svc.stop_gracefully()
    assert databases.scalar(url, RECORDS) - before == 17
    assert "record buffer flushed at shutdown" in svc.log_text()
    # and each accepted record is there exactly once, with its lag recorded
    assert databases.scalar(url, "SELECT count(DISTINCT record_id) FROM game_records") - before == 17


def test_interval_flush_and_failed_flush_keeps_records_and_full_buffer_is_503(
        databases: Databases, start_service: Any) -> None:
    url = databases.new()
    svc = start_service(url, WRITE_MODE="batch", FLUSH_INTERVAL_S="0.2", BUFFER_LIMIT="5")
    before = databases.scalar(url, RECORDS)
    assert svc.post("/records", record(0)).status == 202
    wait_for(lambda: databases.scalar(url, RECORDS) - before == 1, what="the interval flush")

    # GIVEN a database that refuses the writes (the table is gone)
    with databases.connect(url) as conn:
        conn.execute("ALTER TABLE game_records RENAME TO game_records_away")
    try:
        assert [svc.post("/records", record(i)).status for i in range(5)] == [202] * 5
        # WHEN the buffer is full THEN the next record is refused, not dropped
        full = svc.post("/records", record(9))
        assert full.status == 503 and full.json()["error"] == "buffer_full"
        wait_for(lambda: counters(svc)["flush_failures"] >= 2, what="failed flushes")
        assert svc.vars()["gauges"]["buffer_depth"] == 5
    finally:
        with databases.connect(url) as conn:
            conn.execute("ALTER TABLE game_records_away RENAME TO game_records")
    # THEN the kept records are written once the database takes them again
    wait_for(lambda: counters(svc)["records_written"] == 6, timeout=15, what="the retried flush")
    assert databases.scalar(url, RECORDS) - before == 6
    c = counters(svc)
    assert c["records_accepted"] == 6 and c["records_rejected"] == 1
    assert c["errors"]["buffer_full"] == 1 and c["requests"]["POST /records"] == {"202": 6, "503": 1}
    assert svc.post("/records", record(10)).status == 202  # room again
    assert svc.stop_gracefully()
    assert databases.scalar(url, RECORDS) - before == 7


def test_records_buffered_when_the_database_is_gone_at_shutdown_are_spilled_and_restored(
        databases: Databases, start_service: Any) -> None:
    url = databases.new()
    env = dict(WRITE_MODE="batch", FLUSH_INTERVAL_S="60", SHUTDOWN_FLUSH_TIMEOUT_S="0.5")
    svc = start_service(url, **env)
    before = databases.scalar(url, RECORDS)
    spill_dir = Path(svc.env["SPILL_DIR"])
    with databases.connect(url) as conn:
        conn.execute("ALTER TABLE game_records RENAME TO game_records_away")
    assert [svc.post("/records", record(i)).status for i in range(4)] == [202] * 4
    assert svc.stop_gracefully()
    spilled = list(spill_dir.glob("records-spill-*.jsonl"))
    assert len(spilled) == 1 and len(spilled[0].read_text().splitlines()) == 4
    with databases.connect(url) as conn:
        conn.execute("ALTER TABLE game_records_away RENAME TO game_records")

    again = start_service(url, SPILL_DIR=str(spill_dir), **env)
    assert databases.scalar(url, RECORDS) - before == 4
    assert not list(spill_dir.glob("records-spill-*.jsonl"))
    assert again.stop_gracefully()


def test_tasks_waiting_for_a_connection_are_counted(databases: Databases, start_service: Any) -> None:
    url = databases.new()
    svc = start_service(url, WRITE_MODE="single", POOL_SIZE="1", POOL_MAX_OVERFLOW="0",
                        RECORD_HOLD_MS="400", RECORD_HOLD_JITTER="0", POOL_TIMEOUT_S="1.0")
    before = databases.scalar(url, RECORDS)
    seen: list[tuple[int, int]] = []
    with ThreadPoolExecutor(5) as ex:
        futures = [ex.submit(svc.post, "/records", record(i)) for i in range(5)]

        def busy() -> bool:
            g = svc.vars()["gauges"]
            seen.append((g["db_waiting_tasks"], g["pool_checked_out"]))
            return g["db_waiting_tasks"] >= 2

        wait_for(busy, timeout=5, what="tasks waiting for the pool")
        results = [f.result() for f in futures]
    assert max(w for w, _ in seen) >= 2 and max(o for _, o in seen) == 1
    statuses = Counter(r.status for r in results)
    # A 400 ms hold with one connection and a 1 s pool timeout: some wait and win, some give up.
    assert statuses[201] >= 1 and statuses[503] >= 1 and statuses[201] + statuses[503] == 5
    assert all(r.json()["error"] == "pool_timeout" for r in results if r.status == 503)
    c = counters(svc)
    assert c["errors"]["pool_timeout"] == statuses[503]
    assert databases.scalar(url, RECORDS) - before == statuses[201] == c["records_written"]
    assert svc.vars()["gauges"]["db_waiting_tasks"] == 0


REPORT = "GET /report/{user_id}"


def test_immediate_retries_multiply_queries_of_timed_out_requests(databases: Databases, start_service: Any) -> None:
    url = databases.new()
    with databases.connect(url) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    svc = start_service(url, RETRY_POLICY="immediate", RETRY_ATTEMPTS="5", HEAVY_FRACTION="0.5",
                        STATEMENT_TIMEOUT_MS="50", HEAVY_QUERY_MS="1000", RANDOM_SEED="7")
    c0 = counters(svc)
    results = [svc.get(f"/report/{i}") for i in range(1, 13)]
    n504 = sum(r.status == 504 for r in results)
    n200 = sum(r.status == 200 for r in results)
    assert n200 + n504 == 12 and n200 >= 1 and n504 >= 1
    assert all(r.json()["error"] == "timeout" for r in results if r.status == 504)

    c = counters(svc)
    assert c["retries"] - c0["retries"] == 5 * n504  # ≥ 2 per timed-out request: 5
    assert c["statement_timeouts"] - c0["statement_timeouts"] == 6 * n504
    assert c["db_queries_by_route"][REPORT] == n200 + 6 * n504
    assert c["errors"]["timeout"] == n504
    # every attempt also sent its SET LOCAL: a statement, not a query
    attempts = n200 + 6 * n504
    assert (c["db_statements"] - c["db_queries"]) - (c0["db_statements"] - c0["db_queries"]) == attempts
    # LAB-NOTES' pitfall: pg_stat_statements counts only the statements that completed
    calls = databases.scalar(url, "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                                  "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                                  "AND query LIKE '%pg_sleep%'")
    assert calls == n200


def test_backoff_spends_the_retry_budget_then_the_breaker_fails_fast(databases: Databases, start_service: Any) -> None:
    url = databases.new()
    svc = start_service(url, RETRY_POLICY="backoff", HEAVY_FRACTION="1.0", STATEMENT_TIMEOUT_MS="50",
                        HEAVY_QUERY_MS="1000", BREAKER_THRESHOLD="3", BREAKER_COOLDOWN_S="60",
                        RETRY_BUDGET_RATIO="0.1")
    statuses = [svc.get(f"/report/{i}").status for i in range(1, 7)]
    # request 1: timeout, one retry (the budget's first token), timeout, budget empty → 504
    # request 2: timeout (third in a row) → the circuit opens → 504
    # requests 3-6: the circuit is open → 503 at once, no query sent
    assert statuses == [504, 504, 503, 503, 503, 503]
    v = svc.vars()
    c = v["counters"]
    assert c["retries"] == 1 and c["retry_budget_exhausted"] == 1 and c["circuit_opened"] == 1
    assert c["db_queries_by_route"][REPORT] == 3
    assert c["errors"]["timeout"] == 2 and c["errors"]["circuit_open"] == 4
    assert v["gauges"]["circuit_open"] == 1


def test_challenges_is_a_large_json_built_from_several_queries(databases: Databases, start_service: Any) -> None:
    url = databases.new()
    svc = start_service(url)
    r = svc.get("/challenges/3")
    assert r.status == 200 and len(r.body) > 20_000
    body = r.json()
    assert body["user"]["name"] == "user3"
    assert [c["id"] for c in body["challenges"]] == [1, 3, 5, 7, 9]
    assert all(len(c["goals"]) == 50 for c in body["challenges"])
    assert len(body["recent_records"]) == 5
    ranked = [c["leaderboard"]["rank"] for c in body["challenges"] if c["progress"]["games"]]
    assert ranked and all(isinstance(k, int) and k >= 1 for k in ranked)
    # its progress agrees with the records table
    games = databases.scalar(url, "SELECT count(*) FROM game_records WHERE user_id = 3")
    assert sum(c["progress"]["games"] for c in body["challenges"]) == games
    assert counters(svc)["db_queries_by_route"]["GET /challenges/{user_id}"] == 5
    assert svc.get("/challenges/999999").status == 404
    assert svc.get("/challenges/abc").status == 400


def _login_burst(svc: Service, seconds: float, threads: int = 4) -> None:
    end = time.monotonic() + seconds

    def loop() -> None:
        while time.monotonic() < end:
            svc.post("/login", {"user": "user1", "password": "password"})

    ts = [threading.Thread(target=loop) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def test_cpu_profile_is_gzipped_profile_proto_with_bcrypt_hottest(
        databases: Databases, start_service: Any, tmp_path: Path) -> None:
    url = databases.new()
    svc = start_service(url, BCRYPT_COST="10")
    proc = psutil.Process(svc.proc.pid)
    burst = threading.Thread(target=_login_burst, args=(svc, 2.6))
    cpu0 = sum(proc.cpu_times()[:2])
    burst.start()
    r = svc.get("/debug/pprof/profile?seconds=2")
    burst.join()
    cpu_used = sum(proc.cpu_times()[:2]) - cpu0

    assert r.status == 200 and r.headers["content-type"] == "application/octet-stream"
    assert r.body[:2] == b"\x1f\x8b"  # gzip, as Go serves it
    p = pprof_proto.Profile()
    p.ParseFromString(gzip.decompress(r.body))
    st = list(p.string_table)
    assert st[0] == ""
    assert [(st[t.type], st[t.unit]) for t in p.sample_type] == [("samples", "count"), ("cpu", "nanoseconds")]
    assert (st[p.period_type.type], st[p.period_type.unit], p.period) == ("cpu", "nanoseconds", 10_000_000)
    assert 1.9e9 < p.duration_nanos < 3e9 and p.time_nanos > 1.7e18
    functions = {f.id: f for f in p.function}
    locations = {loc.id: loc for loc in p.location}
    flat: Counter[str] = Counter()
    for s in p.sample:
        assert all(lid in locations for lid in s.location_id) and len(s.value) == 2
        flat[st[functions[locations[s.location_id[0]].line[0].function_id].name]] += s.value[1]
    total = sum(flat.values())
    name, value = flat.most_common(1)[0]
    assert name == "sample_workload.auth.check_password" and value > 0.5 * total
    fn = next(f for f in p.function if st[f.name] == name)
    assert st[fn.filename].endswith("sample_workload/auth.py") and fn.start_line > 0
    # the profile's CPU is the process's CPU over the window (the burst outlasts the profile)
    assert 0.5 * cpu_used < total / 1e9 <= 1.05 * cpu_used

    # perflab itself reads it the same way
    path = tmp_path / "profile.pb.gz"
    path.write_bytes(r.body)
    out = run_cli("top", str(path), "--json", store=tmp_path / "store.duckdb")
    assert out.returncode == 0, out.stderr
    top = json.loads(out.stdout)["rows"][0]
    assert top["name"] == name and top["flat"] == value


def test_cprofile_dump_loads_in_pstats(databases: Databases, start_service: Any, tmp_path: Path) -> None:
    url = databases.new()
    svc = start_service(url)
    end = time.monotonic() + 1.5

    def traffic() -> None:
        i = 0
        while time.monotonic() < end:
            svc.post("/records", record(i))
            i += 1

    t = threading.Thread(target=traffic)
    t.start()
    r = svc.get("/debug/cprofile?seconds=1")
    t.join()
    assert r.status == 200 and r.headers["content-type"] == "application/octet-stream"
    assert isinstance(marshal.loads(r.body), dict)
    path = tmp_path / "cprofile.pstats"
    path.write_bytes(r.body)
    stats = pstats.Stats(str(path))
    calls = {func: ncalls for (file, _line, func), (_cc, ncalls, *_rest) in stats.stats.items()  # type: ignore[attr-defined]
             if file.endswith("sample_workload/records.py")}
    assert calls.get("post_record", 0) >= 1
    assert stats.total_tt > 0  # type: ignore[attr-defined]


def test_heap_profile_is_inuse_space(databases: Databases, start_service: Any) -> None:
    url = databases.new()
    svc = start_service(url)
    t = threading.Thread(target=lambda: [svc.get("/challenges/2") for _ in range(5)])
    t.start()
    r = svc.get("/debug/pprof/heap?seconds=0.5")
    t.join()
    assert r.status == 200
    p = pprof_proto.Profile()
    p.ParseFromString(gzip.decompress(r.body))
    st = list(p.string_table)
    assert [(st[t.type], st[t.unit]) for t in p.sample_type] == [("inuse_objects", "count"), ("inuse_space", "bytes")]
    assert sum(s.value[1] for s in p.sample) > 0
    assert all(st[f.name] for f in p.function)


def test_sqlite_fallback_says_db_stats_are_unavailable(start_service: Any, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'workload.db'}"
    svc = start_service(url, SEED_USERS="50", HEAVY_FRACTION="1.0", STATEMENT_TIMEOUT_MS="50",
                        HEAVY_QUERY_MS="5000")
    assert svc.post("/login", {"user": "user2", "password": "password"}).status == 200
    assert svc.post("/records", record(1)).status == 201
    assert svc.get("/challenges/2").status == 200
    t0 = time.monotonic()
    r = svc.get("/report/2")
    assert r.status == 504 and r.json()["error"] == "timeout" and time.monotonic() - t0 < 2
    db = svc.vars()["db"]
    assert db["dialect"] == "sqlite" and db["available"] is False and "SQLite" in db["reason"]
    assert svc.stop_gracefully()


def test_seed_command_is_idempotent_and_rehashes_on_a_new_cost(databases: Databases) -> None:
    url = databases.new()

    def seed(**env: str) -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-m", "sample_workload", "seed"], cwd=str(ROOT), capture_output=True,
                             text=True, timeout=60,
                             env={"PATH": "/usr/bin:/bin", "DATABASE_URL": url, "SEED_USERS": "50",
                                  "SEED_RECORDS_PER_USER": "3", "BCRYPT_COST": "4", **env})
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    first = seed()
    assert (first["users_added"], first["records_added"], first["challenges_added"]) == (50, 150, 10)
    second = seed()
    assert (second["users_added"], second["records_added"], second["challenges_added"]) == (0, 0, 0)
    assert databases.scalar(url, RECORDS) == 150
    assert databases.scalar(url, "SELECT count(*) FROM goals") == 500
    third = seed(BCRYPT_COST="5")
    assert third["hashes_replaced"] == 50
    assert databases.scalar(url, "SELECT string_agg(DISTINCT substr(password_hash, 1, 7), ',') FROM users") == "$2b$05$"

    bad = subprocess.run([sys.executable, "-m", "sample_workload", "seed"], cwd=str(ROOT), capture_output=True,
                         text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "WRITE_MODE": "sometimes"})
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["sample_workload: WRITE_MODE='sometimes': one of single, batch"]


def test_metrics_endpoint_speaks_prometheus_with_the_same_numbers(databases: Databases, start_service: Any) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    url = databases.new()
    svc = start_service(url, POOL_SIZE="3", POOL_MAX_OVERFLOW="2")
    for i in range(5):
        assert svc.post("/records", record(i)).status == 201  # single mode: written at once
    assert svc.post("/login", {"user": "user7", "password": "wrong"}).status == 401
    text = svc.get("/metrics").body.decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    value = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    c = counters(svc)  # /debug/vars of the same moment: scrapes are not workload, so nothing moved
    assert value[("app_requests_total", ())] == c["requests_total"] == 6
    assert value[("app_db_queries_total", ())] == c["db_queries"] > 0
    assert families["app_errors"].type == "counter" and families["app_requests"].type == "counter"
    assert value[("db_client_connections_max", ())] == 5  # pool size + max overflow
    assert families["db_client_connections_usage"].type == "gauge"
    assert value[("db_client_connections_pending_requests", ())] == 0
    assert value[("process_resident_memory_bytes", ())] > 10e6  # the process collector, a standard name
    assert ("process_cpu_seconds_total", ()) in value
