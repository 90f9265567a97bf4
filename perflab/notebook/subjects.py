"""What a notebook reads about: a run (``perflab.analysis.run.Run``), or the bundled samples.

A :class:`Subject` names the run and the sources a notebook's cells take: the run (for
the run charts), its k6 samples, CPU profile, pg_stat snapshot pairs and activity
samples. Anything the subject lacks is a :class:`Missing` saying so, which
perflab.notebook.display shows as one line instead of failing the cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from perflab import ingest
from perflab.analysis.run import Run
from perflab.errors import PerflabError
from perflab.notebook.setup import Samples
from perflab.store import Store
from perflab.vocab import CPROFILE, PPROF, PROFILE_KINDS

# A notebook that lists "the store's runs" shows at most this many, newest first: a
# year of nightly runs would otherwise make the tour a page of ids.
MAX_RUNS_SHOWN = 12
# The pg_stat views a notebook reads as before/after pairs.
SNAPSHOT_VIEWS = ("pg_stat_statements", "pg_stat_user_tables", "pg_stat_user_indexes", "pg_stat_database")


@dataclass(frozen=True)
class Missing:
    """Data a notebook asked for that the subject does not have, with the reason. Falsy, and
    perflab.notebook.display.show prints the reason instead of calling a chart with it."""

    reason: str

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return self.reason


Ref = int | str | Missing


@dataclass
class Subject:
    """What a notebook reads about one run (or the bundled samples): sources by role.

    ``run`` is what the run charts take; ``cpu_profile``, ``k6`` and ``pg_activity`` are
    source ids; ``pg`` maps a pg_stat view to its (before, after) snapshots.
    """

    label: str
    run: Run | Missing
    k6: int | Missing
    cpu_profile: int | Missing
    profiles: pl.DataFrame  # source_id, name, sample_types: every pprof/cProfile source
    pg: dict[str, tuple[int, int]]
    pg_activity: int | Missing
    # Two profiles to diff when no second run is given, and a second view of a profile
    # in another sample type: (source, sample type).
    diff_pair: tuple[int | Missing, int | Missing] = (Missing("no second profile to compare with"),) * 2
    other_view: tuple[int | Missing, str | None] = (Missing("no second view"), None)

    def pg_pair(self, view: str) -> tuple[int | Missing, int | Missing]:
        if view in self.pg:
            return self.pg[view]
        gone = Missing(f"{self.label}: no before/after snapshots of {view}")
        return gone, gone

    def profile_with(self, *types: str) -> int | Missing:
        """The first profile having one of the sample types (e.g. "delay": a Go block profile)."""
        for row in self.profiles.to_dicts():
            if set(types) & set(row["sample_types"]):
                return int(row["source_id"])
        return Missing(f"{self.label}: no profile with a {' or '.join(types)} sample type")


def _profiles_frame(store: Store, source_ids: list[int]) -> pl.DataFrame:
    return store.sql(
        f"""SELECT s.source_id, regexp_extract(s.path, '[^/]*$') AS name,
                  CASE WHEN s.kind = '{CPROFILE}' THEN ['cpu']
                       ELSE coalesce((SELECT list(t.type ORDER BY t.idx) FROM pprof_sample_types t
                                      WHERE t.source_id = s.source_id), []) END AS sample_types
           FROM sources s WHERE s.source_id IN ? ORDER BY s.source_id""", [source_ids])


def run_subject(run: Run) -> Subject:
    """A run's k6 samples, profiles and pg_stat snapshots (before = the earlier)."""
    label = f"run {run.run_id}"
    pg = {view: pair for view in SNAPSHOT_VIEWS if (pair := run.pg_view_pair(view)) is not None}
    activity = run.pg_snapshots("pg_stat_activity")
    cpu = run.cpu_profile
    cpu_ref: int | Missing = cpu.source_id if cpu is not None else Missing(f"{label}: no CPU profile")
    k6 = run.k6_source
    return Subject(
        label=label, run=run,
        k6=k6 if k6 is not None else Missing(f"{label}: no k6 samples"),
        cpu_profile=cpu_ref,
        profiles=_profiles_frame(run.store, [s.source_id for s in run.of_kind(*PROFILE_KINDS)]),
        pg=pg,
        pg_activity=activity[0].source_id if activity else Missing(f"{label}: no pg_stat_activity samples"),
        # A pprof CPU profile holds two sample types: samples (count) and cpu (time).
        other_view=(cpu_ref, "samples") if cpu is not None and cpu.kind == PPROF
        else (Missing(f"{label}: no pprof CPU profile (with a second sample type)"), None),
    )


def sample_subject(store: Store, samples: Samples) -> Subject:
    """The bundled samples as one subject: the k6 group, the Go CPU profile, the pg pair..."""
    return Subject(
        label="the bundled samples",
        run=Run.load(store, "sample-k6") if "sample-k6" in samples.groups
        else Missing("the bundled k6 sample is in this store without its sample-k6 group"),
        k6=samples.k6,
        cpu_profile=samples.cpu,
        profiles=_profiles_frame(store, sorted(samples.sources.values())),
        pg={"pg_stat_statements": (samples.pg_before, samples.pg_after)},
        pg_activity=samples.pg_activity,
        # Two cProfile dumps of different work: what a diff shows when a hot path moves.
        diff_pair=(samples.cprofile_login, samples.cprofile_json),
        # The heap profile read by what was allocated rather than what is still live.
        other_view=(samples.heap, "alloc_space"),
    )


def subject(store: Store, samples: Samples | None, run_id: str | Missing | None = None) -> Subject:
    """A run's subject, or the bundled samples' when no run id is given."""
    if isinstance(run_id, Missing):
        return Subject(run_id.reason, run_id, run_id, run_id, pl.DataFrame(), {}, run_id)
    if run_id:
        return run_subject(Run.load(store, run_id))
    if samples is None:
        raise PerflabError("give a run id, or set up the notebook with the bundled samples")
    return sample_subject(store, samples)


def load_run(store: Store, run_id: str | Missing) -> Run | Missing:
    """The run ``run_id`` (a Missing stays Missing)."""
    return run_id if isinstance(run_id, Missing) else Run.load(store, run_id)


def profile_source(store: Store, profile: Ref) -> int:
    """A profile parameter as the analyses take it: a source id, or a file, ingested first."""
    if isinstance(profile, Missing):
        raise PerflabError(profile.reason)
    return ingest.resolve(store, str(profile), PROFILE_KINDS)


def profile_pair(store: Store, src: Subject, compare_run_id: str | None = None,
                 profile: Any = None, compare_profile: Any = None) -> tuple[Ref, Ref]:
    """(A, B) for a differential view: the given profiles, else the two runs' CPU profiles,
    else the subject's own pair (the bundled samples carry one)."""
    a: Ref = profile_source(store, profile) if profile is not None else src.cpu_profile
    if compare_profile is not None:
        return a, profile_source(store, compare_profile)
    if compare_run_id:
        return a, run_subject(Run.load(store, compare_run_id)).cpu_profile
    return src.diff_pair


def latest_runs(store: Store, limit: int = MAX_RUNS_SHOWN, lab_only: bool = False) -> list[str]:
    """Run ids, newest first (lab runs only: those with a scenario)."""
    where = "WHERE scenario IS NOT NULL" if lab_only else ""
    return [r[0] for r in store.con.execute(
        f"SELECT run_id FROM runs {where} ORDER BY created_at DESC, run_id LIMIT ?", [int(limit)]).fetchall()]


def latest_pair(store: Store, scenario: str | None = None) -> tuple[str, str] | None:
    """(before, after): the newest complete default run of a scenario and the newest
    complete fixed run of the same scenario made after it, or None."""
    rows = store.con.execute(
        """SELECT d.run_id, f.run_id
           FROM runs d JOIN runs f ON f.scenario = d.scenario AND f.created_at >= d.created_at
           WHERE d.variant = 'default' AND f.variant = 'fixed'
             AND d.status = 'complete' AND f.status = 'complete'
             AND (? IS NULL OR d.scenario = ?)
           ORDER BY f.created_at DESC, d.created_at DESC LIMIT 1""", [scenario, scenario]).fetchall()
    return (str(rows[0][0]), str(rows[0][1])) if rows else None


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
