"""cProfile ingest against Python's own pstats: every function, every edge, every total.

The fixtures are real cProfile dumps (tests/fixtures/cprofile/SOURCES.md); further
dumps are made while the tests run, so the ingester also meets files it never saw.
"""

from __future__ import annotations

import cProfile
import gzip
import io
import json
import marshal
import pstats
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pyprof2calltree import CalltreeConverter

from perflab.analysis import pstats as ap
from perflab.ingest import Sniff, detect, ingest_path
from perflab.ingest.cprofile import detect as detect_cprofile
from perflab.store import Store
from tests.conftest import FIXTURES
from tests.helpers import run_cli, store_fingerprint

DIR = FIXTURES / "cprofile"
PROFILES = sorted(DIR.glob("*.prof"))
CPROFILE_ONLY = [p for p in PROFILES if p.name != "profile_module.prof"]


def _stored_functions(store: Store, sid: int) -> dict[tuple, dict]:
    rows = store.sql("SELECT * FROM cprofile_functions WHERE source_id = ?", [sid]).to_dicts()
    return {(r["file"], r["line"], r["name"]): r for r in rows}


def _stored_edges(store: Store, sid: int) -> dict[tuple, dict]:
    rows = store.sql(
        "SELECT a.file AS af, a.line AS al, a.name AS an, b.file AS bf, b.line AS bl, b.name AS bn, "
        "e.calls, e.primitive_calls, e.tottime, e.cumtime FROM cprofile_edges e "
        "JOIN cprofile_functions a ON a.source_id = e.source_id AND a.func_id = e.caller_id "
        "JOIN cprofile_functions b ON b.source_id = e.source_id AND b.func_id = e.callee_id "
        "WHERE e.source_id = ?",
        [sid],
    ).to_dicts()
    return {((r["af"], r["al"], r["an"]), (r["bf"], r["bl"], r["bn"])): r for r in rows}


def assert_matches_pstats(store: Store, sid: int, oracle: pstats.Stats) -> None:
    """Every number of the source equals pstats' own, exactly (no tolerance)."""
    funcs = _stored_functions(store, sid)
    assert set(funcs) == set(oracle.stats)
    expected_edges = {}
    for key, (cc, nc, tt, ct, callers) in oracle.stats.items():
        row = funcs[key]
        assert row["std_name"] == pstats.func_std_string(key)
        assert (row["calls"], row["primitive_calls"], row["tottime"], row["cumtime"]) == (nc, cc, tt, ct)
        for caller, edge in callers.items():
            expected_edges[(caller, key)] = edge
    edges = _stored_edges(store, sid)
    assert set(edges) == set(expected_edges)
    for pair, edge in expected_edges.items():
        row = edges[pair]
        if isinstance(edge, int):  # the `profile` module
            assert (row["calls"], row["primitive_calls"], row["tottime"]) == (edge, None, None)
        else:
            assert (row["calls"], row["primitive_calls"], row["tottime"], row["cumtime"]) == edge
    tot = ap.totals(store, sid)
    assert tot["total_tt"] == oracle.total_tt
    assert tot["total_calls"] == oracle.total_calls
    assert tot["prim_calls"] == oracle.prim_calls
    assert tot["functions"] == len(oracle.stats)
    assert ap.to_pstats_dict(store, sid) == oracle.stats


@pytest.mark.parametrize("path", PROFILES, ids=[p.name for p in PROFILES])
def test_fixture_equals_pstats(store: Store, path: Path):
    # GIVEN a real dump, WHEN ingested, THEN the store holds exactly what pstats reads
    result = ingest_path(store, path)
    assert result.kind == "cprofile" and result.new
    oracle = pstats.Stats(str(path))
    assert result.stats == {
        "functions": len(oracle.stats),
        "edges": sum(len(v[4]) for v in oracle.stats.values()),
    }
    assert_matches_pstats(store, result.source_id, oracle)


def test_recursion_makes_primitive_calls_differ(store: Store):
    # fib(18) is called 2*F(19)-1 = 8361 times, once from outside itself (make_profiles.py)
    sid = ingest_path(store, DIR / "recursive.prof").source_id
    _, top = ap.cprofile_top(store, sid)
    fib = top.filter(top["name"].str.ends_with("(fib)")).to_dicts()
    assert [(r["calls"], r["primitive_calls"]) for r in fib] == [(8361, 1)]
    by_caller = {r["caller"].rsplit("(", 1)[1]: r for r in ap.callers(store, sid, "fib").to_dicts()}
    # cProfile counts an edge call as primitive when that caller->callee pair is not
    # already active: the outermost fib's two calls fib(17) and fib(16)
    assert (by_caller["fib)"]["calls"], by_caller["fib)"]["primitive_calls"]) == (8360, 2)
    assert (by_caller["recursive_workload)"]["calls"], by_caller["recursive_workload)"]["primitive_calls"]) == (1, 1)


def test_builtin_names_and_tilde_file(store: Store):
    sid = ingest_path(store, DIR / "builtins.prof").source_id
    rows = store.sql(
        "SELECT file, line, name, std_name FROM cprofile_functions "
        "WHERE source_id = ? AND name = '<built-in method builtins.len>'",
        [sid],
    ).to_dicts()
    assert rows == [{"file": "~", "line": 0, "name": "<built-in method builtins.len>",
                     "std_name": "{built-in method builtins.len}"}]
    method = store.sql(
        "SELECT std_name FROM cprofile_functions WHERE source_id = ? AND name = ?",
        [sid, "<method 'append' of 'list' objects>"],
    )["std_name"].to_list()
    assert method == ["{method 'append' of 'list' objects}"]


def test_hashing_profile_is_hot_in_pbkdf2(store: Store):
    sid = ingest_path(store, DIR / "hashing.prof").source_id
    total, top = ap.cprofile_top(store, sid)
    assert top["name"][0] == "{built-in method _hashlib.pbkdf2_hmac}"
    # 16 derivations of 20k iterations: nearly all self time of the profile
    assert top["calls"][0] == 16
    assert top["flat"][0] / total > 0.9


def _dump_at_test_time(tmp_path: Path) -> Path:
    """A workload unlike the fixtures: generators, exceptions, methods, lambdas, recursion."""

    class Node:
        def __init__(self, v, kids=()):
            self.v, self.kids = v, list(kids)

        def total(self):
            return self.v + sum(k.total() for k in self.kids)

    def build(d):
        return Node(d, [build(d - 1) for _ in range(2)]) if d else Node(0)

    def risky(i):
        if i % 3 == 0:
            raise ValueError(i)
        return i

    def work():
        tree = build(7)
        tree.total()
        ok = 0
        for i in range(300):
            try:
                ok += risky(i)
            except ValueError:
                pass
        sorted(range(500), key=lambda x: -x)
        "".join(str(i) for i in range(200))

    prof = cProfile.Profile()
    prof.runcall(work)
    path = tmp_path / "fresh.prof"
    prof.dump_stats(str(path))
    return path


def test_dump_made_at_test_time(store: Store, tmp_path: Path):
    path = _dump_at_test_time(tmp_path)
    sid = ingest_path(store, path).source_id
    assert_matches_pstats(store, sid, pstats.Stats(str(path)))


def test_python_m_cprofile_at_test_time(store: Store, tmp_path: Path):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent("""
        import json, re
        def walk(n):
            return 1 if n == 0 else 1 + walk(n - 1)
        for i in range(50):
            walk(30)
            json.loads(json.dumps({"k": [i] * 20}))
            re.sub(r"a+", "b", "caaat" * 10)
    """))
    out = tmp_path / "script.prof"
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), str(script)], check=True)
    sid = ingest_path(store, out).source_id
    assert_matches_pstats(store, sid, pstats.Stats(str(out)))


def test_gzipped_dump_and_run_id(store: Store, tmp_path: Path):
    raw = DIR / "json.prof"
    gz = tmp_path / "json.prof.gz"
    gz.write_bytes(gzip.compress(raw.read_bytes()))
    result = ingest_path(store, gz, run_id="run-7")
    assert result.kind == "cprofile"
    assert_matches_pstats(store, result.source_id, pstats.Stats(str(raw)))
    for table in ("cprofile_functions", "cprofile_edges"):
        run_ids = store.con.execute(f"SELECT DISTINCT run_id FROM {table}").fetchall()
        assert run_ids == [("run-7",)]


def test_keys_known_only_as_callers_round_trip(store: Store, tmp_path: Path):
    # pstats reads a dict whose callers name a key with no entry of its own; so do we
    stats = {
        ("a.py", 1, "f"): (2, 3, 0.25, 0.5, {("gone.py", 9, "g"): (3, 2, 0.25, 0.5)}),
        ("~", 0, "<built-in method builtins.len>"): (1, 1, 1e-06, 1e-06, {("a.py", 1, "f"): (1, 1, 1e-06, 1e-06)}),
    }
    path = tmp_path / "partial.prof"
    path.write_bytes(marshal.dumps(stats))
    sid = ingest_path(store, path).source_id
    oracle = pstats.Stats(str(path))
    assert ap.to_pstats_dict(store, sid) == oracle.stats == stats
    tot = ap.totals(store, sid)
    assert (tot["total_tt"], tot["total_calls"], tot["prim_calls"]) == (
        oracle.total_tt, oracle.total_calls, oracle.prim_calls)
    assert ap.cprofile_top(store, sid)[1]["name"].to_list() == ["a.py:1(f)", "{built-in method builtins.len}"]
    assert ap.callers(store, sid, "f")["caller"].to_list() == ["gone.py:9(g)"]


# -- top, callers, callees ------------------------------------------------------------

@pytest.mark.parametrize("name", ["json.prof", "cli_script.prof", "merged_stripped.prof"])
def test_top_is_pstats_sorted_by_tottime(store: Store, name: str):
    path = DIR / name
    sid = ingest_path(store, path).source_id
    oracle = pstats.Stats(str(path))
    total, top = ap.cprofile_top(store, sid)
    assert total == oracle.total_tt
    assert top.columns == ["name", "flat", "cum", "calls", "primitive_calls"]
    expected = sorted(
        ((pstats.func_std_string(k), v[2], v[3], v[1], v[0]) for k, v in oracle.stats.items()),
        key=lambda r: (-r[1], -r[2], r[0]),
    )
    assert [tuple(r) for r in top.iter_rows()] == expected


def test_callers_and_callees_equal_pstats(store: Store):
    path = DIR / "json.prof"
    sid = ingest_path(store, path).source_id
    oracle = pstats.Stats(str(path))
    oracle.calc_callees()
    for key, value in oracle.stats.items():
        std = pstats.func_std_string(key)
        got = {(r["caller"]): (r["calls"], r["primitive_calls"], r["tottime"], r["cumtime"])
               for r in ap.callers(store, sid, std).to_dicts()}
        assert got == {pstats.func_std_string(c): e for c, e in value[4].items()}
        got = {(r["callee"]): (r["calls"], r["primitive_calls"], r["tottime"], r["cumtime"])
               for r in ap.callees(store, sid, std).to_dicts()}
        assert got == {pstats.func_std_string(c): e for c, e in oracle.all_callees.get(key, {}).items()}
    assert ap.callers(store, sid, "no_such_function").height == 0


# -- round trip and callgrind ---------------------------------------------------------

@pytest.mark.parametrize("path", PROFILES, ids=[p.name for p in PROFILES])
def test_round_trip_store_marshal_pstats(store: Store, tmp_path: Path, path: Path):
    sid = ingest_path(store, path).source_id
    out = tmp_path / "back.prof"
    ap.write_pstats(store, sid, out)
    again, oracle = pstats.Stats(str(out)), pstats.Stats(str(path))
    assert again.stats == oracle.stats
    assert (again.total_tt, again.total_calls, again.prim_calls) == (
        oracle.total_tt, oracle.total_calls, oracle.prim_calls)
    # and the re-written file is itself a source equal to the original
    assert_matches_pstats(store, ingest_path(store, out).source_id, oracle)


def parse_callgrind(text: str) -> dict:
    """The records of a callgrind file: events, functions, self cost per function, calls."""
    lines = text.splitlines()
    events = [ln.split(":", 1)[1].split() for ln in lines if ln.startswith("events:")]
    self_cost: dict[tuple[str, str], int] = {}
    calls: list[tuple[tuple[str, str], tuple[str, str], int, int]] = []
    fl = cfl = ""
    fn = cfn = None
    pending_call = None
    for ln in lines:
        if ln.startswith("fl="):
            fl = ln[3:]
        elif ln.startswith("fn="):
            fn = (fl, ln[3:])
            self_cost.setdefault(fn, 0)
        elif ln.startswith("cfl="):
            cfl = ln[4:]
        elif ln.startswith("cfn="):
            cfn = (cfl, ln[4:])
        elif ln.startswith("calls="):
            pending_call = int(ln[6:].split()[0])
        elif ln and ln[0].isdigit():
            position, cost = (int(x) for x in ln.split())
            if pending_call is not None:
                calls.append((fn, cfn, pending_call, cost))
                pending_call = None
            else:
                self_cost[fn] += cost
    return {"events": events, "self_cost": self_cost, "calls": calls}


@pytest.mark.parametrize("name", ["recursive.prof", "json.prof", "cli_script.prof"])
def test_export_callgrind(store_path: Path, tmp_path: Path, name: str):
    src = DIR / name
    out = tmp_path / f"callgrind.out.{name}"
    result = run_cli("export", "callgrind", str(src), "-o", str(out), store=store_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{out}: callgrind of source 1 ({len(pstats.Stats(str(src)).stats)} functions)"
    text = out.read_text()
    parsed = parse_callgrind(text)
    oracle = pstats.Stats(str(src))
    assert parsed["events"] == [["ns"]]
    assert len(parsed["self_cost"]) == len(oracle.stats)
    # pyprof2calltree writes int(seconds * 1e9) per function: the total self cost is
    # the profile's total tottime in ns, within 1 ns of truncation per function
    truncated = sum(int(v[2] * 1e9) for v in oracle.stats.values())
    assert sum(parsed["self_cost"].values()) == truncated
    assert abs(oracle.total_tt * 1e9 - truncated) <= len(oracle.stats)
    assert truncated > 1e6  # the workloads run for milliseconds: a real total, not zeros
    assert len(parsed["calls"]) == sum(len(v[4]) for v in oracle.stats.values())
    # byte for byte what pyprof2calltree writes from the original file
    direct = io.StringIO()
    CalltreeConverter(pstats.Stats(str(src))).output(direct)
    assert text == direct.getvalue()


def test_export_callgrind_to_stdout_by_source_id(store_path: Path):
    assert run_cli("ingest", str(DIR / "hashing.prof"), store=store_path).returncode == 0
    result = run_cli("export", "callgrind", "1", store=store_path)
    assert result.returncode == 0, result.stderr
    direct = io.StringIO()
    CalltreeConverter(pstats.Stats(str(DIR / "hashing.prof"))).output(direct)
    assert result.stdout == direct.getvalue()


def test_export_callgrind_refuses_profile_module_dumps(store_path: Path, tmp_path: Path):
    out = tmp_path / "x.callgrind"
    result = run_cli("export", "callgrind", str(DIR / "profile_module.prof"), "-o", str(out), store=store_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "`profile` module" in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [store_path]


# -- detection ------------------------------------------------------------------------

@pytest.mark.parametrize("head", [
    b'{"metrics": {"http_reqs": {"count": 10}}}',          # k6 --summary-export
    b'{"type":"Metric","data":{"name":"http_reqs"}}\n',    # k6 NDJSON
    b'{ "root_group": {} }', b"{\n  \"a\": 1\n}", b"{}", b"{\r\n}", b"{\t}",
    b"{0 trailing", b"{)\x02z\x01a", b"{)\x03i\x01\x00\x00\x00", b"{[", b"[1, 2]", b"\xfb",
])
def test_detector_refuses_json_and_near_misses(head: bytes):
    assert not detect_cprofile(Sniff(path=Path("x"), head=head, gzipped=False))


@pytest.mark.parametrize("version", range(5))
def test_detector_claims_every_marshal_version(tmp_path: Path, version: int):
    stats = pstats.Stats(str(DIR / "recursive.prof")).stats
    path = tmp_path / f"v{version}.prof"
    path.write_bytes(marshal.dumps(stats, version))
    assert detect(path) == ("cprofile", False)


# -- bad input: exit 2, one line naming the file, store unchanged -----------------------

@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    """A store that already holds one cProfile source, so 'unchanged' means something."""
    path = tmp_path / "seeded.duckdb"
    with Store(path) as s:
        ingest_path(s, DIR / "recursive.prof")
    return path


def _fingerprint(path: Path):
    with Store(path) as s:
        return store_fingerprint(s)


def _bad(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


BAD_INPUTS = {
    # marshal, but not a pstats dict: not claimed by detection, so named as no format
    "wrong_structure.prof": (marshal.dumps({"a": 1}), [], "not a format perflab reads"),
    "wrong_structure_forced.prof": (
        marshal.dumps({"a": 1}), ["--kind", "cprofile"], "function key 'a' is not (file, line, name)"),
    "short_value.prof": (
        marshal.dumps({("f.py", 1, "g"): (1, 2)}), [], "f.py:1(g): value (1, 2) is not (primitive calls"),
    "bad_edge.prof": (
        marshal.dumps({("f.py", 1, "g"): (1, 1, 0.5, 0.5, {("f.py", 2, "h"): (1, 1)})}), [],
        "caller f.py:2(h) has (1, 1), not (calls, primitive calls, tottime, cumtime)"),
    "nan_time.prof": (
        marshal.dumps({("f.py", 1, "g"): (1, 1, float("nan"), 0.5, {})}), [], "(a time of nan is no time)"),
    "truncated.prof": ((DIR / "recursive.prof").read_bytes()[:700], [], "truncated"),
    "random_7b.prof": (b"{" + bytes(range(200, 256)) * 20, [], "not a format perflab reads"),
    "random_claimed.prof": (b"\xfb)\x03\xfa" + bytes(range(256)) * 4, ["--kind", "cprofile"], "not a valid cprofile file: at byte"),
    "empty_dict.prof": (marshal.dumps({}), [], "an empty profile"),
    "trailing.prof": ((DIR / "recursive.prof").read_bytes() + b"\x00junk", [], "5 bytes after the end of the dict"),
    # would make marshal.loads allocate 16 GiB: refused at once instead
    "tuple_bomb.prof": (b"{)\x03z\x01a(\xff\xff\xff\x7f", [], "a tuple of 2147483647 items"),
    "long_bomb.prof": (b"{)\x03z\x01al\xff\xff\xff\x7f", [], "an integer of 2147483647 15-bit digits"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_refused(seeded: Path, tmp_path: Path, name: str):
    data, extra, phrase = BAD_INPUTS[name]
    path = _bad(tmp_path, name, data)
    before = _fingerprint(seeded)
    result = run_cli("ingest", *extra, str(path), store=seeded, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"perflab: {path}: ")
    assert phrase in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert _fingerprint(seeded) == before


def test_top_cli_for_a_cprofile_file(store_path: Path):
    # `perflab top` (perflab/commands/top.py) wraps cprofile_top for cProfile sources
    path = DIR / "json.prof"
    oracle = pstats.Stats(str(path))
    expected = sorted(
        ((pstats.func_std_string(k), v[2], v[3], v[1], v[0]) for k, v in oracle.stats.items()),
        key=lambda r: (-r[1], -r[2], r[0]),
    )
    result = run_cli("top", str(path), "--json", "--limit", "0", store=store_path)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert (got["source_id"], got["format"], got["sample_type"], got["unit"]) == (1, "cprofile", "cpu", "seconds")
    assert got["total"] == oracle.total_tt
    assert [(r["name"], r["flat"], r["cum"], r["calls"], r["primitive_calls"]) for r in got["rows"]] == expected
    for r in got["rows"]:
        assert r["flat_pct"] == pytest.approx(100 * r["flat"] / oracle.total_tt, rel=1e-12)
        assert r["cum_pct"] == pytest.approx(100 * r["cum"] / oracle.total_tt, rel=1e-12)
    # the default view: the first 20 of the same order, by source id this time
    result = run_cli("top", "1", "--json", store=store_path)
    assert result.returncode == 0, result.stderr
    assert [r["name"] for r in json.loads(result.stdout)["rows"]] == [r[0] for r in expected[:20]]
