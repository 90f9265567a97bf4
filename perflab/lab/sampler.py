"""Sample every process of a run a few times a second, and the service's /debug/vars.

Why not ``psutil.cpu_percent(interval=None)``: at 0.25 s intervals it gave bogus
numbers here (LAB-NOTES); CPU % is computed from differences of ``cpu_times()``
between samples instead. At 4 Hz one sample moves in ~4 % steps, so analyses
report the run's mean beside percentiles.

Roles are resolved on every tick because processes come and go (PostgreSQL forks a
backend per connection): a role is a set of root pids plus all their descendants. The
descendants are read from each task's /proc/PID/task/TID/children, which costs per process
of the run; psutil's children() scans every process on the host instead, once per role and
tick (3.3 % of a core at 150 host processes, 16.7 % at 660).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import psutil

from perflab.vocab import RESOURCES, SERVICE_VARS

DEFAULT_INTERVAL_S = 0.25  # ≥ 4 Hz, as the lab promises
VARS_TIMEOUT_S = 0.5


@dataclass
class _Prev:
    cpu: float  # user + system seconds
    ctx_vol: int
    ctx_invol: int


@dataclass
class Sampler:
    """Writes resources.jsonl (and vars.jsonl when a vars URL is given) until stopped."""

    roles: Callable[[], dict[str, list[int]]]
    out_dir: Path
    interval_s: float = DEFAULT_INTERVAL_S
    vars_url: str | None = None
    on_sample: Callable[[dict[str, Any]], None] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _prev: dict[int, _Prev] = field(default_factory=dict)
    _procs: dict[int, psutil.Process] = field(default_factory=dict)
    _seen: set[int] = field(default_factory=set)  # pids met this tick
    _host_prev: Any = None
    _last_t: float | None = None
    samples: int = 0

    def start(self) -> Sampler:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._res = open(self.out_dir / "resources.jsonl", "w")  # noqa: SIM115 - open until stop()
        header = {"perflab": RESOURCES, "version": 1, "interval_s": self.interval_s,
                  "cpu_count": psutil.cpu_count(), "host": _hostname()}
        self._res.write(json.dumps(header) + "\n")
        self._vars: TextIO | None = None
        if self.vars_url:
            self._vars = open(self.out_dir / "vars.jsonl", "w")  # noqa: SIM115 - open until stop()
            self._vars.write(json.dumps({"perflab": SERVICE_VARS, "version": 1, "url": self.vars_url}) + "\n")
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="perflab-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for fh in (getattr(self, "_res", None), getattr(self, "_vars", None)):
            if fh is not None and not fh.closed:
                fh.close()

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop -----------------------------------------------------------------
    def _loop(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            self.sample_once()
            next_t += self.interval_s
            # Fixed-rate schedule: a slow tick shortens the next wait instead of drifting.
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def sample_once(self) -> None:
        now = time.monotonic()
        wall = datetime.now(UTC).isoformat()
        elapsed = round(now - self._t0, 4)
        dt = None if self._last_t is None else now - self._last_t
        self._last_t = now
        rows = [self._role_row(role, pids, dt) for role, pids in self.roles().items()]
        self._forget_gone()
        rows.append(self._host_row(dt))
        for row in rows:
            row.update(t=wall, elapsed_s=elapsed)
            self._res.write(json.dumps(row) + "\n")
        self._res.flush()
        if self._vars is not None and self.vars_url:
            for key, value in _flatten(_get_json(self.vars_url)).items():
                self._vars.write(json.dumps({"t": wall, "elapsed_s": elapsed, "key": key, "value": value}) + "\n")
            self._vars.flush()
        self.samples += 1
        if self.on_sample is not None:
            self.on_sample({r["role"]: r for r in rows})

    def _role_row(self, role: str, roots: list[int], dt: float | None) -> dict[str, Any]:
        procs = []
        for pid in roots:
            p = self._process(pid)
            if p is None:
                continue
            procs.append(p)
            procs.extend(c for c in map(self._process, descendants(p)) if c is not None)
        cpu = 0.0
        rss = threads = vol = invol = 0
        alive = 0
        for p in procs:
            try:
                with p.oneshot():
                    ct = p.cpu_times()
                    mem = p.memory_info().rss
                    nthreads = p.num_threads()
                    cs = p.num_ctx_switches()
            except psutil.Error:
                continue  # exited between listing and reading
            alive += 1
            total = ct.user + ct.system
            prev = self._prev.get(p.pid)
            if prev is not None:
                cpu += total - prev.cpu
                vol += cs.voluntary - prev.ctx_vol
                invol += cs.involuntary - prev.ctx_invol
            elif dt is not None:
                # Born since the last tick: all of its CPU was spent within the interval.
                cpu += total
                vol += cs.voluntary
                invol += cs.involuntary
            self._prev[p.pid] = _Prev(total, cs.voluntary, cs.involuntary)
            rss += mem
            threads += nthreads
        return {
            "role": role,
            "processes": alive,
            "cpu_pct": None if dt is None or dt <= 0 else round(100.0 * cpu / dt, 3),
            "rss_bytes": rss,
            "threads": threads,
            "ctx_voluntary": None if dt is None else vol,
            "ctx_involuntary": None if dt is None else invol,
        }

    def _host_row(self, dt: float | None) -> dict[str, Any]:
        ct = psutil.cpu_times()
        busy = ct.user + ct.system + getattr(ct, "irq", 0) + getattr(ct, "softirq", 0) + getattr(ct, "steal", 0)
        cpu_pct = None
        if self._host_prev is not None and dt:
            cpu_pct = round(100.0 * (busy - self._host_prev) / dt, 3)
        self._host_prev = busy
        vm = psutil.virtual_memory()
        return {"role": "host", "processes": len(psutil.pids()), "cpu_pct": cpu_pct,
                "rss_bytes": vm.total - vm.available, "threads": None,
                "ctx_voluntary": None, "ctx_involuntary": None}

    def _process(self, pid: int) -> psutil.Process | None:
        # Keep Process objects: psutil caches create_time, so a reused pid is not mistaken
        # for the process that had it (that one's counters are dropped with it).
        self._seen.add(pid)
        p = self._procs.get(pid)
        if p is not None and p.is_running():
            return p
        self._prev.pop(pid, None)
        try:
            p = psutil.Process(pid)
        except psutil.Error:
            self._procs.pop(pid, None)
            return None
        self._procs[pid] = p
        return p

    def _forget_gone(self) -> None:
        """Drop what is kept of processes not met this tick (PostgreSQL forks a backend per
        connection: a long run would keep thousands)."""
        for pid in self._procs.keys() - self._seen:
            del self._procs[pid]
            self._prev.pop(pid, None)
        self._seen = set()


def descendants(p: psutil.Process) -> list[int]:
    """Every descendant of ``p``: pids from /proc's per-task children lists, or, on a kernel
    without them (CONFIG_PROC_CHILDREN), psutil's scan of every process."""
    if not _PROC_CHILDREN:
        with contextlib.suppress(psutil.Error):
            return [c.pid for c in p.children(recursive=True)]
        return []
    out: list[int] = []
    stack = [p.pid]
    while stack:
        pid = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue  # gone since it was listed
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except OSError:
                continue
            out.extend(kids)
            stack.extend(kids)
    return out


_PROC_CHILDREN = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def _get_json(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=VARS_TIMEOUT_S) as resp:  # noqa: S310 - loopback only
            data = json.loads(resp.read())
            return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # a busy service may miss a tick; the gap shows in the series


def _flatten(obj: Any, prefix: str = "") -> dict[str, float]:
    """{"pool": {"checked_out": 2}} → {"pool.checked_out": 2.0}; numbers and booleans only."""
    out: dict[str, float] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    elif isinstance(obj, (bool, int, float)):
        out[prefix[:-1]] = float(obj)
    return out


def _hostname() -> str:
    return socket.gethostname()
