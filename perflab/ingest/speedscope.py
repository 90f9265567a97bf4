"""speedscope's file format (https://www.speedscope.app/file-format-schema.json), read into
the pprof tables (perflab.ingest._stacks) so every profile view reads it as a Go profile.

py-spy (``--format speedscope``), rbspy, austin and many exporters write it. The file holds
``shared.frames`` (``{name, file?, line?, col?}``) and ``profiles``, each ``sampled`` (stacks
of frame indices, root first, with one weight each) or ``evented`` (open/close events).

* A frame is one function and one location, named ``name (file:line)`` (``name (file)``
  when it has no line, or line 0 as py-spy writes for native code; ``name`` without a file):
  py-spy's own naming in its collapsed output, so with ``--full-filenames`` a frame has the
  same name in both of its formats.
* An evented profile becomes weighted stacks: each interval between two consecutive
  events is time (or weight) spent in the stack open during it. Events must come in order
  of ``at`` and close the innermost open frame; a frame still open at the end is refused.
* Units become pprof sample types (values are stored as whole numbers):

      unit                                    sample types
      nanoseconds, microseconds,              samples/count (sampled profiles: one per sample)
        milliseconds, seconds                 wall/nanoseconds (the weight, in ns)
      bytes                                   samples/count (sampled), space/bytes
      none                                    samples/count (the weight itself)

  A speedscope file does not say which clock its times are on, so a time is ``wall``, as
  pprof's Node and Cloud profilers name theirs; the default sample type is wall, else
  space, else samples. py-spy's weights are 1/rate seconds per sample, so wall/nanoseconds
  is its sample count times the period.
* Every profile of the file (py-spy writes one per thread) is in the one source; each
  sample carries the label ``thread`` = its profile's name. Samples with the same
  profile and stack are added into one.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

import numpy as np

from perflab.errors import InputError
from perflab.ingest import _stacks
from perflab.ingest._registry import Context, Format, Sniff, register
from perflab.vocab import SPEEDSCOPE

SCHEMA_URL = "speedscope.app/file-format-schema.json"
# unit -> (sample type, its unit, factor to that unit)
UNITS: dict[str, tuple[str, str, float]] = {
    "nanoseconds": ("wall", "nanoseconds", 1.0),
    "microseconds": ("wall", "nanoseconds", 1e3),
    "milliseconds": ("wall", "nanoseconds", 1e6),
    "seconds": ("wall", "nanoseconds", 1e9),
    "bytes": ("space", "bytes", 1.0),
    "none": ("samples", "count", 1.0),
}
# The sample types in the order a source lists them (and the default: the last present).
TYPE_ORDER = (("samples", "count"), ("space", "bytes"), ("wall", "nanoseconds"))
LABEL = "thread"
_PROFILE_TYPE_RE = re.compile(r'"type"\s*:\s*"(sampled|evented)"')
# A profile's stacks (leaf first) with their values by sample type.
_Weighted = list[tuple[tuple[int, ...], dict[tuple[str, str], int]]]


def detect(sniff: Sniff) -> bool:
    text = sniff.text_head.lstrip()
    if not text.startswith("{"):
        return False
    if SCHEMA_URL in text:
        return True
    # Without $schema: speedscope's own keys (py-spy writes "profiles" before "shared").
    return '"profiles"' in text and '"unit"' in text and _PROFILE_TYPE_RE.search(text) is not None


def ingest(ctx: Context) -> dict[str, Any]:
    doc = json.loads(ctx.read_bytes())
    return _stacks.write(ctx, _Reader(ctx, doc).read())


class _Reader:
    def __init__(self, ctx: Context, doc: Any) -> None:
        self.ctx = ctx
        self.doc = doc

    def fail(self, problem: str) -> NoReturn:
        raise InputError(self.ctx.path, problem)

    def read(self) -> _stacks.StackProfile:
        doc = self.doc
        if not isinstance(doc, dict):
            self.fail("not a speedscope file: the top level is not an object")
        shared = doc.get("shared")
        if not isinstance(shared, dict) or not isinstance(shared.get("frames"), list):
            self.fail("not a speedscope file: no shared.frames list")
        profiles = doc.get("profiles")
        if not isinstance(profiles, list):  # an empty list is a profile of nothing, as pprof allows
            self.fail("not a speedscope file: no profiles list")
        frames: list[Any] = shared["frames"]
        names, system_names, files, lines = self.frames(frames)

        # (profile, stack leaf first) -> {sample type: value}, in order of first appearance.
        agg: dict[tuple[int, tuple[int, ...]], dict[tuple[str, str], int]] = {}
        used: set[tuple[str, str]] = set()
        for j, p in enumerate(profiles):
            if not isinstance(p, dict):
                self.fail(f"profile {j} is not an object")
            unit = p.get("unit")
            if unit not in UNITS:
                self.fail(f"profile {j}: unit {unit!r} is not one of {', '.join(UNITS)}")
            kind = p.get("type")
            if kind == "sampled":
                items = self.sampled(j, p, len(frames))
            elif kind == "evented":
                items = self.evented(j, p, len(frames))
            else:
                self.fail(f"profile {j}: type {kind!r} is neither sampled nor evented")
            for stack, weighted in items:
                slot = agg.setdefault((j, stack), {})
                for t, v in weighted.items():
                    slot[t] = slot.get(t, 0) + v
                    used.add(t)

        types = [t for t in TYPE_ORDER if t in used] or [("samples", "count")]
        keys = list(agg)
        lengths = np.fromiter((len(s) for _, s in keys), np.int64, len(keys))
        frame_ids = np.fromiter((f for _, s in keys for f in s), np.int64, int(lengths.sum()))
        values = np.array([[agg[k].get(t, 0) for t in types] for k in keys], dtype=np.int64).reshape(-1, len(types))
        profile_names = [self.profile_name(j, p) for j, p in enumerate(profiles)]
        return _stacks.StackProfile(
            names=names, system_names=system_names, filenames=files, lines=lines,
            frame_ids=frame_ids,
            offsets=np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
            values=values,
            sample_types=types,
            default_sample_type=types[-1][0],
            labels=[(i, LABEL, profile_names[j]) for i, (j, _) in enumerate(keys)],
            comments=[c for c in (doc.get("name"), doc.get("exporter")) if isinstance(c, str) and c],
        )

    def frames(self, frames: list[Any]) -> tuple[list[str], list[str], list[str], list[int]]:
        names, system_names, files, lines = [], [], [], []
        for i, f in enumerate(frames):
            if not isinstance(f, dict) or not isinstance(f.get("name"), str):
                self.fail(f"frame {i} has no name")
            name, file, line, col = f["name"], f.get("file"), f.get("line"), f.get("col")
            for what, v in (("line", line), ("col", col)):
                if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                    self.fail(f"frame {i}: {what} {v!r} is not a whole number")
            if file is not None and not isinstance(file, str):
                self.fail(f"frame {i}: file {file!r} is not a string")
            names.append(frame_name(name, file, line, col))
            system_names.append(name)
            files.append(file or "")
            lines.append(line or 0)
        return names, system_names, files, lines

    @staticmethod
    def profile_name(j: int, p: dict[str, Any]) -> str:
        name = p.get("name")
        return name if isinstance(name, str) and name else f"profile {j}"

    def number(self, value: Any, what: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(f"{what} {value!r} is not a finite number")
        return float(value)

    def sampled(self, j: int, p: dict[str, Any], n_frames: int) -> _Weighted:
        samples, weights = p.get("samples"), p.get("weights")
        if not isinstance(samples, list) or not isinstance(weights, list):
            self.fail(f"profile {j}: a sampled profile needs samples and weights lists")
        if len(samples) != len(weights):
            self.fail(f"profile {j}: {len(samples)} samples but {len(weights)} weights")
        stype, sunit, factor = UNITS[p["unit"]]
        out = []
        for i, (stack, w) in enumerate(zip(samples, weights, strict=True)):
            value = round(self.number(w, f"profile {j} sample {i}: weight") * factor)
            if stype == "samples":
                values = {("samples", "count"): value}
            else:
                values = {("samples", "count"): 1, (stype, sunit): value}
            out.append((self.stack(j, i, stack, n_frames), values))
        return out

    def stack(self, j: int, i: int, stack: Any, n_frames: int) -> tuple[int, ...]:
        if not isinstance(stack, list):
            self.fail(f"profile {j} sample {i} is not a list of frame indices")
        for f in stack:
            self.frame_index(f, n_frames, f"profile {j} sample {i}")
        return tuple(reversed(stack))

    def frame_index(self, f: Any, n_frames: int, where: str) -> int:
        if isinstance(f, bool) or not isinstance(f, int) or not 0 <= f < n_frames:
            self.fail(f"{where} refers to frame {f!r}; there are {n_frames} frames")
        return f

    def evented(self, j: int, p: dict[str, Any], n_frames: int) -> _Weighted:
        events = p.get("events")
        if not isinstance(events, list):
            self.fail(f"profile {j}: an evented profile needs an events list")
        stype, sunit, factor = UNITS[p["unit"]]
        out = []
        open_frames: list[int] = []
        prev_at: float | None = None
        prev_t = 0
        for k, ev in enumerate(events):
            where = f"profile {j} event {k}"
            if not isinstance(ev, dict):
                self.fail(f"{where} is not an object")
            at = self.number(ev.get("at"), f"{where}: at")
            frame = self.frame_index(ev.get("frame"), n_frames, where)
            if prev_at is not None and at < prev_at:
                self.fail(f"{where} is at {at:g}, before the event preceding it ({prev_at:g})")
            # Positions are rounded, then differenced: the intervals add up to the span exactly.
            t = round(at * factor)
            if open_frames and t > prev_t:
                out.append((tuple(reversed(open_frames)), {(stype, sunit): t - prev_t}))
            prev_at, prev_t = at, t
            kind = ev.get("type")
            if kind == "O":
                open_frames.append(frame)
            elif kind == "C":
                if not open_frames or open_frames[-1] != frame:
                    top = f"frame {open_frames[-1]} is" if open_frames else "no frame is"
                    self.fail(f"{where} closes frame {frame}, but {top} open")
                open_frames.pop()
            else:
                self.fail(f"{where}: type {kind!r} is neither O nor C")
        if open_frames:
            self.fail(f"profile {j}: frame {open_frames[-1]} is still open after the last event")
        return out


def frame_name(name: str, file: str | None, line: int | None, col: int | None) -> str:
    """A frame's function name: ``name (file:line[:col])``, ``name (file)``, or ``name``."""
    if not file:
        return name
    if not line:
        return f"{name} ({file})"
    return f"{name} ({file}:{line}:{col})" if col else f"{name} ({file}:{line})"


register(Format(
    kind=SPEEDSCOPE,
    description="speedscope JSON (py-spy --format speedscope, rbspy, austin, speedscope's exports)",
    detect=detect,
    ingest=ingest,
    priority=50,  # a certain check (speedscope's own schema URL), before the formats that parse JSON whole
))
