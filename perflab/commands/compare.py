"""`perflab compare RUN_A RUN_B`: before and after, every headline metric beyond noise or not."""

from __future__ import annotations

import argparse
from typing import Any

from perflab.commands._common import add_json_flag, open_store, print_json, print_table

NAME = "compare"
HELP = "compare two runs (A = before, B = after): each metric's change and whether it is beyond noise"


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a", metavar="RUN_A", help="the before run's id (perflab runs)")
    p.add_argument("run_b", metavar="RUN_B", help="the after run's id")
    p.add_argument("--limit", type=int, default=None,
                   help="rows of the CPU profile diff (default 15; 0 for all)")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    from perflab.analysis.compare import compare_runs
    from perflab.errors import PerflabError

    if args.limit is not None and args.limit < 0:
        raise PerflabError("--limit must be 0 (all rows) or more")
    with open_store(args, read_only=True) as store:
        result = compare_runs(store, args.run_a, args.run_b, profile_limit=args.limit)
    if args.json:
        print_json(result)
    else:
        render(result)
    return 0


def _beyond(row: dict[str, Any]) -> str:
    if row["beyond_noise"] is None:
        return "not tested" if row["a"] is not None and row["b"] is not None else "-"
    if not row["beyond_noise"]:
        return "no"
    return f"yes ({row['direction']})" if row["direction"] in ("better", "worse") else "yes"


def _change(row: dict[str, Any]) -> str:
    from perflab.report.optlog import fmt_number, fmt_pct

    if row["change"] is None:
        return "-"
    pct = f" ({fmt_pct(row['change_pct'])})" if row["change_pct"] is not None else ""
    sign = "+" if row["change"] > 0 else ""
    return f"{sign}{fmt_number(row['change'])}{pct}"


def render(result: dict[str, Any]) -> None:
    from perflab.report.optlog import fmt_number, fmt_p, fmt_value

    for side in ("a", "b"):
        r = result[side]
        what = ", ".join(x for x in (r["scenario"], r["variant"]) if x)
        print(f"{side.upper()}: {r['run_id']}" + (f" ({what})" if what else "") + f", started {r['started_at']}")
    print()
    rows = []
    notes = []
    for row in result["metrics"]:
        unit = f" ({row['unit']})" if row["unit"] and row["unit"] != "count" else ""
        rows.append({"metric": row["metric"] + unit,
                     "A": "-" if row["a"] is None else fmt_number(row["a"]),
                     "B": "-" if row["b"] is None else fmt_number(row["b"]),
                     "change": _change(row), "beyond noise": _beyond(row),
                     "p": fmt_p(row["test"]["p_value"]) if row["test"] else "-"})
        if row["note"] and row["metric"] != "requests":
            notes.append(f"  {row['metric']}: {row['note']}")
    print_table(rows, ["metric", "A", "B", "change", "beyond noise", "p"],
                right={"A", "B", "change", "p"})
    overall = result["latency"]["overall"]
    if overall and overall.get("ci"):
        lo, hi = overall["ci"]["p95"]
        mw = overall["mann_whitney"]
        print(f"\np95 latency B - A: bootstrap {int(result['bootstrap']['level'] * 100)} % interval "
              f"{fmt_value(lo, 'ms')} to {fmt_value(hi, 'ms')}; Mann-Whitney U = {fmt_number(mw['u'])}, "
              f"p = {fmt_p(mw['p_value'])}, P(B slower than A) = {fmt_number(mw['effect_size'])}")
    if notes:
        print("\nnotes:")
        print("\n".join(dict.fromkeys(notes)))

    endpoints = result["latency"]["endpoints"]
    if endpoints:
        print("\nlatency per endpoint (ms):")
        ep_rows = []
        for ep, g in endpoints.items():
            ch = g["change"]["p95"]
            ep_rows.append({
                "endpoint": ep, "n A": g["a"]["count"], "n B": g["b"]["count"],
                "p95 A": "-" if g["a"]["p95"] is None else fmt_number(g["a"]["p95"]),
                "p95 B": "-" if g["b"]["p95"] is None else fmt_number(g["b"]["p95"]),
                "change": _change({"change": ch["abs"], "change_pct": ch["pct"]}),
                "beyond noise": "not tested" if g["beyond_noise"] is None else ("yes" if g["beyond_noise"] else "no"),
                "p": fmt_p(g["mann_whitney"]["p_value"]) if g["mann_whitney"] else "-",
            })
        print_table(ep_rows, list(ep_rows[0]), right={"n A", "n B", "p95 A", "p95 B", "change", "p"})

    prof = result["profile"]
    print(f"\nCPU profile diff (share of each profile's total, %; A = source {prof['a_source']}, "
          f"B = source {prof['b_source']}):")
    if not prof["rows"]:
        print(f"  {prof.get('note') or 'no functions'}")
        return
    print_table([{
        "function": r["name"], "flat A": fmt_number(r["flat_a"]), "flat B": fmt_number(r["flat_b"]),
        "flat delta": f"{'+' if r['flat_delta'] > 0 else ''}{fmt_number(r['flat_delta'])}",
        "cum A": fmt_number(r["cum_a"]), "cum B": fmt_number(r["cum_b"]),
        "cum delta": f"{'+' if r['cum_delta'] > 0 else ''}{fmt_number(r['cum_delta'])}",
    } for r in prof["rows"]], right={"flat A", "flat B", "flat delta", "cum A", "cum B", "cum delta"},
        max_width=60)
