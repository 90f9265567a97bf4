"""A run's manifest: what made it (scenario, settings, versions, host, timings), typed.

The lab writes one per run (``data/runs/RUN_ID/manifest.json`` and the ``runs.manifest``
column); ``Manifest.from_json`` is the only reader of that JSON. A group of files a user
made with ``perflab ingest --run`` has no manifest. Keys this perflab does not know (a
newer perflab's, or a bench's own) are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perflab.errors import PerflabError


@dataclass(frozen=True)
class Host:
    """The machine a run ran on, as the lab saw it when the run started."""

    hostname: str | None = None
    platform: str | None = None
    cpu_count: int | None = None
    memory_bytes: int | None = None
    load_avg_1m_at_start: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Host:
        host: Host = _split(cls, raw)
        return host

    def to_dict(self) -> dict[str, Any]:
        return _join(self)


@dataclass(frozen=True)
class ProfileTaken:
    """The steady-state CPU profile the lab pulled from the service (or why it did not)."""

    cpu_profile: str | None = None  # the file name in the run folder
    seconds: float | None = None
    started_after_s: float | None = None
    bytes: int | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ProfileTaken:
        taken: ProfileTaken = _split(cls, raw)
        return taken


@dataclass
class Manifest:
    run_id: str | None = None
    kind: str | None = None  # None for `perflab run`; "bench-writes" for a write benchmark
    scenario: str | None = None
    variant: str | None = None
    signature: str | None = None  # the signature the scenario reproduces
    why: str | None = None  # the scenario's own explanation of its bottleneck
    fix: dict[str, str] = field(default_factory=dict)  # the settings its fixed variant changes
    settings: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)
    rate: float | None = None
    duration_s: float | None = None
    k6_script: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    host: Host = field(default_factory=Host)
    started_at: str | None = None
    finished_at: str | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    status: str | None = None
    error: str | None = None
    postgres: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    profile: ProfileTaken = field(default_factory=ProfileTaken)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str | bytes | dict[str, Any]) -> Manifest:
        """A manifest from its JSON text (or an already parsed object)."""
        try:
            raw = json.loads(text) if isinstance(text, (str, bytes)) else dict(text)
        except ValueError as exc:
            raise PerflabError(f"a run manifest is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise PerflabError("a run manifest is not a JSON object")
        host = Host.from_dict(raw.pop("host", None) or {})
        profile = ProfileTaken.from_dict(raw.pop("profile", None) or {})
        manifest: Manifest = _split(cls, raw, host=host, profile=profile)
        return manifest

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, keys as the lab has always written them (unknown keys kept)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if isinstance(value, (Host, ProfileTaken)):
                value = _join(value)
            if value is not None:
                out[f.name] = value
        out.update(self.extra)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def write(self, run_dir: Path) -> None:
        """manifest.json in the run folder, replaced whole (a crash never leaves half of one)."""
        tmp = run_dir / "manifest.json.tmp"
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        tmp.replace(run_dir / "manifest.json")


def _split(cls: Any, raw: dict[str, Any], **given: Any) -> Any:
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    known = {k: v for k, v in raw.items() if k in names}
    known.update(given)
    return cls(**known, extra={k: v for k, v in raw.items() if k not in names})


def _join(obj: Host | ProfileTaken) -> dict[str, Any]:
    out = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name != "extra"}
    out = {k: v for k, v in out.items() if v is not None}
    out.update(obj.extra)
    return out
