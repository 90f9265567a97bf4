"""End to end: real PostgreSQL, the real service, real k6, through `perflab run`.

Asserts on what was ingested, against what the service itself counted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from perflab.analysis.database import pg_top
from perflab.analysis.loadtest import k6_summary
from perflab.analysis.runs import list_runs as _list_runs
from perflab.jsonable import to_jsonable
from perflab.store import Store
from tests.helpers import run_cli

pytestmark = pytest.mark.slow


def list_runs(store):
    return to_jsonable(_list_runs(store))


def _perflab_children_gone(before: set[int]) -> list[str]:
    """Processes that appeared during the test and still live: postgres, the service, k6."""
    left = []
    for p in psutil.process_iter(["pid", "cmdline", "name"]):
        if p.pid in before:
            continue
        cmd = " ".join(p.info["cmdline"] or [])
        if ("sample_workload" in cmd or p.info["name"] in ("k6", "postgres")) and p.status() != psutil.STATUS_ZOMBIE:
            left.append(f"{p.pid} {cmd[:80]}")
    return left


def _listening_ports() -> set[int]:
    return {c.laddr.port for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN}


def test_a_short_run_counts_agree(tmp_path: Path):
    before = set(psutil.pids())
    ports_before = _listening_ports()
    store_path = tmp_path / "s.duckdb"
    result = run_cli("run", "healthy", "--duration", "10", "--json",
                     store=store_path, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    run_id = out["run_id"]
    run_dir = Path(out["run_dir"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["settings"]["WRITE_MODE"] == "single"
    assert manifest["versions"]["k6"].startswith("k6 v")

    store = Store(store_path)
    kinds = {r["kind"] for r in store.sql("SELECT kind FROM sources WHERE run_id = ?", [run_id]).to_dicts()}
    assert {"k6", "k6-summary", "pgstat", "resources", "prometheus", "pprof"} <= kinds

    # requests counted by k6 == requests counted by the service
    nd = store.sql("SELECT source_id FROM sources WHERE run_id=? AND kind='k6'", [run_id])["source_id"][0]
    k6_requests = k6_summary(store, int(nd))["metrics"]["http_reqs"]["count"]
    final_vars = json.loads((run_dir / "debug_vars_final.json").read_text())
    assert k6_requests == final_vars["counters"]["requests_total"]
    assert k6_requests >= 0.9 * 73 * 10

    # every accepted record reached the database through the statements pg_stat_statements saw
    accepted = final_vars["counters"]["records_accepted"]
    assert accepted > 0
    pgss = {r["path"].split("/")[-1]: r["source_id"] for r in store.sql(
        "SELECT source_id, path FROM sources WHERE run_id=? AND kind='pgstat'", [run_id]).to_dicts()}
    top = pg_top(store, pgss["pg_stat_statements_before.jsonl"], pgss["pg_stat_statements_after.jsonl"])
    # single mode: one INSERT per accepted record
    inserts = [r for r in top["rows"] if r["query"].lstrip().upper().startswith("INSERT INTO GAME_RECORDS")]
    assert inserts, [r["query"][:60] for r in top["rows"]]
    assert sum(r["calls"] for r in inserts) >= accepted
    assert sum(r["rows"] for r in inserts) >= accepted

    summary = [r for r in list_runs(store) if r["run_id"] == run_id][0]
    assert summary["status"] == "complete" and summary["requests"] == k6_requests
    assert summary["service_cpu_p50"] is not None and summary["downstream_calls_per_request"] is not None
    store.close()

    assert _perflab_children_gone(before) == []
    assert _listening_ports() - ports_before == set()


def test_interrupted_run_stops_everything_and_is_incomplete(tmp_path: Path):
    before = set(psutil.pids())
    ports_before = _listening_ports()
    store_path = tmp_path / "s.duckdb"
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-m", "perflab", "--store", str(store_path), "run", "healthy",
                             "--duration", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    # Wait until k6 is running, then interrupt as a user would (Ctrl-C → SIGINT).
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        kids = psutil.Process(proc.pid).children(recursive=True)
        if any(k.name() == "k6" for k in kids):
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("k6 never started")
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    time.sleep(0.5)
    assert _perflab_children_gone(before) == []
    assert _listening_ports() - ports_before == set()
    store = Store(store_path)
    runs = store.sql("SELECT status FROM runs").to_dicts()
    assert runs == [{"status": "incomplete"}]
    run_dir = next((tmp_path / "runs").iterdir())
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "incomplete"
