"""py-spy on a real Python process that burns CPU in PBKDF2 (OpenSSL, under hashlib) and bcrypt
(its Rust extension): the recorder's two files, read back by perflab's ingest.

py-spy writes one format per recording (and two recorders on one process collide), so
the raw and speedscope files are two recordings of the same loop: their Python functions
are the same, their counts are not. That the two formats give the same per-function totals
is checked on ONE recording: the speedscope file, and the collapsed text the test derives
from it (py-spy's frame naming, written here), ingested side by side.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from perflab.analysis.categories import categories
from perflab.analysis.profiles import profile_info, top
from perflab.ingest import ingest_path
from perflab.lab import pyspy
from perflab.store import Store
from perflab.vocab import COLLAPSED, SPEEDSCOPE
from tests.helpers import run_cli

pytestmark = pytest.mark.slow

SECONDS = 3
BURNER = """\
import hashlib, sys
import bcrypt

SALT = bcrypt.gensalt(6)


def derive_key():
    hashlib.pbkdf2_hmac("sha256", b"secret", b"salt", 20_000)


def hash_password():
    bcrypt.hashpw(b"secret", SALT)


print("ready", flush=True)
while True:
    derive_key()
    hash_password()
"""


@pytest.fixture(scope="module")
def burner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    script = tmp_path_factory.mktemp("burner") / "burner.py"
    script.write_text(BURNER)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc.pid, script
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def recording(burner: tuple[int, Path], tmp_path_factory: pytest.TempPathFactory) -> pyspy.PySpyResult:
    result = pyspy.record(burner[0], SECONDS, tmp_path_factory.mktemp("pyspy"))
    assert result.ok, result.problem
    return result


def rows_of(result: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {r["name"]: (r["flat"], r["cum"]) for r in result["rows"]}


def test_both_files_are_written_and_read_as_their_formats(recording: pyspy.PySpyResult, store: Store) -> None:
    assert set(recording.files) == {"raw", "speedscope"}
    raw = ingest_path(store, recording.files["raw"])
    speedscope = ingest_path(store, recording.files["speedscope"])
    assert (raw.kind, speedscope.kind) == (COLLAPSED, SPEEDSCOPE)
    assert recording.samples["raw"] > 0 and recording.samples["speedscope"] > 0


def test_top_of_the_raw_file_names_the_native_hashing_frames(recording: pyspy.PySpyResult, store: Store,
                                                            tmp_path: Path) -> None:
    sid = ingest_path(store, recording.files["raw"]).source_id
    cpu = top(store, sid)
    # The header makes the counts CPU time at 100 Hz, over the recording's duration.
    assert (cpu["sample_type"], cpu["unit"]) == ("cpu", "nanoseconds")
    assert cpu["total"] == top(store, sid, sample_type="samples")["total"] * 10_000_000
    assert profile_info(store, sid)["duration_nanos"] == SECONDS * 10**9
    native = [r for r in cpu["rows"] if r["flat"] > 0 and ".so" in r["name"]]
    assert any("_bcrypt" in r["name"] for r in native), cpu["rows"][:10]
    assert any("libcrypto" in r["name"] or "PBKDF2" in r["name"] for r in native), cpu["rows"][:10]
    # Leaf-most matching frames are the C ones: nearly all of the CPU is hashing.
    assert categories(store, sid)["categories"]["hashing"] > 0.8
    out = run_cli("top", str(recording.files["raw"]), "--limit", "0", store=tmp_path / "cli.duckdb")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Type: cpu\n")
    assert "_bcrypt.abi3.so)" in out.stdout and "libcrypto" in out.stdout


def test_speedscope_gives_the_same_totals_as_collapsed_stacks_of_the_same_recording(
        recording: pyspy.PySpyResult, store: Store, tmp_path: Path) -> None:
    doc = json.loads(recording.files["speedscope"].read_text())
    frames = doc["shared"]["frames"]

    def name(f: dict[str, Any]) -> str:  # py-spy's naming in its raw output
        return f"{f['name']} ({f['file']}:{f['line']})" if f.get("line") else f"{f['name']} ({f['file']})"

    lines = [";".join(name(frames[i]) for i in stack) + " 1"
             for p in doc["profiles"] for stack in p["samples"]]
    derived = tmp_path / "derived.txt"
    derived.write_text("\n".join(lines) + "\n")
    ss = ingest_path(store, recording.files["speedscope"]).source_id
    co = ingest_path(store, derived, kind=COLLAPSED).source_id
    # Every function (pprof's node cut, truncated to an integer, differs between the two units)
    every = {"nodefraction": 0, "nodecount": 0}
    by_samples = top(store, ss, sample_type="samples", **every)
    assert rows_of(by_samples) == rows_of(top(store, co, **every)) and by_samples["total"] == len(lines)
    # py-spy's weights are 1/rate seconds: wall time is the sample count times 10 ms.
    wall = top(store, ss, **every)
    assert wall["sample_type"] == "wall"
    assert rows_of(wall) == {n: (f * 10_000_000, c * 10_000_000) for n, (f, c) in rows_of(by_samples).items()}


def test_the_two_files_name_the_python_functions_alike(recording: pyspy.PySpyResult, burner: tuple[int, Path],
                                                       store: Store) -> None:
    script = str(burner[1])

    def python_functions(path: Path) -> set[str]:
        result = top(store, ingest_path(store, path).source_id)
        return {r["name"] for r in result["rows"] if script in r["name"]}

    raw = python_functions(recording.files["raw"])
    assert raw == python_functions(recording.files["speedscope"])
    # --function: each function once, by its first line.
    assert {n.split(" ")[0] for n in raw} == {"<module>", "derive_key", "hash_password"}
    assert len(raw) == 3


def test_no_ptrace_permission_is_one_line(burner: tuple[int, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to run py-spy as another user")
    # GIVEN the real py-spy run as nobody, against a process of root's
    real = pyspy.find_pyspy()
    assert real is not None
    out = Path(tempfile.mkdtemp(prefix="perflab-pyspy-"))
    out.chmod(0o777)
    wrapper = out / "py-spy-as-nobody"
    wrapper.write_text(f'#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups {real} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PERFLAB_PYSPY", str(wrapper))
    result = pyspy.record(burner[0], 1, out)
    assert result.problem is not None and "\n" not in result.problem
    assert result.problem.startswith(f"py-spy cannot attach to PID {burner[0]}: no permission to ptrace it")
    assert result.files == {}


def test_a_process_that_is_not_python_or_not_there(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        result = pyspy.record(sleeper.pid, 1, tmp_path, formats=("raw",))
        assert result.problem == f"py-spy cannot read PID {sleeper.pid}: not a Python process it knows " \
                                 "(no Python version found in it)"
    finally:
        sleeper.kill()
        sleeper.wait()
    result = pyspy.record(sleeper.pid, 1, tmp_path, formats=("raw",))
    assert result.problem == f"py-spy cannot attach to PID {sleeper.pid}: no such process"


def test_ctrl_c_stops_py_spy(burner: tuple[int, Path], tmp_path: Path) -> None:
    # GIVEN a recorder (in its own process, as perflab run would be) 60 s into nothing yet
    code = ("import sys; from perflab.lab.pyspy import record; "
            "record(int(sys.argv[1]), 60, sys.argv[2], formats=('raw',))")
    recorder = subprocess.Popen([sys.executable, "-c", code, str(burner[0]), str(tmp_path)],
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        children: list[psutil.Process] = []
        deadline = time.monotonic() + 30
        while not children and time.monotonic() < deadline:
            time.sleep(0.2)
            children = [c for c in psutil.Process(recorder.pid).children() if "py-spy" in c.name()]
        assert children, "py-spy never started"
        time.sleep(1.0)
        # WHEN Ctrl-C reaches the recorder
        os.kill(recorder.pid, signal.SIGINT)
        _, err = recorder.communicate(timeout=20)
    finally:
        if recorder.poll() is None:
            os.killpg(recorder.pid, signal.SIGKILL)
            recorder.wait()
    # THEN it ends with the interrupt, and its py-spy is gone with it
    assert "KeyboardInterrupt" in err
    spy = children[0]
    assert not spy.is_running() or spy.status() == psutil.STATUS_ZOMBIE
