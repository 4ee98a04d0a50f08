"""Validated catalogs and data files, pickled in the user cache folder so that start-up skips YAML and validation.

``cached(name, sources, build)`` returns ``build()``'s result, stored the first time under ``name`` and reused
while nothing it was built from has changed. The key holds the llmsizer, Python and pydantic versions, the size
and modification time of every source file (as Python checks ``.pyc`` files) and of every module of the package
itself (every subpackage): editing a YAML file, adding a user catalog, changing the code or upgrading a dependency rebuilds the entry.
A missing, stale, corrupt, foreign or unwritable cache is never an error: the data is then built from the YAML as
if there were no cache, and ``build`` errors (invalid data) are raised, never stored.

``LLMSIZER_CACHE_DIR`` moves the folder (default ``$XDG_CACHE_HOME/llmsizer``, else ``~/.cache/llmsizer``);
``LLMSIZER_NO_CACHE=1`` turns the cache off. A pickle is read only from a file the current user owns and nobody
else may write (pickles can run code).
"""

from __future__ import annotations

import os
import pickle
import stat
import sys
from functools import lru_cache
from pathlib import Path
from typing import Callable, TypeVar

from llmsizer import __version__

T = TypeVar("T")

_FORMAT = 1  # bump when what is pickled changes shape in a way the code stamps would miss
_PACKAGE = Path(__file__).resolve().parents[1]  # the llmsizer package: its modules are part of the key


def cache_dir() -> Path:
    """``$LLMSIZER_CACHE_DIR``, else ``$XDG_CACHE_HOME/llmsizer``, else ``~/.cache/llmsizer``."""
    if os.environ.get("LLMSIZER_CACHE_DIR"):
        return Path(os.environ["LLMSIZER_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llmsizer"


def enabled() -> bool:
    return os.environ.get("LLMSIZER_NO_CACHE", "") in ("", "0")


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


@lru_cache(maxsize=1)
def _code_key() -> tuple:
    """Versions and the stamps of the package's own modules (the pickled classes live there), once per process."""
    code = sorted(os.path.join(root, f) for root, _, files in os.walk(_PACKAGE) for f in files if f.endswith(".py"))
    pydantic = sys.modules.get("pydantic.version")
    return (_FORMAT, __version__, sys.version, getattr(pydantic, "VERSION", None), tuple(_stamp(Path(p)) for p in code))


def _key(sources: list[Path]) -> tuple:
    return _code_key(), tuple(_stamp(p.resolve()) for p in sources)


def _trusted(fd: int) -> bool:
    """The cache file belongs to this user and nobody else can write it (POSIX; elsewhere: the user's folder)."""
    if not hasattr(os, "getuid"):
        return True
    st = os.fstat(fd)
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def cached(name: str, sources: list[Path], build: Callable[[], T]) -> T:
    """``build()``, or its pickle from an earlier run with the same key (see the module docstring)."""
    if not enabled():
        return build()
    try:
        key = _key(sources)
    except OSError:
        return build()  # a source is missing or unreadable: build() reports it
    path = cache_dir() / f"{name}.pickle"
    try:
        with path.open("rb") as f:
            if _trusted(f.fileno()):
                stored_key, value = pickle.load(f)
                if stored_key == key:
                    return value
    except Exception:  # noqa: BLE001 - absent, truncated, written by another version: rebuild it
        pass
    value = build()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            pickle.dump((key, value), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one, never half
    except Exception:  # noqa: BLE001 - read-only home, full disk, unpicklable value: run without a cache
        try:
            tmp.unlink()
        except OSError:
            pass
    return value
