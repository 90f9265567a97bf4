"""The night's index page: runs with their numbers, verdicts and regressions; the
optimization log; the notebooks. Written in the document model and rendered by the one
HTML writer (perflab.report.html)."""

from __future__ import annotations

from typing import Any

from perflab import fmt
from perflab.report.document import Block, Cell, Heading, Paragraph, Table
from perflab.report.html import render_html

NIGHT_JSON = "night.json"
OPTLOG = "optimization-log.md"


_HEALTH_CELL = {"green": "none", "amber": "warn", "red": "present"}
_HEALTH_ROW: dict[str, str | None] = {"green": None, "amber": "warn", "red": "bad"}
_NOISE = {True: "beyond noise", False: "within noise", None: "not tested"}


def _md(text: Any) -> str:
    """Text from a run or a file name, safe inside the document's inline markup."""
    return str(text).replace("`", "'").replace("*", "\\*").replace("[", "(").replace("]", ")")


def _run_row(r: dict[str, Any]) -> tuple[list[str | Cell], str | None]:
    s = r.get("summary") or {}
    reg = r.get("regression") or {}
    health = r.get("health") or {}
    # The colour and its reasons are nightly.run_health's: green only with no signature and
    # the error rate and dropped iterations within the alert rules.
    verdict = (Cell(_md(health["text"]), _HEALTH_CELL[health["colour"]]) if health
               else Cell(fmt.DASH, "muted"))
    if reg.get("regression"):
        regtext = Cell("REGRESSION: " + ", ".join(reg["worse"]), "present")
    elif reg.get("regression") is False:
        regtext = Cell(f"none vs `{_md(reg.get('previous_run_id'))}`", "ok")
    else:
        regtext = Cell(_md(reg.get("note", fmt.DASH)), "muted")
    details = [f"{_md(m)}: {fmt.value(row.get('a'), row.get('unit') or '')} → "
               f"{fmt.value(row.get('b'), row.get('unit') or '')} ({row.get('direction')}, "
               f"{_NOISE[row.get('beyond_noise')]})" for m, row in (reg.get("metrics") or {}).items()]
    if details:
        regtext = Cell(regtext.text + "  \n" + "  \n".join(details), regtext.cls)
    status = _md(r["status"]) + (f"  \n{_md(r.get('error'))}" if r.get("error") else "")
    if r.get("report"):
        status += f"  \n[report]({r['report']['html']})"
    row: list[str | Cell] = [
        _md(r["scenario"]), _md(r["variant"]), f"`{_md(r['run_id'])}`", status,
        *(Cell(fmt.cell(s.get(k), k), num=True) for k in ("p95_ms", "error_rate", "rps", "service_cpu_p50")), verdict,
        regtext]
    colour = str(health.get("colour"))
    return row, _HEALTH_ROW[colour] if colour in _HEALTH_ROW else ("bad" if r["status"] != "complete" else None)


def index_document(night: dict[str, Any]) -> list[Block]:
    runs = [_run_row(r) for r in night["runs"]]
    log = night.get("optimization_log") or {}
    log_file = log.get("file", OPTLOG)
    prev = night.get("previous_night")
    head = "all runs and notebooks ok" if night.get("ok") else "something failed: see the rows marked red"
    against = f"the night of [{_md(prev)}](../{prev}/index.html)" if prev else "no previous night"
    nbs: list[list[str | Cell]] = []
    for n in night["notebooks"]:
        link = f"[{_md(n['stem'])}]({n['html']})" if n.get("html") else _md(n["stem"])
        state = Cell("ok", "ok") if n["status"] == "ok" else Cell(f"failed: {_md(n.get('error'))}", "present")
        nbs.append([link, state, Cell(str(n["figures"]), num=True), Cell(f"{n['seconds']:.1f}", num=True),
                    f"[.ipynb]({n['ipynb']})"])
    return [
        Heading(1, f"perflab nightly {night['date']}"),
        Paragraph(f"{head}. Started {night['started_at']}, finished {night['finished_at']}. Store "
                  f"`{_md(night['store'])}`. Regressions are judged against {against}: p95 latency or error rate "
                  "worse beyond noise (the 95 % interval of the change excludes 0). A run is green only with no "
                  "signature present and its error rate and dropped iterations within the alert rules; amber "
                  "names what is not; red is a failed or regressed run."),
        Heading(2, "Runs and the doctor's verdicts"),
        Table(["scenario", "variant", "run", "status", "p95", "error rate", "throughput", "service CPU p50",
               "verdict", "regression vs previous night"],
              [row for row, _ in runs], [cls for _, cls in runs], empty="no runs"),
        Heading(2, "Optimization log"),
        Paragraph(f"One entry per scenario, before (default) → after (fixed): [{_md(log_file)}]({log_file})."),
        Table(["scenario", "before", "after", "conclusion"],
              [[_md(x["scenario"]), f"`{_md(x['before'])}`", f"`{_md(x['after'])}`", _md(x["conclusion"])]
               for x in log.get("entries", [])], empty="no scenario ran both ways"),
        Heading(2, "Notebooks"),
        Table(["notebook", "status", "figures", "seconds", "executed notebook"], nbs, empty="no notebooks"),
        Paragraph(f"Every page works offline (plotly.js from this folder's plotly.min.js). "
                  f"Machine-readable: [{NIGHT_JSON}]({NIGHT_JSON}).",
                  "muted"),
    ]


def render_index(night: dict[str, Any]) -> str:
    return render_html(index_document(night), f"perflab nightly {night['date']}")
