"""pprof files at the edges of the format: names that are not UTF-8 (read, as pprof
reads them) and protobuf messages that are not profiles (refused as such).
Fixtures and `go tool pprof` oracles: tests/fixtures/pprof/made/README.md."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from perflab.ingest import ingest_path
from perflab.ingest.pprof_detect import profile_shaped
from perflab.store import Store
from tests.fixtures.pprof.made import make
from tests.helpers import assert_refused, run_cli

MADE = Path(__file__).resolve().parent.parent / "fixtures" / "pprof" / "made"
NONUTF8 = MADE / "nonutf8_names.pb"
PERF = MADE / "perf_data_like.pb"
GENERATED = MADE.parent / "generated"
_TOP_ROW = re.compile(rb"^\s*(\d+)ns\s+[\d.]+%\s+[\d.]+%\s+(\d+)ns\s+[\d.]+%\s+(.*)$")


def pprof_rows() -> list[tuple[str, int, int]]:
    """(name, flat, cum) from pprof's -top: its bytes, shown as a UTF-8 terminal shows them."""
    rows = []
    for line in (MADE / "nonutf8_names.pb.top.txt").read_bytes().splitlines():
        m = _TOP_ROW.match(line)
        if m:
            rows.append((m[3].decode("utf-8", "replace"), int(m[1]), int(m[2])))
    return rows


@pytest.mark.parametrize("name", list(make.FILES))
def test_the_fixtures_are_what_make_py_writes(name: str) -> None:
    assert (MADE / name).read_bytes() == make.FILES[name]()


def test_names_that_are_not_utf8_are_read_with_pprofs_numbers(tmp_path: Path) -> None:
    want = pprof_rows()
    # the oracle parsed, with pprof's two rows for two names that differ only in an invalid byte
    assert len(want) == 5 and [r for r in want if r[0] == "main.caf\ufffd"] == [("main.caf\ufffd", 40, 40),
                                                                             ("main.caf\ufffd", 30, 30)]
    result = run_cli("top", str(NONUTF8), "--json", store=tmp_path / "s.duckdb")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["total"] == 150
    assert [(r["name"], r["flat"], r["cum"]) for r in got["rows"]] == want
    # The text view prints the same names, one U+FFFD per invalid sequence.
    text = run_cli("top", str(NONUTF8), store=tmp_path / "s.duckdb")
    assert "main.\ufffd\ufffdok" in text.stdout and "main.x\ufffdy" in text.stdout


def test_names_that_are_not_utf8_are_stored_with_replacement_characters(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as s:
        sid = ingest_path(s, NONUTF8).source_id
        names = s.con.execute(
            "SELECT name, system_name FROM pprof_functions WHERE source_id = ? ORDER BY function_id", [sid]
        ).fetchall()
    assert names == [(n.decode("utf-8", "replace"),) * 2 for n in make.NAMES]


def test_pprof_refuses_the_perf_data_like_message_too() -> None:
    oracle = (MADE / "perf_data_like.pb.pprof-error.txt").read_text()
    assert "unrecognized profile format" in oracle and oracle.rstrip().endswith("rc=2")


def test_top_of_a_protobuf_that_is_not_a_profile(tmp_path: Path) -> None:
    result = run_cli("top", str(PERF), store=tmp_path / "s.duckdb")
    assert_refused(result.returncode, result.stderr, PERF, "not a pprof profile")


def test_real_profiles_have_profile_proto_wire_types() -> None:
    # The check that calls a message foreign must pass every real profile.
    for path in [NONUTF8, *sorted(GENERATED.glob("*.pb.gz"))]:
        data = path.read_bytes()
        assert profile_shaped(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data), path
    assert not profile_shaped(PERF.read_bytes())
    assert not profile_shaped(NONUTF8.read_bytes()[:-3])  # truncated
