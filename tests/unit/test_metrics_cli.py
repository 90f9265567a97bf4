"""`perflab ingest` for what a user brings: a whole folder, role mappings, the pull options.

GIVEN the folder a Go service's owner brings from a load test (k6 NDJSON and summary, five
profiles, an expvar series, process samples, a scrape series, a Prometheus API answer, two
pg_stat snapshots, and a host.csv perflab does not read), WHEN `perflab ingest --run R DIR`
runs, THEN 13 files are ingested and host.csv is skipped with one line, exit 0.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from perflab.cli import main
from perflab.store import Store
from tests.helpers import assert_refused, store_fingerprint

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PROFILES = ["small_loginstorm.cpu.pb.gz", "small_loginstorm.heap.pb.gz", "small_falseidle.block.pb.gz",
            "small_falseidle.goroutine.pb.gz", "small_falseidle.mutex.pb.gz"]


def user_folder(tmp_path: Path) -> Path:
    d = tmp_path / "loadtest"
    (d / "profiles").mkdir(parents=True)
    shutil.copy(FIXTURES / "k6" / "main_small.ndjson", d / "k6.ndjson")
    shutil.copy(FIXTURES / "k6" / "main_small.summary.json", d / "summary.json")
    for name in PROFILES:
        shutil.copy(FIXTURES / "pprof" / "generated" / name, d / "profiles" / name)
    shutil.copy(FIXTURES / "metrics" / "debug_vars_series.ndjson", d / "vars.ndjson")
    (d / "process.csv").write_text("time,cpu_percent_of_one_core,rss_bytes\n"
                                   "1767225600,80,1000000\n1767225601,95,1100000\n")
    reg = CollectorRegistry()
    c = Counter("requests", "Requests.", registry=reg)
    scrapes = []
    for i in range(3):
        c.inc(10)
        scrapes.append(f"# scrape_timestamp {1767225600 + i}\n".encode() + generate_latest(reg))
    (d / "metrics.prom").write_bytes(b"".join(scrapes))
    (d / "range.json").write_text(json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "up", "job": "orders"}, "values": [[1767225600, "1"], [1767225601, "1"]]}]}}))
    for when in ("before", "after"):
        shutil.copy(FIXTURES / "pg" / f"pg_stat_database_{when}.csv", d / f"pg_stat_database_{when}.csv")
    (d / "host.csv").write_text("hostname,cores\nbox,8\n")
    (d / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden: not even looked at
    return d


def test_a_whole_folder_skips_what_perflab_does_not_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = user_folder(tmp_path)
    store_path = tmp_path / "s.duckdb"
    code = main(["--store", str(store_path), "ingest", "--run", "go-orders", str(folder)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err.splitlines() == [f"skipped {folder / 'host.csv'}: not a format perflab reads"]
    assert out.splitlines()[-1] == "13 ingested, 0 already stored, 1 skipped, 0 failed (14 files)"
    with Store(store_path) as s:
        kinds = dict(s.con.execute("SELECT kind, count(*) FROM sources WHERE run_id = 'go-orders' GROUP BY kind")
                     .fetchall())
    assert kinds == {"k6": 1, "k6-summary": 1, "pprof": 5, "expvar": 1, "process-samples": 1, "prometheus": 1,
                     "prometheus-api": 1, "pgstat": 2}
    # again: everything is already stored, which is a success too
    given = [str(p) for p in sorted(folder.iterdir()) if not p.name.startswith(".")]  # profiles/ is a folder
    assert main(["--store", str(store_path), "ingest", "--run", "go-orders", *given]) == 0
    assert "0 ingested, 13 already stored, 1 skipped" in capsys.readouterr().out


def test_nothing_readable_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "b.txt").write_text("hello\n")
    store_path = tmp_path / "s.duckdb"
    Store(store_path).close()
    with Store(store_path) as s:
        before = store_fingerprint(s)
    assert main(["--store", str(store_path), "ingest", str(tmp_path / "a.csv"), str(tmp_path / "b.txt")]) == 2
    _, err = capsys.readouterr()
    assert [line.split(":")[0] for line in err.splitlines()] == [f"skipped {tmp_path / 'a.csv'}",
                                                                 f"skipped {tmp_path / 'b.txt'}"]
    with Store(store_path) as s:
        assert store_fingerprint(s) == before


def test_a_bad_file_among_many_is_reported_and_the_rest_read(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.prom"
    good.write_text("up 1\n")
    bad = tmp_path / "bad.prom"
    bad.write_text("# TYPE up gauge\nup{ 1\n")
    assert main(["--store", str(tmp_path / "s.duckdb"), "ingest", str(bad), str(good)]) == 2
    out, err = capsys.readouterr()
    assert len(err.splitlines()) == 1 and err.startswith(f"perflab: {bad}: line 2: not a valid exposition line (")
    assert "1 ingested, 0 already stored, 0 skipped, 1 failed" in out


def test_a_single_unreadable_file_is_refused_as_before(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = tmp_path / "host.csv"
    host.write_text("hostname,cores\nbox,8\n")
    code = main(["--store", str(tmp_path / "s.duckdb"), "ingest", str(host)])
    assert_refused(code, capsys.readouterr().err, host, "not a format perflab reads (")


# -- roles -----------------------------------------------------------------------------------------------

def roles(store_path: Path) -> list[tuple[str, str, str]]:
    with Store(store_path) as s:
        return [tuple(r) for r in s.con.execute("SELECT * FROM run_roles ORDER BY run_id, role").fetchall()]


def test_roles_with_files_are_recorded_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_path = tmp_path / "s.duckdb"
    vars_file = FIXTURES / "metrics" / "debug_vars_series.ndjson"
    code = main(["--store", str(store_path), "ingest", "--run", "r1", "--role", "requests=requests_total",
                 "--role", 'errors=errors.pool_timeout', "--role",
                 'downstream_calls=report_dependency_calls_total{target="payments"}', str(vars_file)])
    assert code == 0, capsys.readouterr().err
    assert "run r1: downstream_calls = report_dependency_calls_total{target=\"payments\"}" in capsys.readouterr().out
    assert roles(store_path) == [("r1", "downstream_calls", 'report_dependency_calls_total{target="payments"}'),
                                 ("r1", "errors", "errors.pool_timeout"), ("r1", "requests", "requests_total")]
    # roles alone (no files) map or re-map a role of a run
    assert main(["--store", str(store_path), "ingest", "--run", "r1", "--role", "requests=http_requests_total"]) == 0
    assert ("r1", "requests", "http_requests_total") in roles(store_path)
    assert len(roles(store_path)) == 3


@pytest.mark.parametrize(("args", "phrase"), [
    (["--run", "r1", "--role", "qps=requests_total"],
     "--role 'qps=requests_total': unknown role 'qps'; one of: requests, errors, in_flight, downstream_calls"),
    (["--run", "r1", "--role", "requests"], "--role 'requests': give ROLE=METRIC"),
    (["--run", "r1", "--role", 'requests=x{a=1}'], "--role 'requests=x{a=1}': 'x{a=1}': cannot read the matcher"),
    (["--role", "requests=requests_total"], "--role needs --run RUN_ID"),
    (["--query", "up"], "--query goes with --prometheus URL"),
    (["--prometheus", "http://127.0.0.1:9"], "--prometheus needs --query, --start and --end"),
    ([], "ingest: give PATH..., --pg DSN, --prometheus URL or --run RUN --role ROLE=METRIC"),
])
def test_wrong_options_are_one_line_and_change_nothing(args: list[str], phrase: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    store_path = tmp_path / "s.duckdb"
    Store(store_path).close()
    with Store(store_path) as s:
        before = store_fingerprint(s)
    code = main(["--store", str(store_path), "ingest", *args])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and phrase in err, err
    with Store(store_path) as s:
        assert store_fingerprint(s) == before


def test_an_unreachable_prometheus_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    url = f"http://127.0.0.1:{port}"
    code = main(["--store", str(tmp_path / "s.duckdb"), "ingest", "--prometheus", url, "--query", "up",
                 "--start", "2026-01-01T00:00:00Z", "--end", "1767225660"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"perflab: {url}: cannot reach Prometheus (") and len(err.splitlines()) == 1
    code = main(["--store", str(tmp_path / "s.duckdb"), "ingest", "--prometheus", url, "--query", "up",
                 "--start", "yesterday", "--end", "1767225660"])
    assert "--start 'yesterday': 'yesterday' is not RFC 3339" in capsys.readouterr().err and code == 2
