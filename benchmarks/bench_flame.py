"""The flame graph of a large CPU profile: time and peak memory of building it.

Generates the Go-like CPU profiles of bench_pprof.py (its ``generate``, same seed: stacks
20-60 frames deep, almost all distinct) with 1,000,000 and 250,000 samples, ingests each
once into a store (in a child), then in a fresh child process per measurement times

* ``flame_graph(store, source)`` with its defaults (the whole figure: the call tree from
  the stored node ids, names for the kept nodes, the plotly trace);
* the baseline, on the 250,000-sample profile only: the tree grown from the name lists of
  ``stacks()``, as flame graphs were built before (every frame of every stack a string
  before grouping; at 1M samples it needed ~14 GB, so it is not run there).

Each measurement is the best of ``--repeat`` children; peak RSS is the child's
(os.wait4's ru_maxrss), and ``rss_before_mb`` what the child held after its imports and
opening the store. One JSON line per measurement, then the ratios (baseline / new at 250k).

    .venv/bin/python benchmarks/bench_flame.py [--samples N] [--baseline-samples M] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / ".cache"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _child(store_path: str, source: int, mode: str) -> None:
    if mode == "ingest":
        from perflab.ingest import ingest_path
        from perflab.store import Store

        with Store(Path(store_path)) as store:
            print(json.dumps({"source": ingest_path(store, _profile(source)).source_id}))
        return
    import numpy as np
    import polars as pl

    from perflab.analysis.profiles import stacks
    from perflab.report.charts import flame_graph
    from perflab.report.charts._base import DEFAULT_MAX_DEPTH, DEFAULT_MIN_SHARE, MAX_NODES
    from perflab.report.charts.flame import FOLDED_ID
    from perflab.store import Store
    from tests.unit.test_call_tree import reference_tree

    with Store(Path(store_path), read_only=True) as store:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        if mode == "new":  # the call paths drawn, without the boxes of folded thin paths
            nodes = sum(not i.endswith(FOLDED_ID) for i in flame_graph(store, source).data[0].ids)
        else:
            df = stacks(store, source, 1)
            total = int(np.abs(df["value"].to_numpy()).sum())
            nodes = 1 + reference_tree(df.rename({"value": "v"}), ["v"], pl.col("v"), DEFAULT_MIN_SHARE * total,
                                       DEFAULT_MAX_DEPTH, MAX_NODES - 1).height
        seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "nodes": nodes, "rss_before_mb": before}))


def _measure(store_path: Path, source: int, mode: str, repeat: int) -> dict[str, float]:
    # The children are started by this small process (it imports neither perflab nor DuckDB):
    # Linux counts a forked child's peak RSS from its parent's at the fork.
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    best: dict[str, float] = {}
    for _ in range(repeat):
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(store_path), str(source), mode],
                                stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"{mode} child failed ({proc.returncode})")
        got = json.loads(out)
        got["peak_rss_mb"] = usage.ru_maxrss / 1024
        if not best or got.get("seconds", 0) < best.get("seconds", 0):
            best = got
    return best


def _profile(samples: int) -> Path:
    from bench_pprof import generate

    path = CACHE / f"cpu_{samples}.pb.gz"
    if not path.exists():
        t0 = time.perf_counter()
        generate(path, samples)
        print(json.dumps({"generated": str(path), "samples": samples,
                          "seconds": round(time.perf_counter() - t0, 2)}), flush=True)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--baseline-samples", type=int, default=250_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs=3, metavar=("STORE", "SOURCE", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), args.child[2])
        return 0

    results: dict[tuple[int, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store_path = Path(tmp) / "bench.duckdb"
        sources = {n: int(_measure(store_path, n, "ingest", 1)["source"])
                   for n in sorted({args.samples, args.baseline_samples})}
        plan = [(args.samples, "new"), (args.baseline_samples, "new"), (args.baseline_samples, "names")]
        for n, mode in dict.fromkeys(plan):
            got = _measure(store_path, sources[n], mode, args.repeat)
            results[n, mode] = got
            what = ("flame_graph (tree from node ids)" if mode == "new"
                    else "baseline: tree from stacks() name lists")
            print(json.dumps({"tool": what, "samples": n, "seconds": round(got["seconds"], 3),
                              "peak_rss_mb": round(got["peak_rss_mb"]),
                              "rss_before_mb": round(got["rss_before_mb"]), "nodes": int(got["nodes"])}),
                  flush=True)
    new, old = results[args.baseline_samples, "new"], results[args.baseline_samples, "names"]
    print(json.dumps({"samples": args.baseline_samples,
                      "ratio_names_over_ids_seconds": round(old["seconds"] / new["seconds"], 2),
                      "ratio_names_over_ids_peak_rss": round(old["peak_rss_mb"] / new["peak_rss_mb"], 2),
                      "same_node_count": old["nodes"] == new["nodes"]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
