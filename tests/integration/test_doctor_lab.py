"""The doctor on real lab runs: each scenario shows its signature, its fix and the healthy mix do not.

Seven 15 s runs (real PostgreSQL, the sample service, k6) in ONE module-scoped fixture,
about 20 s each; every test reads the same diagnoses. The settings are the lab's
defaults (perflab/lab/scenarios.py): the doctor's thresholds are not tuned to pass here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from perflab.analysis.run import Run
from perflab.analysis.signatures import diagnose, login_storm
from perflab.jsonable import to_jsonable
from perflab.lab.runner import RunOptions, run
from perflab.report.optlog import render_entry
from perflab.store import Store
from tests.helpers import wait_for_a_quiet_machine

pytestmark = pytest.mark.slow

RUNS = [("login-storm", "default"), ("login-storm", "fixed"), ("false-idle", "default"),
        ("false-idle", "fixed"), ("retry-storm", "default"), ("retry-storm", "fixed"), ("healthy", "default")]
LAB_SIGNATURES = ("false-idle", "login-storm", "retry-storm")
DURATION_S = 15

# What a reader of the report wants per run, in this order.
SUMMARY_KEYS = (("login-storm", "service_cpu_p50"), ("login-storm", "service_cpu_mean"), ("login-storm", "p95_ms"),
                ("retry-storm", "downstream_calls_per_request"), ("retry-storm", "timeout_rate"),
                ("false-idle", "pool_waiting_p50"), ("login-storm", "hashing_share"),
                ("loadgen-saturated", "dropped_iterations"), ("loadgen-saturated", "k6_cpu_p50"),
                ("loadgen-saturated", "host_cpu_p50"))


@pytest.fixture(scope="module")
def lab_store(tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[Store, dict[tuple[str, str], dict[str, Any]]]]:
    """The seven runs in one store (open while the module's tests read it) and their diagnoses."""
    store = Store(tmp_path_factory.mktemp("doctor-lab") / "store.duckdb")
    out: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        for scenario, variant in RUNS:
            wait_for_a_quiet_machine()
            load = os.getloadavg()[0]
            result = run(store, RunOptions(scenario, variant, duration_s=DURATION_S, live=False))
            diagnosis = to_jsonable(diagnose(Run.load(store, result["run_id"])))
            diagnosis["load_avg_1m_before"] = load
            out[(scenario, variant)] = diagnosis
        _print_summary(out)
        yield store, out
    finally:
        store.close()


@pytest.fixture(scope="module")
def lab(lab_store: tuple[Store, dict[tuple[str, str], dict[str, Any]]]) -> dict[tuple[str, str], dict[str, Any]]:
    return lab_store[1]


def _by_signature(diagnosis: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["signature"]: f for f in diagnosis["findings"]}


def _print_summary(out: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The measured evidence per run (shown with `pytest -s`): what the report quotes."""
    for (scenario, variant), diagnosis in out.items():
        by = _by_signature(diagnosis)
        numbers = ", ".join(f"{key} {by[sig]['evidence'].get(key)}" for sig, key in SUMMARY_KEYS)
        verdicts = ", ".join(f"{s} {f['verdict']}" for s, f in by.items())
        print(f"\n{scenario}/{variant} (load {diagnosis['load_avg_1m_before']:.2f}): {numbers}\n  {verdicts}")


@pytest.mark.parametrize("scenario", ["login-storm", "false-idle", "retry-storm"])
def test_each_scenario_shows_its_signature_and_only_it(lab: dict[tuple[str, str], dict[str, Any]],
                                                      scenario: str) -> None:
    by = _by_signature(lab[(scenario, "default")])
    assert by[scenario]["verdict"] == "present", by[scenario]
    assert by[scenario]["recommendation"]
    for other in LAB_SIGNATURES:
        if other != scenario:
            assert by[other]["verdict"] == "absent", (other, by[other])


@pytest.mark.parametrize("scenario", ["login-storm", "false-idle", "retry-storm"])
def test_the_fixed_variant_does_not(lab: dict[tuple[str, str], dict[str, Any]], scenario: str) -> None:
    by = _by_signature(lab[(scenario, "fixed")])
    for sig in LAB_SIGNATURES:
        assert by[sig]["verdict"] == "absent", (sig, by[sig])


def test_healthy_shows_no_signature(lab: dict[tuple[str, str], dict[str, Any]]) -> None:
    by = _by_signature(lab[("healthy", "default")])
    assert {s: f["verdict"] for s, f in by.items()} == dict.fromkeys(by, "absent")


def test_login_storm_evidence_names_bcrypt(lab: dict[tuple[str, str], dict[str, Any]]) -> None:
    ev = _by_signature(lab[("login-storm", "default")])["login-storm"]["evidence"]
    # bcrypt in threads reaches both cores on a quiet machine (LAB-NOTES: 195 %); on the shared
    # machine other work takes some (measured 116–188 %), so only the signature's own bar is asserted.
    assert ev["service_cpu_p50"] >= login_storm.CPU_MIN_PCT
    # The doctor reads Run.cpu_profile: the service's own sampler's (bcrypt's C time on its
    # Python caller, ~98 %) before py-spy's (bcrypt's own cipher, ~83 %, with the event loop and
    # HTTP serving around it); either shows the hashing.
    assert ev["hashing_share"] >= 0.75
    assert re.search("bcrypt|blowfish|check_password", ev["top_hashing_frame"], re.IGNORECASE), ev
    assert ev["p95_ms"] >= 2000


def test_login_storm_drops_iterations_because_the_target_is_slow(
        lab: dict[tuple[str, str], dict[str, Any]]) -> None:
    f = _by_signature(lab[("login-storm", "default")])["loadgen-saturated"]
    ev = f["evidence"]
    assert f["verdict"] == "absent"  # k6 idles: the run is trustworthy ...
    assert ev["k6_cpu_p50"] < 20
    assert ev["dropped_iterations"] > 0 and ev["vus_busy"] is True  # ... but says what latency leaves out
    assert any("slow target" in c for c in ev["caveats"])


def test_false_idle_evidence_is_waiting_not_working(lab: dict[tuple[str, str], dict[str, Any]]) -> None:
    by = _by_signature(lab[("false-idle", "default")])
    ev = by["false-idle"]["evidence"]
    assert ev["service_cpu_p50"] <= 20
    assert ev["pool_waiting_p50"] >= 10
    # The same queue seen as a full pool and as pool waits dominating the in-flight requests.
    assert by["pool-saturation"]["verdict"] == "present"
    assert by["lock-contention"]["verdict"] == "present"
    fixed = _by_signature(lab[("false-idle", "fixed")])
    assert fixed["false-idle"]["evidence"]["pool_waiting_p50"] == 0
    assert fixed["pool-saturation"]["verdict"] == "absent"


def test_retry_storm_evidence_is_amplification(lab: dict[tuple[str, str], dict[str, Any]]) -> None:
    storm = _by_signature(lab[("retry-storm", "default")])["retry-storm"]["evidence"]
    fixed = _by_signature(lab[("retry-storm", "fixed")])["retry-storm"]["evidence"]
    assert storm["downstream_calls_per_request"] >= 2.2
    assert fixed["downstream_calls_per_request"] <= 1.3
    # Backoff removes the extra load, not the timeouts of an always-slow query (LAB-NOTES).
    assert storm["timeout_rate"] >= 0.2 and fixed["timeout_rate"] >= 0.2


def test_the_retry_storm_fix_is_confirmed_on_downstream_calls_with_errors_unchanged(
        lab_store: tuple[Store, dict[tuple[str, str], dict[str, Any]]]) -> None:
    store, out = lab_store
    before, after = (Run.load(store, out[("retry-storm", v)]["run_id"]) for v in ("default", "fixed"))
    entry = render_entry(before, after, "retry-storm: RETRY_POLICY=backoff", "immediate retries multiply the load")
    print(entry)
    conclusion = next(ln for ln in entry.splitlines() if ln.startswith("**Conclusion:**"))
    assert conclusion.startswith("**Conclusion:** **confirmed**: the retry-storm hypothesis targets downstream "
                                 "calls per request, and it moved the hypothesised way beyond noise."), conclusion
    # Backoff does not make the always-slow report fast: its timeouts, and so the errors, stay.
    assert " Error rate unchanged: " in conclusion and "within noise." in conclusion
    assert "Expected impact:** not" not in entry
