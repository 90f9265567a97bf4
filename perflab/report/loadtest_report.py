"""`perflab report RUN`: the load-test analysis of one run, written as report.md and report.html.

    build_report(run)            perflab.analysis.run_report: every number, typed
      -> document(report)        perflab.report.loadtest_document: the blocks
        -> render_markdown       report.md
        -> render_html           report.html, with the figures (plotly.js loaded from a file beside it)

This module draws the report's figures (perflab.report.charts) and writes the files.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plotly.graph_objects import Figure

from perflab.analysis.report_sections import ChartEntry, CpuProfile, RunReport
from perflab.analysis.run import Run
from perflab.analysis.run_report import build_report
from perflab.errors import PerflabError
from perflab.report import charts as ch
from perflab.report.document import Paragraph
from perflab.report.flame_search import search_controls
from perflab.report.html import render_html
from perflab.report.loadtest_document import document
from perflab.report.markdown import render_markdown
from perflab.report.plotlyjs import relative_src, script_tag, write_plotlyjs

DEFAULT_OUT = Path("reports")
# Hex characters of the id's hash a renamed report folder keeps (a clash becomes likely only
# among some 65,000 renamed ids).
RENAMED_HASH_CHARS = 8

ChartFn = Callable[[Run, RunReport], Figure]


FLAME = "flame-graph"


def _flame(run: Run, report: RunReport) -> Figure:
    if not isinstance(report.cpu_profile, CpuProfile):
        raise PerflabError(report.cpu_profile.reason)
    return ch.flame_graph(run.store, report.cpu_profile.source_id)


# (name, section, builder) of every figure the report embeds, in page order.
CHART_SPECS: list[tuple[str, str, ChartFn]] = [
    ("latency-over-time", "requests", lambda run, r: ch.latency_over_time(run)),
    ("process-resources", "resources", lambda run, r: ch.process_resources(run)),
    ("cpu-vs-latency", "resources", lambda run, r: ch.cpu_vs_latency(run)),
    (FLAME, "cpu", _flame),
    ("inflight-and-waiting", "alerts", lambda run, r: ch.inflight_and_waiting(run)),
    ("errors-by-kind", "alerts", lambda run, r: ch.errors_by_kind(run)),
    ("app-vs-db-rate", "alerts", lambda run, r: ch.app_vs_db_rate(run)),
]


def build_figures(run: Run, report: RunReport) -> tuple[list[ChartEntry], dict[str, Figure]]:
    """Every chart of the report: (entries for the report, {name: figure})."""
    entries: list[ChartEntry] = []
    figures: dict[str, Figure] = {}
    for name, section, fn in CHART_SPECS:
        entry = ChartEntry(name=name, section=section, div_id=f"perflab-{name}", title=name)
        try:
            fig = fn(run, report)
        except PerflabError as exc:
            entry.reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - a broken figure must not cost the whole report
            entry.reason = f"{type(exc).__name__}: {exc}"
        else:
            entry.drawn = True
            entry.title = (fig.layout.title.text or name) if fig.layout.title else name
            figures[name] = fig
        entries.append(entry)
    return entries, figures


def figures_to_html(entries: list[ChartEntry], figures: dict[str, Figure]) -> dict[str, str]:
    """Each drawn figure as a div and its script; plotly.js is loaded by the page's head."""
    return {e.name: figures[e.name].to_html(full_html=False, include_plotlyjs=False, div_id=e.div_id)
            + (search_controls(e.div_id) if e.name == FLAME else "")
            for e in entries if e.drawn}


def export_pngs(entries: list[ChartEntry], figures: dict[str, Any], folder: Path) -> str | None:
    """Write each drawn figure as NAME.png (kaleido, which drives a local chromium).
    Returns None when every figure was written, else why not (and no figure is linked)."""
    written = []
    try:
        for e in entries:
            if e.drawn:
                path = folder / f"{e.name}.png"
                figures[e.name].write_image(str(path))
                written.append((e, path.name))
    except Exception as exc:  # noqa: BLE001 - kaleido/chromium failures come in many types
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    for e, name in written:
        e.png = name
    return None


@dataclass
class WrittenReport:
    run_id: str
    markdown: str
    html: str
    png: list[str]
    png_error: str | None
    report: RunReport


def write_report(run: Run, out_dir: str | Path = DEFAULT_OUT, target_rps: float | None = None,
                 png: bool = False, plotly_js: Path | None = None) -> WrittenReport:
    """Build the report of ``run`` and write OUT/RUN_ID/report.md and report.html.

    The page loads plotly.js from ``plotly_js`` by a relative path (a night shares one
    file); by default from its own copy in OUT/RUN_ID/, so the folder stands alone.
    """
    report = build_report(run, target_rps=target_rps)
    entries, figures = build_figures(run, report)
    folder = Path(out_dir) / safe_name(run.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    png_error = export_pngs(entries, figures, folder) if png and figures else None
    report.charts = entries
    blocks = document(report)
    if png_error:
        blocks.append(Paragraph(f"PNG export failed ({png_error}); the charts are in report.html."))
    md = render_markdown(blocks, entries)
    md_path, html_path = folder / "report.md", folder / "report.html"
    head = script_tag(relative_src(html_path, plotly_js or write_plotlyjs(folder))) if figures else ""
    page = render_html(blocks, f"Load test analysis: {run.run_id}", entries, figures_to_html(entries, figures),
                       head_extra=head)
    md_path.write_text(md, encoding="utf-8")
    html_path.write_text(page, encoding="utf-8")
    return WrittenReport(run.run_id, str(md_path), str(html_path),
                         [str(folder / e.png) for e in entries if e.png], png_error, report)


def safe_name(run_id: str) -> str:
    """A run id as a folder name, one folder per run: a user-given group id may hold a path
    separator or spaces; such an id keeps a short hash of itself, so `exp/1` and `exp 1`
    (both `exp_1` once cleaned) never write into the same folder."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._")
    if not name:
        raise PerflabError(f"run id {run_id!r} gives no usable folder name")
    if name != run_id:
        name += "-" + hashlib.sha256(run_id.encode()).hexdigest()[:RENAMED_HASH_CHARS]
    return name
