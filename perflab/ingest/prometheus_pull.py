"""Pull a window from a running Prometheus (``/api/v1/query_range``) and ingest it.

The answer is saved as a file (into the run's folder, ``runs/RUN_ID/`` beside the store,
when a run is given, else a temporary file) and ingested by perflab.ingest.prometheus_api,
so a pulled window and a file a user saved from the same API are read by one code path.
The saved JSON is Prometheus's answer byte for byte, plus a last top-level key
``perflab_query`` recording the URL, query, start, end and step (the query text names a
series without ``__name__``).
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from perflab.errors import PerflabError
from perflab.ingest import ingest_path
from perflab.ingest._metric_samples import parse_time
from perflab.ingest._registry import IngestResult, one_line
from perflab.ingest.prometheus_api import QUERY_KEY
from perflab.private import private_dirs
from perflab.store import Store
from perflab.vocab import PROMETHEUS_API

# Prometheus refuses a query_range of more than 11,000 points per series; the default step
# is the smallest whole number of seconds that stays within it (and at least 1 s).
MAX_POINTS = 11_000
TIMEOUT_S = 60.0
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_step(text: str) -> float:
    """Seconds (``15``, ``0.5``) or a duration (``15s``, ``1m``, ``500ms``) → seconds."""
    s = text.strip()
    scale = 1.0
    for unit in sorted(_DURATION_UNITS, key=len, reverse=True):
        if s.endswith(unit):
            s, scale = s[: -len(unit)], _DURATION_UNITS[unit]
            break
    try:
        value = float(s) * scale if s.replace(".", "", 1).isdigit() else math.nan
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise PerflabError(f"--step {text!r}: give seconds or a duration such as 15s, 1m")
    return value


def default_step(start_us: int, end_us: int) -> float:
    return float(max(1, math.ceil((end_us - start_us) / 1e6 / MAX_POINTS)))


def _seconds_text(us: int) -> str:
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def _time(option: str, text: str) -> int:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise PerflabError(f"{option} {text!r}: {exc}") from None


def query_range(url: str, query: str, start: str, end: str, step: str | None = None) -> tuple[bytes, dict[str, str]]:
    """Prometheus's answer to the query over [start, end] (RFC 3339 or unix seconds), and
    what was asked. A refused query or an unreachable server is a PerflabError."""
    start_us, end_us = _time("--start", start), _time("--end", end)
    if end_us < start_us:
        raise PerflabError(f"--end {end} is before --start {start}")
    step_s = parse_step(step) if step is not None else default_step(start_us, end_us)
    base = url.rstrip("/")
    asked = {"url": base, "query": query, "start": _seconds_text(start_us), "end": _seconds_text(end_us),
             "step": repr(step_s)}
    params = urllib.parse.urlencode({"query": query, "start": asked["start"], "end": asked["end"], "step": step_s})
    endpoint = f"{base}/api/v1/query_range"
    request = urllib.request.Request(f"{endpoint}?{params}", headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - the user's URL
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:
        text = exc.read()
        raise PerflabError(f"{base}: {_error_text(text) or f'HTTP {exc.code} {exc.reason}'}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        why = one_line(reason) if isinstance(reason, BaseException) else str(reason)
        raise PerflabError(f"{base}: cannot reach Prometheus ({why})") from None
    error = _error_text(body)
    if error:
        raise PerflabError(f"{base}: {error}")
    return body, asked


def _error_text(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if isinstance(doc, dict) and doc.get("status") == "error":
        return f"Prometheus answered an error ({doc.get('errorType') or 'no type'}): {doc.get('error') or ''}"
    return None


def with_query(body: bytes, asked: dict[str, str]) -> bytes:
    """The answer with ``perflab_query`` added as its last key (its own bytes untouched)."""
    text = body.rstrip()
    if not text.endswith(b"}"):
        raise PerflabError(f"{asked['url']}: the answer is not a JSON object")
    return text[:-1] + b',"' + QUERY_KEY.encode() + b'":' + json.dumps(asked, sort_keys=True).encode() + b"}\n"


def pull(store: Store, url: str, query: str, start: str, end: str, step: str | None = None,
         run_id: str | None = None) -> IngestResult:
    """query_range → a file → ingested as prometheus-api (under ``run_id`` when given)."""
    body, asked = query_range(url, query, start, end, step)
    content = with_query(body, asked)
    name = f"prometheus-{hashlib.sha256(content).hexdigest()[:12]}.json"
    if run_id is not None:
        folder = store.path.parent / "runs" / run_id
        private_dirs(folder)
        path = folder / name
        path.write_bytes(content)
        return ingest_path(store, path, kind=PROMETHEUS_API, run_id=run_id)
    with tempfile.TemporaryDirectory(prefix="perflab-prometheus-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(content)
        return ingest_path(store, path, kind=PROMETHEUS_API)
