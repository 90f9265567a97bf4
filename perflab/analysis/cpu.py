"""The service's CPU in % of one core (2 cores = 200 %), from whichever the run has.

In order: the lab's resource samples of the service (4 Hz, from the process tree's CPU
times), else the service's own ``cpu_seconds`` role (``process_cpu_seconds_total`` of its
metrics, or a process samples CSV): each step between two samples is a rate,
100 × Δcpu_seconds / Δt. The doctor, compare, the report and ``perflab runs`` all read CPU
here, so a run reads the same number everywhere. (A CPU profile's total over its duration
is the doctor's last resort, in perflab.analysis.signatures._measure.)
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from perflab.analysis.roles import counter_steps


@dataclass(frozen=True)
class CpuSamples:
    """Per-sample CPU of the service: ``values`` (t_s, cpu_pct) and what they came from."""

    values: pl.DataFrame
    source: str


def service_cpu(resources: pl.DataFrame, signals: pl.DataFrame) -> CpuSamples | None:
    rows = resources.filter((pl.col("role") == "service") & pl.col("cpu_pct").is_not_null())
    if rows.height:
        return CpuSamples(rows.select("t_s", "cpu_pct"), "resource samples: service cpu_pct")
    steps = counter_steps(signals, "cpu_seconds").filter(pl.col("dt_s") > 0)
    if steps.height:
        values = (steps.group_by("t_s").agg((100.0 * pl.col("delta") / pl.col("dt_s")).sum().alias("cpu_pct"))
                  .sort("t_s"))
        return CpuSamples(values, "the service's cpu_seconds role, per sample interval")
    return None
