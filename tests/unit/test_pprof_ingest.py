"""pprof ingest: what lands in the tables, detection, refusals, and `perflab top`."""

from __future__ import annotations

import cProfile
import gzip
import json
import pstats
import random
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from perflab.analysis.profiles import profile_info, stacks, top, top_frame
from perflab.errors import InputError, PerflabError
from perflab.ingest import Sniff, ingest_path
from perflab.ingest import pprof as pprof_format
from perflab.ingest.pprof_proto import Profile
from perflab.store import Store
from tests.helpers import assert_ingest_refused, assert_refused, run_cli, store_fingerprint
from tests.helpers import via_files

# The analyses read the store only; these tests hand them fixture files, ingested first.
top = via_files(top)
top_frame = via_files(top_frame)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pprof"
GOOGLE = FIXTURES / "public" / "google-pprof"
SAMPLE_CPU = GOOGLE / "sample.cpu"
LOGIN_CPU = FIXTURES / "generated" / "small_loginstorm.cpu.pb.gz"
LOGIN_HEAP = FIXTURES / "generated" / "small_loginstorm.heap.pb.gz"
PERF_DATA_LIKE = FIXTURES / "made" / "perf_data_like.pb"
GOROUTINE = FIXTURES / "generated" / "small_falseidle.goroutine.pb.gz"
# The legacy (non-protobuf) files are the ones kept without an oracle (see the fixtures' README).
LEGACY = sorted(p for p in GOOGLE.iterdir() if p.is_file() and not p.with_name(f"{p.name}.oracle").exists())
PPROF_TABLES = ("pprof_profiles", "pprof_sample_types", "pprof_mappings", "pprof_functions", "pprof_locations",
                "pprof_lines", "pprof_nodes", "pprof_stacks", "pprof_samples", "pprof_labels")


def expected(prof: Path) -> dict[str, Any]:
    return json.loads((prof.parent / f"{prof.name}.oracle" / "expected.json").read_text())


def decode(path: Path) -> Any:
    """The profile as the plain message classes decode it: the independent reading."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return Profile.FromString(data)


def write(path: Path, prof: Any, gz: bool = True) -> Path:
    data = prof.SerializeToString()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# -- what is stored ----------------------------------------------------------------------
def test_every_table_row_carries_source_and_run(store: Store) -> None:
    sid = ingest_path(store, LOGIN_HEAP, run_id="run-7").source_id
    for table in PPROF_TABLES:
        rows = store.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE source_id = ? AND run_id = 'run-7') FROM {table}", [sid]
        ).fetchall()[0]
        assert rows[0] > 0 and rows[0] == rows[1], table


def test_mappings_functions_locations_and_lines_are_the_files(store: Store) -> None:
    sid = ingest_path(store, SAMPLE_CPU).source_id
    prof = decode(SAMPLE_CPU)
    st = list(prof.string_table)
    mappings = store.sql("SELECT * FROM pprof_mappings WHERE source_id = ? ORDER BY mapping_id", [sid]).to_dicts()
    assert [(m["mapping_id"], m["filename"], m["build_id"], m["memory_start"], m["has_functions"])
            for m in mappings] == [(m.id, st[m.filename], st[m.build_id], m.memory_start, m.has_functions)
                                   for m in sorted(prof.mapping, key=lambda m: m.id)]
    functions = store.sql("SELECT function_id, name, system_name, filename, start_line FROM pprof_functions "
                          "WHERE source_id = ?", [sid]).rows()
    assert sorted(functions) == sorted((f.id, st[f.name], st[f.system_name], st[f.filename], f.start_line)
                                       for f in prof.function)
    lines = store.sql('SELECT location_id, line_idx, function_id, line, "column" FROM pprof_lines '
                      "WHERE source_id = ?", [sid]).rows()
    assert sorted(lines) == sorted((loc.id, i, ln.function_id, ln.line, ln.column)
                                   for loc in prof.location for i, ln in enumerate(loc.line))
    # sample.cpu has inlined calls: locations with several Line entries.
    multi = store.con.execute("SELECT count(DISTINCT location_id) FROM pprof_lines WHERE source_id = ? "
                              "AND line_idx > 0", [sid]).fetchall()[0][0]
    assert multi == sum(1 for loc in prof.location if len(loc.line) > 1) > 0
    info = profile_info(store, sid)
    assert (info["time_nanos"], info["duration_nanos"]) == (prof.time_nanos, prof.duration_nanos)


def test_unsymbolized_locations_keep_mapping_and_address(store: Store) -> None:
    path = GOOGLE / "cppbench.cpu_no_samples_type"
    sid = ingest_path(store, path).source_id
    prof = decode(path)
    locs = store.sql("SELECT location_id, mapping_id, address FROM pprof_locations WHERE source_id = ?", [sid]).rows()
    assert sorted(locs) == sorted((loc.id, loc.mapping_id or None, loc.address) for loc in prof.location)
    info = profile_info(store, sid)
    assert info["drop_frames"] == prof.string_table[prof.drop_frames] != ""
    assert store.con.execute("SELECT count(*) FROM pprof_mappings WHERE source_id = ?", [sid]).fetchall()[0][0] == 12


def test_string_and_numeric_labels(store: Store) -> None:
    for path in (LOGIN_CPU, LOGIN_HEAP):
        sid = ingest_path(store, path).source_id
        prof = decode(path)
        st = list(prof.string_table)
        want = Counter(
            (i, st[lb.key], st[lb.str] if lb.str else None, None if lb.str else lb.num,
             st[lb.num_unit] if lb.num_unit else None)
            for i, s in enumerate(prof.sample) for lb in s.label
        )
        got = Counter(store.sql("SELECT sample_idx, key, str, num, num_unit FROM pprof_labels WHERE source_id = ?",
                                [sid]).rows())
        assert got == want and sum(want.values()) > 0
    keys = {r[0] for r in store.con.execute("SELECT DISTINCT key FROM pprof_labels").fetchall()}
    assert {"handler", "tenant", "bytes"} <= keys


def test_samples_keep_values_and_stacks_leaf_first(store: Store) -> None:
    sid = ingest_path(store, GOROUTINE).source_id
    prof = decode(GOROUTINE)
    rows = store.sql(
        "SELECT s.sample_idx, s.value, t.location_ids FROM pprof_samples s JOIN pprof_stacks t "
        "ON t.source_id = s.source_id AND t.stack_id = s.stack_id WHERE s.source_id = ? ORDER BY sample_idx", [sid]
    ).rows()
    assert [(list(v), list(locs)) for _, v, locs in rows] == [
        (list(s.value), list(s.location_id)) for s in prof.sample
    ]


def test_frameless_samples_count_in_the_total_only(store: Store, tmp_path: Path) -> None:
    # GIVEN a profile where one sample lost its frames (the corpus README expects one
    # in the goroutine profile, but its file has none, so one is made here)
    prof = decode(SAMPLE_CPU)
    del prof.sample[0].location_id[:]
    lost = prof.sample[0].value[1]
    sid = ingest_path(store, write(tmp_path / "frameless.pb.gz", prof)).source_id
    # THEN the total keeps it, no function gets it, and its row and empty stack are kept
    result = top(store, sid)
    want = expected(SAMPLE_CPU)
    assert result["total"] == want["totals"]["cpu"]
    assert sum(r["flat"] for r in result["rows"]) == want["totals"]["cpu"] - lost
    locs = store.con.execute("SELECT t.location_ids FROM pprof_samples s JOIN pprof_stacks t USING (source_id, stack_id) "
                             "WHERE s.source_id = ? AND s.sample_idx = 0", [sid]).fetchall()
    assert locs == [([],)]
    assert stacks(store, sid).filter(pl.col("frames").list.len() == 0)["value"].to_list() == [lost]


@pytest.mark.parametrize("path", [SAMPLE_CPU, LOGIN_HEAP, FIXTURES / "public/parca/alloc_space_delta.pb.gz",
                                  GOROUTINE, FIXTURES / "public/parca/symbolizer_profile.pb.gz"],
                         ids=lambda p: p.name)
def test_stacks_rebuild_flat_and_cum(store: Store, path: Path) -> None:
    # GIVEN the flame-graph stacks WHEN flat/cum are recomputed from them in Python
    # THEN they are pprof's (so the stacks are complete and leaf first)
    sid = ingest_path(store, path).source_id
    want = expected(path)
    for idx, key in enumerate(want["sample_type_keys"]):
        df = stacks(store, sid, idx)
        assert df.columns == ["frames", "value"]
        assert df["frames"].to_list() and len(set(map(tuple, df["frames"].to_list()))) == df.height
        flat: Counter[str] = Counter()
        cum: Counter[str] = Counter()
        for frames, value in df.iter_rows():
            if frames:
                flat[frames[0]] += value
            for name in set(frames):
                cum[name] += value
        assert sum(df["value"]) == want["value_sums"][key]
        rebuilt = {n: (flat[n], cum[n]) for n in cum if flat[n] or cum[n]}
        assert rebuilt == {f["name"]: (f["flat"], f["cum"]) for f in want["functions"][key]}


def test_top_frame_has_the_rows_of_top(store: Store) -> None:
    df = top_frame(store, str(LOGIN_HEAP), "alloc_space")
    want = expected(LOGIN_HEAP)["functions"]["alloc_space"]
    assert df.columns == ["name", "flat", "cum", "flat_pct", "cum_pct"]
    assert dict(zip(df["name"], zip(df["flat"], df["cum"]))) == {f["name"]: (f["flat"], f["cum"]) for f in want}


def test_sample_type_by_name_index_inuse_alias_and_unknown(store: Store) -> None:
    sid = ingest_path(store, LOGIN_HEAP).source_id
    assert top(store, sid, "alloc_space")["total"] == expected(LOGIN_HEAP)["totals"]["alloc_space"]
    assert top(store, sid, 2)["sample_type"] == "inuse_objects"
    assert top(store, str(sid), "1", limit=3)["sample_type"] == "alloc_space"
    assert len(top(store, sid, limit=3)["rows"]) == 3
    legacy_names = ingest_path(store, GOOGLE / "converted" / "cppbench.heap.pb.gz").source_id
    assert top(store, legacy_names, "inuse_space")["sample_type"] == "space"  # pprof's inuse_ alias
    with pytest.raises(PerflabError, match="no sample type 'cpu'; it has: alloc_objects, alloc_space, inuse_objects, inuse_space"):
        top(store, sid, "cpu")
    with pytest.raises(PerflabError, match="outside 0..3"):
        top(store, sid, 4)


def test_top_dispatches_cprofile_dumps(store: Store, tmp_path: Path) -> None:
    prof = cProfile.Profile()
    prof.enable()
    sorted(random.Random(3).random() for _ in range(20000))
    prof.disable()
    dump = tmp_path / "run.pstats"
    prof.dump_stats(str(dump))
    result = top(store, dump)
    oracle = pstats.Stats(str(dump))
    assert (result["format"], result["sample_type"], result["unit"]) == ("cprofile", "cpu", "seconds")
    assert result["total"] == pytest.approx(oracle.total_tt)
    assert set(result["rows"][0]) == {"name", "flat", "cum", "flat_pct", "cum_pct", "calls", "primitive_calls"}
    by_calls = {r["calls"] for r in result["rows"]}
    assert 20000 in by_calls or 20001 in by_calls  # the random() calls


# -- detection ----------------------------------------------------------------------------
def _sniff(data: bytes, name: str = "x") -> Sniff:
    return Sniff(path=Path(name), head=data[: 64 * 1024], gzipped=False)


def test_thirteen_legacy_files() -> None:
    assert len(LEGACY) == 13


def test_detects_profiles_gzipped_and_raw() -> None:
    assert pprof_format.detect(_sniff((GOOGLE / "converted" / "go.nomappings.crash.pb").read_bytes()))
    big = gzip.decompress((GOOGLE / "large.cpu").read_bytes())  # the head is a truncated prefix
    assert pprof_format.detect(_sniff(big))


def test_does_not_claim_other_formats(tmp_path: Path) -> None:
    prof = cProfile.Profile()
    prof.enable()
    sum(range(100))
    prof.disable()
    prof.dump_stats(str(tmp_path / "p.pstats"))
    others = [
        (tmp_path / "p.pstats").read_bytes(),
        b'{"type":"Metric","data":{"name":"http_reqs","type":"counter"},"metric":"http_reqs"}\n' * 50,
        b"metric_name,timestamp,metric_value,check,error,error_code\nhttp_reqs,1700000000,1,,,\n" * 50,
        b'{"metrics": {"http_req_duration": {"avg": 1.5}}}',
        b"userid,dbid,queryid,query,calls,total_exec_time\n10,5,123,select 1,4,0.5\n",
        b"pid,usename,state\n1,postgres,active\n",
        random.Random(1).randbytes(4096),
    ]
    for data in others:
        assert not pprof_format.detect(_sniff(data)), data[:40]


@pytest.mark.parametrize("path", LEGACY, ids=lambda p: p.name)
def test_legacy_formats_are_refused_with_a_pointer(store: Store, path: Path) -> None:
    assert pprof_format.detect(_sniff(path.read_bytes()))
    with pytest.raises(InputError, match="legacy pprof format; convert it with `go tool pprof -proto`"):
        ingest_path(store, path)


def test_int64_min_values_take_the_exact_path(store: Store, tmp_path: Path) -> None:
    # GIVEN a sample whose value equals the separator value THEN it is still read exactly
    prof = decode(SAMPLE_CPU)
    prof.sample[3].value[1] = -(1 << 63)
    sid = ingest_path(store, write(tmp_path / "min.pb.gz", prof)).source_id
    got = store.sql("SELECT value FROM pprof_samples WHERE source_id = ? ORDER BY sample_idx", [sid])
    assert got["value"].to_list() == [list(s.value) for s in prof.sample]


# -- bad input: exit 2, one line naming the file, the store unchanged ---------------------------
def _mutate(tmp_path: Path, name: str, change: Any, gz: bool = True) -> Path:
    prof = decode(SAMPLE_CPU)
    change(prof)
    return write(tmp_path / name, prof, gz)


def _truncated_gz(tmp_path: Path) -> Path:
    path = tmp_path / "truncated.pb.gz"
    path.write_bytes(SAMPLE_CPU.read_bytes()[: SAMPLE_CPU.stat().st_size // 2])
    return path


def _truncated_raw(tmp_path: Path) -> Path:
    good = gzip.decompress(SAMPLE_CPU.read_bytes())
    path = tmp_path / "truncated.pb"
    path.write_bytes(good[: len(good) - 7])
    return path


def _gzipped(source: Path) -> Any:
    def make(tmp_path: Path) -> Path:
        path = tmp_path / f"{source.name}.gz"
        path.write_bytes(gzip.compress(source.read_bytes()))
        return path
    return make


def _random(tmp_path: Path) -> Path:
    path = tmp_path / "random.pb.gz"
    path.write_bytes(random.Random(11).randbytes(3000))
    return path


def _set(attr_path: str, value: Any) -> Any:
    """A mutation: ``location.6.line.0.function_id`` = value (indices into repeated fields)."""
    def change(prof: Any) -> None:
        *parents, last = attr_path.split(".")
        obj = prof
        for part in parents:
            obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
        if last.isdigit():
            obj[int(last)] = value
        else:
            setattr(obj, last, value)
    return change


def _mutated(change: Any, gz: bool = True) -> Any:
    return lambda tmp_path: _mutate(tmp_path, "bad.pb.gz" if gz else "bad.pb", change, gz)


_LOC7 = decode(SAMPLE_CPU).location[6].id
# name: (make the file, what the one line must say, extra CLI arguments)
BAD_CASES: dict[str, tuple[Any, str, tuple[str, ...]]] = {
    "truncated gzip": (_truncated_gz, "truncated gzip file", ()),
    "truncated protobuf": (_truncated_raw, "not a valid profile.proto message", ()),
    "random bytes": (_random, "not a format perflab reads", ()),
    "random bytes as pprof": (_random, "not a valid profile.proto message", ("--kind", "pprof")),
    "missing function": (_mutated(_set("location.6.line.0.function_id", 99)),
                         f"location {_LOC7} refers to function 99, which does not exist", ()),
    "missing location": (_mutated(_set("sample.5.location_id.1", 4242)),
                         "sample 5 refers to location 4242, which does not exist", ()),
    "location id 0": (_mutated(_set("sample.5.location_id.1", 0)),
                      "sample 5 refers to location 0, which does not exist", ()),
    "string index out of range": (_mutated(_set("function.2.name", 10**6)),
                                  "function 3 name refers to string 1000000, beyond the string table (", ()),
    "negative string index": (_mutated(_set("sample_type.1.unit", -3)),
                              "sample type 1 unit refers to string -3, beyond the string table", ()),
    "missing mapping (raw)": (_mutated(_set("location.0.mapping_id", 77), gz=False),
                              "location 1 refers to mapping 77, which does not exist", ()),
    "wrong value count": (_mutated(lambda p: p.sample[9].value.append(5)),
                          "sample 9 has 3 values, but the profile has 2 sample types", ()),
    "duplicate location id": (_mutated(_set("location.1.id", 1)), "location id 1 is used more than once", ()),
    "label key out of range": (_mutated(lambda p: p.sample[2].label.add(key=-1, str=1)),
                               "sample 2 label key refers to string -1", ()),
    "first string not empty": (_mutated(_set("string_table.0", "x")),
                               "string table entry 0 must be the empty string", ()),
    "legacy text heap": (lambda tmp_path: GOOGLE / "gobench.heap",
                         "legacy pprof format; convert it with `go tool pprof -proto`", ()),
    "legacy binary cpu": (lambda tmp_path: GOOGLE / "java.cpu",
                          "legacy pprof format; convert it with `go tool pprof -proto`", ()),
    # A protobuf message of another kind (tests/fixtures/pprof/made/README.md).
    "not a profile": (lambda tmp_path: PERF_DATA_LIKE, "not a pprof profile (a protobuf message of another kind)", ()),
    "not a profile, gzipped, as pprof": (_gzipped(PERF_DATA_LIKE), "not a pprof profile", ("--kind", "pprof")),
}


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, Any]:
    store_path = tmp_path / "s.duckdb"
    with Store(store_path) as s:
        ingest_path(s, LOGIN_CPU)
        return store_path, store_fingerprint(s)


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_profile_exits_2_with_one_line_and_leaves_the_store_unchanged(
    case: str, tmp_path: Path, seeded: tuple[Path, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    make, phrase, extra = BAD_CASES[case]
    store_path, before = seeded
    assert_ingest_refused(store_path, before, make(tmp_path), phrase, extra, capsys)


def test_bad_profiles_as_a_user_runs_them(tmp_path: Path, seeded: tuple[Path, Any]) -> None:
    store_path, before = seeded
    for case, verb in (("missing function", "ingest"), ("truncated gzip", "top"), ("legacy text heap", "top")):
        make, phrase, _ = BAD_CASES[case]
        path = make(tmp_path)
        result = run_cli(verb, str(path), store=store_path)
        assert_refused(result.returncode, result.stderr, path, phrase)
        assert "Traceback" not in result.stderr
    with Store(store_path) as s:
        assert store_fingerprint(s) == before


def test_the_mutation_helpers_break_only_what_they_say(tmp_path: Path) -> None:
    # The unmutated re-serialisation is a valid profile with pprof's numbers (so each bad
    # case above fails for its own mutation, not for the rewrite).
    with Store(tmp_path / "s.duckdb") as s:
        path = _mutate(tmp_path, "same.pb.gz", lambda p: None)
        assert top(s, path)["total"] == expected(SAMPLE_CPU)["totals"]["cpu"]


# -- the CLI ------------------------------------------------------------------------------
def test_cli_json_shape_and_values(tmp_path: Path) -> None:
    store_path = tmp_path / "s.duckdb"
    result = run_cli("top", str(LOGIN_HEAP), "--sample-type", "alloc_space", "--limit", "5", "--json",
                     store=store_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    want = expected(LOGIN_HEAP)
    assert set(out) == {"source_id", "format", "sample_type", "unit", "mean", "total", "rows", "dropped_nodes",
                        "node_cutoff", "nodes_before_nodecount", "filters", "granularity", "source_ids"}
    assert (out["format"], out["sample_type"], out["unit"]) == ("pprof", "alloc_space", "bytes")
    assert out["total"] == want["totals"]["alloc_space"]
    assert len(out["rows"]) == 5
    by_name = {f["name"]: (f["flat"], f["cum"]) for f in want["functions"]["alloc_space"]}
    # pprof's order: |flat| descending, then name, then |cum|
    top5 = sorted(by_name.items(), key=lambda kv: (-abs(kv[1][0]), kv[0], -abs(kv[1][1])))[:5]
    assert [(r["name"], (r["flat"], r["cum"])) for r in out["rows"]] == top5
    assert all(set(r) == {"name", "flat", "cum", "flat_pct", "cum_pct", "inline"} for r in out["rows"])
    # the same source by id, every row (the oracle's -nodefraction=0), default sample type
    result = run_cli("top", str(out["source_id"]), "--limit", "0", "--nodefraction", "0", "--json",
                     store=store_path)
    out = json.loads(result.stdout)
    assert out["sample_type"] == want["default_sample_type"]
    assert len(out["rows"]) == len(want["functions"][want["default_sample_type"]])


def test_cli_table_reads_like_go_tool_pprof_top(tmp_path: Path) -> None:
    # `TZ=UTC go tool pprof -top -nodecount=3 -symbolize=none sample.cpu` (Go 1.27), line for line
    result = run_cli("top", str(SAMPLE_CPU), "--limit", "3", store=tmp_path / "s.duckdb")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "File: sample.bin",
        "Type: cpu",
        "Time: 2017-09-29 20:57:59 UTC",
        "Duration: 2s, Total samples = 1760ms (87.91%)",
        "Showing nodes accounting for 1540ms, 87.50% of 1760ms total",
        "Showing top 3 nodes out of 14",
        "      flat  flat%   sum%        cum   cum%",
        "    1280ms 72.73% 72.73%     1370ms 77.84%  runtime.mapiternext",
        "     150ms  8.52% 81.25%     1760ms   100%  main.busyLoop",
        "     110ms  6.25% 87.50%      110ms  6.25%  math.Abs (inline)",
    ]


def test_cli_unknown_sample_type_lists_the_types(tmp_path: Path) -> None:
    result = run_cli("top", str(LOGIN_CPU), "--sample-type", "alloc_space", store=tmp_path / "s.duckdb")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "perflab: source 1 has no sample type 'alloc_space'; it has: samples, cpu"
    ]


# -- deep, recursive, inlined stacks: the benchmark's generator against a plain reading -----
def _python_top(prof: Any, idx: int) -> tuple[int, dict[str, tuple[int, int]]]:
    """pprof's rules (fixtures/pprof/README.md) applied sample by sample in plain Python."""
    st = list(prof.string_table)
    fn = {f.id: st[f.name] for f in prof.function}
    objfile = {m.id: st[m.filename].rstrip("/").rsplit("/", 1)[-1] for m in prof.mapping}

    def name(fname: str, loc: Any) -> str:
        return fname or (f"[{objfile[loc.mapping_id]}]" if objfile.get(loc.mapping_id) else "<unknown>")

    frames_of = {loc.id: [name(fn.get(ln.function_id, ""), loc) for ln in loc.line] or [name("", loc)]
                 for loc in prof.location}
    flat: Counter[str] = Counter()
    cum: Counter[str] = Counter()
    total = 0
    for s in prof.sample:
        v = s.value[idx]
        total += abs(v)
        frames = [f for lid in s.location_id for f in frames_of[lid]]
        if frames:
            flat[frames[0]] += v
        for f in set(frames):
            cum[f] += v
    return total, {n: (flat[n], cum[n]) for n in cum if flat[n] or cum[n]}


def test_generated_deep_profile_matches_a_plain_reading(store: Store, tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_pprof", Path(__file__).resolve().parents[2] / "benchmarks" / "bench_pprof.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    path = tmp_path / "deep.pb.gz"
    bench.generate(path, 3000)
    prof = decode(path)
    depths = [len(s.location_id) for s in prof.sample]
    assert len(depths) == 3000 and min(depths) >= 20 and max(depths) <= 60
    sid = ingest_path(store, path).source_id
    recursive = store.con.execute("SELECT count(*) FILTER (WHERE recursive), count(*) FROM pprof_stacks "
                                  "WHERE source_id = ?", [sid]).fetchall()[0]
    assert 0 < recursive[0] < recursive[1]  # both kinds of stack are exercised
    for idx in (0, 1):
        total, rows = _python_top(prof, idx)
        got = top(store, sid, idx, nodefraction=0)
        assert got["total"] == total
        assert {r["name"]: (r["flat"], r["cum"]) for r in got["rows"]} == rows


@pytest.mark.parametrize("path", [LOGIN_CPU, GOROUTINE, FIXTURES / "public/parca/alloc_space_delta.pb.gz"],
                         ids=lambda p: p.name)
def test_samples_decoded_in_chunks_are_stored_as_in_one_piece(tmp_path: Path, path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a profile ingested whole, and again 7 samples at a time (big profiles go in chunks)
    def tables(chunk: int) -> dict[str, list[Any]]:
        monkeypatch.setattr(pprof_format, "_SAMPLE_CHUNK", chunk)
        with Store(tmp_path / f"{chunk}.duckdb") as store:
            sid = ingest_path(store, path).source_id
            order = {"pprof_samples": "sample_idx", "pprof_stacks": "stack_id",
                     "pprof_labels": "sample_idx, key, str, num"}
            return {t: store.con.execute(f"SELECT * EXCLUDE (source_id, run_id) FROM {t} WHERE source_id = ? "
                                         f"ORDER BY {o}", [sid]).fetchall() for t, o in order.items()}

    whole, chunked = tables(1 << 20), tables(7)
    # THEN every sample, stack (numbered by first appearance across chunks) and label is the same
    assert len(whole["pprof_samples"]) > 7 * 3 and len(whole["pprof_stacks"]) > 7
    assert chunked == whole
    # AND the stacks are numbered by the first sample that has them
    firsts = [next(i for i, s, _ in whole["pprof_samples"] if s == k) for k, *_ in whole["pprof_stacks"]]
    assert firsts == sorted(firsts)
