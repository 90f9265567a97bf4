"""Go expvar JSON and process CPU/RSS CSV ingest.

GIVEN what Go's expvar handler wrote (tests/fixtures/metrics, see its README) and process
samples as a shell loop or pidstat would record them, WHEN ingested, THEN every numeric var
is a flattened, untyped sample (arrays, strings skipped; booleans 0/1), and the CSV becomes
process_cpu_seconds_total and process_resident_memory_bytes; bad input is refused with one
line naming the line, and the store is left as it was.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perflab.ingest import detect, ingest_path
from perflab.store import Store
from tests.helpers import assert_ingest_refused, store_fingerprint

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "metrics"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def values(store: Store, source_id: int, name: str) -> list[tuple[int | None, float]]:
    return [(t, v) for t, v in store.con.execute(
        "SELECT epoch_us(t), value FROM metric_samples WHERE source_id = ? AND name = ? ORDER BY t",
        [source_id, name]).fetchall()]


def names(store: Store, source_id: int) -> set[str]:
    return {r[0] for r in store.con.execute("SELECT DISTINCT name FROM metric_samples WHERE source_id = ?",
                                            [source_id]).fetchall()}


# -- expvar ---------------------------------------------------------------------------------------------

def test_one_object_as_go_serves_it(store: Store) -> None:
    path = FIXTURES / "debug_vars.json"
    assert detect(path)[0] == "expvar"
    result = ingest_path(store, path)
    got = names(store, result.source_id)
    assert {"requests_total", "errors.pool_timeout", "errors.upstream_5xx", "in_flight", "healthy",
            "pool.in_use", "pool.idle", "pool.wait.count", "pool.wait.seconds",
            "memstats.HeapInuse", "memstats.NumGC", "memstats.PauseTotalNs"} <= got
    # arrays (cmdline, memstats.PauseNs/PauseEnd/BySize and what is inside them) and strings are skipped
    assert not {n for n in got if n.startswith(("cmdline", "build", "memstats.PauseNs", "memstats.PauseEnd",
                                                "memstats.BySize"))}
    assert values(store, result.source_id, "requests_total") == [(None, 100.0)]
    assert values(store, result.source_id, "healthy") == [(None, 1.0)]
    assert values(store, result.source_id, "pool.wait.seconds") == [(None, 0.25)]
    doc = json.loads(path.read_text())
    assert values(store, result.source_id, "memstats.HeapInuse") == [(None, float(doc["memstats"]["HeapInuse"]))]
    kinds = store.con.execute("SELECT DISTINCT type, family = name, CAST(labels AS VARCHAR) FROM metric_samples "
                              "WHERE source_id = ?", [result.source_id]).fetchall()
    assert kinds == [("untyped", True, "{}")]


def test_a_series_takes_each_objects_time(store: Store) -> None:
    path = FIXTURES / "debug_vars_series.ndjson"
    assert detect(path)[0] == "expvar"
    result = ingest_path(store, path, run_id="go-run")
    times = [(T0 + i) * 10**6 for i in range(5)]
    assert values(store, result.source_id, "requests_total") == list(zip(times, [110.0, 130, 160, 200, 250],
                                                                        strict=True))
    assert [v for _, v in values(store, result.source_id, "errors.pool_timeout")] == [2, 3, 5, 8, 12]
    assert "time" not in names(store, result.source_id)
    assert result.stats["objects"] == 5


@pytest.mark.parametrize(("key", "stamp", "want_us"), [
    ("timestamp", f"{T0}.5", T0 * 10**6 + 500_000),
    ("ts", T0 + 2, (T0 + 2) * 10**6),
    ("time", "2026-01-01T01:00:00+01:00", T0 * 10**6),
])
def test_the_time_key_may_be_time_timestamp_or_ts(key: str, stamp: Any, want_us: int, tmp_path: Path,
                                                  store: Store) -> None:
    p = tmp_path / "vars.ndjson"
    p.write_text("\n".join(json.dumps({key: stamp, "cmdline": ["x"], "memstats": {"NumGC": i}, "up": True})
                           for i in range(2)) + "\n")
    result = ingest_path(store, p)
    assert values(store, result.source_id, "memstats.NumGC")[0] == (want_us, 0.0)
    assert names(store, result.source_id) == {"memstats.NumGC", "up"}


# -- process samples -----------------------------------------------------------------------------------

def test_percent_of_one_core_becomes_a_cpu_seconds_counter(tmp_path: Path, store: Store) -> None:
    p = tmp_path / "proc.csv"
    p.write_text("time,cpu_percent_of_one_core,rss_bytes\n"
                 f"{T0},50,1000\n{T0 + 1},250,2000\n2026-01-01T00:00:03Z,100,3000\n")
    assert detect(p)[0] == "process-samples"
    result = ingest_path(store, p)
    cpu = values(store, result.source_id, "process_cpu_seconds_total")
    # the first sample's percent covers time before the file: the counter starts at 0 there
    assert cpu == [(T0 * 10**6, 0.0), ((T0 + 1) * 10**6, 2.5), ((T0 + 3) * 10**6, 4.5)]
    assert values(store, result.source_id, "process_resident_memory_bytes") == [
        (T0 * 10**6, 1000.0), ((T0 + 1) * 10**6, 2000.0), ((T0 + 3) * 10**6, 3000.0)]
    kinds = store.con.execute("SELECT DISTINCT name, family, type FROM metric_samples WHERE source_id = ? "
                              "ORDER BY name", [result.source_id]).fetchall()
    assert kinds == [("process_cpu_seconds_total", "process_cpu_seconds", "counter"),
                     ("process_resident_memory_bytes", "process_resident_memory_bytes", "gauge")]


def test_cpu_seconds_total_is_stored_as_it_is_and_nan_kept(tmp_path: Path, store: Store) -> None:
    p = tmp_path / "proc2.csv"
    p.write_text(f"time, cpu_seconds_total, rss_bytes\r\n{T0},1.5,100\r\n{T0 + 1},2.25,NaN\r\n")
    result = ingest_path(store, p)
    assert values(store, result.source_id, "process_cpu_seconds_total") == [(T0 * 10**6, 1.5),
                                                                            ((T0 + 1) * 10**6, 2.25)]
    assert math.isnan(values(store, result.source_id, "process_resident_memory_bytes")[1][1])


# -- bad input ------------------------------------------------------------------------------------------

def _write(name: str, text: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        p = tmp / name
        p.write_text(text)
        return p
    return make


_SERIES = (FIXTURES / "debug_vars_series.ndjson").read_text().splitlines(keepends=True)
_HEAD = "time,cpu_percent_of_one_core,rss_bytes\n"
BAD_CASES: dict[str, tuple[Callable[[Path], Path], str, list[str]]] = {
    "expvar corrupt line": (_write("cut.ndjson", "".join(_SERIES[:3]) + _SERIES[3][:200] + "\n" + _SERIES[4]),
                            "line 4: not valid JSON", []),
    "expvar line that is no object": (_write("arr.ndjson", "".join(_SERIES[:2]) + "[1, 2]\n"),
                                      "line 3: not a JSON object (a JSON array)", []),
    "expvar line without a time": (_write("notime.ndjson", "".join(_SERIES[:2]) + '{"cmdline":[],"memstats":{}}\n'),
                                   "line 3: no time key (time, timestamp, ts)", []),
    "expvar NaN time": (_write("nantime.ndjson", _SERIES[0] + _SERIES[1].replace('"time":"2026-01-01T00:00:01Z"',
                                                                                 '"time":"NaN"')),
                        "line 2: time 'NaN' is not RFC 3339", []),
    "expvar time without an offset": (_write("local.ndjson", _SERIES[0].replace("00:00:00Z", "00:00:00") + _SERIES[1]),
                                      "line 1: time '2026-01-01T00:00:00' is not RFC 3339", []),
    "expvar too many names": (_write("wide.json", json.dumps({"memstats": {},
                                                              "hits": {f"u{i}": i for i in range(30)}})),
                              "more than 20 names in one file (30 seen", ["--max-series", "20"]),
    "process NaN time": (_write("nan.csv", f"{_HEAD}{T0},1,1\nNaN,1,1\n"),
                         "line 3: time 'NaN' is not RFC 3339 (with its offset) or unix seconds", []),
    "process time going back": (_write("back.csv", f"{_HEAD}{T0},1,1\n{T0 + 2},1,1\n{T0 + 1},1,1\n"),
                                f"line 4: time '{T0 + 1}' is not after the previous sample's", []),
    "process value no number": (_write("word.csv", f"{_HEAD}{T0},1,1\n{T0 + 1},1,big\n"),
                                "line 3: rss_bytes 'big' is not a number", []),
    "process NaN percent": (_write("nanpct.csv", f"{_HEAD}{T0},1,1\n{T0 + 1},NaN,1\n"),
                            "line 3: cpu_percent_of_one_core 'NaN' cannot be integrated", []),
    "process extra cell": (_write("cells.csv", f"{_HEAD}{T0},1,1\n{T0 + 1},1,1,9\n"),
                           "line 3: not a process samples row", []),
    "process header only": (_write("header.csv", _HEAD), "a header and no rows", []),
}


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, Any]:
    store_path = tmp_path / "seeded.duckdb"
    with Store(store_path) as s:
        ingest_path(s, FIXTURES / "debug_vars_series.ndjson", run_id="r1")
        return store_path, store_fingerprint(s)


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_exits_2_with_one_line_and_leaves_the_store_unchanged(
    case: str, tmp_path: Path, seeded: tuple[Path, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    make, phrase, extra = BAD_CASES[case]
    store_path, before = seeded
    assert_ingest_refused(store_path, before, make(tmp_path), phrase, extra, capsys)


def test_a_role_reads_one_source_when_two_measure_the_same_name(tmp_path: Path, store: Store) -> None:
    # GIVEN a run with two files that both hold process_cpu_seconds_total, sampled half a second
    # apart (a /metrics scrape and a process sampler, as the orders collection writes them)
    from perflab.analysis import roles

    a, b = tmp_path / "a_proc.csv", tmp_path / "b_proc.csv"
    a.write_text("time,cpu_seconds_total,rss_bytes\n" + "".join(f"{T0 + i},{0.03 * i},1\n" for i in range(10)))
    b.write_text("time,cpu_seconds_total,rss_bytes\n" + "".join(f"{T0 + i}.5,{5 + 0.03 * i},1\n" for i in range(10)))
    for p in (a, b):
        ingest_path(store, p, run_id="r")
    # WHEN the cpu_seconds role is read THEN it is one file's counter: 3 % of a core, not the two
    # interleaved (which read as a 5 s jump every half second)
    steps = roles.counter_steps(roles.load(store, "r").signals, "cpu_seconds")
    assert steps.height == 9
    assert (steps["delta"] / steps["dt_s"]).to_list() == pytest.approx([0.03] * 9)
