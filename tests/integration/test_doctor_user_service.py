"""The doctor on what the owner of a Go service brings (issue 9, item 6): no sample_workload anywhere.

Each of the orders service's three signatures is collected the user's way (tests/services/collect.py:
k6 NDJSON and summary, five pprof profiles, /debug/vars and /metrics once a second, process
CPU/RSS samples, a host.csv perflab does not read), in its default and its fixed variant, and
brought in with `perflab ingest --run R DIR/*` and the role mapping its owner writes once. The
doctor must find each signature in the default run and not in the fixed one, on the evidence
a user's files carry.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from perflab.analysis.run import Run
from perflab.store import Store
from tests.helpers import run_cli, wait_for_a_quiet_machine
from tests.services.collect import FIXES, collect
from tests.services.orders_service import build_orders

pytestmark = pytest.mark.slow

SIGNATURE = {"login": "login-storm", "orders": "false-idle", "report": "retry-storm"}
# The service's own names for what the standard exporters do not name (its /metrics).
ROLES = ("downstream_calls=orders_dependency_calls_total", "retries=orders_retries_total",
         "requests=orders_http_requests_total", "errors=orders_errors_total")
DURATION_S = 15


@pytest.fixture(scope="module")
def brought(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Six collections ingested into one store: {run_id: doctor --json}, plus the ingest output."""
    root = tmp_path_factory.mktemp("brought")
    orders_binary = build_orders(root / "bin")
    store = root / "store.duckdb"
    out: dict[str, Any] = {"ingest": {}, "doctor": {}, "store": store}
    for scenario in SIGNATURE:
        for variant in ("default", "fixed"):
            if scenario == "login":
                wait_for_a_quiet_machine()  # a CPU-bound signature: judged on a machine not busy elsewhere
            env = FIXES[scenario] if variant == "fixed" else {}
            folder = collect(env, scenario, DURATION_S, root / f"{scenario}-{variant}", binary=orders_binary)
            run_id = f"{scenario}-{variant}"
            roles = [a for r in ROLES for a in ("--role", r)]
            res = run_cli("ingest", "--run", run_id, *roles, *sorted(str(p) for p in folder.iterdir()),
                          store=store)
            out["ingest"][run_id] = res
            doc = run_cli("doctor", run_id, "--json", store=store)
            assert doc.returncode == 0, doc.stderr
            out["doctor"][run_id] = {f["signature"]: f for f in json.loads(doc.stdout)["findings"]}
    return out


def test_a_whole_folder_is_ingested_and_what_perflab_does_not_read_is_skipped(brought: dict[str, Any]) -> None:
    for run_id, res in brought["ingest"].items():
        assert res.returncode == 0, (run_id, res.stderr)
        skipped = sorted(line for line in res.stderr.splitlines() if line.startswith("skipped "))
        assert skipped == [f"skipped {brought['store'].parent / run_id / name}: not a format perflab reads"
                           for name in ("host.csv", "k6.stdout.txt", "service.log")]
    roles = run_cli("roles", "orders-default", "--json", store=brought["store"])
    got = json.loads(roles.stdout)["roles"]
    # the user's mapping, then client_golang's and the process samples' standard names
    assert got["downstream_calls"]["metric"] == "orders_dependency_calls_total"
    assert got["pool_wait_seconds"]["metric"] == "go_sql_wait_duration_seconds_total"
    assert got["pool_size"]["metric"] == "go_sql_max_open_connections"
    assert got["tasks"]["metric"] == "go_goroutines"
    assert got["cpu_seconds"] is not None and got["rss_bytes"] is not None
    assert got["event_loop_lag_seconds"] is None  # a Go service has none


@pytest.mark.parametrize("scenario", list(SIGNATURE))
def test_the_signature_is_found_in_the_default_run_and_not_in_its_fix(brought: dict[str, Any], scenario: str) -> None:
    sig = SIGNATURE[scenario]
    default, fixed = brought["doctor"][f"{scenario}-default"][sig], brought["doctor"][f"{scenario}-fixed"][sig]
    assert default["verdict"] == "present", default
    assert fixed["verdict"] == "absent", fixed


def test_login_storm_names_pbkdf2_from_the_profile(brought: dict[str, Any]) -> None:
    f = brought["doctor"]["login-default"]["login-storm"]
    assert "PBKDF2" in f["recommendation"] and "bcrypt" not in f["recommendation"], f["recommendation"]
    assert f["evidence"]["service_cpu_p50"] > 80, f["evidence"]  # % of one core: the hashing keeps it busy


def test_false_idle_is_judged_on_the_pool_waits_with_the_cpu_idle(brought: dict[str, Any]) -> None:
    ev = brought["doctor"]["orders-default"]["false-idle"]["evidence"]
    assert ev["service_cpu_p50"] < 30, ev
    # Little's law on go_sql_wait_duration_seconds_total: the mean number of waiters
    assert ev["pool_waiting_from_wait_seconds"] >= 2, ev
    assert any("go_sql_wait_duration_seconds_total" in u for u in ev["used"]), ev
    fixed = brought["doctor"]["orders-fixed"]["false-idle"]["evidence"]
    assert fixed["pool_waiting_from_wait_seconds"] < 0.5, fixed


def test_retry_storm_is_judged_on_downstream_calls_per_request(brought: dict[str, Any]) -> None:
    ev = brought["doctor"]["report-default"]["retry-storm"]["evidence"]
    assert ev["downstream_calls_per_request"] >= 2.0, ev
    assert 0.15 <= ev["timeout_rate"] <= 0.45, ev
    fixed = brought["doctor"]["report-fixed"]["retry-storm"]["evidence"]
    assert fixed["downstream_calls_per_request"] <= 1.25, fixed


def test_the_orders_report_is_limited_by_its_pool_and_starts_at_its_data(brought: dict[str, Any]) -> None:
    out = run_cli("report", "orders-default", "--out", str(brought["store"].parent / "reports"), "--json",
                  store=brought["store"], timeout=180)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)["report"]
    cap = report["capacity"]
    # A pool of 2 connections each held ~50 ms: database/sql's DBStats give the pool's limit (Little's law).
    assert cap["limited_by"] == "pool" and 0.5 <= cap["replica_rps"] / cap["rps"] <= 2, cap
    assert cap["saturated"] is False, cap
    # Brought files start when their samples do, before they were ingested.
    store = Store(brought["store"], read_only=True)
    try:
        registered = Run.load(store, "orders-default").created_at
    finally:
        store.close()
    started = datetime.fromisoformat(report["run"]["started_at"])
    assert (registered - started).total_seconds() >= DURATION_S, (started, registered)
