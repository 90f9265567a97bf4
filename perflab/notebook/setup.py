"""Starting a notebook: its plotly renderer, its store with the bundled samples in it, and
its parameters checked before any cell reads them.

``setup(store_path, renderer=..., create_store=..., run_id=..., ...)`` sets the plotly
renderer, opens the store the notebook was pointed at (the parameter, else
``$PERFLAB_STORE``, else the checkout's ``data/perflab.duckdb``), ingests the bundled
samples (data/samples), so every notebook runs without a load test, and checks every
parameter that names something: a run id not in the store, a profile that is neither a
file nor a source, a store that does not exist, a log outside reports/ each stop the
notebook at its setup cell with a :class:`ParameterError`, whose one line is all that
IPython, papermill and nbconvert show, instead of later cells quietly showing the samples.

Sample files keep their source ids in every fresh store because they are always ingested
in the same order (SAMPLE_GROUPS), which is what makes the committed outputs of the
checked cells reproducible.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from perflab.analysis.run import Run
from perflab.errors import PerflabError
from perflab.ingest import ingest_path
from perflab.paths import project_root
from perflab.store import DEFAULT_STORE, Store
from perflab.vocab import PROFILE_KINDS

# The renderer when the notebook's `renderer` parameter is None. Outside a Jupyter server
# (nbconvert --execute, papermill, nbval) the figure JSON and an HTML rendering with
# plotly.js inlined once per notebook, so the HTML nbconvert writes draws every chart
# offline; in a kernel a Jupyter server started (JupyterLab: it sets JPY_SESSION_NAME) the
# JSON only, which JupyterLab's plotly extension draws, and the saved .ipynb stays small.
DEFAULT_RENDERER = "plotly_mimetype+notebook"
SERVER_RENDERER = "plotly_mimetype"
# Set by jupyter_server in the environment of every kernel it starts for a session.
SERVER_KERNEL_ENV = "JPY_SESSION_NAME"
# Where a notebook may write a file (the optimization log): under the checkout's reports/.
REPORTS_DIR = "reports"
# The parameters setup checks, by what they name.
RUN_PARAMETERS = ("run_id", "compare_run_id", "before_run_id", "after_run_id")
PROFILE_PARAMETERS = ("profile", "compare_profile")
SCENARIO_PARAMETERS = ("run_scenario", "scenario")
# Plain-text tables (``text``) cut cells at this width, so a 170,000-character SQL text
# stays one line of a committed output.
TEXT_CELL_CHARS = 60

# Each bundled sample joins a named group (a run id in the store, as `perflab ingest
# --run` makes), so the doctor can be asked about the files as a user would bring them.
# Order matters: it fixes every sample's source id in a fresh store.
SAMPLE_GROUPS: dict[str, tuple[str, ...]] = {
    "sample-login-storm": ("pprof/small_loginstorm.cpu.pb.gz", "pprof/small_loginstorm.heap.pb.gz"),
    "sample-false-idle": ("pprof/small_falseidle.block.pb.gz",),
    "sample-k6": ("k6/main_kolkata.ndjson.gz", "k6/main_kolkata.summary.json"),
    "sample-pg": ("pg/pg_stat_statements_before.csv", "pg/pg_stat_statements_after.csv",
                  "pg/pg_stat_activity_samples.csv"),
    "sample-cprofile": ("cprofile/login_hashing.prof", "cprofile/json_serialization.prof"),
}


class ParameterError(PerflabError):
    """A notebook parameter that points at nothing. IPython shows an exception's
    ``_render_traceback_`` instead of its traceback, so the failed cell (and papermill's
    error, and nbconvert's) reads as this one line."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def resolve_store_path(store_path: str | os.PathLike[str] | None = None) -> Path:
    """The store a notebook uses: the parameter, else $PERFLAB_STORE, else the checkout's
    data/perflab.duckdb. A relative path is taken from the checkout's root (where the
    `perflab` command is run), not from notebooks/, where the kernel starts."""
    chosen = store_path if store_path not in (None, "") else os.environ.get("PERFLAB_STORE") or DEFAULT_STORE
    path = Path(str(chosen)).expanduser()
    return path if path.is_absolute() else project_root() / path


def sample_path(relative: str) -> Path:
    """A bundled sample by its path under data/samples, e.g. ``"pprof/small_loginstorm.cpu.pb.gz"``."""
    path = project_root() / "data" / "samples" / relative
    if not path.is_file():
        raise PerflabError(f"no bundled sample {relative} under {path.parent}")
    return path


@dataclass
class Samples:
    """The bundled samples' source ids in this store, by what they are."""

    sources: dict[str, int]  # relative path -> source id
    groups: list[str] = field(default_factory=list)  # the SAMPLE_GROUPS run ids present in the store

    def __getitem__(self, relative: str) -> int:
        return self.sources[relative]

    @property
    def k6(self) -> int:
        return self.sources["k6/main_kolkata.ndjson.gz"]

    @property
    def cpu(self) -> int:
        return self.sources["pprof/small_loginstorm.cpu.pb.gz"]

    @property
    def heap(self) -> int:
        return self.sources["pprof/small_loginstorm.heap.pb.gz"]

    @property
    def block(self) -> int:
        return self.sources["pprof/small_falseidle.block.pb.gz"]

    @property
    def pg_before(self) -> int:
        return self.sources["pg/pg_stat_statements_before.csv"]

    @property
    def pg_after(self) -> int:
        return self.sources["pg/pg_stat_statements_after.csv"]

    @property
    def pg_activity(self) -> int:
        return self.sources["pg/pg_stat_activity_samples.csv"]

    @property
    def cprofile_login(self) -> int:
        return self.sources["cprofile/login_hashing.prof"]

    @property
    def cprofile_json(self) -> int:
        return self.sources["cprofile/json_serialization.prof"]


def ingest_samples(store: Store) -> Samples:
    """Ingest every bundled sample under its group (a no-op for files already stored).

    A sample the store already holds keeps its source and run id: ingest never moves a
    source between runs, so a group can be missing if the files came in without one.
    """
    # The one write a notebook makes: the samples enter as a user's files would (`perflab
    # ingest --run GROUP`).
    sources: dict[str, int] = {}
    for group, files in SAMPLE_GROUPS.items():
        for rel in files:
            sources[rel] = ingest_path(store, sample_path(rel), run_id=group).source_id
    present = {g for g in SAMPLE_GROUPS if Run.exists(store, g)}
    return Samples(sources, [g for g in SAMPLE_GROUPS if g in present])


def setup(store_path: str | os.PathLike[str] | None = None, samples: bool = True, *, renderer: str | None = None,
          create_store: bool = False, **parameters: Any) -> tuple[Store, Samples | None]:
    """Set the plotly renderer, open the notebook's store (see :func:`resolve_store_path`),
    ingest the samples and check the notebook's other parameters (``run_id=...``,
    ``run_ids=[...]``, ``profile=...``, ``log_path=...``: see :func:`check_parameters`).

    A store that does not exist is created only when ``create_store`` says so, or when it
    is the checkout's default store (nothing named another one): a mistyped path is an
    error, not a new empty store. Every problem is a :class:`ParameterError`.

    Also fixes how polars prints, so a table a notebook prints is the same text on every
    machine whatever POLARS_FMT_* says.
    """
    set_renderer(renderer)
    pl.Config.set_tbl_rows(25)
    pl.Config.set_fmt_str_lengths(TEXT_CELL_CHARS)
    path = resolve_store_path(store_path)
    named = ("store_path" if store_path not in (None, "")
             else "PERFLAB_STORE" if os.environ.get("PERFLAB_STORE") else None)
    if named and not create_store and not path.exists():
        raise ParameterError(f"{named} {path}: no such store (create_store=True makes a new one)")
    try:
        store = Store(path)
    except PerflabError as err:
        raise ParameterError(str(err)) from None
    try:
        found = ingest_samples(store) if samples else None
        check_parameters(store, **parameters)
    except PerflabError as err:
        store.close()  # the kernel lives on: it must not keep the file locked for `perflab run`
        raise ParameterError(str(err)) from None
    print(f"store: {store.path}" + (f" (bundled samples: {len(found.sources)} files)" if found else ""))
    release_between_cells(store)
    return store, found


# The hook of the store the kernel's last setup opened (a setup cell run again replaces it).
_RELEASE_HOOK: list[Any] = []


def release_between_cells(store: Store) -> bool:
    """In IPython, let the store's file go after every cell (Store.release): DuckDB allows one
    writer or several readers, and a kernel left open all day would otherwise hold the lock
    that `perflab ingest`, `perflab run` and the nightly need. The next cell opens it again."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    for hook in _RELEASE_HOOK:
        with contextlib.suppress(ValueError):
            shell.events.unregister("post_run_cell", hook)
    _RELEASE_HOOK.clear()

    def release(result: object = None) -> None:
        store.release()

    shell.events.register("post_run_cell", release)
    _RELEASE_HOOK.append(release)
    return True


def set_renderer(renderer: str | None = None) -> str:
    """Make ``renderer`` (None: the default for where the kernel runs) plotly's default."""
    import plotly.io as pio

    chosen = renderer or (SERVER_RENDERER if os.environ.get(SERVER_KERNEL_ENV) else DEFAULT_RENDERER)
    try:
        pio.renderers.default = chosen
    except ValueError:
        raise ParameterError(f"renderer {chosen!r}: not a plotly renderer (e.g. {DEFAULT_RENDERER!r})") from None
    return chosen


def check_parameters(store: Store, run_ids: Any = None, log_path: str | os.PathLike[str] | None = None,
                     **named: Any) -> None:
    """Every parameter that names something names something that is there: run ids in the
    store, profiles as files or stored sources, a scenario to run among the lab's, a
    scenario to pick runs of among the store's, the log under reports/."""
    unknown = sorted(set(named) - set(RUN_PARAMETERS) - set(PROFILE_PARAMETERS) - set(SCENARIO_PARAMETERS))
    if unknown:
        raise PerflabError(f"setup cannot check {', '.join(unknown)}: not a parameter it knows")
    if isinstance(run_ids, str):
        raise ParameterError(f"run_ids {run_ids!r}: a list of run ids, e.g. [{run_ids!r}]")
    runs = [(f"run_ids[{i}]", r) for i, r in enumerate(run_ids or [])]
    runs += [(k, named[k]) for k in RUN_PARAMETERS if named.get(k) not in (None, "")]
    for name, run_id in runs:
        if not Run.exists(store, str(run_id)):
            raise ParameterError(f"{name} {run_id!r}: no such run in {store.path} (`perflab runs` lists them)")
    for name in PROFILE_PARAMETERS:
        ref = named.get(name)
        if ref is None or Path(str(ref)).expanduser().exists():
            continue
        try:
            store.find_source(str(ref), PROFILE_KINDS)
        except PerflabError as err:
            raise ParameterError(f"{name}: {err}") from None
    if named.get("run_scenario"):
        from perflab.lab.scenarios import SCENARIOS

        if named["run_scenario"] not in SCENARIOS:
            raise ParameterError(f"run_scenario {named['run_scenario']!r}: not a lab scenario "
                                 f"(one of {', '.join(SCENARIOS)})")
    scenario = named.get("scenario")
    if scenario and not store.con.execute("SELECT 1 FROM runs WHERE scenario = ?", [str(scenario)]).fetchall():
        raise ParameterError(f"scenario {scenario!r}: no run of it in {store.path} (`perflab runs` lists them)")
    report_path(log_path)


def report_path(path: str | os.PathLike[str] | None) -> Path | None:
    """A file a notebook writes (05's log_path): relative paths are taken from the checkout's
    root (not notebooks/, where the kernel starts), and it must lie under reports/."""
    if path in (None, ""):
        return None
    given = Path(str(path)).expanduser()
    resolved = (given if given.is_absolute() else project_root() / given).resolve()
    reports = (project_root() / REPORTS_DIR).resolve()
    if not resolved.is_relative_to(reports):
        raise ParameterError(f"log_path {path}: outside {reports}/ (notebooks write only under reports/)")
    return resolved
