"""`perflab top FILE --tag KEY`: the profile's value per value of one label, like
``go tool pprof -tags`` for that key (perflab.analysis.tag_cost)."""

from __future__ import annotations

import argparse

from perflab.analysis.tag_cost import MS_PER_UNIT, tag_values
from perflab.commands._common import open_store, print_json, resolve
from perflab.errors import PerflabError
from perflab.vocab import PPROF_SHAPED_KINDS

# The suffix pprof prints after an exact value in a type's own unit (-unit=<unit>).
_SUFFIX = {"nanoseconds": "ns", "microseconds": "us", "milliseconds": "ms", "seconds": "s", "bytes": "B"}


def run(args: argparse.Namespace) -> int:
    if len(args.ref) > 1 or args.base or args.diff_base:
        raise PerflabError("--tag reads one profile: give one FILE_OR_SOURCE, without --base or --diff-base")
    store = open_store(args)
    result = tag_values(store, resolve(args, store, args.ref[0], PPROF_SHAPED_KINDS), args.tag,
                        sample_type=args.sample_type)
    rows = result["rows"][: args.nodecount] if args.nodecount else result["rows"]
    per_ms = MS_PER_UNIT.get(result["unit"])
    if per_ms is not None:  # a time: CPU milliseconds too, what a per-request cost divides
        rows = [dict(r, ms=r["amount"] * per_ms) for r in rows]
    if args.json:
        print_json(dict(result, format="pprof", rows=rows))
        return 0
    for line in render(dict(result, rows=rows)):
        print(line)
    return 0


def render(result: dict[str, object]) -> list[str]:
    """pprof's -tags lines for one key: the key's total of the profile's, then each value."""
    suffix = _SUFFIX.get(str(result["unit"]), "")
    total = int(str(result["total"]))

    def pct(v: int) -> str:
        ratio = abs(v / total) * 100 if total else 0.0
        return "  100%" if 99.95 <= ratio <= 100.05 else f"{ratio:5.2f}%"

    key_total = int(str(result["key_total"]))
    lines = [f"Type: {result['sample_type'] or '(unnamed)'}",
             f"{result['key']}: Total {key_total}{suffix} of {total}{suffix} ({pct(key_total)})"]
    rows = result["rows"]
    assert isinstance(rows, list)
    width = max((len(f"{r['amount']}{suffix}") for r in rows), default=0)
    lines += [f"  {str(r['amount']) + suffix:>{width}} ({pct(r['amount'])}): {r['value']}" for r in rows]
    if result["unlabelled"]:
        lines.append(f"  {result['unlabelled']}{suffix} in samples without {result['key']!r}")
    return lines
