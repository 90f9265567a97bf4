"""Typed results as JSON's own types, in one place: what ``--json`` prints and renderers read.

Analyses return dataclasses; :func:`to_jsonable` turns one (and anything inside it) into
dicts, lists, strings, numbers, booleans and None: a dataclass becomes an object of its
fields in declaration order (a field with ``metadata={"json": False}`` is left out, one
with :data:`OMIT_NONE` when it is None),
numpy scalars become Python numbers, NaN and infinities become null (JSON has none),
datetimes ISO 8601 text, sets sorted lists.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import date, datetime
from decimal import Decimal
from pathlib import PurePath
from typing import Any

# Field metadata: leave the key out of the JSON while the value is None (a key that only
# some answers have, e.g. ``reason`` on a rule that could not be evaluated).
OMIT_NONE = {"omit_none": True}


def optional(**kwargs: Any) -> Any:
    """A dataclass field defaulting to None, left out of the JSON while it is None."""
    return dataclasses.field(default=None, metadata=OMIT_NONE, **kwargs)


def to_jsonable(obj: Any) -> Any:
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.metadata.get("json", True)
                and not (f.metadata.get("omit_none") and getattr(obj, f.name) is None)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(to_jsonable(v) for v in obj)
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, Decimal):
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    if isinstance(obj, PurePath):
        return str(obj)
    if type(obj).__module__ == "numpy" and hasattr(obj, "item"):
        return to_jsonable(obj.item())
    raise TypeError(f"cannot serialise {type(obj).__name__}")
