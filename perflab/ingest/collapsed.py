"""Collapsed (folded) stacks: one line per stack, ``root;caller;...;leaf COUNT``.

What py-spy ``record --format raw``, FlameGraph's ``stackcollapse-*.pl`` (perf, dtrace,
jstack, ...), async-profiler's ``collapsed`` output and ``perf script | stackcollapse-perf.pl``
write. Read into the pprof tables (perflab.ingest._stacks), so ``perflab top`` and every
profile view read it as they read a Go profile:

* the count is the last whitespace-separated field (a whole number); everything before
  it is the stack, split on ``;`` (frames may contain spaces: py-spy's
  ``function (file.py:12)``). A stack may appear on several lines: they add up.
* each distinct frame is one function and one location; its name is the frame as
  written, less async-profiler's frame-type suffix (``_[j]`` JIT-compiled, ``_[i]``
  inlined, ``_[k]`` kernel, ``_[0]`` interpreted, ``_[1]`` C1-compiled), which is kept in
  the function's system_name. So ``Foo.bar_[j]`` and ``Foo.bar_[i]`` are one node.
* one sample type, ``samples/count`` (the counts). A file says nothing of its sampling
  rate, so a time appears only when a header line gives it (below).

The header: a line ``# perflab: rate_hz=100 duration_s=10 start_unix_s=1733390000.5 clock=cpu``
(perflab's py-spy recorder writes it first; FlameGraph and speedscope skip it, as its
last field is not a number). With ``rate_hz`` a second sample type ``cpu/nanoseconds``
(or ``wall/nanoseconds`` with ``clock=wall``) holds round(count × 1e9 / rate_hz) per
stack, the profile's period is 1e9 / rate_hz ns, and it becomes the default sample type,
as in a Go CPU profile; ``duration_s`` and ``start_unix_s`` fill the profile's duration
and time. Unknown keys are kept in the profile's comments and otherwise ignored.

Detection (by content, never by extension): every non-empty line of the head is a stack
line or a ``# perflab:`` header, and some stack has a ``;`` or the header is there. The
``;`` tells a one-frame-per-line file such as a Prometheus scrape (``up 1``) from stacks;
a collapsed file whose stacks are all one frame deep is read with ``--kind collapsed``.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import polars as pl

from perflab.errors import InputError
from perflab.ingest import _stacks
from perflab.ingest._io import HEAD_BYTES
from perflab.ingest._registry import Context, Format, Sniff, register
from perflab.vocab import COLLAPSED

HEADER = "# perflab:"
# The stack (non-empty, its last character not a space) and the count, as one line holds them.
_LINE = r"^(.*\S)\s+(\d+)$"
_LINE_RE = re.compile(_LINE)
# async-profiler's frame types (its FlameGraph strips them the same way to name a frame).
FRAME_TYPE_SUFFIX = r"_\[[jik01]\]$"
# A count beyond this many digits cannot be an int64: the line is refused, never wrapped.
_MAX_COUNT_DIGITS = 18
CLOCKS = ("cpu", "wall")


def detect(sniff: Sniff) -> bool:
    lines = sniff.text_head.split("\n")
    if len(sniff.head) >= HEAD_BYTES:
        lines = lines[:-1]  # the head may end inside a line
    deep = header = False
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line.startswith(HEADER):
            header = True
            continue
        m = _LINE_RE.match(line)
        if m is None:
            return False
        deep = deep or ";" in m.group(1)
    return deep or header


def ingest(ctx: Context) -> dict[str, Any]:
    text = ctx.read_bytes().decode("utf-8")  # a UnicodeDecodeError is a ValueError: one line
    df = (
        pl.DataFrame({"line": pl.Series(text.split("\n"), dtype=pl.String)})
        .with_row_index("lineno", offset=1)
        .with_columns(pl.col("line").str.strip_chars())
        .filter(pl.col("line") != "")
    )
    del text
    is_header = pl.col("line").str.starts_with(HEADER)
    header = _header(ctx, df.filter(is_header))
    body = (
        df.filter(~is_header)
        .with_columns(pl.col("line").str.extract_groups(_LINE).struct.rename_fields(["stack", "count"]).alias("m"))
        .unnest("m")
    )
    bad = body.filter(pl.col("stack").is_null() | (pl.col("count").str.len_chars() > _MAX_COUNT_DIGITS))
    if bad.height:
        first = bad.row(0, named=True)
        lineno, line = first["lineno"], first["line"]
        problem = "its count is too large" if first["stack"] is not None else "not `frame;frame;...;frame COUNT`"
        raise InputError(ctx.path, f"line {lineno}: {problem}: {line[:120]!r}")

    frames = body.select(pl.col("stack").str.split(";").list.reverse().alias("frame"))["frame"]
    lengths = frames.list.len().to_numpy().astype(np.int64)
    flat = frames.explode()
    distinct = flat.unique(maintain_order=True)
    ids = (
        flat.to_frame()
        .join(distinct.to_frame().with_row_index("id"), on="frame", how="left", maintain_order="left")["id"]
        .to_numpy().astype(np.int64)
    )
    counts = body["count"].cast(pl.Int64).to_numpy()
    system_names = distinct.to_list()
    names = distinct.str.replace(FRAME_TYPE_SUFFIX, "").to_list()

    types = [("samples", "count")]
    columns = [counts]
    rate = header.get("rate_hz")
    clock = header.get("clock", "cpu")
    if rate is not None:
        types.append((clock, "nanoseconds"))
        columns.append(np.round(counts * 1e9 / rate).astype(np.int64))
    prof = _stacks.StackProfile(
        names=names,
        system_names=system_names,
        filenames=[""] * len(names),
        lines=[0] * len(names),
        frame_ids=ids,
        offsets=np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
        values=np.column_stack(columns) if counts.size else np.zeros((0, len(types)), dtype=np.int64),
        sample_types=types,
        default_sample_type=clock if rate is not None else "samples",
        period_type=(clock, "nanoseconds") if rate is not None else ("", ""),
        period=round(1e9 / rate) if rate is not None else 0,
        time_nanos=round(header["start_unix_s"] * 1e9) if "start_unix_s" in header else None,
        duration_nanos=round(header["duration_s"] * 1e9) if "duration_s" in header else None,
        comments=df.filter(is_header)["line"].to_list(),
    )
    return _stacks.write(ctx, prof)


def _header(ctx: Context, lines: pl.DataFrame) -> dict[str, Any]:
    """The ``# perflab:`` lines' settings: rate_hz, duration_s, start_unix_s (floats), clock."""
    out: dict[str, Any] = {}
    for lineno, line in lines.select("lineno", "line").iter_rows():
        for item in line.removeprefix(HEADER).split():
            key, sep, value = item.partition("=")
            if not sep:
                raise InputError(ctx.path, f"line {lineno}: header item {item!r} is not KEY=VALUE")
            if key == "clock":
                if value not in CLOCKS:
                    raise InputError(ctx.path, f"line {lineno}: clock={value!r}; one of {', '.join(CLOCKS)}")
                out[key] = value
            elif key in ("rate_hz", "duration_s", "start_unix_s"):
                number = _number(value)
                if number is None or (key != "start_unix_s" and number < 0) or (key == "rate_hz" and number == 0):
                    raise InputError(ctx.path, f"line {lineno}: {key}={value!r} is not a "
                                               f"{'positive' if key == 'rate_hz' else 'non-negative'} number")
                out[key] = number
    return out


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


register(Format(
    kind=COLLAPSED,
    description="collapsed stacks (py-spy --format raw, FlameGraph stackcollapse-*, async-profiler, perf)",
    detect=detect,
    ingest=ingest,
    # After the metric and table formats: a line ending in a number is a weak sign alone.
    priority=120,
))
