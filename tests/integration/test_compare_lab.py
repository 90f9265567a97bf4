"""End to end: a real login storm and its fix (real PostgreSQL, service and k6), compared and logged.

The session's lab runs (tests/integration/lab_runs.py): login-storm at bcrypt cost 12, and
the `fixed` variant at cost 10. The fix must show as a p95 improvement beyond noise, and the
log entry must name the one setting that changed and conclude "confirmed".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perflab.store import Store
from tests.helpers import run_cli
from tests.integration.lab_runs import LabRuns
from tests.unit.test_optlog import add_entry, assert_filled, compare_runs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab(lab_runs: LabRuns, tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, str, str, Path]:
    ids = lab_runs.ids
    return (lab_runs.store, ids[("login-storm", "default")], ids[("login-storm", "fixed")],
            tmp_path_factory.mktemp("compare-lab"))


def test_the_fix_is_beyond_noise(lab):
    store, a, b, _ = lab
    result = compare_runs(store, a, b)
    p95 = next(r for r in result["metrics"] if r["metric"] == "latency p95")
    assert p95["b"] < p95["a"]
    assert (p95["beyond_noise"], p95["direction"]) == (True, "better"), p95
    overall = result["latency"]["overall"]
    assert overall["ci"]["p95"][1] < 0  # the whole interval of after − before is an improvement
    assert p95["interval"] == overall["ci"]["p95"]  # and that interval is what the row is judged on
    cpu = next(r for r in result["metrics"] if r["metric"] == "service CPU p50")
    assert cpu["a"] is not None and cpu["b"] is not None
    # Both runs are lab runs with a CPU profile: the diff has rows and bcrypt is in the before one.
    names = [r["name"] for r in result["profile"]["rows"]]
    assert "sample_workload.auth.check_password" in names


def test_the_log_entry_confirms_it(lab):
    store, a, b, root = lab
    entry = add_entry(store, a, b, "Lower the bcrypt cost to 10",
                      "bcrypt at cost 12 needs more CPU than two cores have; cost 10 is 4x cheaper",
                      expected="p95 from seconds to well under a second, no dropped iterations",
                      out=root / "optimization-log.md")
    print(entry)
    assert_filled(entry)
    assert "- Changed: BCRYPT_COST: 12 → 10" in entry
    assert ("**Conclusion:** **confirmed**: the login-storm hypothesis targets service CPU per request and latency p95, "
            "and each moved the hypothesised way beyond noise") in entry
    p95_line = next(ln for ln in entry.splitlines() if ln.startswith("- latency p95:"))
    assert "better: beyond noise" in p95_line
    assert "the doctor finds login-storm" in entry
    assert "The login-storm signature is" in entry


def test_the_command_line(lab):
    store, a, b, _ = lab
    store.release()  # as a notebook cell would: the CLI's process opens the store now
    path = store.path
    res = run_cli("compare", a, b, store=path)
    assert res.returncode == 0, res.stderr
    print(res.stdout)
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("latency p95"))
    assert "yes (better)" in line
    js = json.loads(run_cli("compare", a, b, "--json", store=path).stdout)
    assert js["latency"]["overall"]["beyond_noise"] is True
