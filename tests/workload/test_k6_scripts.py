"""The k6 scenario scripts: their options as k6 reads them, and a real short run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.workload.harness import ROOT, Databases

K6 = str(Path(sys.executable).parent / "k6")
SCRIPTS = ROOT / "sample_workload" / "k6"

# script -> {scenario: (endpoint tag, arrivals per 10 s at the default RATE)}
EXPECTED = {
    "healthy.js": {"login": ("login", 30), "records": ("records", 500), "challenges": ("challenges", 100),
                   "report": ("report", 100)},
    "false-idle.js": {"records": ("records", 400)},
    "login-storm.js": {"login": ("login", 100)},
    "retry-storm.js": {"report": ("report", 200)},
}


def inspect(script: str, *env: str) -> dict[str, Any]:
    args = [a for e in env for a in ("-e", e)]
    out = subprocess.run([K6, "inspect", *args, str(SCRIPTS / script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_scripts_use_constant_arrival_rate_tags_and_p95_thresholds(script: str) -> None:
    opts = inspect(script)
    scenarios = opts["scenarios"]
    assert set(scenarios) == set(EXPECTED[script])
    for name, (endpoint, rate) in EXPECTED[script].items():
        sc = scenarios[name]
        assert sc["executor"] == "constant-arrival-rate"
        assert (sc["rate"], sc["timeUnit"], sc["duration"]) == (rate, "10s", "30s")
        assert sc["tags"] == {"endpoint": endpoint}
        assert opts["thresholds"][f"http_req_duration{{endpoint:{endpoint}}}"][0].startswith("p(95)<")
    # every knob comes from the environment
    opts = inspect(script, "RATE=7", "DURATION=5s", "PRE_VUS=3", "MAX_VUS=9", "P95_MS=123")
    total = sum(sc["rate"] for sc in opts["scenarios"].values())
    assert total in (70, 71)  # healthy splits 7/s over four scenarios, rounding each
    assert {(sc["duration"], sc["preAllocatedVUs"], sc["maxVUs"]) for sc in opts["scenarios"].values()} == {("5s", 3, 9)}
    assert {v[0] for v in opts["thresholds"].values()} == {"p(95)<123"}


@pytest.mark.slow
def test_healthy_script_runs_against_the_service(databases: Databases, start_service: Any, tmp_path: Path) -> None:
    url = databases.new()
    svc = start_service(url, HEAVY_FRACTION="0")
    before = svc.vars()["counters"]["requests"]
    summary = tmp_path / "summary.json"
    out = subprocess.run([K6, "run", "-q", "--no-usage-report", "--summary-export", str(summary),
                          str(SCRIPTS / "healthy.js")], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "BASE_URL": svc.base, "RATE": "40", "DURATION": "3s",
                              "USERS": "200"})
    assert out.returncode == 0, out.stdout + out.stderr
    metrics = json.loads(summary.read_text())["metrics"]
    assert metrics["checks"]["fails"] == 0 and metrics["http_req_failed"]["value"] == 0
    after = svc.vars()["counters"]["requests"]
    served = {route: sum(after[route].values()) - sum(before.get(route, {}).values())
              for route in after if not route.startswith(("GET /debug", "GET /healthz"))}
    # k6 and the service agree on the requests made, one route per tagged endpoint
    assert set(served) == {"POST /login", "POST /records", "GET /challenges/{user_id}", "GET /report/{user_id}"}
    assert sum(served.values()) == metrics["http_reqs"]["count"]
