"""speedscope JSON: detection, units → sample types, evented → weighted stacks, labels, refusals.

The oracle walks the JSON here, independently of perflab: a sampled profile's stacks and
weights as they are; an evented profile's time between consecutive events goes to the
stack open during it. flat goes to the leaf, cum once to each distinct function of a stack.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from perflab.analysis.profiles import sample_types, top
from perflab.cli import main
from perflab.ingest import detect, ingest_path
from perflab.store import Store
from perflab.vocab import SPEEDSCOPE
from tests.helpers import assert_ingest_refused, run_cli, store_fingerprint

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stacks"
EVENTED = FIXTURES / "speedscope__speedscope_0.0.1_simple.speedscope.json"
SAMPLED = FIXTURES / "speedscope__speedscope_0.1.2_simple-sampled.speedscope.json"
TWO = FIXTURES / "speedscope__speedscope_0.6.0_two-sampled.speedscope.json"
COLLAPSED_SIMPLE = FIXTURES / "speedscope__stackcollapse_simple.txt"
OUT_OF_ORDER = FIXTURES / "speedscope__speedscope_invalid_out-of-order-events.json"
INCOMPLETE = FIXTURES / "speedscope__speedscope_invalid_incomplete-trace.json"
SCHEMA = "https://www.speedscope.app/file-format-schema.json"
NS = {"nanoseconds": 1, "microseconds": 1_000, "milliseconds": 1_000_000, "seconds": 1_000_000_000}


def frame_name(f: dict[str, Any]) -> str:
    if not f.get("file"):
        return str(f["name"])
    if not f.get("line"):
        return f"{f['name']} ({f['file']})"
    return f"{f['name']} ({f['file']}:{f['line']}" + (f":{f['col']})" if f.get("col") else ")")


def weighted_stacks(doc: dict[str, Any]) -> list[tuple[list[str], float, str]]:
    """(stack root first, weight in the profile's unit, unit) for every sample or interval."""
    frames = doc["shared"]["frames"]
    out = []
    for p in doc["profiles"]:
        if p["type"] == "sampled":
            pairs = zip(p["samples"], p["weights"], strict=True)
            out += [([frame_name(frames[i]) for i in s], w, p["unit"]) for s, w in pairs]
        else:
            open_: list[int] = []
            prev = None
            for ev in p["events"]:
                if open_ and prev is not None and ev["at"] > prev:
                    out.append(([frame_name(frames[i]) for i in open_], ev["at"] - prev, p["unit"]))
                prev = ev["at"]
                if ev["type"] == "O":
                    open_.append(ev["frame"])
                else:
                    open_.pop()
    return out


def oracle(doc: dict[str, Any], value: Any) -> tuple[int, dict[str, tuple[int, int]]]:
    flat: Counter[str] = Counter()
    cum: Counter[str] = Counter()
    total = 0
    for stack, w, unit in weighted_stacks(doc):
        v = value(w, unit)
        total += abs(v)
        if stack:
            flat[stack[-1]] += v
        for f in set(stack):
            cum[f] += v
    return total, {f: (flat[f], cum[f]) for f in cum if flat[f] or cum[f]}


def in_ns(w: float, unit: str) -> int:
    return round(w * NS[unit])


def rows_of(result: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {r["name"]: (r["flat"], r["cum"]) for r in result["rows"]}


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc))
    return path


def pyspy_like(threads: int = 2) -> dict[str, Any]:
    """The shape py-spy 0.4 writes: frames with file and line (0 for native code), one
    sampled profile per thread, weights of 1/rate seconds."""
    frames = [
        {"name": "<module>", "file": "/srv/app.py", "line": 1, "col": None},
        {"name": "login", "file": "/srv/app.py", "line": 20, "col": None},
        {"name": "blowfish::encrypt", "file": "/venv/bcrypt/_bcrypt.abi3.so", "line": 0, "col": None},
        {"name": "pbkdf2_hmac", "file": "/usr/lib/python3.11/hashlib.py", "line": 9},
        {"name": "PKCS5_PBKDF2_HMAC", "file": "/usr/lib/libcrypto.so.3", "line": 0},
        {"name": "anonymous", "file": "bundle.js", "line": 3, "col": 14},
        {"name": "idle"},
    ]
    profiles = [{
        "type": "sampled", "name": f'Thread {100 + t} "{"MainThread" if t == 0 else f"worker-{t}"}"',
        "unit": "seconds", "startValue": 0.0, "endValue": 0.09,
        "samples": [[0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 3, 4], [0, 3, 4], [0, 5], [0], [6], [0, 1, 2]][t:],
        "weights": [0.01] * (9 - t),
    } for t in range(threads)]
    return {"$schema": SCHEMA, "activeProfileIndex": None, "exporter": "py-spy@0.4.3", "name": "py-spy profile",
            "profiles": profiles, "shared": {"frames": frames}}


# -- detection ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [EVENTED, SAMPLED, TWO], ids=lambda p: p.name)
def test_speedscope_files_are_detected_by_content(path: Path) -> None:
    assert detect(path) == (SPEEDSCOPE, False)


def test_detected_without_schema_when_profiles_come_first(tmp_path: Path) -> None:
    doc = pyspy_like()
    del doc["$schema"]
    assert detect(write(tmp_path / "profile.txt", doc)) == (SPEEDSCOPE, False)


# -- numbers --------------------------------------------------------------------------------
def test_sampled_seconds_are_wall_nanoseconds_and_a_sample_count(store: Store) -> None:
    doc = json.loads(SAMPLED.read_text())
    sid = ingest_path(store, SAMPLED).source_id
    assert sample_types(store, sid) == [{"type": "samples", "unit": "count"}, {"type": "wall", "unit": "nanoseconds"}]
    wall = top(store, sid)
    total, want = oracle(doc, in_ns)
    assert (wall["format"], wall["sample_type"], wall["unit"], wall["total"]) == ("pprof", "wall", "nanoseconds", total)
    assert rows_of(wall) == want
    count = top(store, sid, sample_type="samples")
    assert count["total"] == 5
    assert rows_of(count) == oracle(doc, lambda w, u: 1)[1]


def test_evented_intervals_are_the_stacks_of_the_same_collapsed_file(store: Store) -> None:
    # The evented file is speedscope's export of ..._simple.txt: the same stacks, unit none.
    evented = top(store, ingest_path(store, EVENTED).source_id)
    collapsed = top(store, ingest_path(store, COLLAPSED_SIMPLE).source_id)
    assert (evented["sample_type"], evented["unit"]) == ("samples", "count")
    assert rows_of(evented) == rows_of(collapsed) == oracle(json.loads(EVENTED.read_text()), lambda w, u: round(w))[1]
    assert evented["total"] == collapsed["total"] == 14


def test_evented_milliseconds_nested_and_recursive(store: Store, tmp_path: Path) -> None:
    # GIVEN main -> handle -> handle (recursion) -> parse, with gaps where nothing is open
    ev = [("O", 0, 0.0), ("O", 1, 1.5), ("O", 1, 2.0), ("O", 2, 2.25), ("C", 2, 7.0), ("C", 1, 7.0),
          ("C", 1, 9.5), ("C", 0, 10.0), ("O", 0, 20.0), ("O", 2, 20.001), ("C", 2, 20.002), ("C", 0, 21.0)]
    doc = {"$schema": SCHEMA, "shared": {"frames": [{"name": "main"}, {"name": "handle"}, {"name": "parse"}]},
           "profiles": [{"type": "evented", "name": "t", "unit": "milliseconds", "startValue": 0, "endValue": 30,
                         "events": [{"type": t, "frame": f, "at": at} for t, f, at in ev]}]}
    sid = ingest_path(store, write(tmp_path / "ev.json", doc)).source_id
    result = top(store, sid)
    assert [t["type"] for t in sample_types(store, sid)] == ["wall"]
    assert rows_of(result) == {
        "parse": (4_750_000 + 1_000, 4_751_000),
        "handle": (500_000 + 250_000 + 2_500_000, 8_000_000),
        "main": (1_500_000 + 500_000 + 1_000 + 998_000, 11_000_000),
    }
    assert result["total"] == 11_000_000 == oracle(doc, in_ns)[0]


def test_every_profile_is_in_the_source_with_its_thread_label(store: Store) -> None:
    doc = json.loads(TWO.read_text())
    sid = ingest_path(store, TWO).source_id
    result = top(store, sid)
    assert result["total"] == 2 * 14 * 10**9
    assert rows_of(result) == oracle(doc, in_ns)[1]
    labels = store.con.execute(
        "SELECT l.str, sum(s.value[1]), sum(s.value[2]) FROM pprof_labels l JOIN pprof_samples s "
        "ON s.source_id = l.source_id AND s.sample_idx = l.sample_idx WHERE l.source_id = ? AND l.key = 'thread' "
        "GROUP BY 1 ORDER BY 1", [sid]).fetchall()
    assert labels == [("one", 5, 14 * 10**9), ("two", 5, 14 * 10**9)]
    # Identical stacks of one profile are one sample: 3 distinct stacks in each of the two profiles.
    assert store.con.execute("SELECT count(*) FROM pprof_samples WHERE source_id = ?", [sid]).fetchall()[0][0] == 6


def test_pyspy_shaped_file_names_frames_as_pyspy_does(store: Store, tmp_path: Path) -> None:
    doc = pyspy_like()
    sid = ingest_path(store, write(tmp_path / "pyspy.json", doc)).source_id
    result = top(store, sid)
    total, want = oracle(doc, in_ns)
    assert result["total"] == total == 17 * 10_000_000  # 17 samples of 10 ms
    assert rows_of(result) == want
    assert set(want) == {
        "<module> (/srv/app.py:1)", "login (/srv/app.py:20)", "blowfish::encrypt (/venv/bcrypt/_bcrypt.abi3.so)",
        "pbkdf2_hmac (/usr/lib/python3.11/hashlib.py:9)", "PKCS5_PBKDF2_HMAC (/usr/lib/libcrypto.so.3)",
        "anonymous (bundle.js:3:14)", "idle",
    }
    fn = store.con.execute("SELECT system_name, filename FROM pprof_functions f JOIN pprof_lines l USING "
                           "(source_id, function_id) WHERE source_id = ? AND l.line = 20", [sid]).fetchall()
    assert fn == [("login", "/srv/app.py")]


def test_bytes_and_none_units_beside_time(store: Store, tmp_path: Path) -> None:
    doc = {"$schema": SCHEMA, "shared": {"frames": [{"name": "alloc"}, {"name": "main"}]}, "profiles": [
        {"type": "sampled", "name": "heap", "unit": "bytes", "startValue": 0, "endValue": 1,
         "samples": [[1, 0], [1]], "weights": [4096, 100]},
        {"type": "sampled", "name": "count", "unit": "none", "startValue": 0, "endValue": 1,
         "samples": [[1, 0]], "weights": [7]},
        {"type": "sampled", "name": "time", "unit": "microseconds", "startValue": 0, "endValue": 1,
         "samples": [[1]], "weights": [2.5]},
    ]}
    sid = ingest_path(store, write(tmp_path / "mixed.json", doc)).source_id
    assert [t["type"] for t in sample_types(store, sid)] == ["samples", "space", "wall"]
    assert rows_of(top(store, sid, sample_type="space")) == {"alloc": (4096, 4196 - 100), "main": (100, 4196)}
    # samples: one per sample of the bytes and time profiles, the weight of the unitless one.
    assert rows_of(top(store, sid, sample_type="samples")) == {"alloc": (1 + 7, 8), "main": (1 + 1, 10)}
    assert rows_of(top(store, sid, sample_type="wall")) == {"main": (2500, 2500)}
    assert top(store, sid)["sample_type"] == "wall"


def test_no_profiles_is_a_profile_of_nothing(store: Store, tmp_path: Path) -> None:
    doc = {"$schema": SCHEMA, "shared": {"frames": []}, "profiles": []}
    result = top(store, ingest_path(store, write(tmp_path / "empty.json", doc)).source_id)
    assert (result["total"], result["rows"]) == (0, [])


def test_cli_top_on_a_speedscope_file(tmp_path: Path) -> None:
    result = run_cli("top", str(TWO), "--limit", "1", store=tmp_path / "s.duckdb")
    assert result.returncode == 0, result.stderr
    # pprof's layout: the file's comments (its name, its exporter), then the type, values in seconds
    assert result.stdout.splitlines() == [
        "Two Samples",
        "speedscope@0.6.0",
        "Type: wall",
        "Showing nodes accounting for 10s, 35.71% of 28s total",
        "Showing top 1 nodes out of 4",
        "      flat  flat%   sum%        cum   cum%",
        "       10s 35.71% 35.71%        28s   100%  b",
    ]


# -- refusals -------------------------------------------------------------------------------
def _doc(**profile: Any) -> dict[str, Any]:
    base = {"type": "sampled", "name": "p", "unit": "seconds", "startValue": 0, "endValue": 1,
            "samples": [[0, 1]], "weights": [1]}
    base.update(profile)
    return {"$schema": SCHEMA, "shared": {"frames": [{"name": "a"}, {"name": "b"}]}, "profiles": [base]}


@pytest.mark.parametrize(("doc", "phrase"), [
    (_doc(samples=[[0, 2]]), "profile 0 sample 0 refers to frame 2; there are 2 frames"),
    (_doc(weights=[1, 2]), "profile 0: 1 samples but 2 weights"),
    (_doc(unit="parsecs"), "profile 0: unit 'parsecs' is not one of nanoseconds"),
    (_doc(type="instant"), "profile 0: type 'instant' is neither sampled nor evented"),
    (_doc(weights=["1"]), "profile 0 sample 0: weight '1' is not a finite number"),
    (_doc(type="evented", events=[{"type": "O", "frame": 0, "at": 2}, {"type": "C", "frame": 0, "at": 1}]),
     "profile 0 event 1 is at 1, before the event preceding it (2)"),
    ({"$schema": SCHEMA, "profiles": []}, "not a speedscope file: no shared.frames list"),
])
def test_bad_files_are_refused_and_the_store_is_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          doc: dict[str, Any], phrase: str) -> None:
    store_path = tmp_path / "s.duckdb"
    assert main(["--store", str(store_path), "ingest", str(TWO)]) == 0
    with Store(store_path) as s:
        before = store_fingerprint(s)
    capsys.readouterr()
    assert_ingest_refused(store_path, before, write(tmp_path / "bad.json", doc), phrase, [], capsys)


@pytest.mark.parametrize(("path", "phrase"), [
    (OUT_OF_ORDER, "profile 0 event 6 closes frame 1, but frame 0 is open"),
    (INCOMPLETE, "profile 0: frame 0 is still open after the last event"),
])
def test_speedscopes_own_invalid_files_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   path: Path, phrase: str) -> None:
    store_path = tmp_path / "s.duckdb"
    with Store(store_path) as s:
        before = store_fingerprint(s)
    assert_ingest_refused(store_path, before, path, phrase, [], capsys)


def test_truncated_json_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_path = tmp_path / "s.duckdb"
    with Store(store_path) as s:
        before = store_fingerprint(s)
    path = tmp_path / "cut.json"
    path.write_text(TWO.read_text()[:300])
    assert_ingest_refused(store_path, before, path, "not a valid speedscope file", [], capsys)
