"""Notebooks safe to schedule: each notebook, run by papermill with a parameter that names
nothing, fails at its setup cell with one line (a ParameterError), and a store path that
is not there is not created."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
import pytest
from papermill.exceptions import PapermillExecutionError

from perflab import notebook as nh
from perflab.paths import notebooks_dir
from perflab.store import Store

# A parameter of each notebook that points at nothing, and the line that must say so.
BAD: dict[str, tuple[dict[str, Any], str]] = {
    "00-tour": ({"run_ids": ["20260101T000000Z-nope"]}, "run_ids[0] '20260101T000000Z-nope': no such run in "),
    "01-load-test": ({"run_id": "nope"}, "run_id 'nope': no such run in "),
    "02-profiles": ({"profile": "/nonexistent/cpu.pb.gz"},
                    "profile: /nonexistent/cpu.pb.gz: no such file, and not a source id"),
    # a mistyped store: refused, never created (checked below)
    "03-database": ({"store_path": "{tmp}/perflab.duckbd"},
                    "store_path {tmp}/perflab.duckbd: no such store (create_store=True makes a new one)"),
    "04-signatures": ({"run_ids": ["sample-k6", "typo"]}, "run_ids[1] 'typo': no such run in "),
    "05-optimization-log": ({"before_run_id": "sample-k6", "after_run_id": "nope"},
                            "after_run_id 'nope': no such run in "),
}


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("params") / "store.duckdb"
    with Store(path) as store:
        nh.ingest_samples(store)
    yield path


def _run(notebook: str, out: Path, **parameters: Any) -> tuple[str, Any]:
    """papermill's error message and the executed notebook of a run that must fail."""
    with pytest.raises(PapermillExecutionError) as err:
        pm.execute_notebook(str(notebooks_dir() / f"{notebook}.ipynb"), str(out), parameters=parameters,
                            cwd=str(out.parent), progress_bar=False, log_output=False, kernel_name="python3")
    return str(err.value), nbformat.read(out, as_version=4)


def _error_lines(message: str) -> list[str]:
    """What papermill shows after its header ('---…', 'Exception encountered at "In [N]":')."""
    lines = [line for line in message.splitlines() if line.strip()]
    assert re.fullmatch(r"-+", lines[0]) and re.fullmatch(r'Exception encountered at "In \[\d+\]":', lines[1])
    return lines[2:]


@pytest.mark.slow
@pytest.mark.parametrize("notebook", sorted(BAD))
def test_a_parameter_that_names_nothing_fails_the_run_with_one_line(notebook: str, store_path: Path,
                                                                   tmp_path: Path) -> None:
    params, line = BAD[notebook]
    params = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in params.items()}
    # WHEN papermill runs the notebook with it
    message, nb = _run(notebook, tmp_path / "out.ipynb", **{"store_path": str(store_path), **params})
    # THEN the run fails with one line, the perflab error naming the parameter
    [shown] = _error_lines(message)
    assert shown.startswith(f"ParameterError: {line.format(tmp=tmp_path)}"), shown
    # at the setup cell: no later cell ran, so none quietly showed the bundled samples
    failed = [c for c in nb.cells if c.cell_type == "code" and any(o.output_type == "error" for o in c.outputs)]
    assert [c.id for c in failed] == ["setup"]
    ran = [c.id for c in nb.cells if c.cell_type == "code" and c.execution_count]
    assert ran[-1] == "setup"
    assert nb.metadata.papermill.exception is True
    assert not (tmp_path / "perflab.duckbd").exists()
