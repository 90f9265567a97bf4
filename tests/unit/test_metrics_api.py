"""Prometheus HTTP API answers (query_range matrix, query vector and scalar) as files.

GIVEN JSON shaped as Prometheus's /api/v1/query(_range) answers, WHEN ingested, THEN each
point is a row named by __name__ (or by the recorded query, or "(expression)"), with its
exact time and value; an error answer is refused with Prometheus's own text. (The same
format against a real Prometheus: tests/integration/test_prometheus_server.py.)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from perflab.ingest import detect, ingest_path
from perflab.ingest.prometheus_pull import default_step, parse_step, with_query
from perflab.store import Store
from tests.helpers import assert_ingest_refused, store_fingerprint

MATRIX = {"status": "success", "data": {"resultType": "matrix", "result": [
    {"metric": {"__name__": "http_requests_total", "job": "api", "code": "200"},
     "values": [[1767225600, "10"], [1767225601.5, "12"], [1767225603.001, "NaN"], [1767225604, "+Inf"]]},
    {"metric": {"job": "api"}, "values": [[1767225600, "0.1"]]},
]}}


def write(tmp: Path, name: str, doc: Any) -> Path:
    p = tmp / name
    p.write_text(json.dumps(doc, separators=(",", ":")))
    return p


def rows(store: Store, source_id: int) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in store.con.execute(
        "SELECT epoch_us(t), name, family, type, CAST(labels AS VARCHAR), value FROM metric_samples "
        "WHERE source_id = ? ORDER BY name, t", [source_id]).fetchall()]


def test_a_matrix_is_every_point_named_by_its_name_label(tmp_path: Path, store: Store) -> None:
    p = write(tmp_path, "range.json", MATRIX)
    assert detect(p)[0] == "prometheus-api"
    result = ingest_path(store, p, run_id="r")
    got = rows(store, result.source_id)
    assert got[0] == (1767225600000000, "(expression)", "(expression)", "untyped", '{"job":"api"}', 0.1)
    named = got[1:]
    assert [(t, v) for t, *_, v in named][:2] == [(1767225600000000, 10.0), (1767225601500000, 12.0)]
    assert named[2][0] == 1767225603001000 and math.isnan(named[2][-1])
    assert named[3][-1] == math.inf
    assert {r[1:5] for r in named} == {("http_requests_total", "http_requests_total", "untyped",
                                         '{"code":"200","job":"api"}')}
    assert result.stats == {"samples": 5, "series": 2, "result": "matrix"}


def test_a_pulled_file_names_a_nameless_series_by_its_query(tmp_path: Path, store: Store) -> None:
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"job": "api"}, "value": [1767225600.25, "3.5"]}]}}).encode()
    p = tmp_path / "pulled.json"
    p.write_bytes(with_query(body, {"url": "http://127.0.0.1:9090", "query": "rate(x[1m])", "start": "1",
                                    "end": "2", "step": "1.0"}))
    result = ingest_path(store, p)
    assert rows(store, result.source_id) == [(1767225600250000, "rate(x[1m])", "rate(x[1m])", "untyped",
                                              '{"job":"api"}', 3.5)]
    assert json.loads(store.source(result.source_id)["meta"])["query"] == "rate(x[1m])"


def test_a_scalar_is_one_sample(tmp_path: Path, store: Store) -> None:
    p = write(tmp_path, "scalar.json", {"status": "success", "data": {"resultType": "scalar",
                                                                      "result": [1767225600, "42"]}})
    assert rows(store, ingest_path(store, p).source_id) == [(1767225600000000, "(expression)", "(expression)",
                                                             "untyped", "{}", 42.0)]


def test_native_histogram_points_are_skipped_and_counted(tmp_path: Path, store: Store) -> None:
    doc = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": "a"}, "value": [1767225600, "1"]},
        {"metric": {"__name__": "h"}, "histogram": [1767225600, {"count": "2", "sum": "3", "buckets": []}]}]}}
    result = ingest_path(store, write(tmp_path, "nh.json", doc))
    assert [r[1] for r in rows(store, result.source_id)] == ["a"]
    assert json.loads(store.source(result.source_id)["meta"])["skipped_native_histogram_points"] == 1


def test_step_defaults_and_durations() -> None:
    assert default_step(0, 3600 * 10**6) == 1.0
    assert default_step(0, 86_400 * 10**6) == 8.0  # 86400 / 11000 → 7.85 → 8 s
    assert [parse_step(s) for s in ("15", "15s", "1m", "500ms", "0.5", "2h")] == [15, 15, 60, 0.5, 0.5, 7200]
    from perflab.errors import PerflabError

    for bad in ("0", "-1", "fast", "1x", "nan"):
        with pytest.raises(PerflabError):
            parse_step(bad)


# -- bad input ------------------------------------------------------------------------------------------

BAD: dict[str, tuple[Any, str]] = {
    "an error answer": ({"status": "error", "errorType": "bad_data",
                         "error": 'invalid parameter "query": 1:5: parse error: unexpected end of input'},
                        'Prometheus answered an error (bad_data): invalid parameter "query": 1:5: parse error'),
    "a string result": ({"status": "success", "data": {"resultType": "string", "result": [1, "hi"]}},
                        "result type 'string': perflab reads matrix, vector and scalar results"),
    "a value that is no number": ({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": "up"}, "value": [1767225600, "lots"]}]}}, "up: value 'lots' is not a number"),
    "a time that is no number": ({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "up"}, "values": [["soon", "1"]]}]}}, "up: time 'soon' is not unix seconds"),
    "labels that are not strings": ({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": "up", "n": 1}, "value": [1767225600, "1"]}]}},
        'result 1: "metric" is not an object of label values'),
    "cut short": ('{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]',
                  "not valid JSON"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_answers_are_refused_and_leave_the_store_unchanged(case: str, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    store_path = tmp_path / "s.duckdb"
    with Store(store_path) as s:
        ingest_path(s, write(tmp_path, "seed.json", MATRIX))
        before = store_fingerprint(s)
    doc, phrase = BAD[case]
    p = tmp_path / "bad.json"
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    assert_ingest_refused(store_path, before, p, phrase, ["--kind", "prometheus-api"] if isinstance(doc, str) else [],
                          capsys)


def test_too_many_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": "up", "i": str(i)}, "value": [1767225600, "1"]} for i in range(30)]}}
    store_path = tmp_path / "s.duckdb"
    with Store(store_path) as s:
        before = store_fingerprint(s)
    assert_ingest_refused(store_path, before, write(tmp_path, "many.json", doc), "more than 20 series in one file",
                          ["--max-series", "20"], capsys)
