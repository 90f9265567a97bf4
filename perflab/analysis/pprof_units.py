"""Values printed the way `go tool pprof` prints them: its unit families, its automatic
choice of one output unit per report, its two-decimal labels and its percentages.

The rules (read from pprof's measurement and report packages, not copied):

* a unit name is matched case-insensitively, with one trailing ``s`` dropped when the
  name is longer than two *bytes* (so ``nanoseconds`` is ``nanosecond``, but ``μs``,
  three bytes in UTF-8, becomes ``μ`` and matches nothing);
* "minimum"/"auto" pick, within the family, the largest unit the value reaches at
  least 1 of; a value that reaches none (0) gets the family's default unit;
* a unit outside the families (``count``, ``samples``...) prints the bare number;
* a report picks one unit from its smallest non-zero row and its total (see
  :func:`report_unit`), then prints every value in it with two decimals, ``.00`` cut.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class _Unit:
    name: str
    aliases: tuple[str, ...]
    factor: float


@dataclass(frozen=True)
class _Family:
    units: tuple[_Unit, ...]
    default: _Unit


_B = _Unit("B", ("b", "byte"), 1.0)
_S = _Unit("s", ("s", "sec", "second"), 1e9)
_GCU = _Unit("GCU", ("gcu",), 1.0)
_FAMILIES = (
    _Family((_B, _Unit("kB", ("kb", "kbyte", "kilobyte"), float(1 << 10)),
             _Unit("MB", ("mb", "mbyte", "megabyte"), float(1 << 20)),
             _Unit("GB", ("gb", "gbyte", "gigabyte"), float(1 << 30)),
             _Unit("TB", ("tb", "tbyte", "terabyte"), float(1 << 40)),
             _Unit("PB", ("pb", "pbyte", "petabyte"), float(1 << 50))), _B),
    _Family((_Unit("ns", ("ns", "nanosecond"), 1.0), _Unit("us", ("μs", "us", "microsecond"), 1e3),
             _Unit("ms", ("ms", "millisecond"), 1e6), _S, _Unit("hrs", ("hour", "hr"), 3600e9)),
            _Unit("s", (), 1e9)),
    _Family((_Unit("n*GCU", ("nanogcu",), 1e-9), _Unit("u*GCU", ("microgcu",), 1e-6),
             _Unit("m*GCU", ("milligcu",), 1e-3), _GCU, _Unit("k*GCU", ("kilogcu",), 1e3),
             _Unit("M*GCU", ("megagcu",), 1e6), _Unit("G*GCU", ("gigagcu",), 1e9),
             _Unit("T*GCU", ("teragcu",), 1e12), _Unit("P*GCU", ("petagcu",), 1e15)),
            _Unit("GCU", (), 1.0)),
)
_AUTO = ("minimum", "auto")


def _sniff(family: _Family, unit: str) -> _Unit | None:
    unit = unit.lower()
    if len(unit.encode()) > 2:
        unit = unit.removesuffix("s")
    return next((u for u in family.units if unit in u.aliases), None)


def _auto(family: _Family, value: float) -> tuple[float, str] | None:
    best: _Unit | None = None
    for u in family.units:
        if (best is None or u.factor >= best.factor) and value / u.factor >= 1.0:
            best = u
    return None if best is None else (value / best.factor, best.name)


def scale(value: int, from_unit: str, to_unit: str) -> tuple[float, str]:
    """``value`` in ``from_unit`` as (number, unit name) in ``to_unit`` ("minimum": automatic)."""
    if value < 0:
        v, u = scale(-value, from_unit, to_unit)
        return -v, u
    for family in _FAMILIES:
        src = _sniff(family, from_unit)
        if src is None:
            continue
        v = float(value) * src.factor
        if to_unit in _AUTO:
            auto = _auto(family, v)
            return auto if auto is not None else (v / family.default.factor, family.default.name)
        dst = _sniff(family, to_unit)
        if dst is None:
            return v / family.default.factor, family.default.name
        return v / dst.factor, dst.name
    if to_unit in ("count", "sample", "unit", *_AUTO):
        return float(value), ""
    return float(value), to_unit


def scale_family(unit: str) -> int | None:
    """Which of pprof's unit families ``unit`` belongs to (None: none of them)."""
    return next((i for i, family in enumerate(_FAMILIES) if _sniff(family, unit) is not None), None)


def conversion(from_unit: str, to_unit: str) -> tuple[float, float, str]:
    """(factor, divisor, unit) with ``scale(v, from_unit, to_unit)`` equal to
    ``(v * factor) / divisor`` in that unit, for an explicit ``to_unit`` (not "auto")."""
    for family in _FAMILIES:
        src = _sniff(family, from_unit)
        if src is None:
            continue
        dst = _sniff(family, to_unit)
        return (src.factor, dst.factor, dst.name) if dst else (src.factor, family.default.factor, family.default.name)
    return 1.0, 1.0, "" if to_unit in ("count", "sample", "unit", *_AUTO) else to_unit


def label(value: int, from_unit: str, to_unit: str) -> str:
    """pprof's ScaledLabel: two decimals, ``.00`` cut, ``0`` for a zero."""
    v, u = scale(value, from_unit, to_unit)
    text = f"{v:.2f}".removesuffix(".00")
    return "0" if text in ("0", "-0") else text + u


def percentage(value: int, total: int) -> str:
    """pprof's Percentage: 6 characters, ``  100%`` near 100, two significant digits below 1%."""
    ratio = abs(float(value) / float(total)) * 100 if total else 0.0
    if 99.95 <= ratio <= 100.05:
        return "  100%"
    if ratio >= 1.0:
        return f"{ratio:5.2f}%"
    return f"{ratio:5.2g}%"


def report_unit(row_values: list[int], total: int, sample_unit: str) -> str:
    """The one unit a report prints in: from its smallest non-zero value and its total.

    ``row_values`` holds each shown row's flat, or its cum where flat is 0. When the
    smallest and the total fall in different units and the smallest is under 1% of the
    total, the unit of 100x the smallest is taken, so small rows print as 0.01 and up.
    """
    if not row_values:
        return "minimum"
    smallest = min((abs(v) for v in row_values if v), default=0) or total
    _, small_unit = scale(smallest, sample_unit, "minimum")
    _, large_unit = scale(total, sample_unit, "minimum")
    unit = small_unit
    if small_unit != large_unit and smallest * 100 < total:
        _, unit = scale(100 * smallest, sample_unit, "minimum")
    return unit or sample_unit


def duration_label(nanos: int) -> str:
    return label(nanos, "nanoseconds", "auto")


def in_nanoseconds(value: int, unit: str) -> int | None:
    """``value`` as whole nanoseconds when ``unit`` is a time unit (for "Total samples = ... (x%)")."""
    v, u = scale(value, unit, "nanoseconds")
    return int(v) if u == "ns" and math.isfinite(v) else None
