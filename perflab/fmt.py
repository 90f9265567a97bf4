"""Numbers as people read them: units, digits, and "not measured (why)" instead of None.

One module for every place perflab writes a number for a person: the CLI's tables, the
reports (markdown and HTML), the nightly index, the optimization log and the notebooks.
Each function takes a value in the unit the analyses keep (fractions for rates and
shares, % of one core for CPU, ms for latency, bytes, seconds) and says in its name what
it prints. None, NaN and infinities print as ``not measured (reason)`` (or a dash where a
table cell must stay short).
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

MIB = 1024.0 * 1024.0
DASH = "–"
# A person compares numbers by their first three digits; more is noise in a run-to-run
# figure, fewer loses the difference between 1.36 and 1.4.
DIGITS = 3
# Below a millionth every figure perflab prints (ms, s, %, shares) is zero to its reader;
# more decimals would be a row of zeros, and an exponent is what this module exists to avoid.
MAX_DECIMALS = 6

# A profile's values in the unit its sample type names, scaled to a readable one.
UNIT_SCALES: dict[str, tuple[tuple[float, str], ...]] = {
    "nanoseconds": ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1, "ns")),
    "microseconds": ((1e6, "s"), (1e3, "ms"), (1, "µs")),
    "milliseconds": ((1e3, "s"), (1, "ms")),
    "seconds": ((1, "s"), (1e-3, "ms"), (1e-6, "µs")),
    "bytes": ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "B")),
}

# Evidence keys are named for their unit: fractions end in one of these, bytes in _bytes.
PERCENT_SUFFIXES = ("_share", "_rate", "_fraction", "_growth")
BYTES_SUFFIX = "_bytes"


def ok(v: Any) -> bool:
    """A value that can be printed as a number (not None, not NaN, not infinite)."""
    return v is not None and not (isinstance(v, float) and not math.isfinite(v))


def missing(reason: str) -> str:
    return f"not measured ({reason})"


def sig(v: float, digits: int = DIGITS) -> str:
    """``v`` to ``digits`` significant digits, thousands separated, never in exponent
    notation: ``3,209``, ``1.36``, ``40.0``, ``0.000123``; whole numbers at or above
    10^digits keep every digit (``1,234,567``)."""
    v = float(v)
    if not math.isfinite(v):
        return missing("not a finite number")
    if v == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(v)))
    decimals = min(max(digits - 1 - magnitude, 0), MAX_DECIMALS)
    text = f"{v:,.{decimals}f}"
    return "0" if text.lstrip("-").strip("0.,") == "" else text


def ms(v: Any, reason: str = "no data") -> str:
    """A latency: ``12.34 ms``."""
    return f"{v:.2f} ms" if ok(v) else missing(reason)


def percent(fraction: Any, reason: str = "no data", digits: int = 2) -> str:
    """A fraction (0..1) as a percentage: ``34.88 %``."""
    return f"{100 * fraction:.{digits}f} %" if ok(fraction) else missing(reason)


def signed_percent(pct: float | None) -> str:
    """A change already in percent, with its sign: ``-65.0 %``; None when the base was 0."""
    if pct is None:
        return "n/a (before was 0)"
    return f"{pct:+.1f} %"


def cpu(v: Any, reason: str = "no samples") -> str:
    """CPU in % of one core (2 cores = 200 %): ``195.0 %``."""
    return f"{v:.1f} %" if ok(v) else missing(reason)


def count(v: Any, digits: int = 2, reason: str = "no data") -> str:
    """A count or a rate with thousands separated: ``1,098`` or ``72.93``."""
    if not ok(v):
        return missing(reason)
    if float(v) == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.{digits}f}"


def mib(v: Any, reason: str = "no samples") -> str:
    """Bytes as MiB: ``48.3 MiB``."""
    return f"{v / MIB:.1f} MiB" if ok(v) else missing(reason)


def seconds(v: Any, reason: str = "no data") -> str:
    return f"{v:.1f} s" if ok(v) else missing(reason)


def number(v: Any) -> str:
    """A number with 3-4 significant digits and thousands separated: ``3,209``, ``1.36``."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    v = float(v)
    if not math.isfinite(v):
        return missing("not a finite number")
    a = abs(v)
    if v == int(v) and a < 1e15:
        return f"{int(v):,}"
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return sig(v)


def value(v: Any, unit: str = "") -> str:
    """:func:`number` with its unit (none for a bare count)."""
    if v is None:
        return "not measured"
    text = number(v)
    return text if unit in ("", "count") else f"{text} {unit}"


# Below this a p-value's digits say nothing more: the change is beyond noise either way.
P_FLOOR = 0.001


def p_value(p: float) -> str:
    """``0.042``, or ``< 0.001`` (never ``1.2e-10``)."""
    return f"< {P_FLOOR:g}" if 0 <= p < P_FLOOR else sig(p, 2)


def short(v: Any, digits: int = 3) -> str:
    """A compact cell: floats to ``digits`` significant digits, None as a dash."""
    if v is None:
        return DASH
    if isinstance(v, float):
        return sig(v, digits)
    return str(v)


def profile_value(v: float, unit: str) -> str:
    """A profile value in a readable unit: CPU nanoseconds as seconds (pprof prints 1.44s)."""
    if unit == "nanoseconds":
        return f"{v / 1e9:.2f} s"
    if unit == "seconds":
        return f"{v:.3f} s"
    if unit == "bytes":
        return f"{v / MIB:.2f} MiB" if abs(v) >= MIB / 10 else f"{v / 1024:.1f} KiB"
    return f"{v:,}" if isinstance(v, int) else f"{v:,.2f}"


def scaled(v: float, unit: str) -> str:
    """A profile value with the largest unit under it, 3 significant digits: ``1.44 s``."""
    for scale, suffix in UNIT_SCALES.get(unit, ()):
        if abs(v) >= scale:
            return f"{sig(v / scale)} {suffix}"
    return sig(v, 6) + (f" {unit}" if unit and unit != "count" else "")


# How a profile diff's basis (perflab.analysis.profile_diff) reads after a value.
PER_SUFFIXES = {"second of profile": "/s", "request": "/req", "profile": ""}


def per_basis(v: float, unit: str, per: str | None, signed: bool = False) -> str:
    """A profile diff's value: ``-1.2 ms/req``, ``+350 ms/s``; a change carries its sign."""
    text = ("0" if v == 0 else scaled(v, unit)) + PER_SUFFIXES.get(per or "", f" per {per}")
    return f"+{text}" if signed and v > 0 else text


def cell(v: Any, column: str = "") -> str:
    """A value in a CLI table: ``-`` for None, else as :func:`by_name` reads its column's name."""
    return "-" if v is None else by_name(column, v)


def size(nbytes: float) -> str:
    """Bytes in the largest binary unit under them, 3 significant digits: ``48.3 MiB``."""
    for scale, suffix in UNIT_SCALES["bytes"]:
        if abs(nbytes) >= scale:
            return f"{sig(nbytes / scale)} {suffix}" if scale > 1 else f"{int(nbytes):,} B"
    return f"{sig(nbytes)} B"


# Names perflab gives rates per second (k6's, the runs' headline).
PER_SECOND_NAMES = ("rps", "rate_per_s", "req_per_s")
# Names that hold a number with "cpu" in them that is not a CPU percentage.
NOT_CPU_SUFFIXES = ("_samples", "correlation", "_seconds", "_s", "_ms", "_count")


def by_name(key: str, v: Any, cpu_unit: str = "%") -> str:
    """A value read from the name it is stored under (perflab names fields for their
    unit): ``*_ms`` in ms, ``*_s`` in s, ``*_bytes`` (and ``bytes``) in KiB/MiB/GiB, fractions
    (``*_share``, ``*_rate``, ``*_ratio``, ...) as %, ``*_pct`` and CPU as %, ``rps`` per
    second, anything else as a count or 3 significant digits. Never an exponent."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, datetime):
        return v.isoformat(timespec="seconds")
    if not isinstance(v, (int, float)):
        return str(v)
    if not ok(v):
        return missing("not a finite number")
    k = key.lower()
    if k.endswith(BYTES_SUFFIX) or k == "bytes":
        return size(v)
    if k.endswith(PERCENT_SUFFIXES + ("_ratio",)) or k in ("share", "ratio"):
        return f"{sig(100 * v)} %"
    if k.endswith("_ms"):
        return f"{sig(v)} ms"
    if k.endswith(("_s", "_seconds")):
        return f"{sig(v)} s"
    if k.endswith("_pct") or k == "%" or ("cpu" in k and not k.endswith(NOT_CPU_SUFFIXES)):
        return f"{sig(v)} {cpu_unit}" if "cpu" in k else f"{sig(v)} %"
    if k in PER_SECOND_NAMES or k.endswith("_per_s"):
        return f"{sig(v)}/s"
    if isinstance(v, int) or (v == int(v) and abs(v) < 1e15):
        return f"{int(v):,}"
    return sig(v)


def evidence_value(key: str, v: Any) -> str:
    """One piece of a signature's evidence, read from its name (:func:`by_name`), CPU as
    % of a core."""
    return by_name(key, v, cpu_unit="% of a core")


def evidence_brief(key: str, v: Any) -> str:
    """Evidence as the report's table cell shows it (MiB, % with one decimal, 4 digits)."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)) and key.endswith(BYTES_SUFFIX):
        return mib(v)
    if isinstance(v, (int, float)) and key.endswith(PERCENT_SUFFIXES):
        return percent(v, digits=1)
    if isinstance(v, float):
        return sig(v, 4)
    return str(v)


# -- as k6 prints them (its end-of-test summary, v1.1.0) ----------------------------------

def k6_fixed(value: float, digits: int) -> str:
    """JavaScript's Number.toFixed: the exact binary value, rounded half up."""
    return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def _no_trailing_zeros(value: float, digits: int) -> str:
    text = k6_fixed(value, digits)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _trunc(value: float, digits: int) -> str:
    mult = 10 ** digits
    return _no_trailing_zeros(math.trunc(value * mult) / mult, digits)


def k6_duration(ms: float) -> str:
    if ms == 0:
        return "0s"
    if ms < 0.001:
        return f"{math.trunc(ms * 1e6)}ns"
    if ms < 1:
        return _trunc(ms * 1000, 2) + "µs"
    if ms < 1000:
        return _trunc(ms, 2) + "ms"
    text = _trunc((ms % 60000) / 1000, 0 if ms > 60000 else 2) + "s"
    minutes = math.trunc(ms / 60000)
    if minutes < 1:
        return text
    text = f"{minutes % 60}m{text}"
    hours = math.trunc(minutes / 60)
    return text if hours < 1 else f"{hours}h{text}"


def k6_data(nbytes: float) -> str:
    if nbytes < 10:
        return f"{_no_trailing_zeros(nbytes, 6)} B"
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    e = min(int(math.floor(math.log(nbytes) / math.log(1000))), len(units) - 1)
    val = math.floor(nbytes / 1000**e * 10 + 0.5) / 10
    return f"{k6_fixed(val, 1 if val < 10 else 0)} {units[e]}"


def k6_value(v: Any, contains: str | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if contains == "time":
        return k6_duration(v)
    if contains == "data":
        return k6_data(v)
    return _no_trailing_zeros(v, 6)


def k6_percent(rate: float) -> str:
    return f"{k6_fixed(math.trunc(rate * 10000) / 100, 2)}%"
