"""tiny: a small HTTP service that is not perflab's, for `perflab run --target` tests.

Standard library plus prometheus_client (the real client library writes its /metrics).
It serves what a Go service with net/http/pprof would, from real Go profiles on disk:

    GET /healthz                    200 once READY_DELAY_S have passed since start
    GET /work                       PBKDF2-SHA256 with WORK_ITER iterations (CPU-bound)
    GET /metrics                    Prometheus text: tiny_requests_total, tiny_work_iterations, process_*
    GET /debug/vars                 expvar-shaped JSON
    GET /debug/pprof/profile        after ?seconds=N: PPROF_DIR/*.cpu.pb.gz
    GET /debug/pprof/NAME           PPROF_DIR/*.NAME.pb.gz (heap, block in data/samples/pprof); else 404

Environment: HOST (127.0.0.1), PORT (8099), WORK_ITER (2000), READY_DELAY_S (0), PPROF_DIR.
SIGTERM ends it at once with exit code 0.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest

HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "8099"))
WORK_ITER = int(os.environ.get("WORK_ITER", "2000"))
READY_AT = time.monotonic() + float(os.environ.get("READY_DELAY_S", "0"))
PPROF_DIR = Path(os.environ.get("PPROF_DIR", "."))

REQUESTS = Counter("tiny_requests", "requests answered", ["path"])
ITERATIONS = Gauge("tiny_work_iterations", "PBKDF2 iterations per /work request")
ITERATIONS.set(WORK_ITER)
_count = 0
_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        global _count
        url = urlsplit(self.path)
        with _lock:
            _count += 1
        REQUESTS.labels(url.path).inc()
        if url.path == "/healthz":
            if time.monotonic() < READY_AT:
                return self._send(503, b"starting", "text/plain")
            return self._send(200, b"ok", "text/plain")
        if url.path == "/work":
            digest = hashlib.pbkdf2_hmac("sha256", b"password", b"salt", WORK_ITER).hex()
            return self._send(200, json.dumps({"digest": digest}).encode(), "application/json")
        if url.path == "/metrics":
            return self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
        if url.path == "/debug/vars":
            body = {"requests": _count, "work_iterations": WORK_ITER, "pid": os.getpid()}
            return self._send(200, json.dumps(body).encode(), "application/json")
        if url.path == "/debug/pprof/profile":
            seconds = float(parse_qs(url.query).get("seconds", ["30"])[0])
            time.sleep(seconds)
            url = url._replace(path="/debug/pprof/cpu")
        name = url.path.removeprefix("/debug/pprof/")
        found = sorted(PPROF_DIR.glob(f"*.{name}.pb.gz")) if name.isalpha() else []
        if found:
            return self._send(200, found[0].read_bytes(), "application/octet-stream")
        return self._send(404, b"404 page not found\n", "text/plain")

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
        pass


def main() -> None:
    server = ThreadingHTTPServer((HOST, PORT), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"tiny: serving on {HOST}:{PORT}, pid {os.getpid()}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
