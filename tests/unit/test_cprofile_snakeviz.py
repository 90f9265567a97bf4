"""`perflab snakeviz`: serves on 127.0.0.1 only, the one profile only, to the holder of its
token only, and stops its child on SIGTERM and Ctrl-C (exit 130)."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psutil

from perflab.lab.postgres import free_port
from tests.conftest import FIXTURES

DIR = FIXTURES / "cprofile"
START_TIMEOUT = 30.0  # snakeviz imports tornado; a loaded 2-core machine needs a few seconds


def _non_loopback_ipv4() -> str | None:
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not ipaddress.ip_address(a.address).is_loopback:
                return a.address
    return None


def _read_url(proc: subprocess.Popen[str], deadline: float) -> str:
    assert proc.stdout is not None
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("http://"):
            return line.strip()
    raise AssertionError(f"no URL from snakeviz; output so far: {seen!r}")


def test_snakeviz_serves_loopback_only_and_stops_its_child(tmp_path: Path):
    port = free_port()
    store = tmp_path / "s.duckdb"
    cmd = [sys.executable, "-m", "perflab", "--store", str(store), "snakeviz",
           str(DIR / "hashing.prof"), "--port", str(port), "--no-browser"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    child_pid = None
    try:
        deadline = time.monotonic() + START_TIMEOUT
        url = _read_url(proc, deadline)
        # snakeviz's scheme: /snakeviz/<the profile's absolute path, fully %-quoted>
        parsed = urllib.parse.urlsplit(url)
        assert (parsed.hostname, parsed.port) == ("127.0.0.1", port)
        assert parsed.path.startswith("/snakeviz/%2F") and parsed.path.endswith(".prof")
        profile = Path(urllib.parse.unquote(parsed.path[len("/snakeviz/"):]))
        assert profile.exists() and profile.read_bytes()[:1] in (b"{", b"\xfb")

        status = None
        while time.monotonic() < deadline and status != 200:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    status, body = resp.status, resp.read().decode()
            except OSError:
                time.sleep(0.1)
        assert status == 200
        assert "pbkdf2_hmac" in body  # the page shows this profile's functions

        children = [p for p in psutil.Process(proc.pid).children(recursive=True)
                    if "snakeviz" in " ".join(p.cmdline())]
        assert len(children) == 1
        child_pid = children[0].pid
        listening = [c for c in children[0].net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert listening and {c.laddr.ip for c in listening} == {"127.0.0.1"}
        assert {c.laddr.port for c in listening} == {port}
        other = _non_loopback_ipv4()
        if other is not None:
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((other, port)) != 0

        _only_the_profile_and_only_with_the_token(url)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 130
        assert not psutil.pid_exists(child_pid)
        assert not profile.exists()  # the temp copy is removed with the server
        assert proc.stderr is not None and proc.stderr.read() == "perflab: interrupted\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if child_pid is not None and psutil.pid_exists(child_pid):
            psutil.Process(child_pid).kill()


def _status(url: str, cookie: str | None = None) -> int:
    req = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _only_the_profile_and_only_with_the_token(url: str) -> None:
    parsed = urllib.parse.urlsplit(url)
    base = f"{parsed.scheme}://{parsed.netloc}"
    token = urllib.parse.parse_qs(parsed.query)["token"][0]
    page = f"{base}{parsed.path}"
    # WITHOUT the token: nothing, not the profile and not snakeviz's own files
    assert _status(page) == 403
    assert _status(f"{page}?token=not-{token}") == 403
    assert _status(f"{base}/static/snakeviz.css") == 403
    # WITH the token, anything but the profile: not found (no other file, no directory listing)
    for other in ("/etc/passwd", "/root", "/", str(Path(urllib.parse.unquote(parsed.path[10:])).parent)):
        assert _status(f"{base}/snakeviz/{urllib.parse.quote(other, safe='')}?token={token}") == 404, other
    assert _status(f"{base}/?token={token}") == 404
    # the page's cookie carries the token to its static files
    with urllib.request.urlopen(url, timeout=5) as resp:
        cookie = resp.headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in resp.headers["Set-Cookie"]
    assert _status(f"{base}/static/snakeviz.css", cookie) == 200
    assert _status(page, cookie) == 200


def test_ctrl_c_stops_snakeviz_with_one_line(tmp_path: Path):
    port = free_port()
    cmd = [sys.executable, "-m", "perflab", "--store", str(tmp_path / "s.duckdb"), "snakeviz",
           str(DIR / "hashing.prof"), "--port", str(port), "--no-browser"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        _read_url(proc, time.monotonic() + START_TIMEOUT)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends perflab (the server has its own session)
        assert proc.wait(timeout=15) == 130
        assert proc.stderr is not None and proc.stderr.read() == "perflab: interrupted\n"
        assert children and not any(c.is_running() for c in children)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_snakeviz_refuses_what_it_cannot_show(tmp_path: Path):
    from tests.helpers import run_cli

    store = tmp_path / "s.duckdb"
    # the pure-Python `profile` module's dumps: snakeviz would fail on every page
    result = run_cli("snakeviz", str(DIR / "profile_module.prof"), "--no-browser", store=store)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "perflab: source 1 was written by the pure-Python `profile` module, whose edges carry "
        "no times; snakeviz needs cProfile's (profile with cProfile instead)"
    ]
    bad = tmp_path / "bad.prof"
    bad.write_bytes((DIR / "json.prof").read_bytes()[:100])
    result = run_cli("snakeviz", str(bad), "--no-browser", store=store)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"perflab: {bad}: not a valid cprofile file: at byte ")
    assert result.stdout == ""  # refused before any server started
