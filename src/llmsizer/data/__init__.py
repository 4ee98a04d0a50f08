"""The data files and how they are read: every number with a source, validated once and kept in the disk cache.

- ``data_dir()``: the folder of ``gpus.yaml``, ``models.yaml``, ``memory.yaml``... (inside the wheel, or the repo's
  ``data/`` when run from source);
- ``read_yaml(path)``: one YAML file with the safe loader, every problem a one-line ``CatalogError``;
- ``load(name)``: ``memory``, ``compute`` or ``server`` validated against its schema (``data/schema.py``) and turned
  into plain namespaces (attribute access, no classes of ours), which is what the disk cache keeps: a warm
  start-up neither parses YAML nor defines the schema's classes nor imports pydantic.

Nothing is read at import time.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from llmsizer.errors import CatalogError

_PACKAGE = Path(__file__).resolve().parent


def data_dir() -> Path:
    """The folder holding gpus.yaml, models.yaml, ...: inside the wheel, or the repo's data/ when run from source."""
    if (_PACKAGE / "gpus.yaml").exists():
        return _PACKAGE
    return _PACKAGE.parents[2] / "data"


def display_name(path: Path) -> str:
    """How a file is named in messages: data/gpus.yaml for packaged files, the path as given otherwise."""
    try:
        return f"data/{path.relative_to(data_dir())}"
    except ValueError:
        return str(path)


def read_yaml(path: Path) -> Any:
    """One YAML file (safe loader); an unreadable, binary, non-UTF-8 or invalid file is a one-line CatalogError."""
    shown = display_name(path)
    try:
        with path.open("rb") as f:
            head = f.read(2048)
            if b"\x00" in head:
                raise CatalogError(f"{shown}: not a YAML file (binary content)")
            text = head + f.read()
    except OSError as e:
        raise CatalogError(f"{shown}: cannot read ({e.strerror or e})") from None
    import yaml  # here, not at import: a start-up served from the disk cache never parses YAML

    try:
        return yaml.load(text.decode("utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except UnicodeDecodeError:
        raise CatalogError(f"{shown}: not UTF-8 text") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise CatalogError(f"{shown}: invalid YAML{where}: {problem}") from None


@lru_cache(maxsize=64)
def _parsed(name: str) -> Any:
    return read_yaml(data_dir() / name)


def load_data_yaml(name: str) -> Any:
    """Parse one packaged data file (``memory.yaml``, ``reference_cases.yaml``...), once per process."""
    return _parsed(name)


def namespace(record: Any) -> Any:
    """A validated record tree as plain ``SimpleNamespace``s, dicts and tuples (what the disk cache keeps)."""
    fields = getattr(record, "__dataclass_fields__", None)
    if fields is not None:
        return SimpleNamespace(**{k: namespace(getattr(record, k)) for k in fields})
    if isinstance(record, dict):
        return {k: namespace(v) for k, v in record.items()}
    if isinstance(record, (tuple, list)):
        return tuple(namespace(v) for v in record)
    return record


def _schema(name: str) -> type:
    from llmsizer.data import schema

    return {"memory": schema.MemoryData, "compute": schema.ComputeData, "server": schema.ServerRules}[name]


def validated(name: str, raw: Any) -> Any:
    """``raw`` (parsed ``data/<name>.yaml``) checked against its schema, as namespaces; every problem in one
    ``CatalogError`` line."""
    from llmsizer.data.validation import message, validate, validation_error

    try:
        record = validate(_schema(name), raw)
    except validation_error() as e:
        msgs = [f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {message(err)}" for err in e.errors()]
        raise CatalogError(f"data/{name}.yaml: " + "; ".join(msgs)) from None
    return namespace(record)


_LOADED: dict[str, Any] = {}


def load(name: str) -> Any:
    """``data/<name>.yaml`` validated (``memory``, ``compute``, ``server``), once per process; from the disk cache
    while the file is unchanged."""
    hit = _LOADED.get(name)
    if hit is None:
        from llmsizer.data.cache import cached

        path = data_dir() / f"{name}.yaml"
        hit = _LOADED[name] = cached(name, [path], lambda: validated(name, load_data_yaml(f"{name}.yaml")))
    return hit


def forget() -> None:
    """Drop what ``load`` and ``load_data_yaml`` hold (tests that swap data files in)."""
    _LOADED.clear()
    _parsed.cache_clear()


__all__ = ["data_dir", "display_name", "forget", "load", "load_data_yaml", "namespace", "read_yaml", "validated"]
