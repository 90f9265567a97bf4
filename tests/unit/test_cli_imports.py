"""What a command imports: `perflab --help` loads no verb and no heavy library, and
`perflab top` of a stored profile loads no format reader and no dataframe library (numpy
for a profile with inlined frames) (benchmarks/bench_cli.py
times them; these are the deterministic guards behind those timings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perflab.commands import HELPS, VERBS, load
from tests.helpers import run_cli

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LOGIN_CPU = FIXTURES / "pprof" / "generated" / "small_loginstorm.cpu.pb.gz"
HEAVY = ("duckdb", "numpy", "pandas", "plotly", "polars", "pyarrow", "scipy", "google.protobuf", "psutil")
# main() in a fresh interpreter, then the heavy modules it left in sys.modules (on stderr's last line).
_PROBE = ("import json, sys; from perflab.cli import main\n"
          "try:\n    code = main(sys.argv[1:])\nexcept SystemExit as exc:\n    code = exc.code\n"
          f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)\n"
          "raise SystemExit(code)\n")


def probe(*argv: str, tmp: Path | None = None) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    # A temp dir of its own: another perflab's lease there would make the reaper load psutil.
    env = dict(os.environ, TMPDIR=str(tmp)) if tmp is not None else None
    out = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=120,
                         env=env)
    return out, json.loads(out.stderr.strip().splitlines()[-1])


def test_help_imports_no_verb_and_no_heavy_library() -> None:
    out, heavy = probe("--help")
    assert out.returncode == 0, out.stderr
    assert heavy == []
    # ... and still lists every verb with its help line.
    for verb in VERBS:
        assert verb in out.stdout
    assert "like `go tool pprof -top`" in " ".join(out.stdout.split())


def test_an_unknown_verb_is_refused_without_loading_the_verbs() -> None:
    out, heavy = probe("nosuchverb")
    assert out.returncode == 2 and "invalid choice: 'nosuchverb'" in out.stderr
    assert heavy == []


@pytest.mark.parametrize("verb", list(VERBS))
def test_each_verbs_help_line_is_its_modules(verb: str) -> None:
    assert HELPS[verb] == load(verb).HELP


def test_top_of_a_stored_profile_loads_no_format_reader(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    first = run_cli("top", str(LOGIN_CPU), "--json", store=store)
    assert first.returncode == 0, first.stderr
    out, heavy = probe("--store", str(store), "top", str(LOGIN_CPU), "--json", tmp=tmp_path)
    assert out.returncode == 0, out.stderr
    # No reader of any format (protobuf), no Arrow, polars, pandas, plotly or scipy. A Go
    # profile has inlined frames, whose (inline) labels pprof prints: numpy groups those
    # (perflab.analysis.pprof_view._inline_labels), loaded only then (perflab.lazy).
    assert heavy == ["duckdb", "numpy"]
    assert json.loads(out.stdout) == json.loads(first.stdout)
    text, heavy = probe("--store", str(store), "top", str(LOGIN_CPU), tmp=tmp_path)
    assert heavy == ["duckdb", "numpy"] and "Showing nodes accounting for" in text.stdout


def test_top_without_inlined_frames_is_sql_only(tmp_path: Path) -> None:
    # A collapsed-stack file is stored in the same tables, one Line per location.
    folded = tmp_path / "app.collapsed"
    folded.write_text("main;serve;handle 7\nmain;serve;parse 3\nmain;gc 2\n")
    store = tmp_path / "s.duckdb"
    assert run_cli("ingest", str(folded), store=store).returncode == 0
    out, heavy = probe("--store", str(store), "top", str(folded), "--json", tmp=tmp_path)
    assert out.returncode == 0, out.stderr
    assert heavy == ["duckdb"]
    assert {r["name"]: (r["flat"], r["cum"]) for r in json.loads(out.stdout)["rows"]} == {
        "handle": (7, 7), "parse": (3, 3), "gc": (2, 2), "serve": (0, 10), "main": (0, 12)}
