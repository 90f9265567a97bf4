"""The tables a notebook prints: runs, sources, k6's numbers, top, categories, the doctor's
verdicts, a before/after comparison, and the optimization-log entry."""

from __future__ import annotations

import os
from typing import Any

import polars as pl

from perflab import fmt
from perflab.analysis.categories import categories
from perflab.analysis.compare import Comparison, compare_runs, run_info
from perflab.analysis.database import activity_states
from perflab.analysis.loadtest import k6_summary
from perflab.analysis.optimization import settings_diff
from perflab.analysis.profiles import top_frame
from perflab.analysis.run import Run
from perflab.analysis.runs import run_summary
from perflab.analysis.signatures import Diagnosis, diagnose, signatures
from perflab.jsonable import to_jsonable
from perflab.notebook.subjects import Missing, Ref, Subject, latest_runs, profile_source
from perflab.report import optlog
from perflab.store import Store


def runs_table(store: Store, run_ids: list[str] | None = None) -> pl.DataFrame:
    """One row per run (the given ones, else the newest MAX_RUNS_SHOWN): k6's p95, rps,
    error rate and dropped iterations, the service's CPU and downstream calls per request."""
    ids = list(run_ids) if run_ids else latest_runs(store)
    cols = ["run_id", "scenario", "variant", "status", "requests", "rps", "p95_ms", "error_rate",
            "dropped_iterations", "service_cpu_p50", "downstream_calls_per_request"]
    rows = [{c: to_jsonable(run_summary(Run.load(store, r)))[c] for c in cols} for r in ids]
    schema: dict[str, Any] = {c: pl.Float64 for c in cols} | {c: pl.String for c in ("run_id", "scenario",
                                                                                      "variant", "status")}
    schema.update(requests=pl.Int64, dropped_iterations=pl.Int64)
    return pl.DataFrame(rows, schema=schema, orient="row")


def sources_table(store: Store) -> pl.DataFrame:
    """What the store holds, per kind and run: how many files and bytes."""
    return store.sql(
        "SELECT kind, coalesce(run_id, '(none)') AS run_id, count(*)::BIGINT AS files, "
        "sum(bytes)::BIGINT AS bytes FROM sources GROUP BY ALL ORDER BY kind, run_id")


# The k6 statistics a load-test table shows, in k6's own names and order.
K6_STATS = ("count", "rate", "avg", "med", "p(90)", "p(95)", "p(99)", "max")


def k6_table(store: Store, source: int) -> pl.DataFrame:
    """k6's end-of-test numbers of one source (k6_summary), one row per metric (submetrics
    left out), one column per statistic; k6's own figures, unrounded."""
    summary = k6_summary(store, source)
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
    cum, cum %, in the sample type's own unit. A profile file is ingested first."""
    return top_frame(store, profile_source(store, profile), sample_type=sample_type).head(limit)


def sample_types_table(src: Subject) -> pl.DataFrame:
    """Every profile of the subject and the sample types it can be read by."""
    return src.profiles.with_columns(pl.col("sample_types").list.join(", "))


def categories_table(store: Store, profile: Ref, sample_type: str | int | None = None) -> pl.DataFrame:
    """Share of the profile's total per hot-frame category (hashing, serialization, ...),
    largest first, with the frame that took most of it."""
    out = categories(store, profile_source(store, profile), sample_type=sample_type)
    rows = [{"category": name, "share": share,
             "top_frame": (out.get("top_frames", {}).get(name) or [{}])[0].get("name")}
            for name, share in out["categories"].items()]
    return (pl.DataFrame(rows, schema={"category": pl.String, "share": pl.Float64, "top_frame": pl.String})
            .sort(["share", "category"], descending=[True, False]))


def activity_summary(store: Store, source: int) -> pl.DataFrame:
    """Per (state, wait event type) of client backends: mean and max backends per sample."""
    df = activity_states(store, source, backend_type="client backend")
    samples = max(df["sample_no"].n_unique(), 1)
    return (df.group_by("state", "wait_event_type")
            .agg((pl.col("backends").sum() / samples).alias("mean_backends"),
                 pl.col("backends").max().alias("max_backends"))
            .sort(["mean_backends", "state"], descending=[True, False], nulls_last=True))


# -- the doctor -------------------------------------------------------------------------------

def diagnose_all(store: Store, run_ids: list[str]) -> list[Diagnosis]:
    """The doctor's answer for each run id, in the order given."""
    return [diagnose(Run.load(store, r)) for r in run_ids]


def signatures_table() -> pl.DataFrame:
    """Every signature the doctor knows: what it means and which evidence it reads first."""
    return pl.DataFrame([{"signature": s.name, "summary": s.summary, "key_evidence": ", ".join(s.key_evidence)}
                         for s in signatures().values()])


def verdict_table(diagnoses: Diagnosis | list[Diagnosis]) -> pl.DataFrame:
    """One row per run and signature: the verdict, its key evidence as ``name: value unit``
    (or what was missing), and the recommendation."""
    registry = signatures()
    rows = []
    for diagnosis in [diagnoses] if isinstance(diagnoses, Diagnosis) else diagnoses:
        for f in diagnosis.findings:
            sig = registry.get(f.signature)
            ev = f.evidence
            keys = [k for k in (sig.key_evidence if sig else ()) if ev.get(k) is not None]
            shown = [f"{k}: {fmt.evidence_value(k, ev[k])}" for k in keys]
            if f.verdict == "insufficient-data" and ev.get("missing"):
                shown.append("missing: " + "; ".join(map(str, ev["missing"])))
            rows.append({"run_id": diagnosis.run_id, "signature": f.signature, "verdict": f.verdict,
                         "key_evidence": ", ".join(shown), "recommendation": f.recommendation or ""})
    return pl.DataFrame(rows, schema={"run_id": pl.String, "signature": pl.String, "verdict": pl.String,
                                      "key_evidence": pl.String, "recommendation": pl.String})


def verdict_summary(diagnoses: list[Diagnosis]) -> pl.DataFrame:
    """One row per run: the signatures present, and how many findings had each verdict."""
    rows = []
    for d in diagnoses:
        verdicts = [f.verdict for f in d.findings]
        rows.append({"run_id": d.run_id, "present": ", ".join(f.signature for f in d.present) or "none",
                     "absent": verdicts.count("absent"), "insufficient_data": verdicts.count("insufficient-data")})
    return pl.DataFrame(rows, schema={"run_id": pl.String, "present": pl.String, "absent": pl.Int64,
                                      "insufficient_data": pl.Int64})


# -- before and after -------------------------------------------------------------------------

COMPARISON_COLUMNS = ["metric", "unit", "a", "b", "change_pct", "low", "high", "beyond_noise", "direction", "note"]


def compare(store: Store, before: str | Missing, after: str | Missing) -> Comparison | Missing:
    """compare_runs of two runs by id, or why not (a Missing run stays missing)."""
    if isinstance(before, Missing):
        return before
    if isinstance(after, Missing):
        return after
    return compare_runs(Run.load(store, before), Run.load(store, after))


def comparison_table(comparison: Comparison) -> pl.DataFrame:
    """compare_runs' metric rows as a table (a = before, b = after; low and high bound the
    95 % interval of b − a, which decides beyond_noise)."""
    schema = {"metric": pl.String, "unit": pl.String, "a": pl.Float64, "b": pl.Float64,
              "change_pct": pl.Float64, "low": pl.Float64, "high": pl.Float64, "beyond_noise": pl.Boolean,
              "direction": pl.String, "note": pl.String}
    rows = [{**{c: getattr(r, c) for c in COMPARISON_COLUMNS if c not in ("low", "high")},
             "low": r.interval[0] if r.interval else None, "high": r.interval[1] if r.interval else None}
            for r in comparison.metrics]
    return pl.DataFrame(rows, schema=schema, orient="row")


def optimization_entry(store: Store, before: str, after: str, title: str | None = None,
                       hypothesis: str | None = None, expected: str | None = None,
                       implementation: str | None = None, log_path: str | os.PathLike[str] | None = None,
                       comparison: Comparison | None = None) -> str:
    """The optimization-log entry (markdown) for a before/after pair. Without ``log_path``
    nothing is written; with it the entry is added to (or replaced in) that log.

    A lab pair needs no words: the title names the scenario and the setting the fix
    changed, and the hypothesis is the scenario's own explanation (its manifest's "why").
    """
    run_a, run_b = Run.load(store, before), Run.load(store, after)
    a, b = run_info(run_a), run_info(run_b)
    changed = settings_diff(a, b)
    if title is None:
        title = f"{a.scenario or before}: " + ("; ".join(changed) if changed else f"{before} → {after}")
    if hypothesis is None:
        hypothesis = a.why or "not stated (give the hypothesis parameter)"
    if log_path is not None:
        return optlog.add_entry(run_a, run_b, title, hypothesis, expected, implementation, out=log_path)
    return optlog.render_entry(run_a, run_b, title, hypothesis, expected, implementation, comparison=comparison)
