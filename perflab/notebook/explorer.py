"""The profile explorer of notebook 02: pick a profile and a sample type, type focus and
ignore regexps, choose the granularity, search frames; `go tool pprof -top`'s text, the focus's `-peek`,
the flame graph and the sandwich of the focused function with the largest cum (its callers
above, its callees below) follow, each computed by the same code as `perflab top`/`peek`.

Static first: the four panes are ordinary outputs (display handles) holding the default
view, so papermill, nbval and the offline HTML show them as they show any cell; the
controls are an ipywidgets box above them. In JupyterLab a change of a control computes
the view again and replaces the panes in place (``update_display``), so there is one copy
of each pane however often it changes. The store is let go after each update, as after a
cell (perflab.notebook.setup.release_between_cells).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from IPython import display as ipython_display

from perflab.analysis.pprof_frames import GRANULARITIES, FrameFilters
from perflab.analysis.pprof_merge import merged_info
from perflab.analysis.pprof_views import peek
from perflab.analysis.profiles import pprof_parts, profile_info, sample_types, top
from perflab.commands.peek import render as render_peek
from perflab.commands.top import render_cprofile, render_pprof
from perflab.errors import PerflabError
from perflab.report.charts import flame_graph, sandwich_graph
from perflab.store import Store
from perflab.vocab import CPROFILE, PPROF_SHAPED_KINDS, PROFILE_KINDS

DEFAULT_NODECOUNT = 20


@dataclass(frozen=True)
class View:
    """What the explorer shows: one profile, read with `perflab top`'s options."""

    source: int
    sample_type: str | None = None
    focus: str = ""
    ignore: str = ""
    granularity: str = "functions"
    nodecount: int = DEFAULT_NODECOUNT
    search: str = ""  # frames lit in the flame graph, with the share of the total they hold


@dataclass(frozen=True)
class Panes:
    top: str  # `go tool pprof -top`'s text, or one line saying why there is none
    peek: str  # `-peek` of the focus regexp, or one line saying why there is none
    flame: Any  # a plotly figure, or one line saying why there is none
    sandwich: Any  # the hottest focused function's callers and callees, or one line why not


def panes(store: Store, view: View) -> Panes:
    """The four panes of ``view``; a bad regexp or option reads as one line in each pane
    it touches, never as an exception (the controls are typed into)."""
    kind = str(store.source(view.source)["kind"])
    filters = FrameFilters(focus=view.focus or None, ignore=view.ignore or None)
    try:
        result = top(store, view.source, sample_type=view.sample_type, nodecount=view.nodecount,
                     filters=filters, granularity=view.granularity)
        lines = (render_cprofile(result) if kind == CPROFILE
                 else render_pprof(result, merged_info([profile_info(store, view.source)])))
        top_text = "\n".join(lines)
    except PerflabError as err:
        top_text = f"top: {err}"
    peek_text, hottest = _peek(store, view, kind)
    try:
        flame: Any = flame_graph(store, view.source, view.sample_type, filters=filters,
                                 granularity=view.granularity, search=view.search or None)
    except PerflabError as err:
        flame = f"flame graph: {err}"
    sandwich: Any = "sandwich: type a focus regexp; its hottest function is shown with its callers and callees"
    if hottest is not None:
        try:
            sandwich = sandwich_graph(store, view.source, hottest, view.sample_type)
        except PerflabError as err:
            sandwich = f"sandwich: {err}"
    return Panes(top_text, peek_text, flame, sandwich)


def _peek(store: Store, view: View, kind: str) -> tuple[str, str | None]:
    """-peek's text of the focus, and the matched function with the largest cum."""
    if kind not in PPROF_SHAPED_KINDS:
        return "peek: a cProfile dump keeps no callers per call path (snakeviz shows its call graph)", None
    if not view.focus:
        return "peek: type a focus regexp to see the callers and callees of the functions it matches", None
    try:
        # as `perflab peek FILE FOCUS --ignore IGNORE` reads it: the profile as pprof reads one
        parts, idx, stype, unit = pprof_parts(store, [view.source], 1, 0, view.sample_type)
        filters = FrameFilters(ignore=view.ignore or None)
        result = peek(store, parts, idx, view.focus, unit, filters=filters)
        facts = {"source_id": view.source, "source_ids": [view.source], "sample_type": stype, "unit": unit,
                 "mean": False,
                 "regex": view.focus, "filters": filters.legend()}
        # The sandwich's subject: the matched function with the largest cum (peek lists by flat).
        hottest = str(max(result["nodes"], key=lambda n: abs(n["cum"]))["name"]) if result["nodes"] else None
        return "\n".join(render_peek(store, {**facts, **result})), hottest
    except PerflabError as err:
        return f"peek: {err}", None


class Explorer:
    """The controls and the panes they drive (see the module docstring)."""

    def __init__(self, store: Store, profiles: dict[str, int], view: View,
                 show: Callable[..., Any] | None = None) -> None:
        self.store = store
        self.view = view
        self._show = show or ipython_display.display
        self._ids = {pane: f"perflab-explorer-{pane}-{uuid.uuid4().hex}" for pane in _PANES}
        self.controls = self._controls(profiles)

    def _controls(self, profiles: dict[str, int]) -> Any:
        import ipywidgets as w  # type: ignore[import-untyped]  # ships no type stubs

        self.profile = w.Dropdown(options=list(profiles.items()), value=self.view.source, description="profile")
        self.sample_type = w.Dropdown(options=self._types(self.view.source), value=self.view.sample_type,
                                      description="sample type")
        self.focus = w.Text(value=self.view.focus, description="focus", placeholder="regexp, e.g. sha256")
        self.ignore = w.Text(value=self.view.ignore, description="ignore", placeholder="regexp, e.g. runtime")
        self.granularity = w.Dropdown(options=list(GRANULARITIES), value=self.view.granularity,
                                      description="granularity")
        self.nodecount = w.BoundedIntText(value=self.view.nodecount, min=0, max=10_000, description="nodecount")
        self.search = w.Text(value=self.view.search, description="search", placeholder="frames to light, e.g. json")
        self.profile.observe(self._profile_changed, names="value")
        for control in (self.sample_type, self.granularity, self.nodecount):
            control.observe(lambda _change: self.update(), names="value")
        for text in (self.focus, self.ignore, self.search):
            text.continuous_update = False  # recompute on Enter or leaving the field, not per key
            text.observe(lambda _change: self.update(), names="value")
        return w.VBox([w.HBox([self.profile, self.sample_type, self.granularity]),
                       w.HBox([self.focus, self.ignore, self.nodecount]), w.HBox([self.search])])

    def _types(self, source: int) -> list[tuple[str, str | None]]:
        if str(self.store.source(source)["kind"]) not in PPROF_SHAPED_KINDS:
            return [("cpu (tottime)", None)]
        return [("the profile's default", None)] + [(f"{t['type']} ({t['unit']})", t["type"])
                                                     for t in sample_types(self.store, source)]

    def _profile_changed(self, change: dict[str, Any]) -> None:
        # A new profile has other sample types: the default, then its list.
        self.sample_type.unobserve_all()
        self.sample_type.options = self._types(int(change["new"]))
        self.sample_type.value = None
        self.sample_type.observe(lambda _change: self.update(), names="value")
        self.update()

    def current(self) -> View:
        return replace(self.view, source=int(self.profile.value), sample_type=self.sample_type.value,
                       focus=self.focus.value.strip(), ignore=self.ignore.value.strip(),
                       granularity=self.granularity.value, nodecount=int(self.nodecount.value),
                       search=self.search.value.strip())

    def display(self) -> None:
        """The controls, then the panes of the current view (outputs of the cell)."""
        self._show(_Controls(self.controls))
        shown = panes(self.store, self.current())
        for pane, obj in _objects(shown).items():
            self._show(obj, display_id=self._ids[pane])

    def update(self) -> Panes:
        """Compute the panes of the controls' view and replace the shown ones."""
        self.view = self.current()
        try:
            shown = panes(self.store, self.view)
        finally:
            self.store.release()
        for pane, obj in _objects(shown).items():
            self._show(obj, display_id=self._ids[pane], update=True)
        return shown


class _Controls:
    """The widget box, with a line for pages that cannot run it (nbconvert's HTML)."""

    def __init__(self, box: Any) -> None:
        self.box = box

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self.box._repr_mimebundle_(**kwargs))
        bundle["text/plain"] = ("The explorer's controls (profile, sample type, focus, ignore, granularity): "
                                "open this notebook in JupyterLab to use them; shown below is the default view.")
        return bundle


_PANES = ("top", "peek", "flame", "sandwich")


def _objects(shown: Panes) -> dict[str, Any]:
    def shown_as(obj: Any) -> Any:
        return _Text(obj) if isinstance(obj, str) else _Figure(obj)

    return {"top": _Text(shown.top), "peek": _Text(shown.peek), "flame": shown_as(shown.flame),
            "sandwich": shown_as(shown.sandwich)}


class _Figure:
    """A plotly figure by its mimebundle: a figure shown directly takes plotly's own
    _ipython_display_ path, which drops the display id an update needs."""

    def __init__(self, fig: Any) -> None:
        self.fig = fig

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.fig._repr_mimebundle_(**kwargs)


class _Text:
    """Fixed-width text (pprof's columns) in HTML and plain text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        import html

        return {"text/plain": self.text, "text/html": f"<pre>{html.escape(self.text)}</pre>"}


def profile_choices(store: Store, run_id: str | None = None) -> dict[str, int]:
    """{label: source id} of the profiles of a run (or of the whole store), oldest first."""
    kinds = list(PROFILE_KINDS)
    rows = store.con.execute(
        "SELECT source_id, kind, path FROM sources WHERE list_contains(?, kind)"
        + (" AND run_id = ?" if run_id else "") + " ORDER BY source_id",
        [kinds, run_id] if run_id else [kinds],
    ).fetchall()
    return {f"{sid}: {kind} {os.path.basename(path)}": int(sid) for sid, kind, path in rows}


def explorer(store: Store, profiles: dict[str, int], source: int | None = None,
             sample_type: str | None = None) -> Explorer:
    """Show the explorer over ``profiles`` ({label: source id}), starting on ``source``
    (default: the first) and ``sample_type`` (default: the profile's own)."""
    if not profiles:
        raise PerflabError("the explorer needs at least one profile")
    start = View(source=source if source is not None else next(iter(profiles.values())), sample_type=sample_type)
    if start.source not in profiles.values():
        profiles = {f"source {start.source}": start.source, **profiles}
    ex = Explorer(store, profiles, start)
    ex.display()
    return ex
