"""Collapsed and speedscope sources through every profile view: categories, flame graphs, the
profile diff, and the doctor's reading of a profile (perflab.analysis.rundata.profile)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perflab.analysis.categories import categories
from perflab.analysis.compare import profile_diff
from perflab.analysis.profiles import top
from perflab.analysis.rundata import profile
from perflab.analysis.signatures._measure import profile_cpu_pct
from perflab.errors import PerflabError
from perflab.ingest import ingest_path
from perflab.report.charts import diff_flame_graph, flame_graph
from perflab.store import Store
from perflab.vocab import COLLAPSED, SPEEDSCOPE
from tests.helpers import run_cli

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stacks"
SIMPLE = FIXTURES / "speedscope__stackcollapse_simple.txt"
EVENTED = FIXTURES / "speedscope__speedscope_0.0.1_simple.speedscope.json"
LOGIN_CPU = Path(__file__).resolve().parent.parent / "fixtures" / "pprof" / "generated" / "small_loginstorm.cpu.pb.gz"

# A py-spy --native recording of a login handler, as perflab's recorder writes it (10 s at 100 Hz).
LOGIN = """\
# perflab: rate_hz=100 duration_s=10 clock=cpu
<module> (/srv/app.py:1);login (/srv/app.py:20);hashpw (/venv/bcrypt/__init__.py:80);blowfish::encrypt (/venv/lib/python3.11/site-packages/bcrypt/_bcrypt.abi3.so) 600
<module> (/srv/app.py:1);login (/srv/app.py:20);pbkdf2_hmac (/usr/lib/python3.11/hashlib.py:1);PKCS5_PBKDF2_HMAC (/usr/lib/libcrypto.so.3) 300
<module> (/srv/app.py:1);render (/srv/app.py:40);dumps (/usr/lib/python3.11/json/__init__.py:183) 80
<module> (/srv/app.py:1);render (/srv/app.py:40) 20
"""


@pytest.fixture
def login(store: Store, tmp_path: Path) -> int:
    path = tmp_path / "login.collapsed"
    path.write_text(LOGIN)
    return ingest_path(store, path).source_id


def test_categories_see_the_native_hashing_frames(store: Store, login: int) -> None:
    out = categories(store, login)
    assert (out["format"], out["sample_type"], out["unit"], out["total"]) == ("pprof", "cpu", "nanoseconds", 10**10)
    assert out["categories"]["hashing"] == pytest.approx(0.9)
    assert out["categories"]["serialization"] == pytest.approx(0.08)
    assert [f["name"] for f in out["top_frames"]["hashing"]] == [
        "blowfish::encrypt (/venv/lib/python3.11/site-packages/bcrypt/_bcrypt.abi3.so)",
        "PKCS5_PBKDF2_HMAC (/usr/lib/libcrypto.so.3)",
    ]


def test_the_doctor_reads_a_collapsed_cpu_profile_like_a_go_one(store: Store, login: int) -> None:
    prof = profile(store, login, COLLAPSED, "login.collapsed")
    assert prof is not None
    assert (prof.format, prof.kind, prof.sample_type, prof.unit) == ("pprof", "cpu", "cpu", "nanoseconds")
    assert (prof.total, prof.samples, prof.duration_s) == (1e10, 1000, 10.0)
    # 10 s of CPU in 10 s of recording: one core busy.
    assert profile_cpu_pct(prof) == pytest.approx(100.0)
    assert prof.categories is not None and prof.categories["categories"]["hashing"] == pytest.approx(0.9)


def test_a_speedscope_profile_is_a_wall_profile_to_the_doctor(store: Store) -> None:
    sid = ingest_path(store, EVENTED).source_id
    prof = profile(store, sid, SPEEDSCOPE, EVENTED.name)
    assert prof is not None
    assert (prof.format, prof.kind, prof.sample_type, prof.samples) == ("pprof", "other", None, 14)


def test_flame_graph_of_a_collapsed_file(store: Store, login: int) -> None:
    fig = flame_graph(store, login)
    icicle = fig.data[0]
    assert icicle.values[0] == 10**10
    assert "blowfish::encrypt (/venv/lib/python3.11/site-packages/bcrypt/_bcrypt.abi3.so)" in icicle.labels
    assert "cpu" in fig.layout.title.text


def test_diff_flame_graph_across_collapsed_and_speedscope(store: Store) -> None:
    a = ingest_path(store, SIMPLE).source_id
    b = ingest_path(store, EVENTED).source_id
    fig = diff_flame_graph(store, a, b)
    assert set(fig.data[0].labels) >= {"a", "b", "c", "d"}


def test_diff_flame_graph_refuses_a_cprofile_against_stacks(store: Store, tmp_path: Path) -> None:
    import cProfile

    dump = tmp_path / "x.prof"
    cProfile.run("sum(range(10))", str(dump))
    with pytest.raises(PerflabError, match="compare profiles of one format"):
        diff_flame_graph(store, ingest_path(store, SIMPLE).source_id, ingest_path(store, dump).source_id)


def test_profile_diff_between_a_go_profile_and_a_collapsed_one(store: Store, login: int) -> None:
    df = profile_diff(store, ingest_path(store, LOGIN_CPU).source_id, login)
    row = df.filter(df["name"] == "PKCS5_PBKDF2_HMAC (/usr/lib/libcrypto.so.3)").to_dicts()[0]
    assert (row["flat_pct_a"], row["flat_pct_b"]) == (0.0, pytest.approx(30.0))


def test_top_json_is_the_same_shape_for_every_pprof_shaped_kind(tmp_path: Path) -> None:
    store_path = tmp_path / "s.duckdb"
    shapes = set()
    for path in (LOGIN_CPU, SIMPLE, EVENTED):
        result = run_cli("top", str(path), "--limit", "1", "--json", store=store_path)
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert out["format"] == "pprof"
        shapes.add((tuple(sorted(out)), tuple(sorted(out["rows"][0]))))
    assert len(shapes) == 1


def test_sources_keep_the_files_own_kind(store: Store, login: int) -> None:
    assert store.source(login)["kind"] == COLLAPSED
    assert top(store, login)["format"] == "pprof"
