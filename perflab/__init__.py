"""perflab: a performance-analysis workbench.

The notebook-facing API is plain functions over a store::

    import perflab
    store = perflab.open_store()            # data/perflab.duckdb or $PERFLAB_STORE
    perflab.ingest(store, "cpu.pb.gz")
    perflab.top(store, "cpu.pb.gz")         # dict shaped like `perflab top --json` (go tool pprof -top)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Lazy attributes keep `import perflab` cheap (the CLI imports only what a verb needs).
_API = {
    "open_store": ("perflab.store", "open_store"),
    "Store": ("perflab.store", "Store"),
    "ingest": ("perflab.ingest", "ingest_path"),
    "sources": ("perflab.store", "list_sources"),
    "top": ("perflab.api", "top"),
    "k6_summary": ("perflab.api", "k6_summary"),
    "pg_top": ("perflab.api", "pg_top"),
    "PerflabError": ("perflab.errors", "PerflabError"),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _API[name]
    except KeyError:
        raise AttributeError(f"module 'perflab' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module_name), attr)


__all__ = sorted(_API)
