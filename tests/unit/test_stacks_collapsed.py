"""Collapsed stacks: detection, what lands in the pprof tables, pprof's flat/cum, refusals.

The oracle is computed here from the file's text, independently of perflab: a line is
``root;...;leaf COUNT``; flat goes to the leaf, cum once to each distinct function of the
stack (pprof's rule for recursion), and the total is the sum of the counts.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perflab.analysis.profiles import profile_info, stacks, top
from perflab.cli import main
from perflab.ingest import detect, ingest_path
from perflab.store import Store
from perflab.vocab import COLLAPSED, PROMETHEUS
from tests.helpers import assert_ingest_refused, run_cli, store_fingerprint

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stacks"
SIMPLE = FIXTURES / "speedscope__stackcollapse_simple.txt"
RECURSION = FIXTURES / "speedscope__stackcollapse_recursion.txt"
CRLF = FIXTURES / "speedscope__stackcollapse_simple-crlf.txt"
PERF = FIXTURES / "apquery__perf.collapsed"
INVALIDS = FIXTURES / "speedscope__stackcollapse_simple-with-invalids.txt"
COLLAPSED_FILES = (SIMPLE, RECURSION, CRLF, PERF)

# What py-spy --native --function writes (frames with spaces and parentheses), async-profiler's
# frame-type suffixes, recursion through a suffixed frame, and perflab's header line.
PYSPY_LIKE = """\
# perflab: rate_hz=100 duration_s=10 start_unix_s=1733390000.5 pid=42 producer=py-spy clock=cpu
<module> (/srv/app.py:1);main (/srv/app.py:10);login (/srv/app.py:20);hashpw (/venv/bcrypt/__init__.py:80);blowfish::encrypt (/venv/bcrypt/_bcrypt.abi3.so) 700
<module> (/srv/app.py:1);main (/srv/app.py:10);derive (/srv/app.py:30);pbkdf2_hmac (/usr/lib/python3.11/hashlib.py:1);PKCS5_PBKDF2_HMAC (/usr/lib/libcrypto.so.3) 250
<module> (/srv/app.py:1);main (/srv/app.py:10);render (/srv/app.py:40);dumps (/usr/lib/python3.11/json/__init__.py:183) 49
<module> (/srv/app.py:1);main (/srv/app.py:10) 1
"""
ASYNC_PROFILER_LIKE = """\
java/lang/Thread.run_[j];com/app/Server.handle_[j];com/app/Server.handle_[i];com/app/Json.write_[j] 30
java/lang/Thread.run_[j];com/app/Server.handle_[0];[unknown_Java] 5
java/lang/Thread.run_[j];com/app/Server.handle_[j];__GI___libc_write;entry_SYSCALL_64_[k] 12
java/lang/Thread.run_[j];com/app/Server.handle_[1];com/app/Server.handle_[j] 3
"""


def oracle(text: str) -> tuple[int, dict[str, tuple[int, int]]]:
    """(total, {function: (flat, cum)}) from the text alone."""
    flat: Counter[str] = Counter()
    cum: Counter[str] = Counter()
    total = 0
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line.startswith("# perflab:"):
            continue
        stack, count_text = line.rsplit(None, 1)
        count = int(count_text)
        frames = [re.sub(r"_\[[jik01]\]$", "", f) or "<unknown>" for f in stack.split(";")]
        total += count
        flat[frames[-1]] += count
        for f in set(frames):
            cum[f] += count
    return total, {f: (flat[f], cum[f]) for f in cum if flat[f] or cum[f]}


def rows_of(result: dict[str, object]) -> dict[str, tuple[int, int]]:
    rows = result["rows"]
    assert isinstance(rows, list)
    return {r["name"]: (r["flat"], r["cum"]) for r in rows}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- detection ----------------------------------------------------------------------------
@pytest.mark.parametrize("path", COLLAPSED_FILES, ids=lambda p: p.name)
def test_collapsed_files_are_detected_by_content(path: Path) -> None:
    assert detect(path) == (COLLAPSED, False)


def test_detection_ignores_the_name_and_reads_gzip(tmp_path: Path) -> None:
    gz = tmp_path / "profile.pb.gz"  # a misleading name
    gz.write_bytes(gzip.compress(PYSPY_LIKE.encode()))
    assert detect(gz) == (COLLAPSED, True)
    assert detect(write(tmp_path / "stacks.json", ASYNC_PROFILER_LIKE)) == (COLLAPSED, False)


@pytest.mark.parametrize("text", [
    "up 1\nhttp_requests_total 1027\n",                         # no stack is deeper than 1
    "# HELP up whether up\n# TYPE up gauge\nup{job=\"a;b\"} 1\n",  # comments other than perflab's
])
def test_a_prometheus_scrape_is_not_collapsed(tmp_path: Path, text: str) -> None:
    assert detect(write(tmp_path / "x.txt", text)) == (PROMETHEUS, False)


@pytest.mark.parametrize("text", [
    "a;b 1\nthis line has no count\n",
    "a;b 1.5\n",                                                 # a count is a whole number
    "a;b\t\n",
])
def test_other_text_is_not_collapsed(tmp_path: Path, text: str) -> None:
    from perflab.errors import InputError

    path = write(tmp_path / "x.txt", text)
    with pytest.raises(InputError, match="not a format perflab reads"):
        detect(path)


def test_the_header_alone_is_a_profile_of_nothing(store: Store, tmp_path: Path) -> None:
    # GIVEN what the recorder writes for a process that stayed idle: the header, no stacks
    path = write(tmp_path / "idle.txt", "# perflab: rate_hz=100 duration_s=5 clock=cpu\n")
    assert detect(path)[0] == COLLAPSED
    result = top(store, ingest_path(store, path).source_id)
    assert (result["sample_type"], result["unit"], result["total"], result["rows"]) == ("cpu", "nanoseconds", 0, [])


# -- numbers --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", COLLAPSED_FILES, ids=lambda p: p.name)
def test_flat_and_cum_equal_the_oracle(store: Store, path: Path) -> None:
    result = top(store, ingest_path(store, path).source_id)
    total, want = oracle(path.read_text())
    assert (result["format"], result["sample_type"], result["unit"]) == ("pprof", "samples", "count")
    assert result["total"] == total
    assert rows_of(result) == want


def test_recursion_counts_a_function_once_per_stack(store: Store) -> None:
    result = top(store, ingest_path(store, RECURSION).source_id)
    # a;a, b;b, a;b, a;b;a;b, ... : 10 stacks, a in 9 of them, b in 9, c in 4.
    assert rows_of(result) == {"a": (1, 9), "b": (5, 9), "c": (4, 4)}


def test_what_is_stored(store: Store) -> None:
    sid = ingest_path(store, SIMPLE, run_id="r1").source_id
    q = store.con.execute
    # One function and one location per distinct frame; 5 lines, 3 distinct stacks.
    assert q("SELECT name, system_name FROM pprof_functions WHERE source_id = ? ORDER BY function_id",
             [sid]).fetchall() == [("c", "c"), ("b", "b"), ("a", "a"), ("d", "d")]
    assert q("SELECT count(*) FROM pprof_locations WHERE source_id = ?", [sid]).fetchall()[0][0] == 4
    assert q("SELECT count(*), sum(value[1]) FROM pprof_samples WHERE source_id = ? AND run_id = 'r1'",
             [sid]).fetchall()[0] == (5, 14)
    assert q("SELECT count(*) FROM pprof_stacks WHERE source_id = ?", [sid]).fetchall()[0][0] == 3
    got = stacks(store, sid)
    # by value, then by first appearance in the file
    assert [(f, v) for f, v in got.iter_rows()] == [(["c", "b", "a"], 5), (["b", "a"], 5), (["d", "b", "a"], 4)]
    assert store.source(sid)["kind"] == COLLAPSED


def test_frames_keep_spaces_and_lose_async_profiler_suffixes(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "ap.txt", ASYNC_PROFILER_LIKE)
    sid = ingest_path(store, path).source_id
    total, want = oracle(ASYNC_PROFILER_LIKE)
    assert rows_of(top(store, sid)) == want
    # Server.handle_[j], _[i], _[0], _[1] are one function: cum counts it once per stack.
    assert want["com/app/Server.handle"] == (3, 50)
    system = {r[0] for r in store.con.execute(
        "SELECT system_name FROM pprof_functions WHERE source_id = ? AND name = 'com/app/Server.handle'",
        [sid]).fetchall()}
    assert system == {"com/app/Server.handle_[j]", "com/app/Server.handle_[i]", "com/app/Server.handle_[0]",
                      "com/app/Server.handle_[1]"}


def test_the_perflab_header_adds_cpu_time_and_the_duration(store: Store, tmp_path: Path) -> None:
    # GIVEN what the py-spy recorder writes: counts at 100 Hz, a 10 s recording
    sid = ingest_path(store, write(tmp_path / "pyspy.txt", PYSPY_LIKE)).source_id
    total, want = oracle(PYSPY_LIKE)
    # THEN cpu (count x 1e9 / rate_hz ns) is the default type, as in a Go CPU profile
    cpu = top(store, sid)
    assert (cpu["sample_type"], cpu["unit"], cpu["total"]) == ("cpu", "nanoseconds", total * 10_000_000)
    assert rows_of(cpu) == {f: (fl * 10_000_000, c * 10_000_000) for f, (fl, c) in want.items()}
    assert rows_of(top(store, sid, sample_type="samples")) == want
    info = profile_info(store, sid)
    assert (info["period_type"], info["period_unit"], info["period"]) == ("cpu", "nanoseconds", 10_000_000)
    assert (info["duration_nanos"], info["time_nanos"]) == (10_000_000_000, 1_733_390_000_500_000_000)
    assert [t["type"] for t in info["sample_types"]] == ["samples", "cpu"]
    assert info["comments"] == [PYSPY_LIKE.splitlines()[0]]


def test_a_rate_that_does_not_divide_a_second_rounds_each_stack(store: Store, tmp_path: Path) -> None:
    text = "# perflab: rate_hz=97 clock=wall\na;b 3\na;c 7\n"
    result = top(store, ingest_path(store, write(tmp_path / "w.txt", text)).source_id)
    assert (result["sample_type"], result["unit"]) == ("wall", "nanoseconds")
    assert rows_of(result)["b"] == (round(3 * 1e9 / 97),) * 2
    assert result["total"] == round(3 * 1e9 / 97) + round(7 * 1e9 / 97)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.lists(st.sampled_from(["a", "b", "c", "f x (m.py:3)", "g_[j]", "g_[i]"]),
                                   min_size=1, max_size=6),
                          st.integers(0, 10**12)), min_size=1, max_size=25))
def test_any_file_equals_the_oracle(tmp_path_factory: pytest.TempPathFactory,
                                    lines: list[tuple[list[str], int]]) -> None:
    text = "".join(f"{';'.join(frames)} {count}\n" for frames, count in lines)
    path = tmp_path_factory.mktemp("h") / "h.txt"
    path.write_text(text)
    with Store(path.with_suffix(".duckdb")) as store:
        # every function, as the plain reading lists them (no nodefraction cut)
        result = top(store, ingest_path(store, path, kind=COLLAPSED).source_id, nodefraction=0)
    total, want = oracle(text)
    assert result["total"] == total
    assert rows_of(result) == want


# -- the CLI --------------------------------------------------------------------------------
def test_cli_top_prints_pprofs_table_with_the_time_unit(tmp_path: Path) -> None:
    path = write(tmp_path / "pyspy.txt", PYSPY_LIKE)
    result = run_cli("top", str(path), "--limit", "2", store=tmp_path / "s.duckdb")
    assert result.returncode == 0, result.stderr
    # pprof's header and its automatic unit (seconds here), as `go tool pprof -top` prints them
    assert result.stdout.splitlines() == [
        "Type: cpu",
        "Time: 2024-12-05 09:13:20 UTC",
        "Duration: 10s, Total samples = 10s (  100%)",
        "Showing nodes accounting for 9.50s, 95.00% of 10s total",
        "Showing top 2 nodes out of 10",
        "      flat  flat%   sum%        cum   cum%",
        "        7s 70.00% 70.00%         7s 70.00%  blowfish::encrypt (/venv/bcrypt/_bcrypt.abi3.so)",
        "     2.50s 25.00% 95.00%      2.50s 25.00%  PKCS5_PBKDF2_HMAC (/usr/lib/libcrypto.so.3)",
    ]


def test_cli_json_has_the_shape_of_a_pprof_answer(tmp_path: Path) -> None:
    result = run_cli("top", str(SIMPLE), "--json", store=tmp_path / "s.duckdb")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {"source_id", "source_ids", "format", "sample_type", "unit", "mean", "total", "rows",
                        "dropped_nodes", "node_cutoff", "nodes_before_nodecount", "filters", "granularity"}
    assert (out["format"], out["sample_type"], out["unit"], out["total"]) == ("pprof", "samples", "count", 14)
    assert set(out["rows"][0]) == {"name", "flat", "cum", "flat_pct", "cum_pct", "inline"}


# -- refusals -------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "phrase"), [
    ("a;b 1\na;b 99999999999999999999\n", "line 2: its count is too large"),
    ("a;b 1\nno count here\n", "line 2: not `frame;frame;...;frame COUNT`: 'no count here'"),
    ("# perflab: rate_hz=fast\na;b 1\n", "line 1: rate_hz='fast' is not a positive number"),
    ("# perflab: rate_hz=0\na;b 1\n", "line 1: rate_hz='0' is not a positive number"),
    ("# perflab: clock=gpu\na;b 1\n", "line 1: clock='gpu'; one of cpu, wall"),
    ("# perflab: rate_hz\na;b 1\n", "line 1: header item 'rate_hz' is not KEY=VALUE"),
])
def test_bad_lines_are_refused_and_the_store_is_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          text: str, phrase: str) -> None:
    store_path = tmp_path / "s.duckdb"
    assert main(["--store", str(store_path), "ingest", str(SIMPLE)]) == 0
    with Store(store_path) as s:
        before = store_fingerprint(s)
    capsys.readouterr()
    assert_ingest_refused(store_path, before, write(tmp_path / "bad.txt", text), phrase,
                          ["--kind", "collapsed"], capsys)


def test_speedscopes_own_invalid_lines_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # speedscope skips the lines it cannot read; perflab names the first and stores nothing.
    store_path = tmp_path / "s.duckdb"
    with Store(store_path) as s:
        before = store_fingerprint(s)
    assert_ingest_refused(store_path, before, INVALIDS, "line 1: not `frame;frame;...;frame COUNT`",
                          ["--kind", "collapsed"], capsys)


def test_non_utf8_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_path = tmp_path / "s.duckdb"
    with Store(store_path) as s:
        before = store_fingerprint(s)
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9;b 1\n".encode("latin-1"))
    assert_ingest_refused(store_path, before, path, "not a valid collapsed file", ["--kind", "collapsed"], capsys)
