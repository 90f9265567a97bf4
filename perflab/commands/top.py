from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from perflab.analysis.profiles import profile_info, top
from perflab.commands import HELPS
from perflab.commands._common import add_json_flag, open_store, print_json, resolve
from perflab.errors import PerflabError
from perflab.vocab import CPROFILE, PPROF, PROFILE_KINDS

NAME = "top"
HELP = HELPS[NAME]

# A terminal screen of rows; 0 shows them all, as `go tool pprof -top` does.
DEFAULT_LIMIT = 20

# The suffixes `go tool pprof -unit=<unit>` prints after an exact value.
_UNIT_SUFFIX = {"nanoseconds": "ns", "microseconds": "us", "milliseconds": "ms", "seconds": "s",
                "bytes": "B", "count": "", "": ""}


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("ref", metavar="FILE_OR_SOURCE", help="a profile file (ingested first) or a source id")
    p.add_argument("--sample-type", metavar="TYPE",
                   help="sample type by name (alloc_space, cpu, ...) or index (default: the profile's default)")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT, metavar="N",
                   help=f"show the first N functions (default {DEFAULT_LIMIT}; 0 = all)")
    p.add_argument("--tag", metavar="KEY",
                   help="the value per value of label KEY instead (`go tool pprof -tags`), e.g. route")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise PerflabError("--limit must be 0 (all) or more")
    if args.tag:
        from perflab.commands import _tags

        return _tags.run(args)
    store = open_store(args)
    full = top(store, resolve(args, store, args.ref, PROFILE_KINDS), sample_type=args.sample_type)
    shown = dict(full, rows=full["rows"][: args.limit] if args.limit else full["rows"])
    if args.json:
        print_json(shown)
        return 0
    info = profile_info(store, full["source_id"]) if full["format"] == PPROF else {}
    for line in render(shown, n_all=len(full["rows"]), info=info):
        print(line)
    return 0


def render(result: dict[str, Any], n_all: int, info: dict[str, Any]) -> list[str]:
    """The text of `go tool pprof -top`: a header, then flat, flat%, sum%, cum, cum%, name."""
    unit = result["unit"]
    fmt = _value_formatter(result["format"], unit)
    total = result["total"]
    rows = result["rows"]
    lines = [f"Type: {result['sample_type'] or '(unnamed)'}"]
    if info.get("time_nanos"):
        when = datetime.fromtimestamp(info["time_nanos"] / 1e9, tz=UTC)
        lines.append(f"Time: {when:%Y-%m-%d %H:%M:%S} UTC")
    if info.get("duration_nanos"):
        lines.append(f"Duration: {info['duration_nanos'] / 1e9:.3g}s")
    shown_flat = sum(r["flat"] for r in rows)
    lines.append(
        f"Showing nodes accounting for {fmt(shown_flat)}, {_pct(shown_flat, total).strip()} "
        f"of {fmt(total)} total"
    )
    if len(rows) < n_all:
        lines.append(f"Showing top {len(rows)} nodes out of {n_all}")
    # cProfile rows also carry pstats' ncalls ("total/primitive" when they differ: recursion).
    calls = result["format"] == CPROFILE
    lines.append(f"{'flat':>10} {'flat%':>6} {'sum%':>6} {'cum':>10} {'cum%':>6}"
                 + (f" {'ncalls':>9}" if calls else ""))
    running = 0
    for r in rows:
        running += r["flat"]
        ncalls = ""
        if calls:
            n = f"{r['calls']}" if r["calls"] == r["primitive_calls"] else f"{r['calls']}/{r['primitive_calls']}"
            ncalls = f" {n:>9}"
        lines.append(
            f"{fmt(r['flat']):>10} {_pct(r['flat'], total)} {_pct(running, total)} "
            f"{fmt(r['cum']):>10} {_pct(r['cum'], total)}{ncalls}  {r['name']}"
        )
    return lines


def _value_formatter(fmt_kind: str, unit: str) -> Any:
    if fmt_kind == CPROFILE:
        return lambda v: f"{v:.6f}s"  # cProfile's clock resolves microseconds
    suffix = _UNIT_SUFFIX.get(unit, unit)
    return lambda v: "0" if v == 0 else f"{v}{suffix}"


def _pct(value: float, total: float) -> str:
    """pprof's measurement.Percentage: 6 characters, '  100%' near 100, 2 significant digits below 1%."""
    ratio = abs(value / total) * 100 if total else 0.0
    if 99.95 <= ratio <= 100.05:
        return "  100%"
    if ratio >= 1.0:
        return f"{ratio:5.2f}%"
    return f"{ratio:5.2g}%"
