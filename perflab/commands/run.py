from __future__ import annotations

import argparse
from pathlib import Path

from perflab.analysis.run import Run
from perflab.analysis.runs import run_summary
from perflab.commands import HELPS
from perflab.commands._common import add_json_flag, open_store, print_json, print_table
from perflab.errors import PerflabError
from perflab.jsonable import to_jsonable
from perflab.lab import scenarios

NAME = "run"
HELP = HELPS[NAME]


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", choices=sorted(scenarios.SCENARIOS), metavar="SCENARIO",
                   help=f"the lab scenario to reproduce: {', '.join(sorted(scenarios.SCENARIOS))}")
    p.add_argument("--target", type=Path, metavar="FILE.toml",
                   help="run your own service as this target file describes, instead of a scenario")
    p.add_argument("--variant", default="default", metavar="NAME",
                   help="default, or a variant the scenario or target names (scenarios: fixed, "
                        "changing exactly the one setting that fixes it)")
    p.add_argument("--duration", type=float, default=30.0, metavar="S", help="k6 duration in seconds (default 30)")
    p.add_argument("--rate", type=float, metavar="R",
                   help="k6 arrival rate per second, as RATE (default: the scenario's or [load] rate)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting for this run (repeatable), in the environment of the service perflab "
                        "starts and of k6, e.g. --set POOL_SIZE=20")
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
    if (args.scenario is None) == (args.target is None):
        raise PerflabError("give a SCENARIO or --target FILE.toml (one of them)")
    # Deferred on purpose: perflab.lab.runner brings psycopg, psutil and asyncio (~0.1 s),
    # which every other verb, and `perflab --help`, would otherwise pay for.
    from perflab.lab import target as target_file
    from perflab.lab.runner import RunOptions
    from perflab.lab.runner import run as run_lab

    target = target_file.load(args.target) if args.target is not None else None
    opts = RunOptions(scenario=args.scenario, variant=args.variant, duration_s=args.duration,
                      rate=args.rate, overrides=parse_overrides(args.overrides), live=True)
    if target is not None:
        target.variant(opts.variant)  # an unknown variant is refused before the store is opened
    elif opts.variant not in ("default", "fixed"):
        raise PerflabError(f"unknown variant {opts.variant!r}: default or fixed")
    store = open_store(args)
    result = run_lab(store, opts, target=target)
    summary = to_jsonable(run_summary(Run.load(store, result["run_id"])))
    if args.json:
        print_json({**summary, **result})
    else:
        print_table([summary], ["run_id", "status", "requests", "rps", "p95_ms", "error_rate",
                                "service_cpu_p50", "downstream_calls_per_request"], max_width=60)
    return 0
