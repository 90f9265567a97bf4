"""perflab.report.optlog: an entry in the template, every number from the store, idempotent.

GIVEN two runs in a store (k6's main_small as "a", the same requests ×3 slower as "b",
the sampler's files for both, and manifests whose settings differ in one knob), WHEN an
entry is written, THEN it has every heading of the template, nothing left unfilled, and
the same numbers as compare_runs.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from typing import Any

from perflab import fmt
from perflab.analysis import compare
from perflab.analysis.run import Run
from perflab.ingest import ingest_path
from perflab.jsonable import to_jsonable
from perflab.report import optlog
from perflab.store import Store
from tests.helpers import load_lab_run, run_cli
from tests.unit.test_compare import K6_SMALL, lab_samples, scaled_copy

fmt_value, fmt_pct = fmt.value, fmt.signed_percent


# The entry of two runs by id, as `perflab log add --before A --after B` makes it.
def add_entry(store: Store, before: str, after: str, *args: Any, **kwargs: Any) -> str:
    return optlog.add_entry(Run.load(store, before), Run.load(store, after), *args, **kwargs)


def render_entry(store: Store, before: str, after: str, *args: Any, **kwargs: Any) -> str:
    return optlog.render_entry(Run.load(store, before), Run.load(store, after), *args, **kwargs)


def compare_runs(store: Store, before: str, after: str) -> dict[str, Any]:
    return to_jsonable(compare.compare_runs(Run.load(store, before), Run.load(store, after)))


HEADINGS = ("## Optimization #", "**Date:**", "**Issue:**", "**Evidence:**", "**Hypothesis:**",
            "**Expected impact:**", "**Implementation:**", "**Results:**", "- Before:", "- After:",
            "**Actual impact:**", "**Conclusion:**")
SETTINGS = {"BCRYPT_COST": "12", "POOL_SIZE": "10", "WRITE_MODE": "single"}


def _manifest(store: Store, run: str, scenario: str, variant: str, settings: dict[str, str],
              started: str) -> None:
    manifest = {"run_id": run, "scenario": scenario, "variant": variant, "settings": settings,
                "signature": "login-storm", "why": "bcrypt at cost 12 needs more than 2 cores",
                "started_at": started}
    with store.transaction():
        store.ensure_run(run, scenario=scenario, variant=variant, status="complete",
                         manifest=json.dumps(manifest, sort_keys=True))


@pytest.fixture
def runs(store: Store, tmp_path: Path) -> Store:
    ingest_path(store, K6_SMALL, run_id="a")
    ingest_path(store, scaled_copy(K6_SMALL, tmp_path / "x3.ndjson", 3.0), run_id="b")
    lab_samples(store, tmp_path, "a", cpu_mean=60.0, seed=1, queries=110, requests=100)
    lab_samples(store, tmp_path, "b", cpu_mean=180.0, seed=2, queries=110, requests=100)
    _manifest(store, "a", "login-storm", "default", SETTINGS, "2026-01-01T10:00:00+00:00")
    _manifest(store, "b", "login-storm", "fixed", {**SETTINGS, "BCRYPT_COST": "10"}, "2026-01-01T10:05:00+00:00")
    return store


def assert_filled(entry: str) -> None:
    for heading in HEADINGS:
        assert heading in entry, heading
    assert "[FILL" not in entry
    assert "None" not in entry
    assert not re.search(r"\bnan\b", entry, re.I)
    for line in entry.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            assert all(cells), line


def test_entry_has_every_heading_and_nothing_unfilled(runs: Store, tmp_path: Path):
    entry = add_entry(runs, "a", "b", "Lower the bcrypt cost", "bcrypt dominates the CPU",
                      expected="p95 down by half", out=tmp_path / "log.md")
    assert_filled(entry)
    assert "**Expected impact:** p95 down by half" in entry
    assert "- Changed: BCRYPT_COST: 12 → 10" in entry
    assert "**Date:** 2026-01-01T10:00:00+00:00 (before) → 2026-01-01T10:05:00+00:00 (after)" in entry


def test_numbers_are_compare_runs_numbers(runs: Store):
    entry = render_entry(runs, "a", "b", "t", "h")
    cmp = compare_runs(runs, "a", "b")
    rows = {r["metric"]: r for r in cmp["metrics"]}
    p95 = rows["latency p95"]
    assert f"| p95 latency | {fmt_value(p95['a'], 'ms')} | {fmt_value(p95['b'], 'ms')} |" in entry
    assert fmt_value(p95["a"], "ms") == "53.70 ms" and fmt_value(p95["b"], "ms") == "161.1 ms"
    cpu = rows["service CPU p50"]
    assert f"| service CPU p50 | {fmt_value(cpu['a'], '% of a core')} | {fmt_value(cpu['b'], '% of a core')} |" in entry
    assert f"| downstream calls per request | 1.10 | 1.10 |" in entry
    impact = next(ln for ln in entry.splitlines() if ln.startswith("- latency p95:"))
    assert fmt_pct(p95["change_pct"]) == "+200.0 %"
    assert "(+200.0 %)" in impact
    assert "beyond noise" in impact and "worse" in impact
    lo, hi = p95["interval"]
    assert f"95 % interval of after − before: {fmt_value(lo, 'ms')} to {fmt_value(hi, 'ms')}" in impact


@pytest.mark.parametrize("before, after, verdict", [
    ("a", "b", "not confirmed"),   # b is the same requests ×3 slower: p95 (no signature: the target) worse
    ("b", "a", "confirmed"),       # and back
    ("a", "a", "not confirmed"),   # nothing moved
])
def test_verdict(runs: Store, before: str, after: str, verdict: str):
    entry = render_entry(runs, before, after, "t", "h")
    assert f"**Conclusion:** **{verdict}**" in entry
    assert_filled(entry)


def test_absent_numbers_say_why(store: Store, tmp_path: Path):
    # A user's runs: k6 files only, no manifest, no sampler, no profile.
    ingest_path(store, K6_SMALL, run_id="a")
    ingest_path(store, scaled_copy(K6_SMALL, tmp_path / "x3.ndjson", 3.0), run_id="b")
    entry = render_entry(store, "b", "a", "Faster", "because")
    assert_filled(entry)
    assert "| service CPU p50 | not measured: A: no service CPU samples (resource samples or a cpu_seconds role) in run b" in entry
    assert "- Changed: not recorded: run `b` and `a` has no manifest" in entry
    assert "top CPU frames: not measured (no CPU profile in run `b`)" in entry
    # Dates are the runs' own (the first k6 sample), not the time of writing.
    assert "**Date:** 2026-11-22T10:08:33.567150+00:00 (before)" in entry


def test_with_the_doctor_and_no_signature_the_headline_numbers_are_the_evidence(runs: Store):
    from perflab.analysis.signatures import diagnose as _diagnose

    def diagnose(store: Store, run: str) -> dict[str, Any]:
        return to_jsonable(_diagnose(Run.load(store, run)))

    # Run a: 60 % of a core, p95 54 ms, no waits, no profile: nothing for the doctor to find.
    assert [f["verdict"] for f in diagnose(runs, "a")["findings"] if f["verdict"] == "present"] == []
    entry = render_entry(runs, "a", "b", "t", "h")
    assert "the doctor finds no signature present" in entry
    assert "  - latency p95: 53.70 ms" in entry
    assert "The doctor found no signature in the before run" in entry


def test_adding_the_same_pair_replaces_its_entry(runs: Store, tmp_path: Path):
    log = tmp_path / "reports" / "optimization-log.md"
    first = add_entry(runs, "a", "b", "First title", "h1", out=log)
    add_entry(runs, "b", "a", "Other pair", "h2", out=log)
    again = add_entry(runs, "a", "b", "Second title", "h1 revised", out=log)
    text = log.read_text()
    assert text.startswith(optlog.LOG_HEADER)
    assert text.count("<!-- perflab-optlog a b -->") == 1
    assert text.count("<!-- perflab-optlog ") == 2
    assert "First title" not in text and "## Optimization #1: Second title" in again
    assert "## Optimization #2: Other pair" in text
    assert text.index("Second title") < text.index("Other pair")  # replaced in place
    assert first.replace("First title", "Second title").replace("h1", "h1 revised") == again


def test_rendering_is_deterministic(runs: Store):
    assert render_entry(runs, "a", "b", "t", "h") == render_entry(runs, "a", "b", "t", "h")


def test_entry_id_is_a_valid_html_comment():
    assert "--" not in optlog.entry_id("x--y", "a>b")


def test_cli_log_add(runs: Store, tmp_path: Path):
    path = runs.path
    runs.close()
    out = tmp_path / "log.md"
    res = run_cli("log", "add", "--before", "a", "--after", "b", "--title", "Cost 10",
                  "--hypothesis", "cheaper hashing", "--implementation", "lowered BCRYPT_COST",
                  "--out", str(out), store=path)
    assert res.returncode == 0, res.stderr
    assert "- Changed: lowered BCRYPT_COST" in res.stdout
    assert "- Settings that differ: BCRYPT_COST: 12 → 10" in res.stdout
    assert f"added entry #1 in {out}" in res.stdout
    assert out.read_text().count("## Optimization #1: Cost 10") == 1
    js = run_cli("log", "add", "--before", "a", "--after", "b", "--title", "Cost 10",
                 "--hypothesis", "cheaper hashing", "--out", str(out), "--json", store=path)
    body = json.loads(js.stdout)
    assert (body["number"], body["replaced"]) == (1, True)
    missing = run_cli("log", "add", "--before", "a", "--after", "b", "--title", "x", store=path)
    assert missing.returncode == 2 and "--hypothesis" in missing.stderr


# -- a real retry storm and its fix (tests/fixtures/runs) --------------------------------------

RUNS = Path(__file__).parents[1] / "fixtures" / "runs"


@pytest.fixture
def retry_storm(store: Store) -> tuple[Store, str, str]:
    return store, load_lab_run(store, RUNS / "retry-storm-default"), load_lab_run(store, RUNS / "retry-storm-fixed")


def test_the_retry_storm_fix_is_confirmed_on_downstream_calls_with_errors_unchanged(retry_storm):
    store, before, after = retry_storm
    entry = render_entry(store, before, after, "retry-storm: RETRY_POLICY=backoff", "immediate retries multiply load")
    assert_filled(entry)
    conclusion = next(ln for ln in entry.splitlines() if ln.startswith("**Conclusion:**"))
    assert conclusion.startswith("**Conclusion:** **confirmed**: the retry-storm hypothesis targets downstream "
                                 "calls per request, and it moved the hypothesised way beyond noise.")
    rows = {r["metric"]: r for r in compare_runs(store, before, after)["metrics"]}
    calls, errors, p95 = rows["downstream calls per request"], rows["error rate"], rows["latency p95"]
    # The service's own counters between their first and last scrape: 825 queries for 300
    # requests, then 325 for 294.
    assert (calls["a"], calls["b"]) == (825 / 300, 325 / 294)
    assert calls["interval"][1] < 0 and (calls["beyond_noise"], calls["direction"]) == (True, "better")
    assert "Downstream calls per request 2.75 → 1.11 (-59.8 %), better beyond noise." in conclusion
    # k6's counts: 105 of 300 failed, then 101 of 301; Newcombe's interval holds 0.
    assert (errors["test"]["failed_a"], errors["test"]["total_a"], errors["test"]["failed_b"],
            errors["test"]["total_b"]) == (105, 300, 101, 301)
    assert errors["interval"][0] < 0 < errors["interval"][1] and errors["beyond_noise"] is False
    assert "Error rate unchanged: 35 % → 33.55 % (-4.1 %), within noise." in conclusion
    # p95 is judged beside, on its own interval: far below zero, so not "within noise".
    assert p95["interval"][1] < 0 and "Latency p95 1,357 ms → 276.3 ms (-79.6 %), better beyond noise." in conclusion
    assert "The retry-storm signature is gone in the after run" in conclusion
    expected = next(ln for ln in entry.splitlines() if ln.startswith("**Expected impact:**"))
    assert "with RETRY_POLICY immediate → backoff" in expected and "toward 1" in expected
    assert "(derived from the doctor's evidence)" in expected and "not stated" not in expected


def test_a_fix_judged_against_the_wrong_run_is_not_confirmed(retry_storm):
    # The same pair backwards: the storm "after" the fix moves calls per request the wrong way.
    store, before, after = retry_storm
    entry = render_entry(store, after, before, "t", "h")
    assert "**Conclusion:** **confirmed**" not in entry
    # The fixed run has no signature: judged on p95, which got worse beyond noise.
    assert "**Conclusion:** **not confirmed**: the doctor found no signature in the before run, so the change " \
           "is judged on latency p95; latency p95 276.3 ms → 1,357 ms (+391.4 %), worse beyond noise." in entry


def test_cpu_per_request_is_the_services_cpu_over_k6s_requests_per_whole_second(retry_storm):
    store, before, after = retry_storm
    row = {r["metric"]: r for r in compare_runs(store, before, after)["metrics"]}["service CPU per request"]
    # The same sum written in SQL: the sampler's mean % of a core in each whole second × 10 ms,
    # over the requests k6 completed in those seconds (the partial first and last left out).
    oracle = store.sql(
        """WITH req AS (SELECT floor(time_ns / 1e9)::BIGINT AS s, count(*) AS n FROM k6_points
                        WHERE run_id = ? AND metric = 'http_req_duration' GROUP BY 1),
                lim AS (SELECT min(s) + 1 AS lo, max(s) - 1 AS hi FROM req),
                cpu AS (SELECT floor(epoch_us(t) / 1e6)::BIGINT AS s, 10 * avg(cpu_pct) AS ms FROM resource_samples
                        WHERE run_id = ? AND role = 'service' GROUP BY 1)
           SELECT sum(ms) / sum(coalesce(n, 0)) AS v FROM cpu LEFT JOIN req USING (s), lim
           WHERE s >= lo AND s < hi""", [before, before]).item()
    assert row["a"] == pytest.approx(oracle, rel=1e-12) and round(row["a"], 2) == 6.73
    assert round(row["b"], 2) == 3.60 and row["interval"][1] < 0 and row["beyond_noise"] is True
