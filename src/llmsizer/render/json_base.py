"""The JSON primitives every ``--format json`` document uses: JSON-safe numbers, enum values, ``clean`` and
``dumps`` (``jsonout`` builds the plan document, ``json_catalog`` the catalog entries)."""

from __future__ import annotations

import json
import math
from typing import Any

#: the version of every JSON document's shape (CONTRACT.md: additive changes only within it)
SCHEMA_VERSION = 1

def _num(x: Any) -> Any:
    """A JSON-safe number: NaN and infinities become ``null`` (JSON has neither)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _int(x: float | None) -> int | None:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return None
    return round(x)


def _enum(x: Any) -> Any:
    return getattr(x, "value", x)


def clean(obj: Any) -> Any:
    """Recursively make ``obj`` JSON-safe: enums to values, tuples to lists, non-finite floats to ``null``."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, float):
        return _num(obj)
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if hasattr(obj, "value"):
        return clean(obj.value)
    return str(obj)


def dumps(doc: dict) -> str:
    """The text printed for ``--format json``: indented, ASCII-safe, one trailing newline."""
    return json.dumps(doc, indent=2, ensure_ascii=True, allow_nan=False) + "\n"
