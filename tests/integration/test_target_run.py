"""`perflab run --target` end to end against a service that is not perflab's (tests/services/tiny):
real k6, real processes, the run read back by `runs`, `doctor`, `report`, `compare` and `log add`.

Runs are short (6 s of k6): what is checked is what the run collected and that nothing
perflab started outlives it, not the service's numbers (so no wait for a quiet machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from perflab.lab.backing import redact
from perflab.lab.postgres import EphemeralPostgres, free_port, port_listens
from perflab.store import Store
from tests.helpers import run_cli

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "services" / "tiny"
PPROF_DIR = REPO / "data" / "samples" / "pprof"  # real Go profiles the tiny service serves


def tiny_target(folder: Path, port: int, *, host: str = "127.0.0.1", start: bool = True, extra: str = "") -> Path:
    """A target file for the tiny service on ``port`` (perflab starts it unless start=False)."""
    service = (f'start = ["{sys.executable}", "{TINY / "service.py"}"]\n'
               f'ready = "/healthz"\n'
               f'env = {{ PORT = "{port}", WORK_ITER = "20000", PPROF_DIR = "{PPROF_DIR}", READY_DELAY_S = "1" }}\n'
               if start else "")
    text = (f'name = "tiny"\ndescription = "PBKDF2 on every request"\n'
            f'[service]\nurl = "http://{host}:{port}"\n{service}'
            f'[load]\nscript = "{TINY / "load.js"}"\nrate = 20\nenv = {{ PAGE = "16" }}\n'
            f'[profiles]\npprof = "/debug/pprof"\n'
            f'[metrics]\nurl = "/metrics"\n'
            f'[roles]\nrequests = "tiny_requests_total"\n'
            f'[variants.fixed]\nenv = {{ WORK_ITER = "1000" }}\ndescription = "fewer iterations"\n{extra}')
    path = folder / "tiny.toml"
    path.write_text(text)
    return path


def started_by_the_test(before: set[int], tmp_path: Path) -> list[str]:
    """Processes that appeared during the test and still live: the tiny service, and k6 and
    py-spy writing into the test's folder (other work on the machine may run its own)."""
    left = []
    for p in psutil.process_iter(["pid", "cmdline", "name"]):
        if p.pid in before:
            continue
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if ("services/tiny" in cmd or str(tmp_path) in cmd) and p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{p.pid} {cmd[:100]}")
        except psutil.Error:
            continue
    return left


def manifest_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def test_a_target_perflab_starts_and_stops(tmp_path: Path, pg_cluster: EphemeralPostgres) -> None:
    before = set(psutil.pids())
    port = free_port()
    # its database: a real PostgreSQL on this machine (the session's ephemeral cluster)
    path = tiny_target(tmp_path, port, extra=f'[postgres]\ndsn = "{pg_cluster.dsn}"\n')
    store_path = tmp_path / "s.duckdb"

    # WHEN the fixed variant runs with a --set that overrides the file's k6 env
    t = time.perf_counter()
    res = run_cli("run", "--target", str(path), "--duration", "6", "--variant", "fixed", "--set", "PAGE=3",
                  "--json", store=store_path, timeout=180)
    seconds = time.perf_counter() - t
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    run_dir = Path(out["run_dir"])
    m = manifest_of(run_dir)

    # THEN the run is the target's, complete, and its manifest holds the file it came from
    assert out["status"] == "complete" and out["scenario"] == "tiny" and out["variant"] == "fixed"
    # the run folder holds the service's query texts and profiles: its owner's only
    assert run_dir.stat().st_mode & 0o777 == 0o700 and (run_dir.parent).stat().st_mode & 0o777 == 0o700
    assert m["target"]["path"] == str(path.resolve()) and m["target"]["text"] == path.read_text()
    assert m["target"]["sha256"] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    assert m["target"]["started"] is True and m["target"]["pid_from"] == "started"
    assert m["settings"]["WORK_ITER"] == "1000" and m["settings"]["PAGE"] == "3" and m["fix"] == {"WORK_ITER": "1000"}
    assert m["roles"] == {"requests": "tiny_requests_total"} and m["why"] == "PBKDF2 on every request"
    # the variant and --set reached k6 (over the file's PAGE) and the service it started
    assert "env WORK_ITER=1000 PAGE=3" in (run_dir / "k6.stderr.txt").read_text()
    prom = (run_dir / "metrics.prom").read_text()
    assert prom.count("# scrape_timestamp ") >= 4 and "\ntiny_work_iterations 1000.0\n" in prom
    assert m["metrics"]["format"] == "prometheus" and m["metrics"]["failed"] == 0
    # the profiles: CPU over the steady state, the snapshots the service serves, 404s noted
    prof = m["profile"]
    assert prof["cpu_profile"] == "service.cpu.pb.gz" and prof["seconds"] == 2.0
    assert prof["snapshots"] == {"block": "service.block.pb.gz", "heap": "service.heap.pb.gz"}
    assert [n.split(" ")[0] for n in prof["notes"]] == ["goroutine", "mutex"]
    assert all("HTTP 404" in n for n in prof["notes"])
    # its PostgreSQL: snapshots before and after, pg_stat_activity once a second, its server
    # process sampled; the manifest names the server without its password
    assert m["postgres"]["dsn"] == redact(pg_cluster.dsn) and pg_cluster.dsn not in json.dumps(m["postgres"])
    assert m["versions"]["postgres"]
    if not pg_cluster.external:
        assert m["postgres"]["pid"] == pg_cluster.pid
    assert all((run_dir / f"pg_stat_statements_{when}.jsonl").is_file() for when in ("before", "after"))
    assert (run_dir / "pg_stat_activity_samples.jsonl").stat().st_size > 0
    # the service's process was sampled at 4 Hz beside k6's
    rows = [json.loads(line) for line in (run_dir / "resources.jsonl").read_text().splitlines()[1:]]
    service_rows = [r for r in rows if r["role"] == "service" and r["cpu_pct"] is not None]
    assert len(service_rows) >= 4 * 5 and all(r["processes"] == 1 for r in service_rows)
    assert max(r["cpu_pct"] for r in service_rows) > 0
    assert any(r["role"] == "k6" and r["processes"] >= 1 for r in rows)
    assert any(r["role"] == "postgres" and r["processes"] >= 1 for r in rows)

    with Store(store_path) as store:
        kinds = store.sql("SELECT kind, count(*) AS n FROM sources WHERE run_id = ? GROUP BY kind ORDER BY kind",
                          [out["run_id"]]).to_dicts()
        roles = store.sql("SELECT role, metric FROM run_roles WHERE run_id = ?", [out["run_id"]]).to_dicts()
    counts = {k["kind"]: k["n"] for k in kinds}
    assert {k: counts.get(k) for k in ("k6", "k6-summary", "pprof", "resources")} == {
        "k6": 1, "k6-summary": 1, "pprof": 3, "resources": 1}
    # five views before, the activity samples, and the views that changed after (an unchanged
    # snapshot is content already stored: a no-op)
    assert counts["pgstat"] >= 6
    assert roles == [{"role": "requests", "metric": "tiny_requests_total"}]
    # and nothing perflab started is left
    assert started_by_the_test(before, tmp_path) == [] and not port_listens(port)

    # WHEN the default variant runs too, THEN the verbs that read runs read both
    res = run_cli("run", "--target", str(path), "--duration", "6", "--json", store=store_path, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    default = json.loads(res.stdout)
    assert manifest_of(Path(default["run_dir"]))["settings"]["WORK_ITER"] == "20000"
    fixed_id, default_id = out["run_id"], default["run_id"]
    listed = json.loads(run_cli("runs", "--json", store=store_path).stdout)
    assert {r["run_id"] for r in listed} == {fixed_id, default_id}
    doctor = run_cli("doctor", default_id, "--json", store=store_path)
    assert doctor.returncode == 0, doctor.stderr
    assert json.loads(doctor.stdout)["run_id"] == default_id
    report = run_cli("report", default_id, "--out", str(tmp_path / "reports"), store=store_path, timeout=180)
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "reports" / default_id / "report.html").is_file()
    compare = run_cli("compare", default_id, fixed_id, "--json", store=store_path, timeout=120)
    assert compare.returncode == 0, compare.stderr
    log = tmp_path / "optimization-log.md"
    added = run_cli("log", "add", "--before", default_id, "--after", fixed_id, "--title", "tiny: fewer iterations",
                    "--hypothesis", "PBKDF2 dominates", "--out", str(log), store=store_path, timeout=120)
    assert added.returncode == 0, added.stderr
    assert "WORK_ITER" in log.read_text()
    assert started_by_the_test(before, tmp_path) == []
    print(f"one 6 s target run took {seconds:.1f} s end to end")


def _non_loopback_ipv4() -> str | None:
    for nics in psutil.net_if_addrs().values():
        for a in nics:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return str(a.address)
    return None


def test_attaching_to_a_service_perflab_did_not_start(tmp_path: Path) -> None:
    address = _non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    # GIVEN the tiny service already running, on every address, started by someone else
    port = free_port()
    env = {**os.environ, "HOST": "0.0.0.0", "PORT": str(port), "PPROF_DIR": str(PPROF_DIR)}  # noqa: S104
    service = subprocess.Popen([sys.executable, str(TINY / "service.py")], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not port_listens(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        # WHEN a target names it by a non-loopback address, without start or pid
        path = tiny_target(tmp_path, port, host=address, start=False)
        res = run_cli("run", "--target", str(path), "--duration", "5", "--set", "PAGE=7", "--json",
                      store=tmp_path / "s.duckdb", timeout=180)
        assert res.returncode == 0, res.stderr[-2000:]
        # THEN the address is said plainly before the load, the process is found by its port,
        # the --set reached k6 only (said too), and the service is left running
        err = res.stderr
        assert f"the target http://{address}:{port} is not on loopback" in err
        assert err.index("is not on loopback") < err.index("k6 load.js")
        assert "PAGE reach k6 only: perflab did not start the service" in err
        run_dir = Path(json.loads(res.stdout)["run_dir"])
        m = manifest_of(run_dir)
        assert m["target"]["started"] is False
        assert (m["target"]["pid"], m["target"]["pid_from"]) == (service.pid, "port")
        assert "env WORK_ITER= PAGE=7" in (run_dir / "k6.stderr.txt").read_text()
        rows = [json.loads(line) for line in (run_dir / "resources.jsonl").read_text().splitlines()[1:]]
        assert any(r["role"] == "service" and r["processes"] == 1 for r in rows)
        assert service.poll() is None and port_listens(port)
    finally:
        service.terminate()
        service.wait(timeout=10)


def test_ctrl_c_leaves_nothing_running_and_the_run_incomplete(tmp_path: Path) -> None:
    before = set(psutil.pids())
    port = free_port()
    path = tiny_target(tmp_path, port, extra="")
    text = path.read_text().replace('[profiles]\n', '[profiles]\npyspy = true\n')
    path.write_text(text)
    store_path = tmp_path / "s.duckdb"
    # 20 s of k6: the steady-state window (py-spy, CPU profile) opens after 6 s
    proc = subprocess.Popen([sys.executable, "-m", "perflab", "--store", str(store_path), "run", "--target",
                             str(path), "--duration", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    seen: set[str] = set()
    wanted = {"k6", "py-spy"} if _pyspy_available() else {"k6"}
    while time.monotonic() < deadline and not wanted <= seen:
        with contextlib.suppress(psutil.Error):
            seen |= {k.name() for k in psutil.Process(proc.pid).children(recursive=True)}
        time.sleep(0.2)
    assert "k6" in seen, "k6 never started"
    if _pyspy_available():
        assert "py-spy" in seen, "py-spy never started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    time.sleep(0.5)
    assert started_by_the_test(before, tmp_path) == []
    assert not port_listens(port)
    with Store(store_path) as store:
        assert store.sql("SELECT status FROM runs").to_dicts() == [{"status": "incomplete"}]
    run_dir = next((tmp_path / "runs").iterdir())
    assert manifest_of(run_dir)["status"] == "incomplete"


def _pyspy_available() -> bool:
    import shutil

    return shutil.which("py-spy") is not None or (Path(sys.executable).parent / "py-spy").exists()


def test_a_service_that_cannot_start_is_one_line_and_an_incomplete_run(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "broken.toml"
    (tmp_path / "load.js").write_text("export default function () {}\n")
    path.write_text(f'[service]\nurl = "http://127.0.0.1:{port}"\n'
                    f'start = ["{sys.executable}", "-c", "import sys; print(\'boom: no config\'); sys.exit(3)"]\n'
                    '[load]\nscript = "load.js"\n')
    res = run_cli("run", "--target", str(path), "--duration", "5", store=tmp_path / "s.duckdb", timeout=120)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines()[-1] == "perflab: the service exited with 3: boom: no config"
    with Store(tmp_path / "s.duckdb") as store:
        assert store.sql("SELECT scenario, status FROM runs").to_dicts() == [
            {"scenario": "broken", "status": "incomplete"}]


def test_a_service_that_is_not_running_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "load.js").write_text("export default function () {}\n")
    path = tmp_path / "gone.toml"
    path.write_text(f'[service]\nurl = "http://127.0.0.1:{port}"\n[load]\nscript = "load.js"\n')
    res = run_cli("run", "--target", str(path), "--duration", "5", store=tmp_path / "s.duckdb", timeout=120)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines()[-1] == (
        f"perflab: nothing answers 127.0.0.1:{port}: start the service, or give [service] start")


def test_a_night_of_a_target_and_its_fixed_variant(tmp_path: Path) -> None:
    # GIVEN a target with a [variants.fixed] WHEN the nightly runs it instead of the scenarios
    path = tiny_target(tmp_path, free_port())
    res = run_cli("nightly", "--target", str(path), "--duration", "5", "--out", str(tmp_path / "reports"),
                  "--notebooks", "04-signatures", "05-optimization-log", "--json",
                  store=tmp_path / "s.duckdb", timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    night = json.loads(res.stdout)
    # THEN both variants ran, each got its report, the pair its log entry and notebooks
    assert [(r["scenario"], r["variant"], r["status"]) for r in night["runs"]] == [
        ("tiny", "default", "complete"), ("tiny", "fixed", "complete")]
    assert [(n["stem"], n["status"]) for n in night["notebooks"]] == [
        ("04-signatures", "ok"), ("05-optimization-log--tiny", "ok")]
    folder = Path(night["out"])
    assert all((folder / "runs" / r["run_id"] / "report.html").is_file() for r in night["runs"])
    assert "WORK_ITER" in (folder / "optimization-log.md").read_text()
