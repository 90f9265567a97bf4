"""The nightly report: every notebook executed on the night's runs, as HTML that works offline.

    runs (the command drives perflab.lab)  →  verdicts and regressions (the store)
      →  papermill: each notebook with the run ids as parameters  →  nbconvert: offline HTML
      →  index.html + night.json

A night is one folder under the reports root: ``YYYY-MM-DD`` (UTC), or
``YYYY-MM-DDTHHMMSSZ`` when a report of that day exists already::

    night.json                      runs, verdicts, regressions, notebooks (sorted keys)
    index.html                      links, the doctor's verdicts per run, regressions
    plotly.min.js                   plotly.js, once for every page of the night
    notebook.css                    nbconvert's JupyterLab style, once for every notebook page
    NN-name[--scenario].ipynb       an executed notebook (outputs kept: it is the record)
    NN-name[--scenario].html        the same as an HTML page
    runs/RUN_ID/report.{md,html}    the load-test report of each run
    optimization-log.md             the night's before/after entries (one per scenario)

Offline means: every page loads the night's one plotly.js by a relative path
(perflab.report.plotlyjs); the notebooks are run with the ``plotly_mimetype`` renderer, so
an executed .ipynb holds the figure JSON and no copy of plotly.js, and the HTML page draws
each figure from that JSON; nbconvert's page loads nothing from a CDN (require.js,
MathJax, mermaid and the widget manager are left out: none of them is needed to draw a
plotly figure). :func:`offline_problems` checks the written page and a page that fails
the check counts as a failed notebook.

Notebooks run with the night's folder as their working directory and are given no path
to write to: the optimization-log entries are written here (the night's log and the
standing log beside the nights), so nothing lands outside the reports folder.

A regression is a run whose p95 latency or error rate is worse than the same scenario
and variant's run of the previous night *beyond noise* (perflab.analysis.compare's one
rule: the 95 % interval of the change excludes 0), never a bare difference of two numbers.

A run's colour on the index (:func:`run_health`): red when it failed or regressed; amber
when the doctor finds a signature, or its error rate or dropped iterations break the alert
rules (perflab.analysis.alerts); green only when none of these holds, each reason shown.

This module never imports perflab.lab: the command makes the runs and hands their ids
here, so a report can also be built from runs made elsewhere (``--runs``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from perflab import fmt
from perflab.analysis.alerts import ERROR_RATE_THRESHOLD
from perflab.analysis.compare import MetricRow, compare_runs
from perflab.analysis.run import Run
from perflab.analysis.runs import RunSummary, run_summary
from perflab.analysis.signatures import diagnose
from perflab.errors import PerflabError
from perflab.jsonable import to_jsonable
from perflab.paths import notebooks_dir
from perflab.report.flame_search import search_controls
from perflab.report.loadtest_report import write_report
from perflab.report.night_index import NIGHT_JSON, OPTLOG, render_index
from perflab.report.optlog import add_entry
from perflab.report.plotlyjs import FILE_NAME as PLOTLY_JS
from perflab.report.plotlyjs import script_tag, write_plotlyjs
from perflab.store import Store

# Figure JSON only: the executed .ipynb carries no copy of plotly.js (4.8 MB each), and
# to_offline_html draws the figures from the JSON with the night's one plotly.js.
NIGHTLY_RENDERER = "plotly_mimetype"
NOTEBOOKS = ("00-tour", "01-load-test", "02-profiles", "03-database", "04-signatures", "05-optimization-log")
# Notebooks run once per night on every run; the others once per scenario (its default run,
# with the fixed variant as the second run).
NIGHT_NOTEBOOKS = ("00-tour", "04-signatures")
PAIR_NOTEBOOKS = ("05-optimization-log",)  # need a default and a fixed run of one scenario
# What makes a run worse than the previous night's (compare_runs row names): what a user
# waits for and what fails, the two numbers every signature moves.
REGRESSION_METRICS = ("latency p95", "error rate")
# The night's load-test reports: RUN_REPORTS/RUN_ID/report.{md,html}.
RUN_REPORTS = "runs"
# A cell of a notebook may take this long: a lab run's notebook reads a few hundred thousand
# rows at most; ten minutes means something hangs, and the night moves on.
CELL_TIMEOUT_S = 600
PLOTLY_MIMETYPE = "application/vnd.plotly.v1+json"
# k6's constant arrival rate drops an iteration when no VU is free to start it: the run did
# not offer the load it was asked for, and its latencies leave those requests out. The
# tuning guide has no rule for it, so any drop makes a run worth a look.
DROPPED_ITERATIONS_MAX = 0

# nbconvert's JupyterLab page without the scripts it would fetch from a CDN, loading the
# night's plotly.js instead. With no require.js on the page plotly.js defines
# window.Plotly itself (with require.js it would register as an AMD module instead, and
# the figures' own scripts would not find it).
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{{ resources.plotly_js_tag }}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""
_TEMPLATE_NAME = "perflab_offline.html.j2"
# What plotly's notebook renderer displays once per kernel: plotly.js inlined. A page of
# the night loads its shared copy instead, so this output is left out of the HTML.
_PLOTLY_INIT = "window.PlotlyConfig"
# nbconvert's page inlines ~260 kB of JupyterLab style in its <head>, the same for every
# notebook: a night keeps one copy, which each page links.
NOTEBOOK_CSS = "notebook.css"
_STYLE_BLOCK = re.compile(r"<style[^>]*>(.*?)</style>\s*", re.S | re.I)
_REMOTE = re.compile(r"^\s*(?:https?:)?//", re.I)
_CSS_REMOTE = re.compile(r"(?:@import\s+(?:url\()?|url\()\s*[\"']?\s*(?:https?:)?//", re.I)

Say = Callable[[str], None]


@dataclass
class NightRun:
    """One lab run of the night (or a run handed in with --runs)."""

    scenario: str
    variant: str
    run_id: str | None
    status: str  # complete | failed
    error: str | None = None
    seconds: float | None = None


@dataclass
class Job:
    notebook: str
    stem: str  # the output file name without extension
    parameters: dict[str, Any]
    scenario: str | None = None


@dataclass
class JobResult:
    notebook: str
    stem: str
    scenario: str | None
    parameters: dict[str, Any]
    status: str  # ok | failed
    ipynb: str
    html: str | None
    figures: int = 0
    seconds: float = 0.0
    error: str | None = None
    offline_problems: list[str] = field(default_factory=list)


# -- where ------------------------------------------------------------------------------------

def night_dir(root: str | Path, now: datetime | None = None) -> Path:
    """Create and return tonight's folder: root/YYYY-MM-DD, or a time-stamped one if taken."""
    now = now or datetime.now(UTC)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for name in (f"{now:%Y-%m-%d}", f"{now:%Y-%m-%dT%H%M%SZ}"):
        try:
            (root / name).mkdir()
            return root / name
        except FileExistsError:
            continue
    raise PerflabError(f"{root}: a report named {now:%Y-%m-%dT%H%M%SZ} exists already; try again in a second")


def previous_night(root: str | Path, current: Path) -> dict[str, Any] | None:
    """The newest other night under ``root`` that finished (has a night.json), by its start."""
    nights = []
    for path in Path(root).glob(f"*/{NIGHT_JSON}"):
        if path.parent.resolve() == current.resolve():
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        data["folder"] = path.parent.name
        nights.append(data)
    return max(nights, key=lambda n: (str(n.get("started_at", "")), n["folder"]), default=None)


# -- what to execute ------------------------------------------------------------------------------

def plan(runs: list[NightRun], store_path: Path, out_dir: Path, renderer: str,
         only: tuple[str, ...] = NOTEBOOKS) -> list[Job]:
    """The notebook executions of a night, with their parameters."""
    done = [r for r in runs if r.status == "complete" and r.run_id]
    common = {"store_path": str(store_path), "renderer": renderer}
    by_scenario: dict[str, dict[str, str]] = {}
    for r in done:
        by_scenario.setdefault(r.scenario, {}).setdefault(r.variant, r.run_id)  # type: ignore[arg-type]
    jobs: list[Job] = []
    for nb in NOTEBOOKS:
        if nb not in only:
            continue
        if nb in NIGHT_NOTEBOOKS:
            jobs.append(Job(nb, nb, {**common, "run_ids": [r.run_id for r in done]}))
            continue
        for scenario, variants in by_scenario.items():
            first = variants.get("default") or next(iter(variants.values()))
            second = variants.get("fixed") if first != variants.get("fixed") else None
            stem = f"{nb}--{_slug(scenario)}"
            if nb in PAIR_NOTEBOOKS:
                # No log_path: night_log writes the entries, once, where they belong.
                if second:
                    jobs.append(Job(nb, stem, {**common, "before_run_id": first, "after_run_id": second}, scenario))
            else:
                jobs.append(Job(nb, stem, {**common, "run_id": first, "compare_run_id": second}, scenario))
    return jobs


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def execute(job: Job, source_dir: Path, out_dir: Path) -> JobResult:
    """Run one notebook with papermill into out_dir, then write its offline HTML."""
    import nbformat
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    src = source_dir / f"{job.notebook}.ipynb"
    dst = out_dir / f"{job.stem}.ipynb"
    t = time.perf_counter()
    error = None
    try:
        # cwd: the night's folder, so a relative path a notebook might write lands in reports/.
        pm.execute_notebook(str(src), str(dst), parameters=job.parameters, cwd=str(out_dir),
                            progress_bar=False, log_output=False, request_save_on_cell_execute=False,
                            execution_timeout=CELL_TIMEOUT_S)
    except PapermillExecutionError as exc:
        error = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
    except Exception as exc:  # noqa: BLE001 - a notebook that cannot start fails alone, not the night
        error = f"{type(exc).__name__}: {exc}"
    result = JobResult(job.notebook, job.stem, job.scenario, job.parameters, "failed" if error else "ok",
                       dst.name, None, seconds=0.0, error=error)
    if dst.exists():
        nb = nbformat.read(dst, as_version=4)
        result.figures = count_figures(nb)
        page = out_dir / f"{job.stem}.html"
        html, css = shared_head_css(to_offline_html(nb, PLOTLY_JS), NOTEBOOK_CSS)
        css_file = out_dir / NOTEBOOK_CSS
        if not css_file.is_file() or css_file.read_text(encoding="utf-8") != css:
            css_file.write_text(css, encoding="utf-8")
        page.write_text(html, encoding="utf-8")
        result.html = page.name
        result.offline_problems = offline_problems(page.read_text(encoding="utf-8"))
        if result.offline_problems and not error:
            result.status = "failed"
            result.error = "the HTML would load from the network: " + "; ".join(result.offline_problems[:3])
    result.seconds = round(time.perf_counter() - t, 2)
    return result


def count_figures(nb: Any) -> int:
    """How many plotly figures the executed notebook shows (outputs carrying figure JSON)."""
    return sum(1 for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []) if PLOTLY_MIMETYPE in out.get("data", {}))


# -- offline HTML ---------------------------------------------------------------------------------

def to_offline_html(nb: Any, plotly_src: str) -> str:
    """An executed notebook as a page: nbconvert's JupyterLab look, every figure drawn
    from its JSON by the plotly.js at ``plotly_src`` (relative to the page), nothing
    fetched from anywhere."""
    import copy

    import jinja2
    import plotly.io as pio
    from nbconvert import HTMLExporter

    nb = copy.deepcopy(nb)
    n = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if PLOTLY_MIMETYPE in data:
                # Drawn from the JSON, whatever HTML the renderer stored (it may carry a CDN
                # MathJax tag); the div id is numbered so the page is the same every night.
                n += 1
                div = f"perflab-figure-{n}"
                data["text/html"] = pio.to_html(data[PLOTLY_MIMETYPE], include_plotlyjs=False, full_html=False,
                                                div_id=div, validate=False)
                if _is_flame(data[PLOTLY_MIMETYPE]):  # the same search box as a run report's
                    data["text/html"] += search_controls(div)
            elif _PLOTLY_INIT in _text(data.get("text/html", "")):
                continue
            kept.append(out)
        cell.outputs = kept
    exporter = HTMLExporter(extra_loaders=[jinja2.DictLoader({_TEMPLATE_NAME: _OFFLINE_TEMPLATE})],
                            template_file=_TEMPLATE_NAME)
    body, _ = exporter.from_notebook_node(nb, resources={"plotly_js_tag": script_tag(plotly_src)})
    return str(body)


def _is_flame(figure: Any) -> bool:
    """A flame graph (one icicle trace): what the search box searches."""
    traces = figure.get("data", []) if isinstance(figure, dict) else []
    return len(traces) == 1 and traces[0].get("type") == "icicle"


def shared_head_css(page: str, href: str) -> tuple[str, str]:
    """(the page with the <style> blocks of its <head> replaced by one link to ``href``,
    their CSS in order). Styles in the body (a table's own) stay where they are."""
    end = page.lower().find("</head>")
    if end < 0:
        return page, ""
    head = page[:end]
    blocks = list(_STYLE_BLOCK.finditer(head))
    if not blocks:
        return page, ""
    css = "\n".join(m.group(1).strip() for m in blocks) + "\n"
    link = f'<link rel="stylesheet" href="{href}">\n'
    first = blocks[0].start()
    head = head[:first] + link + _STYLE_BLOCK.sub("", head[first:])
    return head + page[end:], css


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


class _ResourceFinder(HTMLParser):
    """Every URL a page would fetch by itself: src/href of scripts, styles, images, frames."""

    FETCHING = {"script": ("src",), "link": ("href",), "img": ("src", "srcset"), "iframe": ("src",),
                "source": ("src", "srcset"), "video": ("src", "poster"), "audio": ("src",),
                "embed": ("src",), "object": ("data",), "input": ("src",)}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in self.FETCHING.get(tag, ()) and value and _REMOTE.match(value):
                self.found.append(f"<{tag} {name}={value[:120]}>")
            if name == "style" and value and _CSS_REMOTE.search(value):
                self.found.append(f"<{tag} style=...{_CSS_REMOTE.search(value).group(0)}>")  # type: ignore[union-attr]
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            for m in _CSS_REMOTE.finditer(data):
                self.found.append("<style> " + data[m.start():m.start() + 120].split(")")[0] + ")")


def offline_problems(page: str) -> list[str]:
    """What in an HTML page would be fetched from the network (empty: the page is offline).

    Script bodies are not read as markup, so plotly.js's own strings (it names its CDN)
    are no problem; only tags and styles the browser would load from count.
    """
    finder = _ResourceFinder()
    finder.feed(page)
    finder.close()
    return finder.found


# -- verdicts and regressions ------------------------------------------------------------------

def night_verdicts(store: Store, runs: list[NightRun]) -> dict[str, dict[str, Any]]:
    """The doctor's findings per complete run: {run_id: {"present": [...], "findings": [...]}}."""
    out: dict[str, dict[str, Any]] = {}
    for r in runs:
        if r.status != "complete" or not r.run_id:
            continue
        d = diagnose(Run.load(store, r.run_id))
        out[r.run_id] = {
            "present": [f.signature for f in d.present],
            "findings": [{"signature": f.signature, "verdict": f.verdict, "recommendation": f.recommendation}
                         for f in d.findings],
        }
    return out


def regression_rows(metrics: Sequence[MetricRow]) -> dict[str, Any]:
    """From compare_runs(previous, tonight).metrics: the REGRESSION_METRICS rows and whether
    any is worse beyond noise (the regression verdict)."""
    rows = {r.metric: r for r in metrics if r.metric in REGRESSION_METRICS}
    worse = [m for m in REGRESSION_METRICS
             if m in rows and rows[m].direction == "worse" and rows[m].beyond_noise is True]
    return {
        "regression": bool(worse),
        "worse": worse,
        "metrics": {m: {k: getattr(rows[m], k) for k in ("a", "b", "change_pct", "direction", "beyond_noise", "note")}
                    for m in REGRESSION_METRICS if m in rows},
    }


def run_health(status: str, present: Sequence[str], summary: dict[str, Any] | None,
               regression: dict[str, Any] | None) -> dict[str, Any]:
    """The run's colour on the index and why: {"colour": green | amber | red, "text": ...}."""
    if status != "complete":
        return {"colour": "red", "text": f"run {status}"}
    s, reg = summary or {}, regression or {}
    red = [f"regression: {', '.join(reg['worse'])} worse beyond noise"] if reg.get("regression") else []
    amber = [", ".join(present) + " present"] if present else []
    rate, dropped = s.get("error_rate"), s.get("dropped_iterations")
    limit = fmt.percent(ERROR_RATE_THRESHOLD, digits=0)
    if rate is None:
        amber.append("error rate not measured")
    elif rate > ERROR_RATE_THRESHOLD:
        amber.append(f"error rate {fmt.percent(rate, digits=1)} > {limit} (HighErrorRate alert)")
    if dropped is None:
        amber.append("dropped iterations not measured")
    elif dropped > DROPPED_ITERATIONS_MAX:
        amber.append(f"{fmt.count(dropped)} dropped iterations (the load was not offered in full)")
    reasons = red + amber
    head = "" if present else "no signature present" + (", but " if reasons else "")
    return {"colour": "red" if red else "amber" if amber else "green",
            "text": head + "; ".join(reasons) if reasons else
            f"no signature present, error rate {fmt.percent(rate, digits=1)} ≤ {limit}, no dropped iterations"}


def night_regressions(store: Store, runs: list[NightRun],
                      previous: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Per complete run: the comparison with the previous night's run of the same scenario
    and variant, or why there is none."""
    prev_runs = {(r["scenario"], r["variant"]): r for r in (previous or {}).get("runs", [])
                 if r.get("status") == "complete" and r.get("run_id")}
    known = set(Run.ids(store))
    out: dict[str, dict[str, Any]] = {}
    for r in runs:
        if r.status != "complete" or not r.run_id:
            continue
        prev = prev_runs.get((r.scenario, r.variant))
        if previous is None:
            out[r.run_id] = {"regression": None, "note": "no previous night"}
        elif prev is None:
            out[r.run_id] = {"regression": None,
                             "note": f"the previous night ({previous['folder']}) has no complete {r.scenario} "
                                     f"{r.variant} run"}
        elif prev["run_id"] not in known:
            out[r.run_id] = {"regression": None, "previous_run_id": prev["run_id"],
                             "note": f"the previous run {prev['run_id']} is no longer in the store"}
        else:
            out[r.run_id] = {"previous_run_id": prev["run_id"], "previous_night": previous["folder"],
                             **regression_rows(compare_runs(Run.load(store, prev["run_id"]),
                                                            Run.load(store, r.run_id)).metrics)}
    return out


# -- the night ------------------------------------------------------------------------------------

def build_report(store_path: Path, runs: list[NightRun], out_dir: Path, reports_root: Path,
                 say: Say, only: tuple[str, ...] = NOTEBOOKS, started_at: str | None = None,
                 source_dir: Path | None = None) -> dict[str, Any]:
    """Everything after the runs: verdicts and regressions, the notebooks, index.html and
    night.json. The store must not be open in this process: each notebook's kernel opens it."""
    source_dir = source_dir or notebooks_dir()
    previous = previous_night(reports_root, out_dir)
    say("verdicts and regressions" + (f" (previous night: {previous['folder']})" if previous else
                                      " (no previous night)"))
    write_plotlyjs(out_dir)
    with Store(store_path) as store:
        verdicts = night_verdicts(store, runs)
        regressions = night_regressions(store, runs, previous)
        summaries = {r.run_id: _summary(run_summary(Run.load(store, r.run_id))) for r in runs
                     if r.status == "complete" and r.run_id}
        reports = night_reports(store, runs, out_dir, say)
        log_entries = night_log(store, runs, [out_dir / OPTLOG, reports_root_log(reports_root)], say)
    jobs = plan(runs, store_path, out_dir, NIGHTLY_RENDERER, only)
    health: dict[str, dict[str, Any]] = {}
    results: list[JobResult] = []
    for i, job in enumerate(jobs, 1):
        say(f"[{i}/{len(jobs)}] notebook {job.stem}")
        res = execute(job, source_dir, out_dir)
        results.append(res)
        say(f"[{i}/{len(jobs)}] {job.stem}: {res.status}, {res.figures} figures, {res.seconds:.1f} s"
            + (f" ({res.error})" if res.error else ""))
    for r in runs:
        rid = r.run_id or ""
        health[rid] = run_health(r.status, (verdicts.get(rid) or {}).get("present", []), summaries.get(rid),
                                 regressions.get(rid))
    night = {
        "date": out_dir.name,
        "started_at": started_at or datetime.now(UTC).isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "store": str(store_path),
        "previous_night": previous["folder"] if previous else None,
        "runs": [{**asdict(r), "summary": summaries.get(r.run_id or ""), "verdicts": verdicts.get(r.run_id or ""),
                  "regression": regressions.get(r.run_id or ""), "report": reports.get(r.run_id or ""),
                  "health": health.get(r.run_id or "")}
                 for r in runs],
        "optimization_log": {"file": OPTLOG, "entries": log_entries},
        "notebooks": [asdict(res) for res in results],
    }
    night["ok"] = all(r.status == "complete" for r in runs) and all(n.status == "ok" for n in results)
    (out_dir / NIGHT_JSON).write_text(json.dumps(night, indent=2, sort_keys=True, default=str) + "\n")
    (out_dir / "index.html").write_text(render_index(night), encoding="utf-8")
    say(f"wrote {out_dir / 'index.html'}")
    return night


def reports_root_log(reports_root: str | Path) -> Path:
    """The standing optimization log beside the nights (`perflab log add`'s default)."""
    return Path(reports_root) / OPTLOG


def night_reports(store: Store, runs: list[NightRun], out_dir: Path, say: Say) -> dict[str, dict[str, str]]:
    """A load-test report (markdown + offline HTML) per complete run, under runs/."""
    out: dict[str, dict[str, str]] = {}
    for r in runs:
        if r.status != "complete" or not r.run_id:
            continue
        say(f"report {r.run_id}")
        written = write_report(Run.load(store, r.run_id), out_dir=out_dir / RUN_REPORTS, plotly_js=out_dir / PLOTLY_JS)
        out[r.run_id] = {"markdown": str(Path(written.markdown).relative_to(out_dir)),
                         "html": str(Path(written.html).relative_to(out_dir))}
    return out


def night_log(store: Store, runs: list[NightRun], logs: list[Path], say: Say) -> list[dict[str, Any]]:
    """One optimization-log entry per scenario that ran both ways: before = default, after = fixed.

    The hypothesis is the scenario's own (its manifest's `why` and `fix`), so every number
    in the entry comes from the two runs; re-adding the same pair replaces its entry.
    """
    by: dict[str, dict[str, str]] = {}
    for r in runs:
        if r.status == "complete" and r.run_id:
            by.setdefault(r.scenario, {})[r.variant] = r.run_id
    entries = []
    for scenario, pair in sorted(by.items()):
        if "default" not in pair or "fixed" not in pair:
            continue
        before, after = Run.load(store, pair["default"]), Run.load(store, pair["fixed"])
        m = before.manifest
        fix = ", ".join(f"{k}={v}" for k, v in sorted((m.fix if m else {}).items()))
        why = (m.why if m else None) or scenario
        title = f"{scenario}: {fix}" if fix else scenario
        hypothesis = f"{why}; setting {fix} removes the bottleneck" if fix else why
        say(f"optimization log: {title}")
        entry = ""
        for log in logs:
            entry = add_entry(before, after, title=title, hypothesis=hypothesis, out=log)
        entries.append({"scenario": scenario, "before": pair["default"], "after": pair["fixed"], "title": title,
                        "conclusion": _conclusion(entry)})
    return entries


def _conclusion(entry: str) -> str:
    """The entry's Conclusion line (`**Conclusion:** …`), for the index page."""
    for line in entry.splitlines():
        text = line.strip()
        if text.lower().startswith("**conclusion:**"):
            return text[len("**conclusion:**"):].strip().replace("**", "")
    return ""


def _summary(summary: RunSummary) -> dict[str, Any]:
    s = to_jsonable(summary)
    keys = ("requests", "rps", "p95_ms", "error_rate", "dropped_iterations", "service_cpu_p50",
            "downstream_calls_per_request")
    return {k: s.get(k) for k in keys}
