"""`perflab k6 SOURCE --json` on a stored 4.24M-point run, against one DuckDB query of the
same statistics.

The run is bench_k6.py's synthetic k6 output (generated into benchmarks/.cache/ if missing,
then ingested into a temporary store: neither is timed). Each measurement is a fresh
process, so start-up (interpreter and imports) counts on both sides:

* ``duckdb``: per metric count, sum, min, max and quantile_cont at 0.5/0.9/0.95/0.99, the
  http_req_duration{expected_response:true} sub-metric, and the checks by name: what k6's
  summary holds, computed by DuckDB alone (not k6's exact arithmetic: a baseline for speed);
* ``perflab``: ``python -m perflab --store S k6 1 --json`` (k6's numbers, exactly).

Prints one JSON object: median wall seconds and peak RSS of each, and the ratio. Goal:
perflab within 1.5x of the query.

    .venv/bin/python benchmarks/bench_k6_summary.py [--lines N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bench_k6  # noqa: E402

QUERY = """
import duckdb, sys
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute('''SELECT metric, count(*), sum(value), min(value), max(value),
                      quantile_cont(value, [0.5, 0.9, 0.95, 0.99])
               FROM k6_points WHERE source_id = 1 GROUP BY metric''').fetchall()
con.execute('''SELECT count(*), sum(value), min(value), max(value), quantile_cont(value, [0.5, 0.9, 0.95, 0.99])
               FROM k6_points WHERE source_id = 1 AND metric = 'http_req_duration'
               AND json_extract_string(tags, '$.expected_response') = 'true' ''').fetchall()
con.execute('''SELECT json_extract_string(tags, '$.check'), count(*) FILTER (WHERE value <> 0),
                      count(*) FILTER (WHERE value = 0)
               FROM k6_points WHERE source_id = 1 AND metric = 'checks' GROUP BY 1''').fetchall()
"""


def measured(cmd: list[str]) -> tuple[float, int]:
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, cmd
    return time.perf_counter() - t, usage.ru_maxrss * 1024


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=bench_k6.DEFAULT_LINES)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    path = bench_k6.CACHE / f"k6_{args.lines}.ndjson"
    if not path.exists():
        bench_k6.CACHE.mkdir(parents=True, exist_ok=True)
        bench_k6.generate(path, args.lines)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "s.duckdb"
        subprocess.run([sys.executable, "-m", "perflab", "--store", str(store), "ingest", str(path)], cwd=ROOT,
                       check=True, stdout=subprocess.DEVNULL)
        duck = [measured([sys.executable, "-c", QUERY, str(store)]) for _ in range(args.repeat)]
        ours = [measured([sys.executable, "-m", "perflab", "--store", str(store), "k6", "1", "--json"])
                for _ in range(args.repeat)]
    d, p = statistics.median(t for t, _ in duck), statistics.median(t for t, _ in ours)
    print(json.dumps({"lines": args.lines, "duckdb_s": round(d, 3), "perflab_s": round(p, 3),
                      "ratio": round(p / d, 2), "goal_ratio": 1.5,
                      "duckdb_peak_rss_mib": max(r for _, r in duck) >> 20,
                      "perflab_peak_rss_mib": max(r for _, r in ours) >> 20,
                      "load_avg_1m": round(os.getloadavg()[0], 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
