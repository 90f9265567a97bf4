from __future__ import annotations

import argparse

from perflab import fmt
from perflab.analysis.run import Run
from perflab.analysis.signatures import Diagnosis, diagnose, signatures
from perflab.commands import HELPS
from perflab.commands._common import add_json_flag, open_store, print_json

NAME = "doctor"
HELP = HELPS[NAME]

VERDICT_LABEL = {"present": "PRESENT", "absent": "absent", "insufficient-data": "insufficient data"}


def prepare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", metavar="RUN", help="a lab run id or a group made with `perflab ingest --run`")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    result = diagnose(Run.load(open_store(args, read_only=True), args.run_id))
    if args.json:
        print_json(result)
    else:
        print("\n".join(render(result)))
    return 0


def render(result: Diagnosis) -> list[str]:
    """One block per finding: verdict, key evidence, what was used or missing, the recommendation."""
    sigs = signatures()
    lines = [f"run {result.run_id}"]
    first = result.findings[0].evidence if result.findings else {}
    if "window_start_s" in first:
        lines.append(f"steady window {first['window_start_s']:.1f}–{first['window_end_s']:.1f} s "
                     f"of {first['run_span_s']:.1f} s ({first['window_method']})")
    else:
        lines.append("steady window: none (no k6, resource or /debug/vars samples)")
    for f in result.findings:
        sig = sigs.get(f.signature)
        ev = f.evidence
        lines.append("")
        lines.append(f"{f.signature:<20} {VERDICT_LABEL.get(f.verdict, f.verdict)}")
        if sig is not None:
            lines.append(f"  {sig.summary}")
        keys = [k for k in (sig.key_evidence if sig else ()) if ev.get(k) is not None]
        if keys:
            lines.append("  evidence: " + ", ".join(f"{k} {fmt.evidence_value(k, ev[k])}" for k in keys))
        if ev.get("used"):
            lines.append("  from: " + "; ".join(ev["used"]))
        if f.verdict != "present" and ev.get("missing"):
            lines.append("  missing: " + "; ".join(ev["missing"]))
        for c in ev.get("caveats", []):
            lines.append(f"  caveat: {c}")
        if f.recommendation:
            lines.append(f"  → {f.recommendation}")
    return lines
