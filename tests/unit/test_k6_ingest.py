"""k6 ingest: what lands in the tables (NDJSON, CSV, both summary files), detection, refusals."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import duckdb
import polars as pl
import pytest

from perflab.ingest import detect, ingest_path
from perflab.store import Store
from tests.helpers import assert_ingest_refused, assert_refused, run_cli, store_fingerprint

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "k6"
NDJSON = ["main_small.ndjson", "main_kolkata.ndjson.gz", "main_dropped.ndjson", "summary_small.ndjson"]
K6_TABLES = ("k6_metrics", "k6_points", "k6_summary_metrics", "k6_summary_values", "k6_thresholds", "k6_checks")


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The independent reading: Python's json, line by line (fine for a test fixture)."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return [json.loads(line) for line in raw.decode().splitlines()]


def expected(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.expected.json").read_text())


def rfc3339(time_ns: int, offset_min: int) -> str:
    """Go's time.Time JSON for an instant and a zone offset: trailing fraction zeros trimmed."""
    sec, frac = divmod(time_ns, 1_000_000_000)
    local = datetime.fromtimestamp(sec, timezone.utc) + timedelta(minutes=offset_min)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    if offset_min == 0:
        return text + "Z"
    sign = "+" if offset_min > 0 else "-"
    return text + f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"


def points(store: Store, sid: int) -> pl.DataFrame:
    return store.sql("SELECT * FROM k6_points WHERE source_id = ? ORDER BY seq", [sid])


# -- detection -----------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "kind"), [
    ("main_small.ndjson", "k6"), ("main_kolkata.ndjson.gz", "k6"), ("main_small.csv", "k6-csv"),
    ("main_kolkata.csv", "k6-csv"), ("main_small.summary.json", "k6-summary"),
    ("summary_small.handle.json", "k6-summary"), ("summary_small.summary.json", "k6-summary"),
])
def test_each_k6_file_is_recognised_by_its_content(name: str, kind: str, tmp_path: Path) -> None:
    # GIVEN the file under a name that says nothing WHEN detected THEN its kind is right
    data = (FIXTURES / name).read_bytes()
    anonymous = tmp_path / "upload.bin"
    anonymous.write_bytes(data)
    assert detect(anonymous)[0] == kind


# -- NDJSON ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NDJSON)
def test_every_point_keeps_its_line_metric_value_tags_and_metadata(name: str, store: Store) -> None:
    lines = read_lines(FIXTURES / name)
    sid = ingest_path(store, FIXTURES / name).source_id
    got = points(store, sid)
    want = [(n, ln["metric"], ln["data"]["value"], ln["data"]["tags"], ln["data"].get("metadata"))
            for n, ln in enumerate(lines, 1) if ln["type"] == "Point"]
    assert len(got) == expected(name)["file"]["point_lines"] == len(want)
    rows = [(r["seq"], r["metric"], r["value"], json.loads(r["tags"]),
             json.loads(r["metadata"]) if r["metadata"] is not None else None) for r in got.iter_rows(named=True)]
    assert rows == want
    per_metric = dict(got.group_by("metric").len().iter_rows())
    assert per_metric == expected(name)["file"]["points_per_metric"]


@pytest.mark.parametrize("name", NDJSON)
def test_time_keeps_nanoseconds_and_the_offset_k6_wrote(name: str, store: Store) -> None:
    lines = [ln for ln in read_lines(FIXTURES / name) if ln["type"] == "Point"]
    sid = ingest_path(store, FIXTURES / name).source_id
    got = points(store, sid)
    # THEN the original text comes back exactly from (time_ns, utc_offset_min), for every point
    rebuilt = [rfc3339(ns, off) for ns, off in zip(got["time_ns"], got["utc_offset_min"])]
    assert rebuilt == [ln["data"]["time"] for ln in lines]
    # AND the TIMESTAMPTZ is the same instant, truncated to µs
    micros = got.select((pl.col("time").dt.epoch("us") * 1000).alias("us"))["us"]
    assert (micros == (got["time_ns"] // 1000) * 1000).all()
    first = expected(name)["file"]["first_point_time"]
    assert rfc3339(int(got["time_ns"][0]), int(got["utc_offset_min"][0])) == first


def test_offsets_seen_in_the_fixtures(store: Store) -> None:
    offsets = {}
    for name in NDJSON:
        sid = ingest_path(store, FIXTURES / name).source_id
        offsets[name] = set(points(store, sid)["utc_offset_min"].to_list())
    assert offsets == {"main_small.ndjson": {0}, "main_kolkata.ndjson.gz": {330},
                       "main_dropped.ndjson": {0}, "summary_small.ndjson": {-300}}


def test_metric_lines_keep_type_contains_thresholds_and_submetrics(store: Store) -> None:
    lines = read_lines(FIXTURES / "main_small.ndjson")
    sid = ingest_path(store, FIXTURES / "main_small.ndjson").source_id
    got = store.sql("SELECT * FROM k6_metrics WHERE source_id = ? ORDER BY seq", [sid]).to_dicts()
    want = [(n, ln["data"]) for n, ln in enumerate(lines, 1) if ln["type"] == "Metric"]
    assert len(got) == expected("main_small.ndjson")["file"]["metric_lines"] == len(want)
    for row, (n, data) in zip(got, want):
        assert (row["seq"], row["name"], row["type"], row["contains"]) == (n, data["name"], data["type"],
                                                                           data["contains"])
        assert json.loads(row["thresholds"]) == data["thresholds"]
        assert json.loads(row["submetrics"] or "null") == data["submetrics"]
    duration = next(r for r in got if r["name"] == "http_req_duration")
    assert json.loads(duration["thresholds"]) == ["p(95)<2000", "max<5000"]


def test_every_row_carries_source_and_run(store: Store) -> None:
    for name in ("main_small.ndjson", "main_small.csv", "main_small.summary.json", "summary_small.handle.json"):
        ingest_path(store, FIXTURES / name, run_id="run-7")
    for table in K6_TABLES:
        n, tagged = store.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE run_id = 'run-7' AND source_id IS NOT NULL) FROM {table}"
        ).fetchall()[0]
        assert n > 0 and n == tagged, table


def test_seq_is_the_line_order_when_duckdb_reads_with_several_threads(tmp_path: Path, store: Store) -> None:
    # GIVEN an NDJSON large enough that DuckDB splits it between threads (~60 MB, 220k lines),
    # whose values are their own line numbers
    n = 220_000
    tags = ('{"expected_response":"true","group":"","method":"GET","name":"http://127.0.0.1:18080/fast",'
            '"proto":"HTTP/1.1","scenario":"default","status":"200","url":"http://127.0.0.1:18080/fast"}')
    body = pl.select(pl.concat_str([
        pl.lit('{"metric":"http_req_duration","type":"Point","data":{"time":"2026-11-22T10:08:33.56715'),
        (pl.int_range(2, n + 2) % 1000).cast(pl.String).str.zfill(4),
        pl.lit('Z","value":'), pl.int_range(2, n + 2).cast(pl.String), pl.lit(f',"tags":{tags}}}}}'),
    ]).alias("l"))["l"]
    path = tmp_path / "big.ndjson"
    head = ('{"type":"Metric","data":{"name":"http_req_duration","type":"trend","contains":"time",'
            '"thresholds":[],"submetrics":null},"metric":"http_req_duration"}\n')
    path.write_text(head + "\n".join(body.to_list()) + "\n")
    assert path.stat().st_size > 60e6
    # (Proof that the file is big enough to be split between threads: read without
    # preserve_insertion_order, its rows do come out of order.)
    probe = duckdb.connect()
    if probe.execute("SELECT current_setting('threads')").fetchall()[0][0] > 1:
        probe.execute("SET preserve_insertion_order = false")
        probe.execute(f"CREATE TABLE t AS SELECT data.value AS v FROM read_json('{path}', "
                      "format='newline_delimited', columns={'metric': 'VARCHAR', 'type': 'VARCHAR', "
                      "'data': 'STRUCT(value DOUBLE)'})")
        assert probe.execute("SELECT count(*) FILTER (WHERE rowid + 2 <> v) FROM t").fetchall()[0][0] > 0
    probe.close()
    # WHEN ingested THEN every point's seq is its line number, i.e. its value
    sid = ingest_path(store, path).source_id
    n_rows, wrong = store.con.execute(
        "SELECT count(*), count(*) FILTER (WHERE seq <> value) FROM k6_points WHERE source_id = ?", [sid]
    ).fetchall()[0]
    assert (n_rows, wrong) == (n, 0)


# -- CSV ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("csv", "ndjson", "time_format"), [
    ("main_kolkata.csv", "main_kolkata.ndjson.gz", "rfc3339"),
    ("main_small.csv", "main_small.ndjson", "unix"),
])
def test_csv_rows_are_the_ndjson_points_in_the_same_order(csv: str, ndjson: str, time_format: str,
                                                          store: Store) -> None:
    c_src = ingest_path(store, FIXTURES / csv)
    c = points(store, c_src.source_id)
    n = points(store, ingest_path(store, FIXTURES / ndjson).source_id)
    assert json.loads(store.source(c_src.source_id)["meta"])["time_format"] == time_format
    assert c["seq"].to_list() == list(range(2, len(n) + 2))  # line numbers after the header
    assert c["metric"].to_list() == n["metric"].to_list()
    if time_format == "rfc3339":
        assert c["time_ns"].to_list() == n["time_ns"].to_list()
        assert c["utc_offset_min"].to_list() == n["utc_offset_min"].to_list()
    else:  # whole seconds, no zone
        assert c["time_ns"].to_list() == [t // 10**9 * 10**9 for t in n["time_ns"]]
        assert c["utc_offset_min"].null_count() == len(c)
    # Built-in metrics survive %f exactly; payload_parse_ms has more than 6 decimals.
    same = [a == b for a, b, m in zip(c["value"], n["value"], n["metric"]) if m != "payload_parse_ms"]
    assert all(same)
    # Tags: the same pairs, except that an empty cell (the root group's "") cannot be kept.
    for ct, nt, cm, nm in zip(c["tags"], n["tags"], c["metadata"], n["metadata"]):
        assert json.loads(ct) == {k: v for k, v in json.loads(nt).items() if v != ""}
        assert (json.loads(cm) if cm else None) == (json.loads(nm) if nm else None)


@pytest.mark.parametrize(("unit", "digits"), [("unix_milli", 13), ("unix_micro", 16), ("unix_nano", 19)])
def test_csv_integer_times_of_every_precision(unit: str, digits: int, tmp_path: Path, store: Store) -> None:
    header = ("metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,method,name,"
              "proto,scenario,service,status,subproto,tls_version,url,extra_tags,metadata")
    ns = 1_795_342_113_567_150_809
    stamp = str(ns // 10 ** (19 - digits))
    path = tmp_path / "t.csv"
    path.write_text(f"{header}\nvus,{stamp},3.000000,,,,,,,,,,,,,,,testid=x&env=local,vu=1&iter=2\n")
    sid = ingest_path(store, path).source_id
    row = points(store, sid).to_dicts()[0]
    assert row["time_ns"] == int(stamp) * 10 ** (19 - digits)
    assert json.loads(store.source(sid)["meta"])["time_format"] == unit
    assert (json.loads(row["tags"]), json.loads(row["metadata"])) == ({"env": "local", "testid": "x"},
                                                                       {"iter": "2", "vu": "1"})


# -- summary files ---------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "variant"), [
    ("main_small.summary.json", "summary-export"), ("summary_small.summary.json", "summary-export"),
    ("summary_small.handle.json", "handleSummary"),
])
def test_summary_thresholds_are_stored_as_passed_whatever_the_file_polarity(name: str, variant: str,
                                                                            store: Store) -> None:
    stem = name.split(".")[0]
    oracle = expected(f"{stem}.ndjson")
    sid = ingest_path(store, FIXTURES / name).source_id
    meta = json.loads(store.source(sid)["meta"])
    assert meta["variant"] == variant
    got: dict[str, dict[str, bool]] = {}
    for r in store.sql("SELECT metric, expr, passed FROM k6_thresholds WHERE source_id = ?", [sid]).to_dicts():
        got.setdefault(r["metric"], {})[r["expr"]] = r["passed"]
    assert got == oracle["thresholds"]
    checks = {r["path"]: {"passes": r["passes"], "fails": r["fails"]}
              for r in store.sql("SELECT * FROM k6_checks WHERE source_id = ?", [sid]).to_dicts()}
    assert checks == oracle["checks_by_path"]
    if variant == "handleSummary":
        assert meta["test_run_duration_ms"] == oracle["test_run_duration_ms"]
        assert "p(99.9)" in meta["summary_trend_stats"]
    else:
        assert "test_run_duration_ms" not in meta


def test_summary_values_are_k6s_numbers_and_rate_value_becomes_rate(store: Store) -> None:
    sid = ingest_path(store, FIXTURES / "main_small.summary.json").source_id
    raw = json.loads((FIXTURES / "main_small.summary.json").read_text())["metrics"]
    rows = store.sql("SELECT metric, stat, value FROM k6_summary_values WHERE source_id = ?", [sid]).to_dicts()
    got = {(r["metric"], r["stat"]): r["value"] for r in rows}
    want = {(m, "rate" if s == "value" and "passes" in v else s): x
            for m, v in raw.items() for s, x in v.items() if s != "thresholds"}
    assert got == want
    types = dict(store.con.execute(
        "SELECT metric, type FROM k6_summary_metrics WHERE source_id = ?", [sid]).fetchall())
    assert {m: types[m] for m in ("http_req_duration", "http_reqs", "checks", "vus", "payload_parse_ms",
                                  "checks{check_kind:strict}")} == {
        "http_req_duration": "trend", "http_reqs": "counter", "checks": "rate", "vus": "gauge",
        "payload_parse_ms": "trend", "checks{check_kind:strict}": "rate"}


# -- refusals ------------------------------------------------------------------------------------

def _lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines(keepends=True)


def _write(name: str, text: str | bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path
    return make


def _ndjson_with(line_no: int, bad: str) -> str:
    lines = _lines("main_small.ndjson")
    return "".join(lines[: line_no - 1] + [bad + "\n"] + lines[line_no - 1:])


_CSV = _lines("main_kolkata.csv")
_GZ = (FIXTURES / "main_kolkata.ndjson.gz").read_bytes()
_POINT = '{"metric":"http_reqs","type":"Point","data":{"time":"2026-11-22T10:08:33.5Z","value":%s,"tags":{}}}'

BAD_CASES: dict[str, tuple[Callable[[Path], Path], str, list[str]]] = {
    "json that is not k6": (_write("foo.json", '{"foo": 1}\n'), "not a format perflab reads", []),
    "a json array": (_write("array.json", "[1, 2, 3]\n"), "not a format perflab reads", []),
    "not k6, forced as a summary": (_write("foo2.json", '{"foo": 1}'), "not a k6 summary",
                                    ["--kind", "k6-summary"]),
    "not k6, forced as NDJSON": (_write("foo3.json", '{"foo": 1}\n'), "line 1: not a k6 line", ["--kind", "k6"]),
    "array forced as NDJSON": (_write("arr.ndjson", "[1, 2]\n"), "line 1:", ["--kind", "k6"]),
    "corrupt line in the middle": (_write("corrupt.ndjson", _ndjson_with(1001, '{"metric":"http_reqs","ty')),
                                   "line 1001: not valid JSON", []),
    "garbage line in the middle": (_write("garbage.ndjson", _ndjson_with(700, "garbage")),
                                   "line 700: not valid JSON", []),
    "truncated NDJSON": (_write("cut.ndjson", "".join(_lines("main_small.ndjson")[:900])[:-40]),
                         "line 900", []),
    "value that is not a number": (_write("value.ndjson", _ndjson_with(50, _POINT % '"fast"')), "line 50", []),
    "time that is not a time": (_write("time.ndjson", _ndjson_with(60, _POINT.replace("2026-11-22T10:08:33.5Z",
                                                                                        "yesterday") % "1")),
                                "line 60: time 'yesterday'", []),
    "point without a value": (_write("novalue.ndjson", _ndjson_with(70, _POINT.replace(',"value":%s', ""))),
                              "line 70: k6 Point line without its time/value", []),
    "CSV with the wrong header": (_write("wrong.csv", "metric_name,timestamp,metric_value,status\nhttp_reqs,1,1,200\n"),
                                  "not a k6 CSV header", []),
    "CSV that is not k6's": (_write("other.csv", "name,time,value\na,1,2\n"), "not a format perflab reads", []),
    "CSV forced with another header": (_write("other2.csv", "name,time,value\na,1,2\n"), "not a k6 CSV header",
                                       ["--kind", "k6-csv"]),
    "CSV row with a bad value": (_write("badvalue.csv", "".join(_CSV[:40] + [_CSV[40].replace(",1.000000,", ",one,", 1)]
                                                                + _CSV[41:])),
                                 "line 41: not a k6 sample", []),
    "CSV row with too many cells": (_write("cells.csv", "".join(_CSV[:30] + [_CSV[30].rstrip("\n") + ",x,y\n"]
                                                                + _CSV[31:])),
                                    "line 31: not a valid k6 CSV row (20 cells where the header has 19)", []),
    "truncated ndjson.gz": (_write("cut.ndjson.gz", _GZ[: len(_GZ) // 2]), "truncated gzip", []),
    "empty file": (_write("empty.ndjson", b""), "empty file", []),
    "summary with a text value": (
        _write("text.json", json.dumps({"root_group": {}, "metrics": {"http_reqs": {"count": "many", "rate": 1}}})),
        "metric 'http_reqs': count is 'many', not a number", []),
}


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, Any]:
    """A store that already holds k6 data, so "unchanged" means something."""
    store_path = tmp_path / "seeded.duckdb"
    with Store(store_path) as s:
        ingest_path(s, FIXTURES / "summary_small.ndjson", run_id="r1")
        ingest_path(s, FIXTURES / "summary_small.handle.json", run_id="r1")
        return store_path, store_fingerprint(s)


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_file_exits_2_with_one_line_and_leaves_the_store_unchanged(
    case: str, tmp_path: Path, seeded: tuple[Path, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    make, phrase, extra = BAD_CASES[case]
    store_path, before = seeded
    assert_ingest_refused(store_path, before, make(tmp_path), phrase, extra, capsys)


def test_bad_files_as_a_user_runs_them(tmp_path: Path, seeded: tuple[Path, Any]) -> None:
    store_path, before = seeded
    for case, verb in (("corrupt line in the middle", "ingest"), ("truncated ndjson.gz", "k6"),
                       ("CSV with the wrong header", "k6"), ("json that is not k6", "k6")):
        make, phrase, _ = BAD_CASES[case]
        path = make(tmp_path)
        result = run_cli(verb, str(path), store=store_path)
        assert_refused(result.returncode, result.stderr, path, phrase)
        assert "Traceback" not in result.stderr
    with Store(store_path) as s:
        assert store_fingerprint(s) == before


def test_same_content_twice_is_one_source(store: Store, tmp_path: Path) -> None:
    first = ingest_path(store, FIXTURES / "main_small.ndjson")
    copy = tmp_path / "again.ndjson"
    copy.write_bytes((FIXTURES / "main_small.ndjson").read_bytes())
    second = ingest_path(store, copy)
    assert (second.new, second.source_id) == (False, first.source_id)
    assert store.con.execute("SELECT count(DISTINCT source_id) FROM k6_points").fetchall()[0][0] == 1
