"""The committed notebooks: clean (no outputs at all), parameterized the same way, thin, and
wired into nbval so that a checked number that changes fails the tests."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import papermill
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = ["00-tour", "01-load-test", "02-profiles", "03-database", "04-signatures", "05-optimization-log"]
# The cells whose printed text is compared after nbval runs them (notebooks/README.md says
# why these): k6's summary, pprof's top and PgHero's statements, on the bundled samples.
# Their expected text lives in tests/notebooks/expected/, not in the notebooks.
CHECKED = {"01-load-test": ["summary"], "02-profiles": ["top"], "03-database": ["statements"]}
# A code cell is a call or a few: beyond this many lines it belongs in the package.
MAX_CODE_LINES = 8
# Building a figure is charts.py's job (tested there), never a notebook cell's.
INLINE_FIGURE = re.compile(r"\bgo\.(Figure|Scatter|Bar|Icicle)\b|\bpx\.|make_subplots|add_trace|update_layout")


def _strip_module() -> Any:
    spec = importlib.util.spec_from_file_location("strip_notebooks", ROOT / "scripts" / "strip_notebooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


strip = _strip_module()


def load(name: str) -> dict[str, Any]:
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))


def code_cells(nb: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def test_the_notebooks_are_the_six_of_the_spec() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_clean(name: str) -> None:
    nb = load(name)
    assert strip.problems(nb) == []
    assert strip.clean(nb) == nb  # stripping a clean notebook changes nothing
    assert [c["id"] for c in code_cells(nb) if c["outputs"] or c["execution_count"] is not None] == []


def test_checked_cells_have_expected_text_and_exist() -> None:
    from tests.notebooks.nbval_store import checked_cells, expected_file

    assert checked_cells() == CHECKED
    for name, ids in CHECKED.items():
        cell_ids = {c["id"] for c in code_cells(load(name))}
        for cid in ids:
            assert cid in cell_ids
            assert expected_file(name, cid).read_text(encoding="utf-8").strip()


def test_the_check_fails_on_outputs_counts_and_noise() -> None:
    # GIVEN a clean notebook WHEN it is saved from an editor after running THEN all is reported
    nb = load("02-profiles")
    dirty = json.loads(json.dumps(nb))
    dirty["metadata"]["widgets"] = {}
    setup = next(c for c in code_cells(dirty) if c["id"] == "setup")
    setup["execution_count"] = 3
    setup["outputs"] = [{"name": "stdout", "output_type": "stream", "text": "store: x\n"}]
    setup["metadata"]["execution"] = {"iopub.status.busy": "2026-11-22T10:00:00Z"}
    top = next(c for c in code_cells(dirty) if c["id"] == "top")
    top["outputs"].append({"output_type": "display_data", "data": {"text/html": "<b>x</b>"}, "metadata": {}})
    dirty["cells"][0]["id"] = "4f1c2a9e-77b1-4a0c-9f7e-1d2b3c4d5e6f"
    found = strip.problems(dirty)
    assert any("notebook metadata ['widgets']" in p for p in found)
    assert any("(setup): execution count 3" in p for p in found)
    assert any("(setup): 1 output(s)" in p for p in found)
    assert any("(setup): cell metadata ['execution']" in p for p in found)
    assert any("(top): 1 output(s)" in p for p in found)
    assert any("id is not a readable name" in p for p in found)
    cleaned = strip.clean(dirty)
    assert strip.problems(cleaned) == []
    assert [c["outputs"] for c in code_cells(cleaned)] == [c["outputs"] for c in code_cells(nb)]


@pytest.mark.parametrize("name", EXPECTED)
def test_parameters_then_the_renderer(name: str) -> None:
    nb = load(name)
    cells = code_cells(nb)
    tagged = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1 and cells[0] is tagged[0]
    params = papermill.inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb"))
    assert params["store_path"]["default"] == "None"
    # None: the setup chooses a renderer that draws in JupyterLab and in nbconvert's HTML
    assert params["renderer"]["default"] == "None" and params["create_store"]["default"] == "False"
    # every line of the cell is a parameter papermill understands (one "=" each)
    lines = [ln for ln in strip.source(cells[0]).splitlines() if ln.strip()]
    assert len(params) == len(lines)
    # the setup cell sets the renderer and checks every parameter that names something
    first_statements = [ln for ln in strip.source(cells[1]).splitlines() if ln.strip() and not ln.startswith(("#", "import", "from"))]
    setup_call = " ".join(first_statements)
    assert first_statements[0].startswith("store, samples = nh.setup(store_path, renderer=renderer, create_store=create_store")
    named = [p for p in params if p in ("run_id", "run_ids", "compare_run_id", "before_run_id", "after_run_id",
                                        "profile", "compare_profile", "log_path", "run_scenario", "scenario")]
    assert named and all(f"{p}={p}" in setup_call for p in named)


@pytest.mark.parametrize("name", EXPECTED)
def test_thin(name: str) -> None:
    for cell in code_cells(load(name))[1:]:  # the parameters cell is one line per parameter
        text = strip.source(cell)
        assert len(text.splitlines()) <= MAX_CODE_LINES, (cell["id"], text)
        assert not INLINE_FIGURE.search(text), (cell["id"], text)


def test_readme_names_every_notebook_and_the_checked_cells() -> None:
    readme = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    for name in EXPECTED:
        assert f"{name}.ipynb" in readme
    for name, ids in CHECKED.items():
        for cid in ids:
            assert f"`{cid}`" in readme


def _mini_notebook(stored: str, printed: str) -> dict[str, Any]:
    cell = {"cell_type": "code", "id": "checked", "metadata": {}, "execution_count": 1,
            "source": f"# NBVAL_CHECK_OUTPUT\nprint({printed!r})",
            "outputs": [{"name": "stdout", "output_type": "stream", "text": stored + "\n"}]}
    return {"cells": [cell], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                          "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def test_nbval_compares_checked_cells_through_the_sanitize_file(tmp_path: Path) -> None:
    # GIVEN committed text and a fresh run that differ only in ids, times, temp paths and
    # addresses (sanitized), and one that differs in a number
    same = _mini_notebook("run 20261122T225713Z-login-storm-default-42fa at 2026-11-22T22:57:13Z "
                          "in /tmp/abc/store.duckdb, 0x7f3a2b1c9d00, 127.0.0.1:4711: p95 64.02",
                          "run 20270101T000000Z-login-storm-fixed-9a9a at 2027-01-01 00:00:00.5+00:00 "
                          "in /tmp/other/x.duckdb, 0x55aa11223344, 127.0.0.1:9999: p95 64.02")
    changed = _mini_notebook("p95 64.02", "p95 64.03")
    (tmp_path / "same.ipynb").write_text(json.dumps(same))
    (tmp_path / "changed.ipynb").write_text(json.dumps(changed))
    # WHEN pytest runs them with the project's configuration (the addopts wire nbval)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT),
         "-p", "no:cacheprovider", "-q", str(tmp_path / "same.ipynb"), str(tmp_path / "changed.ipynb")],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    # THEN the sanitized difference passes and the changed number fails
    assert "1 failed, 1 passed" in result.stdout, result.stdout[-3000:]
    assert "p95 64.03" in result.stdout  # only changed.ipynb prints it: the failure is that one
