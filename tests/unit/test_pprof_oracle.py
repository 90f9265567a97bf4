"""Every protobuf profile of the corpus, every sample type: perflab's numbers are
`go tool pprof`'s numbers (tests/fixtures/pprof/README.md, FILE.oracle/expected.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from perflab.analysis.profiles import profile_info, sample_types, top
from perflab.ingest import ingest_path
from perflab.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pprof"
PROFILES = sorted(
    p.parent.with_name(p.parent.name.removesuffix(".oracle"))
    for p in FIXTURES.rglob("expected.json")
)
CASES = [
    (prof, i, key)
    for prof in PROFILES
    for i, key in enumerate(json.loads((prof.parent / f"{prof.name}.oracle" / "expected.json").read_text())["sample_type_keys"])
]


def _id(prof: Path) -> str:
    return str(prof.relative_to(FIXTURES))


def expected(prof: Path) -> dict[str, Any]:
    return json.loads((prof.parent / f"{prof.name}.oracle" / "expected.json").read_text())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict[Path, int]]:
    store = Store(tmp_path_factory.mktemp("pprof-oracle") / "store.duckdb")
    ids = {prof: ingest_path(store, prof).source_id for prof in PROFILES}
    yield store, ids
    store.close()


def test_the_corpus_is_all_here() -> None:
    # GIVEN the copied fixtures WHEN counted THEN every protobuf profile of the shared corpus is present
    assert len(PROFILES) == 36
    assert len(CASES) == 73
    assert all(expected(p)["format"] == "profile.proto" for p in PROFILES)


@pytest.mark.parametrize(("prof", "idx", "key"), CASES, ids=[f"{_id(p)}[{k or i}]" for p, i, k in CASES])
def test_flat_cum_and_total_equal_go_tool_pprof(corpus: tuple[Store, dict[Path, int]], prof: Path,
                                                idx: int, key: str) -> None:
    store, ids = corpus
    want = expected(prof)
    # WHEN perflab computes top for this sample type (by index: names may repeat or be empty),
    # with the oracle's -nodefraction=0
    got = top(store, ids[prof], sample_type=idx, nodefraction=0)
    # THEN the total and every function's flat and cum are pprof's, exactly
    assert got["total"] == want["totals"][key]
    assert got["sample_type"] == want["sample_types"][idx]["type"]
    assert got["unit"] == want["sample_types"][idx]["unit"]
    rows = {r["name"]: (r["flat"], r["cum"]) for r in got["rows"]}
    assert len(rows) == len(got["rows"])  # one row per function name
    assert rows == {f["name"]: (f["flat"], f["cum"]) for f in want["functions"][key]}
    for r in got["rows"]:
        assert type(r["flat"]) is int and type(r["cum"]) is int
        total = want["totals"][key]
        assert r["flat_pct"] == pytest.approx(100 * r["flat"] / total if total else 0.0)


@pytest.mark.parametrize("prof", PROFILES, ids=_id)
def test_header_facts_equal_go_tool_pprof(corpus: tuple[Store, dict[Path, int]], prof: Path) -> None:
    store, ids = corpus
    want = expected(prof)
    sid = ids[prof]
    info = profile_info(store, sid)
    assert sample_types(store, sid) == want["sample_types"]
    assert info["default_sample_index"] == want["default_sample_index"]
    assert top(store, sid)["sample_type"] == want["default_sample_type"]
    assert {"type": info["period_type"], "unit": info["period_unit"]} == want["period_type"]
    assert info["period"] == want["period"]
    assert info["comments"] == want["comments"]
    assert info["num_samples"] == want["num_samples"]
    # Samples are kept one row each, including those without frames.
    n = store.con.execute("SELECT count(*) FROM pprof_samples WHERE source_id = ?", [sid]).fetchall()[0][0]
    assert n == want["num_samples"]


def test_rows_are_sorted_by_abs_flat_then_name_then_abs_cum(corpus: tuple[Store, dict[Path, int]]) -> None:
    # pprof's FlatNameOrder (internal/graph): |flat| descending, then the printed name, then |cum|
    store, ids = corpus
    rows = top(store, ids[FIXTURES / "public/google-pprof/large.cpu"], nodefraction=0)["rows"]
    keys = [(-abs(r["flat"]), r["name"], -abs(r["cum"])) for r in rows]
    assert keys == sorted(keys)
    assert len(rows) == len(expected(FIXTURES / "public/google-pprof/large.cpu")["functions"]["cpu"])
