"""What every feature module shares: the app's state object and request helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from sample_workload.db import Database
from sample_workload.metrics import Metrics
from sample_workload.settings import Settings

if TYPE_CHECKING:
    from sample_workload.dependency import ReportClient
    from sample_workload.records import RecordBuffer

MAX_BODY_BYTES = 64 * 1024  # a game record or a login is well under 1 KB


class BadRequest(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass
class AppState:
    settings: Settings
    metrics: Metrics
    db: Database
    buffer: "RecordBuffer | None" = None
    reports: "ReportClient | None" = None
    _dummy_hash: bytes | None = field(default=None, repr=False)

    def dummy_hash(self) -> bytes:
        if self._dummy_hash is None:
            from sample_workload.auth import make_dummy_hash

            self._dummy_hash = make_dummy_hash(self.settings.bcrypt_cost)
        return self._dummy_hash


async def read_json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest("body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def bad_request(detail: str) -> JSONResponse:
    return JSONResponse({"error": "bad_request", "detail": detail}, status_code=400)


def error_response(kind: str, status: int, detail: str) -> JSONResponse:
    return JSONResponse({"error": kind, "detail": detail}, status_code=status)
