from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perflab.analysis.run import Run
from perflab.commands import HELPS
from perflab.commands._common import add_json_flag, open_store, print_json
from perflab.errors import PerflabError
from perflab.lab import scenarios
from perflab.lab import target as target_file
from perflab.lab.target import Target
from perflab.report import nightly
from perflab.report.night_index import OPTLOG
from perflab.report.nightly import NightRun
from perflab.store import Store

NAME = "nightly"
HELP = HELPS[NAME]

DEFAULT_OUT = Path("reports")
DEFAULT_DURATION_S = 30.0


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                   help=f"reports root; tonight's folder is DIR/YYYY-MM-DD (default {DEFAULT_OUT})")
    p.add_argument("--duration", type=float, default=DEFAULT_DURATION_S, metavar="S",
                   help=f"k6 duration of each run in seconds (default {DEFAULT_DURATION_S:g})")
    p.add_argument("--scenarios", nargs="+", metavar="SCENARIO", choices=sorted(scenarios.SCENARIOS),
                   help="scenarios to run, each with its fixed variant (default: all)")
    p.add_argument("--target", dest="targets", nargs="+", type=Path, metavar="FILE.toml",
                   help="run these targets (perflab run --target), each with its [variants.fixed] when it has "
                        "one, instead of the scenarios (with --scenarios too: both)")
    p.add_argument("--runs", nargs="+", metavar="RUN_ID",
                   help="build the report from these runs already in the store instead of running scenarios")
    p.add_argument("--notebooks", nargs="+", metavar="NAME",
                   help="execute only these notebooks (e.g. 00-tour 04-signatures; default: all)")
    add_json_flag(p)


def _say(msg: str) -> None:
    print(f"perflab nightly: {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    only = tuple(args.notebooks or nightly.NOTEBOOKS)
    unknown = sorted(set(only) - set(nightly.NOTEBOOKS))
    if unknown:
        raise PerflabError(f"unknown notebook {', '.join(unknown)}: one of {', '.join(nightly.NOTEBOOKS)}")
    if args.runs and (args.scenarios or args.targets):
        raise PerflabError("give --scenarios or --target (run them now) or --runs (use existing runs), not both")
    if args.duration < 3:
        raise PerflabError("--duration must be at least 3 seconds")
    # Every target file is read before anything runs: a mistake in one is found at once.
    targets = [target_file.load(path) for path in args.targets or []]
    started = datetime.now(UTC)
    store = open_store(args)
    store_path = store.path.resolve()
    out_dir = nightly.night_dir(args.out, started)
    _say(f"tonight's report: {out_dir}")
    try:
        runs = _given_runs(store, args.runs) if args.runs else _run_scenarios(store, args, targets)
    finally:
        store.close()  # every notebook's kernel opens the store: DuckDB allows one writer process
    night = nightly.build_report(store_path, runs, out_dir, args.out, _say, only, started.isoformat())
    if args.json:
        print_json({"out": str(out_dir), "ok": night["ok"], "runs": night["runs"],
                    "notebooks": night["notebooks"]})
    else:
        for line in closing_lines(out_dir, night):
            print(line)
    return 0 if night["ok"] else 1


def closing_lines(out_dir: Path, night: dict[str, Any]) -> list[str]:
    """Where to look next, one path a line: the verdicts and numbers are in the index, not
    in a table wider than a terminal."""
    log = out_dir / OPTLOG
    reports = [r["report"] for r in night["runs"] if r.get("report")]
    return [f"index: {out_dir / 'index.html'}",
            f"optimization log: {log}" if night["optimization_log"]["entries"] and log.is_file()
            else "optimization log: no entry tonight (no scenario ran both default and fixed)",
            f"run reports: {out_dir / nightly.RUN_REPORTS}/" if reports else "run reports: none (no run completed)"]


def _run_scenarios(store: Store, args: argparse.Namespace, targets: list[Target]) -> list[NightRun]:
    # Deferred on purpose: perflab.lab.runner brings psycopg and psutil, which --runs never needs.
    from perflab.lab.runner import RunOptions
    from perflab.lab.runner import run as run_lab

    plan: list[tuple[str, str, Target | None]] = []
    for name in args.scenarios or ([] if targets else list(scenarios.SCENARIOS)):
        plan.append((name, "default", None))
        if scenarios.get(name).fix:
            plan.append((name, "fixed", None))
    for tgt in targets:
        plan += [(tgt.name, "default", tgt)] + ([(tgt.name, "fixed", tgt)] if "fixed" in tgt.variants else [])
    runs = []
    for i, (name, variant, target) in enumerate(plan, 1):
        _say(f"[{i}/{len(plan)}] run {name} ({variant}), {args.duration:g} s of k6")
        t = time.perf_counter()
        try:
            result = run_lab(store, RunOptions(scenario=None if target else name, variant=variant,
                                               duration_s=args.duration, live=False), target=target)
            runs.append(NightRun(name, variant, result["run_id"], "complete",
                                 seconds=round(time.perf_counter() - t, 1)))
            _say(f"[{i}/{len(plan)}] {result['run_id']} complete in {time.perf_counter() - t:.0f} s")
        except PerflabError as err:
            # One broken scenario must not cost the night its other runs; the index shows it.
            runs.append(NightRun(name, variant, None, "failed", str(err), round(time.perf_counter() - t, 1)))
            _say(f"[{i}/{len(plan)}] {name} ({variant}) failed: {err}")
    return runs


def _given_runs(store: Store, run_ids: list[str]) -> list[NightRun]:
    missing = [r for r in run_ids if not Run.exists(store, r)]
    if missing:
        raise PerflabError(f"no run {', '.join(missing)} in the store")
    runs = [Run.load(store, r) for r in run_ids]
    # A user's group has no scenario: it is reported under its own id.
    return [NightRun(r.scenario or r.run_id, r.variant or "default", r.run_id,
                     "complete" if r.status == "complete" else "failed",
                     None if r.status == "complete" else "the run is incomplete") for r in runs]
