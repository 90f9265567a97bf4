"""perflab.report.charts on data that exists in a store: real pprof, cProfile, k6 and
pg_stat fixtures, and a small run written in the lab's own file formats. Every test
reads a number out of the figure and compares it with one computed another way."""

from __future__ import annotations

import json
import math
import pstats
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import polars as pl
import pytest

from perflab.analysis import loadtest
from perflab.analysis.database import pg_top_frame
from perflab.analysis.profiles import stacks, top
from perflab.analysis.run import Run
from perflab.errors import PerflabError
from perflab.ingest import ingest_path
from perflab.report import charts as _charts
from perflab.report.charts import _base
from perflab.report.charts.flame import FOLDED_ID, FOLDED_LABEL
from perflab.store import Store
from perflab.vocab import SAMPLE_SERVICE_VARS_ROLES
from tests.helpers import stored, via_files

# The analyses read the store only; these tests hand them fixture files, ingested first.
pg_top_frame, top = via_files(pg_top_frame), via_files(top)
RUN_CHARTS = {"latency_over_time", "cpu_vs_latency", "cpu_latency_scatter", "app_vs_db_rate", "inflight_and_waiting",
              "errors_by_kind", "process_resources"}


class _Charts:
    """perflab.report.charts as these tests reach it: a run by its id (Run.load), a k6 file's
    latency chart by the file, a profile or snapshot file ingested first."""

    def __getattr__(self, name: str) -> Any:
        module = next(m for m in (_charts, _charts.timeline, _charts.database, _base) if hasattr(m, name))
        attr = getattr(module, name)
        if not callable(attr):
            return attr

        def call(store: Store, *args: Any, **kwargs: Any) -> Any:
            if name in RUN_CHARTS:
                ref, rest = args[0], args[1:]
                if Path(str(ref)).is_file():
                    return _charts.source_latency_over_time(store, stored(store, ref), *rest, **kwargs)
                return attr(Run.load(store, ref), *rest, **kwargs)
            return attr(store, *(stored(store, a) for a in args), **{k: stored(store, v) for k, v in kwargs.items()})
        return call


charts = _Charts()


def k6_timeseries(store: Store, ref: Any, interval_s: float) -> pl.DataFrame:
    sources = Run.load(store, ref).k6_point_sources if Run.exists(store, str(ref)) else stored(store, ref)
    return loadtest.k6_timeseries(store, sources, interval_s)


def counter_delta(store: Store, run_id: str, key: str) -> float | None:
    """last − first of one /debug/vars counter of the run, straight from the stored samples."""
    rows = store.sql("SELECT value FROM service_vars WHERE run_id = ? AND key = ? ORDER BY t", [run_id, key])
    return float(rows["value"][-1] - rows["value"][0]) if rows.height else None

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PPROF = FIXTURES / "pprof"
LOGINSTORM_CPU = PPROF / "generated" / "small_loginstorm.cpu.pb.gz"
HEAP = PPROF / "generated" / "small_loginstorm.heap.pb.gz"
BLOCK = PPROF / "generated" / "small_falseidle.block.pb.gz"
MUTEX = PPROF / "generated" / "small_falseidle.mutex.pb.gz"
LARGE = PPROF / "public" / "google-pprof" / "large.cpu"
DELTA = PPROF / "public" / "parca" / "alloc_space_delta.pb.gz"
K6_SMALL = FIXTURES / "k6" / "main_small.ndjson"
K6_DROPPED = FIXTURES / "k6" / "main_dropped.ndjson"
PG = FIXTURES / "pg"
CPROFILE = FIXTURES / "cprofile"

RUN = "synthetic-run"
T0 = datetime(2026, 11, 22, 10, 8, 33, tzinfo=timezone.utc)  # 0.567 s before main_small's first k6 point
TICK_S = 0.25  # the lab sampler's 4 Hz
TICKS = 45  # 11 s: the whole of main_small.ndjson
ROLES = ("service", "postgres", "k6", "host")


def expected(profile: Path) -> dict[str, Any]:
    return json.loads((profile.parent / f"{profile.name}.oracle" / "expected.json").read_text())


# -- a synthetic run in the lab's formats ------------------------------------------------------

def service_cpu(i: int) -> float | None:
    return None if i == 0 else 20.0 + 15.0 * (i % 7)


def db_increment(i: int) -> int:
    """Queries sent in tick i: 40/s for the first 5 s, then 100/s (a retry storm starts)."""
    return 10 if i <= 20 else 25


def var_rows(i: int, errors: bool = True) -> dict[str, float]:
    return {
        "counters.requests_total": 5.0 * i,  # 20 requests/s throughout
        "counters.db_queries": float(sum(db_increment(j) for j in range(1, i + 1))),
        "counters.errors.timeout": float(max(0, i - 20)) if errors else 0.0,
        "counters.errors.pool_timeout": 0.0,
        "gauges.in_flight_requests": float(i % 5),
        "gauges.db_waiting_tasks": float(max(0, i - 30)),
        "gauges.pool_checked_out": float(min(i, 2)),
        "gauges.pool_size": 2.0,
    }


def write_run(folder: Path, ticks: int = TICKS, with_vars: bool = True, cpu_offset: float = 0.0,
              errors: bool = True) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    res = folder / "resources.jsonl"
    lines = [json.dumps({"perflab": "resources", "version": 1, "interval_s": TICK_S, "cpu_count": 2})]
    for i in range(ticks):
        t = (T0 + timedelta(seconds=TICK_S * i)).isoformat()
        for k, role in enumerate(ROLES):
            cpu = service_cpu(i) if role == "service" else (None if i == 0 else 1.0 + k)
            if cpu is not None:
                cpu += cpu_offset
            lines.append(json.dumps({
                "t": t, "elapsed_s": TICK_S * i, "role": role, "processes": 1, "cpu_pct": cpu,
                "rss_bytes": (100 + 10 * k) * 2**20 + i * 2**20, "threads": 4,
                "ctx_voluntary": None if i == 0 else 3, "ctx_involuntary": None if i == 0 else 1,
            }))
    res.write_text("\n".join(lines) + "\n")
    out = [res]
    if with_vars:
        var = folder / "vars.jsonl"
        lines = [json.dumps({"perflab": "service-vars", "version": 1, "url": "http://127.0.0.1:1/debug/vars"})]
        for i in range(ticks):
            t = (T0 + timedelta(seconds=TICK_S * i)).isoformat()
            for key, value in var_rows(i, errors).items():
                lines.append(json.dumps({"t": t, "elapsed_s": TICK_S * i, "key": key, "value": value}))
        var.write_text("\n".join(lines) + "\n")
        out.append(var)
    return out


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One store: the synthetic run (k6 + resources + vars), a k6-only run, a run without
    k6, and the profile and pg fixtures."""
    root = tmp_path_factory.mktemp("charts")
    store = Store(root / "store.duckdb")
    for path in write_run(root / "run"):
        ingest_path(store, path, run_id=RUN)
    ingest_path(store, K6_SMALL, run_id=RUN)
    ingest_path(store, K6_DROPPED, run_id="k6-only")
    for path in write_run(root / "nok6", ticks=8, with_vars=False, cpu_offset=0.5):
        ingest_path(store, path, run_id="no-k6")
    for path in write_run(root / "quiet", ticks=8, cpu_offset=0.75, errors=False):
        ingest_path(store, path, run_id="quiet")
    yield store
    store.close()


def trace(fig: go.Figure, name: str) -> Any:
    found = [t for t in fig.data if t.name == name]
    assert len(found) == 1, [t.name for t in fig.data]
    return found[0]


def as_list(values: Any) -> list[Any]:
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]


def k6_ns(text: str) -> int:
    """A k6 UTC time ('2026-11-22T10:08:33.5671508Z') as ns since the epoch, exactly."""
    base, _, frac = text.removesuffix("Z").partition(".")
    whole = datetime.fromisoformat(base + "+00:00")
    return int(whole.timestamp()) * 10**9 + int(frac.ljust(9, "0") or 0)


# -- load test ----------------------------------------------------------------------------------

def test_latency_over_time_of_a_run(lab: Store) -> None:
    fig = charts.latency_over_time(lab, RUN)
    ts = k6_timeseries(lab, RUN, 1)
    for col in ("p50", "p95", "p99"):
        assert as_list(trace(fig, f"{col} latency").y) == ts[f"{col}_ms"].to_list()
    assert list(trace(fig, "requests/s").y) == ts["rps"].to_list()
    # x: seconds since the run's first sample (the resource sampler started 0.567 s before k6)
    first_k6 = ts["t"][0]
    assert trace(fig, "p95 latency").x[0] == pytest.approx((first_k6 - T0).total_seconds(), abs=1e-6)
    assert len(trace(fig, "p95 latency").x) == ts.height
    # errors/s: failed requests of each interval, counted from the NDJSON itself
    failed = Counter()
    t0_ns = None
    for line in K6_SMALL.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("type") != "Point":
            continue
        ns = k6_ns(rec["data"]["time"])
        t0_ns = ns if t0_ns is None else min(t0_ns, ns)
        if rec["metric"] == "http_req_failed" and rec["data"]["value"] != 0:
            failed[ns] += 1
    per_bucket = Counter()
    for ns, n in failed.items():
        per_bucket[(ns - t0_ns) // 10**9] += n
    errors = list(trace(fig, "errors/s").y)
    assert errors == [float(per_bucket.get(b, 0)) for b in range(ts.height)]
    assert sum(errors) == sum(failed.values()) > 0
    assert fig.layout.yaxis.title.text == "latency (ms)"
    assert fig.layout.uirevision == charts.UIREVISION


def test_latency_over_time_of_a_source_and_wider_intervals(lab: Store) -> None:
    fig = charts.latency_over_time(lab, K6_SMALL, interval_s=2)
    ts = k6_timeseries(lab, K6_SMALL, 2)
    assert as_list(trace(fig, "p95 latency").y) == ts["p95_ms"].to_list()
    assert list(trace(fig, "p95 latency").x) == ts["elapsed_s"].to_list()
    assert fig.layout.xaxis.title.text == "seconds since the first request"


def test_latency_points_are_capped(lab: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_base, "MAX_POINTS", 4)
    fig = charts.latency_over_time(lab, K6_SMALL, interval_s=1)
    # 11 one-second buckets do not fit in 4 points: re-bucketed to 3 s, with 3 s percentiles
    ts = k6_timeseries(lab, K6_SMALL, 3)
    assert len(trace(fig, "p95 latency").y) == ts.height <= 4
    assert as_list(trace(fig, "p95 latency").y) == ts["p95_ms"].to_list()


def test_cpu_vs_latency(lab: Store) -> None:
    fig = charts.cpu_vs_latency(lab, RUN)
    cpu = trace(fig, "service CPU")
    assert list(cpu.y) == [service_cpu(i) for i in range(1, TICKS)]
    assert list(cpu.x) == [TICK_S * i for i in range(1, TICKS)]
    ts = k6_timeseries(lab, RUN, 1)
    assert as_list(trace(fig, "p95 latency").y) == ts["p95_ms"].to_list()
    assert trace(fig, "p95 latency").yaxis == "y2"


def test_cpu_latency_scatter(lab: Store) -> None:
    fig = charts.cpu_latency_scatter(lab, RUN)
    ts = k6_timeseries(lab, RUN, 1)
    start = (ts["t"][0] - T0).total_seconds()
    expected_points = []
    for b, p95 in enumerate(ts["p95_ms"].to_list()):
        samples = [service_cpu(i) for i in range(1, TICKS) if start + b <= TICK_S * i < start + b + 1]
        if p95 is not None and samples:
            expected_points.append((sum(samples) / len(samples), p95))
    pts = trace(fig, "interval")
    assert len(pts.x) == len(expected_points) >= 9
    for (x, y), (ex, ey) in zip(zip(pts.x, pts.y), expected_points):
        assert x == pytest.approx(ex, rel=1e-12) and y == ey


def test_app_vs_db_rate(lab: Store) -> None:
    fig = charts.app_vs_db_rate(lab, RUN)
    req, db = trace(fig, "app requests/s"), trace(fig, "downstream calls/s")
    assert set(req.y) == {20.0}
    # A counter's increase is booked to the second of the later sample.
    buckets: dict[int, list[int]] = {}
    for i in range(1, TICKS):
        buckets.setdefault(math.floor(TICK_S * i), []).append(i)
    want = [sum(db_increment(i) for i in ticks) / (TICK_S * len(ticks)) for _, ticks in sorted(buckets.items())]
    assert list(db.y) == want
    assert want[0] == 40.0 and want[-1] == 100.0
    assert list(db.x) == [float(b) for b in sorted(buckets)]
    per_request = trace(fig, "downstream calls per request")
    assert list(per_request.y) == [w / 20.0 for w in want]
    # The increases add up to the counters' own run totals.
    total = sum(r * TICK_S * len(t) for r, (_, t) in zip(db.y, sorted(buckets.items())))
    assert total == counter_delta(lab, RUN, "counters.db_queries")


def test_app_vs_db_rate_capped(lab: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_base, "MAX_POINTS", 4)
    fig = charts.app_vs_db_rate(lab, RUN)
    db = trace(fig, "downstream calls/s")
    # 11 s of run in at most 4 points: 3 s intervals, and the increases still add up
    assert list(db.x) == [0.0, 3.0, 6.0, 9.0]
    ticks = Counter(math.floor(TICK_S * i / 3) for i in range(1, TICKS))  # increases per 3 s bucket
    covered = [TICK_S * ticks[b] for b in range(4)]
    assert covered == [2.75, 3.0, 3.0, 2.25]
    assert sum(r * c for r, c in zip(db.y, covered)) == counter_delta(lab, RUN, "counters.db_queries")
    assert "3 s intervals" in fig.layout.title.text


def test_inflight_and_waiting(lab: Store) -> None:
    fig = charts.inflight_and_waiting(lab, RUN)
    for role, (name, row, _, _) in charts.INFLIGHT_ROLES.items():
        key = SAMPLE_SERVICE_VARS_ROLES[role]  # the v1 lab run's /debug/vars keys by role
        t = trace(fig, name)
        assert list(t.y) == [var_rows(i)[key] for i in range(TICKS)]
        assert t.xaxis == ("x" if row == 1 else "x2")
    assert max(trace(fig, "tasks waiting for a connection").y) == TICKS - 1 - 30


def test_inflight_keeps_peaks_when_capped(lab: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_base, "MAX_POINTS", 10)
    fig = charts.inflight_and_waiting(lab, RUN)
    waiting = trace(fig, "tasks waiting for a connection")
    assert len(waiting.y) <= 10
    assert max(waiting.y) == TICKS - 1 - 30
    assert max(trace(fig, "requests in flight").y) == 4.0


def failed_by_status(path: Path) -> dict[str, int]:
    """k6's failed requests by status, counted from the NDJSON itself."""
    want: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("type") == "Point" and rec["metric"] == "http_req_failed" and rec["data"]["value"] != 0:
            want[f"status {rec['data']['tags'].get('status', '?')}"] += 1
    return dict(want)


def test_errors_by_kind(lab: Store) -> None:
    fig = charts.errors_by_kind(lab, RUN)
    timeout = trace(fig, "timeout")
    assert sum(timeout.y) == counter_delta(lab, RUN, "counters.errors.timeout") == TICKS - 1 - 20
    assert not [t for t in fig.data if t.name == "pool_timeout"]  # never happened: no empty series
    got = {t.name: sum(t.y) for t in fig.data if t.name.startswith("status ")}
    assert got == failed_by_status(K6_SMALL) and got
    assert fig.layout.barmode == "stack"
    assert [a.text for a in fig.layout.annotations if a.text != "steady window"] == [
        "service errors by kind (counters.errors)", "k6 failed requests by status (http_req_failed)"]


def test_errors_by_kind_without_errors(lab: Store) -> None:
    fig = charts.errors_by_kind(lab, "quiet")
    assert fig.data == ()
    assert [a.text for a in fig.layout.annotations if a.text != "steady window"] == ["service errors by kind (counters.errors)", "no errors"]


def test_errors_by_kind_of_a_k6_only_run(lab: Store) -> None:
    fig = charts.errors_by_kind(lab, "k6-only")
    got = {t.name: sum(t.y) for t in fig.data}
    assert got == failed_by_status(K6_DROPPED) and len(got) >= 2


def test_process_resources(lab: Store) -> None:
    fig = charts.process_resources(lab, RUN)
    cpu = [t for t in fig.data if t.xaxis == "x"]
    assert [t.name for t in cpu] == list(ROLES)
    assert as_list(cpu[0].y) == [service_cpu(i) for i in range(TICKS)]
    rss = [t for t in fig.data if t.xaxis == "x2"]
    assert list(rss[1].y) == [110.0 + i for i in range(TICKS)]  # postgres, MiB
    assert rss[3].name == "host (used memory)"


def test_run_charts_say_what_is_missing(lab: Store) -> None:
    with pytest.raises(PerflabError, match="run k6-only has no resource samples of the service's CPU"):
        charts.cpu_vs_latency(lab, "k6-only")
    with pytest.raises(PerflabError, match="^run k6-only has no resource samples$"):
        charts.process_resources(lab, "k6-only")
    with pytest.raises(PerflabError, match="run k6-only has no metric for the requests and downstream_calls roles"):
        charts.app_vs_db_rate(lab, "k6-only")
    with pytest.raises(PerflabError, match="run k6-only has no metric for the in_flight, pool_waiting, pool_in_use, pool_size roles"):
        charts.inflight_and_waiting(lab, "k6-only")
    with pytest.raises(PerflabError, match="run no-k6 has no k6 samples"):
        charts.cpu_vs_latency(lab, "no-k6")
    with pytest.raises(PerflabError, match="run no-k6 has no k6 samples"):
        charts.latency_over_time(lab, "no-k6")
    with pytest.raises(PerflabError, match="run no-k6 has no error counters"):
        charts.errors_by_kind(lab, "no-k6")
    with pytest.raises(PerflabError, match="no run 'nope'"):
        charts.process_resources(lab, "nope")
    # the run without k6 still draws what it has
    fig = charts.process_resources(lab, "no-k6")
    assert list(fig.data[0].y)[1:] == [service_cpu(i) + 0.5 for i in range(1, 8)]


# -- flame graphs -----------------------------------------------------------------------------

def icicle(fig: go.Figure) -> dict[str, Any]:
    t = fig.data[0]
    assert isinstance(t, go.Icicle)
    return {"ids": list(t.ids), "parents": list(t.parents), "values": list(t.values), "labels": list(t.labels)}


def assert_valid_tree(tree: dict[str, Any], total_mode: bool = True) -> None:
    ids = tree["ids"]
    assert len(set(ids)) == len(ids)
    pos = {i: k for k, i in enumerate(ids)}
    children: dict[str, float] = {}
    for node, parent, value in zip(ids, tree["parents"], tree["values"]):
        if parent:
            assert parent in pos and pos[parent] < pos[node]
            label = tree["labels"][pos[node]]
            assert node == f"{parent};{label}" or (label == FOLDED_LABEL and node == f"{parent};{FOLDED_ID}")
            children[parent] = children.get(parent, 0) + value
    if total_mode:
        for parent, s in children.items():
            assert s <= tree["values"][pos[parent]]


def test_flame_graph_of_a_go_cpu_profile(lab: Store) -> None:
    exp = expected(LOGINSTORM_CPU)
    fig = charts.flame_graph(lab, LOGINSTORM_CPU, min_share=0)
    tree = icicle(fig)
    assert tree["ids"][0] == "root" and tree["values"][0] == exp["totals"]["cpu"]
    assert_valid_tree(tree)
    # A function that only ever sits at the root of its stacks has one node, holding pprof's cum.
    sid = top(lab, LOGINSTORM_CPU)["source_id"]
    st = stacks(lab, sid)
    cum = {f["name"]: f["cum"] for f in exp["functions"]["cpu"]}
    checked = 0
    for node, value in zip(tree["ids"], tree["values"]):
        if node.count(";") != 1:
            continue
        name = node.split(";")[1]
        only_at_root = all(name not in frames[:-1] for frames in st["frames"].to_list())
        if only_at_root:
            assert value == cum[name], name
            checked += 1
    assert checked >= 2
    # With min_share=0 nothing is folded: a node's own part (value - its children) is the
    # samples that end there, so the own parts per function are pprof's flat.
    own = dict(zip(tree["ids"], tree["values"]))
    for node, parent, value in zip(tree["ids"], tree["parents"], tree["values"]):
        if parent:
            own[parent] -= value
    flat: Counter[str] = Counter()
    for node, value in own.items():
        if node != "root":
            flat[node.rsplit(";", 1)[1]] += value
    assert {n: v for n, v in flat.items() if v} == {f["name"]: f["flat"] for f in exp["functions"]["cpu"] if f["flat"]}
    assert own["root"] == 0


def test_flame_graph_any_sample_type_and_cuts(lab: Store) -> None:
    exp = expected(HEAP)
    fig = charts.flame_graph(lab, HEAP, sample_type="alloc_space", min_share=0.05, max_depth=3)
    tree = icicle(fig)
    total = exp["totals"]["alloc_space"]
    assert tree["values"][0] == total
    assert all(v >= 0.05 * total for v in tree["values"])
    assert max(i.count(";") for i in tree["ids"]) <= 3
    assert_valid_tree(tree)
    assert "alloc_space" in fig.layout.title.text


@pytest.mark.parametrize(("path", "min_share"), [(LARGE, 0.001), (LOGINSTORM_CPU, 0.01)])
def test_flame_graph_folds_thin_paths_into_one_box_per_caller(lab: Store, path: Path, min_share: float) -> None:
    # GIVEN a profile and a cut: WHEN drawn THEN under each node, a grey box
    # holds what its thin children add up to: its value less its own samples (pprof's flat
    # along the path, computed here from stacks()) and its drawn children.
    fig = charts.flame_graph(lab, path, min_share=min_share)
    tree = icicle(fig)
    total = expected(path)["totals"]["cpu"]
    sid = top(lab, path)["source_id"]
    ends_at: Counter[str] = Counter()
    for frames, value in stacks(lab, sid).iter_rows():
        ends_at[";".join(["root", *reversed(frames)])] += value
    value_of = dict(zip(tree["ids"], tree["values"]))
    kids: Counter[str] = Counter()
    for node, parent in zip(tree["ids"], tree["parents"]):
        if parent and not node.endswith(FOLDED_ID):
            kids[parent] += value_of[node]
    folded = [(n, p) for n, p in zip(tree["ids"], tree["parents"]) if n.endswith(FOLDED_ID)]
    assert folded
    for node, parent in folded:
        assert value_of[node] == value_of[parent] - ends_at[parent] - kids[parent] >= min_share * total
    assert_valid_tree(tree)
    # Labels: the short name in the box (the full one in the hover), hidden below 10 px.
    t = fig.data[0]
    assert t.textinfo == "text" and fig.layout.uniformtext.minsize == 10 and fig.layout.uniformtext.mode == "hide"
    for label, text in zip(t.labels, t.text):
        assert text == label.rsplit("/", 1)[-1]


def test_flame_graph_of_large_cpu_stays_under_the_node_cap(lab: Store) -> None:
    exp = expected(LARGE)
    default = icicle(charts.flame_graph(lab, LARGE))
    assert default["values"][0] == exp["totals"]["cpu"]
    assert all(v >= charts.DEFAULT_MIN_SHARE * exp["totals"]["cpu"] for v in default["values"])
    everything = icicle(charts.flame_graph(lab, LARGE, min_share=0, max_depth=1000))
    assert len(everything["ids"]) == charts.MAX_NODES
    assert everything["values"][0] == exp["totals"]["cpu"]
    assert_valid_tree(everything)
    # the kept nodes are the largest: nothing dropped outweighs anything kept
    assert min(everything["values"]) >= 1


def test_flame_graph_of_a_cprofile_is_one_level(lab: Store) -> None:
    path = CPROFILE / "json.prof"
    st = pstats.Stats(str(path))
    fig = charts.flame_graph(lab, path, min_share=0.01)
    t = fig.data[0]
    assert t.branchvalues == "remainder"
    want = sorted(((v[2], pstats.func_std_string(k)) for k, v in st.stats.items() if v[2] >= 0.01 * st.total_tt),
                  key=lambda r: (-r[0], r[1]))
    assert list(t.labels[1:]) == [n for _, n in want]
    assert list(t.values[1:]) == [v for v, _ in want]
    assert t.values[0] + math.fsum(t.values[1:]) == pytest.approx(st.total_tt, rel=1e-12)
    assert set(t.parents[1:]) == {"all functions"}


def test_flame_graph_refuses_delta_profiles(lab: Store) -> None:
    with pytest.raises(PerflabError, match="negative values"):
        charts.flame_graph(lab, DELTA)


def test_diff_flame_graph_deltas_are_absolute_changes(lab: Store) -> None:
    # Neither profile records a duration, so the change is of whole-profile totals, in seconds.
    fig = charts.diff_flame_graph(lab, BLOCK, MUTEX, sample_type="delay", min_share=0)
    t = fig.data[0]
    ids = list(t.ids)
    # every function's cum (no nodefraction cut)
    top_a = top(lab, BLOCK, sample_type="delay", nodefraction=0)
    top_b = top(lab, MUTEX, sample_type="delay", nodefraction=0)
    cum_a = {r["name"]: r["cum"] for r in top_a["rows"]}
    cum_b = {r["name"]: r["cum"] for r in top_b["rows"]}
    st_a = stacks(lab, top_a["source_id"], "delay")["frames"].to_list()
    st_b = stacks(lab, top_b["source_id"], "delay")["frames"].to_list()
    checked = 0
    for name in sorted(set(cum_a) | set(cum_b)):
        at_root = all(name not in f[:-1] for f in st_a + st_b) and any(f[-1] == name for f in st_a + st_b)
        if not at_root:
            continue
        k = ids.index(f"root;{name}")
        want = (cum_b.get(name, 0) - cum_a.get(name, 0)) * 1e-9
        assert t.marker.colors[k] == pytest.approx(want, rel=1e-12, abs=1e-18), name
        assert t.customdata[k][3] == cum_a.get(name, 0) / top_a["total"]
        assert t.customdata[k][4] == cum_b.get(name, 0) / top_b["total"]
        checked += 1
    assert checked >= 3  # main.client (in both), main.dbServerLoop (A only), janitor loops (B only)
    assert t.marker.cmid == 0 and t.marker.cmin == -t.marker.cmax
    assert t.branchvalues == "remainder"
    assert_valid_tree({"ids": ids, "parents": list(t.parents), "values": list(t.values),
                       "labels": list(t.labels)}, total_mode=False)


def test_diff_of_a_profile_with_itself_changes_nothing(lab: Store) -> None:
    fig = charts.diff_flame_graph(lab, LOGINSTORM_CPU, LOGINSTORM_CPU)
    t = fig.data[0]
    assert set(t.marker.colors) == {0.0}
    assert t.values[0] == pytest.approx(0.0, abs=1e-12)  # the root holds nothing of its own


def test_diff_flame_graph_of_cprofiles(lab: Store) -> None:
    a, b = CPROFILE / "json.prof", CPROFILE / "cli_script.prof"
    fig = charts.diff_flame_graph(lab, a, b, min_share=0)
    t = fig.data[0]
    ta, tb = top(lab, a), top(lab, b)
    fa = {r["name"]: r["flat"] for r in ta["rows"]}
    fb = {r["name"]: r["flat"] for r in tb["rows"]}
    labels = list(t.labels)
    both = [n for n in fa if n in fb and fa[n] > 0 and fb[n] > 0]
    assert len(both) >= 5
    for name in both:
        k = labels.index(name)
        assert t.marker.colors[k] == pytest.approx(fb[name] - fa[name], abs=1e-15)


def test_diff_flame_graph_refuses_mixed_formats(lab: Store) -> None:
    with pytest.raises(PerflabError, match="compare profiles of one format"):
        charts.diff_flame_graph(lab, LOGINSTORM_CPU, CPROFILE / "json.prof")


# -- database ---------------------------------------------------------------------------------------

def test_top_statements(lab: Store) -> None:
    before, after = PG / "pg_stat_statements_before.jsonl", PG / "pg_stat_statements_after.jsonl"
    fig = charts.top_statements(lab, before, after, n=5)
    frame = pg_top_frame(lab, before, after, order="total", limit=5)
    bars = fig.data[0]
    assert list(bars.x) == frame["total_exec_time"].to_list()
    assert list(bars.x) == sorted(bars.x, reverse=True)
    assert [c[0] for c in bars.customdata] == frame["calls"].to_list()
    assert [c[1] for c in bars.customdata] == frame["mean_exec_time"].to_list()
    assert all(len(label) <= charts.QUERY_LABEL_CHARS + 4 for label in bars.y)
    assert fig.layout.yaxis.autorange == "reversed"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_index_usage(lab: Store) -> None:
    before, after = PG / "pg_stat_user_indexes_before.jsonl", PG / "pg_stat_user_indexes_after.jsonl"
    fig = charts.index_usage(lab, before, after)
    b = {r["indexrelid"]: r["idx_scan"] for r in _jsonl(before)}
    want = {f"{r['relname']}.{r['indexrelname']}": r["idx_scan"] - b.get(r["indexrelid"], 0) for r in _jsonl(after)}
    bars = fig.data[0]
    assert dict(zip(bars.y, bars.x)) == want
    unused = {name for name, n in want.items() if n == 0}
    assert len(unused) == 3
    assert list(bars.y[: len(unused)]) == sorted(unused, key=list(bars.y).index)  # unused first
    assert {y for y, c in zip(bars.y, bars.marker.color) if c == charts.UNUSED_COLOR} == unused
    # the table snapshots beside the index ones give the sequential scans
    tb = {r["relid"]: r["seq_scan"] for r in _jsonl(PG / "pg_stat_user_tables_before.jsonl")}
    seq = {r["relname"]: r["seq_scan"] - tb.get(r["relid"], 0) for r in _jsonl(PG / "pg_stat_user_tables_after.jsonl")}
    assert dict(zip(fig.data[1].y, fig.data[1].x)) == seq
    assert "3 of 6 indexes unused" in fig.layout.title.text


def test_index_usage_without_table_snapshots(lab: Store, tmp_path: Path) -> None:
    before, after = tmp_path / "idx_before.jsonl", tmp_path / "idx_after.jsonl"
    before.write_text((PG / "pg_stat_user_indexes_before.jsonl").read_text() + "\n")
    after.write_text((PG / "pg_stat_user_indexes_after.jsonl").read_text() + "\n")
    fig = charts.index_usage(lab, before, after)
    assert len(fig.data) == 1


# -- every chart --------------------------------------------------------------------------------

ALL_CHARTS = [
    ("latency_over_time", lambda s: charts.latency_over_time(s, RUN)),
    ("cpu_vs_latency", lambda s: charts.cpu_vs_latency(s, RUN)),
    ("cpu_latency_scatter", lambda s: charts.cpu_latency_scatter(s, RUN)),
    ("app_vs_db_rate", lambda s: charts.app_vs_db_rate(s, RUN)),
    ("inflight_and_waiting", lambda s: charts.inflight_and_waiting(s, RUN)),
    ("errors_by_kind", lambda s: charts.errors_by_kind(s, RUN)),
    ("process_resources", lambda s: charts.process_resources(s, RUN)),
    ("flame_graph", lambda s: charts.flame_graph(s, LOGINSTORM_CPU)),
    ("flame_graph_cprofile", lambda s: charts.flame_graph(s, CPROFILE / "cli_script.prof")),
    ("diff_flame_graph", lambda s: charts.diff_flame_graph(s, BLOCK, MUTEX)),
    ("top_statements", lambda s: charts.top_statements(s, PG / "pg_stat_statements_before.jsonl",
                                                       PG / "pg_stat_statements_after.jsonl")),
    ("index_usage", lambda s: charts.index_usage(s, PG / "pg_stat_user_indexes_before.jsonl",
                                                 PG / "pg_stat_user_indexes_after.jsonl")),
]


@pytest.mark.parametrize("make", [m for _, m in ALL_CHARTS], ids=[n for n, _ in ALL_CHARTS])
def test_charts_are_deterministic_titled_and_capped(lab: Store, make: Any) -> None:
    first, second = make(lab), make(lab)
    assert first.to_json() == second.to_json()
    assert first.layout.uirevision == charts.UIREVISION
    assert first.layout.title.text
    for t in first.data:
        for axis in ("x", "y", "ids"):
            values = getattr(t, axis, None)
            if values is not None:
                assert len(values) <= max(charts.MAX_POINTS, charts.MAX_NODES)
        assert getattr(t, "uid", None) is None


def test_k6_timeseries_dataframe_is_what_the_chart_draws(lab: Store) -> None:
    # the chart's x for a run is the k6 bucket start on the run's clock
    ts = k6_timeseries(lab, RUN, 1).with_columns(
        ((pl.col("t").dt.epoch("us") - int(T0.timestamp() * 1e6)) / 1e6).alias("x"))
    fig = charts.latency_over_time(lab, RUN)
    assert list(trace(fig, "p95 latency").x) == ts["x"].to_list()


# -- the CPU axis and the steady window ---------------------------------------------------------

TIME_CHARTS = {"latency_over_time": 1, "cpu_vs_latency": 1, "app_vs_db_rate": 1, "inflight_and_waiting": 2,
               "errors_by_kind": 2, "process_resources": 2}


def test_every_time_chart_shades_the_steady_window(lab: Store) -> None:
    # GIVEN the synthetic run, whose first sample of any kind is the resource sampler's at T0
    window = Run.load(lab, RUN).window
    assert window is not None
    x0, x1 = window.start_s - T0.timestamp(), window.end_s - T0.timestamp()
    assert 0 < x0 < x1 < TICKS * TICK_S
    for name, panels in TIME_CHARTS.items():
        # WHEN the chart is drawn THEN each panel has one rectangle over exactly the window
        fig = json.loads(getattr(charts, name)(lab, RUN).to_json())["layout"]
        rects = [s for s in fig.get("shapes", []) if s["type"] == "rect"]
        assert len(rects) == panels, name
        for r in rects:
            assert r["x0"] == pytest.approx(x0, abs=1e-6) and r["x1"] == pytest.approx(x1, abs=1e-6), name
            assert r["layer"] == "below" and r["fillcolor"] == _charts.timeline.WINDOW_FILL
        assert [a["text"] for a in fig["annotations"]].count("steady window") == 1, name


def test_cpu_axes_span_the_machines_cores(lab: Store) -> None:
    # GIVEN a run whose sampler recorded 2 cores and whose service peaked at 110 % of one core
    assert max(service_cpu(i) or 0 for i in range(TICKS)) == 110.0
    layouts = {name: json.loads(getattr(charts, name)(lab, RUN).to_json())["layout"]
               for name in ("cpu_vs_latency", "cpu_latency_scatter", "process_resources")}
    # THEN every CPU axis runs from 0 to 200 %, and says why
    for name, axis in (("cpu_vs_latency", "yaxis"), ("cpu_latency_scatter", "xaxis"),
                       ("process_resources", "yaxis")):
        assert layouts[name][axis]["range"] == [0, 200], name
        assert "axis: 2 cores = 200 %" in layouts[name][axis]["title"]["text"], name


def test_cpu_axis_without_a_core_count_is_the_datas_max(lab: Store, tmp_path: Path) -> None:
    # GIVEN a run whose resource samples carry no core count (a user's, no manifest)
    folder = tmp_path / "nocores"
    [res] = write_run(folder, ticks=8, with_vars=False)
    lines = res.read_text().splitlines()
    header = json.loads(lines[0])
    del header["cpu_count"]
    res.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    ingest_path(lab, res, run_id="no-cores")
    run = Run.load(lab, "no-cores")
    assert run.cpu_count is None
    # THEN the axis ends just above the highest sample, and the title says so
    axis = json.loads(_charts.process_resources(run).to_json())["layout"]["yaxis"]
    peak = max(service_cpu(i) or 0 for i in range(8))  # the service's; the other roles stay below 5 %
    assert axis["range"] == [0, pytest.approx(peak * 1.05)]
    assert "the run records no core count" in axis["title"]["text"]
