"""perflab.notebook.setup: the renderer a notebook chooses, the store it refuses to invent,
and the parameters it checks before any cell reads them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.io as pio
import pytest

from perflab import notebook as nh
from perflab.notebook.setup import SERVER_KERNEL_ENV
from perflab.paths import project_root
from perflab.store import Store

PROFILE = "pprof/small_loginstorm.cpu.pb.gz"


@pytest.fixture
def store_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An existing store with the samples, named by nothing in the environment."""
    monkeypatch.delenv("PERFLAB_STORE", raising=False)
    monkeypatch.delenv(SERVER_KERNEL_ENV, raising=False)
    path = tmp_path / "store.duckdb"
    with Store(path) as store:
        nh.ingest_samples(store)
    return path


def _setup(*args: Any, **kwargs: Any) -> Any:
    store, samples = nh.setup(*args, **kwargs)
    store.close()
    return samples


def test_a_named_store_that_is_not_there_is_an_error_unless_create_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_file: Path) -> None:
    typo = tmp_path / "perflab.duckbd"
    # WHEN the store_path parameter names nothing THEN one line says so, and no file appears
    with pytest.raises(nh.ParameterError, match=r"^store_path .*perflab\.duckbd: no such store "
                                                r"\(create_store=True makes a new one\)$"):
        nh.setup(typo)
    assert not typo.exists()
    # the same for $PERFLAB_STORE
    monkeypatch.setenv("PERFLAB_STORE", str(typo))
    with pytest.raises(nh.ParameterError, match=r"^PERFLAB_STORE .*: no such store"):
        nh.setup()
    assert not typo.exists()
    # WHEN create_store says so THEN it is made, with the samples
    assert len(_setup(create_store=True).sources) == 10 and typo.is_file()
    # an existing store needs nothing
    assert len(_setup(store_file).sources) == 10


def test_bad_parameters_stop_the_setup_with_one_line(store_file: Path, tmp_path: Path) -> None:
    cases = {
        "run_id": ({"run_id": "nope"}, "run_id 'nope': no such run in "),
        "compare": ({"run_id": "sample-k6", "compare_run_id": "gone"}, "compare_run_id 'gone': no such run"),
        "run_ids": ({"run_ids": ["sample-k6", "x1"]}, r"run_ids\[1\] 'x1': no such run"),
        "run_ids as a string": ({"run_ids": "sample-k6"}, "run_ids 'sample-k6': a list of run ids"),
        "profile": ({"profile": str(tmp_path / "cpu.pb.gz")}, "profile: .*cpu.pb.gz: no such file, and not a source id"),
        "profile id": ({"compare_profile": 999}, "compare_profile: no source 999"),
        "log_path": ({"log_path": "notebooks/log.md"}, "log_path notebooks/log.md: outside .*/reports/"),
        "renderer": ({"renderer": "plotly_mimetyp"}, "renderer 'plotly_mimetyp': not a plotly renderer"),
        "run_scenario": ({"run_scenario": "login_storm"}, "run_scenario 'login_storm': not a lab scenario "
                                                          r"\(one of healthy, login-storm, false-idle, retry-storm\)"),
        "scenario": ({"scenario": "login-storm"}, "scenario 'login-storm': no run of it in "),
    }
    for name, (params, message) in cases.items():
        with pytest.raises(nh.ParameterError, match=message) as err:
            nh.setup(store_file, **params)
        # THEN IPython (and so papermill and nbconvert) shows this one line, no traceback
        assert err.value._render_traceback_() == [f"ParameterError: {err.value}"], name
        assert "\n" not in str(err.value), name
    # the store was closed on the way out: it opens again for writing in this process
    Store(store_file).close()
    # and parameters that name what is there pass
    assert _setup(store_file, run_id="sample-k6", compare_run_id="sample-pg", run_ids=["sample-pg"],
                  profile=str(project_root() / "data" / "samples" / PROFILE), compare_profile=1,
                  log_path="reports/optimization-log.md", run_scenario="false-idle")


def test_log_path_is_taken_from_the_checkout_and_must_be_under_reports() -> None:
    root = project_root()
    assert nh.report_path(None) is None
    assert nh.report_path("reports/optimization-log.md") == (root / "reports" / "optimization-log.md").resolve()
    assert nh.report_path(root / "reports" / "x" / "log.md") == (root / "reports" / "x" / "log.md").resolve()
    for outside in ("reports/../notebooks/log.md", "/tmp/log.md", "log.md"):
        with pytest.raises(nh.ParameterError, match="notebooks write only under reports/"):
            nh.report_path(outside)


def test_the_renderer_is_chosen_where_the_kernel_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    # nbconvert, papermill, nbval: the JSON plus an offline HTML rendering
    assert nh.set_renderer() == "plotly_mimetype+notebook" == pio.renderers.default
    # a kernel JupyterLab started: the JSON only, which its plotly extension draws
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/00-tour.ipynb")
    assert nh.set_renderer() == "plotly_mimetype" == pio.renderers.default
    # a parameter wins (nightly's)
    assert nh.set_renderer("plotly_mimetype") == "plotly_mimetype"
