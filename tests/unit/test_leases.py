"""What a SIGKILLed perflab leaves is found by the next one: its processes stopped (never a
reused pid's new owner), its temp dirs removed, one line said."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from perflab import leases


@pytest.fixture(autouse=True)
def own_lease_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Leases in the test's own folder: another perflab on the machine (a parallel test run)
    would otherwise reap the test's orphan first."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("TMPDIR", str(tmp))

# A perflab-like process: it leases a child and a temp dir, says so, then waits to be killed.
OWNER = textwrap.dedent("""
    import subprocess, sys, tempfile, time
    from pathlib import Path
    from perflab.leases import lease
    child = subprocess.Popen(["sleep", "120"], start_new_session=True)
    lease().add_process("sleeper", child.pid)
    d = Path(tempfile.mkdtemp(prefix="perflab-test-"))
    (d / "x").write_text("left")
    lease().add_dir(d, kind="scratch")
    print(child.pid, d, flush=True)
    time.sleep(120)
""")


def _killed_owner() -> tuple[int, int, Path]:
    proc = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    child, folder = proc.stdout.readline().split()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc.pid, int(child), Path(folder)


def test_a_killed_owners_processes_and_dirs_are_reaped() -> None:
    owner, child, folder = _killed_owner()
    lease_file = leases.lease_dir() / f"{owner}.json"
    doc = json.loads(lease_file.read_text())
    assert [p["name"] for p in doc["processes"]] == ["sleeper"] and doc["dirs"][0]["path"] == str(folder)
    assert psutil.pid_exists(child) and folder.is_dir()  # the SIGKILL ran no cleanup
    lines: list[str] = []
    done = [r for r in leases.reap(lines.append) if r.owner == owner]
    assert len(done) == 1
    assert done[0].stopped == [f"sleeper (pid {child})"] and done[0].removed == [str(folder)]
    assert f"a perflab that was killed (pid {owner}) left things behind: stopped sleeper (pid {child}); " \
           f"removed {folder}." in lines
    deadline = time.monotonic() + 5
    while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the orphan still runs"
        time.sleep(0.05)
    assert not folder.exists() and not lease_file.exists()


def test_a_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    # GIVEN a dead owner's lease naming a pid that another process has now (another start time)
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        lease_file = leases.lease_dir() / "999999999.json"
        lease_file.write_text(json.dumps({
            "owner": 999999999, "owner_started": 1.0,
            "processes": [{"name": "k6", "pid": bystander.pid, "started": 12.0}],
            "dirs": [{"path": str(tmp_path / "gone"), "kind": "scratch"}]}))
        done = [r for r in leases.reap() if r.owner == 999999999]
        # THEN the bystander runs on, and the lease is gone
        assert done[0].stopped == [] and done[0].line.endswith("nothing still there.")
        assert bystander.poll() is None and not lease_file.exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_a_living_owners_lease_is_left_alone() -> None:
    lease = leases.lease()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        lease.add_process("mine", sleeper.pid)
        assert all(r.owner != os.getpid() for r in leases.reap())
        assert sleeper.poll() is None and lease.path.exists()
    finally:
        lease.drop_process(sleeper.pid)
        sleeper.kill()
        sleeper.wait()
    # a stopped child leaves the lease (the file itself goes when nothing is left in it)
    assert sleeper.pid not in lease.processes
    if not lease.processes and not lease.dirs:
        assert not lease.path.exists()
