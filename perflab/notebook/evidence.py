"""The charts that show each signature's evidence, next to the doctor's verdict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go

from perflab import fmt
from perflab.analysis.run import Run
from perflab.analysis.signatures import Diagnosis
from perflab.errors import PerflabError
from perflab.notebook.display import markdown, show
from perflab.notebook.subjects import Missing, run_subject
from perflab.report import charts
from perflab.store import Store

# Which charts show each signature's evidence: the pictures a reader should look at next
# to the verdict, by name (a perflab.report.charts function of the run, or one of the
# profile and activity views in :func:`evidence`). A chart whose data the run lacks is
# named with the reason instead of drawn.
EVIDENCE_CHARTS: dict[str, tuple[str, ...]] = {
    "login-storm": ("cpu_vs_latency", "cpu_latency_scatter", "cpu_flame_graph"),
    "false-idle": ("inflight_and_waiting", "cpu_vs_latency", "contention_flame_graph"),
    "retry-storm": ("app_vs_db_rate", "errors_by_kind"),
    "pool-saturation": ("inflight_and_waiting",),
    "lock-contention": ("contention_flame_graph", "activity_states_chart"),
    "memory-pressure": ("process_resources", "heap_flame_graph"),
    "loadgen-saturated": ("process_resources", "latency_over_time"),
}


def evidence(run: Run, signature: str) -> list[tuple[str, Callable[[], Any]]]:
    """The charts that show a signature's evidence for one run, as (name, draw) pairs;
    ``draw()`` returns the figure or raises PerflabError saying what the run lacks."""
    store = run.store
    src = run_subject(run)

    def flame(ref: int | Missing) -> Callable[[], go.Figure]:
        def draw() -> go.Figure:
            if isinstance(ref, Missing):
                raise PerflabError(ref.reason)
            return charts.flame_graph(store, ref)
        return draw

    def activity() -> go.Figure:
        if isinstance(src.pg_activity, Missing):
            raise PerflabError(src.pg_activity.reason)
        return charts.activity_states_chart(store, src.pg_activity)

    special: dict[str, Callable[[], go.Figure]] = {
        "cpu_flame_graph": flame(src.cpu_profile),
        "contention_flame_graph": flame(src.profile_with("delay", "contentions")),
        "heap_flame_graph": flame(src.profile_with("inuse_space", "alloc_space", "space")),
        "activity_states_chart": activity,
    }
    out: list[tuple[str, Callable[[], Any]]] = []
    for name in EVIDENCE_CHARTS.get(signature, ()):
        out.append((name, special.get(name) or _run_chart(getattr(charts, name), run)))
    return out


def _run_chart(fn: Callable[[Run], go.Figure], run: Run) -> Callable[[], go.Figure]:
    def draw() -> go.Figure:
        return fn(run)
    return draw


def show_evidence(store: Store, diagnoses: list[Diagnosis], verdicts: tuple[str, ...] = ("present",)) -> int:
    """Draw the evidence charts of every finding with one of ``verdicts``; returns how many
    findings were shown (a reader sees "none" said rather than an empty section)."""
    shown = 0
    for d in diagnoses:
        run = Run.load(store, d.run_id)
        for f in d.findings:
            if f.verdict not in verdicts:
                continue
            shown += 1
            markdown(f"#### {d.run_id}: {f.signature} ({f.verdict})")
            for name, draw in evidence(run, f.signature):
                show(_named(draw, name))
    if not shown:
        markdown(f"*No finding is {' or '.join(verdicts)}: nothing to draw.*")
    return shown


def _named(draw: Callable[[], Any], name: str) -> Callable[[], Any]:
    """``draw`` under the chart's name, which a "not shown" line names."""
    def call() -> Any:
        return draw()
    call.__name__ = name
    return call


def evidence_list(diagnoses: list[Diagnosis]) -> str:
    """Every finding's evidence as a markdown list a person reads (``name: value unit``,
    fmt.evidence_value), nested lists and maps one level down: what 04-signatures shows
    instead of the findings' JSON."""
    lines: list[str] = []
    for d in diagnoses:
        lines.append(f"**{d.run_id}**\n")
        for f in d.findings:
            lines.append(f"- **{f.signature}**: {f.verdict}" + (f" — {f.recommendation}" if f.recommendation else ""))
            for key in sorted(f.evidence):
                lines.extend(_evidence_lines(key, f.evidence[key], "  "))
        lines.append("")
    return "\n".join(lines)


def _evidence_lines(key: str, v: Any, indent: str) -> list[str]:
    if isinstance(v, dict):
        return [f"{indent}- {key}:"] + [line for k in sorted(v) for line in _evidence_lines(k, v[k], indent + "  ")]
    if isinstance(v, (list, tuple)):
        items = [fmt.evidence_value(key, x) if not isinstance(x, (dict, list, tuple)) else str(x) for x in v]
        return [f"{indent}- {key}: " + ("; ".join(items) if items else "none")]
    return [f"{indent}- {key}: {fmt.evidence_value(key, v) if v is not None else 'not measured'}"]
