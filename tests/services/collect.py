"""What the owner of a Go service brings from a load test, recorded without perflab's runner.

A user's own collection, made the way such a user makes it: start the service, run k6 with
`--out json` and `--summary-export`, meanwhile sample `/debug/vars`, `/metrics` and the
process's CPU and RSS once a second, and pull the pprof profiles in the steady state:

    k6.ndjson  k6-summary.json           k6's points and its end-of-test summary
    vars.ndjson                          /debug/vars once a second, each object plus "time" (RFC 3339)
    metrics.prom                         /metrics once a second, each scrape after `# scrape_timestamp <unix s>`
    process.csv                          time,cpu_seconds_total,rss_bytes from /proc/PID/stat and statm
    cpu.pb.gz                            /debug/pprof/profile?seconds=N over the steady state
    heap.pb.gz goroutine.pb.gz block.pb.gz mutex.pb.gz   in the middle of the load
    host.csv                             the machine's CPU and load (perflab does not read it)
    service.log                          the service's own output

    python -m tests.services.collect --scenario login [--variant fixed] [--duration 15] [--set K=V] OUT_DIR

`summarize(DIR)` reads the raw files back into the numbers each signature turns on.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from perflab.lab.loadgen import find_k6
from tests.services.orders_service import SOURCE, build_orders, http_get, start_orders

LOAD_SCRIPT = SOURCE / "load.js"
SCENARIOS = ("login", "orders", "report", "mixed")

# The one knob each signature's fix changes (the service's defaults are the "default" variant).
# Each fix touches only its own route, so "fixed" may set all three at once.
FIXES: dict[str, dict[str, str]] = {
    "login": {"PBKDF2_ITER": "100000"},      # 6x fewer: ~16 ms of CPU a login instead of ~95
    "orders": {"POOL_SIZE": "20"},           # pool capacity 20 / 50 ms = 400/s, far above the load
    "report": {"RETRY_POLICY": "backoff"},   # 3 attempts, full jitter, 10 % retry budget
}
FIXED: dict[str, str] = {k: v for fix in FIXES.values() for k, v in fix.items()}

SAMPLE_INTERVAL_S = 1.0
PROFILED = ("heap", "goroutine", "block", "mutex")


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Sampler(threading.Thread):
    """Calls ``sample(now)`` once a second until stopped; a failed sample is skipped, as a
    shell loop with curl would skip it."""

    def __init__(self, sample: Callable[[float], None]) -> None:
        super().__init__(daemon=True)
        self.sample = sample
        self.stopped = threading.Event()
        self.errors = 0

    def run(self) -> None:
        next_t = time.monotonic()
        while not self.stopped.is_set():
            try:
                self.sample(time.time())
            except OSError:
                self.errors += 1
            next_t += SAMPLE_INTERVAL_S
            self.stopped.wait(max(0.0, next_t - time.monotonic()))

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=15)


def _proc_cpu_rss(pid: int) -> tuple[float, int]:
    # /proc/PID/stat: fields after the ")" that closes comm; utime and stime are the 12th and
    # 13th of them, in clock ticks. statm's second field is resident pages.
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    ticks = int(fields[11]) + int(fields[12])
    rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return ticks / os.sysconf("SC_CLK_TCK"), rss_pages * os.sysconf("SC_PAGE_SIZE")


def _fetch_to(url: str, path: Path, timeout: float) -> None:
    code, body = http_get(url, timeout=timeout)
    if code != 200:
        raise OSError(f"{url}: HTTP {code}")
    path.write_bytes(body)


def collect(variant_env: dict[str, str], scenario: str, duration_s: float, out_dir: Path,
            *, rate: float | None = None, binary: Path | None = None) -> Path:
    """One load test of the orders service with ``variant_env`` as its settings; every file in
    ``out_dir`` (returned). The service is stopped by PID on every exit path."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario {scenario!r}: one of {', '.join(SCENARIOS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    if binary is None:
        binary = build_orders(Path(tempfile.mkdtemp(prefix="orders-bin-")))
    k6 = find_k6()

    svc = start_orders(binary, dict(variant_env), log=out_dir / "service.log")
    samplers: list[Sampler] = []
    profiler: threading.Thread | None = None
    try:
        proc = psutil.Process(svc.pid)
        with open(out_dir / "vars.ndjson", "w") as vars_fh, open(out_dir / "metrics.prom", "w") as prom_fh, \
                open(out_dir / "process.csv", "w", newline="") as proc_fh, \
                open(out_dir / "host.csv", "w", newline="") as host_fh:
            proc_csv, host_csv = csv.writer(proc_fh), csv.writer(host_fh)
            proc_csv.writerow(["time", "cpu_seconds_total", "rss_bytes"])
            host_csv.writerow(["time", "cpu_percent", "load1", "mem_available_bytes", "service_threads"])
            psutil.cpu_percent(None)

            def sample_vars(now: float) -> None:
                code, body = svc.get("/debug/vars", timeout=5)
                if code == 200:
                    obj = json.loads(body)
                    obj["time"] = rfc3339(now)
                    vars_fh.write(json.dumps(obj, separators=(",", ":")) + "\n")
                    vars_fh.flush()

            def sample_metrics(now: float) -> None:
                code, body = svc.get("/metrics", timeout=5)
                if code == 200:
                    prom_fh.write(f"# scrape_timestamp {now:.3f}\n{body.decode()}")
                    prom_fh.flush()

            def sample_process(now: float) -> None:
                cpu, rss = _proc_cpu_rss(svc.pid)
                proc_csv.writerow([rfc3339(now), f"{cpu:.2f}", rss])
                proc_fh.flush()

            def sample_host(now: float) -> None:
                host_csv.writerow([rfc3339(now), f"{psutil.cpu_percent(None):.1f}", f"{os.getloadavg()[0]:.2f}",
                                   psutil.virtual_memory().available, proc.num_threads()])
                host_fh.flush()

            samplers = [Sampler(f) for f in (sample_vars, sample_metrics, sample_process, sample_host)]
            for s in samplers:
                s.start()

            # The CPU profile over the steady state: after the first seconds of ramp-up, ending
            # before the load does; the other profiles in the middle of the load.
            warmup = max(2.0, 0.2 * duration_s)
            cpu_s = max(1, int(duration_s - warmup - 1))
            profile_errors: list[str] = []

            def pull_profiles() -> None:
                t0 = time.monotonic()
                cpu = threading.Thread(target=_pull, args=(
                    f"{svc.base}/debug/pprof/profile?seconds={cpu_s}", out_dir / "cpu.pb.gz", cpu_s + 30,
                    warmup, t0, profile_errors))
                cpu.start()
                for name in PROFILED:
                    _pull(f"{svc.base}/debug/pprof/{name}", out_dir / f"{name}.pb.gz", 30, duration_s / 2, t0,
                          profile_errors)
                cpu.join()

            profiler = threading.Thread(target=pull_profiles, daemon=True)
            env = {**os.environ, **variant_env, "BASE_URL": svc.base, "DURATION": f"{duration_s:g}s",
                   "SCENARIO": scenario, "K6_NO_USAGE_REPORT": "true"}
            if rate is not None:
                env["RATE"] = f"{rate:g}"
            cmd = [k6, "run", "--no-usage-report", "--quiet", "--out", f"json={out_dir / 'k6.ndjson'}",
                   f"--summary-export={out_dir / 'k6-summary.json'}", str(LOAD_SCRIPT)]
            with open(out_dir / "k6.stdout.txt", "w") as k6_out:
                k6_proc = subprocess.Popen(cmd, env=env, stdout=k6_out, stderr=subprocess.STDOUT,
                                           start_new_session=True)
                profiler.start()
                try:
                    code = k6_proc.wait(timeout=duration_s + 120)
                finally:
                    if k6_proc.poll() is None:
                        k6_proc.terminate()
                        k6_proc.wait(10)
            profiler.join(timeout=60)
            # One more sample of each after the load, so the counters' last values are there.
            time.sleep(SAMPLE_INTERVAL_S)
            for s in samplers:
                s.stop()
        if code not in (0, 99):  # 99: thresholds crossed; the test ran
            raise RuntimeError(f"k6 exited with {code}: see {out_dir / 'k6.stdout.txt'}")
        if profile_errors:
            raise RuntimeError("profiles not pulled: " + "; ".join(profile_errors))
    finally:
        for s in samplers:
            s.stop()
        svc.stop()
    return out_dir


def _pull(url: str, path: Path, timeout: float, at_s: float, t0: float, errors: list[str]) -> None:
    time.sleep(max(0.0, t0 + at_s - time.monotonic()))
    try:
        _fetch_to(url, path, timeout)
    except OSError as e:
        errors.append(f"{url}: {e}")


# -- reading a collection back: the raw numbers each signature turns on ----------------------------

def read_scrapes(path: Path) -> list[tuple[float, dict[str, float]]]:
    """metrics.prom as (unix time, {series: value}), one entry per scrape; parsed with
    prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    scrapes: list[tuple[float, dict[str, float]]] = []
    chunks = path.read_text().split("# scrape_timestamp ")[1:]
    for chunk in chunks:
        ts, _, text = chunk.partition("\n")
        values: dict[str, float] = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "db_name")
                values[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        scrapes.append((float(ts), values))
    return scrapes


def summarize(out_dir: Path) -> dict[str, Any]:
    """The headline numbers of a collection, from its raw files only."""
    summary = json.loads((out_dir / "k6-summary.json").read_text())["metrics"]
    dur = summary["http_req_duration"]
    reqs = summary["http_reqs"]["count"]
    dropped = summary.get("dropped_iterations", {}).get("count", 0)
    failed = summary["http_req_failed"].get("value", 0.0)

    # CPU: % of one core between consecutive process samples, judged on the middle 80 %.
    rows = list(csv.DictReader((out_dir / "process.csv").open()))
    cpu_pct = [100 * (float(b["cpu_seconds_total"]) - float(a["cpu_seconds_total"]))
               / max(1e-9, (_t(b["time"]) - _t(a["time"]))) for a, b in zip(rows, rows[1:], strict=False)]
    steady = cpu_pct[len(cpu_pct) // 10: len(cpu_pct) - len(cpu_pct) // 10] or cpu_pct
    rss = [int(r["rss_bytes"]) for r in rows]

    scrapes = read_scrapes(out_dir / "metrics.prom")
    first, last = scrapes[0][1], scrapes[-1][1]

    def delta(prefix: str) -> float:
        return sum(v for k, v in last.items() if k.startswith(prefix)) - sum(
            v for k, v in first.items() if k.startswith(prefix))

    app_requests = delta("orders_http_requests_total")
    in_use = [v.get("go_sql_in_use_connections", 0) for _, v in scrapes]
    in_flight = [v.get("orders_http_in_flight_requests", 0) for _, v in scrapes]
    span = scrapes[-1][0] - scrapes[0][0]
    return {
        "k6_requests": reqs,
        "p95_ms": round(dur["p(95)"], 1),
        "median_ms": round(dur["med"], 1),
        "dropped_iterations": dropped,
        "failed_fraction": round(failed, 3),
        "cpu_pct_median": round(statistics.median(steady), 1) if steady else None,
        "cpu_pct_max": round(max(steady), 1) if steady else None,
        "rss_mb_max": round(max(rss) / 2**20, 1) if rss else None,
        "app_requests": app_requests,
        "pool_wait_count": delta("go_sql_wait_count_total"),
        "pool_wait_seconds": round(delta("go_sql_wait_duration_seconds_total"), 2),
        # Little's law: the rate of a wait-time counter is the mean number of waiters.
        "pool_mean_waiters": round(delta("go_sql_wait_duration_seconds_total") / span, 1) if span else None,
        "pool_in_use_max": max(in_use) if in_use else None,
        "in_flight_max": max(in_flight) if in_flight else None,
        "dependency_calls_per_request": round(delta("orders_dependency_calls_total") / app_requests, 2)
        if app_requests else None,
        "retries_per_request": round(delta("orders_retries_total") / app_requests, 2) if app_requests else None,
        "timeout_fraction": round(delta("orders_errors_total{kind=timeout}") / app_requests, 3)
        if app_requests else None,
        "files": sorted(p.name for p in out_dir.iterdir()),
    }


def _t(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.services.collect", description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--scenario", choices=SCENARIOS, default="login")
    ap.add_argument("--variant", choices=("default", "fixed"), default="default")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds of load (default 15)")
    ap.add_argument("--rate", type=float, help="requests per second (default: the scenario's in load.js)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a service setting")
    ap.add_argument("--binary", type=Path, help="an orders binary already built")
    args = ap.parse_args(argv)
    env = dict(FIXED) if args.variant == "fixed" else {}
    for kv in args.set:
        key, sep, value = kv.partition("=")
        if not sep:
            ap.error(f"--set {kv}: KEY=VALUE")
        env[key] = value
    out = collect(env, args.scenario, args.duration, args.out_dir, rate=args.rate, binary=args.binary)
    print(json.dumps(summarize(out), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
