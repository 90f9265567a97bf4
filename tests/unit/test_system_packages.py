"""scripts/ensure_system_packages.sh, which `make test` and `make report` run first.

GIVEN a PATH of stand-ins (a fake `id`, a recording `apt-get`, no chromium), WHEN the script
runs, THEN as root it installs what is missing with apt-get, and as a user it stops with one
line naming the exact command; with everything there it is silent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure_system_packages.sh"
BASH = shutil.which("bash") or "/bin/bash"


def _bin(tmp_path: Path, uid: int, with_chromium: bool, with_prometheus: bool = True) -> Path:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for tool in ("dirname",):
        os.symlink(shutil.which(tool) or f"/usr/bin/{tool}", stubs / tool)
    (stubs / "id").write_text(f"#!{BASH}\necho {uid}\n")
    (stubs / "apt-get").write_text(f'#!{BASH}\necho "$*" >> {tmp_path / "apt.log"}\n')
    if with_chromium:
        (stubs / "chromium").write_text(f"#!{BASH}\n")
    if with_prometheus:
        (stubs / "prometheus").write_text(f"#!{BASH}\n")
    for stub in stubs.iterdir():
        if not stub.is_symlink():
            stub.chmod(0o755)
    return stubs


def _run(stubs: Path) -> subprocess.CompletedProcess[str]:
    # An external server stands in for the PostgreSQL binaries, so only chromium is looked at.
    env = {"PATH": str(stubs), "PERFLAB_PG_DSN": "postgresql://user@127.0.0.1:1/db"}
    return subprocess.run([BASH, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_silent_when_everything_is_there(tmp_path: Path) -> None:
    r = _run(_bin(tmp_path, uid=1000, with_chromium=True))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert not (tmp_path / "apt.log").exists()


def test_a_user_is_told_the_one_command(tmp_path: Path) -> None:
    r = _run(_bin(tmp_path, uid=1000, with_chromium=False))
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        "perflab: chromium missing; run: sudo sh -c "
        "'apt-get update && apt-get install -y --no-install-recommends chromium'"]
    assert not (tmp_path / "apt.log").exists()


def test_root_installs_what_is_missing(tmp_path: Path) -> None:
    r = _run(_bin(tmp_path, uid=0, with_chromium=False))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "apt.log").read_text().splitlines() == [
        "update -qq", "install -y -qq --no-install-recommends chromium"]


def test_postgresql_binaries_in_perflab_pg_bindir_are_enough(tmp_path: Path) -> None:
    stubs = _bin(tmp_path, uid=1000, with_chromium=True)
    bindir = tmp_path / "pg" / "bin"
    bindir.mkdir(parents=True)
    for name in ("initdb", "pg_ctl", "postgres"):
        (bindir / name).write_text(f"#!{BASH}\n")
        (bindir / name).chmod(0o755)
    env = {"PATH": str(stubs), "PERFLAB_PG_BINDIR": str(bindir)}
    r = subprocess.run([BASH, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stderr) == (0, "")


def test_root_installs_a_missing_prometheus(tmp_path: Path) -> None:
    r = _run(_bin(tmp_path, uid=0, with_chromium=True, with_prometheus=False))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "apt.log").read_text().splitlines() == [
        "update -qq", "install -y -qq --no-install-recommends prometheus"]


def test_perflab_prometheus_names_the_binary(tmp_path: Path) -> None:
    stubs = _bin(tmp_path, uid=1000, with_chromium=True, with_prometheus=False)
    binary = tmp_path / "prom" / "prometheus"
    binary.parent.mkdir()
    binary.write_text(f"#!{BASH}\n")
    binary.chmod(0o755)
    env = {"PATH": str(stubs), "PERFLAB_PG_DSN": "postgresql://user@127.0.0.1:1/db", "PERFLAB_PROMETHEUS": str(binary)}
    r = subprocess.run([BASH, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stderr) == (0, "")
