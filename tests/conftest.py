"""The whole test run keeps its disk cache in a temporary folder, never in the real ``~/.cache/llmsizer``.

Set at configuration time (before any test module is collected: some build parameter lists from the catalog at
import), in ``os.environ``, so every subprocess a test starts inherits it too. A test that points
``LLMSIZER_CACHE_DIR`` elsewhere with ``monkeypatch`` gets this folder back afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile

_ENV = "LLMSIZER_CACHE_DIR"
_saved: dict[str, str | None] = {}


def pytest_configure(config) -> None:
    folder = tempfile.mkdtemp(prefix="llmsizer-test-cache-")
    _saved["previous"] = os.environ.get(_ENV)
    _saved["folder"] = folder
    os.environ[_ENV] = folder


def pytest_unconfigure(config) -> None:
    folder = _saved.pop("folder", None)
    previous = _saved.pop("previous", None)
    if previous is None:
        os.environ.pop(_ENV, None)
    else:
        os.environ[_ENV] = previous
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
