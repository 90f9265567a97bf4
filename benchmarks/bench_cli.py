"""The CLI's own cost: `perflab --help` and `perflab top` of a small stored profile,
against `go tool pprof -top` on the same file.

Most of a short command's time is Python importing what it needs; these figures show
what is left after the deferred imports (perflab.commands, the ``--help`` table, the
stored-file shortcut of FILE_OR_SOURCE). Generates a Go-like CPU profile of
``--samples`` samples (1,000 by default) with bench_pprof's generator into
benchmarks/.cache/, ingests it once into a scratch store, then times, each in a fresh
process, best of ``--repeat`` runs:

* ``python -m perflab --help``,
* ``python -m perflab --store S top FILE`` (stored already: no ingest), and with ``--json``,
* ``python -m perflab --store NEW top FILE`` (a fresh store: ingest included),
* ``go tool pprof -top FILE`` when a ``go`` is found (PATH, or beside this Python),

printing one JSON line per measurement, the ratios to pprof's time, and whether the
targets hold (``--help`` under 0.15 s, ``top`` of a stored profile under 0.35 s).

    .venv/bin/python benchmarks/bench_cli.py [--samples N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_pprof import CACHE, bench_env, generate

TARGETS = {"help": 0.15, "top_stored": 0.35}


def best_of(cmd: list[str], repeat: int, env: dict[str, str], before: list[str] | None = None) -> float:
    """The fastest of ``repeat`` runs (``before``, if given, runs untimed ahead of each)."""
    best = float("inf")
    for _ in range(repeat):
        if before is not None:
            subprocess.run(before, capture_output=True, env=env, check=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
        best = min(best, elapsed)
    return best


def find_go() -> str | None:
    beside = Path(sys.executable).with_name("go")
    return shutil.which("go") or (str(beside) if beside.exists() else None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=7)
    args, _ = ap.parse_known_args()  # benchmarks/run.py passes every bench the same options

    path = CACHE / f"cpu_{args.samples}.pb.gz"
    if not path.exists():
        generate(path, args.samples)
    env = bench_env()

    perflab = [sys.executable, "-m", "perflab"]
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "stored.duckdb")
        subprocess.run([*perflab, "--store", store, "ingest", str(path)], capture_output=True, env=env, check=True)
        fresh = str(Path(tmp) / "fresh.duckdb")
        cases = {
            "help": ([*perflab, "--help"], None),
            "top_stored": ([*perflab, "--store", store, "top", str(path)], None),
            "top_stored_json": ([*perflab, "--store", store, "top", str(path), "--json"], None),
            "top_ingest": ([*perflab, "--store", fresh, "top", str(path)],
                           [sys.executable, "-c", f"import pathlib; pathlib.Path({fresh!r}).unlink(missing_ok=True)"]),
        }
        for name, (cmd, before) in cases.items():
            times[name] = best_of(cmd, args.repeat, env, before)
            print(json.dumps({"tool": f"perflab {name.replace('_', ' ')}", "file": path.name,
                              "samples": args.samples, "seconds": round(times[name], 3)}), flush=True)

    go = find_go()
    if go is None:
        print(json.dumps({"tool": "go tool pprof -top", "skipped": "no go found"}), flush=True)
    else:
        go_cmd = [go, "tool", "pprof", "-top", "-symbolize=none", str(path)]
        subprocess.run(go_cmd, capture_output=True, env=env)  # warm go's build cache once
        t_go = best_of(go_cmd, args.repeat, env)
        print(json.dumps({"tool": "go tool pprof -top", "file": path.name, "seconds": round(t_go, 3)}), flush=True)
        print(json.dumps({f"ratio_{name}_over_go": round(t / t_go, 2) for name, t in times.items()}), flush=True)
    print(json.dumps({f"{name}_under_{limit}s": times[name] < limit for name, limit in TARGETS.items()}),
          flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
