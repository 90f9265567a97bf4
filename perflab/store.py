"""The DuckDB store: one file, the sources registry, one transaction per ingest.

The store knows tables, not formats: ingesters (perflab.ingest) write into it,
analyses (perflab.analysis) read from it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from perflab import schema
from perflab.errors import PerflabError, StoreError
from perflab.private import private_dirs, private_file
from perflab.vocab import SAMPLE_SERVICE_VARS_ROLES

if TYPE_CHECKING:
    import polars as pl

DEFAULT_STORE = Path("data") / "perflab.duckdb"

def _add_metrics_tables(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in schema.block_statements(schema.METRICS_DDL):
        con.execute(stmt)
    con.execute(
        "INSERT INTO run_roles SELECT DISTINCT v.run_id, r.role, r.metric FROM service_vars v, "
        "(SELECT unnest(?) AS role, unnest(?) AS metric) r WHERE v.run_id IS NOT NULL",
        [list(SAMPLE_SERVICE_VARS_ROLES), list(SAMPLE_SERVICE_VARS_ROLES.values())])


def _add_run_summaries(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in schema.block_statements(schema.SUMMARIES_DDL):
        con.execute(stmt)


def _add_k6_summaries(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in schema.block_statements(schema.K6_SUMMARIES_DDL):
        con.execute(stmt)


# Migrations from version N to N+1, applied in one transaction when an older store is
# opened: 1 → 2 added a service's metric samples and the run's role mappings, 2 → 3 the
# runs' stored headline numbers, 3 → 4 the k6 sources' stored summaries (both computed
# again when first asked for).
MIGRATIONS: dict[int, Callable[[duckdb.DuckDBPyConnection], None]] = {1: _add_metrics_tables,
                                                                      2: _add_run_summaries,
                                                                      3: _add_k6_summaries}

# Tables of results computed from other rows (not read from a file): forgetting a source
# removes its rows there too, but they are not what `perflab forget` says it removes.
DERIVED_TABLES = ("k6_summaries",)


# How long opening a store waits for another process's lock (a notebook kernel, a nightly
# ingesting), in seconds; PERFLAB_LOCK_WAIT overrides, 0 fails at once.
DEFAULT_LOCK_WAIT_S = 30.0
LOCK_POLL_S = 0.2
_HELD = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")


def lock_wait_s() -> float:
    text = os.environ.get("PERFLAB_LOCK_WAIT", "")
    try:
        return max(0.0, float(text)) if text else DEFAULT_LOCK_WAIT_S
    except ValueError:
        raise StoreError(f"PERFLAB_LOCK_WAIT={text!r}: not a number of seconds") from None


def _connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """DuckDB's connection, waiting while another process holds the file's lock: DuckDB lets
    one process write, or several read, never both. A live line names the holder."""
    wait = lock_wait_s()
    deadline = time.monotonic() + wait
    said = False
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            if said and sys.stderr.isatty():
                print(file=sys.stderr)  # end the live line
            return con
        except duckdb.IOException as exc:
            held = _HELD.search(str(exc))
            if held is None:
                raise StoreError(f"{path}: cannot open the store: {_first_line(exc)}") from None
            holder = f"PID {held.group(2)} ({Path(held.group(1)).name})"
            if time.monotonic() >= deadline:
                if said:
                    print(file=sys.stderr)
                raise StoreError(f"{path}: the store is held by {holder}; gave up after {wait:g} s (another perflab "
                                 "command, or a notebook cell still running; PERFLAB_LOCK_WAIT sets the wait)"
                                 ) from None
            left = deadline - time.monotonic()
            end = "\r" if sys.stderr.isatty() else "\n"
            if sys.stderr.isatty() or not said:
                print(f"perflab: {path} is held by {holder}; waiting up to {left:.0f} s", end=end,
                      file=sys.stderr, flush=True)
            said = True
            time.sleep(LOCK_POLL_S)
        except duckdb.Error as exc:
            raise StoreError(f"{path}: cannot open the store: {_first_line(exc)}") from None


def default_store_path() -> Path:
    env = os.environ.get("PERFLAB_STORE")
    return Path(env) if env else DEFAULT_STORE


class Store:
    """An open store. ``con`` is a plain DuckDB connection for ad-hoc SQL."""

    def __init__(self, path: str | os.PathLike[str] | None = None, read_only: bool = False) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.read_only = read_only
        if not read_only:
            private_dirs(self.path.parent)
        created = not read_only and not self.path.exists()
        self._con = self._open()
        self._released = False
        if created and self.path.exists():
            private_file(self.path)
        self._in_tx = False
        try:
            self._check_schema(read_only)
        except BaseException:
            self.con.close()  # so that the caller may open the file again, to write
            raise

    def _open(self) -> duckdb.DuckDBPyConnection:
        con = _connect(self.path, self.read_only)
        # DuckDB draws its progress bar on stdout whatever stdout is; only a terminal
        # should get it, or `perflab top --json > x.json` would be corrupted.
        # Inside a Jupyter kernel without ipywidgets DuckDB refuses the setting; a
        # kernel's stdout is no terminal, so the bar would be off there anyway.
        with contextlib.suppress(duckdb.InvalidInputException):
            con.execute(f"SET enable_progress_bar = {'true' if _interactive() else 'false'}")
        return con

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection, opened again if :meth:`release` let the file go."""
        if self._released:
            self._con = self._open()
            self._released = False
        return self._con

    def release(self) -> None:
        """Let the file go until the store is next used: other processes may then open it
        (a notebook kernel calls this after every cell, so `perflab ingest` or a nightly is
        never stranded by a notebook left open). Never inside a transaction."""
        if not self._in_tx and not self._released:
            self._con.close()
            self._released = True

    # -- schema -------------------------------------------------------------------
    def _tables(self) -> set[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
        return {r[0] for r in rows}

    def _check_schema(self, read_only: bool) -> None:
        tables = self._tables()
        if not tables:
            if read_only:
                raise StoreError(f"{self.path}: the store is empty (ingest something first)", needs_writing=True)
            with self.transaction():
                for stmt in schema.statements():
                    self.con.execute(stmt)
                self.con.execute(
                    "INSERT INTO perflab_meta VALUES ('schema_version', ?), ('created_at', ?)",
                    [str(schema.SCHEMA_VERSION), _now().isoformat()],
                )
            return
        if "perflab_meta" not in tables:
            raise StoreError(f"{self.path}: not a perflab store (a DuckDB file with other tables)")
        row = self.con.execute(
            "SELECT value FROM perflab_meta WHERE key = 'schema_version'"
        ).fetchall()
        version = int(row[0][0]) if row else 0
        if version == schema.SCHEMA_VERSION:
            return
        if version > schema.SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: store schema version {version} is newer than this perflab "
                f"(reads version {schema.SCHEMA_VERSION}); upgrade perflab"
            )
        if read_only:
            raise StoreError(
                f"{self.path}: store schema version {version} needs migrating to "
                f"{schema.SCHEMA_VERSION}; open it once without read-only", needs_writing=True
            )
        missing = [v for v in range(version, schema.SCHEMA_VERSION) if v not in MIGRATIONS]
        if missing:
            raise StoreError(
                f"{self.path}: store schema version {version} cannot be migrated to "
                f"{schema.SCHEMA_VERSION}; ingest the sources again into a new store"
            )
        with self.transaction():
            for v in range(version, schema.SCHEMA_VERSION):
                MIGRATIONS[v](self.con)
            self.con.execute(
                "UPDATE perflab_meta SET value = ? WHERE key = 'schema_version'",
                [str(schema.SCHEMA_VERSION)],
            )

    @property
    def schema_version(self) -> int:
        return int(
            self.con.execute("SELECT value FROM perflab_meta WHERE key='schema_version'").fetchall()[0][0]
        )

    # -- transactions -------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: any exception rolls back every write made inside."""
        if self._in_tx:
            yield self.con
            return
        self.con.execute("BEGIN TRANSACTION")
        self._in_tx = True
        try:
            yield self.con
        except BaseException:
            self._in_tx = False
            with contextlib.suppress(duckdb.Error):
                self.con.execute("ROLLBACK")
            raise
        else:
            self._in_tx = False
            self.con.execute("COMMIT")

    # -- sources ------------------------------------------------------------------
    def next_source_id(self) -> int:
        # max()+1 rather than a sequence: a rolled-back ingest must leave no gap or trace.
        return int(self.con.execute("SELECT coalesce(max(source_id), 0) + 1 FROM sources").fetchall()[0][0])

    def _row(self, query: str, params: list[Any]) -> dict[str, Any] | None:
        # One row as a dict, without polars: `perflab k6 SOURCE` reading a stored summary
        # needs nothing else (polars and pyarrow were a third of its time).
        cur = self.con.execute(query, params)
        rows = cur.fetchall()  # all: DuckDB refuses other work while a result is half read
        return dict(zip([d[0] for d in cur.description], rows[0], strict=True)) if rows else None

    def source_by_sha(self, sha256: str) -> dict[str, Any] | None:
        return self._row("SELECT * FROM sources WHERE sha256 = ?", [sha256])

    def source(self, source_id: int) -> dict[str, Any]:
        row = self._row("SELECT * FROM sources WHERE source_id = ?", [int(source_id)])
        if row is None:
            raise PerflabError(f"no source {source_id} in {self.path}")
        return row

    def add_source(
        self,
        source_id: int,
        kind: str,
        path: str,
        nbytes: int,
        sha256: str,
        run_id: str | None,
        meta: str | None,
    ) -> None:
        self.con.execute(
            "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [source_id, kind, path, nbytes, sha256, _now(), run_id, meta],
        )
        if run_id is not None:
            self.ensure_run(run_id)

    def ensure_run(self, run_id: str, **fields: Any) -> None:
        """Register a run id (lab runs fill scenario/variant/status; user groups leave them NULL)."""
        exists = self.con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchall()
        if not exists:
            self.con.execute(
                "INSERT INTO runs (run_id, created_at) VALUES (?, ?)", [run_id, _now()]
            )
        for key, value in fields.items():
            if key not in {"scenario", "variant", "status", "manifest"}:
                raise ValueError(f"unknown run field {key}")
            self.con.execute(f"UPDATE runs SET {key} = ? WHERE run_id = ?", [value, run_id])

    def set_roles(self, run_id: str, roles: dict[str, str]) -> None:
        """Record which metric plays each role in a run (replacing an earlier mapping of a role).

        Callers check role names against perflab.vocab.SIGNAL_ROLES; the store keeps rows."""
        self.ensure_run(run_id)
        for role, metric in sorted(roles.items()):
            self.con.execute("INSERT OR REPLACE INTO run_roles VALUES (?, ?, ?)", [run_id, role, metric])

    def find_source(self, ref: str | int | os.PathLike[str], kinds: tuple[str, ...] | None = None) -> int:
        """A stored source: by its id, or by the path of a file whose content is stored.

        Never ingests (the store knows tables, not formats): a file not yet stored is an
        error here; ``perflab.ingest.resolve`` ingests it first.
        """
        text = str(ref)
        path = Path(text)
        if not path.exists() and text.isdigit():
            src = self.source(int(text))
            if kinds and src["kind"] not in kinds:
                raise PerflabError(f"source {text} is {src['kind']}, expected {' or '.join(kinds)}")
            return int(src["source_id"])
        if not path.is_file():
            raise PerflabError(f"{text}: no such file, and not a source id")
        found = self.source_by_sha(file_sha256(path))
        if found is None:
            raise PerflabError(f"{text}: not in the store (ingest it first: perflab ingest {text})")
        if kinds and found["kind"] not in kinds:
            raise PerflabError(f"{text}: is {found['kind']}, expected {' or '.join(kinds)}")
        return int(found["source_id"])

    # -- forgetting ---------------------------------------------------------------
    def _tables_with(self, column: str, derived: bool = True) -> list[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'main' "
            "AND column_name = ? AND table_name NOT IN ('sources', 'runs') ORDER BY table_name",
            [column]).fetchall()
        return [str(r[0]) for r in rows if derived or r[0] not in DERIVED_TABLES]

    def run_source_ids(self, run_id: str) -> list[int]:
        return [int(r[0]) for r in self.con.execute(
            "SELECT source_id FROM sources WHERE run_id = ? ORDER BY source_id", [run_id]).fetchall()]

    def source_rows(self, source_ids: list[int]) -> dict[str, int]:
        """How many rows each table holds for these sources (tables with none left out)."""
        if not source_ids:
            return {}
        ids = [int(i) for i in source_ids]
        counts = {t: int(self.con.execute(f"SELECT count(*) FROM {t} WHERE source_id = ANY(?)",  # noqa: S608
                                          [ids]).fetchall()[0][0])
                  for t in self._tables_with("source_id", derived=False)}
        return {t: n for t, n in counts.items() if n}

    def forget_sources(self, source_ids: list[int]) -> None:
        """Remove sources and every row read from them, in the caller's transaction or one of its own."""
        ids = [int(i) for i in source_ids]
        with self.transaction():
            for table in self._tables_with("source_id"):
                self.con.execute(f"DELETE FROM {table} WHERE source_id = ANY(?)", [ids])  # noqa: S608
            self.con.execute("DELETE FROM sources WHERE source_id = ANY(?)", [ids])

    def forget_run(self, run_id: str) -> list[int]:
        """Remove a run: its sources with their rows, its role mappings, its runs row. Returns
        the source ids removed. One transaction: all of it or nothing."""
        with self.transaction():
            ids = self.run_source_ids(run_id)
            self.forget_sources(ids)
            # Rows that carry the run id without a source of the run (none today) go too.
            for table in self._tables_with("run_id"):
                self.con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])  # noqa: S608
            self.con.execute("DELETE FROM runs WHERE run_id = ?", [run_id])
        return ids

    # -- reading ------------------------------------------------------------------
    def sql(self, query: str, params: list[Any] | None = None) -> pl.DataFrame:
        """Run a query and return a polars DataFrame (through Arrow, no Python rows)."""
        import polars as pl  # here: a verb that reads one stored row should not load polars

        # Optional: DuckDB's stubs say a relation, but a statement that returns no rows gives None.
        rel: duckdb.DuckDBPyRelation | None = self.con.sql(query, params=params or None)
        if rel is None:
            return pl.DataFrame()
        frame = pl.from_arrow(rel.to_arrow_table())
        assert isinstance(frame, pl.DataFrame)  # a table gives a DataFrame; only an array gives a Series
        return frame

    def close(self) -> None:
        self._con.close()
        self._released = False  # closed for good: using it now is an error, not a reopening

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(path: str | os.PathLike[str] | None = None, read_only: bool = False) -> Store:
    return Store(path, read_only=read_only)


def list_sources(store: Store) -> pl.DataFrame:
    return store.sql(
        "SELECT source_id, kind, path, bytes, sha256, run_id, ingested_at "
        "FROM sources ORDER BY source_id"
    )


def file_sha256(path: Path) -> str:
    """The content hash that identifies a source (what ingest de-duplicates by)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()


def _interactive() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _now() -> datetime:
    return datetime.now(UTC)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
