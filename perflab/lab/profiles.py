"""The service's profiles over the run's steady state, pulled while k6 runs.

    k6 starts ──── warm-up ────┬──────── CPU profile (pprof /profile?seconds=N) ────────┬── ramp-down
                               │                     │ heap, goroutine, block, mutex    │
                               │ py-spy record on the service's PID (the same N seconds)│
                               delay = 30 % of the run              N = 40 %, at most 10 s

Go's net/http/pprof (and the sample service, which serves its own profiles the same way)
answers ``/profile?seconds=N`` after N seconds; the snapshot profiles are instant, and
taken in the middle of that window, where the load is steadiest. A profile the service
does not serve (404) is noted in the manifest, not fatal: a Go service enables block and
mutex profiling only when it asks for them, and a Python service serves no goroutines.

Files in the run folder: ``service.cpu.pb.gz``, ``service.NAME.pb.gz`` per snapshot, and
py-spy's own (perflab.lab.pyspy).
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from perflab.manifest import ProfileTaken

# After warm-up (pools filled, caches warm, JIT-free but lazily imported) and before k6's
# ramp-down: the steady state the doctor judges.
START_FRACTION = 0.3
LENGTH_FRACTION = 0.4
MAX_SECONDS = 10  # a longer CPU profile adds nothing a 10 s one at 100 Hz does not show
# Go's handler parses `seconds` as an integer and takes 30 for anything else.
MIN_SECONDS = 1
SNAPSHOT_TIMEOUT_S = 30.0
GZIP_MAGIC = b"\x1f\x8b"  # Go serves every pprof profile gzipped; anything else is an error page

# py-spy on a PID for N seconds into a folder: (the file written, or None; a note, or None).
PySpy = Callable[[int, float, Path], tuple[str | None, str | None]]


@dataclass(frozen=True)
class Window:
    delay_s: float  # after k6 started
    seconds: int

    @property
    def middle_s(self) -> float:
        return self.seconds / 2


def steady_window(duration_s: float) -> Window:
    seconds = int(min(MAX_SECONDS, max(MIN_SECONDS, round(duration_s * LENGTH_FRACTION))))
    return Window(delay_s=duration_s * START_FRACTION, seconds=seconds)


@dataclass
class SteadyProfiles:
    """Takes the profiles in a background thread once ``start()`` is called (when k6 starts)."""

    run_dir: Path
    window: Window
    pprof_url: str | None = None  # net/http/pprof's base, e.g. http://127.0.0.1:8080/debug/pprof
    snapshots: tuple[str, ...] = ()
    pyspy_pid: int | None = None
    pyspy: PySpy | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _cpu: ProfileTaken = field(default_factory=ProfileTaken)
    _snaps: dict[str, str] = field(default_factory=dict)
    _pyspy_file: str | None = None
    _notes: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def wanted(self) -> bool:
        return bool(self.pprof_url) or (self.pyspy is not None and self.pyspy_pid is not None)

    def start(self) -> None:
        if self.wanted and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="perflab-profiles", daemon=True)
            self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=self.window.delay_s + self.window.seconds + SNAPSHOT_TIMEOUT_S + 15)

    def cancel(self) -> None:
        """Give up waiting for the window (the run ended early); a profile already being taken ends with it."""
        self._stop.set()

    def result(self) -> ProfileTaken:
        with self._lock:
            return replace(self._cpu, snapshots=dict(sorted(self._snaps.items())), pyspy=self._pyspy_file,
                           notes=list(self._notes))

    # -- the thread --------------------------------------------------------------------
    def _run(self) -> None:
        if self._stop.wait(self.window.delay_s):
            return
        helpers = []
        if self.pyspy is not None and self.pyspy_pid is not None:
            helpers.append(threading.Thread(target=self._take_pyspy, name="perflab-pyspy", daemon=True))
        if self.pprof_url and self.snapshots:
            helpers.append(threading.Thread(target=self._take_snapshots, name="perflab-snapshots", daemon=True))
        for h in helpers:
            h.start()
        if self.pprof_url:
            self._take_cpu()
        for h in helpers:
            h.join(timeout=self.window.seconds + SNAPSHOT_TIMEOUT_S + 15)

    def _take_cpu(self) -> None:
        assert self.pprof_url
        secs = self.window.seconds
        try:
            data = _get(f"{self.pprof_url.rstrip('/')}/profile?seconds={secs}", timeout_s=secs + 15)
            (self.run_dir / "service.cpu.pb.gz").write_bytes(data)
            cpu = ProfileTaken(cpu_profile="service.cpu.pb.gz", seconds=float(secs),
                               started_after_s=round(self.window.delay_s, 3), bytes=len(data))
        except (OSError, ValueError) as exc:
            cpu = ProfileTaken(error=f"CPU profile not taken: {exc}")
        with self._lock:
            self._cpu = cpu

    def _take_snapshots(self) -> None:
        assert self.pprof_url
        if self._stop.wait(self.window.middle_s):
            return
        for name in self.snapshots:
            try:
                data = _get(f"{self.pprof_url.rstrip('/')}/{name}", timeout_s=SNAPSHOT_TIMEOUT_S)
            except (OSError, ValueError) as exc:
                with self._lock:
                    self._notes.append(f"{name} profile not taken: {exc}")
                continue
            fname = f"service.{name}.pb.gz"
            (self.run_dir / fname).write_bytes(data)
            with self._lock:
                self._snaps[name] = fname

    def _take_pyspy(self) -> None:
        assert self.pyspy is not None and self.pyspy_pid is not None
        try:
            written, note = self.pyspy(self.pyspy_pid, float(self.window.seconds), self.run_dir)
        except OSError as exc:
            written, note = None, f"py-spy not run: {exc}"
        with self._lock:
            self._pyspy_file = written
            if note:
                self._notes.append(note)


def _get(url: str, timeout_s: float) -> bytes:
    """A profile's bytes; a 404 or an answer that is not a gzipped profile is an error naming it."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - the target's own URL
            data: bytes = resp.read()
    except urllib.error.HTTPError as exc:
        what = "not served" if exc.code == 404 else "refused"
        raise OSError(f"{what} (HTTP {exc.code}) at {url}") from None
    if not data.startswith(GZIP_MAGIC):
        raise ValueError(f"{url} did not answer a gzipped profile ({len(data)} bytes)")
    return data
