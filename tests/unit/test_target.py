"""Target files (perflab.lab.target): every key read, every mistake refused in one line.

GIVEN a TOML file, WHEN it is loaded, THEN the Target holds exactly what it says (paths
joined to the service URL, the script resolved against the file's folder), or the load
stops with a PerflabError (exit 2) naming the file, the key and the problem.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from perflab.errors import PerflabError
from perflab.lab import target as tf
from perflab.lab.processes import is_local_host, pid_listening_on
from perflab.lab.runner import find_service_pid
from perflab.lab.target import DEFAULT_SNAPSHOTS
from perflab.manifest import Manifest, MetricsScraped, ProfileTaken, TargetTaken
from tests.helpers import run_cli

FULL = """\
name = "orders"
description = "orders under load"

[service]
url = "http://127.0.0.1:8080/api"
start = ["./orders", "-addr", "127.0.0.1:8080"]
ready = "/healthz"
env = { POOL_SIZE = "4", HOLD_MS = 50, VERBOSE = true }

[load]
script = "load/orders.js"
env = { PAGE = "16" }
rate = 12.5

[profiles]
pprof = "http://127.0.0.1:6060/debug/pprof"
snapshots = ["heap", "mutex"]
pyspy = true

[metrics]
url = "/metrics"

[roles]
downstream_calls = "report_dependency_calls_total"
pool_waiting = "orders_pool_waiting"

[postgres]
dsn = "postgresql://app@127.0.0.1:5432/app"

[variants.fixed]
env = { POOL_SIZE = "20" }
description = "a bigger pool"

[variants.small-pool]
env = { POOL_SIZE = "1" }
"""


def _write(folder: Path, text: str, name: str = "orders.toml", script: str | None = "load/orders.js") -> Path:
    if script:
        (folder / script).parent.mkdir(parents=True, exist_ok=True)
        (folder / script).write_text("export default function () {}\n")
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_every_key_is_read(tmp_path: Path):
    path = _write(tmp_path, FULL)
    t = tf.load(path)
    assert t.name == "orders" and t.description == "orders under load"
    assert t.service.url == "http://127.0.0.1:8080/api"
    assert t.service.start == ("./orders", "-addr", "127.0.0.1:8080")
    # A path is joined to the URL, keeping its base path; a full URL is kept as it is.
    assert t.service.ready == "http://127.0.0.1:8080/api/healthz"
    assert t.metrics_url == "http://127.0.0.1:8080/api/metrics"
    assert t.profiles.pprof == "http://127.0.0.1:6060/debug/pprof"
    assert t.profiles.snapshots == ("heap", "mutex") and t.profiles.pyspy is True
    assert dict(t.service.env) == {"POOL_SIZE": "4", "HOLD_MS": "50", "VERBOSE": "true"}
    assert t.load.script == (tmp_path / "load/orders.js").resolve()
    assert dict(t.load.env) == {"PAGE": "16"} and t.load.rate == 12.5
    assert dict(t.roles) == {"downstream_calls": "report_dependency_calls_total",
                             "pool_waiting": "orders_pool_waiting"}
    assert t.postgres_dsn == "postgresql://app@127.0.0.1:5432/app"
    assert sorted(t.variants) == ["fixed", "small-pool"]
    assert dict(t.variant("fixed").env) == {"POOL_SIZE": "20"} and t.variant("fixed").description == "a bigger pool"
    assert t.variant("default").env == {}
    assert t.folder == tmp_path.resolve() and t.path == path.resolve()
    assert t.text == path.read_text() and t.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert t.host == "127.0.0.1" and t.port == 8080 and t.loopback and t.starts_service


def test_a_minimal_file_and_its_defaults(tmp_path: Path):
    path = _write(tmp_path, """\
        [service]
        url = "https://staging.example.com"
        [load]
        script = "load/orders.js"
        """, name="orders-staging.toml")
    t = tf.load(path)
    assert t.name == "orders-staging"  # the file's stem
    assert t.service.start == () and t.service.ready is None and t.service.pid is None
    assert t.profiles.pprof is None and t.profiles.snapshots == DEFAULT_SNAPSHOTS and t.profiles.pyspy is False
    assert t.metrics_url is None and t.roles == {} and t.postgres_dsn is None and t.variants == {}
    assert t.load.rate is None and t.port == 443 and not t.starts_service
    assert t.loopback is False


def test_a_file_called_target_toml_is_named_after_its_folder(tmp_path: Path):
    folder = tmp_path / "billing"
    folder.mkdir()
    path = _write(folder, '[service]\nurl = "http://127.0.0.1:1"\npid = 42\n[load]\nscript = "load/orders.js"\n',
                  name="target.toml")
    t = tf.load(path)
    assert t.name == "billing" and t.service.pid == 42


def test_unknown_variant_names_the_known_ones(tmp_path: Path):
    t = tf.load(_write(tmp_path, FULL))
    with pytest.raises(PerflabError, match=r"orders: unknown variant 'faster': one of default, fixed, small-pool"):
        t.variant("faster")


MINIMAL = '[service]\nurl = "http://127.0.0.1:8080"\n[load]\nscript = "load/orders.js"\n'

# (file text, the key the error names, words of the problem)
BAD = [
    ('name = "x"\n[service\n', "not valid TOML", "line 2"),
    ("", "[service]", "missing"),
    ('[service]\nurl = "http://127.0.0.1:1"\n', "[load]", "missing"),
    ('servise = 1\n' + MINIMAL, "servise", "unknown key"),
    ('name = "a b"\n' + MINIMAL, "name", "must be letters"),
    ('name = 3\n' + MINIMAL, "name", "must be a string, not an integer"),
    ('description = ["x"]\n' + MINIMAL, "description", "must be a string, not a list"),
    ('service = "x"\n[load]\nscript = "load/orders.js"\n', "service", "must be a table"),
    ('[service]\nstart = ["x"]\n[load]\nscript = "load/orders.js"\n', "[service] url", "missing"),
    ('[service]\nurl = "127.0.0.1:8080"\n[load]\nscript = "load/orders.js"\n', "[service] url", "not an http"),
    ('[service]\nurl = "http://127.0.0.1:99999"\n[load]\nscript = "load/orders.js"\n', "[service] url", "bad port"),
    (MINIMAL.replace("[load]", 'urll = "x"\n[load]'), "[service] urll", "unknown key"),
    (MINIMAL.replace("[load]", 'start = "./orders -addr :8080"\n[load]'), "[service] start",
     "must be a list of strings"),
    (MINIMAL.replace("[load]", "start = []\n[load]"), "[service] start", "non-empty list"),
    (MINIMAL.replace("[load]", 'start = ["./x", 3]\n[load]'), "[service] start", "non-empty list"),
    (MINIMAL.replace("[load]", 'ready = "healthz"\n[load]'), "[service] ready", "starting with '/'"),
    (MINIMAL.replace("[load]", 'ready = "ftp://x/y"\n[load]'), "[service] ready", "not an http"),
    (MINIMAL.replace("[load]", 'pid = "1234"\n[load]'), "[service] pid", "must be an integer, not a string"),
    (MINIMAL.replace("[load]", "pid = 0\n[load]"), "[service] pid", "not a process id"),
    (MINIMAL.replace("[load]", 'pid = 12\nstart = ["./x"]\n[load]'), "[service] pid", "not both"),
    (MINIMAL.replace("[load]", 'env = { A = "1" }\n[load]'), "[service] env", "only of a service it starts"),
    (MINIMAL.replace("[load]", 'start = ["./x"]\nenv = { "A-B" = "1" }\n[load]'), "[service] env A-B",
     "not an environment variable name"),
    (MINIMAL.replace("[load]", 'start = ["./x"]\nenv = { A = [1] }\n[load]'), "[service] env A",
     "must be a string or a number"),
    (MINIMAL.replace("[load]", 'start = ["./x"]\nenv = "A=1"\n[load]'), "[service] env", "must be a table"),
    ('[service]\nurl = "http://127.0.0.1:1"\n[load]\nenv = {}\n', "[load] script", "missing"),
    ('[service]\nurl = "http://127.0.0.1:1"\n[load]\nscript = "nope.js"\n', "[load] script", "no such file"),
    (MINIMAL + "rate = 0\n", "[load] rate", "above 0"),
    (MINIMAL + 'rate = "10"\n', "[load] rate", "must be a number, not a string"),
    (MINIMAL + 'duration = "30s"\n', "[load] duration", "unknown key"),
    (MINIMAL + '[profiles]\npprof = "debug/pprof"\n', "[profiles] pprof", "starting with '/'"),
    (MINIMAL + '[profiles]\npyspy = "yes"\n', "[profiles] pyspy", "true or false"),
    (MINIMAL + '[profiles]\nsnapshots = ["heap", "cpu"]\n', "[profiles] snapshots", "'cpu' is not one of"),
    (MINIMAL + '[profiles]\nsnapshots = "heap"\n', "[profiles] snapshots", "list of strings"),
    (MINIMAL + '[profiles]\ntrace = true\n', "[profiles] trace", "unknown key"),
    (MINIMAL + '[metrics]\nurl = 9090\n', "[metrics] url", "must be a string"),
    (MINIMAL + '[metrics]\npath = "/metrics"\n', "[metrics] path", "unknown key"),
    (MINIMAL + '[roles]\nlatency = "x"\n', "[roles] latency", "not a role; one of requests"),
    (MINIMAL + '[roles]\nrequests = ""\n', "[roles] requests", "metric name"),
    (MINIMAL + '[roles]\nrequests = "reqs{route=/x}"\n', "[roles] requests", "cannot read the matcher"),
    (MINIMAL + '[postgres]\ndsn = "mysql://x@y/z"\n', "[postgres] dsn", "not a PostgreSQL URL"),
    (MINIMAL + '[postgres]\nurl = "postgresql://x"\n', "[postgres] url", "unknown key"),
    (MINIMAL + "[variants]\nfixed = 3\n", "[variants.fixed]", "must be a table"),
    (MINIMAL + '[variants.default]\nenv = { A = "1" }\n', "[variants.default]", "the file as written"),
    (MINIMAL + '[variants."a b"]\nenv = {}\n', "[variants.a b]", "a variant's name"),
    (MINIMAL + '[variants.fixed]\nrate = 3\n', "[variants.fixed] rate", "unknown key"),
    (MINIMAL + '[variants.fixed]\nenv = { A = {} }\n', "[variants.fixed] env A", "string or a number"),
]


@pytest.mark.parametrize(("text", "key", "problem"), BAD, ids=[f"{b[1]}:{b[2]}" for b in BAD])
def test_every_mistake_is_one_line_naming_file_key_and_problem(tmp_path: Path, text: str, key: str, problem: str):
    path = _write(tmp_path, text)
    with pytest.raises(PerflabError) as err:
        tf.load(path)
    msg = str(err.value)
    assert "\n" not in msg and err.value.exit_code == 2
    assert msg.startswith(f"{path}: {key}"), msg
    assert problem in msg, msg


def test_a_file_that_is_not_there_or_not_text(tmp_path: Path):
    with pytest.raises(PerflabError, match="cannot read the target file"):
        tf.load(tmp_path / "missing.toml")
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe[service]")
    with pytest.raises(PerflabError, match="not UTF-8 text"):
        tf.load(bad)


def test_the_cli_refuses_a_bad_target_in_one_line_exit_2(tmp_path: Path):
    path = _write(tmp_path, MINIMAL + '[roles]\nlatency = "x"\n')
    res = run_cli("run", "--target", str(path), "--duration", "5", store=tmp_path / "s.duckdb", timeout=60)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines() == [f"perflab: {path}: [roles] latency: not a role; one of "
                                               + ", ".join(tf.SIGNAL_ROLES)]
    assert not (tmp_path / "s.duckdb").exists()  # refused before the store was opened


def test_the_cli_wants_a_scenario_or_a_target_and_a_known_variant(tmp_path: Path):
    res = run_cli("run", store=tmp_path / "s.duckdb", timeout=60)
    assert res.returncode == 2 and "give a SCENARIO or --target FILE.toml" in res.stderr
    path = _write(tmp_path, MINIMAL)
    res = run_cli("run", "healthy", "--target", str(path), store=tmp_path / "s.duckdb", timeout=60)
    assert res.returncode == 2 and "one of them" in res.stderr
    res = run_cli("run", "--target", str(path), "--variant", "fixed", store=tmp_path / "s.duckdb", timeout=60)
    assert res.returncode == 2 and "unknown variant 'fixed': one of default" in res.stderr


# -- finding the service's process ---------------------------------------------------------------

def test_the_process_listening_on_a_port_is_found(tmp_path: Path):
    # GIVEN a process that listens on a port (and one that does not listen anywhere)
    code = ("import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
            "print(s.getsockname()[1], flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        # THEN the listener is found by its port, and a closed port finds nobody
        assert pid_listening_on(port) == proc.pid
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            free = s.getsockname()[1]
        assert pid_listening_on(free) is None
        # AND a target at that port without start or pid is attached to it
        path = _write(tmp_path, f'[service]\nurl = "http://localhost:{port}"\n[load]\nscript = "load/orders.js"\n')
        assert find_service_pid(tf.load(path), None) == (proc.pid, "port")
    finally:
        proc.kill()
        proc.wait()
    time.sleep(0.1)
    assert pid_listening_on(port) is None


def test_a_given_pid_wins_and_must_exist(tmp_path: Path):
    path = _write(tmp_path, MINIMAL.replace("[load]", f"pid = {os.getpid()}\n[load]"))
    assert find_service_pid(tf.load(path), None) == (os.getpid(), "pid")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path = _write(tmp_path, MINIMAL.replace("[load]", f"pid = {gone.pid}\n[load]"))
    with pytest.raises(PerflabError, match=rf"\[service\] pid {gone.pid}: no such process"):
        find_service_pid(tf.load(path), None)


def test_loopback_and_local_hosts():
    assert tf.is_loopback("127.0.0.1") and tf.is_loopback("::1") and tf.is_loopback("localhost")
    assert not tf.is_loopback("192.0.2.10") and not tf.is_loopback("")
    assert is_local_host("localhost")
    assert not is_local_host("198.51.100.7")  # TEST-NET-2: never this machine's


# -- the manifest keeps the target ------------------------------------------------------------------

def test_the_manifest_reads_back_its_target_metrics_and_profiles():
    m = Manifest(run_id="r", scenario="orders", variant="fixed", roles={"requests": "http_requests_total"},
                 target=TargetTaken(name="orders", path="/x/orders.toml", sha256="ab", text="[service]\n",
                                    url="http://127.0.0.1:8080", started=False, pid=42, pid_from="port"),
                 metrics=MetricsScraped(url="http://127.0.0.1:8080/metrics", format="prometheus",
                                        files=["metrics.prom"], scrapes=10),
                 profile=ProfileTaken(cpu_profile="service.cpu.pb.gz", snapshots={"heap": "service.heap.pb.gz"},
                                      notes=["mutex profile not taken: not served (HTTP 404)"]))
    back = Manifest.from_json(m.to_json())
    assert back == m
    assert back.target is not None and back.target.pid_from == "port"


def test_a_manifest_written_before_targets_reads_and_writes_back_unchanged():
    old = ('{"host": {"cpu_count": 2}, "profile": {"cpu_profile": "service.cpu.pb.gz", "seconds": 4.0}, '
           '"run_id": "r", "scenario": "healthy", "settings": {"A": "1"}, "newer_key": 1}')
    m = Manifest.from_json(old)
    assert m.target is None and m.metrics is None and m.extra == {"newer_key": 1}
    assert json.loads(m.to_json()) == {
        **json.loads(old), "fix": {}, "overrides": {}, "versions": {}, "timings_s": {}, "postgres": {}, "sources": {}}
