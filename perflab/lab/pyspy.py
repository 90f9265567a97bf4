"""py-spy: a Python process's stacks by PID, as collapsed stacks and speedscope JSON.

py-spy (PyPI ``py-spy``, a perflab dependency) reads a running interpreter's memory from
outside, so it sees what an in-process sampler cannot: with ``--native``, the C frames under
Python (bcrypt's Blowfish rounds, OpenSSL's PBKDF2 behind ``hashlib.pbkdf2_hmac``).

:func:`record` attaches to a PID and writes one file per format, both read by perflab's
ingest (perflab.ingest.collapsed, perflab.ingest.speedscope):

* py-spy writes one format per recording, and two recorders pausing one process at once
  collide (about a fifth of the samples were lost when tried), so the formats are
  recorded one after the other, ``seconds`` each.
* Frames are named per function (``--function``: a function's first line, not the line
  running, as pprof's function-level nodes are) with full file names
  (``--full-filenames``), so a frame has the same name in both files.
* py-spy pauses the process for each sample (its default; ``--native`` needs it) and
  leaves idle threads out, so the samples are of running threads: the collapsed file gets
  a ``# perflab: rate_hz=... duration_s=... clock=cpu`` header line, read at ingest as a
  ``cpu/nanoseconds`` sample type (count × 1e9 / rate_hz) and the profile's duration.
* py-spy runs as a child in the caller's process group (a Ctrl-C reaches both) and is
  stopped on every exit path: its own end, the timeout, an exception, Ctrl-C.
* Where it cannot record (no permission to ptrace the process, no such process, not a
  Python process, py-spy missing), the result's ``problem`` says so in one line, for the
  caller to print before falling back on another profiler; nothing is raised.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from perflab.ingest.collapsed import HEADER
from perflab.lab.processes import parent_death_signal
from perflab.leases import lease

DEFAULT_RATE_HZ = 100  # py-spy's own default: 10 ms between samples
# Beyond the sampling itself: attaching and, with --native, reading the binaries' symbols.
STARTUP_S = 30.0
STOP_GRACE_S = 5.0  # py-spy writes its file on SIGINT; a killed one writes nothing, which is fine
FORMATS = {"raw": "collapsed.txt", "speedscope": "speedscope.json"}
_SUMMARY_RE = re.compile(r"Samples: (\d+) Errors: (\d+)")
# A thread that waits (on a lock, in a sleep, in epoll) is not on a CPU, yet py-spy 0.4.3 with
# --native counts such threads as active: measured on the sample service, anyio's idle worker
# threads in Queue.get were ~50 % of its login-storm samples. A stack whose innermost named
# frame is one of CPython's or libc's blocking calls is left out of the clock=cpu profile and
# counted in its header (off_cpu_dropped); unresolved addresses (0x7f... (libc.so.6)) below
# that frame are the syscall's own.
_WAITING_FRAME = re.compile(
    r"^(PyThread_acquire_lock_timed|clock_nanosleep|pysleep|epoll_wait|select_epoll_poll_impl|poll|select"
    r"|sem_(timed|clock)?wait|pthread_cond_(timed|clock)?wait|futex_wait\w*|__futex_abstimed_wait\w*"
    r"|do_futex_wait\w*|accept4?|recv|recvfrom|sock_recv_impl|sock_accept|nanosleep) \(")
_UNRESOLVED_FRAME = re.compile(r"^0x[0-9a-f]+ \(")
_PERMISSION_RE = re.compile(r"permission denied|operation not permitted|os error (1|13)\)", re.IGNORECASE)


@dataclass
class PySpyResult:
    pid: int
    files: dict[str, Path] = field(default_factory=dict)  # format ("raw", "speedscope") -> file
    samples: dict[str, int] = field(default_factory=dict)  # py-spy's own count per format
    errors: dict[str, int] = field(default_factory=dict)   # samples py-spy failed to read
    problem: str | None = None  # one line when py-spy could not record

    @property
    def ok(self) -> bool:
        return self.problem is None


def find_pyspy() -> str | None:
    """PERFLAB_PYSPY, else the py-spy installed beside this Python (perflab's pin), else PATH."""
    env = os.environ.get("PERFLAB_PYSPY")
    if env:
        return env if Path(env).is_file() and os.access(env, os.X_OK) else None
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


def record(
    pid: int,
    seconds: float,
    out_dir: str | os.PathLike[str],
    rate_hz: int = DEFAULT_RATE_HZ,
    native: bool = True,
    formats: Sequence[str] = ("raw", "speedscope"),
) -> PySpyResult:
    """Record ``pid`` for ``seconds`` (whole seconds, at least 1) per format into ``out_dir``."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"formats must be some of {', '.join(FORMATS)}; got {list(formats)}")
    if rate_hz <= 0:
        raise ValueError(f"rate_hz must be positive; got {rate_hz}")
    result = PySpyResult(pid=pid)
    binary = find_pyspy()
    if binary is None:
        result.problem = "py-spy not found: `pip install py-spy` (a perflab dependency) or set PERFLAB_PYSPY"
        return result
    duration = max(1, round(seconds))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        path = out / f"pyspy-{pid}.{FORMATS[fmt]}"
        cmd = [binary, "record", "--pid", str(pid), "--duration", str(duration), "--rate", str(rate_hz),
               "--format", fmt, "--output", str(path), "--function", "--full-filenames"]
        if native:
            cmd.append("--native")
        started = time.time()
        code, text = _run(cmd, timeout_s=duration + STARTUP_S)
        if code is None:
            result.problem = f"py-spy did not finish recording PID {pid} within {duration + STARTUP_S:g} s; stopped"
            return result
        if code != 0 or not path.exists():
            result.problem = _problem(pid, text)
            return result
        if summary := _SUMMARY_RE.search(text):
            result.samples[fmt], result.errors[fmt] = int(summary[1]), int(summary[2])
        if fmt == "raw":
            _prepend_header(path, rate_hz=rate_hz, duration_s=duration, start=started, pid=pid)
        result.files[fmt] = path
    return result


def _run(cmd: list[str], timeout_s: float) -> tuple[int | None, str]:
    """(exit code, or None on timeout; stdout and stderr), the child stopped whatever happens."""
    # Not a new session: a Ctrl-C in the terminal reaches py-spy as well as perflab.
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", preexec_fn=parent_death_signal())
    lease().add_process("py-spy", proc.pid)
    try:
        text, _ = proc.communicate(timeout=timeout_s)
        return proc.returncode, text
    except subprocess.TimeoutExpired:
        return None, ""
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)  # py-spy's own way to stop
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    lease().drop_process(proc.pid)


def _problem(pid: int, text: str) -> str:
    """py-spy's failure as one line (its own output carries a Rust backtrace)."""
    if _PERMISSION_RE.search(text):
        return (f"py-spy cannot attach to PID {pid}: no permission to ptrace it (run perflab as root or as the "
                "process's user, or allow it: sysctl kernel.yama.ptrace_scope=0, CAP_SYS_PTRACE in a container)")
    if "Failed to get process executable name" in text or "No such process" in text:
        return f"py-spy cannot attach to PID {pid}: no such process"
    if "Failed to find python version" in text:
        return f"py-spy cannot read PID {pid}: not a Python process it knows (no Python version found in it)"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip()[0].isdigit()]
    first = next((ln for ln in lines if ln.startswith("Error")), lines[0] if lines else "no output")
    return f"py-spy failed on PID {pid}: {first[:200]}"


def _prepend_header(path: Path, rate_hz: int, duration_s: int, start: float, pid: int) -> None:
    """The collapsed file's first line: what ingest needs to turn counts into CPU time.
    It ends in a word, so FlameGraph and speedscope skip it as a line without a count."""
    kept, dropped = _drop_waiting(path.read_text(errors="replace"))
    header = (f"{HEADER} rate_hz={rate_hz} duration_s={duration_s} start_unix_s={start:.3f} pid={pid} "
              f"producer=py-spy clock=cpu off_cpu_dropped={dropped}\n")
    path.write_text(header + kept)


def _drop_waiting(text: str) -> tuple[str, int]:
    """The collapsed lines of threads on a CPU, and how many samples waited (see _WAITING_FRAME)."""
    kept: list[str] = []
    dropped = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f for f in stack.split(";") if not _UNRESOLVED_FRAME.match(f)]
        if frames and count.isdigit() and _WAITING_FRAME.match(frames[-1]):
            dropped += int(count)
        else:
            kept.append(line)
    return "".join(f"{line}\n" for line in kept), dropped
