"""Scrape a service's metrics endpoint once a second into files the metrics ingest reads.

Each answer is judged on its own (a service may answer JSON on one path and text on
another, and a proxy may answer an error page): JSON objects are Go expvar and go to
``vars.ndjson``, one object per line with the scrape's ``time`` (unix seconds) added;
anything else that looks like the Prometheus text exposition goes to ``metrics.prom``,
each scrape preceded by a ``# scrape_timestamp <unix seconds>`` comment
(perflab.vocab.SCRAPE_TIMESTAMP_COMMENT) — a series of scrapes in one file, as a
shell loop around ``curl`` would write it.

The time of a scrape is when its request was sent, as Prometheus stamps its own.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, TextIO

from perflab.manifest import MetricsScraped
from perflab.vocab import EXPVAR, PROMETHEUS, SCRAPE_TIMESTAMP_COMMENT

INTERVAL_S = 1.0  # as often as Prometheus is usually told to; counters' rates need no more
# A saturated service answers slowly, and the series shows its gaps; a scrape that takes
# longer than this is given up so the next one keeps its second.
TIMEOUT_S = 2.0
PROMETHEUS_FILE = "metrics.prom"
EXPVAR_FILE = "vars.ndjson"
# Prometheus text 0.0.4 first: a concatenation of OpenMetrics scrapes would carry one
# `# EOF` per scrape, which OpenMetrics parsers take as the end of the file.
ACCEPT = "text/plain;version=0.0.4;q=1.0,application/json;q=0.9,*/*;q=0.1"
MAX_BODY = 64 << 20  # a scrape larger than this is a mistake (a label set gone wild), not metrics


class MetricsScraper:
    """Appends one scrape a second until stopped; ``result()`` says what was written."""

    def __init__(self, url: str, out_dir: Path, interval_s: float = INTERVAL_S) -> None:
        self.url, self.out_dir, self.interval_s = url, out_dir, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="perflab-metrics", daemon=True)
        self._files: dict[str, TextIO] = {}
        self.scrapes = 0
        self.failed = 0
        self.error: str | None = None
        self.formats: list[str] = []

    def __enter__(self) -> MetricsScraper:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=TIMEOUT_S + 3)
        for fh in self._files.values():
            if not fh.closed:
                fh.close()

    def result(self) -> MetricsScraped:
        files = [PROMETHEUS_FILE if f == PROMETHEUS else EXPVAR_FILE for f in self.formats]
        return MetricsScraped(url=self.url, format=",".join(self.formats) or None, files=files,
                              scrapes=self.scrapes, failed=self.failed, error=self.error)

    # -- the loop -------------------------------------------------------------------------
    def _loop(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            self.scrape_once()
            next_t += self.interval_s
            # A scrape that overran skips the seconds it covered rather than bunching up.
            while next_t < time.monotonic():
                next_t += self.interval_s
            self._stop.wait(next_t - time.monotonic())

    def scrape_once(self) -> None:
        t = time.time()
        try:
            body, ctype = fetch(self.url)
            kind, text = classify(body, ctype)
        except (OSError, ValueError) as exc:
            self._fail(str(getattr(exc, "reason", None) or exc))
            return
        if kind == EXPVAR:
            obj = json.loads(text)
            self._write(EXPVAR, json.dumps({"time": round(t, 3), **obj}, sort_keys=True) + "\n")
        else:
            self._write(PROMETHEUS, f"{SCRAPE_TIMESTAMP_COMMENT} {t:.3f}\n{text}"
                        + ("" if text.endswith("\n") else "\n"))
        self.scrapes += 1

    def _fail(self, why: str) -> None:
        self.failed += 1
        if self.error is None:
            self.error = f"{self.url}: {why}".splitlines()[0]

    def _write(self, kind: str, text: str) -> None:
        fh = self._files.get(kind)
        if fh is None:
            name = PROMETHEUS_FILE if kind == PROMETHEUS else EXPVAR_FILE
            fh = self._files[kind] = open(self.out_dir / name, "w", encoding="utf-8")  # noqa: SIM115 - until stop()
            self.formats.append(kind)
        fh.write(text)
        fh.flush()


def fetch(url: str, timeout_s: float = TIMEOUT_S) -> tuple[bytes, str]:
    """The body and Content-Type of a 200 answer; an HTTP error is an OSError naming its status."""
    req = urllib.request.Request(url, headers={"Accept": ACCEPT, "User-Agent": "perflab"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - the user's own URL
            body = resp.read(MAX_BODY + 1)
            ctype = resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        raise OSError(f"HTTP {exc.code} {exc.reason}") from None
    if len(body) > MAX_BODY:
        raise ValueError(f"answer larger than {MAX_BODY >> 20} MB")
    return body, ctype


def classify(body: bytes, content_type: str) -> tuple[str, str]:
    """(EXPVAR or PROMETHEUS, the text) for an answer, or ValueError saying what it is instead."""
    text = body.decode("utf-8")
    head = text.lstrip()
    if head.startswith("{") or "json" in content_type:
        obj: Any = json.loads(text)
        if not isinstance(obj, dict):
            raise ValueError("JSON, but not an object (expvar answers one)")
        return EXPVAR, text
    if head.startswith("<") or "html" in content_type:
        raise ValueError("an HTML page, not metrics")
    if not head:
        raise ValueError("an empty answer")
    return PROMETHEUS, text
