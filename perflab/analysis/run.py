"""A run, read in one place: its row, manifest, sources, steady window and frames.

A run is one object however it was made: a lab scenario (``perflab run``), or files a
user grouped with ``perflab ingest --run``. ``Run.load(store, run_id)`` is the only
reader of the ``runs`` row and of the run's ``sources``; every analysis takes a ``Run``
(two for a comparison) and finds what it needs through it::

    run = Run.load(store, "20261205T091500Z-login-storm-default-ab12")
    run.k6_source            # the source whose samples are the run's requests
    run.cpu_profile          # the CPU profile (pprof, collapsed, speedscope with cpu; else cProfile)
    run.window               # the steady-state window (the doctor's)
    run.frames               # the polars frames the signatures judge (perflab.analysis.rundata)

Frames and the window are computed once, on first use, and kept on the object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from perflab.analysis import cpu, roles, rundata
from perflab.analysis.cpu import CpuSamples
from perflab.analysis.roles import Roles
from perflab.analysis.rundata import RunData
from perflab.analysis.steady import Window, find_window
from perflab.errors import PerflabError
from perflab.manifest import Manifest
from perflab.store import Store
from perflab.vocab import CPROFILE, HEAP_TYPES, K6, K6_CSV, K6_SUMMARY, PGSTAT, PPROF_SHAPED_KINDS, RESOURCES

# How many run ids a "no such run" error suggests.
RECENT_RUNS_HINT = 3
# The variants a scenario's twins carry (a lab scenario's fix, a target's [variants.fixed]).
DEFAULT_VARIANT, FIXED_VARIANT = "default", "fixed"


@dataclass(frozen=True)
class Source:
    """One ingested file of a run (a row of ``sources``, its meta parsed)."""

    source_id: int
    kind: str
    path: str
    bytes: int
    ingested_at: datetime
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def view(self) -> str | None:
        """The pg_stat view a pgstat snapshot holds."""
        view = self.meta.get("view")
        return str(view) if view is not None else None


@dataclass(eq=False)
class Run:
    store: Store
    run_id: str
    created_at: datetime
    scenario: str | None
    variant: str | None
    status: str  # complete | incomplete; a user's group is as complete as its files
    manifest: Manifest | None
    sources: tuple[Source, ...]

    # -- reading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, store: Store, run_id: str) -> Run:
        """The run ``run_id``, or a PerflabError naming a few runs the store does have."""
        rows = store.con.execute(
            "SELECT created_at, scenario, variant, status, manifest FROM runs WHERE run_id = ?",
            [str(run_id)]).fetchall()
        if not rows:
            known = [r[0] for r in store.con.execute(
                "SELECT run_id FROM runs ORDER BY created_at DESC, run_id DESC LIMIT ?",
                [RECENT_RUNS_HINT]).fetchall()]
            hint = f" (recent: {', '.join(known)})" if known else " (the store has no runs)"
            raise PerflabError(f"no run {run_id!r} in {store.path}{hint}")
        created_at, scenario, variant, status, manifest = rows[0]
        srcs = store.con.execute(
            "SELECT source_id, kind, path, bytes, ingested_at, meta FROM sources WHERE run_id = ? "
            "ORDER BY source_id", [str(run_id)]).fetchall()
        sources = tuple(Source(int(s[0]), str(s[1]), str(s[2]), int(s[3]), s[4], json.loads(s[5]) if s[5] else {})
                        for s in srcs)
        return cls(store=store, run_id=str(run_id), created_at=created_at, scenario=scenario, variant=variant,
                   status=status or "complete", manifest=Manifest.from_json(manifest) if manifest else None,
                   sources=sources)

    @staticmethod
    def ids(store: Store) -> list[str]:
        """Every run id, oldest first."""
        return [r[0] for r in store.con.execute("SELECT run_id FROM runs ORDER BY created_at, run_id").fetchall()]

    @classmethod
    def all(cls, store: Store) -> list[Run]:
        return [cls.load(store, rid) for rid in cls.ids(store)]

    @staticmethod
    def exists(store: Store, run_id: str) -> bool:
        return bool(store.con.execute("SELECT 1 FROM runs WHERE run_id = ?", [str(run_id)]).fetchall())

    # -- who the run is ------------------------------------------------------------------------
    @property
    def is_lab(self) -> bool:
        """Made by the lab (it wrote a manifest), not grouped by a user."""
        return self.manifest is not None

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.manifest.settings) if self.manifest else {}

    @cached_property
    def started_at(self) -> str:
        """When the run started, on its own clock: the manifest's, else its first sample's time
        (k6, resource, metric, /debug/vars or pg_stat_activity samples, or a profile's start),
        else when the run was registered (never "now", so a rendering is repeatable). A group
        brought with ``ingest --run`` so starts when its data does, not when it was ingested."""
        if self.manifest and self.manifest.started_at:
            return self.manifest.started_at
        first = self.store.con.execute(
            """SELECT min(t) FROM (
                 SELECT min(time) AS t FROM k6_points WHERE run_id = $1
                 UNION ALL SELECT min(t) FROM resource_samples WHERE run_id = $1
                 UNION ALL SELECT min(t) FROM metric_samples WHERE run_id = $1
                 UNION ALL SELECT min(t) FROM service_vars WHERE run_id = $1
                 UNION ALL SELECT min(sample_ts) FROM pg_stat_activity_samples WHERE run_id = $1
                 UNION ALL SELECT to_timestamp(min(time_nanos) / 1e9) FROM pprof_profiles
                           WHERE run_id = $1 AND time_nanos > 0)""", [self.run_id]).fetchall()[0][0]
        return str(first.isoformat()) if first is not None else self.created_at.isoformat()

    def previous(self) -> Run | None:
        """The latest complete run of the same scenario and variant registered before this one."""
        if not self.scenario:
            return None
        rows = self.store.con.execute(
            """SELECT run_id FROM runs WHERE scenario = ? AND variant IS NOT DISTINCT FROM ?
                 AND coalesce(status, 'complete') = 'complete' AND run_id <> ?
                 AND (created_at < ? OR (created_at = ? AND run_id < ?))
               ORDER BY created_at DESC, run_id DESC LIMIT 1""",
            [self.scenario, self.variant, self.run_id, self.created_at, self.created_at, self.run_id]).fetchall()
        return Run.load(self.store, rows[0][0]) if rows else None

    def twin(self) -> Run | None:
        """The run's default ↔ fixed twin, of the same scenario (or target), complete.

        A night (or any batch) runs each scenario's default, then its fixed variant: a fixed
        run's twin is the latest default registered before it; a default run's is the first
        fixed run after it with no other default of the scenario between them (the fixed run
        whose own twin it is). So each pair is found from either side, and a later batch's
        runs pair with each other, not with this one's.
        """
        if not self.scenario or self.variant not in (DEFAULT_VARIANT, FIXED_VARIANT):
            return None
        if self.variant == FIXED_VARIANT:
            rows = self.store.con.execute(
                """SELECT run_id FROM runs WHERE scenario = ? AND variant = ? AND run_id <> ?
                     AND coalesce(status, 'complete') = 'complete'
                     AND (created_at < ? OR (created_at = ? AND run_id < ?))
                   ORDER BY created_at DESC, run_id DESC LIMIT 1""",
                [self.scenario, DEFAULT_VARIANT, self.run_id, self.created_at, self.created_at,
                 self.run_id]).fetchall()
        else:
            rows = self.store.con.execute(
                """SELECT f.run_id FROM runs f
                   WHERE f.scenario = $1 AND f.variant = $2 AND coalesce(f.status, 'complete') = 'complete'
                     AND (f.created_at > $3 OR (f.created_at = $3 AND f.run_id > $4))
                     AND NOT EXISTS (
                       SELECT 1 FROM runs d WHERE d.scenario = $1 AND d.variant = $5 AND d.run_id <> $4
                         AND coalesce(d.status, 'complete') = 'complete'
                         AND (d.created_at > $3 OR (d.created_at = $3 AND d.run_id > $4))
                         AND (d.created_at < f.created_at OR (d.created_at = f.created_at AND d.run_id < f.run_id)))
                   ORDER BY f.created_at, f.run_id LIMIT 1""",
                [self.scenario, FIXED_VARIANT, self.created_at, self.run_id, DEFAULT_VARIANT]).fetchall()
        return Run.load(self.store, rows[0][0]) if rows else None

    # -- its sources ---------------------------------------------------------------------------
    def of_kind(self, *kinds: str) -> list[Source]:
        return [s for s in self.sources if s.kind in kinds]

    @property
    def k6_point_sources(self) -> list[int]:
        """Every source of the run's k6 samples. The NDJSON and the CSV of one run hold the
        same samples, so one kind, all its files (k6 execution segments are several files)."""
        return [s.source_id for s in self.of_kind(K6)] or [s.source_id for s in self.of_kind(K6_CSV)]

    @property
    def k6_source(self) -> int | None:
        """The run's k6 samples: its first NDJSON source, else its first CSV."""
        sids = self.k6_point_sources
        return sids[0] if sids else None

    @property
    def k6_summary_source(self) -> int | None:
        found = self.of_kind(K6_SUMMARY)
        return found[0].source_id if found else None

    @cached_property
    def _pprof_types(self) -> dict[int, list[str]]:
        """Each source in the pprof tables' sample type names, in file order."""
        sids = [s.source_id for s in self.of_kind(*PPROF_SHAPED_KINDS)]
        if not sids:
            return {}
        rows = self.store.con.execute(
            "SELECT source_id, list(type ORDER BY idx) FROM pprof_sample_types WHERE source_id IN ? GROUP BY 1",
            [sids]).fetchall()
        return {int(r[0]): list(r[1]) for r in rows}

    def sample_types(self, source_id: int) -> list[str]:
        return self._pprof_types.get(source_id, [])

    @property
    def cpu_profile(self) -> Source | None:
        """The run's CPU profile, the one the doctor, the report and compare all read: the first
        source with a cpu sample type, the service's own pprof before collapsed stacks and
        speedscope (py-spy's beside it), else a cProfile dump. A fixed order, not the most
        samples: which of two samplers takes more varies from run to run."""
        for kind in PPROF_SHAPED_KINDS:
            for s in self.of_kind(kind):
                if "cpu" in self.sample_types(s.source_id):
                    return s
        dumps = self.of_kind(CPROFILE)
        return dumps[0] if dumps else None

    @property
    def cpu_profile_source(self) -> int | None:
        prof = self.cpu_profile
        return prof.source_id if prof else None

    @property
    def heap_profile(self) -> Source | None:
        """The run's first heap profile (Go heap/allocs: recognised by their sample types)."""
        for s in self.of_kind(*PPROF_SHAPED_KINDS):
            if any(t in HEAP_TYPES for t in self.sample_types(s.source_id)):
                return s
        return None

    def pg_snapshots(self, view: str) -> list[Source]:
        return [s for s in self.of_kind(PGSTAT) if s.view == view]

    @cached_property
    def pg_statement_pair(self) -> tuple[int, int] | None:
        """The first and last pg_stat_statements snapshot (before, after), or None with fewer than two."""
        snaps = self.pg_snapshots("pg_stat_statements")
        if len(snaps) < 2:
            return None
        return rundata.before_after(self.store, snaps, "pg_stat_statements")

    def pg_view_pair(self, view: str) -> tuple[int, int] | None:
        """(before, after) of another view's snapshots, ordered as the statements are."""
        snaps = self.pg_snapshots(view)
        if len(snaps) < 2:
            return None
        return rundata.before_after(self.store, snaps, view)

    @cached_property
    def cpu_count(self) -> int | None:
        """The machine's core count: the lab sampler's header, else the manifest's host."""
        for s in self.of_kind(RESOURCES):
            if s.meta.get("cpu_count"):
                return int(s.meta["cpu_count"])
        if self.manifest and self.manifest.host.cpu_count:
            return int(self.manifest.host.cpu_count)
        return None

    def has_rows(self, table: str) -> bool:
        """Whether the run has any row in one of the fact tables (resource_samples, service_vars, ...)."""
        return bool(self.store.con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?",
                                           [self.run_id]).fetchall()[0][0])

    # -- its data --------------------------------------------------------------------------------
    @cached_property
    def requests(self) -> pl.DataFrame:
        return rundata.requests_frame(self.store, self.k6_point_sources)

    @cached_property
    def k6_frame(self) -> pl.DataFrame:
        return rundata.k6_frame(self.store, self.k6_point_sources)

    @cached_property
    def resources(self) -> pl.DataFrame:
        return rundata.resources_frame(self.store, self.run_id)

    @cached_property
    def roles(self) -> Roles:
        """The service's signals by role (perflab.analysis.roles) and which metric fed each."""
        return roles.load(self.store, self.run_id)

    @property
    def signals(self) -> pl.DataFrame:
        return self.roles.signals

    @cached_property
    def service_cpu(self) -> CpuSamples | None:
        """The service's CPU per sample, from whichever the run has (perflab.analysis.cpu)."""
        return cpu.service_cpu(self.resources, self.signals)

    @cached_property
    def window(self) -> Window | None:
        """The steady window: on the k6 requests, else on the resource or metric samples."""
        return window_of(self.requests, self.resources, self.signals)

    @cached_property
    def frames(self) -> RunData:
        """Everything the signatures may use, as plain frames (empty, never missing)."""
        data = RunData(run_id=self.run_id, requests=self.requests, k6=self.k6_frame, resources=self.resources,
                       signals=self.signals, role_sources=dict(self.roles.sources), cpu_count=self.cpu_count)
        activity = [s.source_id for s in self.pg_snapshots("pg_stat_activity")]
        data.pg_activity = rundata.activity_frame(self.store, activity)
        data.pg_statement_snapshots = len(self.pg_snapshots("pg_stat_statements"))
        if self.pg_statement_pair is not None:
            data.pg_statement_calls, data.pg_reset = rundata.statement_calls(self.store, *self.pg_statement_pair)
        profiles = [p for s in self.sources if (p := rundata.profile(self.store, s.source_id, s.kind, s.name))]
        # The run's CPU profile first: the signatures read the first CPU profile.
        data.profiles = sorted(profiles, key=lambda p: p.source_id != self.cpu_profile_source)
        return data


def window_of(requests: pl.DataFrame, resources: pl.DataFrame, signals: pl.DataFrame) -> Window | None:
    """The doctor's steady window from a run's frames (what RunData-only callers use too)."""
    fallback = pl.concat([resources["t_s"], signals["t_s"]]) if resources.height or signals.height else None
    return find_window(requests["t_s"], fallback)
