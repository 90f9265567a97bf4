"""The profile explorer of notebook 02 (perflab.notebook.explorer): its panes are what
`perflab top` and `perflab peek` print with the same options, and a control changed
replaces the shown panes in place."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from perflab.analysis.pprof_frames import FrameFilters
from perflab.analysis.profiles import stacks, top
from perflab.ingest import ingest_path
from perflab.notebook.explorer import Explorer, View, panes, profile_choices
from perflab.report.flame_search import MATCH_COLOR
from perflab.store import Store
from tests.helpers import run_cli

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LOGIN_CPU = FIXTURES / "pprof" / "generated" / "small_loginstorm.cpu.pb.gz"
LOGIN_HEAP = FIXTURES / "pprof" / "generated" / "small_loginstorm.heap.pb.gz"
_HEADER = "      flat  flat%   sum%        cum   cum%"


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, int, int]:
    path = tmp_path / "s.duckdb"
    with Store(path) as store:
        cpu = ingest_path(store, LOGIN_CPU).source_id
        heap = ingest_path(store, LOGIN_HEAP).source_id
    return path, cpu, heap


def _cli(path: Path, *args: str) -> str:
    out = run_cli(*args, store=path)
    assert out.returncode == 0, out.stderr
    return out.stdout.rstrip("\n")


def _root_children(fig: Any) -> int:
    d = fig.data[0]
    return int(sum(v for v, p in zip(d.values, d.parents, strict=True) if p == "root"))


def test_the_panes_are_perflab_top_and_peek_with_the_same_options(stored: tuple[Path, int, int]) -> None:
    path, cpu, _ = stored
    with Store(path) as store:
        shown = panes(store, View(source=cpu, focus="hmac", ignore="Reset", granularity="lines", nodecount=7))
        kept = top(store, cpu, nodefraction=0, nodecount=0, filters=FrameFilters(focus="hmac", ignore="Reset"),
                   granularity="lines")
    assert shown.top == _cli(path, "top", str(cpu), "--focus", "hmac", "--ignore", "Reset", "--granularity", "lines",
                             "--nodecount", "7")
    rows = shown.top.splitlines()[shown.top.splitlines().index(_HEADER) + 1:]
    assert "Active filters:" in shown.top and rows and all(re.search(r" \S+:\d+$", r) for r in rows)
    assert shown.peek == _cli(path, "peek", str(cpu), "hmac", "--ignore", "Reset")
    assert "   ignore=Reset" in shown.peek.splitlines()
    # the flame graph draws the stacks top reads: below the root, every kept sample once
    assert _root_children(shown.flame) == sum(r["flat"] for r in kept["rows"]) > 0
    assert "focus=hmac, ignore=Reset" in shown.flame.layout.title.text
    # the sandwich is of the matched function with the largest cum
    assert shown.sandwich.layout.title.text.startswith("Sandwich of crypto/hmac.(*hmac).Sum in source")
    assert "cum 1.56 s" in shown.sandwich.layout.title.text  # pprof: hmac.Sum's cum 1.56s


def test_a_changed_control_replaces_the_shown_panes(stored: tuple[Path, int, int]) -> None:
    path, cpu, heap = stored
    calls: list[tuple[Any, dict[str, Any]]] = []
    with Store(path) as store:
        ex = Explorer(store, profile_choices(store), View(source=cpu), show=lambda obj, **kw: calls.append((obj, kw)))
        ex.display()
        store.release()  # as after a notebook cell: the CLI below may open the store
        # the controls, then four panes with display ids
        ids = [kw["display_id"] for _, kw in calls[1:]]
        assert len(calls) == 5 and len(set(ids)) == 4 and not any(kw.get("update") for _, kw in calls)
        assert calls[1][0].text == _cli(path, "top", str(cpu))
        calls.clear()
        # WHEN a focus is typed THEN the same four panes are replaced with the focused view
        ex.focus.value = "sha256"
        assert [kw["display_id"] for _, kw in calls] == ids and all(kw["update"] for _, kw in calls)
        assert calls[0][0].text == _cli(path, "top", str(cpu), "--focus", "sha256")
        assert calls[1][0].text == _cli(path, "peek", str(cpu), "sha256")
        # WHEN another profile is picked THEN its sample types are offered, its default chosen
        calls.clear()
        ex.profile.value = heap
        assert [label for label, _ in ex.sample_type.options][1:] == [
            "alloc_objects (count)", "alloc_space (bytes)", "inuse_objects (count)", "inuse_space (bytes)"]
        assert calls[-4][0].text == _cli(path, "top", str(heap), "--focus", "sha256")
        # a regexp RE2 refuses reads as one line in the panes, not an exception
        ex.focus.value = "("
        assert calls[-4][0].text.startswith("top: ") and "\n" not in calls[-4][0].text


def test_a_search_lights_frames_and_gives_the_share_their_stacks_hold(stored: tuple[Path, int, int]) -> None:
    path, cpu, _ = stored
    with Store(path) as store:
        shown = panes(store, View(source=cpu, search="MallocGC"))
        df = stacks(store, cpu)
    total = int(df["value"].sum())
    # pprof's cum of the matching frames: each stack holding one counts once
    holding = sum(v for frames, v in df.iter_rows() if any("mallocgc" in f.lower() for f in frames))
    assert 0 < holding < total
    title = shown.flame.layout.title.text
    assert title.endswith(f"of the total") and f"{holding / total:.2%} of the total" in title
    trace = shown.flame.data[0]
    lit = [label for label, color in zip(trace.labels, trace.marker.colors, strict=True) if color == MATCH_COLOR]
    assert lit and all("mallocgc" in label.lower() for label in lit)
    assert f"search 'MallocGC': {len(lit)} boxes lit" in title
