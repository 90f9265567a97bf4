"""Bottleneck signatures with evidence (the clinic.js Doctor pattern).

``diagnose(run)`` takes a run's frames (``Run.frames``) and its steady-state window
(``Run.window``) and asks every registered signature for a verdict::

    Diagnosis(run_id, findings=[Finding(signature, verdict: "present" | "absent" |
              "insufficient-data", evidence: {numbers..., "used": [...], "missing": [...]},
              recommendation: str | None)])

A signature is a module with ``NAME``, ``SUMMARY``, ``KEY_EVIDENCE`` (what a reader
should see first) and ``judge(data, window) -> Finding``, a pure function of the
frames. Each names its thresholds as constants with the reason beside them. Adding a
signature is one module and one :func:`register` call (the papermill pattern).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from perflab.analysis.run import Run
from perflab.analysis.run import window_of as frames_window
from perflab.analysis.rundata import RunData
from perflab.analysis.signatures._measure import PRESENT, Finding
from perflab.analysis.steady import Window


@dataclass(frozen=True)
class Signature:
    name: str
    summary: str
    judge: Callable[[RunData, Window | None], Finding]
    key_evidence: tuple[str, ...]


REGISTRY: dict[str, Signature] = {}

# In the order the doctor reports them: the three lab signatures, then what explains
# them, then whether the run itself can be trusted.
_MODULES = ("false_idle", "login_storm", "retry_storm", "pool_saturation", "lock_contention",
            "memory_pressure", "loadgen_saturated")


def register(sig: Signature) -> Signature:
    REGISTRY[sig.name] = sig
    return sig


def _load() -> None:
    if REGISTRY:
        return
    for name in _MODULES:
        mod = importlib.import_module(f"perflab.analysis.signatures.{name}")
        register(Signature(mod.NAME, mod.SUMMARY, mod.judge, tuple(mod.KEY_EVIDENCE)))


def signatures() -> dict[str, Signature]:
    _load()
    return REGISTRY


@dataclass(frozen=True)
class Diagnosis:
    """``perflab doctor RUN --json``: every signature's finding for one run, in registry order."""

    run_id: str
    findings: list[Finding]

    def finding(self, signature: str) -> Finding | None:
        return next((f for f in self.findings if f.signature == signature), None)

    @property
    def present(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == PRESENT]


def window_of(data: RunData) -> Window | None:
    """The steady window of gathered frames (as ``Run.window`` finds it)."""
    return frames_window(data.requests, data.resources, data.signals)


def diagnose_data(data: RunData, window: Window | None = None) -> Diagnosis:
    """The doctor's answer for gathered data (pure: what the tests drive)."""
    window = window if window is not None else window_of(data)
    return Diagnosis(data.run_id, [sig.judge(data, window) for sig in signatures().values()])


def diagnose(run: Run) -> Diagnosis:
    """Every signature's verdict for one run."""
    return diagnose_data(run.frames, run.window)


__all__ = ["Diagnosis", "Finding", "Signature", "diagnose", "diagnose_data", "register", "signatures", "window_of"]
