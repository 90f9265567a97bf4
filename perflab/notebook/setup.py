"""Opening a notebook's store, with the bundled samples in it.

``setup(store_path)`` opens the store the notebook was pointed at (the parameter, else
``$PERFLAB_STORE``, else the checkout's ``data/perflab.duckdb``) and ingests the bundled
samples (data/samples), so every notebook runs without a load test. Sample files keep
their source ids in every fresh store because they are always ingested in the same order
(SAMPLE_GROUPS), which is what makes the committed outputs of the checked cells
reproducible.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from perflab.analysis.run import Run
from perflab.errors import PerflabError
from perflab.ingest import ingest_path
from perflab.paths import project_root
from perflab.store import DEFAULT_STORE, Store

# Figure JSON only: JupyterLab draws it with its built-in plotly support, and the
# .ipynb stays small. Nightly adds "+notebook" (perflab.report.nightly).
DEFAULT_RENDERER = "plotly_mimetype"
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


def setup(store_path: str | os.PathLike[str] | None = None, samples: bool = True) -> tuple[Store, Samples | None]:
    """Open the notebook's store (see :func:`resolve_store_path`) and ingest the samples.

    Also fixes how polars prints, so a table a notebook prints is the same text on every
    machine whatever POLARS_FMT_* says.
    """
    pl.Config.set_tbl_rows(25)
    pl.Config.set_fmt_str_lengths(TEXT_CELL_CHARS)
    store = Store(resolve_store_path(store_path))
    found = ingest_samples(store) if samples else None
    print(f"store: {store.path}" + (f" (bundled samples: {len(found.sources)} files)" if found else ""))
    return store, found
