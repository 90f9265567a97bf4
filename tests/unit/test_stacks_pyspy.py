"""The py-spy recorder's own logic, with stand-in py-spy executables (PERFLAB_PYSPY): the
command line, the header it writes, one line for every failure, and the child stopped on a
timeout. Recording a real process is tests/integration/test_pyspy.py."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

import psutil
import pytest

from perflab.analysis.profiles import profile_info, top
from perflab.ingest import ingest_path
from perflab.lab import pyspy
from perflab.store import Store


def fake_pyspy(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fake-py-spy"
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# Writes its arguments beside the output, then a two-stack collapsed file, as py-spy would.
RECORDS = """\
out=""; fmt=""
while [ $# -gt 0 ]; do
  case "$1" in --output) out="$2";; --format) fmt="$2";; esac
  echo "$1" >> "$(dirname "$0")/args.txt"; shift
done
if [ "$fmt" = raw ]; then printf 'main (/a.py:1);f (/a.py:5) 3\\nmain (/a.py:1) 1\\n' > "$out"
else printf '{"$schema": "https://www.speedscope.app/file-format-schema.json", "shared": {"frames": []}, "profiles": []}' > "$out"
fi
echo "py-spy> Wrote file to '$out'. Samples: 4 Errors: 0"
"""


def test_records_each_format_with_the_header_ingest_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         store: Store) -> None:
    monkeypatch.setenv("PERFLAB_PYSPY", str(fake_pyspy(tmp_path, RECORDS)))
    result = pyspy.record(4242, 2.4, tmp_path / "out", rate_hz=50)
    assert result.ok and result.problem is None
    assert result.files == {"raw": tmp_path / "out" / "pyspy-4242.collapsed.txt",
                            "speedscope": tmp_path / "out" / "pyspy-4242.speedscope.json"}
    assert result.samples == {"raw": 4, "speedscope": 4} and result.errors == {"raw": 0, "speedscope": 0}
    args = (tmp_path / "args.txt").read_text().split()
    assert args[:11] == ["record", "--pid", "4242", "--duration", "2", "--rate", "50", "--format", "raw",
                         "--output", str(result.files["raw"])]
    assert args[11:14] == ["--function", "--full-filenames", "--native"]
    header = result.files["raw"].read_text().splitlines()[0]
    assert header.startswith("# perflab: rate_hz=50 duration_s=2 start_unix_s=")
    assert header.endswith(" pid=4242 producer=py-spy clock=cpu off_cpu_dropped=0")
    # THEN the raw file reads as CPU time: 4 samples at 50 Hz are 80 ms over 2 s.
    sid = ingest_path(store, result.files["raw"]).source_id
    cpu = top(store, sid)
    assert (cpu["sample_type"], cpu["total"]) == ("cpu", 80_000_000)
    assert {r["name"]: r["flat"] for r in cpu["rows"]} == {"f (/a.py:5)": 60_000_000, "main (/a.py:1)": 20_000_000}
    assert profile_info(store, sid)["duration_nanos"] == 2_000_000_000
    assert top(store, ingest_path(store, result.files["speedscope"]).source_id)["total"] == 0


def test_without_native_and_one_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFLAB_PYSPY", str(fake_pyspy(tmp_path, RECORDS)))
    result = pyspy.record(7, 0.2, tmp_path, native=False, formats=("speedscope",))
    assert list(result.files) == ["speedscope"]
    args = (tmp_path / "args.txt").read_text().split()
    assert "--native" not in args and args[args.index("--duration") + 1] == "1"


@pytest.mark.parametrize(("output", "line"), [
    ("Permission Denied: Try running again with elevated permissions by going 'sudo env \"PATH=$PATH\" !!'",
     "py-spy cannot attach to PID 99: no permission to ptrace it (run perflab as root or as the process's user, "
     "or allow it: sysctl kernel.yama.ptrace_scope=0, CAP_SYS_PTRACE in a container)"),
    ("Error: Operation not permitted (os error 1)\\n\\nStack backtrace:\\n   0: anyhow::error",
     "py-spy cannot attach to PID 99: no permission to ptrace it"),
    ("Error: Failed to get process executable name. Check that the process is running.\\n\\nCaused by:\\n"
     "    0: No such file or directory (os error 2)", "py-spy cannot attach to PID 99: no such process"),
    ("Error: Failed to find python version from target process\\n\\nStack backtrace:\\n   0: anyhow",
     "py-spy cannot read PID 99: not a Python process it knows (no Python version found in it)"),
    ("Error: something new\\n\\nStack backtrace:\\n   0: anyhow", "py-spy failed on PID 99: Error: something new"),
])
def test_every_failure_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str, line: str) -> None:
    monkeypatch.setenv("PERFLAB_PYSPY", str(fake_pyspy(tmp_path, f'printf "{output}\\n" >&2\nexit 1\n')))
    result = pyspy.record(99, 1, tmp_path)
    assert not result.ok and result.files == {}
    assert result.problem is not None and result.problem.startswith(line)
    assert "\n" not in result.problem


def test_a_missing_py_spy_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFLAB_PYSPY", str(tmp_path / "nowhere"))
    result = pyspy.record(1, 1, tmp_path)
    assert result.problem == "py-spy not found: `pip install py-spy` (a perflab dependency) or set PERFLAB_PYSPY"


def test_a_py_spy_that_hangs_is_stopped_at_the_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFLAB_PYSPY", str(fake_pyspy(tmp_path, 'echo $$ > "$(dirname "$0")/pid"\nexec sleep 600\n')))
    monkeypatch.setattr(pyspy, "STARTUP_S", 1.0)
    result = pyspy.record(5, 1, tmp_path)
    assert result.problem == "py-spy did not finish recording PID 5 within 2 s; stopped"
    pid = int((tmp_path / "pid").read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_bad_arguments_are_the_callers_mistake(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="formats must be some of raw, speedscope"):
        pyspy.record(1, 1, tmp_path, formats=("flamegraph",))
    with pytest.raises(ValueError, match="rate_hz must be positive"):
        pyspy.record(1, 1, tmp_path, rate_hz=0)


def test_the_bundled_py_spy_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERFLAB_PYSPY", raising=False)
    found = pyspy.find_pyspy()
    assert found is not None and os.access(found, os.X_OK)


def test_threads_waiting_are_left_out_of_a_cpu_profile() -> None:
    # Lines of a real py-spy 0.4.3 --native recording: a bcrypt loop, four threads in Queue.get
    # and the main thread in time.sleep (py-spy counted all of them as active).
    text = (
        "Thread._bootstrap (threading.py:988);Thread.run (threading.py:971);work (spyt.py:5);"
        "blowfish::Blowfish$LT$T$GT$::encrypt::hdbf9790f54e8d50c (bcrypt/_bcrypt.abi3.so) 296\n"
        "0x7fd15bb278ec (libc.so.6);thread_run (libpython3.11.so.1.0);Queue.get (queue.py:154);"
        "Condition.wait (threading.py:295);lock_PyThread_acquire_lock (libpython3.11.so.1.0);"
        "PyThread_acquire_lock_timed (libpython3.11.so.1.0);0x7fd15baaed90 (libc.so.6);0x7fd15baa3 (libc.so.6) 48\n"
        "0x7fd15ba4524a (libc.so.6);<module> (spyt.py:1);time_sleep (libpython3.11.so.1.0);"
        "clock_nanosleep (libc.so.6) 11\n"
        "Thread.run (threading.py:971);work (spyt.py:5);bcrypt::bcrypt::bcrypt::he83849b7951ec78a "
        "(bcrypt/_bcrypt.abi3.so) 1\n")
    kept, dropped = pyspy._drop_waiting(text)
    assert dropped == 59
    assert [line.rsplit(" ", 1)[1] for line in kept.splitlines()] == ["296", "1"]
