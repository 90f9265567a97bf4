"""PostgreSQL statistics snapshots against plain-Python oracles over the same files.

GIVEN the real PostgreSQL 15.18 snapshots in tests/fixtures/pg (FORMAT.md there) and
variants derived from them inside the tests (PG 12, 13 and 17 column sets, resets),
WHEN perflab ingests them and computes deltas,
THEN every stored value and every delta equals what the csv/json modules and plain
Python arithmetic give for the same files (floats compared with ==).
"""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from perflab.analysis.database import (
    PG_TOP_COLUMNS,
    activity_states,
    database_deltas,
    index_usage,
    pg_top,
    pg_top_frame,
    table_deltas,
)
from perflab.errors import PerflabError
from perflab.ingest import ingest_path
from perflab.ingest.pgstat import VIEWS, identify, pg_columns_version
from perflab.store import Store
from tests.conftest import FIXTURES

PG = FIXTURES / "pg"
csv.field_size_limit(sys.maxsize)  # the 173,959-character query is above the 131,072 default

SNAPSHOT_VIEWS = ["pg_stat_statements", "pg_stat_statements_info", "pg_stat_user_tables",
                  "pg_stat_user_indexes", "pg_stat_database"]
from tests.helpers import via_files

# The analyses read the store only; these tests hand them fixture files, ingested first.
pg_top = via_files(pg_top)
pg_top_frame = via_files(pg_top_frame)
activity_states = via_files(activity_states)
database_deltas = via_files(database_deltas)
index_usage = via_files(index_usage)
table_deltas = via_files(table_deltas)
FILES = [(f"{v}_{w}.{ext}", v) for v in SNAPSHOT_VIEWS for w in ("before", "after") for ext in ("csv", "jsonl")]
FILES += [(f"pg_stat_activity_samples.{ext}", "pg_stat_activity") for ext in ("csv", "jsonl")]
HUGE_QUERY_CHARS = 173_959
KEY = ("userid", "dbid", "toplevel", "queryid")


# -- oracle: reading the files the plain way ---------------------------------------------------

def pg_csv_records(path: Path) -> list[list[str | None]]:
    """COPY CSV records with NULL (empty unquoted) told apart from "" (empty quoted).

    The csv module reads the values; it cannot tell NULL from "", so a minimal quote
    tracker over the same text decides which empty fields were quoted, and both must
    agree on every value.
    """
    text = path.read_text(encoding="utf-8")
    values = list(csv.reader(io.StringIO(text, newline="")))
    records: list[list[str | None]] = []
    fields: list[str | None] = []
    buf: list[str] = []
    quoted = in_quotes = False
    i = 0
    while i < len(text):
        ch = text[i]
        if in_quotes:
            if ch == '"' and text[i + 1: i + 2] == '"':
                buf.append('"')
                i += 1
            elif ch == '"':
                in_quotes = False
            else:
                buf.append(ch)
        elif ch == '"':
            in_quotes = quoted = True
        elif ch in ",\n":
            fields.append("".join(buf) if (buf or quoted) else None)
            buf, quoted = [], False
            if ch == "\n":
                records.append(fields)
                fields = []
        else:
            buf.append(ch)
        i += 1
    if buf or fields or quoted:
        fields.append("".join(buf) if (buf or quoted) else None)
        records.append(fields)
    assert [[v if v is not None else "" for v in r] for r in records] == values
    return records


def typed(value: Any, typ: str, fmt: str) -> Any:
    if value is None:
        return None
    if typ in ("BIGINT", "INTEGER"):
        return int(value)  # JSON oids/xids are strings; bigints are exact Python ints
    if typ == "DOUBLE":
        return float(value)
    if typ == "BOOLEAN":
        return value if fmt == "jsonl" else {"t": True, "f": False}[value]
    if typ == "TIMESTAMPTZ":
        return datetime.fromisoformat(value)
    return value


def oracle_rows(path: Path, view: str) -> list[dict[str, Any]]:
    """The file's rows as canonical columns, typed, with the version renames applied."""
    v = VIEWS[view]
    types, renames = v.types, dict(v.renames)
    if path.suffix == ".csv":
        header, *records = pg_csv_records(path)
        raw = [dict(zip(header, r)) for r in records]
        fmt = "csv"
    else:
        raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
        fmt = "jsonl"
    out = []
    for r in raw:
        row = {name: None for name in types}
        for col, value in r.items():
            name = renames.get(col, col)
            if name in types:
                row[name] = typed(value, types[name], fmt)
        out.append(row)
    return out


def stored_rows(store: Store, sid: int, view: str) -> list[dict[str, Any]]:
    names = ", ".join(f'"{n}"' for n in VIEWS[view].types)
    return store.sql(f"SELECT {names} FROM {VIEWS[view].table} WHERE source_id = ?", [sid]).to_dicts()


def _norm(value: Any) -> Any:
    # The same instant prints differently per tzinfo class; compare instants in UTC.
    return value.astimezone(timezone.utc) if isinstance(value, datetime) else value


def as_multiset(rows: list[dict[str, Any]]) -> list[str]:
    """Rows as sorted reprs: equal lists, equal rows (repr of a float is exact)."""
    return sorted(repr(sorted((k, _norm(v)) for k, v in r.items())) for r in rows)


def oracle_counters(path: Path) -> dict[tuple, dict[str, Any]]:
    rows = oracle_rows(path, "pg_stat_statements")
    out: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = (r["userid"], r["dbid"], True if r["toplevel"] is None else r["toplevel"], r["queryid"])
        assert key not in out  # no duplicate entries in these files
        out[key] = r
    return out


def oracle_pg_top(before: Path, after: Path, order: str = "total", limit: int | None = None,
                  reset_all: bool = False) -> tuple[list[dict[str, Any]], set[tuple]]:
    b, a = oracle_counters(before), oracle_counters(after)
    counters = ["calls", "total_exec_time", "rows", "shared_blks_hit", "shared_blks_read"]
    rows, resets = [], set()
    for key, ra in a.items():
        rb = b.get(key)
        reset = reset_all or (rb is not None and any(ra[c] < rb[c] for c in counters))
        if reset:
            resets.add(key)
        d = {c: ra[c] if reset or rb is None else ra[c] - rb[c] for c in counters}
        if d["calls"] == 0:
            continue
        hit, read = d["shared_blks_hit"], d["shared_blks_read"]
        rows.append({
            "queryid": key[3], "userid": key[0], "dbid": key[1], "toplevel": key[2],
            "query": ra["query"], "calls": d["calls"], "total_exec_time": d["total_exec_time"],
            "mean_exec_time": d["total_exec_time"] / d["calls"], "rows": d["rows"],
            "shared_blks_hit": hit, "shared_blks_read": read,
            "cache_hit_ratio": None if hit + read == 0 else hit / (hit + read),
        })
    field = {"total": "total_exec_time", "mean": "mean_exec_time", "calls": "calls"}[order]
    rows.sort(key=lambda r: (-r[field], r["queryid"], r["userid"], r["dbid"], r["toplevel"]))
    return (rows if limit is None else rows[:limit]), resets


# -- writing derived files the way PostgreSQL does ---------------------------------------------

def write_pg_csv(path: Path, header: list[str], records: list[list[str | None]]) -> None:
    def cell(v: str | None) -> str:
        if v is None:
            return ""
        if v == "" or any(ch in v for ch in ',"\n\r'):
            return '"' + v.replace('"', '""') + '"'
        return v

    path.write_text("".join(",".join(cell(v) for v in r) + "\n" for r in [header, *records]),
                    encoding="utf-8")


def derive(src: Path, dst: Path, transform) -> Path:
    """Write ``src`` (CSV or JSONL) to ``dst`` after ``transform(list of dicts) -> list of dicts``.

    Column order follows the first transformed row, so a transform can also reorder."""
    if src.suffix == ".csv":
        header, *records = pg_csv_records(src)
        rows = transform([dict(zip(header, r)) for r in records])
    else:
        rows = transform([json.loads(line) for line in src.read_text().splitlines() if line])
    if dst.suffix == ".csv":
        cols = list(rows[0])
        write_pg_csv(dst, cols, [[r[c] for c in cols] for r in rows])
    else:
        dst.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return dst


def ingest(store: Store, path: Path) -> int:
    return ingest_path(store, path).source_id


def meta(store: Store, sid: int) -> dict[str, Any]:
    return json.loads(store.source(sid)["meta"])


# -- ingest: every file, every value --------------------------------------------------------------

@pytest.mark.parametrize("name,view", FILES, ids=[f for f, _ in FILES])
def test_every_fixture_file_is_stored_exactly(store: Store, tmp_path: Path, name: str, view: str) -> None:
    # GIVEN the file under a name that says nothing: the view comes from the columns alone
    anonymous = tmp_path / ("snapshot" + Path(name).suffix)
    shutil.copy(PG / name, anonymous)
    # WHEN it is ingested
    sid = ingest(store, anonymous)
    # THEN the view is recognised and every value of every row equals the oracle's
    m = meta(store, sid)
    assert m["view"] == view
    assert m["pg_columns_version"] == {"pg_stat_statements": "15-16", "pg_stat_statements_info": "14+",
                                       "pg_stat_user_tables": "13-15", "pg_stat_user_indexes": "12-15",
                                       "pg_stat_database": "14-17", "pg_stat_activity": "14+"}[view]
    expected = oracle_rows(PG / name, view)
    got = stored_rows(store, sid, view)
    assert len(got) == len(expected) > 0
    assert as_multiset(got) == as_multiset(expected)
    # AND the provenance columns are filled
    assert store.con.execute(
        f"SELECT count(*) FROM {VIEWS[view].table} WHERE source_id = ? AND run_id IS NULL", [sid]
    ).fetchall()[0][0] == len(expected)


def test_queryids_above_2_53_survive_exactly(store: Store) -> None:
    for ext in ("csv", "jsonl"):
        path = PG / f"pg_stat_statements_after.{ext}"
        sid = ingest(store, path)
        stored = {r[0] for r in store.con.execute(
            "SELECT queryid FROM pg_stat_statements_snap WHERE source_id = ?", [sid]).fetchall()}
        expected = {r["queryid"] for r in oracle_rows(path, "pg_stat_statements")}
        big = {q for q in expected if abs(q) > 2**53}
        # a float would have rounded these: the test is only meaningful if such ids exist
        assert len(big) > 50 and any(int(float(q)) != q for q in big)
        assert stored == expected


def test_the_173959_character_query_survives(store: Store) -> None:
    for ext in ("csv", "jsonl"):
        path = PG / f"pg_stat_statements_after.{ext}"
        sid = ingest(store, path)
        longest = max((r["query"] for r in oracle_rows(path, "pg_stat_statements")), key=len)
        assert len(longest) == HUGE_QUERY_CHARS
        got = store.con.execute(
            "SELECT query FROM pg_stat_statements_snap WHERE source_id = ? ORDER BY length(query) DESC LIMIT 1",
            [sid]).fetchall()[0][0]
        assert got == longest


def test_csv_null_and_empty_string_stay_apart(store: Store) -> None:
    sid = ingest(store, PG / "pg_stat_activity_samples.csv")
    rows = oracle_rows(PG / "pg_stat_activity_samples.csv", "pg_stat_activity")
    for col in ("application_name", "query", "datname", "client_addr"):
        empty = sum(r[col] == "" for r in rows)
        null = sum(r[col] is None for r in rows)
        got = store.con.execute(
            f"SELECT count(*) FILTER (WHERE {col} = ''), count(*) FILTER (WHERE {col} IS NULL) "
            "FROM pg_stat_activity_samples WHERE source_id = ?", [sid]).fetchall()[0]
        assert got == (empty, null)
    # background processes have "" texts, Unix-socket clients port -1: both kinds occur
    assert sum(r["application_name"] == "" for r in rows) > 0 and sum(r["datname"] is None for r in rows) > 0


def test_activity_snapshot_at_is_each_samples_first_timestamp(store: Store) -> None:
    sid = ingest(store, PG / "pg_stat_activity_samples.jsonl")
    rows = oracle_rows(PG / "pg_stat_activity_samples.jsonl", "pg_stat_activity")
    first: dict[int, datetime] = {}
    for r in rows:
        first[r["sample_no"]] = min(first.get(r["sample_no"], r["sample_ts"]), r["sample_ts"])
    got = dict(store.con.execute(
        "SELECT sample_no, min(snapshot_at) FROM pg_stat_activity_samples WHERE source_id = ? "
        "GROUP BY 1 HAVING count(DISTINCT snapshot_at) = 1", [sid]).fetchall())
    assert got == first and len(first) == 20


def test_same_content_twice_is_one_source(store: Store) -> None:
    a = ingest_path(store, PG / "pg_stat_statements_info_before.csv")
    b = ingest_path(store, PG / "pg_stat_statements_info_after.csv")  # byte-identical snapshot
    assert a.new and not b.new and a.source_id == b.source_id
    assert store.con.execute("SELECT count(*) FROM pg_stat_statements_info_snap").fetchall()[0][0] == 1


def test_ddl_tables_have_exactly_the_views_columns(store: Store) -> None:
    for view in VIEWS.values():
        cols = store.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position", [view.table]).fetchall()
        assert cols == [("source_id", "BIGINT"), ("run_id", "VARCHAR"), ("snapshot_at", "TIMESTAMP WITH TIME ZONE")] + [
            (n, "TIMESTAMP WITH TIME ZONE" if t == "TIMESTAMPTZ" else t) for n, t in view.columns]


# -- PostgreSQL 12 / 13 / 17 column sets ---------------------------------------------------------

_PG12_RENAMES = {"total_exec_time": "total_time", "min_exec_time": "min_time", "max_exec_time": "max_time",
                 "mean_exec_time": "mean_time", "stddev_exec_time": "stddev_time"}
_PG13_DROPS = {"toplevel", "temp_blk_read_time", "temp_blk_write_time"}
_PG12_DROPS = _PG13_DROPS | {"plans", "total_plan_time", "min_plan_time", "max_plan_time", "mean_plan_time",
                             "stddev_plan_time", "wal_records", "wal_fpi", "wal_bytes"}
_STATS_SINCE = "2026-11-22 10:35:51.402597+00"


def _as_version(version: int, seed: int):
    """A transform turning PG 15 rows into the column set of ``version``, in shuffled order."""
    def transform(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        order: list[str] | None = None
        for r in rows:
            n: dict[str, Any] = {}
            for c, v in r.items():
                if c.startswith("jit_") and version < 15:
                    continue
                if version == 12 and c in _PG12_DROPS or version == 13 and c in _PG13_DROPS:
                    continue
                if version == 12:
                    c = _PG12_RENAMES.get(c, c)
                if version == 17:
                    c = {"blk_read_time": "shared_blk_read_time", "blk_write_time": "shared_blk_write_time"}.get(c, c)
                n[c] = v
            if version == 17:
                is_csv = isinstance(r["calls"], str)
                zero = "0" if is_csv else 0
                n.update({"local_blk_read_time": zero, "local_blk_write_time": zero,
                          "jit_deform_count": zero, "jit_deform_time": zero,
                          "stats_since": _STATS_SINCE if is_csv else "2026-11-22T10:35:51.402597+00:00",
                          "minmax_stats_since": _STATS_SINCE if is_csv else "2026-11-22T10:35:51.402597+00:00"})
            if order is None:  # never assume column order: shuffle it once per file
                order = list(n)
                random.Random(seed).shuffle(order)
            out.append({c: n[c] for c in order})
        return out
    return transform


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
@pytest.mark.parametrize("version,columns,label", [(12, 23, "12"), (13, 32, "13"), (17, 49, "17")])
def test_older_and_newer_column_sets_land_in_the_same_columns(
        store: Store, tmp_path: Path, ext: str, version: int, columns: int, label: str) -> None:
    # GIVEN the PG 15 snapshots rewritten with the column set of another version
    paths = {}
    for w in ("before", "after"):
        src = PG / f"pg_stat_statements_{w}.{ext}"
        paths[w] = derive(src, tmp_path / f"pg{version}_pg_stat_statements_{w}.{ext}", _as_version(version, 42))
    header = (pg_csv_records(paths["after"])[0] if ext == "csv"
              else list(json.loads(paths["after"].read_text().splitlines()[0])))
    assert len(header) == columns
    # WHEN both are ingested
    sid = ingest(store, paths["after"])
    base = ingest(store, PG / f"pg_stat_statements_after.{ext}")
    # THEN the version is recognised, and every normalised column holds the PG 15 value
    assert meta(store, sid)["view"] == "pg_stat_statements"
    assert meta(store, sid)["pg_columns_version"] == label
    got, ref = stored_rows(store, sid, "pg_stat_statements"), stored_rows(store, base, "pg_stat_statements")
    present = {dict(VIEWS["pg_stat_statements"].renames).get(c, c) for c in header}
    for row in ref:
        for col in list(row):
            if col not in present:
                row[col] = None
        if version == 17:
            row.update({"local_blk_read_time": 0.0, "local_blk_write_time": 0.0, "jit_deform_count": 0,
                        "jit_deform_time": 0.0})
            row["stats_since"] = row["minmax_stats_since"] = datetime.fromisoformat(_STATS_SINCE)
    assert as_multiset(got) == as_multiset(ref)
    # AND the deltas are the PG 15 deltas; without toplevel every entry counts as top level
    ours = pg_top(store, paths["before"], paths["after"])
    theirs = pg_top(store, PG / f"pg_stat_statements_before.{ext}", PG / f"pg_stat_statements_after.{ext}")
    if version < 14:
        for r in theirs["rows"]:
            r["toplevel"] = True
    assert ours == theirs


def test_column_version_ranges() -> None:
    pgss = VIEWS["pg_stat_statements"]
    cols15 = pg_csv_records(PG / "pg_stat_statements_after.csv")[0]
    assert pg_columns_version(pgss, cols15) == "15-16"
    assert pg_columns_version(pgss, [c for c in cols15 if not c.startswith("jit_") and "temp_blk_" not in c
                                     or c in ("temp_blks_read", "temp_blks_written")]) == "14"
    assert pg_columns_version(pgss, cols15 + ["wal_buffers_full", "parallel_workers_to_launch"]) == "mixed"


@pytest.mark.parametrize("columns", [
    ["a", "b", "c"],
    ["dealloc"],
    ["userid", "dbid", "queryid", "query", "calls"],  # too few pg_stat_statements columns
    ["relid", "indexrelid", "schemaname", "relname", "indexrelname", "idx_scan", "idx_tup_read",
     "idx_tup_fetch", "idx_scan"],  # a duplicate column
])
def test_unknown_column_sets_are_no_view(columns: list[str]) -> None:
    assert identify(columns) is None


# -- pg_top against the oracle ----------------------------------------------------------------

@pytest.mark.parametrize("ext", ["csv", "jsonl"])
@pytest.mark.parametrize("order,limit", [("total", None), ("mean", None), ("calls", 7), ("total", 0)])
def test_pg_top_equals_plain_python_deltas(store: Store, ext: str, order: str, limit: int | None) -> None:
    before, after = PG / f"pg_stat_statements_before.{ext}", PG / f"pg_stat_statements_after.{ext}"
    got = pg_top(store, before, after, order=order, limit=limit)
    expected, resets = oracle_pg_top(before, after, order, limit)
    assert set(got) == {"reset_detected", "rows"}
    assert got["reset_detected"] is False and not resets
    assert all(list(r) == PG_TOP_COLUMNS for r in got["rows"])
    assert got["rows"] == expected  # floats: the same float64 subtraction, compared with ==
    if limit is None:
        assert len(expected) == {"csv": 40, "jsonl": 40}[ext]


def test_pg_top_accepts_source_ids_and_paths_alike(store: Store) -> None:
    b = ingest(store, PG / "pg_stat_statements_before.csv")
    a = ingest(store, PG / "pg_stat_statements_after.csv")
    by_path = pg_top(store, PG / "pg_stat_statements_before.csv", PG / "pg_stat_statements_after.csv")
    assert pg_top(store, str(b), str(a)) == pg_top(store, b, a) == by_path


def test_workload_statements_agree_between_csv_and_jsonl(store: Store) -> None:
    csv_top = pg_top(store, PG / "pg_stat_statements_before.csv", PG / "pg_stat_statements_after.csv")
    json_top = pg_top(store, PG / "pg_stat_statements_before.jsonl", PG / "pg_stat_statements_after.jsonl")
    by_key = lambda rows: {tuple(r[k] for k in KEY): r for r in rows}  # noqa: E731
    c, j = by_key(csv_top["rows"]), by_key(json_top["rows"])
    # The JSONL snapshots were taken just after the CSV ones, so only the CSV export's own
    # `COPY (SELECT * FROM pg_stat_statements)` entries differ; every workload row is equal.
    differ = {k for k in c.keys() | j.keys() if c.get(k) != j.get(k)}
    assert {(c.get(k) or j.get(k))["query"] for k in differ} == {
        "COPY  ( SELECT * FROM pg_stat_statements ) TO STDOUT WITH (FORMAT csv, HEADER true)"}
    assert len(c.keys() & j.keys()) - len(differ) >= 38
    calls = {r["query"]: r["calls"] for r in csv_top["rows"]}
    assert calls["UPDATE events SET amount = amount + $2 WHERE id = $1"] == 2000
    assert calls["SELECT id, amount FROM events WHERE account_id = $1"] == 2000


def _to_row_to_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CSV rows (strings) as PostgreSQL's row_to_json would write them."""
    types = VIEWS["pg_stat_statements"].types
    renames = dict(VIEWS["pg_stat_statements"].renames)
    out = []
    for r in rows:
        o: dict[str, Any] = {}
        for c, v in r.items():
            t = types[renames.get(c, c)]
            if v is None or c in ("userid", "dbid"):  # oids are JSON strings
                o[c] = v
            elif t == "BOOLEAN":
                o[c] = v == "t"
            elif t == "BIGINT":
                o[c] = int(v)
            elif t == "DOUBLE":
                o[c] = float(v)
            else:
                o[c] = v
        out.append(o)
    return out


def test_the_same_snapshot_as_csv_and_as_jsonl_gives_identical_results(store: Store, tmp_path: Path) -> None:
    # GIVEN each CSV snapshot also written as JSON lines (row_to_json's encoding)
    pair = {}
    for w in ("before", "after"):
        pair[w] = derive(PG / f"pg_stat_statements_{w}.csv", tmp_path / f"as_json_{w}.jsonl", _to_row_to_json)
    # THEN rows and deltas are identical whichever encoding was read
    for w in ("before", "after"):
        a = stored_rows(store, ingest(store, PG / f"pg_stat_statements_{w}.csv"), "pg_stat_statements")
        b = stored_rows(store, ingest(store, pair[w]), "pg_stat_statements")
        assert as_multiset(a) == as_multiset(b)
    for order in ("total", "mean", "calls"):
        assert pg_top(store, pair["before"], pair["after"], order=order) == pg_top(
            store, PG / "pg_stat_statements_before.csv", PG / "pg_stat_statements_after.csv", order=order)


# -- resets ------------------------------------------------------------------------------------

def _lower_counters(queries: set[str]):
    def transform(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for r in rows:
            if r["query"] in queries:  # as if reset, then run a little: counts below `before`
                r["calls"], r["total_exec_time"], r["rows"] = "3", "0.75", "3"
                r["shared_blks_hit"], r["shared_blks_read"] = "7", "1"
        return rows
    return transform


RESET_QUERIES = {"UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
                 "SELECT abalance FROM pgbench_accounts WHERE aid = $1"}


def test_a_counter_that_went_down_is_a_reset_and_never_a_negative_delta(store: Store, tmp_path: Path) -> None:
    # GIVEN an `after` where two statements count less than in `before`
    before = PG / "pg_stat_statements_before.csv"
    after = derive(PG / "pg_stat_statements_after.csv", tmp_path / "reset_after.csv",
                   _lower_counters(RESET_QUERIES))
    # WHEN the deltas are taken
    got = pg_top(store, before, after)
    frame = pg_top_frame(store, before, after)
    expected, resets = oracle_pg_top(before, after)
    # THEN the reset is flagged, the reset rows report what was counted since, nothing is negative
    assert got["reset_detected"] is True
    assert got["rows"] == expected
    in_before = {k for k, r in oracle_counters(before).items() if r["query"] in RESET_QUERIES}
    assert resets == in_before and len(resets) == 2
    flagged = frame.filter(frame["reset"])
    assert {(r["userid"], r["dbid"], r["toplevel"], r["queryid"]) for r in flagged.to_dicts()} == resets
    assert flagged["calls"].to_list() == [3, 3] and flagged["total_exec_time"].to_list() == [0.75, 0.75]
    for r in got["rows"]:
        assert all(r[c] >= 0 for c in ("calls", "total_exec_time", "rows", "shared_blks_hit", "shared_blks_read"))


def _with_info(tmp_path: Path, info_after: Any) -> tuple[Path, Path]:
    """The pgss pair plus an info pair beside it; ``info_after`` transforms the info rows."""
    for w in ("before", "after"):
        shutil.copy(PG / f"pg_stat_statements_{w}.csv", tmp_path / f"pg_stat_statements_{w}.csv")
    shutil.copy(PG / "pg_stat_statements_info_before.csv", tmp_path / "pg_stat_statements_info_before.csv")
    derive(PG / "pg_stat_statements_info_after.csv", tmp_path / "pg_stat_statements_info_after.csv", info_after)
    return tmp_path / "pg_stat_statements_before.csv", tmp_path / "pg_stat_statements_after.csv"


def test_a_new_stats_reset_means_every_row_counts_since_the_reset(store: Store, tmp_path: Path) -> None:
    later = (datetime.fromisoformat("2026-11-22 10:35:51.402597+00") + timedelta(seconds=30))
    before, after = _with_info(tmp_path, lambda rows: [
        {**r, "stats_reset": later.strftime("%Y-%m-%d %H:%M:%S.%f+00")} for r in rows])
    got = pg_top(store, before, after)
    expected, resets = oracle_pg_top(before, after, reset_all=True)
    assert got["reset_detected"] is True
    assert got["rows"] == expected
    assert pg_top_frame(store, before, after)["reset"].all()


def test_evicted_entries_dealloc_flag_the_pair_but_keep_the_deltas(store: Store, tmp_path: Path) -> None:
    before, after = _with_info(tmp_path, lambda rows: [{**r, "dealloc": "5"} for r in rows])
    got = pg_top(store, before, after)
    expected, _ = oracle_pg_top(before, after)
    assert got == {"reset_detected": True, "rows": expected}


def test_an_unchanged_info_pair_is_no_reset(store: Store, tmp_path: Path) -> None:
    before, after = _with_info(tmp_path, lambda rows: rows)
    assert pg_top(store, before, after)["reset_detected"] is False
    # and the info files were found beside the snapshots and read
    assert store.con.execute("SELECT count(*) FROM pg_stat_statements_info_snap").fetchall()[0][0] == 1


def test_pg_top_refuses_a_snapshot_of_another_view(store: Store) -> None:
    with pytest.raises(PerflabError, match="pg_stat_user_tables snapshot, expected pg_stat_statements"):
        pg_top(store, PG / "pg_stat_user_tables_before.csv", PG / "pg_stat_statements_after.csv")
    with pytest.raises(PerflabError, match="unknown order"):
        pg_top(store, PG / "pg_stat_statements_before.csv", PG / "pg_stat_statements_after.csv", order="max")


# -- tables, indexes, databases, activity ------------------------------------------------------

def _delta(after: Any, before: Any) -> Any:
    if after is None:
        return None
    return after - (before if before is not None else 0)


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_table_deltas_equal_plain_python(store: Store, ext: str) -> None:
    b = {r["relid"]: r for r in oracle_rows(PG / f"pg_stat_user_tables_before.{ext}", "pg_stat_user_tables")}
    a = oracle_rows(PG / f"pg_stat_user_tables_after.{ext}", "pg_stat_user_tables")
    got = {r["relid"]: r for r in table_deltas(
        store, PG / f"pg_stat_user_tables_before.{ext}", PG / f"pg_stat_user_tables_after.{ext}").to_dicts()}
    assert set(got) == {r["relid"] for r in a}
    for r in a:
        rb = b.get(r["relid"], {})
        g = got[r["relid"]]
        for c in ("seq_scan", "seq_tup_read", "idx_scan", "idx_tup_fetch", "n_tup_ins", "n_tup_upd",
                  "n_tup_del", "n_tup_hot_upd", "vacuum_count", "autovacuum_count", "analyze_count"):
            assert g[c] == _delta(r[c], rb.get(c)), (r["relname"], c)
        assert (g["n_live_tup"], g["n_dead_tup"]) == (r["n_live_tup"], r["n_dead_tup"])
        assert g["n_dead_tup_change"] == r["n_dead_tup"] - rb.get("n_dead_tup", 0)
        assert g["reset"] is False
    assert got[16416]["idx_scan"] is None  # pgbench_history has no index
    events = next(g for g in got.values() if g["relname"] == "events")
    assert events["n_tup_ins"] == next(r for r in a if r["relname"] == "events")["n_tup_ins"]  # new table


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_index_usage_equals_plain_python(store: Store, ext: str) -> None:
    b = {r["indexrelid"]: r for r in oracle_rows(PG / f"pg_stat_user_indexes_before.{ext}", "pg_stat_user_indexes")}
    a = oracle_rows(PG / f"pg_stat_user_indexes_after.{ext}", "pg_stat_user_indexes")
    got = {r["indexrelid"]: r for r in index_usage(
        store, PG / f"pg_stat_user_indexes_before.{ext}", PG / f"pg_stat_user_indexes_after.{ext}").to_dicts()}
    for r in a:
        rb = b.get(r["indexrelid"], {})
        g = got[r["indexrelid"]]
        for c in ("idx_scan", "idx_tup_read", "idx_tup_fetch"):
            assert g[c] == _delta(r[c], rb.get(c))
        assert g["idx_scan_total"] == r["idx_scan"]
        assert g["unused"] == (g["idx_scan"] == 0)
    by_name = {g["indexrelname"]: g for g in got.values()}
    assert by_name["events_account_idx"]["idx_scan"] == 2000 and by_name["events_account_idx"]["idx_tup_fetch"] == 0
    assert {n for n, g in by_name.items() if g["unused"]} == {
        "events_created_idx", "pgbench_branches_pkey", "pgbench_tellers_pkey"}


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_database_deltas_equal_plain_python(store: Store, ext: str) -> None:
    b = {r["datid"]: r for r in oracle_rows(PG / f"pg_stat_database_before.{ext}", "pg_stat_database")}
    a = oracle_rows(PG / f"pg_stat_database_after.{ext}", "pg_stat_database")
    got = {r["datid"]: r for r in database_deltas(
        store, PG / f"pg_stat_database_before.{ext}", PG / f"pg_stat_database_after.{ext}").to_dicts()}
    assert set(got) == {r["datid"] for r in a} and 0 in got  # the shared-catalog row too
    for r in a:
        rb = b[r["datid"]]
        g = got[r["datid"]]
        for c in ("xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_inserted", "temp_files",
                  "temp_bytes", "deadlocks", "blk_read_time", "session_time", "sessions"):
            assert g[c] == r[c] - rb[c], c
        hit, read = r["blks_hit"] - rb["blks_hit"], r["blks_read"] - rb["blks_read"]
        assert g["cache_hit_ratio"] == (None if hit + read == 0 else hit / (hit + read))
        assert g["reset"] is False


def test_database_stats_reset_marks_the_row(store: Store, tmp_path: Path) -> None:
    after = derive(PG / "pg_stat_database_after.csv", tmp_path / "db_after.csv", lambda rows: [
        {**r, "stats_reset": "2026-11-22 10:36:00+00"} if r["datname"] == "bench" else r for r in rows])
    frame = database_deltas(store, PG / "pg_stat_database_before.csv", after)
    bench = frame.filter(frame["datname"] == "bench").to_dicts()[0]
    raw = next(r for r in oracle_rows(after, "pg_stat_database") if r["datname"] == "bench")
    assert bench["reset"] is True and bench["xact_commit"] == raw["xact_commit"]
    assert frame["reset"].sum() == 1


def test_activity_states_count_backends_per_sample(store: Store) -> None:
    rows = oracle_rows(PG / "pg_stat_activity_samples.csv", "pg_stat_activity")
    expected = Counter((r["sample_no"], r["state"], r["wait_event_type"]) for r in rows)
    got = activity_states(store, PG / "pg_stat_activity_samples.csv")
    assert {(r["sample_no"], r["state"], r["wait_event_type"]): r["backends"] for r in got.to_dicts()} == expected
    clients = activity_states(store, PG / "pg_stat_activity_samples.jsonl", backend_type="client backend")
    expected_clients = Counter((r["sample_no"], r["state"], r["wait_event_type"]) for r in rows
                               if r["backend_type"] == "client backend")
    assert {(r["sample_no"], r["state"], r["wait_event_type"]): r["backends"]
            for r in clients.to_dicts()} == expected_clients
    assert sum(expected_clients.values()) > 0 and None not in {k[1] for k in expected_clients}


# -- encodings seen in the wild ------------------------------------------------------------------

def test_gzip_with_the_huge_record_first_is_detected_and_read(store: Store, tmp_path: Path) -> None:
    # GIVEN the JSONL with its 173,959-character record first, gzipped: the 64 kB sniff head
    # ends inside that record, so detection must read the whole first line
    import gzip

    lines = (PG / "pg_stat_statements_after.jsonl").read_text().splitlines(keepends=True)
    lines.sort(key=len, reverse=True)
    assert len(lines[0]) > 64 * 1024
    packed = tmp_path / "pgss.jsonl.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as fh:
        fh.write("".join(lines))
    sid = ingest(store, packed)
    assert meta(store, sid)["view"] == "pg_stat_statements"
    assert as_multiset(stored_rows(store, sid, "pg_stat_statements")) == as_multiset(
        oracle_rows(PG / "pg_stat_statements_after.jsonl", "pg_stat_statements"))


def test_crlf_and_a_byte_order_mark_are_read_like_plain_csv(store: Store, tmp_path: Path) -> None:
    src = PG / "pg_stat_database_after.csv"
    windows = tmp_path / "db.csv"
    windows.write_bytes(b"\xef\xbb\xbf" + src.read_text().replace("\n", "\r\n").encode())
    sid = ingest(store, windows)
    assert as_multiset(stored_rows(store, sid, "pg_stat_database")) == as_multiset(
        oracle_rows(src, "pg_stat_database"))


def test_a_header_only_csv_is_an_empty_snapshot(store: Store, tmp_path: Path) -> None:
    empty = tmp_path / "indexes.csv"
    empty.write_text((PG / "pg_stat_user_indexes_before.csv").read_text().split("\n")[0] + "\n")
    result = ingest_path(store, empty)
    assert result.stats == {"pg_stat_user_indexes rows": 0}
    assert meta(store, result.source_id)["view"] == "pg_stat_user_indexes"


def test_a_snapshot_at_column_and_unknown_columns(store: Store, tmp_path: Path) -> None:
    # a user's own export may carry its time; a newer PostgreSQL may add columns
    path = derive(PG / "pg_stat_user_indexes_after.jsonl", tmp_path / "idx.jsonl", lambda rows: [
        {**r, "snapshot_at": "2026-11-22T10:40:00+00:00", "last_idx_scan_v99": None} for r in rows])
    sid = ingest(store, path)
    assert meta(store, sid)["ignored_columns"] == ["last_idx_scan_v99"]
    assert store.con.execute(
        "SELECT DISTINCT snapshot_at FROM pg_stat_user_indexes_snap WHERE source_id = ?", [sid]
    ).fetchall() == [(datetime(2026, 11, 22, 10, 40, tzinfo=timezone.utc),)]
