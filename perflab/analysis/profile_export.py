"""A stored profile as plain stacks, for writing it in another tool's format.

Contract: ``stack_profile(store, source) -> StackProfile`` (every sample type, one entry per
distinct stack, leaf first) and ``speedscope_document(profile, ...) -> dict`` (the JSON of
https://www.speedscope.app/file-format-schema.json). The pprof file is written from a
StackProfile by perflab.commands.export (the message classes live with the reader).

* pprof-shaped sources (pprof, collapsed stacks, speedscope) keep their stacks of node
  names and their values exactly, so ``go tool pprof -top`` of the written file shows the
  flat and cum of ``perflab top``. Samples with one stack are added into one (labels are
  not written).
* A cProfile dump keeps no stacks: each function becomes a one-frame stack of its own
  time (tottime, in whole nanoseconds), so flat is pstats' tottime and cum equals flat.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from perflab.analysis.profiles import profile_info, resolve_sample_type
from perflab.analysis.pstats import cprofile_top
from perflab.errors import PerflabError
from perflab.store import Store
from perflab.vocab import CPROFILE, PROFILE_KINDS

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"
# speedscope's units (its ValueUnit); pprof units without one are plain weights.
SPEEDSCOPE_UNITS = ("nanoseconds", "microseconds", "milliseconds", "seconds", "bytes")


@dataclass
class StackProfile:
    source_id: int
    sample_types: list[tuple[str, str]]   # (type, unit) in file order
    default_index: int
    names: list[str]                      # function names; stacks index them
    stacks: list[list[int]]               # leaf first
    values: list[list[int]]               # per stack, one per sample type
    period_type: tuple[str, str] | None = None
    period: int = 0
    duration_nanos: int = 0
    time_nanos: int = 0
    comments: list[str] = field(default_factory=list)


def stack_profile(store: Store, ref: str | int | os.PathLike[str]) -> StackProfile:
    sid = store.find_source(ref, kinds=PROFILE_KINDS)
    if store.source(sid)["kind"] == CPROFILE:
        return _cprofile(store, sid)
    info = profile_info(store, sid)
    types = [(t["type"], t["unit"]) for t in info["sample_types"]]
    sums = ", ".join(f"sum(value[{i + 1}])::BIGINT" for i in range(len(types))) or "NULL"
    rows = store.con.execute(
        f"""
        WITH per_stack AS (
            SELECT stack_id, [{sums}] AS v FROM pprof_samples WHERE source_id = $sid GROUP BY stack_id
        )
        SELECT s.node_ids, p.v FROM pprof_stacks s JOIN per_stack p USING (stack_id)
        WHERE s.source_id = $sid ORDER BY s.stack_id
        """,
        {"sid": sid},
    ).fetchall()
    names = [n for (n,) in store.con.execute(
        "SELECT name FROM pprof_nodes WHERE source_id = ? ORDER BY node_id", [sid]).fetchall()]
    default, _, _ = resolve_sample_type(store, sid, None)
    period_type = (info["period_type"], info["period_unit"]) if info.get("period_type") else None
    return StackProfile(
        source_id=sid, sample_types=types, default_index=default, names=names,
        stacks=[list(ids) for ids, _ in rows], values=[[int(x) for x in v] for _, v in rows],
        period_type=period_type, period=int(info.get("period") or 0),
        duration_nanos=int(info.get("duration_nanos") or 0), time_nanos=int(info.get("time_nanos") or 0),
        comments=list(info.get("comments") or []))


def _cprofile(store: Store, sid: int) -> StackProfile:
    _, df = cprofile_top(store, sid)
    names = df["name"].to_list()
    return StackProfile(
        source_id=sid, sample_types=[("cpu", "nanoseconds")], default_index=0, names=names,
        stacks=[[i] for i in range(len(names))], values=[[round(t * 1e9)] for t in df["flat"].to_list()],
        comments=["perflab: a cProfile dump; each function is one frame of its own time (tottime)"])


def speedscope_document(profile: StackProfile, name: str, sample_type: str | int | None = None) -> dict[str, Any]:
    """One sampled profile of the chosen sample type (default: the profile's own), stacks
    root first as speedscope wants them; stacks whose value is 0 are left out."""
    idx = _type_index(profile, sample_type)
    stype, unit = profile.sample_types[idx]
    samples, weights = [], []
    for stack, values in zip(profile.stacks, profile.values, strict=True):
        if values[idx] < 0:
            raise PerflabError(f"source {profile.source_id} has negative {stype} values (a delta profile); "
                               "speedscope weights are sizes")
        if values[idx]:
            samples.append(stack[::-1])
            weights.append(values[idx])
    return {
        "$schema": SPEEDSCOPE_SCHEMA,
        "exporter": "perflab",
        "name": name,
        "activeProfileIndex": 0,
        "shared": {"frames": [{"name": n} for n in profile.names]},
        "profiles": [{
            "type": "sampled", "name": f"{name} ({stype})",
            "unit": unit if unit in SPEEDSCOPE_UNITS else "none",
            "startValue": 0, "endValue": sum(weights), "samples": samples, "weights": weights,
        }],
    }


def _type_index(profile: StackProfile, sample_type: str | int | None) -> int:
    if sample_type is None:
        return profile.default_index
    if isinstance(sample_type, int) or str(sample_type).isdigit():
        idx = int(sample_type)
        if 0 <= idx < len(profile.sample_types):
            return idx
    for i, (t, _) in enumerate(profile.sample_types):
        if t == sample_type:
            return i
    have = ", ".join(t for t, _ in profile.sample_types)
    raise PerflabError(f"source {profile.source_id} has no sample type {sample_type!r}; it has: {have}")
