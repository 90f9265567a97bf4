"""`perflab ingest` of a large k6 NDJSON, against bare DuckDB reading the same file.

Synthesizes (deterministically) a k6 v1.1.0 `--out json` file shaped like
`tools/k6gen/big.js` (8 VUs hammering one endpoint: 14 lines per iteration, about
250 bytes a line, a few 503s, gauges every second, a Metric line before each metric's
first Point) into benchmarks/.cache/. Generation is not timed. Then, each in a fresh
process with the file in the page cache:

* ``duckdb``: ``CREATE TABLE t AS SELECT * FROM read_json(F, format='newline_delimited')``
  into a new DuckDB file (the baseline the goal is stated against),
* ``perflab``: ``python -m perflab --store NEW ingest F`` (the goal's subject),
* what it is made of, to say what costs what: ``perflab_call`` (``ingest_path`` alone,
  imports excluded), ``k6_format`` (the k6 ingester alone in a transaction on a new
  store: no hashing, no dedup), ``sha256`` (the framework hashes every file, in a thread
  beside the parser) and ``startup`` (interpreter, imports and the CLI parser),

and prints one JSON object: wall and CPU seconds and peak RSS (MiB, from ``wait4``) of
each, median and best of ``--repeat`` runs, and the ratios. Goal: perflab ≤ 1.5× duckdb
in wall time, peak RSS < 1 GiB (DuckDB held to 512 MB during an ingest; it was 1.5 GiB).
The machine is shared: compare ratios from one run, and CPU seconds when the load average is high.

    .venv/bin/python benchmarks/bench_k6.py                  # 4.24M lines, ≈1.06 GB
    .venv/bin/python benchmarks/bench_k6.py --lines 200000 --big-lines 0  # quick check

Then one ingest of a file twice as large (``--big-lines``, ≈ 2.1 GB), for its peak RSS
beside bare DuckDB's: memory must not grow with the file.
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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / ".cache"

# The big.js run that anchors FORMAT.md: 4,239,210 lines at ≈5,040 requests/s.
DEFAULT_LINES = 4_240_000
REQUESTS_PER_S = 5040
VUS = 8
SEED = 20261122
START_NS = 1_795_342_113_567_150_809  # 2026-11-22T10:08:33.567150809Z, as in the fixtures
OFFSET = "+05:30"  # a non-UTC zone, so the offset parsing is on the measured path
OFFSET_NS = (5 * 60 + 30) * 60 * 1_000_000_000

URL = "http://127.0.0.1:18080/fast"
HTTP_METRICS = [  # (name, type, contains) in k6's emission order for one request
    ("http_reqs", "counter", "default"),
    ("http_req_duration", "trend", "time"),
    ("http_req_blocked", "trend", "time"),
    ("http_req_connecting", "trend", "time"),
    ("http_req_tls_handshaking", "trend", "time"),
    ("http_req_sending", "trend", "time"),
    ("http_req_waiting", "trend", "time"),
    ("http_req_receiving", "trend", "time"),
    ("http_req_failed", "rate", "default"),
]
ITER_METRICS = [
    ("checks", "rate", "default"),
    ("data_sent", "counter", "data"),
    ("data_received", "counter", "data"),
    ("iteration_duration", "trend", "time"),
    ("iterations", "counter", "default"),
]
GAUGES = [("vus", "gauge", "default"), ("vus_max", "gauge", "default")]
THRESHOLDS = {"http_req_duration": ["p(95)<2000"], "http_req_failed": ["rate<0.01"]}
LINES_PER_ITERATION = len(HTTP_METRICS) + len(ITER_METRICS)


def _metric_line(name: str, mtype: str, contains: str) -> str:
    submetrics = "null"
    if name == "http_req_duration":
        submetrics = ('[{"name":"http_req_duration{expected_response:true}","suffix":"expected_response:true",'
                      '"tags":{"expected_response":"true"}}]')
    thresholds = json.dumps(THRESHOLDS.get(name, []), separators=(",", ":"))
    return (f'{{"type":"Metric","data":{{"name":"{name}","type":"{mtype}","contains":"{contains}",'
            f'"thresholds":{thresholds},"submetrics":{submetrics}}},"metric":"{name}"}}')


def _time_text(ns: pl.Expr) -> pl.Expr:
    """Go's time.Time JSON in a +05:30 zone: nanoseconds with trailing zeros trimmed."""
    import polars as pl

    local = pl.from_epoch(ns + OFFSET_NS, time_unit="ns")
    frac = (ns % 1_000_000_000).cast(pl.String).str.zfill(9).str.strip_chars_end("0")
    return pl.concat_str([
        local.dt.strftime("%Y-%m-%dT%H:%M:%S"),
        pl.when(frac == "").then(pl.lit("")).otherwise(pl.lit(".") + frac),
        pl.lit(OFFSET),
    ])


def _number_text(x: pl.Expr) -> pl.Expr:
    """Go's shortest float64 form: 1 rather than 1.0."""
    import polars as pl

    return x.cast(pl.String).str.replace(r"\.0$", "")


def generate(path: Path, n_lines: int) -> dict[str, int]:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(SEED)
    n_iter = max(1, -(-n_lines // LINES_PER_ITERATION))
    iter_start = START_NS + (np.arange(n_iter, dtype=np.int64) * 1_000_000_000 // REQUESTS_PER_S)
    # Request phases in integer nanoseconds, as k6 measures them; the metric value is ns/1e6.
    blocked = rng.integers(1_000, 9_000, n_iter)
    connecting = np.where(np.arange(n_iter) < VUS, rng.integers(50_000, 200_000, n_iter), 0)
    sending = rng.integers(5_000, 40_000, n_iter)
    waiting = rng.lognormal(np.log(600_000), 0.5, n_iter).astype(np.int64)
    receiving = rng.integers(10_000, 90_000, n_iter)
    duration = sending + waiting + receiving
    failed = rng.random(n_iter) < 0.002  # a few 503s, so rates and statuses vary
    # One early, so bare DuckDB's schema sample (the first 20,480 lines) sees the error_code
    # tag; otherwise its auto-detected STRUCT rejects the first later error and the baseline fails.
    failed[min(3, n_iter - 1)] = True
    iteration = blocked + connecting + duration + rng.integers(20_000, 60_000, n_iter)
    df = pl.DataFrame({
        "t_req": iter_start + blocked + connecting + duration,
        "t_iter": iter_start + iteration,
        "blocked": blocked, "connecting": connecting, "sending": sending, "waiting": waiting,
        "receiving": receiving, "duration": duration, "iteration": iteration, "failed": failed,
        "vu": (np.arange(n_iter) % VUS + 1).astype(np.int64),
        "received": rng.integers(230, 260, n_iter),
    })
    http_tags = pl.concat_str([
        pl.lit('"tags":{'),
        pl.when(pl.col("failed")).then(pl.lit('"error_code":"1503","expected_response":"false",'))
        .otherwise(pl.lit('"expected_response":"true",')),
        pl.lit(f'"group":"","method":"GET","name":"{URL}","proto":"HTTP/1.1","scenario":"default","status":"'),
        pl.when(pl.col("failed")).then(pl.lit("503")).otherwise(pl.lit("200")),
        pl.lit(f'","url":"{URL}"}}}}}}'),
    ])
    iter_tags = pl.lit('"tags":{"group":"","scenario":"default"}}}')
    check_tags = pl.lit('"tags":{"check":"status is 200","group":"","scenario":"default"}}}')

    def point(name: str, t: pl.Expr, value: pl.Expr, tags: pl.Expr) -> pl.Expr:
        return pl.concat_str([
            pl.lit(f'{{"metric":"{name}","type":"Point","data":{{"time":"'), _time_text(t),
            pl.lit('","value":'), value, pl.lit(","), tags,
        ])

    # numpy divides; polars multiplies by the reciprocal, which is not k6's float64(ns)/1e6.
    ms = {k: _number_text(pl.lit(pl.Series(df[k].to_numpy() / 1e6))) for k in
          ("duration", "blocked", "connecting", "sending", "waiting", "receiving", "iteration")}
    ms["tls"] = pl.lit("0")
    req = pl.col("t_req")
    lines = [
        point("http_reqs", req, pl.lit("1"), http_tags),
        point("http_req_duration", req, ms["duration"], http_tags),
        point("http_req_blocked", req, ms["blocked"], http_tags),
        point("http_req_connecting", req, ms["connecting"], http_tags),
        point("http_req_tls_handshaking", req, ms["tls"], http_tags),
        point("http_req_sending", req, ms["sending"], http_tags),
        point("http_req_waiting", req, ms["waiting"], http_tags),
        point("http_req_receiving", req, ms["receiving"], http_tags),
        point("http_req_failed", req, pl.col("failed").cast(pl.Int8).cast(pl.String), http_tags),
        point("checks", req, (~pl.col("failed")).cast(pl.Int8).cast(pl.String), check_tags),
        point("data_sent", pl.col("t_iter"), pl.lit("87"), iter_tags),
        point("data_received", pl.col("t_iter"), pl.col("received").cast(pl.String), iter_tags),
        point("iteration_duration", pl.col("t_iter"), ms["iteration"], iter_tags),
        point("iterations", pl.col("t_iter"), pl.lit("1"), iter_tags),
    ]
    gauge_every = REQUESTS_PER_S  # once a second, as k6's engine does
    gauge_tags = pl.lit('"tags":{}}}')
    gauges = pl.concat_str([
        pl.lit("\n"), point("vus", pl.col("t_iter"), pl.lit(str(VUS)), gauge_tags),
        pl.lit("\n"), point("vus_max", pl.col("t_iter"), pl.lit(str(VUS)), gauge_tags),
    ])
    block = df.select(
        pl.concat_str(lines, separator="\n").alias("it"),
        pl.when(pl.int_range(pl.len()) % gauge_every == 0).then(gauges).otherwise(pl.lit("")).alias("g"),
    ).select(pl.concat_str(["it", "g"]).alias("text"))["text"]

    # The first iteration gets a Metric line before each metric's first Point, as k6 writes them.
    first = block[0].split("\n")
    defs = {name: (name, t, c) for name, t, c in HTTP_METRICS + ITER_METRICS + GAUGES}
    head = []
    for line in first:
        name = line.split('"', 4)[3]
        head += [_metric_line(*defs[name]), line]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "w", encoding="ascii") as out:
        out.write("\n".join(head) + "\n")
        step = 200_000
        for i in range(1, len(block), step):
            out.write("\n".join(block.slice(i, step).to_list()))
            out.write("\n")
    tmp.rename(path)
    n_gauge = 2 * ((n_iter - 1) // gauge_every + 1)
    return {"lines": n_iter * LINES_PER_ITERATION + n_gauge + len(first), "iterations": n_iter}


# -- measuring ----------------------------------------------------------------------------

_DUCKDB_CHILD = """
import json, sys, time, duckdb
con = duckdb.connect(sys.argv[2])
t = time.perf_counter()
con.execute("CREATE TABLE t AS SELECT * FROM read_json(?, format='newline_delimited')", [sys.argv[1]])
con.close()
print(json.dumps({"call_s": time.perf_counter() - t}))
"""

_PERFLAB_CALL_CHILD = """
import json, sys, time
from perflab.store import Store
from perflab.ingest import ingest_path
store = Store(sys.argv[2])
t = time.perf_counter()
r = ingest_path(store, sys.argv[1])
store.close()
print(json.dumps({"call_s": time.perf_counter() - t, "stats": r.stats}))
"""

# The k6 ingester alone: the framework's Context and transaction, no hashing, no dedup.
_FORMAT_CHILD = """
import json, sys, time
from pathlib import Path
from perflab.store import Store
from perflab.ingest import Context, formats
store = Store(sys.argv[2])
fmt = formats()["k6"]
t = time.perf_counter()
with store.transaction():
    ctx = Context(store=store, source_id=1, run_id=None, path=Path(sys.argv[1]), gzipped=False,
                  max_decompressed=1 << 40)
    stats = fmt.ingest(ctx)
store.close()
print(json.dumps({"call_s": time.perf_counter() - t, "stats": stats}))
"""

# What `python -m perflab` costs before it reads a byte: interpreter, imports, the parser.
_STARTUP_CHILD = """
import json, time
t = time.perf_counter()
import perflab.cli
perflab.cli.build_parser()
print(json.dumps({"call_s": time.perf_counter() - t}))
"""

_SHA_CHILD = """
import hashlib, json, sys, time
t = time.perf_counter()
h = hashlib.sha256()
with open(sys.argv[1], "rb") as fh:
    while chunk := fh.read(4 << 20):
        h.update(chunk)
print(json.dumps({"call_s": time.perf_counter() - t}))
"""


def _run(cmd: list[str]) -> dict[str, object]:
    """Run a child, returning its wall time, peak RSS (MiB, from wait4) and its JSON output."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read().decode()
        if proc.returncode != 0:
            raise SystemExit(f"{cmd}: exit {proc.returncode}: {err.read().decode()[-2000:]}")
    result: dict[str, object] = {"wall_s": round(wall, 3), "peak_rss_mib": round(usage.ru_maxrss / 1024),
                                 "cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}
    last = text.strip().splitlines()[-1] if text.strip() else ""
    if last.startswith("{"):
        child = json.loads(last)
        result["call_s"] = round(child.pop("call_s"), 3)
        result.update(child)
    return result


def _warm(path: Path) -> None:
    """Read the file so that every measurement starts with it in the page cache."""
    with open(path, "rb") as fh:
        while fh.read(1 << 20):
            pass


def _summary(runs: list[dict[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {"runs": len(runs)}
    for key in ("wall_s", "call_s", "cpu_s", "peak_rss_mib"):
        vals = [float(r[key]) for r in runs if key in r]  # type: ignore[arg-type]
        if vals:
            out[f"{key}_median"] = round(statistics.median(vals), 3)
            out[f"{key}_min"] = round(min(vals), 3)
            if key == "peak_rss_mib":
                out[f"{key}_max"] = round(max(vals), 3)
    if "stats" in runs[0]:
        out["stats"] = runs[0]["stats"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=DEFAULT_LINES, help="NDJSON lines to synthesize")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measurement (best and median)")
    ap.add_argument("--file", type=Path, help="measure this k6 NDJSON instead of a synthesized one")
    ap.add_argument("--big-lines", type=int, default=2 * DEFAULT_LINES, metavar="N",
                    help="then ingest a file of N lines once, for peak RSS as the file grows (0: skip)")
    ap.add_argument("--generate", nargs=2, metavar=("LINES", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.generate:
        print(json.dumps(generate(Path(args.generate[1]), int(args.generate[0]))))
        return 0

    path = args.file
    gen: dict[str, object] = {}
    if path is None:
        path = CACHE / f"k6_{args.lines}.ndjson"
        if not path.exists():
            # In a child: peak RSS survives exec on Linux, so a parent grown by generating would
            # lend its peak to every measured child. The parent stays small (no numpy/polars).
            t = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--generate", str(args.lines), str(path)],
                                 check=True, capture_output=True, text=True).stdout
            gen = json.loads(out)
            gen["generate_s"] = round(time.perf_counter() - t, 1)
    with open(path, "rb") as fh:
        n_lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    size = path.stat().st_size
    py = sys.executable
    results: dict[str, list[dict[str, object]]] = {k: [] for k in ("duckdb", "perflab", "perflab_call",
                                                                    "k6_format", "sha256", "startup")}
    with tempfile.TemporaryDirectory(prefix="bench-k6-") as tmp:
        for i in range(args.repeat):
            _warm(path)
            db = Path(tmp) / f"duckdb{i}.duckdb"
            results["duckdb"].append(_run([py, "-c", _DUCKDB_CHILD, str(path), str(db)]))
            _warm(path)
            results["perflab"].append(_run([py, "-m", "perflab", "--store", str(Path(tmp) / f"p{i}.duckdb"),
                                            "ingest", str(path)]))
            _warm(path)
            results["perflab_call"].append(_run([py, "-c", _PERFLAB_CALL_CHILD, str(path),
                                                 str(Path(tmp) / f"c{i}.duckdb")]))
            _warm(path)
            results["k6_format"].append(_run([py, "-c", _FORMAT_CHILD, str(path),
                                              str(Path(tmp) / f"f{i}.duckdb")]))
            _warm(path)
            results["sha256"].append(_run([py, "-c", _SHA_CHILD, str(path)]))
            results["startup"].append(_run([py, "-c", _STARTUP_CHILD]))
            for f in Path(tmp).iterdir():
                f.unlink()
    s = {k: _summary(v) for k, v in results.items()}
    report = {
        "bench": "k6_ingest",
        "file": {"path": str(path), "bytes": size, "mb": round(size / 1e6, 1), "lines": n_lines, **gen},
        "load_avg_at_end": os.getloadavg()[0],
        **s,
        "ratio_wall_perflab_vs_duckdb": round(float(s["perflab"]["wall_s_median"])  # type: ignore[arg-type]
                                              / float(s["duckdb"]["wall_s_median"]), 3),  # type: ignore[arg-type]
        "ratio_call_perflab_vs_duckdb": round(float(s["perflab_call"]["call_s_median"])  # type: ignore[arg-type]
                                              / float(s["duckdb"]["call_s_median"]), 3),  # type: ignore[arg-type]
        "goal": "perflab wall <= 1.5x duckdb, peak RSS < 1024 MiB",
    }
    report["goal_met"] = (report["ratio_wall_perflab_vs_duckdb"] <= 1.5  # type: ignore[operator]
                          and float(s["perflab"]["peak_rss_mib_max"]) < 1024)  # type: ignore[arg-type]
    if args.file is None and args.big_lines:
        report["big"] = _big(args.big_lines)
        report["goal_met"] = report["goal_met"] and report["big"]["perflab"]["peak_rss_mib"] < 1024
    print(json.dumps(report, indent=2))
    return 0


def _big(lines: int) -> dict[str, object]:
    """Memory stays bounded as the file grows: one ingest of a file of ``lines`` lines (2x the
    default: ≈ 2.1 GB), its peak RSS and time beside bare DuckDB's on the same file."""
    path = CACHE / f"k6_{lines}.ndjson"
    if not path.exists():
        subprocess.run([sys.executable, __file__, "--generate", str(lines), str(path)], check=True,
                       capture_output=True)
    out: dict[str, object] = {"path": str(path), "mb": round(path.stat().st_size / 1e6, 1), "lines": lines}
    with tempfile.TemporaryDirectory(prefix="bench-k6-big-") as tmp:
        _warm(path)
        out["duckdb"] = _run([sys.executable, "-c", _DUCKDB_CHILD, str(path), str(Path(tmp) / "d.duckdb")])
        _warm(path)
        out["perflab"] = _run([sys.executable, "-m", "perflab", "--store", str(Path(tmp) / "p.duckdb"), "ingest",
                               str(path)])
    return out


if __name__ == "__main__":
    raise SystemExit(main())
