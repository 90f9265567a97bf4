"""What the notebooks in notebooks/ share, so that each of their cells stays one call.

The notebooks hold parameters, narrative and calls; what a call needs beyond
perflab.analysis and perflab.report.charts lives here, where it is tested:

* ``setup(store_path)`` opens the store the notebook was pointed at (the parameter,
  else ``$PERFLAB_STORE``, else the checkout's ``data/perflab.duckdb``) and ingests the
  bundled samples (data/samples), so every notebook runs without a load test;
* ``run_sources`` / ``latest_runs`` / ``latest_pair`` find what a run id stands for;
* ``show(chart, ...)`` draws a figure, or says in one line why the data is not there
  (a user's k6 file has no CPU samples, and a notebook must still run to the end);
* ``verdict_table`` and ``evidence`` turn the doctor's findings into a table and the
  charts that show each present signature's evidence;
* ``text(df)`` renders a table as fixed plain text, for the few cells whose output
  is committed and compared by nbval (see notebooks/README.md).

Sample files keep their source ids in every fresh store because they are always
ingested in the same order (SAMPLE_GROUPS), which is what makes the committed
outputs of those cells reproducible.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import polars as pl

from perflab.analysis.database import KIND as PG_KIND
from perflab.analysis.database import activity_states
from perflab.errors import PerflabError
from perflab.report.charts import activity_states_chart
from perflab.store import DEFAULT_STORE, Store

# Figure JSON only: JupyterLab draws it with its built-in plotly support, and the
# .ipynb stays small. Nightly adds "+notebook", which also stores an HTML rendering
# with plotly.js inlined once per notebook, so nbconvert's HTML works offline.
DEFAULT_RENDERER = "plotly_mimetype"
NIGHTLY_RENDERER = "plotly_mimetype+notebook"

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

# A notebook that lists "the store's runs" shows at most this many, newest first: a
# year of nightly runs would otherwise make the tour a page of ids.
MAX_RUNS_SHOWN = 12
# Plain-text tables (``text``) cut cells at this width, so a 170,000-character SQL text
# stays one line of a committed output.
TEXT_CELL_CHARS = 60

# Which charts show each signature's evidence: the pictures a reader should look at next
# to the verdict, by name (a charts.py function of the run, or one of the profile and
# activity views in :func:`evidence`). A chart whose data the run lacks is named with the
# reason instead of drawn.
EVIDENCE_CHARTS: dict[str, tuple[str, ...]] = {
    "login-storm": ("cpu_vs_latency", "cpu_latency_scatter", "cpu_flame_graph"),
    "false-idle": ("inflight_and_waiting", "cpu_vs_latency", "contention_flame_graph"),
    "retry-storm": ("app_vs_db_rate", "errors_by_kind"),
    "pool-saturation": ("inflight_and_waiting",),
    "lock-contention": ("contention_flame_graph", "activity_states_chart"),
    "memory-pressure": ("process_resources", "heap_flame_graph"),
    "loadgen-saturated": ("process_resources", "latency_over_time"),
}


# -- where things are ---------------------------------------------------------------------------

def project_root() -> Path:
    """The checkout holding data/samples: the package's parent (an editable install), else
    the nearest folder above the working directory (a notebook runs in notebooks/)."""
    candidates = [Path(__file__).resolve().parents[2], *Path.cwd().resolve().parents]
    candidates.insert(1, Path.cwd().resolve())
    for folder in candidates:
        if (folder / "data" / "samples").is_dir():
            return folder
    raise PerflabError("the bundled samples (data/samples) are not found above "
                       f"{Path.cwd()}; run the notebook from a perflab checkout")


def resolve_store_path(store_path: str | os.PathLike[str] | None = None) -> Path:
    """The store a notebook uses: the parameter, else $PERFLAB_STORE, else the checkout's
    data/perflab.duckdb. A relative path is taken from the checkout's root (where the
    `perflab` command is run), not from notebooks/, where the kernel starts."""
    chosen = store_path if store_path not in (None, "") else os.environ.get("PERFLAB_STORE") or DEFAULT_STORE
    path = Path(chosen).expanduser()  # type: ignore[arg-type]
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
    # ingest --run GROUP`), which is the ingest layer's job, not a report's.
    from perflab.ingest import ingest_path

    sources: dict[str, int] = {}
    for group, files in SAMPLE_GROUPS.items():
        for rel in files:
            sources[rel] = ingest_path(store, sample_path(rel), run_id=group).source_id
    present = set(store.sql("SELECT run_id FROM runs WHERE run_id IN ?", [list(SAMPLE_GROUPS)])["run_id"])
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


# -- runs ---------------------------------------------------------------------------------------

def latest_runs(store: Store, limit: int = MAX_RUNS_SHOWN, lab_only: bool = False) -> list[str]:
    """Run ids, newest first (lab runs only: those with a scenario)."""
    where = "WHERE scenario IS NOT NULL" if lab_only else ""
    return store.sql(f"SELECT run_id FROM runs {where} ORDER BY created_at DESC, run_id LIMIT ?",
                     [int(limit)])["run_id"].to_list()


def latest_pair(store: Store, scenario: str | None = None) -> tuple[str, str] | None:
    """(before, after): the newest complete default run of a scenario and the newest
    complete fixed run of the same scenario made after it, or None."""
    rows = store.sql(
        """SELECT d.run_id AS before, f.run_id AS after
           FROM runs d JOIN runs f ON f.scenario = d.scenario AND f.created_at >= d.created_at
           WHERE d.variant = 'default' AND f.variant = 'fixed'
             AND d.status = 'complete' AND f.status = 'complete'
             AND (? IS NULL OR d.scenario = ?)
           ORDER BY f.created_at DESC, d.created_at DESC LIMIT 1""", [scenario, scenario]).to_dicts()
    return (rows[0]["before"], rows[0]["after"]) if rows else None


def runs_table(store: Store, run_ids: list[str] | None = None) -> pl.DataFrame:
    """One row per run (the given ones, else the newest MAX_RUNS_SHOWN): k6's p95, rps,
    error rate and dropped iterations, the service's CPU and DB queries per request."""
    from perflab.analysis.runs import run_summary

    ids = list(run_ids) if run_ids else latest_runs(store)
    cols = ["run_id", "scenario", "variant", "status", "requests", "rps", "p95_ms", "error_rate",
            "dropped_iterations", "service_cpu_p50", "db_queries_per_request"]
    rows = [{c: run_summary(store, r).get(c) for c in cols} for r in ids]
    schema = {c: pl.Float64 for c in cols} | {c: pl.String for c in ("run_id", "scenario", "variant", "status")}
    schema.update(requests=pl.Int64, dropped_iterations=pl.Int64)
    return pl.DataFrame(rows, schema=schema, orient="row")


def sources_table(store: Store) -> pl.DataFrame:
    """What the store holds, per kind and run: how many files and bytes."""
    return store.sql(
        "SELECT kind, coalesce(run_id, '(none)') AS run_id, count(*)::BIGINT AS files, "
        "sum(bytes)::BIGINT AS bytes FROM sources GROUP BY ALL ORDER BY kind, run_id")


@dataclass(frozen=True)
class Missing:
    """Data a notebook asked for that the run does not have, with the reason. Falsy, and
    :func:`show` prints the reason instead of calling a chart with it."""

    reason: str

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return self.reason


Ref = int | str | Missing


@dataclass
class RunSources:
    """What a notebook reads about one run (or the bundled samples): sources by role.

    ``run`` is what the run charts take (a run id); ``cpu_profile``, ``k6`` and
    ``pg_activity`` are source ids; ``pg`` maps a pg_stat view to its (before, after)
    snapshots. Anything the run lacks is a :class:`Missing` saying so.
    """

    label: str
    run: Ref
    k6: Ref
    cpu_profile: Ref
    profiles: pl.DataFrame  # source_id, name, sample_types: every pprof/cProfile source
    pg: dict[str, tuple[int, int]]
    pg_activity: Ref
    # Two profiles to diff when no second run is given, and a second view of a profile
    # in another sample type: (source, sample type).
    diff_pair: tuple[Ref, Ref] = (Missing("no second profile to compare with"),) * 2
    other_view: tuple[Ref, str | None] = (Missing("no second view"), None)

    def pg_pair(self, view: str) -> tuple[Ref, Ref]:
        if view in self.pg:
            return self.pg[view]
        gone = Missing(f"{self.label}: no before/after snapshots of {view}")
        return gone, gone

    def profile_with(self, *types: str) -> Ref:
        """The first profile having one of the sample types (e.g. "delay": a Go block profile)."""
        for row in self.profiles.to_dicts():
            if set(types) & set(row["sample_types"]):
                return int(row["source_id"])
        return Missing(f"{self.label}: no profile with a {' or '.join(types)} sample type")


def _profiles_frame(store: Store, where: str, params: list[Any]) -> pl.DataFrame:
    return store.sql(
        f"""SELECT s.source_id, regexp_extract(s.path, '[^/]*$') AS name,
                  CASE WHEN s.kind = 'cprofile' THEN ['cpu']
                       ELSE coalesce((SELECT list(t.type ORDER BY t.idx) FROM pprof_sample_types t
                                      WHERE t.source_id = s.source_id), []) END AS sample_types
           FROM sources s WHERE s.kind IN ('pprof', 'cprofile') AND {where} ORDER BY s.source_id""", params)


def run_sources(store: Store, run_id: str) -> RunSources:
    """Find a run's k6 samples, profiles and pg_stat snapshots (before = the earlier)."""
    # Imported here: compare pulls in scipy (half a second), which most notebooks never need.
    from perflab.analysis.runs import cpu_profile_source, k6_source

    if not store.sql("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).height:
        known = latest_runs(store, 3)
        raise PerflabError(f"no run {run_id!r} in {store.path}" + (f" (recent: {', '.join(known)})" if known else ""))
    label = f"run {run_id}"
    snaps = store.sql(
        "SELECT source_id, path, meta FROM sources WHERE run_id = ? AND kind = ? ORDER BY source_id",
        [run_id, PG_KIND]).to_dicts()
    by_view: dict[str, list[dict[str, Any]]] = {}
    for s in snaps:
        view = (json.loads(s["meta"]) if s["meta"] else {}).get("view")
        by_view.setdefault(str(view), []).append(s)
    pg: dict[str, tuple[int, int]] = {}
    for view, items in by_view.items():
        if len(items) >= 2 and view != "pg_stat_activity":
            ordered = sorted(items, key=_snapshot_order)
            pg[view] = (int(ordered[0]["source_id"]), int(ordered[-1]["source_id"]))
    activity = by_view.get("pg_stat_activity")
    k6 = k6_source(store, run_id)
    cpu = cpu_profile_source(store, run_id)
    cpu_ref: Ref = cpu if cpu is not None else Missing(f"{label}: no CPU profile")
    return RunSources(
        label=label, run=run_id,
        k6=k6 if k6 is not None else Missing(f"{label}: no k6 samples"),
        cpu_profile=cpu_ref,
        profiles=_profiles_frame(store, "s.run_id = ?", [run_id]),
        pg=pg,
        pg_activity=int(activity[0]["source_id"]) if activity else Missing(f"{label}: no pg_stat_activity samples"),
        # A pprof CPU profile holds two sample types: samples (count) and cpu (time).
        other_view=(cpu_ref, "samples") if cpu is not None and store.source(cpu)["kind"] == "pprof"
        else (Missing(f"{label}: no pprof CPU profile (with a second sample type)"), None),
    )


def _snapshot_order(s: dict[str, Any]) -> tuple[int, int]:
    # The lab and users name snapshot files *_before / *_after; otherwise ingest order.
    name = Path(s["path"]).name.lower()
    return (0 if "before" in name else 2 if "after" in name else 1, int(s["source_id"]))


def sample_sources(store: Store, samples: Samples) -> RunSources:
    """The bundled samples as one subject: the k6 group, the Go CPU profile, the pg pair..."""
    return RunSources(
        label="the bundled samples",
        run="sample-k6" if "sample-k6" in samples.groups
        else Missing("the bundled k6 sample is in this store without its sample-k6 group"),
        k6=samples.k6,
        cpu_profile=samples.cpu,
        profiles=_profiles_frame(store, "s.source_id IN ?", [sorted(samples.sources.values())]),
        pg={"pg_stat_statements": (samples.pg_before, samples.pg_after)},
        pg_activity=samples.pg_activity,
        # Two cProfile dumps of different work: what a diff shows when a hot path moves.
        diff_pair=(samples.cprofile_login, samples.cprofile_json),
        # The heap profile read by what was allocated rather than what is still live.
        other_view=(samples.heap, "alloc_space"),
    )


def subject(store: Store, samples: Samples | None, run_id: str | Missing | None = None) -> RunSources:
    """A run's sources, or the bundled samples' when no run id is given."""
    if isinstance(run_id, Missing):
        return RunSources(run_id.reason, run_id, run_id, run_id, pl.DataFrame(), {}, run_id)
    if run_id:
        return run_sources(store, run_id)
    if samples is None:
        raise PerflabError("give a run id, or set up the notebook with the bundled samples")
    return sample_sources(store, samples)


def profile_pair(store: Store, src: RunSources, compare_run_id: str | None = None,
                 profile: Any = None, compare_profile: Any = None) -> tuple[Ref, Ref]:
    """(A, B) for a differential view: the given profiles, else the two runs' CPU profiles,
    else the subject's own pair (the bundled samples carry one)."""
    a: Ref = profile if profile is not None else src.cpu_profile
    if compare_profile is not None:
        return a, compare_profile
    if compare_run_id:
        return a, run_sources(store, compare_run_id).cpu_profile
    return src.diff_pair


def pick_pair(store: Store, before_run_id: str | None, after_run_id: str | None,
              scenario: str | None = None) -> tuple[str | Missing, str | Missing]:
    """The (before, after) runs to compare: the given ones, else the store's newest
    default/fixed pair of one scenario, else a Missing explaining how to make one."""
    if before_run_id and after_run_id:
        return before_run_id, after_run_id
    if before_run_id or after_run_id:
        raise PerflabError("give both before_run_id and after_run_id, or neither (the newest pair)")
    pair = latest_pair(store, scenario)
    if pair:
        return pair
    print("This store has no before/after pair of lab runs yet. Make one with\n"
          "    perflab run login-storm --duration 15\n"
          "    perflab run login-storm --variant fixed --duration 15\n"
          "(or `make report`), then run this notebook again.")
    gone = Missing("no before/after pair of lab runs in this store (see above)")
    return gone, gone


# -- showing ------------------------------------------------------------------------------------

def _missing_arg(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Missing | None:
    """The first Missing among the arguments, one level into lists and tuples ([before, after])."""
    for a in (*args, *kwargs.values()):
        for item in a if isinstance(a, (list, tuple)) else (a,):
            if isinstance(item, Missing):
                return item
    return None


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, or a :class:`Missing` when an argument is missing or the
    data is not there (PerflabError), so the cells after it still run."""
    gone = _missing_arg(args, kwargs)
    if gone is not None:
        return gone
    try:
        return fn(*args, **kwargs)
    except PerflabError as err:
        return Missing(str(err))


def show(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Draw ``fn(*args, **kwargs)``: a figure, a table, or markdown text. When the data
    is missing, print the one-line reason instead, so the notebook runs on to the end."""
    from IPython.display import Markdown, display

    result = call(fn, *args, **kwargs)
    if isinstance(result, Missing):
        display(Markdown(f"*Not shown ({getattr(fn, '__name__', 'chart')}): {result.reason}*"))
    elif isinstance(result, go.Figure):
        result.show()
    elif isinstance(result, str):
        display(Markdown(result))
    else:
        display(result)


def print_table(fn: Callable[..., Any], *args: Any, columns: list[str] | None = None,
                limit: int | None = None, **kwargs: Any) -> None:
    """Print ``fn(...)`` (a DataFrame) as :func:`text`, or the reason it is missing."""
    result = call(fn, *args, **kwargs)
    if isinstance(result, Missing):
        print(f"not shown ({getattr(fn, '__name__', 'table')}): {result.reason}")
        return
    print(text(result.head(limit) if limit else result, columns))


def text(df: pl.DataFrame, columns: list[str] | None = None, decimals: int = 2) -> str:
    """A table as fixed plain text (markdown pipes, no dtypes, no shape line): the form of
    the committed outputs nbval compares."""
    frame = df.select(columns) if columns else df
    frame = frame.with_columns(
        [pl.col(c).round(decimals) for c, t in frame.schema.items() if t.is_float()]
        + [pl.col(c).str.replace_all(r"\s+", " ").str.slice(0, TEXT_CELL_CHARS)
           for c, t in frame.schema.items() if t == pl.String])
    with pl.Config(tbl_formatting="ASCII_MARKDOWN", tbl_hide_column_data_types=True,
                   tbl_hide_dataframe_shape=True, tbl_rows=-1, tbl_cols=-1, tbl_width_chars=400,
                   fmt_str_lengths=TEXT_CELL_CHARS, float_precision=decimals, thousands_separator=False):
        return str(frame)


# -- tables the notebooks print -----------------------------------------------------------------

# The k6 statistics a load-test table shows, in k6's own names and order.
K6_STATS = ("count", "rate", "avg", "med", "p(90)", "p(95)", "p(99)", "max")


def k6_table(store: Store, source: Ref) -> pl.DataFrame:
    """k6's end-of-test numbers of one source (k6_summary), one row per metric (submetrics
    left out), one column per statistic; k6's own figures, unrounded."""
    from perflab.analysis.loadtest import k6_summary

    summary = k6_summary(store, source)  # type: ignore[arg-type]
    rows = []
    for name, stats in sorted(summary["metrics"].items()):
        if "{" in name:
            continue
        rows.append({"metric": name, "type": stats.get("type"),
                     **{k: float(stats[k]) if isinstance(stats.get(k), (int, float)) else None for k in K6_STATS}})
    return pl.DataFrame(rows, schema={"metric": pl.String, "type": pl.String} | {k: pl.Float64 for k in K6_STATS},
                        orient="row")


def top_table(store: Store, profile: Ref, sample_type: str | int | None = None, limit: int = 15) -> pl.DataFrame:
    """``go tool pprof -top``'s rows (or pstats' for a cProfile dump): name, flat, flat %,
    cum, cum %, in the sample type's own unit."""
    from perflab.analysis.profiles import top_frame

    return top_frame(store, profile, sample_type=sample_type).head(limit)  # type: ignore[arg-type]


def sample_types_table(src: RunSources) -> pl.DataFrame:
    """Every profile of the subject and the sample types it can be read by."""
    return src.profiles.with_columns(pl.col("sample_types").list.join(", "))


def categories_table(store: Store, profile: Ref, sample_type: str | int | None = None) -> pl.DataFrame:
    """Share of the profile's total per hot-frame category (hashing, serialization, ...),
    largest first, with the frame that took most of it."""
    from perflab.analysis.categories import categories

    out = categories(store, profile, sample_type=sample_type)  # type: ignore[arg-type]
    rows = [{"category": name, "share": share,
             "top_frame": (out.get("top_frames", {}).get(name) or [{}])[0].get("name")}
            for name, share in out["categories"].items()]
    return (pl.DataFrame(rows, schema={"category": pl.String, "share": pl.Float64, "top_frame": pl.String})
            .sort(["share", "category"], descending=[True, False]))


def activity_summary(store: Store, source: Ref) -> pl.DataFrame:
    """Per (state, wait event type) of client backends: mean and max backends per sample."""
    df = activity_states(store, source, backend_type="client backend")  # type: ignore[arg-type]
    samples = max(df["sample_no"].n_unique(), 1)
    return (df.group_by("state", "wait_event_type")
            .agg((pl.col("backends").sum() / samples).alias("mean_backends"),
                 pl.col("backends").max().alias("max_backends"))
            .sort(["mean_backends", "state"], descending=[True, False], nulls_last=True))


# -- the doctor -------------------------------------------------------------------------------

def diagnose_all(store: Store, run_ids: list[str]) -> list[dict[str, Any]]:
    """The doctor's answer for each run id, in the order given."""
    from perflab.analysis.signatures import diagnose

    return [diagnose(store, r) for r in run_ids]


def signatures_table() -> pl.DataFrame:
    """Every signature the doctor knows: what it means and which evidence it reads first."""
    from perflab.analysis.signatures import signatures

    return pl.DataFrame([{"signature": s.name, "summary": s.summary, "key_evidence": ", ".join(s.key_evidence)}
                         for s in signatures().values()])


def verdict_table(diagnoses: dict[str, Any] | list[dict[str, Any]]) -> pl.DataFrame:
    """One row per run and signature: the verdict, its key evidence as ``name=value``
    (or what was missing), and the recommendation."""
    from perflab.analysis.signatures import signatures

    registry = signatures()
    rows = []
    for diagnosis in [diagnoses] if isinstance(diagnoses, dict) else diagnoses:
        for f in diagnosis["findings"]:
            sig = registry.get(f["signature"])
            ev = f.get("evidence") or {}
            shown = [f"{k}={_short_number(ev[k])}" for k in (sig.key_evidence if sig else ()) if ev.get(k) is not None]
            if f["verdict"] == "insufficient-data" and ev.get("missing"):
                shown.append("missing: " + "; ".join(map(str, ev["missing"])))
            rows.append({"run_id": diagnosis["run_id"], "signature": f["signature"], "verdict": f["verdict"],
                         "key_evidence": ", ".join(shown), "recommendation": f.get("recommendation") or ""})
    return pl.DataFrame(rows, schema={"run_id": pl.String, "signature": pl.String, "verdict": pl.String,
                                      "key_evidence": pl.String, "recommendation": pl.String})


def verdict_summary(diagnoses: list[dict[str, Any]]) -> pl.DataFrame:
    """One row per run: the signatures present, and how many findings had each verdict."""
    rows = []
    for d in diagnoses:
        verdicts = [f["verdict"] for f in d["findings"]]
        rows.append({"run_id": d["run_id"],
                     "present": ", ".join(f["signature"] for f in d["findings"] if f["verdict"] == "present")
                     or "none",
                     "absent": verdicts.count("absent"), "insufficient_data": verdicts.count("insufficient-data")})
    return pl.DataFrame(rows, schema={"run_id": pl.String, "present": pl.String, "absent": pl.Int64,
                                      "insufficient_data": pl.Int64})


def _short_number(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def evidence(store: Store, run_id: str, signature: str) -> list[tuple[str, Callable[[], Any]]]:
    """The charts that show a signature's evidence for one run, as (name, draw) pairs;
    ``draw()`` returns the figure or raises PerflabError saying what the run lacks."""
    from perflab.report import charts

    src = run_sources(store, run_id)

    def flame(ref: Ref) -> Callable[[], go.Figure]:
        def draw() -> go.Figure:
            if isinstance(ref, Missing):
                raise PerflabError(ref.reason)
            return charts.flame_graph(store, ref)
        return draw

    def activity() -> go.Figure:
        if isinstance(src.pg_activity, Missing):
            raise PerflabError(src.pg_activity.reason)
        return activity_states_chart(store, src.pg_activity)

    special: dict[str, Callable[[], go.Figure]] = {
        "cpu_flame_graph": flame(src.cpu_profile),
        "contention_flame_graph": flame(src.profile_with("delay", "contentions")),
        "heap_flame_graph": flame(src.profile_with("inuse_space", "alloc_space", "space")),
        "activity_states_chart": activity,
    }
    out: list[tuple[str, Callable[[], Any]]] = []
    for name in EVIDENCE_CHARTS.get(signature, ()):
        fn = getattr(charts, name, None)
        draw = special.get(name) or (lambda fn=fn: fn(store, run_id))
        out.append((name, draw))
    return out


def show_evidence(store: Store, diagnoses: list[dict[str, Any]], verdicts: tuple[str, ...] = ("present",)) -> int:
    """Draw the evidence charts of every finding with one of ``verdicts``; returns how many
    findings were shown (a reader sees "none" said rather than an empty section)."""
    from IPython.display import Markdown, display

    shown = 0
    for d in diagnoses:
        for f in d["findings"]:
            if f["verdict"] not in verdicts:
                continue
            shown += 1
            display(Markdown(f"#### {d['run_id']}: {f['signature']} ({f['verdict']})"))
            for name, draw in evidence(store, d["run_id"], f["signature"]):
                draw.__name__ = name  # type: ignore[attr-defined]  # names the chart in a "not shown" line
                show(draw)
    if not shown:
        display(Markdown(f"*No finding is {' or '.join(verdicts)}: nothing to draw.*"))
    return shown


# -- before and after -------------------------------------------------------------------------

COMPARISON_COLUMNS = ["metric", "unit", "a", "b", "change_pct", "beyond_noise", "direction", "note"]


def comparison_table(comparison: dict[str, Any]) -> pl.DataFrame:
    """compare_runs' metric rows as a table (a = before, b = after)."""
    schema = {"metric": pl.String, "unit": pl.String, "a": pl.Float64, "b": pl.Float64,
              "change_pct": pl.Float64, "beyond_noise": pl.Boolean, "direction": pl.String, "note": pl.String}
    rows = [{c: r.get(c) for c in COMPARISON_COLUMNS} for r in comparison["metrics"]]
    return pl.DataFrame(rows, schema=schema, orient="row")


def optimization_entry(store: Store, before: str, after: str, title: str | None = None,
                       hypothesis: str | None = None, expected: str | None = None,
                       implementation: str | None = None, log_path: str | os.PathLike[str] | None = None,
                       comparison: dict[str, Any] | None = None) -> str:
    """The optimization-log entry (markdown) for a before/after pair. Without ``log_path``
    nothing is written; with it the entry is added to (or replaced in) that log.

    A lab pair needs no words: the title names the scenario and the setting the fix
    changed, and the hypothesis is the scenario's own explanation (its manifest's "why").
    """
    from perflab.analysis.compare import run_info
    from perflab.report import optlog

    a, b = run_info(store, before), run_info(store, after)
    changed = optlog.settings_diff(a, b)
    if title is None:
        title = f"{a['scenario'] or before}: " + ("; ".join(changed) if changed else f"{before} → {after}")
    if hypothesis is None:
        hypothesis = a["why"] or "not stated (give the hypothesis parameter)"
    if log_path is not None:
        return optlog.add_entry(store, before, after, title, hypothesis, expected, implementation, out=log_path)
    return optlog.render_entry(store, before, after, title, hypothesis, expected, implementation,
                               comparison=comparison)
