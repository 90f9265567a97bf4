from __future__ import annotations

import argparse

from perflab.analysis.run import Run
from perflab.analysis.runs import run_summary
from perflab.commands._common import add_json_flag, open_store, print_json, print_table
from perflab.errors import PerflabError
from perflab.jsonable import to_jsonable
from perflab.lab import scenarios

NAME = "run"
HELP = "run a lab scenario: PostgreSQL + the sample service under real k6 load, ingested as one run"


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", choices=sorted(scenarios.SCENARIOS), help="what to reproduce")
    p.add_argument("--variant", choices=("default", "fixed"), default="default",
                   help="fixed: change exactly the one setting that fixes the scenario")
    p.add_argument("--duration", type=float, default=30.0, metavar="S", help="k6 duration in seconds (default 30)")
    p.add_argument("--rate", type=float, metavar="R", help="k6 arrival rate per second (default: the scenario's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a service setting (repeatable), e.g. --set POOL_SIZE=20")
    add_json_flag(p)


def parse_overrides(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PerflabError(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip().upper()] = value.strip()
    return out


def run(args: argparse.Namespace) -> int:
    # Deferred on purpose: perflab.lab.runner brings psycopg, psutil and asyncio (~0.1 s),
    # which every other verb, and `perflab --help`, would otherwise pay for.
    from perflab.lab.runner import RunOptions
    from perflab.lab.runner import run as run_lab

    store = open_store(args)
    opts = RunOptions(scenario=args.scenario, variant=args.variant, duration_s=args.duration,
                      rate=args.rate, overrides=parse_overrides(args.overrides), live=True)
    result = run_lab(store, opts)
    summary = to_jsonable(run_summary(Run.load(store, result["run_id"])))
    if args.json:
        print_json({**summary, **result})
    else:
        print_table([summary], ["run_id", "status", "requests", "rps", "p95_ms", "error_rate",
                                "service_cpu_p50", "db_queries_per_request"], max_width=60)
    return 0
