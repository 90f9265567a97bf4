"""pprof's small rules that ingest (perflab.ingest.pprof), analysis and the CLI share: the
default sample type and Go's filepath.Base. Plain Python, no imports: `perflab top` of a
stored profile loads this, not the profile.proto reader."""

from __future__ import annotations


def default_sample_index(type_names: list[str], default_name: str) -> int | None:
    """pprof's rule: the type named by default_sample_type if any matches, else the last."""
    if not type_names:
        return None
    if default_name:
        for i, name in enumerate(type_names):
            if name == default_name:
                return i
    return len(type_names) - 1


def go_base(path: str) -> str:
    """Go's filepath.Base on Unix, which pprof uses for the [mapping] node names."""
    trimmed = path.rstrip("/")
    if not trimmed:
        return "/" if path else "."
    return trimmed.rsplit("/", 1)[-1]
