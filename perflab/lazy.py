"""Heavy libraries bound at import, loaded on first use.

`perflab top` of a stored profile without inlined frames or filters is plain SQL: importing
numpy, polars and pyarrow for the modules that also hold the bulk paths cost it 0.25 s of
its 0.35 s budget. Those modules bind ``np``, ``pl``, ``pa`` to a :class:`LazyModule`
(the real modules for type checkers), so the import happens where they are first used.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for module ``name``; the first attribute asked for imports it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)
