"""`perflab runs` on a year of nights: 1,000 runs in one store.

Builds (not timed) a store of N runs, each a copy of a real k6 run (tests/fixtures/k6/
main_small.ndjson: 1,960 points, 153 requests) under its own run id and source, so every
run has k6 points to summarise. Then:

* ``cold``: ``list_runs`` when no summary is stored (a store from before run_summaries, or
  runs ingested by hand into DuckDB): every run's k6 summary and the doctor's verdicts are
  computed (the baseline: what every `perflab runs` cost before summaries were stored), and
  stored;
* ``warm``: ``list_runs`` again: the stored summaries read back in one query;
* ``cli``: ``python -m perflab runs`` and ``runs --json`` in a fresh process, start-up included.

Goal: `perflab runs` (cli) under 0.5 s with 1,000 runs, and the warm listing a small
fraction of the cold one (the ratio is printed). One JSON object.

    .venv/bin/python benchmarks/bench_runs.py            # 1,000 runs
    .venv/bin/python benchmarks/bench_runs.py --runs 200
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from perflab.analysis.runs import list_runs  # noqa: E402
from perflab.ingest import ingest_path  # noqa: E402
from perflab.store import Store  # noqa: E402

K6_FILE = ROOT / "tests" / "fixtures" / "k6" / "main_small.ndjson"
CLI_GOAL_S = 0.5


def build(path: Path, n_runs: int) -> None:
    """Run 0 ingested for real; runs 1..n-1 are its rows copied under new source and run ids."""
    with Store(path) as store:
        ingest_path(store, K6_FILE, run_id="r0000")
        tables = [r[0] for r in store.con.execute(
            "SELECT DISTINCT table_name FROM information_schema.columns WHERE table_schema = 'main' "
            "AND column_name = 'source_id' AND table_name NOT IN ('sources', 'k6_summaries')").fetchall()]
        with store.transaction():
            for table in tables:
                if store.con.execute(f"SELECT count(*) FROM {table} WHERE source_id = 1").fetchall()[0][0]:
                    store.con.execute(
                        f"INSERT INTO {table} SELECT t.* REPLACE (t.source_id + s.i AS source_id, "  # noqa: S608
                        f"printf('r%04d', s.i) AS run_id) FROM {table} t, range(1, ?) s(i) WHERE t.source_id = 1",
                        [n_runs])
            store.con.execute(
                "INSERT INTO sources SELECT sources.* REPLACE (source_id + s.i AS source_id, "
                "sha256 || '-' || s.i AS sha256, printf('r%04d', s.i) AS run_id) "
                "FROM sources, range(1, ?) s(i) WHERE source_id = 1", [n_runs])
            store.con.execute(
                "INSERT INTO runs SELECT runs.* REPLACE (printf('r%04d', s.i) AS run_id, created_at + s.i * INTERVAL 1 "
                "MINUTE AS created_at) FROM runs, range(1, ?) s(i) WHERE run_id = 'r0000'", [n_runs])


def timed_listing(path: Path) -> tuple[float, int, int]:
    """(seconds, runs listed, runs listed with the doctor's verdicts)."""
    with Store(path) as store:
        t = time.perf_counter()
        runs = list_runs(store)
        return time.perf_counter() - t, len(runs), sum(r.verdicts is not None for r in runs)


def cli(path: Path, *args: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "perflab", "--store", str(path), "runs", *args], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "year.duckdb"
        build(path, args.runs)
        cold, n, with_verdicts = timed_listing(path)
        warm = [timed_listing(path)[0] for _ in range(args.repeat)]
        table = [cli(path) for _ in range(args.repeat)]
        as_json = [cli(path, "--json") for _ in range(args.repeat)]
    out = {
        "runs": n,
        "runs_with_verdicts": with_verdicts,
        "cold_s": round(cold, 3),
        "cold_ms_per_run": round(cold / n * 1000, 1),
        "warm_s_median": round(statistics.median(warm), 4),
        "cli_table_s_median": round(statistics.median(table), 3),
        "cli_json_s_median": round(statistics.median(as_json), 3),
        "warm_over_cold": round(statistics.median(warm) / cold, 4),
        "cli_goal_s": CLI_GOAL_S,
        "cli_goal_met": statistics.median(table) < CLI_GOAL_S and statistics.median(as_json) < CLI_GOAL_S,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
