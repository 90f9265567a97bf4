"""What changed between two profiles, per function, in the sample type's own unit.

Contract: ``profile_diff(store, a, b) -> polars.DataFrame`` and ``diff_basis(store, a, b)``;
pure reads of the store.

The change is absolute, as ``go tool pprof -diff_base=A B`` shows it: a function that
became 4× cheaper reads as a large negative number, where its share of a smaller total
may barely move (bcrypt at 4× cheaper read "+0.33 percentage points"). The raw change
(``raw_flat_b - raw_flat_a``) is pprof's -diff_base value exactly. Two profiles rarely
cover the same time, so the headline columns divide each side by its own length first:

    per second of profile   raw / (duration_nanos / 1e9): CPU seconds per second (cores)
    per request             the per-second value / the run's requests per second
    per profile             raw, when a side has no duration (cProfile dumps, collapsed stacks)

Time units are read in seconds (pprof's nanoseconds, cProfile's seconds), so a pprof and
a cProfile dump of the same code compare. Shares of each profile's own total stay as
secondary columns (``*_pct_*``, percent, and their change in percentage points).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import polars as pl

from perflab.analysis.profiles import profile_info, resolve_sample_type, top_frame
from perflab.errors import PerflabError
from perflab.store import Store
from perflab.vocab import PPROF_SHAPED_KINDS, PROFILE_KINDS

Ref = str | int | os.PathLike[str]

# Seconds per unit: time is compared in seconds whatever each profile counts it in.
TIME_UNITS = {"nanoseconds": 1e-9, "microseconds": 1e-6, "milliseconds": 1e-3, "seconds": 1.0}
PER_SECOND, PER_REQUEST, PER_PROFILE = "second of profile", "request", "profile"
# Fifteen functions cover every change that mattered in the lab's profiles; the rest of a
# diff is sampling noise in functions of < 0.1 %.
PROFILE_DIFF_LIMIT = 15


@dataclass(frozen=True)
class DiffBasis:
    """What the headline values are: ``unit`` per ``per``; each side's raw value times its
    ``scale`` (unit conversion over the divisor) is that side's headline value."""

    unit: str            # "seconds", "bytes", "count"...: the unit after conversion
    per: str             # PER_SECOND, PER_REQUEST or PER_PROFILE
    scale_a: float
    scale_b: float
    note: str | None = None

    @property
    def label(self) -> str:
        """``seconds per second of profile``: what a headline value counts."""
        return f"{self.unit} per {self.per}"


def _side(store: Store, ref: Ref, sample_type: str | int | None) -> tuple[int, str, float, float | None]:
    """(source id, unit after conversion, unit scale, profile seconds or None)."""
    sid = store.find_source(ref, kinds=PROFILE_KINDS)
    if store.source(sid)["kind"] not in PPROF_SHAPED_KINDS:
        return sid, "seconds", 1.0, None  # cProfile: seconds, no duration
    _, _, unit = resolve_sample_type(store, sid, sample_type)
    duration = profile_info(store, sid).get("duration_nanos") or 0
    seconds = float(duration) / 1e9 if duration > 0 else None
    if unit in TIME_UNITS:
        return sid, "seconds", TIME_UNITS[unit], seconds
    return sid, unit, 1.0, seconds


def diff_basis(store: Store, source_a: Ref, source_b: Ref, sample_type: str | int | None = None,
               requests_per_s: tuple[float | None, float | None] | None = None) -> DiffBasis:
    """Per request when both rates are given (> 0) and both profiles have a duration, else
    per second of profile when both have one, else per profile (raw totals)."""
    sid_a, unit_a, conv_a, secs_a = _side(store, source_a, sample_type)
    sid_b, unit_b, conv_b, secs_b = _side(store, source_b, sample_type)
    if unit_a != unit_b:
        raise PerflabError(f"source {sid_a} counts {unit_a} and source {sid_b} {unit_b}; "
                           "pass sample_type to compare the same thing")
    if secs_a is None or secs_b is None:
        missing = " and ".join(str(s) for s, d in ((sid_a, secs_a), (sid_b, secs_b)) if d is None)
        return DiffBasis(unit_a, PER_PROFILE, conv_a, conv_b,
                         note=f"source {missing} records no duration: the values are whole-profile totals")
    rates = requests_per_s or (None, None)
    if rates[0] and rates[1] and rates[0] > 0 and rates[1] > 0:
        return DiffBasis(unit_a, PER_REQUEST, conv_a / secs_a / rates[0], conv_b / secs_b / rates[1])
    return DiffBasis(unit_a, PER_SECOND, conv_a / secs_a, conv_b / secs_b)


def profile_diff(store: Store, source_a: Ref, source_b: Ref, sample_type: str | int | None = None,
                 limit: int | None = PROFILE_DIFF_LIMIT, basis: DiffBasis | None = None) -> pl.DataFrame:
    """Per function, A, B and B − A of flat and cum: headline values on ``basis`` (default
    :func:`diff_basis`), shares of each profile's total in percent, and raw values.

    Columns: name; flat_a, flat_b, flat_delta, cum_a, cum_b, cum_delta (headline);
    flat_pct_a, flat_pct_b, flat_pct_delta, cum_pct_a, cum_pct_b, cum_pct_delta (shares
    and their change in percentage points); raw_flat_a, raw_flat_b, raw_cum_a, raw_cum_b
    (the sample type's own unit; B − A of them is ``pprof -diff_base``'s flat and cum).
    A function missing from one side is 0 there. Sorted by |flat_delta|, then |cum_delta|,
    then name; ``limit`` None or 0 keeps every row.
    """
    basis = basis or diff_basis(store, source_a, source_b, sample_type)

    def side(ref: Ref, suffix: str) -> pl.DataFrame:
        sid = store.find_source(ref, kinds=PROFILE_KINDS)
        # A cProfile dump has one sample type (cpu), whatever the pprof side is read by.
        st = sample_type if store.source(sid)["kind"] in PPROF_SHAPED_KINDS else None
        df = top_frame(store, sid, sample_type=st)
        return df.select("name", pl.col("flat").alias(f"raw_flat_{suffix}"), pl.col("cum").alias(f"raw_cum_{suffix}"),
                         pl.col("flat_pct").cast(pl.Float64).alias(f"flat_pct_{suffix}"),
                         pl.col("cum_pct").cast(pl.Float64).alias(f"cum_pct_{suffix}"))

    a, b = side(source_a, "a"), side(source_b, "b")
    if a["raw_flat_a"].dtype != b["raw_flat_b"].dtype:  # a pprof (ints) against a cProfile (seconds)
        a = a.with_columns(pl.col("raw_flat_a", "raw_cum_a").cast(pl.Float64))
        b = b.with_columns(pl.col("raw_flat_b", "raw_cum_b").cast(pl.Float64))
    raw = ["raw_flat_a", "raw_cum_a", "raw_flat_b", "raw_cum_b"]
    pct = ["flat_pct_a", "cum_pct_a", "flat_pct_b", "cum_pct_b"]
    df = (a.join(b, on="name", how="full", coalesce=True)
          .with_columns(pl.col(*raw).fill_null(0), pl.col(*pct).fill_null(0.0))
          .with_columns(*[(pl.col(f"raw_{m}_{s}").cast(pl.Float64) * getattr(basis, f"scale_{s}")).alias(f"{m}_{s}")
                          for m in ("flat", "cum") for s in ("a", "b")])
          .with_columns(*[(pl.col(f"{m}_b") - pl.col(f"{m}_a")).alias(f"{m}_delta") for m in ("flat", "cum")],
                        *[(pl.col(f"{m}_pct_b") - pl.col(f"{m}_pct_a")).alias(f"{m}_pct_delta")
                          for m in ("flat", "cum")])
          .sort([pl.col("flat_delta").abs(), pl.col("cum_delta").abs(), pl.col("name")],
                descending=[True, True, False]))
    df = df.select("name", "flat_a", "flat_b", "flat_delta", "cum_a", "cum_b", "cum_delta",
                   "flat_pct_a", "flat_pct_b", "flat_pct_delta", "cum_pct_a", "cum_pct_b", "cum_pct_delta",
                   "raw_flat_a", "raw_flat_b", "raw_cum_a", "raw_cum_b")
    return df.head(limit) if limit else df
