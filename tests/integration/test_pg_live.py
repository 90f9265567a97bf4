"""Live snapshots from a real PostgreSQL: `perflab ingest --pg`, then `perflab pg-top`.

GIVEN the session's ephemeral cluster (tests/integration/conftest.py),
WHEN a known workload runs between two `perflab ingest --pg DSN` (CLI subprocesses),
THEN pg-top shows the workload's statements with exactly the calls issued, and the
other views' deltas show its row changes.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy
from sqlalchemy import text

from perflab.analysis.database import table_deltas
from perflab.ingest.pgstat_live import ingest_live
from perflab.lab.postgres import EphemeralPostgres, pid_alive, port_listens
from perflab.store import Store
from tests.helpers import run_cli

SELECTS, UPDATES = 37, 23
SELECT_SQL = "SELECT qty FROM perflab_it_items WHERE id = $1"
UPDATE_SQL = "UPDATE perflab_it_items SET qty = qty + $1 WHERE id = $2"
ALL_VIEWS = ["pg_stat_statements", "pg_stat_statements_info", "pg_stat_user_tables",
             "pg_stat_user_indexes", "pg_stat_database", "pg_stat_activity"]
# Backends flush table statistics at most once a second and on exit (FORMAT.md): poll this long.
STATS_FLUSH_TIMEOUT_S = 10


def _live_sources(store_path: Path) -> list[dict]:
    with Store(store_path) as s:
        return s.sql("SELECT source_id, path, bytes, meta FROM sources WHERE kind = 'pgstat' "
                     "ORDER BY source_id").to_dicts()


def _wait_for_table_stats(engine: sqlalchemy.Engine, updates: int) -> None:
    deadline = time.monotonic() + STATS_FLUSH_TIMEOUT_S
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            n = conn.execute(text("SELECT n_tup_upd FROM pg_stat_user_tables "
                                  "WHERE relname = 'perflab_it_items'")).scalar_one()
        if n >= updates:
            return
        time.sleep(0.2)
    raise AssertionError("table statistics were not flushed in time")


def test_live_snapshots_around_a_workload(pg_cluster: EphemeralPostgres, store_path: Path) -> None:
    engine = sqlalchemy.create_engine(pg_cluster.dsn, poolclass=sqlalchemy.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS perflab_it_items"))  # a reused PERFLAB_PG_DSN server
        conn.execute(text("CREATE TABLE perflab_it_items (id int PRIMARY KEY, qty int NOT NULL)"))
        conn.execute(text("INSERT INTO perflab_it_items SELECT g, 0 FROM generate_series(1, 1000) g"))
    _wait_for_table_stats(engine, 0)

    # WHEN: snapshot, workload, snapshot
    t0 = time.perf_counter()
    first = run_cli("ingest", "--pg", pg_cluster.dsn, "--run", "it", store=store_path)
    ingest_s = time.perf_counter() - t0
    assert first.returncode == 0 and first.stderr == "", first.stderr
    with engine.begin() as conn:
        for i in range(SELECTS):
            conn.execute(text("SELECT qty FROM perflab_it_items WHERE id = :id"), {"id": i + 1})
        for i in range(UPDATES):
            conn.execute(text("UPDATE perflab_it_items SET qty = qty + :d WHERE id = :id"), {"d": 1, "id": i + 1})
    _wait_for_table_stats(engine, UPDATES)
    second = run_cli("ingest", "--pg", pg_cluster.dsn, "--run", "it", store=store_path)
    assert second.returncode == 0 and second.stderr == "", second.stderr

    # THEN: one source per view and snapshot, named after the server, the view and the time;
    # pg_stat_statements_info did not change, so its second snapshot is the first source
    assert re.search(r"#pg_stat_statements_info@\S+: already in the store as source 2", second.stdout)
    sources = _live_sources(store_path)
    assert len(sources) == 11
    pattern = re.compile(rf"^postgresql://127\.0\.0\.1:{pg_cluster.port}/perflab#(\w+)@"
                         r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)$")
    views = [pattern.match(s["path"]).group(1) for s in sources]  # type: ignore[union-attr]
    assert views == ALL_VIEWS + [v for v in ALL_VIEWS if v != "pg_stat_statements_info"]
    for s in sources:
        meta = json.loads(s["meta"])
        assert meta["live"] is True and meta["view"] in s["path"] and s["bytes"] > 0
        assert 150000 <= meta["server_version_num"] < 160000 or pg_cluster.external
    assert json.loads(sources[0]["meta"])["pg_columns_version"] == "15-16" or pg_cluster.external
    with Store(store_path) as s:
        # all views of one snapshot share its moment, which is the one in the path
        stamps = s.con.execute(
            "SELECT DISTINCT source_id, strftime(snapshot_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ') "
            "FROM pg_stat_database_snap ORDER BY 1").fetchall()
        assert [st for _, st in stamps] == [pattern.match(sources[i]["path"]).group(2)  # type: ignore[union-attr]
                                           for i in (4, 9)]
        assert s.con.execute("SELECT DISTINCT run_id FROM pg_stat_statements_snap").fetchall() == [("it",)]
        stored_ids = {r[0] for r in s.con.execute(
            "SELECT queryid FROM pg_stat_statements_snap WHERE query = ?", [SELECT_SQL]).fetchall()}
    with engine.connect() as conn:
        server_ids = {r[0] for r in conn.execute(
            text("SELECT queryid FROM pg_stat_statements WHERE query = :q"), {"q": SELECT_SQL})}
    assert stored_ids == server_ids and len(server_ids) == 1  # the 64-bit id, exactly

    pgss = [s["source_id"] for s in sources if "#pg_stat_statements@" in s["path"]]
    top = run_cli("pg-top", str(pgss[0]), str(pgss[1]), "--json", store=store_path)
    assert top.returncode == 0, top.stderr
    result = json.loads(top.stdout)
    calls = {r["query"]: r["calls"] for r in result["rows"]}
    assert calls[SELECT_SQL] == SELECTS
    assert calls[UPDATE_SQL] == UPDATES
    assert result["reset_detected"] is False
    table = run_cli("pg-top", str(pgss[0]), str(pgss[1]), store=store_path)
    assert any(line.endswith(SELECT_SQL) and line.split()[3] == str(SELECTS) for line in table.stdout.splitlines())

    tables = [s["source_id"] for s in sources if "#pg_stat_user_tables@" in s["path"]]
    with Store(store_path) as s:
        items = table_deltas(s, tables[0], tables[1]).to_dicts()
    row = next(r for r in items if r["relname"] == "perflab_it_items")
    assert row["n_tup_upd"] == UPDATES and row["idx_scan"] == SELECTS + UPDATES and row["n_tup_ins"] == 0
    print(f"\nlive ingest of 6 views (CLI process included): {ingest_s:.2f} s")
    engine.dispose()


def test_an_unchanged_view_is_stored_once(pg_cluster: EphemeralPostgres, tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        a = ingest_live(store, pg_cluster.dsn, views=["pg_stat_statements_info"])
        # the same server through a libpq keyword DSN: same canonical bytes, same source
        b = ingest_live(store, pg_cluster.libpq_dsn, views=["pg_stat_statements_info"])
        assert [r.new for r in a + b] == [True, False]
        assert a[0].source_id == b[0].source_id
        assert store.con.execute("SELECT count(*) FROM pg_stat_statements_info_snap").fetchall() == [(1,)]


def test_a_database_without_the_extension_still_gets_the_other_views(
        pg_cluster: EphemeralPostgres, store_path: Path) -> None:
    admin = sqlalchemy.create_engine(pg_cluster.dsn, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS perflab_noext"))
        conn.execute(text("CREATE DATABASE perflab_noext"))
    admin.dispose()
    dsn = pg_cluster.dsn.rsplit("/", 1)[0] + "/perflab_noext"
    r = run_cli("ingest", "--pg", dsn, store=store_path)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "pg_stat_statements is not installed" in lines[0], r.stderr
    password = urlsplit(pg_cluster.dsn).password
    assert not password or password not in r.stderr
    views = [re.search(r"#(\w+)@", s["path"]).group(1) for s in _live_sources(store_path)]  # type: ignore[union-attr]
    assert views == ["pg_stat_user_tables", "pg_stat_user_indexes", "pg_stat_database", "pg_stat_activity"]


def test_a_bad_dsn_is_one_line(store_path: Path) -> None:
    r = run_cli("ingest", "--pg", "postgresql://nobody:pw@127.0.0.1:1/none", store=store_path)
    assert r.returncode == 2
    assert len(r.stderr.splitlines()) == 1 and "pw@" not in r.stderr, r.stderr


def test_the_cluster_is_gone_after_an_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERFLAB_PG_DSN", raising=False)
    seen = {}
    with pytest.raises(KeyboardInterrupt):
        with EphemeralPostgres() as pg:
            seen = {"pid": pg.pid, "port": pg.port, "dir": pg.tmpdir}
            assert pid_alive(pg.pid) and port_listens(pg.port)  # type: ignore[arg-type]
            with sqlalchemy.create_engine(pg.dsn, poolclass=sqlalchemy.pool.NullPool).connect() as conn:
                assert conn.execute(text("SHOW pg_stat_statements.track")).scalar_one() == "all"
                assert conn.execute(text("SHOW track_io_timing")).scalar_one() == "on"
                assert conn.execute(text("SHOW fsync")).scalar_one() == "on"
                assert conn.execute(text("SHOW listen_addresses")).scalar_one() == "127.0.0.1"
                assert conn.execute(text("SHOW unix_socket_directories")).scalar_one() == str(pg.socket_dir)
            raise KeyboardInterrupt
    assert not pid_alive(seen["pid"])
    assert not port_listens(seen["port"])
    assert not seen["dir"].exists()
    print(f"\ncluster start {pg.start_seconds:.2f} s, stop {pg.stop_seconds:.2f} s")
