"""`k6_summary` against k6's own numbers (the *.expected.json oracles), compared with ==.

Every metric and sub-metric field of every fixture run, from the NDJSON, the CSV, the
--summary-export and the handleSummary file; plus totals, checks and thresholds.
What a file cannot know is asserted as such:

* Counter ``rate`` needs the test-run duration, which only a summary file of the same run
  holds; from the samples alone it comes from their time span (close, not equal).
* Thresholds on sub-metrics appear only in summary files, not in the NDJSON Metric lines.
* The CSV prints values with 6 decimals: every built-in metric survives exactly, the custom
  ``payload_parse_ms`` (more decimals) does not, so it is checked to within the rounding.
* A summary-export has no ``contains``; custom metrics' ``contains`` is then unknown (None).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perflab.analysis.loadtest import (evaluate_threshold, k6_percentile, k6_points, k6_summary,
                                       k6_timeseries, sequential_sum)
from perflab.analysis.run import Run
from perflab.errors import PerflabError
from perflab.ingest import ingest_path
from perflab.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "k6"
# (NDJSON, the summary files of the same run)
RUNS = {
    "main_small": ("main_small.ndjson", ["main_small.summary.json"]),
    "main_kolkata": ("main_kolkata.ndjson.gz", ["main_kolkata.summary.json"]),
    "main_dropped": ("main_dropped.ndjson", ["main_dropped.summary.json"]),
    "summary_small": ("summary_small.ndjson", ["summary_small.summary.json", "summary_small.handle.json"]),
}
from tests.helpers import via_files

# The analyses read the store only; these tests hand them fixture files, ingested first.
k6_summary = via_files(k6_summary)
k6_points = via_files(k6_points)
k6_timeseries = via_files(k6_timeseries)
NOT_VALUES = {"ndjson_points", "submetric_of", "tags", "thresholds"}


def oracle(run: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{RUNS[run][0]}.expected.json").read_text())


def mismatches(want: dict[str, Any], got: dict[str, Any], skip: set[tuple[str, str]] = frozenset(),
               skip_fields: set[str] = frozenset()) -> list[str]:
    """Every (metric, field) of the oracle that differs, as readable lines (empty = all equal)."""
    out = []
    for name, fields in want["metrics"].items():
        if name not in got["metrics"]:
            out.append(f"{name}: missing")
            continue
        g = got["metrics"][name]
        for key, value in fields.items():
            if key in NOT_VALUES or key in skip_fields or (name, key) in skip:
                continue
            if g.get(key) != value:
                out.append(f"{name}.{key}: k6 {value!r} != {g.get(key)!r}")
        for expr, ok in fields.get("thresholds", {}).items():
            if (name, "thresholds") not in skip and g["thresholds"].get(expr) != ok:
                out.append(f"{name} threshold {expr}: k6 {ok} != {g['thresholds'].get(expr)}")
    return out


def counter_rates(want: dict[str, Any]) -> set[tuple[str, str]]:
    return {(n, "rate") for n, m in want["metrics"].items() if m["type"] == "counter"}


def ingest_run(store: Store, run: str, with_summaries: bool = True, run_id: str = "r") -> int:
    nd, summaries = RUNS[run]
    sid = ingest_path(store, FIXTURES / nd, run_id=run_id).source_id
    if with_summaries:
        for s in summaries:
            ingest_path(store, FIXTURES / s, run_id=run_id)
    return sid


# -- NDJSON ----------------------------------------------------------------------------------

@pytest.mark.parametrize("run", list(RUNS))
def test_ndjson_with_the_runs_summary_equals_k6_in_every_field(run: str, store: Store) -> None:
    # GIVEN the NDJSON and the summary file(s) of the same run, under one run id
    sid = ingest_run(store, run)
    want = oracle(run)
    # WHEN summarised from the samples
    got = k6_summary(store, sid)
    # THEN every value, type, contains and threshold of every metric and sub-metric is k6's
    assert mismatches(want, got) == []
    assert set(got["metrics"]) == set(want["metrics"])
    assert got["totals"] == want["totals"]
    assert got["checks"] == want["checks_by_path"]
    assert sorted(got["thresholds_crossed"]) == sorted(want["thresholds_crossed"])
    assert round(got["duration_s"] * 1000, 6) == round(want["test_run_duration_ms"], 6)
    if run == "summary_small":
        assert got["duration_source"].startswith("handleSummary state.testRunDurationMs")
    else:
        assert got["duration_source"].startswith("implied by")
    assert got["guessed_types"] == []


@pytest.mark.parametrize("run", list(RUNS))
def test_ndjson_alone_equals_k6_except_what_it_cannot_know(run: str, store: Store) -> None:
    sid = ingest_run(store, run, with_summaries=False)
    want = oracle(run)
    stats = ["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "p(99.9)", "count"]
    got = k6_summary(store, sid, trend_stats=stats)
    sub_thresholds = {(n, "thresholds") for n, m in want["metrics"].items() if "submetric_of" in m}
    assert mismatches(want, got, skip=counter_rates(want) | sub_thresholds) == []
    # Thresholds of parent metrics come from the Metric lines and are evaluated here.
    for name, m in want["metrics"].items():
        if "submetric_of" not in m and m.get("thresholds"):
            assert got["metrics"][name]["thresholds"] == m["thresholds"], name
    # Counter rates use the samples' span, shorter than k6's run: close, a little high, and said so.
    assert got["duration_source"].startswith("time span of the samples")
    for name, _ in counter_rates(want):
        k6_rate, ours = want["metrics"][name]["rate"], got["metrics"][name]["rate"]
        assert k6_rate <= ours <= k6_rate * 1.003, name


def test_a_summary_given_as_companion_works_without_a_run_id(store: Store) -> None:
    sid = ingest_path(store, FIXTURES / "summary_small.ndjson").source_id
    got = k6_summary(store, sid, companion=FIXTURES / "summary_small.handle.json")
    assert mismatches(oracle("summary_small"), got) == []
    assert got["companions"] == [2]


def test_a_path_is_ingested_first(store: Store) -> None:
    got = k6_summary(store, FIXTURES / "main_small.ndjson")
    assert got["metrics"]["http_req_duration"]["p(95)"] == oracle("main_small")["metrics"]["http_req_duration"]["p(95)"]
    assert store.con.execute("SELECT count(*) FROM sources").fetchall()[0][0] == 1


# -- CSV ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("run", ["main_small", "main_kolkata"])
def test_csv_with_the_runs_summary_export_equals_k6_for_every_builtin(run: str, store: Store) -> None:
    sid = ingest_path(store, FIXTURES / f"{run}.csv", run_id="r").source_id
    ingest_path(store, FIXTURES / f"{run}.summary.json", run_id="r")
    want = oracle(run)
    got = k6_summary(store, sid)
    custom = {n for n, m in want["metrics"].items() if not n.split("{")[0].startswith(("http_", "data_", "vus",
                                                                                      "iteration", "group_",
                                                                                      "checks"))}
    payload = {("payload_parse_ms", k) for k in want["metrics"]["payload_parse_ms"]}
    contains_unknown = {(n, "contains") for n in custom}
    assert mismatches(want, got, skip=payload | contains_unknown) == []
    assert all(got["metrics"][n]["contains"] is None for n in custom)
    assert got["totals"] == want["totals"] and got["checks"] == want["checks_by_path"]
    # payload_parse_ms has more than 6 decimals: within the rounding of %f, not equal.
    for key, value in want["metrics"]["payload_parse_ms"].items():
        if key not in NOT_VALUES | {"type", "contains", "count"}:
            assert got["metrics"]["payload_parse_ms"][key] != value
            assert abs(got["metrics"]["payload_parse_ms"][key] - value) <= 5e-7, key


def test_csv_with_the_runs_ndjson_takes_types_and_contains_from_its_metric_lines(store: Store) -> None:
    sid = ingest_path(store, FIXTURES / "main_kolkata.csv", run_id="k").source_id
    ingest_path(store, FIXTURES / "main_kolkata.ndjson.gz", run_id="k")
    ingest_path(store, FIXTURES / "main_kolkata.summary.json", run_id="k")
    want = oracle("main_kolkata")
    got = k6_summary(store, sid)
    payload = {("payload_parse_ms", k) for k in want["metrics"]["payload_parse_ms"] if k not in ("type", "contains",
                                                                                                "count")}
    assert mismatches(want, got, skip=payload) == []


def test_csv_alone_guesses_custom_types_and_says_so(store: Store) -> None:
    got = k6_summary(store, FIXTURES / "main_small.csv")
    assert sorted(got["guessed_types"]) == ["business_errors", "flaky_ok_rate", "payload_parse_ms", "queue_depth",
                                            "slow_server_sleep_ms"]
    want = oracle("main_small")["metrics"]
    for name in ("http_req_duration", "http_req_failed", "vus", "iteration_duration", "checks"):
        fields = {k: v for k, v in want[name].items() if k not in NOT_VALUES}
        assert {k: got["metrics"][name][k] for k in fields} == fields
    # Without Metric lines the expected_response sub-metric is unknown: only the metrics themselves.
    assert "http_req_duration{expected_response:true}" not in got["metrics"]


# -- summary files --------------------------------------------------------------------------------

@pytest.mark.parametrize(("run", "name"), [(r, s) for r, (_, ss) in RUNS.items() for s in ss])
def test_summary_file_gives_k6s_own_numbers_in_the_same_shape(run: str, name: str, store: Store) -> None:
    got = k6_summary(store, FIXTURES / name)
    want = oracle(run)
    unknown = {(n, "contains") for n, m in got["metrics"].items() if m["contains"] is None}
    if name.endswith(".handle.json"):
        assert unknown == set()
    assert mismatches(want, got, skip=unknown) == []
    assert set(got["metrics"]) == set(want["metrics"])
    assert got["totals"] == want["totals"]
    assert got["checks"] == want["checks_by_path"]
    assert round(got["duration_s"] * 1000, 6) == round(want["test_run_duration_ms"], 6)


def test_by_is_refused_for_a_summary_file(store: Store) -> None:
    with pytest.raises(PerflabError, match="--by needs the samples"):
        k6_summary(store, FIXTURES / "main_small.summary.json", by="status")


# -- --by -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("run", "by", "names"), [
    ("main_small", "endpoint", ["http_req_duration{endpoint:fast}", "slow_server_sleep_ms{endpoint:slow}"]),
    ("main_dropped", "scenario", ["http_req_duration{scenario:ramp}"]),
    ("summary_small", "journey", ["http_req_duration{journey:shop}", "http_req_failed{journey:browse}"]),
])
def test_by_groups_equal_k6s_submetrics_of_the_same_tag(run: str, by: str, names: list[str], store: Store) -> None:
    # GIVEN the NDJSON alone, whose Metric lines do not define the other groups of `by`
    sid = ingest_run(store, run, with_summaries=False)
    stats = ["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "p(99.9)", "count"]
    got = k6_summary(store, sid, by=by, trend_stats=stats)
    want = oracle(run)["metrics"]
    for name in names:
        fields = {k: v for k, v in want[name].items() if k not in NOT_VALUES}
        assert {k: got["metrics"][name].get(k) for k in fields} == fields, name
    # AND every value of the tag has its group, whose counts add up to the metric's own
    parent = names[0].split("{")[0]
    groups = [n for n in got["metrics"] if n.startswith(parent + "{" + by + ":")]
    tagged = store.con.execute(
        "SELECT count(*) FROM k6_points WHERE source_id = ? AND metric = ? AND json_extract_string(tags, ?) IS NOT NULL",
        [sid, parent, f"$.{by}"]).fetchall()[0][0]
    assert sum(got["metrics"][g]["count"] for g in groups) == tagged
    assert got["by"] == by


# -- k6's arithmetic on made-up samples -------------------------------------------------------------

def write_ndjson(path: Path, metric: str, mtype: str, samples: list[tuple[float, dict[str, str]]],
                 thresholds: list[str] | None = None, submetrics: list[dict[str, Any]] | None = None) -> Path:
    lines = [json.dumps({"type": "Metric", "data": {"name": metric, "type": mtype, "contains": "default",
                                                     "thresholds": thresholds or [], "submetrics": submetrics},
                         "metric": metric}, separators=(",", ":"))]
    for i, (value, tags) in enumerate(samples):
        lines.append(json.dumps({"metric": metric, "type": "Point", "data": {
            "time": f"2026-11-22T10:08:{33 + i // 1000:02d}.{i % 1000:03d}Z", "value": value, "tags": tags}},
            separators=(",", ":")))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_avg_is_the_sum_in_arrival_order(tmp_path: Path, store: Store) -> None:
    # 1e16 + 1 rounds back to 1e16 in float64, so the order of additions decides the sum:
    # in arrival order it is 1; a pairwise or exact sum gives 2.
    values = [1e16, 1.0, -1e16, 1.0]
    path = write_ndjson(tmp_path / "order.ndjson", "t", "trend", [(v, {}) for v in values])
    got = k6_summary(store, path)["metrics"]["t"]
    assert got["avg"] == 0.25
    assert math.fsum(values) / 4 == 0.5  # the exact mean, which k6 does not report
    assert sequential_sum(np.array(values)) == 1.0


def test_gauge_max_starts_at_zero_as_in_k6_v1_1_0(tmp_path: Path, store: Store) -> None:
    path = write_ndjson(tmp_path / "g.ndjson", "g", "gauge", [(-5.0, {}), (-2.0, {}), (-3.0, {})],
                        thresholds=["value<0", "max<0"])
    got = k6_summary(store, path)["metrics"]["g"]
    assert {k: got[k] for k in ("value", "min", "max")} == {"value": -3, "min": -5, "max": 0}
    assert got["thresholds"] == {"value<0": True, "max<0": False}


def test_rate_counts_every_nonzero_value_as_a_pass(tmp_path: Path, store: Store) -> None:
    path = write_ndjson(tmp_path / "r.ndjson", "r", "rate", [(1, {}), (0, {}), (2.5, {}), (-1, {}), (0, {})],
                        thresholds=["rate>=0.6", "rate<0.5"])
    got = k6_summary(store, path)["metrics"]["r"]
    assert {k: got[k] for k in ("rate", "passes", "fails")} == {"rate": 0.6, "passes": 3, "fails": 2}
    assert got["thresholds"] == {"rate>=0.6": True, "rate<0.5": False}


def test_a_submetric_with_two_pairs_and_one_without_samples(tmp_path: Path, store: Store) -> None:
    subs = [{"name": "t{a:1,b:2}", "suffix": "a:1,b:2", "tags": {"a": "1", "b": "2"}},
            {"name": "t{a:9}", "suffix": "a:9", "tags": {"a": "9"}}]
    samples = [(1.0, {"a": "1", "b": "2"}), (2.0, {"a": "1"}), (3.0, {"a": "1", "b": "2", "c": "x"}),
               (4.0, {"b": "2"})]
    path = write_ndjson(tmp_path / "s.ndjson", "t", "trend", samples, submetrics=subs)
    got = k6_summary(store, path)["metrics"]
    assert (got["t{a:1,b:2}"]["count"], got["t{a:1,b:2}"]["avg"], got["t{a:1,b:2}"]["max"]) == (2, 2, 3)
    # k6 reports an empty trend as zeros
    assert {k: got["t{a:9}"][k] for k in ("count", "avg", "min", "med", "max", "p(95)")} == dict.fromkeys(
        ("count", "avg", "min", "med", "max", "p(95)"), 0)


@pytest.mark.parametrize(("expr", "mtype", "stats", "passed"), [
    ("p(95)<2000", "trend", {"p(95)": 1999.9}, True),
    ("p(95) < 2000", "trend", {"p(95)": 2000.0}, False),
    ("rate<0.01", "rate", {"rate": 0.01}, False),
    ("rate<=0.01", "rate", {"rate": 0.01}, True),
    ("count<100000", "counter", {"count": 6.0}, True),
    ("value>=0", "gauge", {"value": 0.0}, True),
    ("med<100", "trend", {"med": 100.5}, False),
    ("avg<50", "trend", {"avg": 49.0}, True),
    ("max<5000", "trend", {"max": 5000.0}, False),
    ("min>0", "trend", {"min": 0.1}, True),
    ("count==3", "trend", {"count": 3.0}, True),
    ("count===3", "trend", {"count": 3.0}, True),
    ("count!=3", "trend", {"count": 3.0}, False),
    ("rate>1e-3", "rate", {"rate": 0.002}, True),
    ("p(99)<1", "counter", {"count": 1.0}, None),  # does not apply to a counter
    ("bogus", "trend", {}, None),
])
def test_threshold_expressions(expr: str, mtype: str, stats: dict[str, float], passed: bool | None) -> None:
    assert evaluate_threshold(expr, mtype, stats) is passed


def test_a_threshold_percentile_outside_the_trend_stats_is_computed(tmp_path: Path, store: Store) -> None:
    path = write_ndjson(tmp_path / "p.ndjson", "t", "trend", [(float(v), {}) for v in range(1, 101)],
                        thresholds=["p(99.9)<100", "p(10)>=10.9"])
    got = k6_summary(store, path)["metrics"]["t"]
    assert "p(99.9)" not in got
    # p(99.9) = 99 + (100 - 99) * 0.901 = 99.901; p(10) = 10 + 0.9 = 10.9
    assert got["thresholds"] == {"p(99.9)<100": True, "p(10)>=10.9": True}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), min_size=1, max_size=60),
       st.sampled_from([0.5, 0.9, 0.95, 0.99, 0.999, 0.0, 1.0, 0.123]))
def test_k6_percentile_is_polars_linear_quantile(values: list[float], pct: float) -> None:
    # FORMAT.md measured polars' linear quantile bit-exact with k6 on 555 real percentiles;
    # the two must agree on anything.
    ours = k6_percentile(np.sort(np.array(values)), pct)
    assert ours == pl.Series(values).quantile(pct, interpolation="linear")


# -- notebooks' helpers ----------------------------------------------------------------------------

def test_k6_points_has_one_column_per_tag_in_arrival_order(store: Store) -> None:
    df = k6_points(store, FIXTURES / "main_kolkata.ndjson.gz", metric="http_req_duration")
    assert len(df) == oracle("main_kolkata")["file"]["points_per_metric"]["http_req_duration"]
    assert df["seq"].is_sorted()
    assert {"time", "time_ns", "value", "status", "url", "scenario", "endpoint", "metadata"} <= set(df.columns)
    assert df.filter(pl.col("status") == "200")["value"].len() > 0
    assert set(df["metric"].unique()) == {"http_req_duration"}
    everything = k6_points(store, FIXTURES / "main_kolkata.ndjson.gz")
    assert len(everything) == oracle("main_kolkata")["file"]["point_lines"]


def test_k6_timeseries_adds_up_to_the_run(store: Store) -> None:
    sid = ingest_run(store, "main_small", run_id="small")
    ts = k6_timeseries(store, Run.load(store, "small").k6_point_sources, interval_s=1)
    want = oracle("main_small")
    assert ts["requests"].sum() == want["totals"]["http_reqs"]
    assert ts["elapsed_s"].to_list() == [float(i) for i in range(len(ts))]  # no missing interval
    assert (ts["rps"] == ts["requests"].cast(pl.Float64)).all()
    failed = want["metrics"]["http_req_failed"]
    weighted = (ts["error_rate"].fill_null(0) * ts["requests"]).sum()
    assert round(weighted) == failed["passes"]
    # Each interval's p95 is k6's percentile of that interval's durations.
    pts = k6_points(store, sid, metric="http_req_duration")
    t0 = store.con.execute("SELECT min(time_ns) FROM k6_points WHERE source_id = ?", [sid]).fetchall()[0][0]
    for i in range(len(ts)):
        vals = pts.filter(((pl.col("time_ns") - t0) // 1_000_000_000) == i)["value"].to_numpy()
        if len(vals):
            assert ts["p95_ms"][i] == k6_percentile(np.sort(vals), 0.95)
        else:
            assert ts["p95_ms"][i] is None
    # the same by source id, and over 2-second intervals
    assert k6_timeseries(store, sid)["requests"].to_list() == ts["requests"].to_list()
    assert k6_timeseries(store, sid, interval_s=2)["requests"].sum() == want["totals"]["http_reqs"]


def test_points_stored_out_of_order_give_the_same_summary(tmp_path: Path) -> None:
    # The summary reads points in storage order when `seq` increases along it (ingest inserts
    # in file order) and sorts by seq otherwise: both must give k6's numbers.
    store = Store(tmp_path / "s.duckdb")
    sid = ingest_path(store, FIXTURES / "main_small.ndjson").source_id
    in_order = k6_summary(store, sid, by="status")
    with store.transaction():
        store.con.execute("CREATE TEMP TABLE shuffled AS SELECT * FROM k6_points ORDER BY hash(seq)")
        store.con.execute("DELETE FROM k6_points")
        store.con.execute("INSERT INTO k6_points SELECT * FROM shuffled")
    seqs = [r[0] for r in store.con.execute("SELECT seq FROM k6_points").fetchall()]
    assert seqs != sorted(seqs)  # really out of order now
    assert k6_summary(store, sid, by="status") == in_order
    oracle = json.loads((FIXTURES / "main_small.ndjson.expected.json").read_text())["metrics"]
    assert k6_summary(store, sid)["metrics"]["http_req_duration"]["p(95)"] == oracle["http_req_duration"]["p(95)"]
    store.close()
