"""`perflab run`: one reproducible lab run, from an empty machine to rows in the store.

    PostgreSQL → schema + seed → service → pg snapshot → [sampler, pg_stat_activity,
    k6, CPU profile in the steady state] → pg snapshot → stop all → manifest → ingest

The run is registered as `incomplete` before anything starts and becomes `complete`
only after everything is ingested, so an interrupted run is never mistaken for a
finished one. Every process is stopped on every exit path (ProcessGroup and
EphemeralPostgres are context managers; SIGTERM arrives as KeyboardInterrupt).
"""

from __future__ import annotations

import os
import platform
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from perflab import __version__
from perflab.errors import PerflabError
from perflab.ingest import ingest_path
from perflab.lab import scenarios
from perflab.lab.loadgen import find_k6, k6_version, run_k6
from perflab.lab.pgsnap import ActivitySampler, snapshot_views
from perflab.lab.postgres import EphemeralPostgres, free_port
from perflab.lab.processes import ProcessGroup
from perflab.lab.sampler import Sampler
from perflab.manifest import Host, Manifest, ProfileTaken
from perflab.store import Store

READY_TIMEOUT_S = 60.0
SEED_TIMEOUT_S = 300.0
# The CPU profile covers the middle of the run: after warm-up (pools filled, JIT-free
# Python but caches warm) and before k6's ramp-down, i.e. the steady state.
PROFILE_START_FRACTION = 0.3
PROFILE_MAX_S = 10.0


@dataclass
class RunOptions:
    scenario: str
    variant: str = "default"
    duration_s: float = 30.0
    rate: float | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    live: bool = True
    run_id: str | None = None


def new_run_id(scenario: str, variant: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{scenario}-{variant}-{secrets.token_hex(2)}"


def run(store: Store, opts: RunOptions) -> dict[str, Any]:
    scenario = scenarios.get(opts.scenario)
    settings = scenario.service_settings(opts.variant, opts.overrides)
    rate = opts.rate if opts.rate is not None else scenario.rate
    if opts.duration_s < 3:
        raise PerflabError("--duration must be at least 3 seconds")
    run_id = opts.run_id or new_run_id(scenario.name, opts.variant)
    run_dir = store.path.parent / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    k6_bin = find_k6()
    manifest = Manifest(
        run_id=run_id, scenario=scenario.name, variant=opts.variant, signature=scenario.signature,
        why=scenario.why, fix=dict(scenario.fix), settings=dict(settings), overrides=dict(opts.overrides), rate=rate,
        duration_s=opts.duration_s, k6_script=f"sample_workload/k6/{scenario.script}",
        versions={"perflab": __version__, "python": platform.python_version(), "k6": k6_version(k6_bin)},
        host=host_info(), started_at=datetime.now(UTC).isoformat(), status="incomplete")
    manifest.write(run_dir)
    with store.transaction():
        store.ensure_run(run_id, scenario=scenario.name, variant=opts.variant, status="incomplete",
                         manifest=manifest.to_json())
    timings = manifest.timings_s
    say = _say if opts.live else (lambda msg: None)
    try:
        with ExitStack() as stack:
            t = time.perf_counter()
            say(f"run {run_id}: starting PostgreSQL")
            pg = stack.enter_context(EphemeralPostgres())
            timings["postgres_start"] = round(time.perf_counter() - t, 3)
            manifest.postgres = {"external": pg.external, "port": pg.port}
            manifest.versions["postgres"] = _pg_version(pg.dsn)

            procs = stack.enter_context(ProcessGroup())
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = {**os.environ, **settings, "DATABASE_URL": pg.dsn, "PORT": str(port), "HOST": "127.0.0.1",
                   "SPILL_DIR": str(run_dir)}
            env.pop("PERFLAB_STORE", None)
            t = time.perf_counter()
            say("seeding the database")
            seed = subprocess.run([sys.executable, "-m", "sample_workload", "seed"], env=env,
                                  cwd=scenarios.WORKLOAD_DIR.parent, capture_output=True, text=True,
                                  timeout=SEED_TIMEOUT_S)
            (run_dir / "seed.log").write_text(seed.stdout + seed.stderr)
            if seed.returncode != 0:
                raise PerflabError(f"seeding failed: {_last_line(seed.stderr or seed.stdout)}")
            timings["seed"] = round(time.perf_counter() - t, 3)

            t = time.perf_counter()
            service = procs.start("service", [sys.executable, "-m", "sample_workload", "serve"], env=env,
                                  cwd=scenarios.WORKLOAD_DIR.parent, log=run_dir / "service.log")
            wait_ready(f"{base}/debug/vars", service, run_dir / "service.log")
            timings["service_start"] = round(time.perf_counter() - t, 3)

            snapshot_views(pg.dsn, run_dir, "before")
            activity = stack.enter_context(ActivitySampler(pg.dsn, run_dir / "pg_stat_activity_samples.jsonl"))
            k6_pid: list[int] = []
            sampler = stack.enter_context(Sampler(
                roles=lambda: {"service": [service.pid], "postgres": [pg.pid] if pg.pid else [],
                               "k6": list(k6_pid)},
                out_dir=run_dir, vars_url=f"{base}/debug/vars?db=0"))  # db=0: the poll must not query PG
            profile_s = min(PROFILE_MAX_S, max(1.0, opts.duration_s * 0.4))
            profiler = _Profiler(base, run_dir, delay_s=opts.duration_s * PROFILE_START_FRACTION,
                                 seconds=profile_s)

            def started(proc: subprocess.Popen[Any]) -> None:
                procs.adopt("k6", proc)
                k6_pid.append(proc.pid)
                profiler.start()

            t = time.perf_counter()
            say(f"k6 {scenario.script} at {rate:g}/s for {opts.duration_s:g}s")
            k6_env = {"BASE_URL": base, "RATE": f"{rate:g}", "DURATION": f"{opts.duration_s:g}s",
                      "USERS": settings.get("SEED_USERS", "5000")}
            run_k6(scenarios.WORKLOAD_DIR / "k6" / scenario.script, run_dir, k6_env, binary=k6_bin,
                   live=opts.live, on_start=started)
            timings["k6"] = round(time.perf_counter() - t, 3)
            profiler.join(timeout=PROFILE_MAX_S + 15)
            sampler.stop()
            activity.stop()
            _save_vars(f"{base}/debug/vars", run_dir / "debug_vars_final.json")
            t = time.perf_counter()
            # SIGTERM first: the service flushes its write buffer on the way out, and the
            # "after" snapshot must include that last flush.
            procs.stop("service")
            timings["service_stop"] = round(time.perf_counter() - t, 3)
            snapshot_views(pg.dsn, run_dir, "after")
        # Leaving the ExitStack stopped PostgreSQL and everything else.
        t = time.perf_counter()
        say("ingesting")
        counts = ingest_run_dir(store, run_dir, run_id)
        timings["ingest"] = round(time.perf_counter() - t, 3)
        manifest.status, manifest.finished_at = "complete", datetime.now(UTC).isoformat()
        manifest.sources, manifest.profile = counts, ProfileTaken.from_dict(profiler.result)
        manifest.write(run_dir)
        with store.transaction():
            store.ensure_run(run_id, status="complete", manifest=manifest.to_json())
        return {"run_id": run_id, "run_dir": str(run_dir), "status": "complete", "timings_s": timings,
                "sources": counts}
    except BaseException as exc:
        manifest.status, manifest.finished_at = "incomplete", datetime.now(UTC).isoformat()
        manifest.error = f"{type(exc).__name__}: {exc}".strip()
        manifest.write(run_dir)
        try:
            with store.transaction():
                store.ensure_run(run_id, status="incomplete", manifest=manifest.to_json())
        except Exception:  # noqa: BLE001 - the original error matters more
            pass
        raise


# Files a run leaves, in ingest order; anything else in the folder is a log.
def _run_files(run_dir: Path) -> list[Path]:
    names = sorted(p for p in run_dir.iterdir() if p.is_file())
    keep = [p for p in names if p.suffix in (".jsonl", ".ndjson", ".gz", ".prof")
            or p.name == "k6-summary.json"]
    return keep


def ingest_run_dir(store: Store, run_dir: Path, run_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in _run_files(run_dir):
        if path.stat().st_size == 0:
            continue
        result = ingest_path(store, path, run_id=run_id)
        counts[result.kind] = counts.get(result.kind, 0) + 1
    return counts


class _Profiler(threading.Thread):
    """Fetches the service's CPU profile (pprof) and a cProfile dump during the steady state."""

    def __init__(self, base: str, run_dir: Path, delay_s: float, seconds: float) -> None:
        super().__init__(name="perflab-profiler", daemon=True)
        self.base, self.run_dir, self.delay_s, self.seconds = base, run_dir, delay_s, seconds
        self.result: dict[str, Any] = {}

    def run(self) -> None:
        time.sleep(self.delay_s)
        url = f"{self.base}/debug/pprof/profile?seconds={self.seconds:g}"
        try:
            with urllib.request.urlopen(url, timeout=self.seconds + 15) as resp:  # noqa: S310 - loopback
                data = resp.read()
            (self.run_dir / "service.cpu.pb.gz").write_bytes(data)
            self.result = {"cpu_profile": "service.cpu.pb.gz", "seconds": self.seconds,
                           "started_after_s": round(self.delay_s, 3), "bytes": len(data)}
        except OSError as exc:
            self.result = {"error": f"CPU profile not taken: {exc}"}


def wait_ready(url: str, proc: subprocess.Popen[Any], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PerflabError(f"the service exited with {proc.returncode}: "
                               f"{_last_line(log.read_text(errors='replace'))}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise PerflabError(f"the service did not answer {url} within {READY_TIMEOUT_S:g} s")


def _save_vars(url: str, out: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
            out.write_bytes(resp.read())
    except OSError:
        pass


def _pg_version(dsn: str) -> str:
    import sqlalchemy

    engine = sqlalchemy.create_engine(dsn)
    try:
        with engine.connect() as conn:
            return str(conn.execute(sqlalchemy.text("SHOW server_version")).scalar_one())
    finally:
        engine.dispose()


def host_info() -> Host:
    return Host(hostname=socket.gethostname(), platform=platform.platform(), cpu_count=psutil.cpu_count(),
                memory_bytes=psutil.virtual_memory().total, load_avg_1m_at_start=os.getloadavg()[0])


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def _say(msg: str) -> None:
    print(f"perflab: {msg}", file=sys.stderr, flush=True)
