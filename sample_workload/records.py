"""POST /records: the game-record write path (the false-idle signature and its fix).

WRITE_MODE=single: one INSERT and COMMIT per request on a pooled connection, held
for RECORD_HOLD_MS (± jitter) inside the transaction. A small pool then makes
requests queue for a connection while the process's CPU stays low: "false idle".
Answers 201 once the row is committed.

WRITE_MODE=batch: the record goes into an in-memory buffer and the answer is 202.
A flusher task writes the buffer every FLUSH_INTERVAL_S, or as soon as it holds
FLUSH_MAX_RECORDS, with one COPY (FLUSH_METHOD=copy) or one multi-row INSERT ...
ON CONFLICT DO UPDATE (FLUSH_METHOD=upsert) per transaction. The hold applies per
flush, so forty records share one round of latency instead of paying forty.

No accepted record is lost:
- a full buffer (BUFFER_LIMIT records not yet committed) answers 503 buffer_full
  instead of dropping anything;
- a failed flush puts its records back at the front and retries with backoff;
- shutdown (lifespan shutdown: uvicorn's SIGTERM/SIGINT) flushes what is left; only
  if the database stays unreachable past SHUTDOWN_FLUSH_TIMEOUT_S are the remaining
  records written to a spill file, which the next start writes to the database.
Each record carries a record_id made at acceptance; a flush retried after a commit
whose acknowledgement was lost rewrites the same ids, which the upsert absorbs
(COPY falls back to the upsert when it meets an id already written).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from starlette.requests import Request
from starlette.responses import JSONResponse

from sample_workload.db import RECORD_COLUMNS, Database, game_records, is_unique_violation
from sample_workload.metrics import Metrics
from sample_workload.settings import Settings
from sample_workload.state import AppState, bad_request, error_response, read_json

log = logging.getLogger("sample_workload.records")

INT32_MAX = 2**31 - 1
# Bind parameters per statement are capped (PostgreSQL: 65,535); seven columns a row.
UPSERT_MAX_ROWS = 5000
FLUSH_RETRY_FIRST_S = 0.1
FLUSH_RETRY_MAX_S = 5.0
SPILL_GLOB = "records-spill-*.jsonl"


class BufferFull(Exception):
    pass


def parse_record(body: dict[str, Any]) -> dict[str, Any]:
    """The row to write, or ValueError naming the bad field."""
    row: dict[str, Any] = {}
    for name, required, lo in (("user_id", True, 1), ("challenge_id", True, 1), ("score", True, -INT32_MAX),
                               ("duration_ms", False, 0), ("level", False, 0)):
        v = body.get(name)
        if v is None and not required:
            v = 0
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= INT32_MAX:
            raise ValueError(f"{name} must be an integer from {lo} to {INT32_MAX}")
        row[name] = v
    row["record_id"] = uuid.uuid4()
    row["accepted_at"] = datetime.now(timezone.utc)
    return row


async def post_record(request: Request) -> JSONResponse:
    state: AppState = request.app.state.workload
    try:
        row = parse_record(await read_json(request))
    except ValueError as e:
        return bad_request(str(e))
    if state.buffer is not None:
        try:
            state.buffer.add(row)
        except BufferFull:
            state.metrics.records_rejected += 1
            state.metrics.error("buffer_full")
            return error_response("buffer_full", 503, f"{state.buffer.depth} records await a flush "
                                                      f"(BUFFER_LIMIT={state.settings.buffer_limit}); retry later")
        return JSONResponse({"record_id": str(row["record_id"]), "status": "buffered"}, status_code=202)
    # single: the record is accepted once it is committed; a failure answers an error instead
    await write_batch(state.db, state.settings, [row])
    state.metrics.records_accepted += 1
    _count_written(state.metrics, [row])
    return JSONResponse({"record_id": str(row["record_id"]), "status": "written"}, status_code=201)


async def write_batch(db: Database, settings: Settings, rows: list[dict[str, Any]]) -> None:
    """One transaction: the rows, then the simulated hold, then COMMIT."""
    use_copy = settings.write_mode == "batch" and settings.flush_method == "copy" and db.dialect == "postgresql"
    try:
        async with db.connect() as conn, conn.begin():
            if use_copy:
                await _copy(db, conn, rows)
            elif settings.write_mode == "single":
                await conn.execute(game_records.insert(), rows[0])
            else:
                for i in range(0, len(rows), UPSERT_MAX_ROWS):
                    await conn.execute(_upsert(db.dialect, rows[i:i + UPSERT_MAX_ROWS]))
            await db.hold()
    except Exception as e:
        if not (use_copy and is_unique_violation(e)):
            raise
        # Some of these ids are already in the table: a retry of a flush that had committed.
        log.warning("COPY met record ids already written; writing the batch with the upsert instead")
        async with db.connect() as conn, conn.begin():
            for i in range(0, len(rows), UPSERT_MAX_ROWS):
                await conn.execute(_upsert(db.dialect, rows[i:i + UPSERT_MAX_ROWS]))


async def _copy(db: Database, conn: Any, rows: list[dict[str, Any]]) -> None:
    raw = await conn.get_raw_connection()
    pg = raw.driver_connection  # psycopg.AsyncConnection, inside SQLAlchemy's transaction
    db.metrics.count_statement()  # COPY bypasses SQLAlchemy's cursor events
    async with pg.cursor() as cur:
        async with cur.copy(f"COPY game_records ({', '.join(RECORD_COLUMNS)}) FROM STDIN") as copy:
            for r in rows:
                await copy.write_row(tuple(r[c] for c in RECORD_COLUMNS))


def _upsert(dialect: str, rows: list[dict[str, Any]]) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(game_records).values([{c: r[c] for c in RECORD_COLUMNS} for r in rows])
    return stmt.on_conflict_do_update(
        index_elements=["record_id"],
        set_={"score": stmt.excluded.score, "duration_ms": stmt.excluded.duration_ms,
              "level": stmt.excluded.level, "written_at": sa.func.now()},
    )


def _count_written(metrics: Metrics, rows: list[dict[str, Any]]) -> None:
    now = datetime.now(timezone.utc)
    lags = [(now - r["accepted_at"]).total_seconds() * 1000.0 for r in rows]
    metrics.wrote(len(rows), sum(lags), max(lags, default=0.0))


class RecordBuffer:
    """Accepted records not yet committed, and the task that writes them."""

    def __init__(self, db: Database, settings: Settings, metrics: Metrics) -> None:
        self.db, self.settings, self.metrics = db, settings, metrics
        self.pending: deque[dict[str, Any]] = deque()
        self.writing: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._failures = 0

    @property
    def depth(self) -> int:
        return len(self.pending) + len(self.writing)

    def add(self, row: dict[str, Any]) -> None:
        if self._closed or self.depth >= self.settings.buffer_limit:
            raise BufferFull
        self.pending.append(row)
        self.metrics.records_accepted += 1
        if len(self.pending) >= self.settings.flush_max_records:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="record-flusher")

    async def _run(self) -> None:
        while not self._closed:
            if self._failures:
                delay = min(FLUSH_RETRY_MAX_S, FLUSH_RETRY_FIRST_S * 2 ** (self._failures - 1))
                await asyncio.sleep(delay)
            else:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.settings.flush_interval_s)
                except asyncio.TimeoutError:
                    pass
            self._wake.clear()
            if self._closed:
                return
            await self.flush()

    async def flush(self) -> bool:
        """Write what was pending when the flush began, FLUSH_MAX_RECORDS per transaction.

        Records that arrive during the commit wait for the next tick (or the size trigger):
        chasing them would turn every flush into one big and several tiny transactions,
        and the flush interval would no longer be what sets the write rate.
        False on a failure.
        """
        budget = len(self.pending)
        while self.pending and budget > 0:
            n = min(self.settings.flush_max_records, len(self.pending), budget)
            budget -= n
            self.writing = [self.pending.popleft() for _ in range(n)]
            try:
                await write_batch(self.db, self.settings, self.writing)
            except BaseException as e:
                # Back to the front, in order: nothing accepted is dropped, whatever failed.
                self.pending.extendleft(reversed(self.writing))
                self.writing = []
                if not isinstance(e, Exception):
                    raise  # cancellation: the records are safe in pending
                self._failures += 1
                self.metrics.flush_failures += 1
                log.warning("flush of %d records failed (%s: %s); kept, retrying", n, type(e).__name__,
                            str(e).splitlines()[0] if str(e) else "")
                return False
            batch, self.writing = self.writing, []
            self._failures = 0
            self.metrics.flushes += 1
            _count_written(self.metrics, batch)
        return True

    async def close(self) -> None:
        """Stop accepting, finish the flusher, then flush the rest (or spill it)."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self.settings.shutdown_flush_timeout_s)
            except asyncio.TimeoutError:
                self._task.cancel()
                try:
                    await self._task
                except asyncio.CancelledError:
                    pass
        deadline = time.monotonic() + self.settings.shutdown_flush_timeout_s
        delay = FLUSH_RETRY_FIRST_S
        while self.pending and time.monotonic() < deadline:
            try:
                if await asyncio.wait_for(self.flush(), max(0.05, deadline - time.monotonic())):
                    break
            except asyncio.TimeoutError:
                break  # the cancelled flush has put its records back
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay *= 2
        if self.pending:
            path = spill(self.settings, list(self.pending))
            log.error("database unreachable at shutdown: %d buffered records written to %s; "
                      "the next start writes them to the database", len(self.pending), path)
            self.pending.clear()
        else:
            log.info("record buffer flushed at shutdown (%d records written in all)", self.metrics.records_written)


def spill(settings: Settings, rows: list[dict[str, Any]]) -> Path:
    folder = Path(settings.spill_dir or ".")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"records-spill-{os.getpid()}-{int(time.time())}.jsonl"
    with open(path, "w") as fh:
        for r in rows:
            fh.write(json.dumps({**r, "record_id": str(r["record_id"]),
                                 "accepted_at": r["accepted_at"].isoformat()}) + "\n")
    return path


async def restore_spills(db: Database, settings: Settings) -> int:
    """Write the records a previous run spilled at shutdown; the file goes once written."""
    n = 0
    for path in sorted(Path(settings.spill_dir or ".").glob(SPILL_GLOB)):
        rows = []
        for line in path.read_text().splitlines():
            r = json.loads(line)
            r["record_id"] = uuid.UUID(r["record_id"])
            r["accepted_at"] = datetime.fromisoformat(r["accepted_at"])
            rows.append(r)
        async with db.connect() as conn, conn.begin():
            for i in range(0, len(rows), UPSERT_MAX_ROWS):
                await conn.execute(_upsert(db.dialect, rows[i:i + UPSERT_MAX_ROWS]))
        path.unlink()
        n += len(rows)
        log.info("restored %d spilled records from %s", len(rows), path)
    return n
