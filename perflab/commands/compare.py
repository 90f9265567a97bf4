"""`perflab compare RUN_A RUN_B`: before and after, every headline metric beyond noise or not
(beyond noise exactly when the 95 % interval of B − A excludes 0: the interval is printed beside)."""

from __future__ import annotations

import argparse

from perflab import fmt
from perflab.analysis.compare import Comparison, LatencyGroup, MetricRow, compare_runs
from perflab.analysis.run import Run
from perflab.commands import HELPS
from perflab.commands._common import add_json_flag, open_store, print_json, print_table
from perflab.errors import PerflabError

NAME = "compare"
HELP = HELPS[NAME]


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a", metavar="RUN_A", help="the before run's id (perflab runs)")
    p.add_argument("run_b", metavar="RUN_B", help="the after run's id")
    p.add_argument("--limit", type=int, default=None,
                   help="rows of the CPU profile diff (default 15; 0 for all)")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 0:
        raise PerflabError("--limit must be 0 (all rows) or more")
    with open_store(args, read_only=True) as store:
        result = compare_runs(Run.load(store, args.run_a), Run.load(store, args.run_b), profile_limit=args.limit)
    if args.json:
        print_json(result)
    else:
        render(result)
    return 0


def _beyond(row: MetricRow) -> str:
    if row.beyond_noise is None:
        return "not tested" if row.a is not None and row.b is not None else "-"
    if not row.beyond_noise:
        return "no"
    return f"yes ({row.direction})" if row.direction in ("better", "worse") else "yes"


def _interval(row: MetricRow) -> str:
    if row.interval is None:
        return "-"
    lo, hi = row.interval
    return f"{fmt.number(lo)} to {fmt.number(hi)}"


def _change(change: float | None, change_pct: float | None) -> str:
    if change is None:
        return "-"
    pct = f" ({fmt.signed_percent(change_pct)})" if change_pct is not None else ""
    sign = "+" if change > 0 else ""
    return f"{sign}{fmt.number(change)}{pct}"


def render(result: Comparison) -> None:
    for side, r in (("A", result.a), ("B", result.b)):
        what = ", ".join(x for x in (r.scenario, r.variant) if x)
        print(f"{side}: {r.run_id}" + (f" ({what})" if what else "") + f", started {r.started_at}")
    print()
    rows = []
    notes = []
    for row in result.metrics:
        unit = f" ({row.unit})" if row.unit and row.unit != "count" else ""
        rows.append({"metric": row.metric + unit,
                     "A": "-" if row.a is None else fmt.number(row.a),
                     "B": "-" if row.b is None else fmt.number(row.b),
                     "change": _change(row.change, row.change_pct), "95 % interval": _interval(row),
                     "beyond noise": _beyond(row)})
        if row.note and row.metric != "requests":
            notes.append(f"  {row.metric}: {row.note}")
    print_table(rows, ["metric", "A", "B", "change", "95 % interval", "beyond noise"],
                right={"A", "B", "change", "95 % interval"})
    print(f"\nBeyond noise: {result.rule} (the interval is of B - A, in the metric's unit).")
    overall: LatencyGroup | None = result.latency["overall"]
    if overall and overall.mann_whitney:
        mw = overall.mann_whitney
        print(f"Context, not a verdict: P(a request of B slower than one of A) = {fmt.number(mw['effect_size'])} "
              f"(Mann-Whitney U = {fmt.number(mw['u'])}, p = {fmt.p_value(mw['p_value'])})")
    if notes:
        print("\nnotes:")
        print("\n".join(dict.fromkeys(notes)))

    endpoints: dict[str, LatencyGroup] = result.latency["endpoints"]
    if endpoints:
        print("\nlatency per endpoint (ms):")
        ep_rows = []
        for ep, g in endpoints.items():
            ch = g.change["p95"]
            iv = g.ci["p95"] if g.ci else None
            ep_rows.append({
                "endpoint": ep, "n A": g.a["count"], "n B": g.b["count"],
                "p95 A": "-" if g.a["p95"] is None else fmt.number(g.a["p95"]),
                "p95 B": "-" if g.b["p95"] is None else fmt.number(g.b["p95"]),
                "change": _change(ch["abs"], ch["pct"]),
                "95 % interval": f"{fmt.number(iv[0])} to {fmt.number(iv[1])}" if iv else "-",
                "beyond noise": "not tested" if g.beyond_noise is None else ("yes" if g.beyond_noise else "no"),
            })
        print_table(ep_rows, list(ep_rows[0]), right={"n A", "n B", "p95 A", "p95 B", "change", "95 % interval"})

    prof = result.profile
    unit, per = prof.unit or "", prof.per
    what = f"{unit} per {per}; share = % of each profile's total" if per else "share of each profile's total"
    print(f"\nCPU profile diff ({what}; A = source {prof.a_source}, B = source {prof.b_source}):")
    if not prof.rows:
        print(f"  {prof.note or 'no functions'}")
        return
    if prof.note:
        print(f"  {prof.note}")
    print_table([{
        "function": r["name"], "flat A": fmt.per_basis(r["flat_a"], unit, per),
        "flat B": fmt.per_basis(r["flat_b"], unit, per),
        "flat change": fmt.per_basis(r["flat_delta"], unit, per, signed=True),
        "cum A": fmt.per_basis(r["cum_a"], unit, per), "cum B": fmt.per_basis(r["cum_b"], unit, per),
        "cum change": fmt.per_basis(r["cum_delta"], unit, per, signed=True),
        "flat share A → B": f"{fmt.number(r['flat_pct_a'])} → {fmt.number(r['flat_pct_b'])} %",
    } for r in prof.rows], right={"flat A", "flat B", "flat change", "cum A", "cum B", "cum change",
                                  "flat share A → B"}, max_width=60)
