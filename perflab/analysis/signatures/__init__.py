"""Bottleneck signatures with evidence (the clinic.js Doctor pattern).

``diagnose(store, run_id)`` gathers a run's data (perflab.analysis.rundata, the only
I/O), finds the steady-state window (steady.py), and asks every registered signature
for a verdict::

    {"run_id": ..., "findings": [{"signature", "verdict": "present" | "absent" |
     "insufficient-data", "evidence": {numbers..., "used": [...], "missing": [...]},
     "recommendation": str | None}]}

A signature is a module with ``NAME``, ``SUMMARY``, ``KEY_EVIDENCE`` (what a reader
should see first) and ``judge(data, window) -> finding``, a pure function of the
frames. Each names its thresholds as constants with the reason beside them. Adding a
signature is one module and one :func:`register` call (the papermill pattern).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import polars as pl

from perflab.analysis.rundata import RunData
from perflab.analysis.signatures.steady import Window, find_window
from perflab.store import Store


@dataclass(frozen=True)
class Signature:
    name: str
    summary: str
    judge: Callable[[RunData, Window | None], dict[str, Any]]
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


def window_of(data: RunData) -> Window | None:
    """The steady window: on the k6 requests, else on the resource or /debug/vars samples."""
    fallback = pl.concat([data.resources["t_s"], data.vars["t_s"]]) if data.resources.height or data.vars.height \
        else None
    return find_window(data.requests["t_s"], fallback)


def diagnose_data(data: RunData) -> dict[str, Any]:
    """The doctor's answer for gathered data (pure: what the tests drive)."""
    window = window_of(data)
    findings = [sig.judge(data, window) for sig in signatures().values()]
    return {"run_id": data.run_id, "findings": findings}


def diagnose(store: Store, run_id: str) -> dict[str, Any]:
    """``perflab doctor RUN --json`` as a function: every signature's verdict for one run."""
    from perflab.analysis.rundata import gather

    return diagnose_data(gather(store, run_id))
