"""Prometheus text exposition (0.0.4) and OpenMetrics: one scrape, or a series of scrapes.

Parsed by ``prometheus_client``'s own parsers (``prometheus_client.parser`` for 0.0.4,
``prometheus_client.openmetrics.parser`` for OpenMetrics); this module only cuts a file into
scrapes and turns their samples into ``metric_samples`` rows (one INSERT per file).

What a file may hold:

* one scrape, as ``curl /metrics > metrics.txt`` saves it: its samples have no time (t NULL)
  unless they carry their own timestamps;
* a series of scrapes concatenated, each preceded by a ``# scrape_timestamp T`` line
  (vocab.SCRAPE_TIMESTAMP_COMMENT; T in unix seconds or RFC 3339), as
  ``echo "# scrape_timestamp $(date +%s.%N)"; curl -s .../metrics`` in a loop writes them
  (and the lab does); OpenMetrics scrapes may also just follow each other, each ending in
  ``# EOF``;
* samples with their own timestamps (milliseconds in 0.0.4, seconds in OpenMetrics); a
  sample's own time wins over its scrape's.

A scrape ending in ``# EOF`` is OpenMetrics, any other is 0.0.4. Rows keep the sample's own
name (``x_bucket``, ``x_sum``, ``x_count``, ``x_created``, ``x_total``), ``family`` as the
parser names the metric (OpenMetrics' convention: a counter's family is its name without
``_total``, in both dialects), the type (``untyped`` for 0.0.4's untyped and OpenMetrics'
unknown; ``info``, ``stateset``, ``gaugehistogram`` as they are), every label (``le`` and
``quantile`` included, their text as written), the value (NaN and ±Inf kept) and an
OpenMetrics exemplar as JSON ``{"labels", "value" (a string, as Prometheus's API writes it),
"timestamp" (seconds or null)}``. Native histograms (experimental in the text format) are
skipped and counted in the source's meta.

Refused (InputError, the store unchanged): a line the parser rejects (its line number), the
same series twice in one scrape, a timestamp that is NaN or infinite, a bucket whose ``le``
or a summary quantile whose ``quantile`` is missing or NaN, and more series than
perflab.ingest._metric_samples.max_series() in one file.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as om_parser
from prometheus_client.parser import text_fd_to_metric_families

from perflab.errors import InputError
from perflab.ingest import _io
from perflab.ingest._metric_samples import (
    Rows,
    canonical_labels,
    max_series,
    parse_time,
    seconds_to_us,
    summary,
    too_many_series,
    write,
)
from perflab.ingest._registry import Context, Format, Sniff, one_line, register
from perflab.vocab import PROMETHEUS, SCRAPE_TIMESTAMP_COMMENT

EOF_LINE = "# EOF"
_META_PREFIXES = ("# HELP ", "# TYPE ", "# UNIT ", SCRAPE_TIMESTAMP_COMMENT)
# Detection parses at most this many sample lines of the head (a file without HELP/TYPE lines).
_DETECT_LINES = 20
_PARSE_ERRORS = (ValueError, IndexError, KeyError, TypeError, AttributeError)


@dataclass
class Scrape:
    """One exposition cut from a file: its first line number, its time, its lines."""

    first_line: int
    t: int | None  # µs, from its # scrape_timestamp line
    lines: list[str] = field(default_factory=list)
    openmetrics: bool = False

    def has_content(self) -> bool:
        return any(line.strip() for line in self.lines)


class _NumberedLines:
    """The lines of a scrape as the parser reads them, counting, so an error names its line.

    It also notes the names that ``# TYPE`` lines declare as counters: the 0.0.4 parser
    renames a counter ``x``'s samples to ``x_total``, which is undone with this."""

    def __init__(self, scrape: Scrape) -> None:
        self.scrape = scrape
        self.read = 0
        self.counters: set[str] = set()

    def __iter__(self) -> Iterator[str]:
        for line in self.scrape.lines:
            self.read += 1
            if line.startswith("# TYPE "):
                parts = line.split()
                if len(parts) >= 4 and parts[3] == "counter":
                    self.counters.add(parts[2])
            yield line + "\n"

    @property
    def line_number(self) -> int:
        return self.scrape.first_line + max(self.read, 1) - 1


def split_scrapes(path: object, text: str) -> list[Scrape]:
    """Cut a file into its scrapes: at each ``# scrape_timestamp`` line and after each ``# EOF``."""
    scrapes: list[Scrape] = []
    current = Scrape(first_line=1, t=None)
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.removesuffix("\r")
        if _is_scrape_timestamp(line):
            if current.has_content():
                scrapes.append(current)
            stamp = line[len(SCRAPE_TIMESTAMP_COMMENT):].strip()
            try:
                t = parse_time(stamp)
            except ValueError as exc:
                raise InputError(str(path), f"line {number}: scrape timestamp: {exc}") from None
            current = Scrape(first_line=number + 1, t=t)
            continue
        current.lines.append(line)
        if line == EOF_LINE:
            current.openmetrics = True
            scrapes.append(current)
            current = Scrape(first_line=number + 1, t=None)
    if current.has_content():
        # 0.0.4 ignores blank lines; trailing ones are no part of a scrape.
        while current.lines and not current.lines[-1].strip():
            current.lines.pop()
        scrapes.append(current)
    return scrapes


def _is_scrape_timestamp(line: str) -> bool:
    rest = line[len(SCRAPE_TIMESTAMP_COMMENT):]
    return line.startswith(SCRAPE_TIMESTAMP_COMMENT) and (not rest or rest[0] in " \t")


def _families(scrape: Scrape, lines: _NumberedLines) -> Iterable[Metric]:
    if scrape.openmetrics:
        parse = cast(Callable[[Iterable[str]], Iterable[Metric]], om_parser.text_fd_to_metric_families)
        return parse(lines)
    return text_fd_to_metric_families(cast(TextIO, lines))  # it only iterates the lines


class _Reader:
    """Turns the families of each scrape into rows, checking what the parsers let through."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.rows = Rows()
        self.series: set[tuple[str, str]] = set()
        self.cap = max_series()
        self.native_histograms = 0

    def read(self, scrape: Scrape) -> None:
        lines = _NumberedLines(scrape)
        seen: set[tuple[str, str, int | None]] = set()
        yielded = 0
        try:
            for family in _families(scrape, lines):
                yielded += self.family(family, scrape, lines, seen)
        except InputError:
            raise
        except _PARSE_ERRORS as exc:
            raise InputError(self.ctx.path, f"line {lines.line_number}: not a valid "
                                            f"{'OpenMetrics' if scrape.openmetrics else 'exposition'} "
                                            f"line ({one_line(exc) or 'malformed'})") from None
        if scrape.openmetrics:
            # The OpenMetrics parser drops a repeated series silently; count what it kept.
            written = sum(1 for ln in scrape.lines if ln and not ln.startswith("#"))
            if yielded < written:
                raise InputError(self.ctx.path, f"duplicate series in the scrape of lines {scrape.first_line}–"
                                                f"{scrape.first_line + len(scrape.lines) - 1} ({written} sample "
                                                f"lines, {yielded} distinct series)")

    def family(self, family: Metric, scrape: Scrape, lines: _NumberedLines,
               seen: set[tuple[str, str, int | None]]) -> int:
        typ = "untyped" if family.type in ("unknown", "untyped") else family.type
        fam = family.name
        # 0.0.4 parser: a counter declared as `x` (no _total) had its samples renamed x_total.
        undo_total = not scrape.openmetrics and typ == "counter" and fam in lines.counters
        for sample in family.samples:
            if sample.native_histogram is not None:
                self.native_histograms += 1
                continue
            name = sample.name.removesuffix("_total") if undo_total else sample.name
            labels = dict(sample.labels)
            series = f"{name}{_show(labels)}"
            self._check_bounds(typ, fam, name, labels, series)
            own_t = self._time(sample.timestamp, series)
            key = canonical_labels(labels)
            if (name, key, own_t) in seen:
                raise InputError(self.ctx.path, f"duplicate series {series} in the scrape starting at line "
                                                f"{scrape.first_line}")
            seen.add((name, key, own_t))
            if (name, key) not in self.series:
                self.series.add((name, key))
                if len(self.series) > self.cap:
                    raise too_many_series(self.ctx, len(self.series))
            self.rows.add(own_t if own_t is not None else scrape.t, name, fam, typ, key, float(sample.value),
                          _exemplar(sample.exemplar))
        return len(family.samples)

    def _check_bounds(self, typ: str, fam: str, name: str, labels: dict[str, str], series: str) -> None:
        if typ in ("histogram", "gaugehistogram") and name == fam + "_bucket":
            _number_label(self.ctx, labels, "le", series)
        elif typ == "summary" and name == fam and "quantile" in labels:
            _number_label(self.ctx, labels, "quantile", series)

    def _time(self, stamp: Any, series: str) -> int | None:
        if stamp is None:
            return None
        if hasattr(stamp, "sec") and hasattr(stamp, "nsec"):  # OpenMetrics' exact Timestamp
            return int(stamp.sec) * 1_000_000 + int(stamp.nsec) // 1000
        try:
            return seconds_to_us(float(stamp))
        except ValueError:
            raise InputError(self.ctx.path, f"{series}: timestamp {stamp} is not a time") from None


def _number_label(ctx: Context, labels: dict[str, str], label: str, series: str) -> None:
    text = labels.get(label)
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        value = math.nan
    if math.isnan(value):
        what = "without" if text is None else f"with {label}={json.dumps(text)}:"
        raise InputError(ctx.path, f"{series}: a {'bucket' if label == 'le' else 'quantile'} {what} "
                                   f"{'an ' + label + ' label' if text is None else 'not a number'}")


def _show(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(labels.items())) + "}"


def _exemplar(exemplar: Any) -> str | None:
    if exemplar is None:
        return None
    stamp = exemplar.timestamp
    seconds = None if stamp is None else float(stamp)
    return json.dumps({"labels": dict(exemplar.labels), "value": _float_text(float(exemplar.value)),
                       "timestamp": seconds}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _float_text(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def _detect(sniff: Sniff) -> bool:
    text = sniff.text_head
    lines = text.split("\n")
    if len(sniff.head) >= _io.HEAD_BYTES:
        lines = lines[:-1]  # the last line may be cut
    samples: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith(_META_PREFIXES) or line == EOF_LINE:
                return not samples or _parses(samples)
            continue
        samples.append(line)
        if len(samples) >= _DETECT_LINES:
            break
    return bool(samples) and _parses(samples)


def _parses(samples: list[str]) -> bool:
    """Whether lines read as 0.0.4 sample lines (the format's grammar is the parser's)."""
    try:
        n = sum(len(f.samples) for f in text_fd_to_metric_families(io.StringIO("".join(s + "\n" for s in samples))))
    except _PARSE_ERRORS:
        return False
    return n == len(samples)


def _ingest(ctx: Context) -> dict[str, Any]:
    data = ctx.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(ctx.path, f"line {line}: not UTF-8 text") from None
    scrapes = split_scrapes(ctx.path, text.removeprefix("\ufeff"))
    reader = _Reader(ctx)
    for scrape in scrapes:
        reader.read(scrape)
    write(ctx, reader.rows)
    extra: dict[str, Any] = {"scrapes": len(scrapes),
                             "openmetrics_scrapes": sum(1 for s in scrapes if s.openmetrics)}
    if reader.native_histograms:
        extra["skipped_native_histogram_samples"] = reader.native_histograms
    counts = summary(ctx, **extra)
    return {**counts, "scrapes": len(scrapes)}


register(Format(
    kind=PROMETHEUS,
    description="Prometheus text exposition 0.0.4 or OpenMetrics: one scrape, or a series of scrapes",
    detect=_detect,
    ingest=_ingest,
    priority=80,
))
