"""Which analysis code computed a stored result: part of every stored result's fingerprint.

A stored k6 summary or run summary (verdicts included) is what perflab's analyses said when
they were computed. After an upgrade that changes a threshold or a percentile rule, showing
the old answer would contradict `perflab doctor` or `perflab k6` run afresh; so the
fingerprint carries a hash of the code that computes them (perflab.analysis and the
vocabulary it reads: k6's built-in metric types, the signal roles), and a change to it
recomputes them when next asked for. Hashing the sources costs ~1 ms; importing them to ask
would cost the very time storing saves.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from perflab import __version__

_PACKAGE = Path(__file__).resolve().parent.parent


@functools.cache
def analysis_code() -> str:
    """md5 of perflab.analysis's sources and perflab/vocab.py (perflab's version where the
    sources are not there to read, as in a frozen build)."""
    files = sorted((_PACKAGE / "analysis").rglob("*.py")) + [_PACKAGE / "vocab.py"]
    digest = hashlib.md5(usedforsecurity=False)
    found = False
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        found = True
        digest.update(str(path.relative_to(_PACKAGE)).encode() + b"\0" + data + b"\0")
    return digest.hexdigest() if found else f"perflab {__version__}"
