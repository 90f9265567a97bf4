"""A pytest plugin (loaded with ``-p tests.notebooks.nbval_store`` from pyproject's addopts)
that gives the notebooks nbval runs a store of their own.

nbval starts one kernel per notebook, which inherits this process's environment, and a
notebook opens ``$PERFLAB_STORE`` (notebook_helpers.resolve_store_path). Without this the
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
    saved = os.environ.get("PERFLAB_STORE")
    os.environ["PERFLAB_STORE"] = str(_STATE["dir"] / "store.duckdb")
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PERFLAB_STORE", None)
        else:
            os.environ["PERFLAB_STORE"] = saved


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = _STATE.pop("dir", None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
