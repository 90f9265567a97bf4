"""`perflab top` with pprof's frame filters on a large stored profile, against `go tool
pprof -top` with the same filters on the same file (goal: no slower, ratio <= 1).

Generates bench_pprof's Go-like CPU profile (its ``generate``: stacks 20-60 frames deep,
almost all distinct) with ``--filter-samples`` samples (250,000 by default), ingests it
once into a scratch store, then for each filter set times, best of ``--repeat`` runs, each
in a fresh process:

* ``python -m perflab --store S top FILE --nodecount 0 <filters>`` (stored: no ingest),
* ``go tool pprof -top -nodecount=0 <filters> FILE``,

the peak RSS of one run of each, and checks that both print the same text (perflab's exactness on a big profile, the
filters rewriting ~10M frames). One JSON line per measurement, then the ratios.

    .venv/bin/python benchmarks/bench_top_filters.py [--filter-samples N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_cli import best_of, find_go
from bench_pprof import CACHE, bench_env, generate

# (name, perflab's options, pprof's): a focus with an ignore, frames hidden with a
# show_from cut, and a focus at line granularity.
FILTER_SETS = [
    ("focus_ignore", ["--focus", r"Worker1[0-9]\)", "--ignore", "pkg07"],
     [r"-focus=Worker1[0-9]\)", "-ignore=pkg07"]),
    ("hide_show_from", ["--hide", r"step[0-9]+1$", "--show-from", r"pkg1[0-4]"],
     [r"-hide=step[0-9]+1$", "-show_from=pkg1[0-4]"]),
    ("focus_lines", ["--focus", "pkg2[0-9]", "--granularity", "lines"], ["-focus=pkg2[0-9]", "-lines"]),
]


def peak_rss_mb(cmd: list[str], env: dict[str, str]) -> float:
    """The peak RSS of one run of ``cmd`` (os.wait4's ru_maxrss: KiB on Linux)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed")
    return round(usage.ru_maxrss / 1024, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--filter-samples", type=int, default=250_000)
    ap.add_argument("--repeat", type=int, default=3)
    args, _ = ap.parse_known_args()  # benchmarks/run.py passes every bench the same options

    path = CACHE / f"cpu_{args.filter_samples}.pb.gz"
    if not path.exists():
        generate(path, args.filter_samples)
    env = bench_env(TZ="UTC")
    go = find_go()
    if go is None:
        print(json.dumps({"tool": "go tool pprof -top", "skipped": "no go found"}), flush=True)
        return 0

    ratios: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "stored.duckdb")
        subprocess.run([sys.executable, "-m", "perflab", "--store", store, "ingest", str(path)],
                       capture_output=True, env=env, check=True)
        for name, ours, theirs in FILTER_SETS:
            perflab = [sys.executable, "-m", "perflab", "--store", store, "top", str(path), "--nodecount", "0", *ours]
            pprof = [go, "tool", "pprof", "-top", "-nodecount=0", "-symbolize=none", *theirs, str(path)]
            same = (subprocess.run(perflab, capture_output=True, text=True, env=env, check=True).stdout
                    == subprocess.run(pprof, capture_output=True, text=True, env=env, check=True).stdout)
            t_ours = best_of(perflab, args.repeat, env)
            t_go = best_of(pprof, args.repeat, env)
            ratios[name] = round(t_ours / t_go, 2)
            print(json.dumps({"filters": name, "samples": args.filter_samples, "perflab_seconds": round(t_ours, 2),
                              "pprof_seconds": round(t_go, 2), "perflab_peak_rss_mb": peak_rss_mb(perflab, env),
                              "pprof_peak_rss_mb": peak_rss_mb(pprof, env), "same_text": same}), flush=True)
    print(json.dumps({f"ratio_{name}_perflab_over_pprof": r for name, r in ratios.items()}), flush=True)
    print(json.dumps({"no_slower_than_pprof": all(r <= 1.0 for r in ratios.values())}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
