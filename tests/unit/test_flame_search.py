"""The flame graph's search box and zoom, in headless Chromium (Debian's chromium).

GIVEN the flame graph of a Go CPU profile with nothing folded, in a page with
perflab.report.flame_search's controls, WHEN it is opened with ``#search=MallocGC`` THEN the
line beside the box gives the share of the samples whose stack holds a matching frame,
computed here from stacks() (pprof's cum of the match), and the matching boxes are lit;
WHEN opened with ``#zoom=BOX`` THEN only that box's part of the graph is drawn, and labels hidden in
the whole view (never drawn under 10 px) appear.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from perflab.analysis.profiles import stacks
from perflab.ingest import ingest_path
from perflab.report.charts import flame_graph
from perflab.report.flame_search import MATCH_COLOR, search_controls
from perflab.report.plotlyjs import script_tag, write_plotlyjs
from perflab.store import Store

CPU = Path(__file__).resolve().parent.parent / "fixtures" / "pprof" / "generated" / "small_loginstorm.cpu.pb.gz"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--virtual-time-budget=10000",
         "--host-resolver-rules=MAP * ~NOTFOUND"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Store, int]:
    tmp = tmp_path_factory.mktemp("flame")
    store = Store(tmp / "s.duckdb")
    sid = ingest_path(store, CPU).source_id
    fig = flame_graph(store, sid, min_share=0)
    write_plotlyjs(tmp)
    html = (f"<!DOCTYPE html><html><head><meta charset='utf-8'>{script_tag('plotly.min.js')}</head><body>"
            + fig.to_html(full_html=False, include_plotlyjs=False, div_id="flame") + search_controls("flame")
            + "</body></html>")
    (tmp / "flame.html").write_text(html, encoding="utf-8")
    return tmp / "flame.html", store, sid


def dom(path: Path, fragment: str) -> str:
    assert CHROMIUM is not None
    result = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={path.parent / 'profile'}", "--dump-dom",
                             f"{path.resolve().as_uri()}#{fragment}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def found(text: str) -> dict[str, str]:
    tag = re.search(r'<span id="flame-found"([^>]*)>([^<]*)</span>', text)
    assert tag, text[-2000:]
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', tag.group(1)))
    attrs["text"] = tag.group(2)
    return attrs


def labels(text: str) -> tuple[dict[str, float], int]:
    """(box label → its drawn font size in px, labels hidden) in a dumped page."""
    shown, hidden = {}, 0
    for tag in re.findall(r'<text[^>]*class="slicetext"[^>]*>', text):
        name = re.search(r'data-unformatted="([^"]*)"', tag)
        size = re.search(r"font-size: ([\d.]+)px", tag)
        scale = re.search(r"scale\(([\d.e-]+)\)", tag)
        if "display: none" in tag or (scale and float(scale.group(1)) == 0):
            hidden += 1
        elif name and size:
            shown[name.group(1)] = float(size.group(1)) * (float(scale.group(1)) if scale else 1.0)
    return shown, hidden


def test_labels_are_readable_or_hidden_and_zoom_shows_more(page: tuple[Path, Store, int]) -> None:
    path, store, sid = page
    full, hidden = labels(dom(path, ""))
    assert full and hidden > 0
    assert min(full.values()) >= 10 * 0.999  # never drawn below 10 px (READABLE_TEXT)
    trace = flame_graph(store, sid, min_share=0).data[0]
    ids, texts, values = list(trace.ids), list(trace.text), list(trace.values)
    # A narrow box (under a third of the width) with the most boxes under it.
    target = max((i for i, v in zip(ids, values, strict=True) if v < values[0] / 3),
                 key=lambda i: sum(j.startswith(i + ";") for j in ids))
    under = {t for i, t in zip(ids, texts, strict=True) if i.startswith(target + ";")}
    zoomed, _ = labels(dom(path, f"zoom={target}"))
    assert min(zoomed.values()) >= 10 * 0.999
    # Zoomed in, its boxes are wider: labels hidden in the whole view appear.
    assert len(under & set(zoomed)) > len(under & set(full))


def test_search_lights_matches_and_gives_their_share(page: tuple[Path, Store, int]) -> None:
    path, store, sid = page
    df = stacks(store, sid)
    total = int(df["value"].sum())
    holding = sum(v for frames, v in df.iter_rows() if any("mallocgc" in f.lower() for f in frames))
    assert 0 < holding < total / 4
    text = dom(path, "search=MallocGC")
    out = found(text)
    assert float(out["share"]) == holding / total
    assert out["text"].endswith(f"{100 * holding / total:.2f} % of the total")
    boxes = int(out["boxes"])
    assert boxes >= 2
    # The lit boxes are drawn in the match colour, every other box dimmed.
    rgb = "rgb({}, {}, {})".format(*(int(MATCH_COLOR[i:i + 2], 16) for i in (1, 3, 5)))
    assert len(re.findall(rf"fill: {re.escape(rgb)}", text)) == boxes
    drawn = len(flame_graph(store, sid, min_share=0).data[0].ids)
    assert len(re.findall(r"fill: rgb\(240, 240, 240\)", text)) == drawn - boxes


def test_zoom_draws_only_the_box_and_what_is_under_it(page: tuple[Path, Store, int]) -> None:
    path, store, sid = page
    fig = flame_graph(store, sid, min_share=0)
    ids = list(fig.data[0].ids)
    target = next(i for i in ids if i.count(";") == 2)
    out = found(dom(path, f"zoom={target}"))
    assert out["level"] == target
    under = sum(1 for i in ids if i == target or i.startswith(target + ";"))
    assert int(out["slices"]) < int(out["slices-before"]) == len(ids)
    assert int(out["slices"]) >= under


def test_a_notebook_page_searches_its_flame_graph_as_a_report_does(page: tuple[Path, Store, int]) -> None:
    # GIVEN an executed notebook whose cell showed the flame graph (figure JSON, as papermill
    # keeps it) and a bar chart, turned into the nightly's offline page
    import json

    import nbformat
    import plotly.graph_objects as go

    from perflab.report.nightly import to_offline_html

    path, store, sid = page
    figures = [flame_graph(store, sid, min_share=0), go.Figure(go.Bar(y=[1, 2]))]
    cell = nbformat.v4.new_code_cell("nh.show(charts.flame_graph, store, a)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"application/vnd.plotly.v1+json":
                                                                  json.loads(f.to_json())}) for f in figures]
    nb = nbformat.v4.new_notebook(cells=[cell])
    html = to_offline_html(nb, "plotly.min.js")
    # THEN the flame graph, and only it, has the search box
    assert html.count('class="flame-search"') == 1 and 'id="perflab-figure-1-search"' in html
    nb_page = path.with_name("notebook.html")
    nb_page.write_text(html, encoding="utf-8")
    # WHEN searched in Chromium THEN the share is the report page's (pprof's cum of the match)
    text = dom(nb_page, "search=MallocGC")
    tag = re.search(r'<span id="perflab-figure-1-found"[^>]*data-share="([^"]*)"', text)
    assert tag, text[-2000:]
    assert float(tag.group(1)) == float(found(dom(path, "search=MallocGC"))["share"]) > 0
