"""Run every benchmark in this folder and print its figures (JSON lines).

Speed targets are ratios against a baseline measured in the same run (bare DuckDB,
`go tool pprof`), never absolute times in tests: the machine is shared and noisy.

    python benchmarks/run.py            # all
    python benchmarks/run.py k6 --lines 500000
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHES = {"k6": "bench_k6.py", "k6-summary": "bench_k6_summary.py", "pprof": "bench_pprof.py",
           "metrics": "bench_metrics.py", "runs": "bench_runs.py", "cli": "bench_cli.py",
           "flame": "bench_flame.py", "top-filters": "bench_top_filters.py"}


def main(argv: list[str]) -> int:
    names = [a for a in argv if a in BENCHES] or list(BENCHES)
    extra = [a for a in argv if a not in BENCHES]
    rc = 0
    for name in names:
        print(f"# {name}", flush=True)
        rc |= subprocess.call([sys.executable, str(HERE / BENCHES[name]), *extra])
    return rc


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
