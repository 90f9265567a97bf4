"""End to end: one real login-storm run in the lab, then `perflab report` on it.

The report must find what the lab put there: the login-storm signature present, the
password check (bcrypt under sample_workload.auth.check_password) in the CPU top, and a
service (or its machine) saturated, so the capacity estimate is an upper bound.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from perflab.lab.runner import RunOptions, run
from perflab.store import Store
from tests.helpers import run_cli, wait_for_a_quiet_machine

pytestmark = pytest.mark.slow

PASSWORD_CHECK = "sample_workload.auth.check_password"


def test_login_storm_report(tmp_path: Path):
    store_path = tmp_path / "store.duckdb"
    store = Store(store_path)
    try:
        wait_for_a_quiet_machine()
        result = run(store, RunOptions("login-storm", duration_s=12, live=False))
    finally:
        store.close()
    run_id = result["run_id"]
    assert result["status"] == "complete"

    out = run_cli("report", run_id, "--out", str(tmp_path / "reports"), "--json", store=store_path, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout)
    report = doc["report"]

    verdicts = {f["signature"]: f["verdict"] for f in report["signatures"]["findings"]}
    assert verdicts["login-storm"] == "present", report["signatures"]

    names = [r["name"] for r in report["cpu_profile"]["flat"] + report["cpu_profile"]["cum"]]
    assert any(PASSWORD_CHECK in n for n in names), names

    cap = report["capacity"]
    # "Saturated" is the service's CPU at 80 % of the cores; on a machine shared with other work
    # bcrypt may get less, and then the report says the machine was pinned instead.
    assert cap["saturated"] is (cap["cpu_p50_pct"] >= 0.8 * cap["cores"] * 100), cap
    assert cap["upper_bound"] is True and (cap["saturated"] or cap["machine_saturated"]), cap
    assert cap["rps_per_core"] > 0 and cap["replicas"] >= 1 and cap["limited_by"] == "cpu", cap

    md = Path(doc["markdown"]).read_text()
    assert re.search(r"^\| \*\*login-storm\*\* \| present \|", md, flags=re.M)
    assert PASSWORD_CHECK in md.split("### CPU profile analysis")[1].split("### Memory profile")[0]
    assert ("**The service was saturated**, so this estimate is an **upper bound**" in md) is cap["saturated"]
    assert "No heap profile in this run." in md
    assert "No fixed or default twin and no previous run of this scenario and variant." in md
    for bad in (r"\bNone\b", r"\bnan\b", r"\[FILL"):
        assert not re.search(bad, md), bad
    # The k6 numbers of the report are the run's own k6 summary-export's.
    summary = json.loads((Path(result["run_dir"]) / "k6-summary.json").read_text())
    assert report["requests"]["overall"]["requests"] == summary["metrics"]["http_reqs"]["count"]

    page = Path(doc["html"]).read_text()
    for c in report["charts"]:
        if c["drawn"]:
            assert f'id="{c["div_id"]}"' in page
    assert {"latency-over-time", "cpu-vs-latency", "flame-graph"} <= {c["name"] for c in report["charts"]
                                                                       if c["drawn"]}
    # Offline: the one script loaded by URL is the plotly.js written beside the page.
    assert re.findall(r"<script[^>]+src=\"?([^\" >]+)", page) == ["plotly.min.js"]
    assert (Path(doc["html"]).parent / "plotly.min.js").stat().st_size > 1_000_000
