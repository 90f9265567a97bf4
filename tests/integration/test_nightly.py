"""`perflab nightly` end to end: real lab runs (PostgreSQL, the sample service, k6), every
notebook executed by papermill, offline HTML checked in headless Chromium with the network
refused (plotly.js once per night, loaded by relative path), the night's size, the index
with the doctor's verdicts, and a second night judged against the first. Also: a plain
`jupyter nbconvert --execute` of the tour draws its charts offline."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from perflab import notebook as nh
from perflab.analysis.run import Run
from perflab.analysis.signatures import diagnose as _diagnose
from perflab.jsonable import to_jsonable
from perflab.paths import project_root
from perflab.report.nightly import NOTEBOOK_CSS, offline_problems
from perflab.report.plotlyjs import FILE_NAME as PLOTLY_JS
from perflab.store import Store
from tests.helpers import run_cli, wait_for_a_quiet_machine

pytestmark = pytest.mark.slow

# Chromium's own flags for a quiet, isolated headless run; the page may take its time
# (virtual time: 10 s of page time, no real waiting).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--virtual-time-budget=10000"]
# Any network access fails: no name resolves, and every request goes to a proxy that is not there.
NO_NETWORK = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
CDN_SCRIPT = re.compile(r"<script[^>]*\bsrc=[\"']?https?://cdn", re.I)
# What issue 10 allows a night's folder; one `make report` night (8 runs, 17 notebooks)
# was 208 MB with plotly.js inlined in every page and executed notebook.
NIGHT_MAX_BYTES = 25_000_000


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "headless Chromium is needed: apt-get install chromium (.ci/run does)"
    return found


def open_page(page: Path, tmp: Path) -> tuple[str, list[str]]:
    """(the DOM after the page's scripts ran, the URLs the page itself tried to fetch from
    the network). Local files it loads (plotly.min.js beside it) are not the network."""
    profile, netlog = tmp / f"profile-{page.stem}", tmp / f"{page.stem}.netlog.json"
    result = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, *NO_NETWORK, f"--user-data-dir={profile}", f"--log-net-log={netlog}",
         "--dump-dom", page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, [u for u in page_requests(netlog) if not u.startswith("file:")]


def loaded_scripts(page: Path) -> list[Path]:
    """The files a page's <script src> tags load, resolved from the page's folder."""
    return [(page.parent / src).resolve() for src in re.findall(r'<script[^>]*\bsrc="([^"]+)"', page.read_text())]


def page_requests(netlog: Path) -> list[str]:
    """URLs requested on behalf of a file:// page. Chromium's own background requests (it
    still tries a few) carry another network isolation key and are not the page's."""
    text = netlog.read_text()
    try:
        log = json.loads(text)
    except ValueError:  # a log cut at exit lacks its closing brackets
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    return [e["params"]["url"] for e in log["events"]
            if types.get(e["type"]) == "URL_REQUEST_START_JOB"
            and str(e["params"].get("network_isolation_key", "")).startswith("file://")]


def drawn_figures(dom: str) -> int:
    """Plotly marks a figure it drew with the class js-plotly-plot (and gives it main-svg layers)."""
    return len(re.findall(r'class="[^"]*\bjs-plotly-plot\b', dom))


def test_the_network_check_sees_a_page_that_fetches(tmp_path: Path) -> None:
    # GIVEN a page with a CDN script and a remote image THEN both are seen (and refused)
    page = tmp_path / "fetching.html"
    page.write_text('<html><head><script src="https://cdn.example.com/x.js"></script></head>'
                    '<body><img src="http://example.org/a.png"></body></html>')
    _, requested = open_page(page, tmp_path)
    assert sorted(requested) == ["http://example.org/a.png", "https://cdn.example.com/x.js"]
    assert len(offline_problems(page.read_text())) == 2


def _checkout_outside_reports() -> set[Path]:
    """Files of the checkout where a notebook must not write (05's log once landed in
    notebooks/reports/): notebooks/ and the checkout's top level."""
    root = project_root()
    return {p for p in (root / "notebooks").rglob("*") if ".ipynb_checkpoints" not in p.parts} | set(root.glob("*"))


def test_a_night_end_to_end(tmp_path: Path) -> None:
    store_path, reports = tmp_path / "store.duckdb", tmp_path / "reports"
    checkout_before = _checkout_outside_reports()
    # WHEN one night runs one scenario (default and fixed) on short runs
    wait_for_a_quiet_machine()
    first = run_cli("nightly", "--duration", "5", "--scenarios", "login-storm", "--out", str(reports), "--json",
                    store=store_path, timeout=900)
    assert first.returncode == 0, first.stderr[-4000:]
    out = json.loads(first.stdout)
    night_dir = Path(out["out"])
    assert night_dir.parent == reports and re.fullmatch(r"\d{4}-\d{2}-\d{2}", night_dir.name)
    # THEN every step said what it did
    for step in ("[1/2] run login-storm (default)", "[2/2] run login-storm (fixed)",
                 "[1/6] notebook 00-tour", "[6/6] 05-optimization-log--login-storm: ok"):
        assert step in first.stderr, first.stderr[-3000:]
    night = json.loads((night_dir / "night.json").read_text())
    assert night["ok"] is True and night["previous_night"] is None
    runs = {r["variant"]: r for r in night["runs"]}
    assert sorted(runs) == ["default", "fixed"] and all(r["status"] == "complete" for r in runs.values())
    # the verdicts are the doctor's for those runs
    with Store(store_path, read_only=True) as store:
        for r in runs.values():
            d = to_jsonable(_diagnose(Run.load(store, r["run_id"])))
            assert r["verdicts"]["findings"] == [{"signature": f["signature"], "verdict": f["verdict"],
                                                  "recommendation": f.get("recommendation")} for f in d["findings"]]
            assert r["regression"] == {"regression": None, "note": "no previous night"}
    stems = [n["stem"] for n in night["notebooks"]]
    assert stems == ["00-tour", "01-load-test--login-storm", "02-profiles--login-storm", "03-database--login-storm",
                     "04-signatures", "05-optimization-log--login-storm"]
    params = {n["stem"]: n["parameters"] for n in night["notebooks"]}
    assert params["02-profiles--login-storm"]["run_id"] == runs["default"]["run_id"]
    assert params["02-profiles--login-storm"]["compare_run_id"] == runs["fixed"]["run_id"]
    # the figure JSON only: the executed notebooks carry no copy of plotly.js
    assert params["00-tour"]["renderer"] == "plotly_mimetype"
    assert "log_path" not in params["05-optimization-log--login-storm"]  # the night writes its log itself
    # THEN plotly.js is in the night once, the installed plotly's, and the night is small
    from plotly.offline import get_plotlyjs

    assert [p.relative_to(night_dir) for p in night_dir.rglob("*.js")] == [Path(PLOTLY_JS)]
    assert [p.relative_to(night_dir) for p in night_dir.rglob("*.css")] == [Path(NOTEBOOK_CSS)]
    assert (night_dir / PLOTLY_JS).read_text() == get_plotlyjs()
    for page in [*night_dir.glob("*.ipynb"), *night_dir.rglob("*.html")]:
        assert "plotly.js v" not in page.read_text(), page  # plotly.js's licence header: an inlined copy
    sizes = {str(p.relative_to(night_dir)): p.stat().st_size for p in night_dir.rglob("*") if p.is_file()}
    print("night sizes (bytes):", json.dumps(sizes, indent=1, sort_keys=True), "total", sum(sizes.values()))
    assert sum(sizes.values()) < NIGHT_MAX_BYTES
    # one optimization log in the night, one standing log beside the nights, nothing anywhere else
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("optimization-log.md")) == [
        Path("reports") / night_dir.name / "optimization-log.md", Path("reports/optimization-log.md")]
    assert _checkout_outside_reports() == checkout_before
    log = (night_dir / "optimization-log.md").read_text()
    assert f"after `{runs['fixed']['run_id']}`" in log and "**Conclusion:**" in log
    # one log entry per scenario that ran both ways, in the night and in the standing log
    [entry] = night["optimization_log"]["entries"]
    assert (entry["scenario"], entry["before"], entry["after"]) == (
        "login-storm", runs["default"]["run_id"], runs["fixed"]["run_id"])
    assert entry["title"] == "login-storm: BCRYPT_COST=10" and entry["conclusion"]
    standing = (reports / "optimization-log.md").read_text()
    assert standing.count(f"after `{runs['fixed']['run_id']}`") == 1
    for text in (log, standing):
        assert "[FILL IN]" not in text and "None" not in text and "nan" not in text.replace("nanoseconds", "")
    # a load-test report per run, offline, its charts drawn with the network refused
    for r in runs.values():
        page = night_dir / r["report"]["html"]
        assert (night_dir / r["report"]["markdown"]).read_text().startswith("#")
        html = page.read_text()
        assert offline_problems(html) == [] and not CDN_SCRIPT.search(html)
        dom, requested = open_page(page, tmp_path)
        assert requested == [] and drawn_figures(dom) >= 3, r["run_id"]
        assert loaded_scripts(page) == [(night_dir / PLOTLY_JS).resolve()]  # the night's one copy

    # the index links every page and shows each run's verdict
    index = (night_dir / "index.html").read_text()
    for n in night["notebooks"]:
        assert f'href="{n["html"]}"' in index
    for r in runs.values():
        assert r["run_id"] in index
        present = r["verdicts"]["present"]
        assert (", ".join(present) if present else "no signature present") in index
    assert offline_problems(index) == []

    # every page is offline and draws every figure of its notebook, with the network refused
    for n in night["notebooks"]:
        page = night_dir / n["html"]
        html = page.read_text()
        assert n["status"] == "ok" and n["offline_problems"] == [] and offline_problems(html) == []
        assert not CDN_SCRIPT.search(html) and "require.min.js" not in html
        assert n["figures"] == _figures_in(night_dir / n["ipynb"])
        dom, requested = open_page(page, tmp_path)
        assert requested == [], (n["stem"], requested)
        assert drawn_figures(dom) == n["figures"], n["stem"]
        assert f'<link rel="stylesheet" href="{NOTEBOOK_CSS}">' in html  # the night's one stylesheet
        assert loaded_scripts(page) == [(night_dir / PLOTLY_JS).resolve()]  # the night's one copy
        assert dom.count('class="main-svg"') >= n["figures"]
    figures = {n["stem"]: n["figures"] for n in night["notebooks"]}
    # pictures where people look: latency, CPU, resources, flame graphs, statements, before/after
    assert figures["01-load-test--login-storm"] >= 6 and figures["02-profiles--login-storm"] >= 3
    assert figures["03-database--login-storm"] >= 3 and figures["05-optimization-log--login-storm"] == 3

    # WHEN a second night is built from the same runs THEN it is judged against the first
    second = run_cli("nightly", "--runs", runs["default"]["run_id"], runs["fixed"]["run_id"],
                     "--notebooks", "04-signatures", "--out", str(reports), store=store_path, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    # THEN it ends with three lines: where the index, the optimization log and the run reports are
    index_line, log_line, runs_line = second.stdout.splitlines()
    night2_dir = Path(index_line.removeprefix("index: ")).parent
    assert night2_dir.name.startswith(night_dir.name + "T")  # the date was taken
    assert index_line == f"index: {night2_dir / 'index.html'}" and Path(index_line[7:]).is_file()
    assert log_line == f"optimization log: {night2_dir / 'optimization-log.md'}" and Path(log_line[18:]).is_file()
    assert runs_line == f"run reports: {night2_dir / 'runs'}/" and Path(runs_line[13:]).is_dir()
    night2 = json.loads((night2_dir / "night.json").read_text())
    assert night2["previous_night"] == night_dir.name
    for r in night2["runs"]:
        reg = r["regression"]
        # a run against itself: the same numbers, so nothing is worse, let alone beyond noise
        assert reg["previous_run_id"] == r["run_id"] and reg["regression"] is False and reg["worse"] == []
        assert reg["metrics"]["latency p95"]["direction"] == "unchanged"
    assert [n["stem"] for n in night2["notebooks"]] == ["04-signatures"]


def _figures_in(ipynb: Path) -> int:
    nb: dict[str, Any] = json.loads(ipynb.read_text())
    return sum("application/vnd.plotly.v1+json" in o.get("data", {})
               for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))


def test_plain_nbconvert_execute_draws_the_tour_offline(tmp_path: Path) -> None:
    # GIVEN a store with the bundled samples WHEN the tour is executed by plain nbconvert,
    # no parameter given (the notebook chooses its renderer itself)
    store = tmp_path / "store.duckdb"
    with Store(store) as s:
        nh.ingest_samples(s)
    env = {k: v for k, v in os.environ.items() if k != "JPY_SESSION_NAME"}
    result = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute",
         str(project_root() / "notebooks" / "00-tour.ipynb"), "--output-dir", str(tmp_path)],
        env={**env, "PERFLAB_STORE": str(store)}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    page = tmp_path / "00-tour.html"
    # THEN with the network refused (nbconvert's stock page still asks CDNs for require.js and
    # MathJax, which a figure does not need) every chart of the tour is drawn: latency, the
    # flame graph and the top statements of the bundled samples
    dom, _ = open_page(page, tmp_path)
    assert page.read_text().count("Plotly.newPlot(") == 3
    assert drawn_figures(dom) == 3 and dom.count('class="main-svg"') >= 3
