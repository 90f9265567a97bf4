"""Real k6 against a real local HTTP server: what k6 counts is what the server saw."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from perflab.api import k6_summary  # a file is ingested first (the analysis reads the store only)
from perflab.lab.loadgen import LiveStats, find_k6, k6_version, run_k6

SCRIPT = """
import http from 'k6/http';
export const options = {
  scenarios: { steady: { executor: 'constant-arrival-rate', rate: 20, timeUnit: '1s',
                         duration: '2s', preAllocatedVUs: 4, maxVUs: 8 } },
  thresholds: { http_req_duration: ['p(95)<1000'] },
};
export default function () { http.get(`${__ENV.BASE_URL}/x`, { tags: { endpoint: 'x' } }); }
"""


@pytest.fixture
def counting_server():
    hits = {"n": 0}
    lock = threading.Lock()

    class H(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            with lock:
                hits["n"] += 1
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", hits
    srv.shutdown()


def test_k6_binary_is_found_and_versioned():
    assert k6_version(find_k6()).startswith("k6 v")


def test_k6_requests_equal_server_requests(tmp_path: Path, counting_server, store):
    base, hits = counting_server
    script = tmp_path / "t.js"
    script.write_text(SCRIPT)
    run_k6(script, tmp_path / "out", {"BASE_URL": base}, live=False)
    nd = tmp_path / "out" / "k6.ndjson"
    summary = k6_summary(store, str(nd))
    assert summary["metrics"]["http_reqs"]["count"] == hits["n"]
    assert 35 <= hits["n"] <= 41  # 20/s for 2 s, give or take the edges
    exported = k6_summary(store, str(tmp_path / "out" / "k6-summary.json"))
    assert exported["metrics"]["http_req_duration"]["p(95)"] == summary["metrics"]["http_req_duration"]["p(95)"]
    live = LiveStats(nd)
    live.poll()
    assert live.requests == hits["n"] and live.failed == 0
