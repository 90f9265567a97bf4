"""A profile's value per label value equals `go tool pprof -tags` (oracles in
tests/fixtures/pprof/tags/), and CPU per request by endpoint divides it by k6's requests."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from perflab.analysis.report_sections import EndpointCpu, Unavailable
from perflab.analysis.run import Run
from perflab.analysis.run_report import endpoint_cpu_section
from perflab.analysis.tag_cost import cpu_per_request, k6_requests, name_path, route_key, tag_values
from perflab.errors import PerflabError
from perflab.ingest import ingest_path
from perflab.jsonable import to_jsonable
from perflab.report.document import Table
from perflab.report.loadtest_document import _endpoint_cpu_blocks
from perflab.store import Store
from tests.helpers import run_cli

PPROF = Path(__file__).resolve().parent.parent / "fixtures" / "pprof"
TAGS = PPROF / "tags"
LOGIN_CPU = PPROF / "generated" / "small_loginstorm.cpu.pb.gz"
SAMPLE_CPU = PPROF / "public" / "google-pprof" / "sample.cpu"
# small_loginstorm.cpu.pb.gz's own time_nanos and duration_nanos.
PROFILE_START_NS, PROFILE_DURATION_NS = 1795344411401509274, 2253940193
_KEY = re.compile(r"^\s*(\S+): Total (-?\d+)[a-z]* of (-?\d+)[a-z]* \(\s*([\d.]+)%\)$")
_VALUE = re.compile(r"^\s+(-?\d+)[a-z]* \(\s*([\d.]+)%\): (.*)$")


def oracle(path: Path) -> dict[str, dict[str, Any]]:
    """pprof's -tags output: key → {"total", "of", "values": {value: amount}}."""
    out: dict[str, dict[str, Any]] = {}
    key = None
    for line in path.read_text().splitlines():
        if m := _KEY.match(line):
            key = m[1]
            out[key] = {"total": int(m[2]), "of": int(m[3]), "values": {}}
        elif (m := _VALUE.match(line)) and key is not None:
            out[key]["values"][m[3]] = int(m[1])
    return out


def _cases() -> list[tuple[Path, int, Path]]:
    cases = []
    for line in (TAGS / "cmd.txt").read_text().splitlines():
        if line.startswith("go tool pprof"):
            idx = int(re.search(r"-sample_index=(\d+)", line)[1])  # type: ignore[index]
            prof, out = re.search(r"(\S+) > (\S+)$", line).groups()  # type: ignore[union-attr]
            cases.append((PPROF / prof, idx, PPROF / out))
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = Store(tmp_path_factory.mktemp("tags") / "s.duckdb")
    yield s
    s.close()


def test_the_oracles_are_all_here() -> None:
    assert len(CASES) == 7 and all(out.exists() and prof.exists() for prof, _, out in CASES)


@pytest.mark.parametrize(("prof", "idx", "out"), CASES, ids=[c[2].name for c in CASES])
def test_value_per_label_value_equals_go_tool_pprof_tags(store: Store, prof: Path, idx: int, out: Path) -> None:
    want = oracle(out)
    assert want  # the oracle parsed
    sid = ingest_path(store, prof).source_id
    for key, w in want.items():
        got = tag_values(store, sid, key, sample_type=idx)
        assert {r["value"]: r["amount"] for r in got["rows"]} == w["values"], key
        assert got["key_total"] == w["total"]
        assert got["total"] == w["of"]
        # the samples without the key make up the rest of the signed sum
        assert got["unlabelled"] == got["total"] - got["key_total"]


def test_top_tag_on_the_command_line(tmp_path: Path) -> None:
    want = oracle(TAGS / "generated__small_loginstorm.cpu.pb.gz.tags_cpu.txt")["tenant"]
    db = tmp_path / "s.duckdb"
    got = json.loads(run_cli("top", str(LOGIN_CPU), "--tag", "tenant", "--json", store=db).stdout)
    assert {r["value"]: r["amount"] for r in got["rows"]} == want["values"]
    assert {r["value"]: r["ms"] for r in got["rows"]} == {v: a / 1e6 for v, a in want["values"].items()}
    assert [r["value"] for r in got["rows"]] == list(want["values"])  # pprof's order: largest first
    text = run_cli("top", str(LOGIN_CPU), "--tag", "tenant", store=db).stdout.splitlines()
    assert text[1] == "tenant: Total 2130000000ns of 2150000000ns (99.07%)"
    assert text[2] == "  440000000ns (20.47%): initech"
    bad = run_cli("top", str(LOGIN_CPU), "--tag", "route", store=db)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "perflab: source 1 has no samples labelled 'route' (it has: handler, tenant)"


@pytest.mark.parametrize(("name", "path"), [
    ("http://127.0.0.1:8080/login", "/login"), ("POST /login", "/login"), ("GET /report?user={user}", "/report"),
    ("/orders/{id}", "/orders/{id}"), ("https://example.com", None), ("timeout", None),
])
def test_the_path_of_a_k6_name(name: str, path: str | None) -> None:
    assert name_path(name) == path


def _k6_ndjson(path: Path, points: list[tuple[int, dict[str, str]]]) -> Path:
    lines = [json.dumps({"type": "Metric", "metric": "http_reqs", "data": {
        "name": "http_reqs", "type": "counter", "contains": "default", "thresholds": [], "submetrics": None}})]
    for t_ns, tags in points:
        when = datetime.fromtimestamp(t_ns // 10**9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        lines.append(json.dumps({"metric": "http_reqs", "type": "Point", "data": {
            "time": f"{when}.{t_ns % 10**9:09d}Z", "value": 1, "tags": tags}}))
    path.write_text("\n".join(lines) + "\n")
    return path


INSIDE = PROFILE_START_NS + PROFILE_DURATION_NS // 2
AFTER = PROFILE_START_NS + PROFILE_DURATION_NS + 10**9


def _run(tmp_path: Path, points: list[tuple[int, dict[str, str]]], profile: Path = LOGIN_CPU) -> Run:
    store = Store(tmp_path / "run.duckdb")
    ingest_path(store, profile, run_id="r")
    ingest_path(store, _k6_ndjson(tmp_path / "k6.ndjson", points), run_id="r")
    store.ensure_run("r", scenario="login", variant="default", status="complete")
    return Run.load(store, "r")


def test_cpu_per_request_counts_k6s_requests_of_the_route_in_the_profiles_window(tmp_path: Path) -> None:
    login = {"name": "http://127.0.0.1:8080/v1/login", "method": "POST"}
    run = _run(tmp_path, [(INSIDE, login)] * 7 + [(AFTER, login)] * 3 + [(INSIDE, {"name": "GET /health"})] * 4)
    store = run.store
    assert route_key(store, 1) == "handler"
    got = cpu_per_request(store, 1, 2, "handler")
    cpu_ms = oracle(TAGS / "generated__small_loginstorm.cpu.pb.gz.tags_cpu.txt")["handler"]["values"]["/v1/login"] / 1e6
    assert got["requests_over"] == "the profile's window" and got["matched_by"] == "name"
    assert got["rows"] == [{"endpoint": "/v1/login", "cpu_ms": cpu_ms, "cpu_pct": pytest.approx(100 * 2130 / 2150),
                            "requests": 7, "cpu_ms_per_request": cpu_ms / 7,
                            "k6_names": ["http://127.0.0.1:8080/v1/login"]}]
    assert got["total_cpu_ms"] == 2150.0 and got["unlabelled_cpu_ms"] == 20.0
    # ... and the report's section holds the same numbers, shown in a table.
    section = endpoint_cpu_section(run)
    assert isinstance(section, EndpointCpu) and section.rows == got["rows"]
    table = next(b for b in _endpoint_cpu_blocks(section) if isinstance(b, Table))
    assert table.rows[0][0] == "`/v1/login`" and table.rows[0][3] == "7"
    assert json.dumps(to_jsonable(section))  # `perflab report --json` prints it
    store.close()


def test_a_k6_tag_of_the_labels_key_wins_and_the_whole_test_counts_without_overlap(tmp_path: Path) -> None:
    # k6 tags the route itself; its points are outside the profile's window: all of them count.
    tagged = {"name": "http://x/v1/login?id=1", "handler": "/v1/login"}
    run = _run(tmp_path, [(AFTER, tagged)] * 5 + [(AFTER + 1, {"name": "http://x/v1/login"})] * 2)
    k6 = k6_requests(run.store, 2, "handler", ["/v1/login"], (PROFILE_START_NS, PROFILE_START_NS + 1))
    assert k6 == {"by": "tag handler", "over": "the whole test", "requests": {"/v1/login": 5},
                  "names": {"/v1/login": ["/v1/login"]}}
    run.store.close()


def test_the_report_says_what_is_missing(tmp_path: Path) -> None:
    run = _run(tmp_path, [(INSIDE, {"name": "http://x/other"})] * 3)
    section = endpoint_cpu_section(run)
    assert isinstance(section, Unavailable)
    assert section.reason.startswith("no k6 request matches a handler label value (/v1/login)")
    run.store.close()
    (tmp_path / "b").mkdir()
    unlabelled = _run(tmp_path / "b", [(INSIDE, {"name": "http://x/v1/login"})], profile=SAMPLE_CPU)
    section = endpoint_cpu_section(unlabelled)
    assert isinstance(section, Unavailable)
    assert section.reason.startswith("needs CPU samples labelled with the endpoint (a pprof label route, endpoint")
    with pytest.raises(PerflabError, match="has no samples labelled 'route'"):
        tag_values(unlabelled.store, 1, "route")
    unlabelled.store.close()
    (tmp_path / "c").mkdir()
    store = Store(tmp_path / "c" / "s.duckdb")
    ingest_path(store, LOGIN_CPU, run_id="p")
    store.ensure_run("p")
    section = endpoint_cpu_section(Run.load(store, "p"))
    assert isinstance(section, Unavailable)
    assert section.reason == "needs k6's samples (NDJSON or CSV) to count the requests per endpoint"
    store.close()
