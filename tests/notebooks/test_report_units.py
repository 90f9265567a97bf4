"""perflab.notebook and the parts of perflab.report.nightly that need no lab:
what a notebook finds for a run or the samples, the offline check of a page, the night's
plan, the regression verdict, the index."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat
import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
import pytest

from perflab import notebook as nh
from perflab.analysis.compare import MetricRow
from perflab.analysis.database import activity_states
from perflab.analysis.run import Run
from perflab.analysis.signatures import Diagnosis, Finding
from perflab.errors import PerflabError
from perflab.notebook import display as nb_display
from perflab.report import nightly
from perflab.store import Store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def samples_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = Store(tmp_path_factory.mktemp("nh") / "store.duckdb")
    samples = nh.ingest_samples(store)
    yield store, samples
    store.close()


# -- the store and the samples -------------------------------------------------------------------

def test_store_path_parameter_then_environment_then_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PERFLAB_STORE", str(tmp_path / "env.duckdb"))
    assert nh.resolve_store_path(tmp_path / "given.duckdb") == tmp_path / "given.duckdb"
    assert nh.resolve_store_path(None) == tmp_path / "env.duckdb"
    monkeypatch.setenv("PERFLAB_STORE", "data/other.duckdb")  # relative: from the checkout, not the cwd
    monkeypatch.chdir(ROOT / "notebooks")
    assert nh.resolve_store_path() == ROOT / "data" / "other.duckdb"
    monkeypatch.delenv("PERFLAB_STORE")
    assert nh.resolve_store_path("") == ROOT / "data" / "perflab.duckdb"


def test_samples_get_the_same_source_ids_and_groups_in_every_fresh_store(samples_store: Any) -> None:
    store, samples = samples_store
    order = [f for files in nh.SAMPLE_GROUPS.values() for f in files]
    assert samples.sources == {f: i for i, f in enumerate(order, 1)}  # what the committed outputs rely on
    assert samples.groups == list(nh.SAMPLE_GROUPS)
    assert (samples.k6, samples.cpu, samples.pg_before, samples.pg_after) == (4, 1, 6, 7)
    again = nh.ingest_samples(store)  # a second time is a no-op
    assert again.sources == samples.sources
    assert store.sql("SELECT count(*) AS n FROM sources")["n"][0] == len(order)
    runs = store.sql("SELECT run_id, count(*) AS n FROM sources GROUP BY 1 ORDER BY 1").to_dicts()
    assert {r["run_id"]: r["n"] for r in runs} == {g: len(f) for g, f in nh.SAMPLE_GROUPS.items()}


def test_run_sources_of_a_group_say_what_is_missing(samples_store: Any) -> None:
    store, samples = samples_store
    pg = nh.run_subject(Run.load(store, "sample-pg"))
    assert pg.pg == {"pg_stat_statements": (samples.pg_before, samples.pg_after)}
    assert pg.pg_activity == samples.pg_activity
    assert isinstance(pg.k6, nh.Missing) and not pg.k6
    assert pg.k6.reason == "run sample-pg: no k6 samples"
    before, after = pg.pg_pair("pg_stat_user_indexes")
    assert isinstance(before, nh.Missing) and "no before/after snapshots of pg_stat_user_indexes" in before.reason
    storm = nh.run_subject(Run.load(store, "sample-login-storm"))
    assert storm.cpu_profile == samples.cpu and storm.other_view == (samples.cpu, "samples")
    assert storm.profile_with("inuse_space") == samples.heap
    assert isinstance(storm.profile_with("delay"), nh.Missing)
    assert nh.run_subject(Run.load(store, "sample-false-idle")).profile_with("delay", "contentions") == samples.block
    with pytest.raises(PerflabError, match="no run 'nope'"):
        nh.subject(store, None, "nope")


def test_subject_without_a_run_is_the_samples(samples_store: Any) -> None:
    store, samples = samples_store
    src = nh.subject(store, samples, None)
    assert isinstance(src.run, Run) and src.run.run_id == "sample-k6"
    assert (src.k6, src.cpu_profile, src.pg_activity) == (4, 1, samples.pg_activity)
    assert src.diff_pair == (samples.cprofile_login, samples.cprofile_json)
    assert src.other_view == (samples.heap, "alloc_space")
    assert nh.profile_pair(store, src) == src.diff_pair
    assert nh.profile_pair(store, src, profile=3, compare_profile=2) == (3, 2)
    gone = nh.Missing("no pair")
    assert nh.subject(store, samples, gone).cpu_profile is gone


def test_call_show_and_print_table_turn_missing_data_into_one_line(
        samples_store: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import IPython.display

    from perflab.report import charts

    store, samples = samples_store
    shown: list[Any] = []
    monkeypatch.setattr(IPython.display, "display", shown.append)

    sample_k6 = Run.load(store, "sample-k6")
    missing = nh.call(charts.cpu_vs_latency, sample_k6)  # a PerflabError inside
    assert isinstance(missing, nh.Missing) and "no resource samples" in missing.reason
    called: list[int] = []
    assert nh.call(lambda *a: called.append(1), nh.Missing("x")).reason == "x" and not called
    assert nh.call(lambda runs: runs, [1, nh.Missing("inside a list")]).reason == "inside a list"
    nh.show(charts.cpu_vs_latency, sample_k6)
    nh.show(nh.k6_table, store, samples.k6)
    assert shown[0].data.startswith("*Not shown (cpu_vs_latency): run sample-k6 has no resource samples")
    assert isinstance(shown[1], nb_display.Table) and len(repr(shown[1]).splitlines()) == 1 + 22  # header + rows
    nh.print_table(nh.top_table, store, nh.Missing("run r: no CPU profile"))
    nh.print_table(nh.top_table, store, samples.cpu, limit=2, columns=["name", "flat"])
    assert capsys.readouterr().out.splitlines() == [
        "not shown (top_table): run r: no CPU profile",
        "| name                 | flat       |",
        "|----------------------|------------|",
        "| crypto/sha256.block  | 1440000000 |",
        "| runtime.asyncPreempt | 110000000  |"]


def test_text_is_a_fixed_plain_table() -> None:
    df = pl.DataFrame({"name": ["a  b\nc", "x" * 80], "flat": [1, 22], "pct": [1.23456, 0.5]})
    assert nh.text(df).splitlines() == [
        "| name" + " " * 57 + "| flat | pct  |",
        "|" + "-" * 62 + "|------|------|",
        "| a b c" + " " * 56 + "| 1    | 1.23 |",
        "| " + "x" * 60 + " | 22   | 0.50 |",
    ]


def test_tables_of_the_samples_hold_the_oracles_numbers(samples_store: Any) -> None:
    store, samples = samples_store
    k6 = {r["metric"]: r for r in nh.k6_table(store, samples.k6).to_dicts()}
    assert k6["http_reqs"]["count"] == 190 and k6["http_req_duration"]["p(95)"] == pytest.approx(64.0192488)
    assert "http_req_duration{endpoint:fast}" not in k6
    expected = json.loads((ROOT / "tests/fixtures/pprof/generated/small_loginstorm.cpu.pb.gz.oracle/expected.json")
                          .read_text())
    top = nh.top_table(store, samples.cpu, limit=5).to_dicts()
    oracle = expected["functions"]["cpu"][:5]  # `go tool pprof -top` of the same file
    assert [(r["name"], r["flat"], r["cum"]) for r in top] == [(o["name"], o["flat"], o["cum"]) for o in oracle]
    cats = nh.categories_table(store, samples.cpu)
    assert cats["category"][0] == "hashing" and cats["top_frame"][0] == "crypto/sha256.block"
    assert cats["share"].sum() == pytest.approx(1.0, abs=1e-9)


def test_activity_chart_stacks_every_backend_of_every_sample(samples_store: Any) -> None:
    store, samples = samples_store
    fig = nh.activity_states_chart(store, samples.pg_activity)
    drawn = sum(sum(t.y) for t in fig.data)
    frame = activity_states(store, samples.pg_activity, backend_type="client backend")
    assert drawn == frame["backends"].sum() > 0
    assert len({x for t in fig.data for x in t.x}) == frame["sample_no"].n_unique() == 20
    summary = nh.activity_summary(store, samples.pg_activity)
    assert summary["mean_backends"].sum() == pytest.approx(drawn / 20)


def test_verdict_tables() -> None:
    diagnosis = Diagnosis("r1", [
        Finding("login-storm", "present", {"service_cpu_p50": 195.25, "p95_ms": 6500.0, "other": 1}, "lower the cost"),
        Finding("false-idle", "insufficient-data", {"missing": ["k6 request samples"]}, "collect more"),
        Finding("retry-storm", "absent", {}, None),
    ])
    table = nh.verdict_table([diagnosis]).to_dicts()
    assert table[0]["key_evidence"] == "service_cpu_p50: 195 % of a core, p95_ms: 6,500 ms"
    assert table[1]["key_evidence"] == "missing: k6 request samples"
    assert table[2]["recommendation"] == ""
    assert nh.verdict_summary([diagnosis]).to_dicts() == [
        {"run_id": "r1", "present": "login-storm", "absent": 1, "insufficient_data": 1}]


def test_latest_pair_and_pick_pair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        before, after = nh.pick_pair(store, None, None)
        assert isinstance(before, nh.Missing) and before is after
        assert "perflab run login-storm --variant fixed" in capsys.readouterr().out
        with store.transaction():
            for rid, scenario, variant, status in [("a", "login-storm", "default", "complete"),
                                                   ("b", "login-storm", "fixed", "complete"),
                                                   ("c", "false-idle", "default", "complete"),
                                                   ("d", "false-idle", "fixed", "incomplete")]:
                store.ensure_run(rid, scenario=scenario, variant=variant, status=status)
        assert nh.latest_pair(store) == ("a", "b")
        assert nh.latest_pair(store, "false-idle") is None  # its fix did not complete
        assert nh.pick_pair(store, "x", "y") == ("x", "y")
        with pytest.raises(PerflabError, match="both"):
            nh.pick_pair(store, "x", None)


# -- nightly ------------------------------------------------------------------------------------

def _figure_notebook() -> Any:
    fig = go.Figure(go.Bar(x=[1, 2], y=[3, 4]))
    bundle = pio.renderers["notebook"].to_mimebundle(fig.to_dict())
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("fig")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "application/vnd.plotly.v1+json": fig.to_plotly_json(), "text/html": bundle["text/html"]})]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), cell]
    return nb, bundle["text/html"]


def test_offline_page_of_a_notebook() -> None:
    nb, figure_html = _figure_notebook()
    # plotly's own output would fetch MathJax, and nbconvert's stock page require.js
    assert nightly.offline_problems(figure_html)
    from nbconvert import HTMLExporter

    stock, _ = HTMLExporter().from_notebook_node(nb)
    assert any("require" in p for p in nightly.offline_problems(stock))
    page = nightly.to_offline_html(nb, "../plotly.min.js")
    assert nightly.offline_problems(page) == []
    assert "Plotly.newPlot" in page and nightly.count_figures(nb) == 1
    assert "mathjax" in json.dumps(nb.cells[1].outputs[0]["data"]["text/html"]).lower()  # input untouched
    # THEN plotly.js is not in the page: one script tag loads the shared file, by the given path
    assert re.findall(r"<script[^>]*\bsrc=\"([^\"]*)\"", page) == ["../plotly.min.js"]
    assert "plotly.js v" not in page and len(page) < 1_000_000


def test_offline_page_draws_from_the_json_and_drops_an_inlined_plotly_js() -> None:
    # GIVEN an executed notebook with the figure JSON only (the nightly renderer), after the
    # output plotly's notebook renderer shows once per kernel (plotly.js inlined, 4.8 MB)
    fig = go.Figure(go.Bar(x=[1, 2], y=[3, 4]))
    init = pio.renderers["notebook"].to_mimebundle(fig.to_dict())  # activates the renderer's init
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("fig")
    init_html = "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script><script>/* plotly.js v9 */</script>"
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": init_html}),
                    nbformat.v4.new_output("display_data", data={"application/vnd.plotly.v1+json": fig.to_plotly_json(),
                                                                  "text/plain": "Figure"})]
    nb.cells = [cell]
    assert "text/html" in init
    # WHEN it is written as the night's page
    page = nightly.to_offline_html(nb, "plotly.min.js")
    # THEN the figure is drawn from its JSON into a numbered div, and the inlined copy is gone
    assert page.count("Plotly.newPlot(") == 1 and 'id="perflab-figure-1"' in page
    assert "window.PlotlyConfig" not in page and "plotly.js v9" not in page
    assert page == nightly.to_offline_html(nb, "plotly.min.js")  # the same page every night


def test_offline_problems_reads_tags_not_script_text() -> None:
    page = """<html><head><link rel=stylesheet href="//cdn.example.com/x.css">
    <style>@import url("https://fonts.example.com/f.css"); .a{background:url(data:image/png;base64,AA)}</style>
    <script>var s = '<script src="https://cdn.plot.ly/plotly.js">'; fetchLater("http://x");</script></head>
    <body><img src="http://example.org/a.png"><img src="local.png"><a href="https://example.org">a link</a>
    <div style="background: url('https://example.org/b.png')"></div><script src="app.js"></script></body></html>"""
    found = nightly.offline_problems(page)
    assert found == ["<link href=//cdn.example.com/x.css>", '<style> @import url("https://fonts.example.com/f.css")',
                     "<img src=http://example.org/a.png>", "<div style=...url('https://>"]


def test_night_dir_is_dated_then_time_stamped(tmp_path: Path) -> None:
    now = datetime(2026, 11, 22, 23, 5, 9, tzinfo=timezone.utc)
    assert nightly.night_dir(tmp_path, now).name == "2026-11-22"
    assert nightly.night_dir(tmp_path, now).name == "2026-11-22T230509Z"
    with pytest.raises(PerflabError, match="exists already"):
        nightly.night_dir(tmp_path, now)


def test_previous_night_is_the_newest_finished_other_one(tmp_path: Path) -> None:
    for name, started in [("2026-11-20", "2026-11-20T01:00:00+00:00"), ("2026-11-21", "2026-11-21T01:00:00+00:00")]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "night.json").write_text(json.dumps({"started_at": started, "runs": []}))
    (tmp_path / "2026-11-22").mkdir()  # tonight, unfinished
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "night.json").write_text("{")
    assert nightly.previous_night(tmp_path, tmp_path / "2026-11-22")["folder"] == "2026-11-21"
    assert nightly.previous_night(tmp_path, tmp_path / "2026-11-21")["folder"] == "2026-11-20"


def test_plan_of_a_night(tmp_path: Path) -> None:
    runs = [nightly.NightRun("login-storm", "default", "ls-d", "complete"),
            nightly.NightRun("login-storm", "fixed", "ls-f", "complete"),
            nightly.NightRun("healthy", "default", "h-d", "complete"),
            nightly.NightRun("retry-storm", "default", None, "failed", "boom")]
    jobs = nightly.plan(runs, tmp_path / "s.duckdb", tmp_path, "R")
    assert [j.stem for j in jobs] == [
        "00-tour", "01-load-test--login-storm", "01-load-test--healthy", "02-profiles--login-storm",
        "02-profiles--healthy", "03-database--login-storm", "03-database--healthy", "04-signatures",
        "05-optimization-log--login-storm"]
    assert jobs[0].parameters == {"store_path": str(tmp_path / "s.duckdb"), "renderer": "R",
                                  "run_ids": ["ls-d", "ls-f", "h-d"]}
    assert jobs[1].parameters["run_id"] == "ls-d" and jobs[1].parameters["compare_run_id"] == "ls-f"
    assert jobs[2].parameters["compare_run_id"] is None
    assert jobs[-1].parameters["before_run_id"] == "ls-d" and jobs[-1].parameters["after_run_id"] == "ls-f"
    assert "log_path" not in jobs[-1].parameters  # the night writes its log entries itself, once
    only = nightly.plan(runs, tmp_path / "s.duckdb", tmp_path, "R", only=("04-signatures",))
    assert [j.stem for j in only] == ["04-signatures"]


def _row(metric: str, direction: str | None, beyond: bool | None, a: float = 1.0, b: float = 2.0) -> MetricRow:
    return MetricRow(metric=metric, unit="", better="lower", a=a, b=b, change=b - a, change_pct=100.0,
                     beyond_noise=beyond, direction=direction, test=None, note=None)



@pytest.mark.parametrize("rows, regression, worse", [
    ([_row("latency p95", "worse", True), _row("error rate", "unchanged", False)], True, ["latency p95"]),
    ([_row("latency p95", "worse", False), _row("error rate", "worse", None)], False, []),
    ([_row("latency p95", "better", True), _row("error rate", "worse", True)], True, ["error rate"]),
    ([_row("latency p50", "worse", True), _row("throughput", "worse", True)], False, []),
])
def test_a_regression_is_worse_beyond_noise(rows: list[MetricRow], regression: bool, worse: list[str]) -> None:
    verdict = nightly.regression_rows(rows)
    assert verdict["regression"] is regression and verdict["worse"] == worse


@pytest.mark.parametrize("status, present, summary, regression, colour, text", [
    ("complete", [], {"error_rate": 0.0, "dropped_iterations": 0}, None, "green",
     "no signature present, error rate 0.0 % ≤ 1 %, no dropped iterations"),
    # the retry storm's fix: no signature, but a third of its requests fail
    ("complete", [], {"error_rate": 0.336, "dropped_iterations": 0}, {"regression": None}, "amber",
     "no signature present, but error rate 33.6 % > 1 % (HighErrorRate alert)"),
    ("complete", [], {"error_rate": 0.0, "dropped_iterations": 12}, None, "amber",
     "no signature present, but 12 dropped iterations (the load was not offered in full)"),
    ("complete", ["login-storm"], {"error_rate": 0.0, "dropped_iterations": 0}, None, "amber", "login-storm present"),
    ("complete", [], {"error_rate": 0.0, "dropped_iterations": 0}, {"regression": True, "worse": ["error rate"]},
     "red", "no signature present, but regression: error rate worse beyond noise"),
    ("complete", [], None, None, "amber",
     "no signature present, but error rate not measured; dropped iterations not measured"),
    ("failed", [], None, None, "red", "run failed"),
])
def test_a_run_is_green_only_without_signature_errors_and_drops(status, present, summary, regression, colour,
                                                                text) -> None:
    assert nightly.run_health(status, present, summary, regression) == {"colour": colour, "text": text}


def test_index_shows_verdicts_regressions_and_links() -> None:
    night = {"date": "2026-11-22", "started_at": "s", "finished_at": "f", "store": "/x.duckdb",
             "previous_night": "2026-11-21", "ok": False,
             "runs": [{"scenario": "login-storm", "variant": "default", "run_id": "r1", "status": "complete",
                       "error": None, "summary": {"p95_ms": 6500.0, "error_rate": 0.348837, "rps": 3.0},
                       "verdicts": {"present": ["login-storm"], "findings": []},
                       "regression": {"regression": True, "worse": ["latency p95"], "previous_run_id": "r0",
                                      "metrics": {"latency p95": vars(_row("latency p95", "worse", True, 80.0, 6500.0))}}},
                      {"scenario": "false-idle", "variant": "default", "run_id": None, "status": "failed",
                       "error": "k6 <crashed>", "summary": None, "verdicts": None, "regression": None}],
             "notebooks": [{"stem": "00-tour", "html": "00-tour.html", "ipynb": "00-tour.ipynb", "status": "ok",
                            "figures": 3, "seconds": 6.1, "error": None}]}
    for r in night["runs"]:
        r["health"] = nightly.run_health(r["status"], (r["verdicts"] or {}).get("present", []), r["summary"],
                                         r["regression"])
    page = nightly.render_index(night)
    assert '<tr class="bad">' in page and '<span class="present">run failed</span>' in page
    assert '<span class="present">regression: latency p95 worse beyond noise; login-storm present; ' in page
    assert "REGRESSION: latency p95" in page and "80 → 6,500" in page and "e+0" not in page
    assert ">6,500 ms<" in page and ">34.9 %<" in page and ">3.00/s<" in page  # units, 3 digits
    assert "k6 &lt;crashed&gt;" in page  # escaped
    assert '<a href="00-tour.html">00-tour</a>' in page and '<a href="../2026-11-21/index.html">' in page
    assert nightly.offline_problems(page) == []


def test_nightly_ends_with_three_paths(tmp_path: Path) -> None:
    from perflab.commands.nightly import closing_lines

    night_dir = tmp_path / "2026-11-22"
    night_dir.mkdir()
    (night_dir / "optimization-log.md").write_text("# log\n")
    night = {"runs": [{"report": {"html": "runs/r1/report.html"}}, {"report": None}],
             "optimization_log": {"entries": [{"scenario": "login-storm"}]}}
    # WHEN the night has reports and a log entry THEN the three lines are their paths
    assert closing_lines(night_dir, night) == [f"index: {night_dir}/index.html",
                                               f"optimization log: {night_dir}/optimization-log.md",
                                               f"run reports: {night_dir}/runs/"]
    # WHEN no scenario ran both ways and no run completed THEN the lines say so
    empty = {"runs": [{"report": None}], "optimization_log": {"entries": []}}
    assert closing_lines(night_dir, empty)[1:] == [
        "optimization log: no entry tonight (no scenario ran both default and fixed)",
        "run reports: none (no run completed)"]


def test_a_notebook_page_links_the_nights_one_stylesheet() -> None:
    nb, _ = _figure_notebook()
    page = nightly.to_offline_html(nb, "plotly.min.js")
    # WHEN the page's head styles are moved to the shared file
    linked, css = nightly.shared_head_css(page, "notebook.css")
    # THEN the head holds one link instead of ~260 kB of CSS, and the CSS is what was inlined
    head = linked[:linked.index("</head>")]
    assert "<style" not in head and head.count('<link rel="stylesheet" href="notebook.css">') == 1
    assert len(css) > 100_000 and ".jp-OutputArea" in css and len(linked) < len(page) - 100_000
    assert linked[linked.index("</head>"):] == page[page.index("</head>"):]  # the body is untouched
    assert nightly.offline_problems(linked) == []
    # the same CSS for every page of a night (so one copy serves them all)
    other = nightly.to_offline_html(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("x")]), "p.js")
    assert nightly.shared_head_css(other, "notebook.css")[1] == css
    # a body style (a styled table's) stays in the page
    body_style = page.replace("</body>", "<style>.x{color:red}</style></body>")
    assert "<style>.x{color:red}</style>" in nightly.shared_head_css(body_style, "n.css")[0]


def test_evidence_list_is_readable_not_json() -> None:
    # GIVEN findings whose evidence has units in their names, a list and a map
    diagnosis = Diagnosis("r1", [
        Finding("login-storm", "present", {"service_cpu_p95": 195.04, "p95_ms": 3209.08, "error_rate": 0.348837,
                                           "cpu_p95_correlation": -0.245, "hot": {"share": 0.4}}, "lower the cost"),
        Finding("false-idle", "insufficient-data", {"missing": ["k6 request samples → none"]}, None),
    ])
    text = nh.evidence_list([diagnosis])
    # THEN each piece reads "name: value unit", nested one level down, arrows as they are
    assert "- **login-storm**: present — lower the cost" in text
    for line in ("  - service_cpu_p95: 195 % of a core", "  - p95_ms: 3,209 ms", "  - error_rate: 34.9 %",
                 "  - cpu_p95_correlation: -0.245", "  - hot:", "    - share: 40.0 %",
                 "  - missing: k6 request samples → none"):
        assert line in text.splitlines(), line
    assert "{" not in text and "\\u2192" not in text


def test_show_styles_a_table_with_units(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a table of run numbers WHEN shown in a notebook
    shown: list[Any] = []
    monkeypatch.setattr(nb_display, "display", shown.append)
    df = pl.DataFrame({"run_id": ["r1", "r2"], "p95_ms": [3209.08, None], "error_rate": [0.348837, 0.0],
                       "requests": [1098, 5]})
    nh.show(lambda: df)
    # THEN it is pandas' Styler table (fixed id, numbers right), values with their units, no dtype or shape rows
    [table] = shown
    html = table._repr_html_()
    assert '<table id="T_perflab">' in html and "text-align: right" in html
    assert ">3,209 ms<" in html and ">34.9 %<" in html and ">1,098<" in html and "f64" not in html
    assert repr(table).splitlines() == ["run_id  p95_ms    error_rate  requests",
                                        "r1      3,209 ms      34.9 %     1,098",
                                        "r2             -         0 %         5"]
