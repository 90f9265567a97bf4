"""`perflab report`: the load-test report of a synthetic run built from real-format files.

GIVEN one run id holding k6's main_small NDJSON and its summary, a Go CPU and heap
profile, two pg_stat_statements snapshots, and resource and /debug/vars samples written
here in the lab sampler's format with known values,
WHEN the report is written,
THEN its numbers are the analyses' numbers (k6's p95, `perflab top`'s first row, the
capacity arithmetic, the alerts) and nothing is left unfilled.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from perflab.analysis.run import Run
from perflab.jsonable import to_jsonable
from perflab.analysis.loadtest import k6_summary
from perflab.ingest import ingest_path
from perflab.report import loadtest_report
from perflab.store import Store


def write_report(store: Store, run_id: str, **options: Any) -> dict[str, Any]:
    """`perflab report RUN --json`'s answer: the paths written and the report."""
    return to_jsonable(loadtest_report.write_report(Run.load(store, run_id), **options))


def steady_window(store: Store, run_id: str) -> dict[str, float]:
    w = Run.load(store, run_id).window
    assert w is not None
    return {"start_s": w.start_s, "end_s": w.end_s}
from tests.conftest import FIXTURES
from tests.helpers import run_cli

RUN = "synthetic-login"
# An earlier run of the same scenario (k6's main_dropped files, nothing else): the baseline.
PREVIOUS = "synthetic-login-before"
SCENARIO = "synthetic"
PREVIOUS_FILES = ("k6/main_dropped.ndjson", "k6/main_dropped.summary.json")
# The k6 fixture's first sample is at 10:08:33.567 UTC and its last at 10:08:43.838.
T0 = datetime(2026, 11, 22, 10, 8, 33, 500000, tzinfo=timezone.utc)
STEP_S = 0.5
SAMPLES = 23  # 0 .. 11 s
SERVICE_CPU = 50.0  # % of one core, constant: the mean is exactly this
SERVICE_RSS = 100 * 1024 * 1024
CORES = 2
POOL_SIZE = 10.0
# checked-out connections per sample index: 9 of 10 (> 80 %) at samples 10-12 (5.0-6.0 s),
# exactly 8 (= 80 %, must not fire) at sample 14, else 5.
POOL_ABOVE = {10: 9.0, 11: 9.0, 12: 9.0}
POOL_AT_THRESHOLD = {14: 8.0}
BUFFER_LIMIT = 1000.0
BUFFER_PEAK = 700.0  # 70 % of the limit: BufferSizeHigh must not fire
BUFFER_PEAK_SAMPLE = 8

K6_FILES = ("k6/main_small.ndjson", "k6/main_small.summary.json")
PROFILE_FILES = ("pprof/generated/small_loginstorm.cpu.pb.gz", "pprof/generated/small_loginstorm.heap.pb.gz")
PG_FILES = ("pg/pg_stat_statements_before.csv", "pg/pg_stat_statements_after.csv")


def _when(i: int) -> str:
    return (T0 + timedelta(seconds=i * STEP_S)).isoformat()


def write_resources(path: Path) -> None:
    lines = [json.dumps({"perflab": "resources", "version": 1, "interval_s": STEP_S, "cpu_count": CORES,
                         "host": "test"})]
    for i in range(SAMPLES):
        for role, cpu, rss in (("service", SERVICE_CPU, SERVICE_RSS), ("postgres", 10.0, 50 * 2**20),
                               ("k6", 5.0, 80 * 2**20), ("host", 80.0, 4 * 2**30)):
            lines.append(json.dumps({
                "t": _when(i), "elapsed_s": i * STEP_S, "role": role, "processes": 1,
                "cpu_pct": None if i == 0 else cpu, "rss_bytes": rss, "threads": 4,
                "ctx_voluntary": 0, "ctx_involuntary": 0}))
    path.write_text("\n".join(lines) + "\n")


def write_vars(path: Path) -> None:
    lines = [json.dumps({"perflab": "service-vars", "version": 1, "url": "http://127.0.0.1/debug/vars"})]
    for i in range(SAMPLES):
        values = {
            "gauges.pool_size": POOL_SIZE,
            "gauges.pool_checked_out": POOL_ABOVE.get(i, POOL_AT_THRESHOLD.get(i, 5.0)),
            "gauges.buffer_depth": BUFFER_PEAK if i == BUFFER_PEAK_SAMPLE else 10.0,
            "settings.buffer_limit": BUFFER_LIMIT,
            "gauges.in_flight_requests": 3.0,
            "gauges.db_waiting_tasks": 0.0,
            "counters.requests_total": 15.0 * i,
            "counters.db_queries": 30.0 * i,
        }
        lines += [json.dumps({"t": _when(i), "elapsed_s": i * STEP_S, "key": k, "value": v})
                  for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("report")
    write_resources(tmp / "resources.jsonl")
    write_vars(tmp / "vars.jsonl")
    store_path = tmp / "store.duckdb"
    store = Store(store_path)
    ids = {}
    for rel in PREVIOUS_FILES:
        ids[rel] = ingest_path(store, FIXTURES / rel, run_id=PREVIOUS).source_id
    store.ensure_run(PREVIOUS, scenario=SCENARIO, variant="default", status="complete")
    for rel in (*K6_FILES, *PROFILE_FILES, *PG_FILES):
        ids[rel] = ingest_path(store, FIXTURES / rel, run_id=RUN).source_id
    for name in ("resources.jsonl", "vars.jsonl"):
        ingest_path(store, tmp / name, run_id=RUN)
    store.ensure_run(RUN, scenario=SCENARIO, variant="default", status="complete")
    summary = k6_summary(store, ids[K6_FILES[0]])
    previous_summary = k6_summary(store, ids[PREVIOUS_FILES[0]])
    window = steady_window(store, RUN)
    result = write_report(store, RUN, out_dir=tmp / "out")
    # An independent count of the window's requests, for the capacity arithmetic.
    n = store.sql("SELECT sum(value) AS n FROM k6_points WHERE source_id = ? AND metric = 'http_reqs' "
                  "AND time_ns / 1e9 BETWEEN ? AND ?",
                  [ids[K6_FILES[0]], window["start_s"], window["end_s"]])["n"][0]
    store.close()
    return {"tmp": tmp, "store_path": store_path, "ids": ids, "summary": summary, "previous_summary": previous_summary, "window": window,
            "result": result, "md": Path(result["markdown"]).read_text(), "html": Path(result["html"]).read_text(),
            "window_requests": float(n)}


def _table_row(md: str, first_cell: str) -> list[str]:
    for line in md.splitlines():
        if line.startswith("| ") and line[2:].startswith(first_cell + " |"):
            return [c.strip() for c in line.strip("|").split(" | ")]
    raise AssertionError(f"no table row starting with {first_cell!r}")


def _section(md: str, heading: str) -> str:
    start = md.index(heading)
    nxt = re.search(r"^#{1,3} ", md[start + len(heading):], flags=re.M)
    return md[start: start + len(heading) + (nxt.start() if nxt else len(md))]


def test_files_are_written_where_asked(built):
    folder = built["tmp"] / "out" / RUN
    assert built["result"]["markdown"] == str(folder / "report.md")
    assert built["result"]["html"] == str(folder / "report.html")
    assert built["md"].startswith(f"# Load test analysis: {RUN}\n")


@pytest.mark.parametrize("doc", ["md", "html"])
def test_nothing_is_left_unfilled(built, doc):
    text = built[doc]
    if doc == "html":
        # plotly.js itself is not the report's text: check what perflab wrote around it.
        text = re.sub(r"<script[^>]*>.*?</script>", "", text, flags=re.S)
    assert "[FILL" not in text
    assert not re.search(r"\bNone\b", text)
    assert not re.search(r"\bnan\b", text, flags=re.I)
    assert not re.search(r"\binf\b", text)


def test_overall_p95_and_counts_are_k6s(built):
    m = built["summary"]["metrics"]
    row = _table_row(built["md"], "**overall**")
    assert row[1] == f"{int(m['http_reqs']['count']):,}"
    assert row[2] == f"{m['http_reqs']['rate']:,.2f}"
    assert row[3] == f"{m['http_req_duration']['med']:.2f} ms"
    assert row[5] == f"{m['http_req_duration']['p(95)']:.2f} ms"
    assert row[5] == "53.70 ms"  # k6's own summary of this fixture says p(95)=53.6990446
    assert row[6] == f"{m['http_req_duration']['p(99)']:.2f} ms"
    assert row[7] == f"{m['http_req_duration']['max']:.2f} ms"
    assert row[8] == f"{100 * m['http_req_failed']['rate']:.2f} %"


def test_endpoint_rows_are_k6s_submetrics(built):
    store = Store(built["store_path"], read_only=True)
    try:
        by = k6_summary(store, built["ids"][K6_FILES[0]], by="endpoint")["metrics"]
    finally:
        store.close()
    for ep in ("fast", "slow", "timeout"):
        row = _table_row(built["md"], f"`{ep}`")
        assert row[5] == f"{by['http_req_duration{endpoint:' + ep + '}']['p(95)']:.2f} ms"
        assert row[1] == f"{int(by['http_reqs{endpoint:' + ep + '}']['count'])}"
    assert _table_row(built["md"], "`slow`")[5] == "77.03 ms"


def test_errors_dropped_and_checks(built):
    md = built["md"]
    assert "- **Error rate:** 17.65 % (27 failed)" in md
    assert "- **Dropped iterations:** 0" in md
    assert "- **Checks:** 169 passed, 35 failed" in md
    assert _table_row(md, "browse::details::slow: under 50ms") == ["browse::details::slow: under 50ms", "8", "9"]


def test_resource_usage_is_the_samples(built):
    sec = _section(built["md"], "### Resource usage")
    assert _table_row(sec, "service")[2:7] == ["50.0 %", "50.0 %", "50.0 %", "100.0 MiB", "100.0 MiB"]
    assert _table_row(sec, "postgres")[2:5] == ["10.0 %", "10.0 %", "10.0 %"]
    assert _table_row(sec, "host")[2:5] == ["80.0 %", "80.0 %", "80.0 %"]
    assert "(2 cores = 200 %)" in sec


def test_top_cpu_row_is_perflab_tops_first_row(built):
    out = run_cli("top", str(built["ids"][PROFILE_FILES[0]]), "--json", store=built["store_path"])
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout)["rows"][0]
    sec = _section(built["md"], "### CPU profile analysis")
    row = _table_row(sec, "1")
    assert row == ["1", f"`{first['name']}`", f"{first['flat'] / 1e9:.2f} s", f"{first['flat_pct']:.2f} %",
                   f"{first['cum'] / 1e9:.2f} s", f"{first['cum_pct']:.2f} %"]
    assert first["name"] == "crypto/sha256.block"
    assert "**Top 10 by cum:**" in sec
    assert "`main.(*authServer).handleLogin` | 0.00 s | 0.00 % | 2.13 s | 99.07 %" in sec
    assert "hashing 94.4 % (`crypto/sha256.block`)" in sec


def test_heap_profile_top_allocations(built):
    sec = _section(built["md"], "### Memory profile analysis")
    assert "inuse space 2.64 MiB; alloc space 23.61 MiB" in sec
    assert _table_row(sec, "1") == ["1", "`bytes.growSlice`", "1.07 MiB", "40.49 %", "1.07 MiB", "40.49 %"]


def test_capacity_arithmetic(built):
    w = built["window"]
    rps = built["window_requests"] / (w["end_s"] - w["start_s"])
    per_core = rps / (SERVICE_CPU / 100)
    cpu_limit = per_core * CORES
    # Little's law over the window's pool samples: connections held per request = mean in use / rps.
    in_use = [POOL_ABOVE.get(i, POOL_AT_THRESHOLD.get(i, 5.0)) for i in range(SAMPLES)
              if w["start_s"] <= (T0 + timedelta(seconds=i * STEP_S)).timestamp() <= w["end_s"]]
    hold_s = sum(in_use) / len(in_use) / rps
    pool_limit = POOL_SIZE / hold_s
    assert pool_limit < cpu_limit  # the pool (10, about half in use) comes before 2 cores at 50 %
    replica = pool_limit * 0.7
    target = 10 * rps
    cap = built["result"]["report"]["capacity"]
    assert cap["rps_per_core"] == pytest.approx(per_core, rel=1e-12)
    assert cap["limited_by"] == "pool"
    assert [(lim["resource"], lim["rps"]) for lim in cap["limits"]] == [
        ("pool", pytest.approx(pool_limit, rel=1e-9)), ("cpu", pytest.approx(cpu_limit, rel=1e-12)),
        ("database", pytest.approx(rps * CORES * 100 / 10.0, rel=1e-12))]
    assert cap["replica_rps"] == pytest.approx(replica, rel=1e-9)
    assert cap["replicas"] == math.ceil(target / replica)
    sec = _section(built["md"], "### Current capacity")
    assert f"**Requests/s per core:** {per_core:,.2f} (= {rps:,.2f} / (50.0 / 100))" in sec
    assert f"**One replica** (≤ 70% of the connection pool, the limit reached first): {replica:,.2f} req/s" in sec
    assert _table_row(sec, "**the connection pool**")[3] == f"{100 * rps / pool_limit:.0f} %"
    assert "Not saturated: service CPU p50 50.0 % is below 80% of the 2 cores (160 %)" in built["md"]
    assert f"**Replicas of this size:** {math.ceil(target / replica)}" in built["md"]


def test_each_alert_fires_exactly_when_its_series_crosses(built):
    results = {r["rule"]: r for r in built["result"]["report"]["alerts"]["results"]}
    # Pool: three samples at 9 of 10, one at exactly 8 of 10 (not above), 0.5 s each.
    assert results["DatabaseConnectionPoolHigh"]["fired"] is True
    assert results["DatabaseConnectionPoolHigh"]["samples_above"] == len(POOL_ABOVE)
    assert results["DatabaseConnectionPoolHigh"]["seconds_above"] == pytest.approx(len(POOL_ABOVE) * STEP_S)
    assert results["DatabaseConnectionPoolHigh"]["peak"] == pytest.approx(0.9)
    # Buffer: at most 70 % of BUFFER_LIMIT.
    assert results["BufferSizeHigh"]["fired"] is False
    assert results["BufferSizeHigh"]["peak"] == pytest.approx(BUFFER_PEAK / BUFFER_LIMIT)
    assert results["BufferSizeHigh"]["buffer_limit"] == BUFFER_LIMIT
    # Latency and errors: against k6's per-second series of the window.
    store = Store(built["store_path"], read_only=True)
    try:
        from perflab.analysis.loadtest import k6_timeseries

        ts = k6_timeseries(store, Run.load(store, RUN).k6_point_sources, 1.0)
    finally:
        store.close()
    w = built["window"]
    mid = ts["t"].dt.epoch("us") / 1e6 + 0.5
    inside = ts.filter((mid >= w["start_s"]) & (mid <= w["end_s"]))
    assert results["HighAPILatency"]["fired"] is (inside["p95_ms"].max() > 500)
    assert results["HighAPILatency"]["peak"] == pytest.approx(inside["p95_ms"].max())
    above = inside.filter(pl.col("error_rate") > 0.01)
    assert results["HighErrorRate"]["fired"] is (above.height > 0) is True
    assert results["HighErrorRate"]["seconds_above"] == pytest.approx(above.height * 1.0)
    sec = _section(built["md"], "## Alert rules")
    assert _table_row(sec, "`DatabaseConnectionPoolHigh`")[2:5] == ["**yes**", "1.5 s", "1.5 s"]
    assert _table_row(sec, "`BufferSizeHigh`")[2] == "no"
    assert _table_row(sec, "`BufferSizeHigh`")[5].startswith("70.0 % (700 of 1,000)")


def test_strengths_and_areas_follow_the_thresholds(built):
    md = built["md"]
    strengths = _section(md, "### ✅ Strengths")
    areas = _section(md, "### ⚠️ Areas for further optimization")
    assert "**Latency within the alert threshold**" in strengths  # p95 53.70 ms ≤ 500 ms
    assert "**The offered rate was kept**" in strengths
    assert "**CPU headroom**" in strengths  # 50 % ≤ 70 % of 200 %
    assert "**Failed requests**" in areas and "above the 1% alert threshold" in areas
    assert "**Hashing takes 94.4 % of the CPU**" in areas
    assert "**Alert DatabaseConnectionPoolHigh fired**" in areas
    assert "Alert BufferSizeHigh" not in md.split("## Alert rules")[0]


def test_signatures_are_the_doctors(built):
    sec = _section(built["md"], "### Signatures found")
    verdicts = {f["signature"]: f["verdict"] for f in built["result"]["report"]["signatures"]["findings"]}
    assert "login-storm" in verdicts
    for name, verdict in verdicts.items():
        assert re.search(rf"^\| (\*\*)?{re.escape(name)}(\*\*)? \| {verdict} \|", sec, flags=re.M)
    # evidence in the reader's units: shares as %, bytes as MiB
    assert "hashing_share 94.4 %" in sec
    assert "rss_start_bytes 100.0 MiB" in sec


def test_comparison_with_the_previous_run_of_the_scenario(built):
    sec = _section(built["md"], "## Comparison with its twin or previous run")
    assert f"**A:** `{PREVIOUS}`, the previous run of this scenario and variant. **B:** this run." in sec
    cmp = built["result"]["report"]["comparison"]
    assert (cmp["against"], cmp["relation"], cmp["twin"], cmp["previous"]) == (PREVIOUS, "previous run", None,
                                                                                PREVIOUS)
    rows = cmp["metrics"]
    p95 = next(r for r in rows if r["metric"] == "latency p95")
    assert p95["a"] == pytest.approx(built["previous_summary"]["metrics"]["http_req_duration"]["p(95)"])
    assert p95["b"] == pytest.approx(built["summary"]["metrics"]["http_req_duration"]["p(95)"])
    row = _table_row(sec, "latency p95")
    assert row[1].startswith(f"{p95['a']:,.2f}") and row[2].startswith(f"{p95['b']:,.2f}")
    # the baseline has no resource samples: said so in its cell, not left empty
    cpu = _table_row(sec, "service CPU p50")
    assert cpu[1].startswith("not measured (") and cpu[2].startswith("50")


def test_the_first_run_of_a_scenario_has_nothing_to_compare_with(built):
    from perflab.analysis.run_report import comparison_section

    store = Store(built["store_path"], read_only=True)
    try:
        run = Run.load(store, PREVIOUS)
        assert to_jsonable(comparison_section(run)) == {
            "against": None, "reason": "no fixed or default twin and no previous run of this scenario and variant"}
        run.scenario = None
        assert to_jsonable(comparison_section(run))["reason"] == (
            "no twin or previous run: the run has no scenario or target (a group of files)")
    finally:
        store.close()


# Four runs of one scenario, in this order: a batch's default and fixed, then the next batch's.
TWIN_RUNS = (("d1", "default", "k6/main_small.ndjson"), ("f1", "fixed", "k6/main_dropped.ndjson"),
             ("d2", "default", "k6/summary_small.ndjson"), ("f2", "fixed", "k6/main_kolkata.ndjson.gz"))


def test_each_run_names_its_twin_from_the_same_batch(tmp_path):
    from perflab.analysis.run_report import comparison_section

    store = Store(tmp_path / "store.duckdb")
    try:
        for run_id, variant, rel in TWIN_RUNS[:3]:
            ingest_path(store, FIXTURES / rel, run_id=run_id)
            store.ensure_run(run_id, scenario="storm", variant=variant, status="complete")
        # GIVEN d1, f1, d2: the second batch has no fixed run yet
        twins = {r: (t.run_id if (t := Run.load(store, r).twin()) else None) for r in ("d1", "f1", "d2")}
        assert twins == {"d1": "f1", "f1": "d1", "d2": None}
        # THEN d2 falls back on the previous default, and f1's report compares with d1
        d2 = to_jsonable(comparison_section(Run.load(store, "d2")))
        assert (d2["against"], d2["relation"], d2["twin"], d2["previous"]) == ("d1", "previous run", None, "d1")
        f1 = to_jsonable(comparison_section(Run.load(store, "f1")))
        assert (f1["against"], f1["relation"], f1["twin"], f1["previous"]) == ("d1", "default twin", "d1", None)
        p95 = next(r for r in f1["metrics"] if r["metric"] == "latency p95")
        assert p95["a"] == pytest.approx(k6_summary(store, Run.load(store, "d1").k6_source)["metrics"]
                                         ["http_req_duration"]["p(95)"])
        # WHEN the second batch's fixed run arrives, it pairs with d2, not with d1
        run_id, variant, rel = TWIN_RUNS[3]
        ingest_path(store, FIXTURES / rel, run_id=run_id)
        store.ensure_run(run_id, scenario="storm", variant=variant, status="complete")
        twins = {r: (t.run_id if (t := Run.load(store, r).twin()) else None) for r in ("d1", "f1", "d2", "f2")}
        assert twins == {"d1": "f1", "f1": "d1", "d2": "f2", "f2": "d2"}
        d2 = to_jsonable(comparison_section(Run.load(store, "d2")))
        assert (d2["against"], d2["relation"], d2["previous"]) == ("f2", "fixed twin", "d1")
        result = write_report(store, "f2", out_dir=tmp_path / "out")
        sec = _section(Path(result["markdown"]).read_text(), "## Comparison with its twin or previous run")
        assert "**A:** `d2`, its default twin (the same scenario before the fix). **B:** this run." in sec
        assert "Previous run of this scenario and variant: `f1` (`perflab compare f1 f2`)." in sec
        assert _table_row(sec, "metric")[1] == "default twin (A)"
    finally:
        store.close()


def test_a_brought_group_starts_at_its_first_sample_not_at_its_ingest(tmp_path):
    # GIVEN process samples from 10:07:00, before the k6 file's first point (10:08:33.567)
    csv = tmp_path / "process.csv"
    csv.write_text("time,cpu_percent_of_one_core,rss_bytes\n2026-11-22T10:07:00Z,10,1000\n"
                   "2026-11-22T10:07:01Z,12,1000\n")
    store = Store(tmp_path / "store.duckdb")
    try:
        ingest_path(store, FIXTURES / "k6/main_small.ndjson", run_id="k6-only")
        ingest_path(store, csv, run_id="brought")
        ingest_path(store, FIXTURES / "k6/main_dropped.ndjson", run_id="brought")
        store.ensure_run("empty")
        k6_first = store.sql("SELECT min(time) AS t FROM k6_points WHERE run_id = 'k6-only'")["t"][0]
        # THEN each starts at its own first sample; a run with none at its registration
        assert Run.load(store, "k6-only").started_at == k6_first.isoformat()
        assert Run.load(store, "brought").started_at == "2026-11-22T10:07:00+00:00"
        empty = Run.load(store, "empty")
        assert empty.started_at == empty.created_at.isoformat()
    finally:
        store.close()


def test_html_embeds_every_drawn_figure_offline(built):
    page = built["html"]
    charts = built["result"]["report"]["charts"]
    drawn = [c for c in charts if c["drawn"]]
    assert {c["name"] for c in drawn} >= {"latency-over-time", "process-resources", "cpu-vs-latency", "flame-graph",
                                          "inflight-and-waiting"}
    for c in drawn:
        assert f'id="{c["div_id"]}"' in page
        assert f"`#{c['div_id']}`" in built["md"]
    # The flame graph, and it only, has its search box (perflab.report.flame_search).
    flame = next(c for c in drawn if c["name"] == "flame-graph")
    assert re.findall(r'<input type="search" id="([^"]+)-search"', page) == [flame["div_id"]]
    # plotly.js is not inlined: one script loads the report's own copy, beside the page
    # (the folder stands alone, offline), and it is the installed plotly's bundle.
    assert re.findall(r"<script[^>]+src=\"([^\"]*)\"", page) == ["plotly.min.js"]
    assert not re.search(r"plotly\.js v\d", page)
    from plotly.offline import get_plotlyjs

    assert (Path(built["result"]["html"]).parent / "plotly.min.js").read_text() == get_plotlyjs()
    assert "cdn.plot.ly" not in re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.S)


def test_report_is_deterministic(built, tmp_path):
    store = Store(built["store_path"], read_only=True)
    try:
        again = write_report(store, RUN, out_dir=tmp_path)
    finally:
        store.close()
    assert Path(again["markdown"]).read_text() == built["md"]
    assert Path(again["html"]).read_text() == built["html"]


def test_cli_prints_paths_and_json(built, tmp_path):
    out = run_cli("report", RUN, "--out", str(tmp_path), "--target-rps", "100", "--json", store=built["store_path"])
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["markdown"] == str(tmp_path / RUN / "report.md")
    assert doc["report"]["capacity"]["target_rps"] == 100
    assert "## Scaling estimate" in Path(doc["markdown"]).read_text()
    text = run_cli("report", RUN, "--out", str(tmp_path), store=built["store_path"])
    assert text.returncode == 0, text.stderr
    assert str(tmp_path / RUN / "report.html") in text.stdout


def test_cli_refuses_an_unknown_run(built, tmp_path):
    out = run_cli("report", "no-such-run", "--out", str(tmp_path), store=built["store_path"])
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "no run 'no-such-run'" in out.stderr
    assert "Traceback" not in out.stderr


class _Unexportable:
    def write_image(self, path: str) -> None:
        raise RuntimeError("Kaleido requires Google Chrome to be installed\nmore detail")


def _tiny_and_ranked(tmp_path: Path, counts: tuple[int, int]) -> dict[str, Any]:
    """A run of k6's main_small with a CPU profile of collapsed stacks at 100 Hz:
    `asyncio.write` with counts[0] samples and `json.dumps` with counts[1]."""
    prof = tmp_path / "cpu.collapsed.txt"
    prof.write_text("# perflab: rate_hz=100 duration_s=5 clock=cpu\n"
                    f"main;asyncio.write {counts[0]}\nmain;json.dumps {counts[1]}\n")
    store = Store(tmp_path / "store.duckdb")
    try:
        for path in (FIXTURES / "k6/main_small.ndjson", prof):
            ingest_path(store, path, run_id="tiny")
        store.ensure_run("tiny", scenario=None, variant=None, status="complete")
        return write_report(store, "tiny", out_dir=tmp_path / "out")
    finally:
        store.close()


def test_a_tiny_profile_names_no_hottest_function(tmp_path):
    # GIVEN 13 samples (130 ms of CPU): asyncio.write has 5 of them, 38.46 % flat
    result = _tiny_and_ranked(tmp_path, (5, 8))
    cpu = result["report"]["cpu_profile"]
    assert (cpu["samples"], cpu["cpu_s"]) == (13, pytest.approx(0.13))
    assert cpu["too_small"] == "too small to rank functions: 13 samples (130 ms of CPU), fewer than 100"
    md = Path(result["markdown"]).read_text()
    # THEN neither the key findings nor the assessment rank a function or a category
    assert "hottest function" not in md and "takes 61.5 % of the CPU" not in md
    assert ("The profile is too small to rank functions: 13 samples (130 ms of CPU), fewer than 100: no function "
            "or category is named as hot from it") in _section(md, "### CPU profile analysis")
    # AND the top table still lists what was sampled
    assert _table_row(_section(md, "### CPU profile analysis"), "1")[1:4] == ["`json.dumps`", "0.08 s", "61.54 %"]


def test_a_profile_of_enough_samples_names_the_hottest_function(tmp_path):
    result = _tiny_and_ranked(tmp_path, (40, 60))  # exactly MIN_SAMPLES_TO_RANK
    assert result["report"]["cpu_profile"]["too_small"] is None
    areas = _section(Path(result["markdown"]).read_text(), "### ⚠️ Areas for further optimization")
    assert "**`json.dumps` is the hottest function**" in areas and "60.00 % flat CPU (0.60 s of 1.00 s)" in areas
    assert "**Serialization takes 60.0 % of the CPU**" in areas


def test_png_export_failure_links_nothing(tmp_path):
    from perflab.analysis.report_sections import ChartEntry
    from perflab.report.loadtest_report import export_pngs

    entries = [ChartEntry("a", "s", "perflab-a", drawn=True), ChartEntry("b", "s", "perflab-b")]
    why = export_pngs(entries, {"a": _Unexportable()}, tmp_path)
    assert why == "RuntimeError: Kaleido requires Google Chrome to be installed"
    assert [e.png for e in entries] == [None, None]


def test_png_export_writes_linked_files(tmp_path):
    import plotly.graph_objects as go

    from perflab.analysis.report_sections import ChartEntry
    from perflab.report.document import Charts
    from perflab.report.loadtest_report import export_pngs
    from perflab.report.markdown import render_markdown

    entries = [ChartEntry("tiny", "s", "perflab-tiny", drawn=True, title="Tiny")]
    assert export_pngs(entries, {"tiny": go.Figure(go.Scatter(x=[0, 1], y=[1, 2]))}, tmp_path) is None
    assert (tmp_path / "tiny.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "- [Tiny](tiny.png)" in render_markdown([Charts("s")], entries)
