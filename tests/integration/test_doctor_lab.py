"""The doctor on real lab runs: each scenario shows its signature, its fix and the healthy mix do not.

Seven 15 s runs (real PostgreSQL, the sample service, k6) in ONE session fixture
(tests/integration/lab_runs.py, shared with test_compare_lab), about 20 s each; every test
reads the same diagnoses, and the false-idle pair's load-test
reports (their claims, capacity and twin comparison). The settings are the lab's
defaults (perflab/lab/scenarios.py): the doctor's thresholds are not tuned to pass here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from perflab.analysis.assessment import MIN_SAMPLES_TO_RANK
from perflab.analysis.capacity import SATURATION_FRACTION
from perflab.analysis.run import Run
from perflab.analysis.run_report import build_report
from perflab.analysis.signatures import diagnose, login_storm
from perflab.jsonable import to_jsonable
from perflab.report import charts
from perflab.report.loadtest_document import document
from perflab.report.markdown import render_markdown
from perflab.report.optlog import render_entry
from tests.integration.lab_runs import LabRuns

pytestmark = pytest.mark.slow

LAB_SIGNATURES = ("false-idle", "login-storm", "retry-storm")

# What a reader of the report wants per run, in this order.
SUMMARY_KEYS = (("login-storm", "service_cpu_p50"), ("login-storm", "service_cpu_mean"), ("login-storm", "p95_ms"),
                ("retry-storm", "downstream_calls_per_request"), ("retry-storm", "timeout_rate"),
                ("false-idle", "pool_waiting_p50"), ("login-storm", "hashing_share"),
                ("loadgen-saturated", "dropped_iterations"), ("loadgen-saturated", "k6_cpu_p50"),
                ("loadgen-saturated", "host_cpu_p50"))


@pytest.fixture(scope="module")
def lab(lab_runs: LabRuns) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for key, run_id in lab_runs.ids.items():
        diagnosis = to_jsonable(diagnose(Run.load(lab_runs.store, run_id)))
        diagnosis["load_avg_1m_before"] = lab_runs.load_before[run_id]
        out[key] = diagnosis
    _print_summary(out)
    return out


@pytest.fixture(scope="module")
def reports(lab_runs: LabRuns) -> dict[tuple[str, str], dict[str, Any]]:
    """The false-idle pair's load-test reports: {"report": --json's report, "md": report.md's text}."""
    store, ids = lab_runs.store, lab_runs.ids
    out = {}
    for key in (("false-idle", "default"), ("false-idle", "fixed")):
        report = build_report(Run.load(store, ids[key]))
        out[key] = {"report": to_jsonable(report), "md": render_markdown(document(report))}
    return out


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
        lab_runs: LabRuns) -> None:
    before, after = (Run.load(lab_runs.store, lab_runs.ids[("retry-storm", v)]) for v in ("default", "fixed"))
    entry = render_entry(before, after, "retry-storm: RETRY_POLICY=backoff", "immediate retries multiply the load")
    print(entry)
    conclusion = next(ln for ln in entry.splitlines() if ln.startswith("**Conclusion:**"))
    assert conclusion.startswith("**Conclusion:** **confirmed**: the retry-storm hypothesis targets downstream "
                                 "calls per request, and it moved the hypothesised way beyond noise."), conclusion
    # Backoff does not make the always-slow report fast: its timeouts, and so the errors, stay.
    assert " Error rate unchanged: " in conclusion and "within noise." in conclusion
    assert "Expected impact:** not" not in entry


def test_the_false_idle_report_claims_only_what_its_evidence_shows(
        reports: dict[tuple[str, str], dict[str, Any]]) -> None:
    report, md = reports[("false-idle", "default")]["report"], reports[("false-idle", "default")]["md"]
    cap = report["capacity"]
    # Not saturated at 8-12 % of a core (below 80 % of one core, let alone of the cores), though k6 dropped
    # iterations: the pool held the rate.
    assert cap["cpu_p50_pct"] < 80 and cap["saturated"] is False, cap
    assert cap["cpu_p50_pct"] < SATURATION_FRACTION * cap["cores"] * 100
    assert "saturated" not in " ".join(a["title"] for a in report["assessment"]["areas"]).lower()
    assert "was saturated" not in md
    # Capacity from the pool (2 connections ÷ the time each request holds one), within 2x of the measured rate,
    # not the hundreds of req/s the idle CPU would allow.
    assert cap["limited_by"] == "pool", cap
    assert 0.5 <= cap["replica_rps"] / cap["rps"] <= 2, cap
    cpu_limit = next(lim for lim in cap["limits"] if lim["resource"] == "cpu")
    assert cpu_limit["rps"] > 5 * cap["limits"][0]["rps"], cap
    assert "**the connection pool** |" in md
    # The service's own profile of an idle CPU holds a few dozen samples: no function is ranked from it.
    prof = report["cpu_profile"]
    assert prof["samples"] < MIN_SAMPLES_TO_RANK and prof["too_small"], prof
    assert "hottest function" not in md and "too small to rank functions" in md


def test_a_run_report_compares_with_its_twin(lab_runs: LabRuns, reports: dict[tuple[str, str], dict[str, Any]]) -> None:
    store, ids = lab_runs.store, lab_runs.ids
    default_id, fixed_id = ids[("false-idle", "default")], ids[("false-idle", "fixed")]
    fixed, md = reports[("false-idle", "fixed")]["report"]["comparison"], reports[("false-idle", "fixed")]["md"]
    assert (fixed["against"], fixed["relation"], fixed["previous"]) == (default_id, "default twin", None)
    assert f"**A:** `{default_id}`, its default twin" in md
    p95 = next(r for r in fixed["metrics"] if r["metric"] == "latency p95")
    assert p95["a"] == reports[("false-idle", "default")]["report"]["requests"]["overall"]["p95_ms"]
    assert p95["beyond_noise"] is True and p95["direction"] == "better", p95  # seconds of pool waits to ms
    default = reports[("false-idle", "default")]["report"]["comparison"]
    assert (default["against"], default["relation"]) == (fixed_id, "fixed twin")
    # Every scenario with a fix pairs both ways; the healthy mix has neither twin nor previous run.
    for scenario in LAB_SIGNATURES:
        d, f = (Run.load(store, ids[(scenario, v)]) for v in ("default", "fixed"))
        assert (d.twin().run_id, f.twin().run_id) == (f.run_id, d.run_id)  # type: ignore[union-attr]
    healthy = Run.load(store, ids[("healthy", "default")])
    assert healthy.twin() is None and healthy.previous() is None


def test_the_pool_capacity_is_one_number(lab_runs: LabRuns, lab: dict[tuple[str, str], dict[str, Any]]) -> None:
    store, ids = lab_runs.store, lab_runs.ids
    for key, run_id in ids.items():
        run_ = Run.load(store, run_id)
        settings = run_.settings
        # What the pool opens before a request waits: its size plus its overflow (the manifest's settings).
        opens = float(settings["POOL_SIZE"]) + float(settings["POOL_MAX_OVERFLOW"])
        line = next(t for t in charts.inflight_and_waiting(run_).data if t.name == "pool capacity")
        assert set(line.y) == {opens}, (key, set(line.y), opens)
        # The doctor states it where it had enough pool samples in the steady window (always the false idle's).
        doctor = _by_signature(lab[key])["pool-saturation"]["evidence"].get("pool_capacity")
        assert doctor == opens or (doctor is None and key[0] != "false-idle"), (key, doctor, opens)


def test_latency_follows_cpu_only_when_it_does(lab: dict[tuple[str, str], dict[str, Any]]) -> None:
    f = _by_signature(lab[("login-storm", "default")])["login-storm"]
    ev = f["evidence"]
    follows = ev["cpu_p95_correlation"] >= login_storm.FOLLOWS_MIN_RHO
    assert ev["latency_follows_cpu"] is follows, ev
    assert ("latency follows CPU" in f["recommendation"]) is follows, f["recommendation"]
