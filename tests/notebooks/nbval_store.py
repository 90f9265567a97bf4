"""A pytest plugin (loaded with ``-p tests.notebooks.nbval_store`` from pyproject's addopts)
that gives the notebooks nbval runs a store of their own, and checks a few cells' output.

Checked cells: notebooks are committed without outputs, so nbval (in lax mode) only
proves that every cell runs. For the few cells whose printed text is a number a trusted
tool also computes (k6's summary, pprof's top, the statement deltas), the expected text
lives in tests/notebooks/expected/NOTEBOOK__CELLID.txt; after nbval has run such a cell,
its stdout, passed through the same sanitize file, must equal that text.

nbval starts one kernel per notebook, which inherits this process's environment, and a
notebook opens ``$PERFLAB_STORE`` (perflab.notebook.resolve_store_path). Without this the
tests would write the samples into the developer's data/perflab.duckdb, and fail when a
JupyterLab kernel holds that file open (DuckDB allows one writing process). All notebooks
of a session share one temporary store: the first ingests the samples, the rest find them.
The variable is set only while an nbval item is set up (when its kernel starts), so no
other test sees it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_STATE: dict[str, Path] = {}
EXPECTED_DIR = Path(__file__).parent / "expected"


def expected_file(notebook: str, cell_id: str) -> Path:
    return EXPECTED_DIR / f"{notebook}__{cell_id}.txt"


def checked_cells() -> dict[str, list[str]]:
    """{notebook stem: [cell ids]} of the cells with an expected output."""
    out: dict[str, list[str]] = {}
    for f in sorted(EXPECTED_DIR.glob("*__*.txt")):
        nb, cid = f.stem.split("__", 1)
        out.setdefault(nb, []).append(cid)
    return out


def _is_notebook_item(item: pytest.Item) -> bool:
    return type(item).__module__.startswith("nbval")


def pytest_configure(config: pytest.Config) -> None:
    # The sanitize file is named relative to the checkout; make it so from any cwd.
    sanitize = getattr(config.option, "nbval_sanitize_with", None)
    if sanitize and not Path(sanitize).is_absolute() and not Path(sanitize).exists():
        config.option.nbval_sanitize_with = str(config.rootpath / sanitize)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    if not _is_notebook_item(item):
        yield
        return
    if "dir" not in _STATE:
        _STATE["dir"] = Path(tempfile.mkdtemp(prefix="perflab-nbval-"))
        # Made here, as `make lab` makes its store: a notebook refuses a named store that
        # is not there (a mistyped path must not become a new empty store).
        from perflab.store import Store

        Store(_STATE["dir"] / "store.duckdb").close()
    saved = os.environ.get("PERFLAB_STORE")
    os.environ["PERFLAB_STORE"] = str(_STATE["dir"] / "store.duckdb")
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PERFLAB_STORE", None)
        else:
            os.environ["PERFLAB_STORE"] = saved


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    outcome = yield
    if not _is_notebook_item(item) or outcome.excinfo is not None:
        return
    cell = getattr(item, "cell", None) or {}
    expected = expected_file(Path(str(item.fspath)).stem, cell.get("id", ""))
    if not expected.exists():
        return
    printed = "".join(o.get("text", "") for o in (item.test_outputs or [])
                      if o.get("output_type") == "stream" and o.get("name") == "stdout")
    want, got = item.sanitize(expected.read_text(encoding="utf-8")), item.sanitize(printed)
    if got != want:
        import difflib

        diff = "\n".join(difflib.unified_diff(want.splitlines(), got.splitlines(), "expected", "printed",
                                             lineterm=""))
        outcome.force_exception(AssertionError(
            f"{expected.name}: the cell printed something else (refresh with "
            f"scripts/strip_notebooks.py --refresh if the change is intended)\n{diff}"))


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = _STATE.pop("dir", None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
