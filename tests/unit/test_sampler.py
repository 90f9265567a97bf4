"""The lab sampler measures real processes, and its files ingest into the store."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from perflab.ingest import ingest_path
from perflab.lab.sampler import Sampler, _flatten


@pytest.fixture
def busy_and_idle():
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<30: pass"])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    yield busy.pid, idle.pid
    for p in (busy, idle):
        p.kill()
        p.wait()


@pytest.fixture
def vars_server():
    state = {"n": 0}

    class H(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            state["n"] += 1
            body = json.dumps({"in_flight": 3, "pool": {"checked_out": 2, "size": 5}, "ok": True,
                               "name": "svc", "requests": state["n"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/debug/vars"
    srv.shutdown()


def test_cpu_of_a_busy_process_is_about_one_core(tmp_path: Path, busy_and_idle, vars_server, store):
    busy, idle = busy_and_idle
    s = Sampler(roles=lambda: {"busy": [busy], "idle": [idle]}, out_dir=tmp_path, interval_s=0.1,
                vars_url=vars_server)
    with s:
        import time
        time.sleep(1.5)
    assert s.samples >= 10
    res = ingest_path(store, tmp_path / "resources.jsonl", run_id="run-x")
    assert res.kind == "resources" and res.new
    stats = store.sql(
        "SELECT role, median(cpu_pct) AS cpu, max(processes) AS procs, count(*) AS n "
        "FROM resource_samples WHERE cpu_pct IS NOT NULL GROUP BY role ORDER BY role"
    ).to_dicts()
    by = {r["role"]: r for r in stats}
    # A spinning process uses one core; on a shared 2-core machine allow scheduler noise.
    assert 60 <= by["busy"]["cpu"] <= 105
    assert by["idle"]["cpu"] <= 5
    assert by["busy"]["procs"] == 1 and by["host"]["cpu"] >= by["busy"]["cpu"] * 0.8
    v = ingest_path(store, tmp_path / "vars.jsonl", run_id="run-x")
    assert v.kind == "service-vars"
    keys = store.sql("SELECT DISTINCT key FROM service_vars ORDER BY key")["key"].to_list()
    assert keys == ["in_flight", "ok", "pool.checked_out", "pool.size", "requests"]
    assert store.sql("SELECT max(value) AS m FROM service_vars WHERE key='requests'")["m"][0] == s.samples


def test_flatten_keeps_numbers_only():
    assert _flatten({"a": {"b": 1, "c": "x"}, "d": [1], "e": 2.5, "f": False}) == {"a.b": 1.0, "e": 2.5, "f": 0.0}
