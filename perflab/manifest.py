"""A run's manifest: what made it (scenario or target, settings, versions, host, timings), typed.

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
    """The steady-state profiles the lab pulled from the service (or why it did not)."""

    cpu_profile: str | None = None  # the file name in the run folder
    seconds: float | None = None
    started_after_s: float | None = None
    bytes: int | None = None
    error: str | None = None
    # net/http/pprof snapshots taken in the middle of the CPU window: name → file in the run
    # folder; a profile the service does not serve (404) or that failed is in `notes`.
    snapshots: dict[str, str] = field(default_factory=dict)
    pyspy: str | None = None  # py-spy's file in the run folder
    notes: list[str] = field(default_factory=list)  # one line per profile not taken, and why
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ProfileTaken:
        taken: ProfileTaken = _split(cls, raw)
        return taken


@dataclass(frozen=True)
class TargetTaken:
    """The target a run was made from (``perflab run --target``): the file as it was read,
    and how its service was reached. A lab scenario's run has a target without a file."""

    name: str | None = None
    path: str | None = None  # the TOML file, absolute
    sha256: str | None = None  # of the file's bytes
    text: str | None = None  # the file itself
    url: str | None = None  # the service's base URL (k6's BASE_URL)
    started: bool | None = None  # perflab started the service (and stopped it)
    pid: int | None = None  # the process sampled as the service
    pid_from: str | None = None  # started | pid (the file's) | port (found listening) | None: not sampled
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TargetTaken:
        taken: TargetTaken = _split(cls, raw)
        return taken


@dataclass(frozen=True)
class MetricsScraped:
    """The service's metrics endpoint, scraped once a second during the run."""

    url: str | None = None
    format: str | None = None  # prometheus | expvar (detected on each answer)
    files: list[str] = field(default_factory=list)  # in the run folder
    scrapes: int = 0
    failed: int = 0  # answers that were errors or neither format
    error: str | None = None  # the first failure, as one line
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MetricsScraped:
        scraped: MetricsScraped = _split(cls, raw)
        return scraped


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
    skipped: dict[str, str] = field(default_factory=dict)  # run-folder files not ingested, and why
    profile: ProfileTaken = field(default_factory=ProfileTaken)
    target: TargetTaken | None = None
    metrics: MetricsScraped | None = None
    roles: dict[str, str] = field(default_factory=dict)  # SIGNAL_ROLE → metric, as the run declared them
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
        target = raw.pop("target", None)
        metrics = raw.pop("metrics", None)
        manifest: Manifest = _split(cls, raw, host=host, profile=profile,
                                    target=TargetTaken.from_dict(target) if target else None,
                                    metrics=MetricsScraped.from_dict(metrics) if metrics else None)
        return manifest

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, keys as the lab has always written them (unknown keys kept)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if isinstance(value, _Part):
                value = _join(value)
            if value is None or (f.name in _OMITTED_WHEN_EMPTY and not value):
                continue
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


# Fields newer than the first manifests, left out while empty: a manifest written before
# them reads and writes back unchanged.
_OMITTED_WHEN_EMPTY = frozenset({"roles", "skipped"})
# The parts of a manifest that are objects of their own in its JSON.
_Part = Host | ProfileTaken | TargetTaken | MetricsScraped


def _join(obj: _Part) -> dict[str, Any]:
    out = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name != "extra"}
    # Unset and empty fields are left out, so a manifest written before a field existed
    # reads and writes back unchanged.
    out = {k: v for k, v in out.items() if v is not None and v != [] and v != {}}
    out.update(obj.extra)
    return out
