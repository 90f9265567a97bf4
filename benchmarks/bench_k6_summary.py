"""`perflab k6 SOURCE --json` on a stored 4.24M-point run, against one DuckDB query of the
same statistics.

The run is bench_k6.py's synthetic k6 output (generated into benchmarks/.cache/ if missing,
then ingested into a temporary store: neither is timed). Each measurement is a fresh
process, so start-up (interpreter and imports) counts on both sides:

* ``duckdb``: per metric count, sum, min, max and quantile_cont at 0.5/0.9/0.95/0.99, the
  http_req_duration{expected_response:true} sub-metric, and the checks by name: what k6's
  summary holds, computed by DuckDB alone (not k6's exact arithmetic: a baseline for speed);
* ``perflab`` (stored): ``python -m perflab --store S k6 1 --json`` (k6's numbers, exactly):
  the default summary, stored when the file was ingested, read back;
* ``computed``: the same with ``--trend-stats`` set to the default list, which is computed
  from every point as any non-default summary (``--by``, other stats, ``--with``) is.

Prints one JSON object: median wall seconds and peak RSS of each, and the ratios to the
query. Goal: `perflab k6 --json` within 1.5x of the query; met by the stored path. The
computed path is reported beside it: it reads every point and loads numpy and polars, and
is not within the goal. ``ingest_s`` (once, untimed otherwise) includes computing and
storing the summary.

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

import duckdb

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bench_k6  # noqa: E402

# perflab's default trend stats, given explicitly: the same summary, computed from the points.
DEFAULT_STATS = "avg,min,med,max,p(90),p(95),p(99),count"

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
        ingest_s, _ = measured([sys.executable, "-m", "perflab", "--store", str(store), "ingest", str(path)])
        k6 = [sys.executable, "-m", "perflab", "--store", str(store), "k6", "1", "--json"]
        con = duckdb.connect(str(store), read_only=True)
        assert con.execute("SELECT count(*) FROM k6_summaries").fetchall() == [(1,)], "ingest stored no summary"
        con.close()
        # Interleaved, so that a change in the machine's load falls on all three alike.
        duck, ours, computed = [], [], []
        for _ in range(args.repeat):
            duck.append(measured([sys.executable, "-c", QUERY, str(store)]))
            ours.append(measured(k6))
            computed.append(measured([*k6, "--trend-stats", DEFAULT_STATS]))
    d, p, c = (statistics.median(t for t, _ in runs) for runs in (duck, ours, computed))
    print(json.dumps({"lines": args.lines, "ingest_s": round(ingest_s, 2), "duckdb_s": round(d, 3),
                      "perflab_s": round(p, 3), "ratio": round(p / d, 2),
                      "computed_s": round(c, 3), "computed_ratio": round(c / d, 2),
                      "goal_ratio": 1.5, "goal_met": p / d <= 1.5,
                      "duckdb_peak_rss_mib": max(r for _, r in duck) >> 20,
                      "perflab_peak_rss_mib": max(r for _, r in ours) >> 20,
                      "computed_peak_rss_mib": max(r for _, r in computed) >> 20,
                      "load_avg_1m": round(os.getloadavg()[0], 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
