"""POST /login: a bcrypt password check, the CPU-bound path (the login storm).

bcrypt releases the GIL, so the check runs in a worker thread: the event loop keeps
serving other requests and one process can use every core (LAB-NOTES measured 195 %
of one core on two). Called on the event loop instead, it would cap at one core and
stall every other request. The connection goes back to the pool before hashing:
holding it through 240 ms of CPU would turn a CPU problem into a pool problem too.
"""

from __future__ import annotations

import secrets

import anyio.to_thread
import bcrypt
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse

from sample_workload.db import users
from sample_workload.seed import SEED_PASSWORD
from sample_workload.state import AppState, bad_request, read_json


def check_password(password: bytes, stored_hash: bytes) -> bool:
    # A profile shows bcrypt's time on this frame: bcrypt.checkpw is native code.
    return bcrypt.checkpw(password, stored_hash)


async def login(request: Request) -> JSONResponse:
    state: AppState = request.app.state.workload
    body = await read_json(request)
    user, password = body.get("user"), body.get("password")
    if not isinstance(user, str) or not isinstance(password, str) or not user or len(password) > 72:
        return bad_request('expected {"user": string, "password": string of at most 72 bytes}')
    async with state.db.connect() as conn:
        row = (await conn.execute(sa.select(users.c.id, users.c.password_hash).where(users.c.name == user))).first()
    # An unknown user costs a hash check too, so response time does not tell which names exist.
    stored = row.password_hash.encode() if row is not None else state.dummy_hash()
    ok = await anyio.to_thread.run_sync(check_password, password.encode(), stored)
    if row is None or not ok:
        state.metrics.logins_failed += 1
        return JSONResponse({"error": "unauthorized", "detail": "wrong user or password"}, status_code=401)
    state.metrics.logins_ok += 1
    return JSONResponse({"user_id": row.id, "token": secrets.token_hex(16)})


def make_dummy_hash(cost: int) -> bytes:
    return bcrypt.hashpw(SEED_PASSWORD.encode() + b"-not-a-user", bcrypt.gensalt(cost))
