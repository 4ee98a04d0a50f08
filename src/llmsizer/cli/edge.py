"""The CLI's edge: every error becomes one line on stderr and its exit code (CONTRACT.md), once; notes go to stderr
and results to stdout (or ``--output``).

``Root`` holds the root flags (``--debug``, ``--quiet``, ``--verbose``) of one invocation; both parsers build it
and hand it to the commands.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmsizer.cli.options import flag
from llmsizer.errors import EXIT_OK, EXIT_USAGE, InvalidInputError, LlmsizerError, literal
from llmsizer.record import record


@record
class Root:
    debug: bool = False
    quiet: bool = False
    verbose: bool = False


def run_guarded(call: Callable[[], Any], *, debug: bool) -> int:
    """Run a command; every error becomes one line on stderr and its exit code (never a traceback)."""
    try:
        rv = call()
        return rv if isinstance(rv, int) else EXIT_OK
    except LlmsizerError as e:
        print(f"llmsizer: error: {e.render(flag)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("llmsizer: aborted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # noqa: BLE001 - the one place unexpected errors become a message
        if debug:
            raise
        print(f"llmsizer: internal error: {type(e).__name__}: {e} (rerun with --debug and report it)",
              file=sys.stderr)
        return EXIT_USAGE


def note(root: Root, msg: str) -> None:
    """A note for the user on stderr, unless --quiet."""
    if not root.quiet:
        print(msg, file=sys.stderr)


def emit(root: Root, text: str, output: Path | None) -> None:
    """The result on stdout, or into ``--output``."""
    text = text if text.endswith("\n") else text + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as e:
        raise InvalidInputError("cannot write {output} " + literal(f"{output}: {e.strerror or e}"),
                                fields=("output",)) from None
    note(root, f"wrote {output}")


def color() -> bool | None:
    """False when NO_COLOR is set (https://no-color.org), else let the renderer decide."""
    return False if os.environ.get("NO_COLOR") else None
