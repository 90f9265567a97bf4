"""`perflab bench-writes`: the price of writing rows one at a time, measured, not quoted.

Two questions, one PostgreSQL (an EphemeralPostgres, or PERFLAB_PG_DSN):

1. Methods: the same N rows written five ways into a fresh table shaped like the
   fixture's ``events`` (bigint PK, two secondary indexes, a jsonb column), each
   repetition on a truncated table, with psycopg 3 over the Unix socket (TCP for an
   external server). Every repetition's rows are counted in PostgreSQL afterwards;
   a method that did not write exactly N rows stops the benchmark.

       single       N x INSERT, each its own transaction (autocommit)
       executemany  psycopg executemany (pipelined) in one transaction
       multirow     INSERT ... VALUES (..),(..) with bind params, chunked under 65,535 params
       copy         COPY ... FROM STDIN
       upsert       INSERT ... SELECT unnest(arrays) ON CONFLICT DO UPDATE (insert path)

2. Flush intervals: the sample service in batch mode (COPY once per interval) under
   real k6 load (POST /records at a constant arrival rate), once per interval. What
   the interval trades is read from the database afterwards:

       accepted_at (service, at 202) ──lag── written_at (now() of the flush transaction)
       e2e_latency_p95_ms = p95 of that lag over the rows this run wrote
       db_writes_per_s    = flush transactions per second (/debug/vars counters.flushes)
       records_per_s      = rows written / k6 duration

   plus k6's own p95 of the POST (what a client waits, ~constant whatever the interval).

   db_writes_per_s comes out above 1 / interval: the service's flush loop also writes,
   at once and in its own transaction, the records that arrived while the previous
   transaction was committing. ``write_transactions`` (distinct written_at values, i.e.
   transactions seen by the database, the shutdown flush included) confirms the count.

Results go to ``<store dir>/runs/<bench_id>/bench-writes.json`` and enter the store
through the ``bench-writes`` format, under run_id = bench_id.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from perflab import __version__
from perflab.errors import PerflabError
from perflab.ingest import ingest_path
from perflab.lab import scenarios
from perflab.lab.loadgen import find_k6, k6_version, run_k6
from perflab.lab.postgres import SUPERUSER, EphemeralPostgres, free_port
from perflab.lab.processes import ProcessGroup
from perflab.lab.runner import host_info, wait_ready
from perflab.lab.sample import SEED_TIMEOUT_S
from perflab.manifest import Manifest
from perflab.store import Store
from perflab.vocab import BENCH_WRITES

FILE_NAME = "bench-writes.json"
FORMAT_VERSION = 1
METHODS = ("single", "executemany", "multirow", "copy", "upsert")
BASELINE = "single"

DEFAULT_ROWS = 5000  # the fixture's run1: single-row takes ~2.5 s, long enough to time
DEFAULT_REPS = 3  # the median of three shrugs off one repetition hit by a neighbour's burst
DEFAULT_INTERVALS = (0.5, 1.0, 2.0, 5.0)  # the tuning guide's §2 table rows
DEFAULT_RECORD_RATE = 200.0  # records/s: a 5 s interval then fills one 1,000-record flush
# Each interval's k6 run lasts at least this long and covers at least this many flush
# periods, so the lag distribution holds whole cycles (a cycle is one sawtooth 0..interval).
MIN_DURATION_S = 10.0
MIN_FLUSH_PERIODS = 3
MIN_DURATION_OVERRIDE_S = 3.0  # below this k6's start-up is a large share of the run

# PostgreSQL's wire protocol numbers bind parameters with an int16: 65,535 per statement.
PG_MAX_BIND_PARAMS = 65_535
E2E_PERCENTILE = 0.95
SERVICE_LOG_LEVEL = "warning"  # info logs every request: its cost would be measured too

TABLE = "perflab_bench_events"  # not `events`: PERFLAB_PG_DSN may point at a user's database
COLUMNS = ("id", "account_id", "kind", "amount", "payload")
DDL = (
    f"DROP TABLE IF EXISTS {TABLE}",
    f"""CREATE TABLE {TABLE} (
  id bigint PRIMARY KEY,
  account_id int NOT NULL,
  kind text NOT NULL,
  amount numeric(12,2) NOT NULL,
  payload jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
)""",
    f"CREATE INDEX {TABLE}_account_idx ON {TABLE} (account_id)",
    f"CREATE INDEX {TABLE}_created_idx ON {TABLE} (created_at)",
)
ACCOUNTS = 1000
KINDS = ("deposit", "withdrawal", "transfer", "fee", "refund")
INSERT_SQL = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES (%s, %s, %s, %s, %s)"
UPSERT_SQL = (
    f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) "
    "SELECT * FROM unnest(%s::bigint[], %s::int[], %s::text[], %s::numeric[], %s::jsonb[]) "
    "ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount, kind = EXCLUDED.kind, payload = EXCLUDED.payload"
)
COPY_SQL = f"COPY {TABLE} ({', '.join(COLUMNS)}) FROM STDIN"

Row = tuple[int, int, str, Decimal, str]


class BenchmarkError(PerflabError):
    """A measurement that cannot be trusted (rows missing, a record lost): not a user mistake."""

    exit_code = 1


@dataclass
class BenchOptions:
    rows: int = DEFAULT_ROWS
    reps: int = DEFAULT_REPS
    intervals: Sequence[float] = DEFAULT_INTERVALS
    record_rate: float = DEFAULT_RECORD_RATE
    duration_s: float | None = None  # None: max(MIN_DURATION_S, MIN_FLUSH_PERIODS x interval)
    live: bool = True
    bench_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.rows < 1:
            raise PerflabError(f"--rows {self.rows}: must be at least 1")
        if self.reps < 1:
            raise PerflabError(f"--reps {self.reps}: must be at least 1")
        if not self.intervals or any(not (i > 0) for i in self.intervals):
            raise PerflabError("--intervals: give one or more positive numbers of seconds, e.g. 0.5,1,2,5")
        if not self.record_rate > 0:
            raise PerflabError(f"--record-rate {self.record_rate:g}: must be positive")
        if self.duration_s is not None and self.duration_s < MIN_DURATION_OVERRIDE_S:
            raise PerflabError(f"--duration {self.duration_s:g}: must be at least {MIN_DURATION_OVERRIDE_S:g} seconds")


def interval_duration(interval_s: float, override_s: float | None = None) -> float:
    """The k6 duration of one interval's run."""
    if override_s is not None:
        return float(override_s)
    return max(MIN_DURATION_S, MIN_FLUSH_PERIODS * interval_s)


def new_bench_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-bench-writes-{secrets.token_hex(2)}"


# -- 1. methods ------------------------------------------------------------------------------

def event_rows(n: int) -> list[Row]:
    """N deterministic rows: the same content for every method and repetition."""
    return [
        (i, i % ACCOUNTS + 1, KINDS[i % len(KINDS)], Decimal(i % 1_000_000) / 100,
         json.dumps({"tag": f"t{i % 50}", "seq": i, "source": "perflab"}))
        for i in range(1, n + 1)
    ]


def multirow_chunks(rows: list[Row]) -> list[tuple[str, list[Any]]]:
    """(statement, flat params) per chunk, each under PostgreSQL's bind-parameter cap."""
    per_stmt = PG_MAX_BIND_PARAMS // len(COLUMNS)
    one = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
    out = []
    for start in range(0, len(rows), per_stmt):
        chunk = rows[start:start + per_stmt]
        sql = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES " + ", ".join([one] * len(chunk))
        out.append((sql, [v for r in chunk for v in r]))
    return out


def _write_single(conn: Any, rows: list[Row], _prep: Any) -> None:
    with conn.cursor() as cur:  # autocommit: every INSERT commits on its own
        for r in rows:
            cur.execute(INSERT_SQL, r)


def _write_executemany(conn: Any, rows: list[Row], _prep: Any) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(INSERT_SQL, rows)  # psycopg >= 3.1 pipelines this


def _write_multirow(conn: Any, rows: list[Row], chunks: list[tuple[str, list[Any]]]) -> None:
    with conn.transaction(), conn.cursor() as cur:
        for sql, params in chunks:
            cur.execute(sql, params)


def _write_copy(conn: Any, rows: list[Row], _prep: Any) -> None:
    with conn.transaction(), conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
        for r in rows:
            copy.write_row(r)


def _write_upsert(conn: Any, rows: list[Row], arrays: list[list[Any]]) -> None:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(UPSERT_SQL, arrays)


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    write: Callable[[Any, list[Row], Any], None]
    # Shapes the rows into the method's parameters before the clock starts: building
    # a statement's text and flattening tuples is the client's, not the database's, cost.
    prepare: Callable[[list[Row]], Any] = lambda rows: None


METHOD_TABLE: dict[str, Method] = {m.name: m for m in (
    Method("single", "N x INSERT, each its own transaction (autocommit)", _write_single),
    Method("executemany", "psycopg executemany (pipelined) in one transaction", _write_executemany),
    Method("multirow", "INSERT ... VALUES (..),(..) with bind params, chunked under 65,535 params, "
           "one transaction", _write_multirow, multirow_chunks),
    Method("copy", "COPY ... FROM STDIN (text rows), one transaction", _write_copy),
    Method("upsert", "INSERT ... SELECT unnest(arrays) ON CONFLICT (id) DO UPDATE, empty table",
           _write_upsert, lambda rows: [list(col) for col in zip(*rows, strict=True)]),
)}


def bench_methods(dsn: str, rows: int, reps: int, say: Callable[[str], None] = lambda m: None,
                  methods: Sequence[str] = METHODS) -> list[dict[str, Any]]:
    """Median seconds per method over ``reps`` repetitions, every repetition kept.

    Repetitions are interleaved (rep 1 of every method, then rep 2, ...) so a burst of
    load from elsewhere on the machine lands on all methods alike, not on one.
    """
    data = event_rows(rows)
    prepared = {m: METHOD_TABLE[m].prepare(data) for m in methods}
    times: dict[str, list[float]] = {m: [] for m in methods}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for stmt in DDL:
            conn.execute(stmt)
        try:
            for rep in range(1, reps + 1):
                for name in methods:
                    conn.execute(f"TRUNCATE {TABLE}")
                    t0 = time.perf_counter()
                    METHOD_TABLE[name].write(conn, data, prepared[name])
                    seconds = time.perf_counter() - t0
                    written = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchall()[0][0]
                    if written != rows:
                        raise BenchmarkError(f"bench-writes: method {name} (rep {rep}) left {written} rows "
                                             f"in {TABLE}, expected {rows}")
                    times[name].append(seconds)
                    say(f"methods rep {rep}/{reps}: {name:<11} {rows} rows in {seconds:.3f} s "
                        f"({rows / seconds:,.0f} rows/s)")
        finally:
            conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    return summarize_methods(rows, times)


def summarize_methods(rows: int, times: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Pure: per-method median, rows/s and speed-up against single (when single ran)."""
    out: list[dict[str, Any]] = []
    for name, reps_s in times.items():
        median = statistics.median(reps_s)
        out.append({"method": name, "description": METHOD_TABLE[name].description, "rows": rows,
                    "seconds": round(median, 6), "rows_per_s": round(rows / median, 1),
                    "reps": len(reps_s), "reps_seconds": [round(s, 6) for s in reps_s]})
    base = next((m["rows_per_s"] for m in out if m["method"] == BASELINE), None)
    for m in out:
        m["x_single"] = round(m["rows_per_s"] / base, 2) if base else None
    return out


# -- 2. flush intervals ----------------------------------------------------------------------

def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback
        doc: dict[str, Any] = json.loads(resp.read())
        return doc


def _pg_scalar(dsn: str, sql: str, params: Sequence[Any] = ()) -> Any:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, list(params)).fetchall()[0][0]


def lag_stats(dsn: str, after_id: int) -> dict[str, Any]:
    """Rows written after ``after_id`` and their accepted_at → written_at lag, in PostgreSQL."""
    sql = """
        SELECT count(*),
               percentile_cont(%s) WITHIN GROUP (ORDER BY lag_ms),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_ms),
               max(lag_ms),
               count(DISTINCT written_at)
        FROM (SELECT written_at, extract(epoch FROM written_at - accepted_at)::float8 * 1000 AS lag_ms
              FROM game_records WHERE id > %s) s"""
    with psycopg.connect(dsn, autocommit=True) as conn:
        n, p95, p50, mx, txns = conn.execute(sql, [E2E_PERCENTILE, after_id]).fetchall()[0]
    # written_at is now() of the writing transaction, so its distinct values count the
    # transactions that wrote rows, the shutdown flush included: the database's own tally.
    return {"records_written": int(n), "e2e_latency_p95_ms": p95, "e2e_latency_p50_ms": p50,
            "e2e_latency_max_ms": mx, "write_transactions": int(txns)}


def _k6_numbers(summary_path: Path) -> dict[str, Any]:
    m = json.loads(summary_path.read_text())["metrics"]
    dur = m.get("http_req_duration", {})
    return {"post_p95_ms": dur.get("p(95)"), "post_p50_ms": dur.get("med"),
            "k6_requests": int(m.get("http_reqs", {}).get("count", 0)),
            "k6_failed_rate": m.get("http_req_failed", {}).get("value"),
            "k6_dropped_iterations": int(m.get("dropped_iterations", {}).get("count", 0))}


def bench_flush_interval(dsn: str, libpq_dsn: str, interval_s: float, rate: float, duration_s: float,
                         out_dir: Path, k6_bin: str, live: bool = True,
                         say: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """One service run in batch mode at one flush interval; numbers from the database."""
    out_dir.mkdir(parents=True, exist_ok=True)
    after_id = int(_pg_scalar(libpq_dsn, "SELECT coalesce(max(id), 0) FROM game_records"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": dsn, "PORT": str(port), "HOST": "127.0.0.1",
           "WRITE_MODE": "batch", "FLUSH_INTERVAL_S": f"{interval_s:g}", "FLUSH_METHOD": "copy",
           "LOG_LEVEL": SERVICE_LOG_LEVEL,
           # Records that could not be flushed at shutdown land here, not in the repository.
           "SPILL_DIR": str(out_dir)}
    env.pop("PERFLAB_STORE", None)
    procs_seen: dict[str, Any] = {"service_port": port}
    with ProcessGroup() as procs:
        service = procs.start("service", [sys.executable, "-m", "sample_workload", "serve"], env=env,
                              cwd=scenarios.WORKLOAD_DIR.parent, log=out_dir / "service.log")
        procs_seen["service_pid"] = service.pid
        wait_ready(f"{base}/debug/vars?db=0", service, out_dir / "service.log")
        before = _get_json(f"{base}/debug/vars?db=0")["counters"]

        def started(proc: Any) -> None:
            procs.adopt("k6", proc)
            procs_seen["k6_pid"] = proc.pid

        say(f"interval {interval_s:g} s: k6 POST /records at {rate:g}/s for {duration_s:g} s")
        run_k6(scenarios.WORKLOAD_DIR / "k6" / "false-idle.js", out_dir,
               {"BASE_URL": base, "RATE": f"{rate:g}", "DURATION": f"{duration_s:g}s"},
               binary=k6_bin, live=live, on_start=started)
        after = _get_json(f"{base}/debug/vars?db=0")["counters"]
        (out_dir / "debug_vars_final.json").write_text(json.dumps(after, indent=2, sort_keys=True) + "\n")
        # SIGTERM: the service flushes what is still buffered before it exits.
        procs.stop("service")
    flushes = int(after["flushes"] - before["flushes"])
    accepted = int(after["records_accepted"] - before["records_accepted"])
    lag = lag_stats(libpq_dsn, after_id)
    if lag["records_written"] != accepted:
        raise BenchmarkError(f"bench-writes: interval {interval_s:g} s: the service accepted {accepted} records "
                             f"but {lag['records_written']} reached game_records (see {out_dir / 'service.log'})")
    k6 = _k6_numbers(out_dir / "k6-summary.json")
    result = {
        "interval_s": float(interval_s),
        "duration_s": float(duration_s),
        "record_rate": float(rate),
        "records_written": lag["records_written"],
        "flushes": flushes,
        "write_transactions": lag["write_transactions"],
        "records_per_flush": round(lag["records_written"] / flushes, 1) if flushes else None,
        "e2e_latency_p95_ms": _r(lag["e2e_latency_p95_ms"], 2),
        "e2e_latency_p50_ms": _r(lag["e2e_latency_p50_ms"], 2),
        "e2e_latency_max_ms": _r(lag["e2e_latency_max_ms"], 2),
        "db_writes_per_s": round(flushes / duration_s, 3),
        "records_per_s": round(lag["records_written"] / duration_s, 3),
        **{k: (_r(v, 3) if isinstance(v, float) else v) for k, v in k6.items()},
    }
    say(f"interval {interval_s:g} s: e2e p95 {result['e2e_latency_p95_ms']:.0f} ms, "
        f"{result['db_writes_per_s']:.2f} writes/s, {result['records_per_s']:.1f} records/s, "
        f"POST p95 {result['post_p95_ms'] or float('nan'):.1f} ms")
    return {**result, "_processes": procs_seen}


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


# -- the whole benchmark ---------------------------------------------------------------------

def run(store: Store, opts: BenchOptions) -> dict[str, Any]:
    """Measure both parts, write bench-writes.json, ingest it; return the document + where it went."""
    opts.validate()
    bench_id = opts.bench_id or new_bench_id()
    run_dir = store.path.parent / "runs" / bench_id
    run_dir.mkdir(parents=True, exist_ok=True)
    say = _say if opts.live else (lambda msg: None)
    k6_bin = find_k6()
    started_at = datetime.now(UTC).isoformat()
    host = host_info().to_dict()
    versions = {"perflab": __version__, "python": platform.python_version(),
                "psycopg": psycopg.__version__, "libpq": str(psycopg.pq.version()), "k6": k6_version(k6_bin)}
    intervals = [float(i) for i in opts.intervals]
    settings: dict[str, Any] = {
        "rows": opts.rows, "reps": opts.reps, "methods": list(METHODS), "table": TABLE,
        "intervals_s": intervals, "record_rate": float(opts.record_rate),
        "durations_s": {f"{i:g}": interval_duration(i, opts.duration_s) for i in intervals},
        "k6_script": "sample_workload/k6/false-idle.js",
        "service": {"WRITE_MODE": "batch", "FLUSH_METHOD": "copy", "LOG_LEVEL": SERVICE_LOG_LEVEL},
        **opts.extra,
    }
    manifest = Manifest(kind=BENCH_WRITES, started_at=started_at, settings=settings, status="incomplete")
    with store.transaction():
        store.ensure_run(bench_id, scenario=BENCH_WRITES, variant="default", status="incomplete",
                         manifest=manifest.to_json())
    processes: dict[str, Any] = {"intervals": []}
    try:
        t = time.perf_counter()
        say(f"bench {bench_id}: starting PostgreSQL")
        with EphemeralPostgres() as pg:
            processes["postgres"] = {"pid": pg.pid, "port": pg.port,
                                     "datadir": str(pg.tmpdir) if pg.tmpdir else None}
            direct = pg.libpq_dsn
            if not pg.external:
                # The Unix socket, as the fixture was measured: no TCP stack in the round trip.
                direct = f"host={pg.socket_dir} port={pg.port} dbname={pg.database} user={SUPERUSER}"
            settings["transport"] = "tcp" if pg.external else "unix"
            settings["postgres_external"] = pg.external
            versions["postgres"] = str(_pg_scalar(direct, "SHOW server_version"))
            settings["postgres"] = {k: str(_pg_scalar(direct, f"SHOW {k}"))
                                    for k in ("fsync", "synchronous_commit", "shared_buffers")}
            timings = {"postgres_start": round(time.perf_counter() - t, 3)}

            t = time.perf_counter()
            say(f"methods: {opts.rows} rows x {opts.reps} reps: {', '.join(METHODS)}")
            methods = bench_methods(direct, opts.rows, opts.reps, say)
            timings["methods"] = round(time.perf_counter() - t, 3)

            t = time.perf_counter()
            say("seeding the service's database")
            _seed(pg.dsn, run_dir)
            timings["seed"] = round(time.perf_counter() - t, 3)
            flush = []
            for interval in intervals:
                t = time.perf_counter()
                row = bench_flush_interval(pg.dsn, pg.libpq_dsn, interval, opts.record_rate,
                                           interval_duration(interval, opts.duration_s),
                                           run_dir / f"interval-{interval:g}s", k6_bin, opts.live, say)
                processes["intervals"].append({"interval_s": interval, **row.pop("_processes")})
                flush.append(row)
                timings[f"interval_{interval:g}s"] = round(time.perf_counter() - t, 3)
        # Leaving the block stopped PostgreSQL (and each ProcessGroup its service and k6).
        host["load_avg_1m_at_end"] = os.getloadavg()[0]
        finished_at = datetime.now(UTC).isoformat()
        doc = {
            "perflab": BENCH_WRITES, "version": FORMAT_VERSION, "bench_id": bench_id,
            "started_at": started_at, "finished_at": finished_at,
            "host": host, "versions": versions, "settings": settings, "timings_s": timings,
            "methods": methods, "flush_intervals": flush,
        }
        path = write_document(run_dir / FILE_NAME, doc)
        say("ingesting")
        result = ingest_path(store, path, run_id=bench_id)
        manifest.status, manifest.finished_at = "complete", finished_at
        manifest.extra.update(file=FILE_NAME, source_id=result.source_id)
        with store.transaction():
            store.ensure_run(bench_id, status="complete", manifest=manifest.to_json())
    except BaseException as exc:
        manifest.status, manifest.finished_at = "incomplete", datetime.now(UTC).isoformat()
        manifest.error = f"{type(exc).__name__}: {exc}".strip()
        try:
            with store.transaction():
                store.ensure_run(bench_id, status="incomplete", manifest=manifest.to_json())
        except Exception:  # noqa: BLE001 - the original error matters more
            pass
        raise
    return {**{k: v for k, v in doc.items() if k not in ("perflab", "version")},
            "run_dir": str(run_dir), "file": str(path), "source_id": result.source_id,
            "processes": processes}


def _seed(dsn: str, run_dir: Path) -> None:
    env = {**os.environ, "DATABASE_URL": dsn, "LOG_LEVEL": SERVICE_LOG_LEVEL}
    env.pop("PERFLAB_STORE", None)
    seed = subprocess.run([sys.executable, "-m", "sample_workload", "seed"], env=env,
                          cwd=scenarios.WORKLOAD_DIR.parent, capture_output=True, text=True,
                          timeout=SEED_TIMEOUT_S, stdin=subprocess.DEVNULL)
    (run_dir / "seed.log").write_text(seed.stdout + seed.stderr)
    if seed.returncode != 0:
        lines = [ln for ln in (seed.stderr or seed.stdout).strip().splitlines() if ln.strip()]
        raise PerflabError(f"seeding failed: {lines[-1] if lines else 'no output'}")


def write_document(path: Path, doc: dict[str, Any]) -> Path:
    """The format tag first (detection reads the head), everything else in sorted order."""
    head = {"perflab": doc["perflab"], "version": doc["version"]}
    rest = {k: _sorted(doc[k]) for k in sorted(doc) if k not in head}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({**head, **rest}, indent=2) + "\n")
    tmp.replace(path)
    return path


def _sorted(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _sorted(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [_sorted(v) for v in obj]
    return obj


def _say(msg: str) -> None:
    print(f"perflab: {msg}", file=sys.stderr, flush=True)
