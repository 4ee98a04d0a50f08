"""The command line: ``app.py`` declares every option (Typer), ``fast.py`` parses ``plan`` without Typer when it can,
``options.py`` maps options to the core's fields (and fields to flags, once), ``run.py`` runs each command,
``edge.py`` turns errors into one line and an exit code. The console script is ``main``.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    """The ``llmsizer`` console script: ``plan`` through the fast parser when it accepts the arguments, everything
    else (and anything unusual) through Typer.

    Every way out is an exit code (CONTRACT.md), never a traceback: Ctrl-C at any point, even while the first
    imports run, is "llmsizer: aborted" and exit 130; a closed stdout (``| head -1``) is exit 0, whichever parser
    ran the command."""
    try:
        code = _run(sys.argv[1:] if argv is None else list(argv))
        code = _flushed(code)
    except KeyboardInterrupt:
        code = _interrupted()
    except BrokenPipeError:
        code = _closed()
    sys.exit(code)


def _run(args: list[str]) -> int | str | None:
    parsed = None
    if "plan" in args and not os.environ.get("_LLMSIZER_COMPLETE"):
        try:
            from llmsizer.cli.fast import option_table, parse_plan_argv

            parsed = parse_plan_argv(args, option_table())
        except Exception:  # noqa: BLE001 - any surprise in the fast path: Typer handles the command instead
            parsed = None
    if parsed is None:
        from llmsizer.cli.app import app

        try:
            app(args=args)
        except SystemExit as e:  # the Typer group always exits; its code is the command's
            return e.code
        return 0
    from llmsizer.cli.edge import Root, run_guarded
    from llmsizer.cli.run import run_plan

    flags, options = parsed
    root = Root(**flags)
    return run_guarded(lambda: run_plan(options, root), debug=root.debug)


def _flushed(code: int | str | None) -> int | str | None:
    """Flush stdout here, where a reader that went away is still exit 0 (not an error at interpreter exit)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return _closed()
    except (OSError, ValueError, AttributeError):
        pass
    return code


def _interrupted() -> int:
    try:
        from llmsizer.cli.edge import interrupted
    except BaseException:  # noqa: BLE001 - interrupted again while importing: say it without the edge
        try:
            os.write(2, b"llmsizer: aborted\n")
        except OSError:
            pass
        return 130
    return interrupted()


def _closed() -> int:
    from llmsizer.cli.edge import stdout_closed

    return stdout_closed()
