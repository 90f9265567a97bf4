"""perflab.analysis.compare: before/after with noise, on real k6 files and synthetic lab samples.

GIVEN k6's own NDJSON (main_small) as run "a" and a copy whose request latencies are ×3
(written in k6's format) as run "b", WHEN they are compared, THEN the numbers are k6's and
the change is beyond noise; the same run against itself changes nothing.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from perflab.analysis import compare
from perflab.analysis.run import Run
from perflab.jsonable import to_jsonable
from perflab.analysis import noise
from perflab.analysis.compare import bootstrap_diff, mann_whitney, profile_diff
from perflab.analysis.loadtest import k6_points, k6_summary
from perflab.analysis.profiles import top_frame
from perflab.errors import PerflabError
from perflab.ingest import ingest_path
from perflab.store import Store
from tests.helpers import run_cli
from tests.helpers import via_files

# The analyses read the store only; these tests hand them fixture files, ingested first.
profile_diff = via_files(profile_diff)


def compare_runs(store: Store, a: str, b: str, **options: Any) -> dict[str, Any]:
    """The comparison of two runs by id, as its JSON (the shape `perflab compare --json` prints)."""
    return to_jsonable(compare.compare_runs(Run.load(store, a), Run.load(store, b), **options))
top_frame = via_files(top_frame)

FIXTURES = Path(__file__).parents[1] / "fixtures"
K6_SMALL = FIXTURES / "k6" / "main_small.ndjson"
CPU_PPROF = FIXTURES / "pprof" / "generated" / "small_loginstorm.cpu.pb.gz"
GO_CPU_PPROF = FIXTURES / "pprof" / "public" / "google-pprof" / "converted" / "gobench.cpu.pb.gz"
# k6 v1.1.0's own summary of main_small (main_small.summary.json): the oracle.
K6_P95 = 53.6990446
K6_COUNT = 153


def scaled_copy(src: Path, dst: Path, factor: float, metric: str = "http_req_duration") -> Path:
    """k6's NDJSON with one metric's values multiplied; key order and compact JSON kept."""
    with open(src) as fh, open(dst, "w") as out:
        for line in fh:
            obj = json.loads(line)
            if obj["type"] == "Point" and obj["metric"] == metric:
                obj["data"]["value"] = obj["data"]["value"] * factor
            out.write(json.dumps(obj, separators=(",", ":")) + "\n")
    return dst


def lab_samples(store: Store, tmp: Path, run: str, cpu_mean: float, seed: int, samples: int = 40,
                waiting: float = 0.0, queries: int = 100, requests: int = 100) -> None:
    """Synthetic lab files (the sampler's JSONL format) for one run, from a seeded generator."""
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    # The run in the header keeps two runs' files distinct (the store de-duplicates by content).
    res = [json.dumps({"perflab": "resources", "version": 1, "interval_s": 0.25, "cpu_count": 2, "run": run})]
    var = [json.dumps({"perflab": "service-vars", "version": 1, "run": run})]
    for i in range(samples):
        t = (t0 + timedelta(seconds=0.25 * i)).isoformat()
        cpu = float(np.clip(rng.normal(cpu_mean, 8), 0, 200))
        other = 20.0
        for role, c, rss in (("service", cpu, 70_000_000 + 1000 * i), ("postgres", 5.0, 100_000_000),
                             ("k6", 2.0, 40_000_000), ("host", cpu + 7.0 + other, 1_000_000_000)):
            res.append(json.dumps({"role": role, "processes": 1, "cpu_pct": c, "rss_bytes": rss, "threads": 4,
                                   "ctx_voluntary": 0, "ctx_involuntary": 0, "t": t, "elapsed_s": 0.25 * i}))
        var.append(json.dumps({"t": t, "elapsed_s": 0.25 * i, "key": "gauges.db_waiting_tasks",
                               "value": float(rng.poisson(waiting))}))
        var.append(json.dumps({"t": t, "elapsed_s": 0.25 * i, "key": "counters.db_queries",
                               "value": float(queries * i // (samples - 1))}))
        var.append(json.dumps({"t": t, "elapsed_s": 0.25 * i, "key": "counters.requests_total",
                               "value": float(requests * i // (samples - 1))}))
    (tmp / f"{run}.resources.jsonl").write_text("\n".join(res) + "\n")
    (tmp / f"{run}.vars.jsonl").write_text("\n".join(var) + "\n")
    ingest_path(store, tmp / f"{run}.resources.jsonl", run_id=run)
    ingest_path(store, tmp / f"{run}.vars.jsonl", run_id=run)


@pytest.fixture
def two_runs(store: Store, tmp_path: Path) -> Store:
    """run a = main_small; run b = the same requests 3× slower."""
    ingest_path(store, K6_SMALL, run_id="a")
    ingest_path(store, scaled_copy(K6_SMALL, tmp_path / "x3.ndjson", 3.0), run_id="b")
    return store


@pytest.fixture
def lab_runs(two_runs: Store, tmp_path: Path) -> Store:
    """Runs a and b with the sampler's files too: b burns far less CPU, waits the same."""
    lab_samples(two_runs, tmp_path, "a", cpu_mean=180.0, seed=1, waiting=2.0, queries=250, requests=100)
    lab_samples(two_runs, tmp_path, "b", cpu_mean=60.0, seed=2, waiting=2.0, queries=110, requests=100)
    return two_runs


def _row(result: dict, metric: str) -> dict:
    return next(r for r in result["metrics"] if r["metric"] == metric)


# -- latency ------------------------------------------------------------------------------------

def test_latency_numbers_are_k6s_own(two_runs: Store):
    result = compare_runs(two_runs, "a", "b")
    overall = result["latency"]["overall"]
    assert overall["a"]["p95"] == K6_P95
    assert overall["a"]["count"] == K6_COUNT
    summary_b = k6_summary(two_runs, result["k6_sources"]["b"])["metrics"]["http_req_duration"]
    assert overall["b"]["p95"] == summary_b["p(95)"]
    assert overall["b"]["p50"] == summary_b["med"]
    assert overall["b"]["p99"] == summary_b["p(99)"]
    assert overall["b"]["mean"] == summary_b["avg"]


def test_three_times_slower_is_beyond_noise(two_runs: Store):
    result = compare_runs(two_runs, "a", "b")
    overall = result["latency"]["overall"]
    assert overall["b"]["p95"] == pytest.approx(3 * K6_P95, rel=1e-12)
    assert overall["change"]["p95"]["pct"] == pytest.approx(200.0, rel=1e-9)
    assert overall["mann_whitney"]["p_value"] < 0.01  # context: the distributions differ
    lo, hi = overall["ci"]["p95"]
    assert 0 < lo < 2 * K6_P95 < hi  # the true difference (2 × p95) lies inside, 0 does not
    assert overall["beyond_noise"] is True
    p95 = _row(result, "latency p95")
    assert (p95["beyond_noise"], p95["direction"]) == (True, "worse")
    assert p95["interval"] == [lo, hi]  # the row is judged on the group's own interval
    # A slower B: most random B requests are slower than a random A request.
    assert overall["mann_whitney"]["effect_size"] > 0.7


def test_a_run_against_itself_changes_nothing(two_runs: Store):
    result = compare_runs(two_runs, "a", "a")
    overall = result["latency"]["overall"]
    assert overall["change"]["p95"] == {"abs": 0.0, "pct": 0.0}
    assert overall["mann_whitney"]["p_value"] == 1.0
    assert overall["mann_whitney"]["effect_size"] == 0.5
    assert overall["beyond_noise"] is False
    lo, hi = overall["ci"]["p95"]
    assert lo < 0 < hi
    for row in result["metrics"]:
        if row["a"] is not None:
            assert row["change"] == 0, row
            assert row["beyond_noise"] in (False, None), row


def test_mann_whitney_is_scipys_on_the_same_requests(two_runs: Store):
    result = compare_runs(two_runs, "a", "b")
    a = k6_points(two_runs, result["k6_sources"]["a"], metric="http_req_duration")["value"].to_numpy()
    b = k6_points(two_runs, result["k6_sources"]["b"], metric="http_req_duration")["value"].to_numpy()
    ref = stats.mannwhitneyu(b, a, alternative="two-sided")
    mw = result["latency"]["overall"]["mann_whitney"]
    assert mw["p_value"] == float(ref.pvalue)
    assert mw["u"] == float(ref.statistic)
    assert mw["effect_size"] == float(ref.statistic) / (len(a) * len(b))


def test_endpoints_are_tested_only_with_enough_requests(two_runs: Store):
    eps = compare_runs(two_runs, "a", "b")["latency"]["endpoints"]
    # main_small: fast 39, flaky 37, cpu 20, missing 20, slow 17, echo 17, timeout 2, refused 1.
    assert {k: g["a"]["count"] for k, g in eps.items()} == {
        "cpu": 20, "echo": 17, "fast": 39, "flaky": 37, "missing": 20, "refused": 1, "slow": 17, "timeout": 2}
    assert eps["fast"]["beyond_noise"] is True
    assert eps["fast"]["a"]["p95"] == k6_summary(two_runs, Run.load(two_runs, "a").k6_source, by="endpoint")[
        "metrics"]["http_req_duration{endpoint:fast}"]["p(95)"]
    assert eps["slow"]["beyond_noise"] is None
    assert "fewer than 20 requests" in eps["slow"]["note"]


def test_error_rate_has_newcombes_interval_on_k6_counts(two_runs: Store):
    row = _row(compare_runs(two_runs, "a", "b"), "error rate")
    # main_small.summary.json: http_req_failed passes 27 (failed requests) of 153.
    assert row["a"] == pytest.approx(100 * 27 / 153)
    assert (row["test"]["failed_a"], row["test"]["total_a"]) == (27, 153)
    lo, hi = noise.newcombe_diff(27, 153, 27, 153)
    assert row["interval"] == [100 * lo, 100 * hi] and lo < 0 < hi
    assert row["beyond_noise"] is False


# -- the bootstrap ------------------------------------------------------------------------------

def test_bootstrap_is_deterministic_and_seeded():
    rng = np.random.default_rng(7)
    a = rng.lognormal(3, 0.5, 800)
    b = rng.lognormal(3, 0.5, 900) + 5
    first = bootstrap_diff(a, b, (0.5, 0.95, None))
    assert first == bootstrap_diff(a, b, (0.5, 0.95, None))
    assert first != bootstrap_diff(a, b, (0.5, 0.95, None), seed=compare.BOOTSTRAP_SEED + 1)
    # The intervals cover the observed differences of the statistics.
    for (lo, hi), observed in zip(first, (np.quantile(b, 0.5) - np.quantile(a, 0.5),
                                          np.quantile(b, 0.95) - np.quantile(a, 0.95), b.mean() - a.mean())):
        assert lo < observed < hi


def test_bootstrap_caps_the_sample_and_finds_a_known_shift(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(noise, "BOOTSTRAP_MAX_N", 1000)
    rng = np.random.default_rng(11)
    a = rng.normal(100, 10, 20_000)
    b = rng.normal(100, 10, 20_000) + 30
    ((lo, hi),) = bootstrap_diff(a, b, (0.95,))
    assert lo < 30 < hi
    assert lo > 0
    # With 20 times fewer values the interval is wider (all 20,000 give one about 0.8 wide).
    assert hi - lo > 2


def test_mann_whitney_effect_size_direction():
    a = np.arange(50, dtype=float)
    assert mann_whitney(a, a + 100)["effect_size"] == 1.0
    assert mann_whitney(a, a - 100)["effect_size"] == 0.0


# -- lab samples --------------------------------------------------------------------------------

def test_cpu_waiting_queries_and_context_rows(lab_runs: Store):
    result = compare_runs(lab_runs, "a", "b")
    cpu = _row(result, "service CPU p50")
    a = lab_runs.sql("SELECT cpu_pct FROM resource_samples WHERE run_id='a' AND role='service' ORDER BY t")
    b = lab_runs.sql("SELECT cpu_pct FROM resource_samples WHERE run_id='b' AND role='service' ORDER BY t")
    assert cpu["a"] == float(np.median(a["cpu_pct"].to_numpy()))
    assert cpu["b"] == float(np.median(b["cpu_pct"].to_numpy()))
    lo, hi = cpu["interval"]
    assert lo < cpu["b"] - cpu["a"] < hi < 0  # 60 % against 180 %: the whole interval is lower
    assert cpu["interval"] == list(noise.series_diff(a["cpu_pct"].to_numpy(), b["cpu_pct"].to_numpy(), 0.5))
    assert (cpu["beyond_noise"], cpu["direction"]) == (True, "better")
    waiting = _row(result, "waiting tasks p50")
    assert waiting["beyond_noise"] is False  # the same Poisson(2) in both runs
    top = _row(result, "waiting tasks max")
    assert top["beyond_noise"] is None and "a maximum has no interval" in top["note"]
    queries = _row(result, "downstream calls per request")
    assert (queries["a"], queries["b"]) == (2.5, 1.1)
    # 39 scrapes of both counters per run: an interval on the ratio, all of it below 0.
    qlo, qhi = queries["interval"]
    assert qlo < -1.4 < qhi < 0 and queries["test"]["n_a"] == 39
    assert (queries["beyond_noise"], queries["direction"]) == (True, "better")
    other = _row(result, "other CPU on the host p50")
    assert other["a"] == pytest.approx(20.0) and other["b"] == pytest.approx(20.0)
    assert other["better"] is None


def test_absent_data_is_named_not_guessed(two_runs: Store):
    result = compare_runs(two_runs, "a", "b")
    cpu = _row(result, "service CPU p50")
    assert cpu["a"] is None and cpu["beyond_noise"] is None
    assert "no service CPU samples (resource samples or a cpu_seconds role) in run a" in cpu["note"]
    assert result["profile"]["rows"] == [] and "no CPU profile" in result["profile"]["note"]


def test_unknown_run_is_a_user_error(two_runs: Store):
    with pytest.raises(PerflabError, match="no run 'zzz'"):
        compare_runs(two_runs, "a", "zzz")


def test_user_run_started_at_is_the_first_k6_sample(two_runs: Store):
    result = compare_runs(two_runs, "a", "b")
    assert result["a"]["started_at"] == "2026-11-22T10:08:33.567150+00:00"


# -- profiles -----------------------------------------------------------------------------------

def test_profile_diff_against_itself_is_all_zero(store: Store):
    df = profile_diff(store, CPU_PPROF, CPU_PPROF, limit=0)
    top = top_frame(store, CPU_PPROF)
    assert df.height == top.height
    assert df["flat_delta"].abs().max() == 0 and df["cum_delta"].abs().max() == 0


def test_profile_diff_shares_are_each_profiles_own(store: Store):
    full = profile_diff(store, CPU_PPROF, GO_CPU_PPROF, limit=0)
    ta = {r["name"]: r for r in top_frame(store, CPU_PPROF).to_dicts()}
    tb = {r["name"]: r for r in top_frame(store, GO_CPU_PPROF).to_dicts()}
    assert set(full["name"]) == set(ta) | set(tb)
    for r in full.to_dicts():
        assert r["flat_pct_a"] == (ta[r["name"]]["flat_pct"] if r["name"] in ta else 0.0)
        assert r["cum_pct_b"] == (tb[r["name"]]["cum_pct"] if r["name"] in tb else 0.0)
        assert r["flat_pct_delta"] == r["flat_pct_b"] - r["flat_pct_a"]
        assert r["raw_flat_a"] == (ta[r["name"]]["flat"] if r["name"] in ta else 0)
        assert r["flat_delta"] == r["flat_b"] - r["flat_a"]
    deltas = full["flat_delta"].abs().to_list()
    assert deltas == sorted(deltas, reverse=True)
    capped = profile_diff(store, CPU_PPROF, GO_CPU_PPROF)
    assert capped.height == compare.PROFILE_DIFF_LIMIT
    assert capped.to_dicts() == full.head(compare.PROFILE_DIFF_LIMIT).to_dicts()
    assert capped.columns[:7] == ["name", "flat_a", "flat_b", "flat_delta", "cum_a", "cum_b", "cum_delta"]


# -- the command --------------------------------------------------------------------------------

def test_cli_table_and_json(two_runs: Store):
    path = two_runs.path
    two_runs.close()
    res = run_cli("compare", "a", "b", store=path)
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("latency p95"))
    assert "53.70" in line and "161.1" in line and "+200.0 %" in line and "yes (worse)" in line
    assert "metric" in res.stdout and "beyond noise" in res.stdout
    js = run_cli("compare", "a", "b", "--json", store=path)
    assert js.returncode == 0, js.stderr
    out = json.loads(js.stdout)
    assert out["latency"]["overall"]["a"]["p95"] == K6_P95
    assert out["latency"]["overall"]["beyond_noise"] is True
    bad = run_cli("compare", "a", "nope", store=path)
    assert bad.returncode == 2 and bad.stderr.startswith("perflab: no run 'nope'")
    assert "Traceback" not in bad.stderr
