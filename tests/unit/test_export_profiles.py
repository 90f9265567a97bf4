"""`perflab export pprof` and `perflab export speedscope`, checked by the tools that read them.

pprof: GIVEN a stored source (collapsed stacks with and without recursion, a Go CPU profile,
a cProfile dump), WHEN it is exported, THEN the file is the one committed in
tests/fixtures/export/ (same profile.proto after gunzip) and `go tool pprof -top` of it
(the committed oracle; see cmd.txt there; run live too when `go` is on PATH and GOCACHE
set) lists the
flat and cum of `perflab top` of the source, every function. speedscope: the file has the
fields the speedscope schema requires, and perflab's own speedscope reader gives it back
with the same top.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from perflab.analysis.profiles import top
from perflab.ingest import ingest_path
from perflab.store import Store
from tests.helpers import run_cli

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ORACLE = FIXTURES / "export"
SOURCES = {  # oracle name → (fixture, pprof's -unit)
    "perf.collapsed": (FIXTURES / "stacks" / "apquery__perf.collapsed", None),
    "recursion.collapsed": (FIXTURES / "stacks" / "speedscope__stackcollapse_recursion.txt", None),
    "loginstorm.cpu": (FIXTURES / "pprof" / "generated" / "small_loginstorm.cpu.pb.gz", "nanoseconds"),
    "json.prof": (FIXTURES / "cprofile" / "json.prof", "nanoseconds"),
}
TOP_LINE = re.compile(r"\s*(-?\d+)(?:[a-z]+)?\s+\S+%\s+\S+%\s+(-?\d+)(?:[a-z]+)?\s+\S+%\s+(.+)$")


def parse_top(text: str) -> dict[str, tuple[int, int]]:
    """name → (flat, cum) from `go tool pprof -top` with a unit that makes them integers."""
    return {m.group(3): (int(m.group(1)), int(m.group(2)))
            for m in map(TOP_LINE.match, text.splitlines()) if m}


def perflab_top(store: Store, sid: int) -> dict[str, tuple[int, int]]:
    # Every function, as the oracles' -nodefraction=0 -nodecount=100000 print them.
    result = top(store, sid, nodefraction=0, nodecount=0)
    rows = result["rows"]
    if result["format"] == "cprofile":  # seconds; the export writes whole nanoseconds
        return {r["name"]: (round(r["flat"] * 1e9), round(r["flat"] * 1e9)) for r in rows}
    return {r["name"]: (r["flat"], r["cum"]) for r in rows}


def export(fmt: str, name: str, tmp_path: Path, suffix: str) -> Path:
    """`perflab export FMT FIXTURE -o FILE` into a new store (the source is its number 1)."""
    out = tmp_path / f"{name}{suffix}"
    result = run_cli("export", fmt, str(SOURCES[name][0]), "-o", str(out), store=tmp_path / "s.duckdb")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{out}: {fmt} of source 1 (")
    return out


@pytest.mark.parametrize("name", list(SOURCES))
def test_pprof_export_reads_in_go_tool_pprof_as_perflab_top(name: str, tmp_path: Path) -> None:
    unit = SOURCES[name][1]
    out = export("pprof", name, tmp_path, ".pb.gz")
    assert gzip.decompress(out.read_bytes()) == gzip.decompress((ORACLE / f"{name}.pb.gz").read_bytes())
    want = parse_top((ORACLE / f"{name}.top.txt").read_text())
    with Store(tmp_path / "s.duckdb", read_only=True) as store:
        got = perflab_top(store, 1)
    if name == "json.prof":
        # cProfile keeps no stacks: each function is one frame of its own time, so cum = flat.
        assert all(f == c for f, c in want.values())
    assert got == want
    assert len(want) >= 3
    go = shutil.which("go")
    # The live check, where Go is installed with a warm build cache (a cold one builds pprof
    # for a minute); the committed oracle stands in everywhere else.
    if go and os.environ.get("GOCACHE"):
        env = {**os.environ, "GOFLAGS": ""}
        args = [go, "tool", "pprof", "-top", "-nodecount=100000", "-nodefraction=0", "-edgefraction=0",
                "-symbolize=none", *([f"-unit={unit}"] if unit else []), str(out)]
        live = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
        assert live.returncode == 0, live.stderr
        assert parse_top(live.stdout) == want


REQUIRED = {  # speedscope's file-format-schema.json: required fields
    "file": {"$schema", "shared", "profiles"},
    "sampled": {"type", "name", "unit", "startValue", "endValue", "samples", "weights"},
}


@pytest.mark.parametrize("name", list(SOURCES))
def test_speedscope_export_reads_back_with_the_same_top(name: str, tmp_path: Path) -> None:
    out = export("speedscope", name, tmp_path, ".speedscope.json")
    doc = json.loads(out.read_text())
    assert REQUIRED["file"] <= set(doc) and doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frames = doc["shared"]["frames"]
    assert all(set(f) == {"name"} and isinstance(f["name"], str) for f in frames)
    (prof,) = doc["profiles"]
    assert REQUIRED["sampled"] <= set(prof) and prof["type"] == "sampled"
    assert prof["unit"] in ("none", "nanoseconds", "microseconds", "milliseconds", "seconds", "bytes")
    assert len(prof["samples"]) == len(prof["weights"]) > 0
    assert all(0 <= i < len(frames) for s in prof["samples"] for i in s)
    assert prof["endValue"] - prof["startValue"] == sum(prof["weights"])
    with Store(tmp_path / "s.duckdb") as store:
        want = perflab_top(store, 1)
        again = ingest_path(store, out)
        assert again.kind == "speedscope"
        got = {r["name"]: (r["flat"], r["cum"]) for r in top(store, again.source_id, nodefraction=0, nodecount=0)["rows"]}
    if name == "json.prof":
        assert got == {n: (f, f) for n, (f, _) in want.items() if f}
    else:
        assert got == want


def test_speedscope_export_of_another_sample_type_and_refusals(tmp_path: Path) -> None:
    heap = FIXTURES / "pprof" / "generated" / "small_loginstorm.heap.pb.gz"
    out = tmp_path / "heap.json"
    assert run_cli("export", "speedscope", str(heap), "--sample-type", "alloc_space", "-o", str(out),
                   store=tmp_path / "s.duckdb").returncode == 0
    assert json.loads(out.read_text())["profiles"][0]["unit"] == "bytes"
    bad = run_cli("export", "speedscope", "1", "--sample-type", "nope", store=tmp_path / "s.duckdb")
    assert bad.returncode == 2 and "has no sample type 'nope'" in bad.stderr and len(bad.stderr.splitlines()) == 1
    delta = FIXTURES / "pprof" / "public" / "parca" / "alloc_space_delta.pb.gz"
    neg = run_cli("export", "speedscope", str(delta), store=tmp_path / "s.duckdb")
    assert neg.returncode == 2 and "negative" in neg.stderr
