"""The data files and how they are read: every number with a source, validated once and kept in the disk cache.

- ``data_dir()``: the folder of ``gpus.yaml``, ``models.yaml``, ``memory.yaml``... (inside the wheel, or the repo's
  ``data/`` when run from source);
- ``read_yaml(path)``: one YAML file with the safe loader, bounded in size and work (``MAX_YAML_BYTES``,
  ``MAX_YAML_NODES`` after alias expansion), every problem a one-line ``CatalogError``;
- ``load(name)``: ``memory``, ``compute`` or ``server`` validated against its schema (``data/schema.py``) and turned
  into plain namespaces (attribute access, no classes of ours), which is what the disk cache keeps: a warm
  start-up neither parses YAML nor defines the schema's classes nor imports pydantic.

Nothing is read at import time.
"""

from __future__ import annotations

import os
import stat
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from llmsizer.errors import CatalogError, printable

_PACKAGE = Path(__file__).resolve().parent

#: A data file or user catalog larger than this is refused unread. The packaged ones are under 70 kB; a dense
#: 500 kB of YAML (``[1,1,1,...]``) already composes into ~100 MB of parser nodes before anything can count them.
MAX_YAML_BYTES = 500_000
#: YAML nodes a file may have once every alias is expanded (the packaged files have under 4,000). An alias is a
#: reference, so a few hundred bytes of nested aliases ("billion laughs") stand for billions of nodes: nothing
#: here expands them, but validation, ``str()`` and pydantic walk a value as the tree it stands for.
MAX_YAML_NODES = 200_000


def data_dir() -> Path:
    """The folder holding gpus.yaml, models.yaml, ...: inside the wheel, or the repo's data/ when run from source."""
    if (_PACKAGE / "gpus.yaml").exists():
        return _PACKAGE
    return _PACKAGE.parents[2] / "data"


def display_name(path: Path) -> str:
    """How a file is named in messages: data/gpus.yaml for packaged files, the path as given otherwise (control
    characters escaped)."""
    try:
        return f"data/{path.relative_to(data_dir())}"
    except ValueError:
        return printable(str(path))


def read_yaml(path: Path) -> Any:
    """One YAML file (safe loader); an unreadable, oversized, binary, non-UTF-8 or invalid file, or one whose
    aliases expand past ``MAX_YAML_NODES``, is a one-line CatalogError that names it."""
    shown = display_name(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except (OSError, ValueError) as e:
        raise CatalogError(f"{shown}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    with os.fdopen(fd, "rb") as f:
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):  # a FIFO would block, a device never end
                raise CatalogError(f"{shown}: not a regular file")
            if st.st_size > MAX_YAML_BYTES:
                raise CatalogError(f"{shown}: {st.st_size:,} bytes: too large for a catalog or data file "
                                   f"(limit {MAX_YAML_BYTES:,})")
            text = f.read(MAX_YAML_BYTES + 1)
        except OSError as e:
            raise CatalogError(f"{shown}: cannot read ({e.strerror or e})") from None
    if len(text) > MAX_YAML_BYTES:  # it grew while it was read
        raise CatalogError(f"{shown}: too large for a catalog or data file (limit {MAX_YAML_BYTES:,} bytes)")
    if b"\x00" in text[:2048]:
        raise CatalogError(f"{shown}: not a YAML file (binary content)")
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CatalogError(f"{shown}: not UTF-8 text (at byte {e.start:,})") from None
    import yaml  # here, not at import: a start-up served from the disk cache never parses YAML

    loader = _bounded_loader()(decoded)
    try:
        return loader.get_single_data()
    except _TooBig as e:
        raise CatalogError(f"{shown}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = printable(getattr(e, "problem", None) or str(e).splitlines()[0])  # may quote a tag of the file
        problem = problem if len(problem) <= 200 else problem[:197] + "..."
        raise CatalogError(f"{shown}: invalid YAML{where}: {problem}") from None
    except RecursionError:  # the pure-Python parser (no libyaml) on deep nesting; libyaml stops at 1000 levels
        raise CatalogError(f"{shown}: invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()


class _TooBig(Exception):
    pass


@lru_cache(maxsize=1)
def _bounded_loader() -> type:
    """The safe loader (libyaml's when installed) that counts a document's nodes, every alias expanded, before it
    constructs a single value, and refuses more than ``MAX_YAML_NODES`` or an alias inside itself.

    Why count rather than refuse aliases outright: anchors and merge keys (``<<: *defaults``) are ordinary
    YAML that a user catalog may use; what hurts is only what they expand to. The count is over the composed
    node graph, in which an alias is the very node it names, so it costs one visit per distinct node (memoized),
    however large the expansion."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class BoundedLoader(base):  # type: ignore[misc, valid-type]
        def get_single_data(self) -> Any:
            node = self.get_single_node()
            if node is None:
                return None
            _check_expansion(node, MAX_YAML_NODES)
            return self.construct_document(node)

    return BoundedLoader


def _children(node: Any) -> list[Any]:
    value = node.value
    if not isinstance(value, list):
        return []  # a scalar
    if value and isinstance(value[0], tuple):
        return [n for pair in value for n in pair]  # a mapping: (key, value) pairs
    return value


def _check_expansion(root: Any, limit: int) -> None:
    """Raise ``_TooBig`` when ``root`` stands for more than ``limit`` nodes with every alias expanded, or when an
    alias refers to a node that contains it. Iterative (no recursion), one visit per distinct node."""
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            total = 1 + sum(size[id(c)] for c in _children(node))
            if total > limit:
                raise _TooBig(f"more than {limit:,} YAML nodes, counting each alias as what it stands for (a 'billion "
                              "laughs'?); a catalog needs far fewer")
            size[key] = total
            continue
        if key in size:
            continue
        if key in open_:
            raise _TooBig("an alias refers to a node that contains it (a recursive structure is no catalog)")
        open_.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in size)


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

    if name == "serving":
        from llmsizer.data.schema_serving import ServingData

        return ServingData
    return {"memory": schema.MemoryData, "compute": schema.ComputeData, "server": schema.ServerRules,
            "frameworks": schema.FrameworksData}[name]


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
    """``data/<name>.yaml`` validated (``memory``, ``compute``, ``server``, ``frameworks``, ``serving``), once per
    process; from
    the disk cache while the file is unchanged."""
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
