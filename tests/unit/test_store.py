"""The store: schema versioning, one transaction per ingest, content de-duplication."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from perflab import schema
from perflab.errors import InputError, PerflabError, StoreError
from perflab.ingest import Context, Format, ingest_path, register, resolve, REGISTRY
from perflab.store import Store, list_sources
from tests.helpers import store_fingerprint


@pytest.fixture
def toy_format():
    """A registered test-only format: lines 'key=value' into a scratch table."""

    def detect(sniff):
        return sniff.head.startswith(b"TOY\n")

    def ingest(ctx: Context):
        ctx.con.execute("CREATE TABLE IF NOT EXISTS toy (source_id BIGINT, run_id VARCHAR, k VARCHAR, v BIGINT)")
        rows = 0
        for line in ctx.read_bytes().decode().splitlines()[1:]:
            k, v = line.split("=")
            ctx.con.execute("INSERT INTO toy VALUES (?, ?, ?, ?)", [ctx.source_id, ctx.run_id, k, int(v)])
            rows += 1
        ctx.meta["lines"] = rows
        return {"rows": rows}

    fmt = register(Format(kind="toy", description="test", detect=detect, ingest=ingest, priority=0))
    yield fmt
    REGISTRY.pop("toy", None)


def test_new_store_has_current_schema_version(tmp_path: Path):
    s = Store(tmp_path / "a.duckdb")
    assert s.schema_version == schema.SCHEMA_VERSION
    tables = {r[0] for r in s.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"perflab_meta", "sources", "runs"} <= tables


def test_every_fact_table_carries_source_and_run(store: Store):
    cols = store.sql(
        "SELECT table_name, list(column_name) AS cols FROM information_schema.columns "
        "WHERE table_schema='main' GROUP BY 1"
    ).to_dicts()
    derived = {"run_summaries", "k6_summaries"}
    fact = [c for c in cols if c["table_name"] not in {"perflab_meta", "sources", "runs", "run_roles", *derived}]
    assert fact, "no fact tables defined"
    for t in fact:
        assert "source_id" in t["cols"] and "run_id" in t["cols"], t["table_name"]


def test_newer_store_is_refused(tmp_path: Path):
    path = tmp_path / "a.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE perflab_meta SET value = ? WHERE key='schema_version'", [str(schema.SCHEMA_VERSION + 1)])
    con.close()
    with pytest.raises(StoreError, match="newer than this perflab"):
        Store(path)


def test_older_store_without_migration_is_refused(tmp_path: Path):
    path = tmp_path / "a.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE perflab_meta SET value = '0' WHERE key='schema_version'")
    con.close()
    with pytest.raises(StoreError, match="cannot be migrated"):
        Store(path)


def test_older_store_is_migrated(tmp_path: Path, monkeypatch):
    path = tmp_path / "a.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE perflab_meta SET value = ? WHERE key='schema_version'", [str(schema.SCHEMA_VERSION - 1)])
    con.close()
    seen = []
    monkeypatch.setitem(
        __import__("perflab.store", fromlist=["MIGRATIONS"]).MIGRATIONS,
        schema.SCHEMA_VERSION - 1,
        lambda c: seen.append(c.execute("SELECT count(*) FROM sources").fetchall()[0][0]),
    )
    s = Store(path)
    assert seen == [0]
    assert s.schema_version == schema.SCHEMA_VERSION


def test_foreign_duckdb_file_is_refused(tmp_path: Path):
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t (x INT)")
    con.close()
    with pytest.raises(StoreError, match="not a perflab store"):
        Store(path)


def test_same_content_is_ingested_once(store: Store, tmp_path: Path, toy_format):
    a = tmp_path / "a.toy"
    a.write_text("TOY\nx=1\ny=2\n")
    b = tmp_path / "copy-elsewhere.toy"
    b.write_text(a.read_text())
    first = ingest_path(store, a, run_id="r1")
    assert first.new and first.kind == "toy" and first.stats == {"rows": 2}
    before = store_fingerprint(store)
    second = ingest_path(store, b)
    assert not second.new
    assert second.source_id == first.source_id
    assert f"already in the store as source {first.source_id}" in second.message
    assert store_fingerprint(store) == before
    src = list_sources(store).to_dicts()
    assert len(src) == 1
    assert src[0]["run_id"] == "r1" and src[0]["bytes"] == a.stat().st_size
    assert json.loads(store.source(first.source_id)["meta"]) == {"lines": 2}
    assert store.sql("SELECT run_id FROM runs").to_dicts() == [{"run_id": "r1"}]


def test_failed_ingest_leaves_store_unchanged(store: Store, tmp_path: Path, toy_format):
    good = tmp_path / "good.toy"
    good.write_text("TOY\nx=1\n")
    ingest_path(store, good)
    before = store_fingerprint(store)
    bad = tmp_path / "bad.toy"
    bad.write_text("TOY\nx=1\ny=2\nz=notanumber\n")  # two rows are written before the failure
    with pytest.raises(InputError) as err:
        ingest_path(store, bad)
    assert str(bad) in str(err.value) and "not a valid toy file" in str(err.value)
    assert store_fingerprint(store) == before
    # and the next source id shows no gap
    third = tmp_path / "third.toy"
    third.write_text("TOY\nq=3\n")
    assert ingest_path(store, third).source_id == 2


def test_gzip_bomb_is_stopped_at_the_cap(store: Store, tmp_path: Path, toy_format):
    import gzip

    bomb = tmp_path / "bomb.toy.gz"
    bomb.write_bytes(gzip.compress(b"TOY\n" + b"x=1\n" * (4 << 20)))  # 16 MiB inflated
    before = store_fingerprint(store)
    with pytest.raises(InputError, match="decompresses to more than 1048576 bytes"):
        ingest_path(store, bomb, max_decompressed=1 << 20)
    assert store_fingerprint(store) == before


def test_missing_empty_and_directory_paths(store: Store, tmp_path: Path):
    with pytest.raises(InputError, match="no such file"):
        ingest_path(store, tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.touch()
    with pytest.raises(InputError, match="empty file"):
        ingest_path(store, empty)
    with pytest.raises(InputError, match="is a directory"):
        ingest_path(store, tmp_path)


def test_resolve_by_id_and_by_path(store: Store, tmp_path: Path, toy_format):
    a = tmp_path / "a.toy"
    a.write_text("TOY\nx=1\n")
    sid = resolve(store, str(a))
    assert resolve(store, str(sid)) == sid
    assert resolve(store, a) == sid  # idempotent
    assert store.find_source(a) == store.find_source(str(sid)) == sid  # found, never ingested
    with pytest.raises(Exception, match="no source 99"):
        resolve(store, "99")


def test_the_store_finds_only_what_was_ingested(store: Store, tmp_path: Path, toy_format):
    a = tmp_path / "a.toy"
    a.write_text("TOY\nx=1\n")
    with pytest.raises(PerflabError, match="not in the store"):
        store.find_source(a)
    assert store.sql("SELECT count(*) AS n FROM sources")["n"][0] == 0


def test_a_version_1_store_gains_the_metrics_tables(tmp_path: Path):
    # GIVEN a store as perflab 0.1 wrote it (schema 1: no metric_samples, no run_roles) with a run in it
    path = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(path))
    v1 = [b for b in schema.DDL if b not in (schema.METRICS_DDL, schema.SUMMARIES_DDL, schema.K6_SUMMARIES_DDL)]
    for stmt in (s for block in v1 for s in schema.block_statements(block)):
        con.execute(stmt)
    con.execute("INSERT INTO perflab_meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO runs (run_id, created_at) VALUES ('old', now())")
    con.close()
    # WHEN it is opened, THEN it is migrated in place and keeps what it had
    with Store(path) as store:
        assert store.schema_version == schema.SCHEMA_VERSION == 4
        assert store.sql("SELECT count(*) AS n FROM run_summaries")["n"][0] == 0
        assert store.sql("SELECT count(*) AS n FROM k6_summaries")["n"][0] == 0
        assert store.sql("SELECT count(*) AS n FROM metric_samples")["n"][0] == 0
        assert store.sql("SELECT run_id FROM runs")["run_id"].to_list() == ["old"]


def test_a_version_3_store_gains_the_stored_k6_summaries(tmp_path: Path):
    # GIVEN a store as perflab wrote it before k6 summaries were stored (schema 3), with a source
    path = tmp_path / "v3.duckdb"
    con = duckdb.connect(str(path))
    for stmt in (s for block in schema.DDL if block is not schema.K6_SUMMARIES_DDL
                 for s in schema.block_statements(block)):
        con.execute(stmt)
    con.execute("INSERT INTO perflab_meta VALUES ('schema_version', '3')")
    con.execute("INSERT INTO sources VALUES (1, 'k6', '/x.ndjson', 1, 'abc', now(), NULL, NULL)")
    con.close()
    # WHEN it is opened THEN the table is added, empty (summaries are computed when asked for)
    with Store(path) as store:
        assert store.schema_version == 4
        assert store.sql("SELECT count(*) AS n FROM k6_summaries")["n"][0] == 0
        assert store.source(1)["path"] == "/x.ndjson"


def test_an_ingest_holds_duckdb_to_its_memory_limit_and_lets_go_after(store: Store, tmp_path: Path):
    from perflab.ingest import INGEST_MEMORY_LIMIT

    seen = []

    def ingest(ctx: Context):
        seen.append(ctx.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
        return {}

    register(Format(kind="limit-probe", description="test", detect=lambda s: s.head.startswith(b"PROBE"),
                    ingest=ingest, priority=0))
    try:
        default = store.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        f = tmp_path / "x.probe"
        f.write_text("PROBE\n")
        ingest_path(store, f)
        # DuckDB spills past the limit (a 2.1 GB k6 NDJSON: 2,379 MiB RSS before, 689 MiB with it)
        probe = duckdb.connect()
        probe.execute(f"SET memory_limit = '{INGEST_MEMORY_LIMIT}'")
        assert seen == [probe.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]] != [default]
        assert store.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == default
    finally:
        REGISTRY.pop("limit-probe", None)
