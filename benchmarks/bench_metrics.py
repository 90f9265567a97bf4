"""`perflab ingest` of a Prometheus scrape series, against prometheus_client's parser alone.

perflab parses exposition text with prometheus_client's own parser (the issue asks for a
maintained parser, not a hand-written grammar), so that parser's time is the floor: the
baseline here is ``text_string_to_metric_families`` over the same text, every sample
touched, in the same process. The subject is ``ingest_path`` of the file into a new store
(detection, hashing, parsing, the insert into metric_samples). Synthesized deterministically:
``--scrapes`` scrapes, each after a ``# scrape_timestamp`` line, of what a Go service with
client_golang exposes (counters by route and status, a latency histogram, gauges).

Goal: perflab ≤ 2× the parser alone in wall time.

    .venv/bin/python benchmarks/bench_metrics.py               # 600 scrapes (10 min at 1 Hz)
    .venv/bin/python benchmarks/bench_metrics.py --scrapes 60
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from perflab.ingest import ingest_path
from perflab.store import Store

ROUTES = ("/login", "/orders", "/report", "/healthz")
STATUSES = ("200", "500", "504")
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf")
T0 = 1_796_000_000


def scrape(i: int) -> str:
    lines = ["# HELP http_requests_total Requests.", "# TYPE http_requests_total counter"]
    for r, route in enumerate(ROUTES):
        for s, status in enumerate(STATUSES):
            lines.append(f'http_requests_total{{route="{route}",status="{status}"}} {i * (r + 1) * (3 - s)}')
    lines += ["# HELP http_request_duration_seconds Latency.", "# TYPE http_request_duration_seconds histogram"]
    for r, route in enumerate(ROUTES):
        for b, le in enumerate(BUCKETS):
            lines.append(f'http_request_duration_seconds_bucket{{route="{route}",le="{le}"}} {i * (b + 1) * (r + 1)}')
        lines.append(f'http_request_duration_seconds_sum{{route="{route}"}} {i * 0.137 * (r + 1):.3f}')
        lines.append(f'http_request_duration_seconds_count{{route="{route}"}} {i * len(BUCKETS) * (r + 1)}')
    lines += ["# TYPE go_goroutines gauge", f"go_goroutines {40 + i % 17}",
              "# TYPE process_cpu_seconds_total counter", f"process_cpu_seconds_total {i * 0.42:.2f}",
              "# TYPE process_resident_memory_bytes gauge", f"process_resident_memory_bytes {50_000_000 + i * 4096}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scrapes", type=int, default=600)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="perflab-bench-metrics-"))
    path = tmp / "metrics.prom"
    bodies = [scrape(i) for i in range(args.scrapes)]
    path.write_text("".join(f"# scrape_timestamp {T0 + i}\n{b}" for i, b in enumerate(bodies)))
    samples = sum(1 for b in bodies for line in b.splitlines() if line and not line.startswith("#"))

    parse_s, ingest_s = [], []
    for n in range(args.repeat):
        t = time.perf_counter()
        seen = sum(len(f.samples) for b in bodies for f in text_string_to_metric_families(b))
        parse_s.append(time.perf_counter() - t)
        assert seen == samples, (seen, samples)
        with Store(tmp / f"s{n}.duckdb") as store:
            t = time.perf_counter()
            ingest_path(store, path)
            ingest_s.append(time.perf_counter() - t)
            stored = store.con.execute("SELECT count(*) FROM metric_samples").fetchall()[0][0]
        assert stored == samples, (stored, samples)
    parse, ingest = statistics.median(parse_s), statistics.median(ingest_s)
    print(json.dumps({"bench": "metrics", "scrapes": args.scrapes, "samples": samples,
                      "bytes": path.stat().st_size, "parser_s": round(parse, 3), "perflab_s": round(ingest, 3),
                      "ratio": round(ingest / parse, 2), "goal": "ratio <= 2.0",
                      "met": ingest / parse <= 2.0}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
