"""What every verb shares: opening the store from the global options, and output."""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import polars as pl

from perflab.ingest._io import parse_size
from perflab.store import Store


def open_store(args: argparse.Namespace, read_only: bool = False) -> Store:
    return Store(getattr(args, "store", None), read_only=read_only)


def max_decompressed(args: argparse.Namespace) -> int | None:
    value = getattr(args, "max_decompressed", None)
    return parse_size(value) if value else None


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _default(obj: Any) -> Any:
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, Decimal):
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def _clean(obj: Any) -> Any:
    # JSON has no NaN/Infinity; emitting them would break every strict reader.
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def print_json(obj: Any) -> None:
    json.dump(_clean(obj), sys.stdout, indent=2, sort_keys=True, default=_default)
    sys.stdout.write("\n")


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value)}"
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.0f}"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def print_table(rows: list[dict[str, Any]] | pl.DataFrame, columns: list[str] | None = None,
                right: set[str] | None = None, max_width: int = 80) -> None:
    """A plain aligned table, like `go tool pprof -top`: numbers right, text left."""
    if isinstance(rows, pl.DataFrame):
        rows = rows.to_dicts()
    if not rows:
        print("(no rows)")
        return
    cols = columns or list(rows[0].keys())
    cells = [[format_value(r.get(c)) for c in cols] for r in rows]
    cells = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in row] for row in cells]
    if right is None:
        right = {c for c in cols if all(isinstance(r.get(c), (int, float)) or r.get(c) is None for r in rows)}
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]

    def fmt(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if c in right else v.ljust(w) for v, w, c in zip(values, widths, cols)
        ).rstrip()

    print(fmt(cols))
    for row in cells:
        print(fmt(row))
