"""Validated catalogs and data files, pickled in the user cache folder so that start-up skips YAML and validation.

``cached(name, sources, build)`` returns ``build()``'s result, stored the first time under ``name`` and reused
while nothing it was built from has changed. The key holds the llmsizer, Python and pydantic versions, a content
hash (BLAKE2b) of every source file next to its size and modification time (so a file edited in place with its
size and mtime kept, as ``cp -p`` or ``rsync -a`` do, is still seen as changed; hashing the few small YAML files
costs well under a millisecond), and the size and modification time of every module of the package itself, as
Python checks ``.pyc`` files: editing a YAML file, adding a user catalog, changing the code or upgrading a
dependency rebuilds the entry.

A missing, stale, corrupt, foreign or unwritable cache is never an error, and neither is any other failure of the
cache: the data is then built from the YAML as if there were no cache, and ``build`` errors (invalid data) are
raised, never stored. A source that is not a regular file (a FIFO, a device) or is larger than 64 MB is never
hashed: that build runs without the cache.

``LLMSIZER_CACHE_DIR`` moves the folder (default ``$XDG_CACHE_HOME/llmsizer`` when that is an absolute path, else
``~/.cache/llmsizer``; with ``HOME`` empty, relative, ``/`` or not a folder there is no cache, so nothing is ever
written to ``/.cache``); ``LLMSIZER_NO_CACHE=1`` turns the cache off. The folder is private (created 0700; one
this user owns is narrowed to 0700, one owned by someone else is not used). Files in it are created with
``O_EXCL | O_NOFOLLOW`` under a random temporary name and renamed into place, so a symlink planted at any name in
the folder is never followed. A pickle is read only from a regular file the current user owns and nobody else may
write (pickles can run code).
"""

from __future__ import annotations

import os
import pickle
import stat
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from llmsizer import __version__

T = TypeVar("T")

_FORMAT = 2  # bump when what is pickled, or the key, changes shape in a way the code stamps would miss
_PACKAGE = Path(__file__).resolve().parents[1]  # the llmsizer package: its modules are part of the key
_MAX_SOURCE_BYTES = 64 * 2**20  # a larger "catalog" is not hashed (build() reads and judges it)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO to read never blocks; it is then refused as not regular
_BINARY = getattr(os, "O_BINARY", 0)
_MISS = object()


def _usable_home() -> str | None:
    """``$HOME`` (or the password database's home when ``HOME`` is unset) if it is an absolute folder other than
    ``/``; None otherwise (empty, relative, missing)."""
    home = os.environ["HOME"] if "HOME" in os.environ else os.path.expanduser("~")
    if not home or not os.path.isabs(home) or home.strip("/\\") == "" or not os.path.isdir(home):
        return None
    return home


def cache_dir() -> Path | None:
    """``$LLMSIZER_CACHE_DIR``, else ``$XDG_CACHE_HOME/llmsizer`` (absolute only, as the XDG spec says), else
    ``~/.cache/llmsizer``; None when there is no usable place (``HOME`` empty or unusable)."""
    explicit = os.environ.get("LLMSIZER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "llmsizer"
    home = _usable_home()
    return Path(home) / ".cache" / "llmsizer" if home is not None else None


def enabled() -> bool:
    return os.environ.get("LLMSIZER_NO_CACHE", "") in ("", "0")


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


def _fingerprint(path: Path) -> tuple[str, int, int, str]:
    """(path, size, mtime, BLAKE2b of the content) of a regular source file; OSError for anything else."""
    try:
        from _blake2 import (
            blake2b,  # the standard library's own (hashlib would load OpenSSL: ~2 ms)
        )
    except ImportError:  # pragma: no cover - a Python built without it
        from hashlib import blake2b

    fd = os.open(path, os.O_RDONLY | _NONBLOCK | _CLOEXEC | _BINARY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_SOURCE_BYTES:
            raise OSError(f"{path}: not a small regular file")
        h = blake2b(digest_size=16)
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
    finally:
        os.close(fd)
    return str(path), st.st_size, st.st_mtime_ns, h.hexdigest()


@lru_cache(maxsize=1)
def _code_key() -> tuple:
    """Versions and the stamps of the package's own modules (the pickled classes live there), once per process."""
    code = sorted(os.path.join(root, f) for root, _, files in os.walk(_PACKAGE) for f in files if f.endswith(".py"))
    pydantic = sys.modules.get("pydantic.version")
    return (_FORMAT, __version__, sys.version, getattr(pydantic, "VERSION", None), tuple(_stamp(Path(p)) for p in code))


def _key(sources: list[Path]) -> tuple:
    return _code_key(), tuple(_fingerprint(p.resolve()) for p in sources)


def _trusted(st: os.stat_result) -> bool:
    """A regular file that belongs to this user and nobody else can write (POSIX; elsewhere: the user's folder)."""
    if not stat.S_ISREG(st.st_mode):
        return False
    if not hasattr(os, "getuid"):
        return True
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


class _Folder:
    """The cache folder, opened once: every file operation is relative to its descriptor where the OS allows it
    (so the folder cannot be swapped for a symlink between the check and the use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def open(self) -> bool:
        """Create (0700) or open the folder; False when it is unusable (not ours, not a folder, cannot be made)."""
        try:
            self.path.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            pass
        directory = getattr(os, "O_DIRECTORY", 0)
        if not directory or os.open not in os.supports_dir_fd:  # no descriptor-relative calls (Windows)
            return self.path.is_dir()
        self.fd = os.open(self.path, os.O_RDONLY | directory | _CLOEXEC)
        st = os.fstat(self.fd)
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            return False  # someone else's folder: they could swap our files
        if stat.S_IMODE(st.st_mode) & 0o077:
            try:
                os.fchmod(self.fd, 0o700)  # ours (an older llmsizer made it 0755): private from now on
            except OSError:
                return not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)  # read-only file system: only if unwritable
        return True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _at(self, name: str) -> tuple[str, dict]:
        if self.fd is None:
            return str(self.path / name), {}
        return name, {"dir_fd": self.fd}

    def read(self, name: str, key: tuple) -> object:
        """The value stored under ``name`` with this key, or ``_MISS``."""
        where, at = self._at(name)
        try:
            fd = os.open(where, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC | _BINARY, **at)
        except OSError:
            return _MISS
        try:
            with os.fdopen(fd, "rb") as f:
                if not _trusted(os.fstat(f.fileno())):
                    return _MISS
                stored_key, value = pickle.load(f)
        except Exception:  # noqa: BLE001 - truncated, written by another version, not a pair: rebuild it
            return _MISS
        return value if stored_key == key else _MISS

    def write(self, name: str, key: tuple, value: object) -> None:
        """Store (key, value) under ``name``: a new private file (never an existing name, never through a
        symlink) renamed into place, so a concurrent reader sees the old file or the new one, never half."""
        tmp = f".{name}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
        where, at = self._at(tmp)
        fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY, 0o600, **at)
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump((key, value), f, protocol=pickle.HIGHEST_PROTOCOL)
            dst, _ = self._at(name)
            if self.fd is None:
                os.replace(where, dst)
            else:
                os.replace(where, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:  # a full disk, an unpicklable value, Ctrl-C: no temporary file is left behind
            try:
                os.unlink(where, **at)
            except OSError:
                pass
            raise


def cached(name: str, sources: list[Path], build: Callable[[], T]) -> T:
    """``build()``, or its pickle from an earlier run with the same key (see the module docstring)."""
    if not enabled():
        return build()
    folder: _Folder | None = None
    try:
        key = _key(sources)
        path = cache_dir()
        if path is not None:
            folder = _Folder(path)
            if not folder.open():
                folder.close()
                folder = None
    except Exception:  # noqa: BLE001 - a source unreadable (build() reports it), no usable folder: no cache
        if folder is not None:
            folder.close()
        return build()
    if folder is None:
        return build()
    try:
        value = folder.read(f"{name}.pickle", key)
        if value is not _MISS:
            return value  # type: ignore[return-value]
        value = build()
        try:
            folder.write(f"{name}.pickle", key, value)
        except Exception:  # noqa: BLE001 - read-only folder, full disk, unpicklable value: run without a cache
            pass
        return value  # type: ignore[return-value]
    finally:
        folder.close()
