"""`perflab k6`: the table reads like k6's own end-of-test summary; --json is the API's dict."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from perflab.analysis.loadtest import k6_summary
from perflab.fmt import k6_data as data
from perflab.fmt import k6_duration as duration
from perflab.fmt import k6_percent as percent
from perflab.store import Store
from tests.helpers import run_cli

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "k6"
_ROW = re.compile(r"^\s+(\S.*?)\.{3,}: (.*)$")


def rows(text: str) -> list[tuple[str, list[str]]]:
    """(label, value tokens) of every `name.....: values` line."""
    return [(m.group(1).strip(), m.group(2).split()) for line in text.splitlines() if (m := _ROW.match(line))]


def k6_section(stdout: str, title: str) -> str:
    start = stdout.index(title)
    end = stdout.find("█", start + len(title))
    return stdout[start: end if end > 0 else None]


@pytest.mark.parametrize("run", ["main_small", "main_kolkata", "main_dropped"])
def test_table_has_k6s_own_lines_token_for_token(run: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from perflab.cli import main

    nd = next(p for p in FIXTURES.glob(f"{run}.ndjson*") if not p.name.endswith(".expected.json"))
    code = main(["--store", str(tmp_path / "s.duckdb"), "k6", str(nd), "--with", str(FIXTURES / f"{run}.summary.json")])
    assert code == 0
    ours = capsys.readouterr().out
    k6_out = (FIXTURES / f"{run}.stdout.txt").read_text()
    want = rows(k6_section(k6_out, "TOTAL RESULTS"))
    got = rows(k6_section(ours, "TOTAL RESULTS"))
    assert len(want) > 20
    # k6's lines appear in our table, in the same order, with the same values
    it = iter(got)
    for label, tokens in want:
        assert (label, tokens) in it, (label, tokens)
    # and the THRESHOLDS block lists the same verdicts and values
    def verdicts(text: str) -> list[str]:
        return [ln.strip() for ln in k6_section(text, "THRESHOLDS").splitlines() if ln.strip()[:1] in "✓✗"]
    assert verdicts(ours) == verdicts(k6_out)


def test_json_is_the_api_dict(tmp_path: Path, store: Store) -> None:
    store_path = tmp_path / "cli.duckdb"
    result = run_cli("k6", str(FIXTURES / "summary_small.ndjson"), "--by", "status", "--json", store=store_path)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    with Store(store_path) as s:
        assert got == json.loads(json.dumps(k6_summary(s, 1, by="status")))
    assert "http_req_duration{status:200}" in got["metrics"]
    assert got["duration_source"].startswith("time span of the samples")


def test_trend_stats_and_a_source_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from perflab.cli import main

    store_path = str(tmp_path / "s.duckdb")
    assert main(["--store", store_path, "ingest", str(FIXTURES / "main_small.ndjson")]) == 0
    capsys.readouterr()
    assert main(["--store", store_path, "k6", "1", "--trend-stats", "p(99.9),count", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["metrics"]["http_req_duration"]
    assert set(got) == {"type", "contains", "p(99.9)", "count", "thresholds"}
    assert main(["--store", store_path, "k6", "1", "--trend-stats", "p(x)"]) == 2
    assert "unknown trend stat" in capsys.readouterr().err


@pytest.mark.parametrize(("ms", "text"), [
    (0, "0s"), (0.0004, "400ns"), (0.920462, "920.46µs"), (18.227932692810455, "18.22ms"),
    (1.508150100000001, "1.5ms"), (1303.165292, "1.3s"), (61000, "1m1s"), (3_723_000, "1h2m3s"),
])
def test_durations_are_truncated_like_k6s(ms: float, text: str) -> None:
    assert duration(ms) == text


def test_data_and_percent_like_k6s() -> None:
    assert (data(30549), data(2972.4646746314997), data(13083), data(7)) == ("31 kB", "3.0 kB", "13 kB", "7 B")
    assert (percent(0.17647058823529413), percent(1.0), percent(0)) == ("17.64%", "100.00%", "0.00%")
