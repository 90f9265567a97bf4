"""perflab.analysis.profile_diff: absolute changes, as ``go tool pprof -diff_base`` shows them.

GIVEN two CPU profiles built here (profile.proto, perflab's own message classes) where
bcrypt costs 4× less per second in B (B is twice as long), WHEN they are diffed, THEN
bcrypt's change is −0.6 CPU seconds per second exactly, every other function's is 0, and
the raw changes equal ``go tool pprof -top -diff_base=A B`` (the committed oracle in
tests/fixtures/profile_diff/, made from these same profiles: see its cmd.txt).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from perflab.analysis.profile_diff import PER_PROFILE, PER_REQUEST, PER_SECOND, diff_basis, profile_diff
from perflab.ingest import ingest_path
from perflab.ingest.pprof_proto import Profile
from perflab.report.charts import diff_flame_graph
from perflab.store import Store

ORACLE = Path(__file__).resolve().parent.parent / "fixtures" / "profile_diff"
PERIOD = 10_000_000  # 100 Hz, in nanoseconds
# Stacks root first, and their sample counts in A (10 s) and B (20 s). Per second, only
# bcrypt changes: 80 → 20 samples/s. render recurses.
STACKS = {
    "main;serve;login;bcrypt": (800, 400),
    "main;serve;login": (30, 60),
    "main;serve;render;json_encode": (100, 200),
    "main;serve;render": (20, 40),
    "main;gc": (50, 100),
    "main;serve;render;render;json_encode": (10, 20),
}
DURATION_S = (10, 20)


def build(side: int) -> bytes:
    """Profile A (side 0) or B (1), gzipped, byte for byte the same on every call."""
    prof = Profile()
    table = {"": 0}  # string → its index in the string table, in order of first use

    def s(text: str) -> int:
        return table.setdefault(text, len(table))

    prof.sample_type.add(type=s("samples"), unit=s("count"))
    prof.sample_type.add(type=s("cpu"), unit=s("nanoseconds"))
    prof.period_type.type, prof.period_type.unit, prof.period = s("cpu"), s("nanoseconds"), PERIOD
    prof.duration_nanos = DURATION_S[side] * 1_000_000_000
    prof.time_nanos = 1_780_000_000_000_000_000 + side
    names = sorted({f for stack in STACKS for f in stack.split(";")})
    for i, name in enumerate(names, 1):
        prof.function.add(id=i, name=s(name), system_name=s(name), filename=s("app.go"))
        prof.location.add(id=i, address=0x1000 + i).line.add(function_id=i, line=i)
    for stack, counts in STACKS.items():
        n = counts[side]
        leaf_first = [names.index(f) + 1 for f in reversed(stack.split(";"))]
        prof.sample.add(location_id=leaf_first, value=[n, n * PERIOD])
    prof.string_table.extend(table)
    return gzip.compress(prof.SerializeToString(), mtime=0)


@pytest.fixture
def pair(store: Store, tmp_path: Path) -> tuple[int, int]:
    ids = []
    for side, name in enumerate(("a.pb.gz", "b.pb.gz")):
        (tmp_path / name).write_bytes(build(side))
        ids.append(ingest_path(store, tmp_path / name).source_id)
    return ids[0], ids[1]


def test_four_times_cheaper_is_a_large_negative_change(store: Store, pair: tuple[int, int]) -> None:
    a, b = pair
    df = profile_diff(store, a, b, limit=0)
    rows = {r["name"]: r for r in df.to_dicts()}
    bcrypt = rows["bcrypt"]
    assert df["name"][0] == "bcrypt"  # the largest change comes first
    # 800 samples of 10 ms in 10 s, then 400 in 20 s: 0.8 → 0.2 CPU seconds per second.
    assert bcrypt["flat_a"] == pytest.approx(0.8, rel=1e-12)
    assert bcrypt["flat_b"] == pytest.approx(0.2, rel=1e-12)
    assert bcrypt["flat_delta"] == pytest.approx(-0.6, rel=1e-12)
    assert bcrypt["cum_delta"] == pytest.approx(-0.6, rel=1e-12)
    assert rows["login"]["cum_delta"] == pytest.approx(-0.6, rel=1e-12)  # bcrypt's caller
    for name in ("json_encode", "gc", "render"):
        assert rows[name]["flat_delta"] == pytest.approx(0.0, abs=1e-15), name
    # The share is secondary: 800/1010 of A's samples, 400/820 of B's.
    assert bcrypt["flat_pct_a"] == pytest.approx(100 * 800 / 1010)
    assert bcrypt["flat_pct_delta"] == pytest.approx(100 * (400 / 820 - 800 / 1010))
    assert (bcrypt["raw_flat_a"], bcrypt["raw_flat_b"]) == (8_000_000_000, 4_000_000_000)


def test_normalisation(store: Store, pair: tuple[int, int]) -> None:
    a, b = pair
    per_s = diff_basis(store, a, b)
    assert (per_s.per, per_s.unit) == (PER_SECOND, "seconds")
    assert (per_s.scale_a, per_s.scale_b) == (pytest.approx(1e-9 / 10), pytest.approx(1e-9 / 20))
    # Per request: the per-second cost over the requests served per second.
    per_req = diff_basis(store, a, b, requests_per_s=(50.0, 100.0))
    assert per_req.per == PER_REQUEST
    row = profile_diff(store, a, b, basis=per_req).row(by_predicate=None, index=0, named=True)
    assert row["name"] == "bcrypt"
    assert row["flat_a"] == pytest.approx(0.8 / 50, rel=1e-12)
    assert row["flat_delta"] == pytest.approx(0.2 / 100 - 0.8 / 50, rel=1e-12)
    # A side without a duration: whole-profile totals, said so.
    gen = ORACLE.parent / "pprof" / "generated"
    raw = diff_basis(store, ingest_path(store, gen / "small_falseidle.block.pb.gz").source_id,
                     ingest_path(store, gen / "small_falseidle.mutex.pb.gz").source_id, sample_type="delay")
    assert raw.per == PER_PROFILE and raw.note and "no duration" in raw.note
    assert (raw.scale_a, raw.scale_b) == (1e-9, 1e-9)


def _pprof_top(path: Path) -> dict[str, tuple[int, int]]:
    """name → (flat, cum) from `go tool pprof -top -unit=nanoseconds` output."""
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"\s*(-?\d+)(?:ns)?\s+\S+%\s+\S+%\s+(-?\d+)(?:ns)?\s+\S+%\s+(\S+)$", line)
        if m:
            out[m.group(3)] = (int(m.group(1)), int(m.group(2)))
    return out


def test_raw_changes_equal_pprof_diff_base(store: Store, pair: tuple[int, int]) -> None:
    # The committed profiles are the ones built here.
    assert (ORACLE / "a.pb.gz").read_bytes() == build(0) and (ORACLE / "b.pb.gz").read_bytes() == build(1)
    want = _pprof_top(ORACLE / "top_diff_base.txt")
    assert len(want) == 7
    df = profile_diff(store, *pair, limit=0)
    got = {r["name"]: (r["raw_flat_b"] - r["raw_flat_a"], r["raw_cum_b"] - r["raw_cum_a"]) for r in df.to_dicts()}
    assert {n: v for n, v in got.items() if v != (0, 0)} == {n: v for n, v in want.items() if v != (0, 0)}
    assert got["bcrypt"] == (-4_000_000_000, -4_000_000_000)


def test_diff_flame_graph_shows_the_absolute_change(store: Store, pair: tuple[int, int]) -> None:
    fig = diff_flame_graph(store, *pair, min_share=0)
    t = fig.data[0]
    k = list(t.ids).index("root;main;serve;login;bcrypt")
    assert t.marker.colors[k] == pytest.approx(-0.6, rel=1e-12)
    assert t.customdata[k][2] == "-600 ms/s"
    assert t.marker.colors[list(t.ids).index("root;main;gc")] == pytest.approx(0.0, abs=1e-15)
    assert "seconds per second of profile" in fig.layout.title.text
    assert t.textinfo == "text" and fig.layout.uniformtext.minsize == 10  # as flame_graph's labels


def test_compare_reads_the_profile_diff_per_request(store: Store, tmp_path: Path) -> None:
    # GIVEN two runs, each with k6's requests and one of the profiles above, WHEN compared,
    # THEN the profile rows are CPU seconds per request: per second of profile over k6's rate.
    from perflab.analysis.compare import compare_runs
    from perflab.analysis.loadtest import k6_summary
    from perflab.analysis.run import Run
    from tests.helpers import run_cli
    from tests.unit.test_compare import K6_SMALL, scaled_copy

    for side, run in enumerate(("a", "b")):
        (tmp_path / f"{run}.pb.gz").write_bytes(build(side))
        ingest_path(store, tmp_path / f"{run}.pb.gz", run_id=run)
    k6a = ingest_path(store, K6_SMALL, run_id="a").source_id
    k6b = ingest_path(store, scaled_copy(K6_SMALL, tmp_path / "x2.ndjson", 2.0), run_id="b").source_id
    rates = [k6_summary(store, s)["metrics"]["http_reqs"]["rate"] for s in (k6a, k6b)]
    result = compare_runs(Run.load(store, "a"), Run.load(store, "b"))
    assert (result.profile.unit, result.profile.per) == ("seconds", PER_REQUEST)
    bcrypt = next(r for r in result.profile.rows if r["name"] == "bcrypt")
    assert bcrypt["flat_a"] == pytest.approx(0.8 / rates[0], rel=1e-12)
    assert bcrypt["flat_delta"] == pytest.approx(0.2 / rates[1] - 0.8 / rates[0], rel=1e-12)
    path = store.path
    store.close()
    table = run_cli("compare", "a", "b", store=path)
    assert table.returncode == 0, table.stderr
    assert "CPU profile diff (seconds per request" in table.stdout
    line = next(ln for ln in table.stdout.splitlines() if ln.startswith("bcrypt"))
    assert "/req" in line and " -" in line and "79.21 → 48.78 %" in line, table.stdout
