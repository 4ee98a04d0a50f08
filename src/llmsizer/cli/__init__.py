"""The command line: ``app.py`` declares every option (Typer), ``fast.py`` parses ``plan`` without Typer when it can,
``options.py`` maps options to the core's fields (and fields to flags, once), ``run.py`` runs each command,
``edge.py`` turns errors into one line and an exit code. The console script is ``main``.
"""

from __future__ import annotations

import os
import sys

try:  # the C module the interpreter loaded at start-up: signal.py would first import enum (~4 ms), a window in
    import _signal as signal  # which Ctrl-C would still print a traceback
except ImportError:  # pragma: no cover - another Python implementation
    import signal  # type: ignore[no-redef]

_sigint = {"seen": False}


def _on_sigint(signum: int, frame: object) -> None:
    """Python's own Ctrl-C (KeyboardInterrupt), remembered: an interrupt that lands in a class's ``__set_name__``
    while a module is imported reaches the caller as a RuntimeError (CPython 3.11), which a fallback could take
    for an ordinary failure."""
    _sigint["seen"] = True
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """The ``llmsizer`` console script: ``plan`` through the fast parser when it accepts the arguments, everything
    else (and anything unusual) through Typer.

    Every way out is an exit code (CONTRACT.md), never a traceback: Ctrl-C at any point, even while the first
    imports run, is "llmsizer: aborted" and exit 130; a closed stdout (``| head -1``) is exit 0, whichever parser
    ran the command."""
    previous, hook = _watch_sigint()
    try:
        code = _run(sys.argv[1:] if argv is None else list(argv))
        code = _flushed(code)
        if _sigint["seen"] and code != 130:  # interrupted, and something on the way took it for an error
            code = _interrupted()
    except KeyboardInterrupt:
        code = _interrupted()
    except BrokenPipeError:
        code = _closed()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
            sys.unraisablehook = hook
    sys.exit(code)


def _watch_sigint() -> tuple[object, object]:
    """Install ``_on_sigint`` where Ctrl-C has Python's default meaning (not where it is ignored, as for a
    background job), and an unraisable-exception hook that keeps quiet about an interrupt which fell into a
    callback (a weakref's, a finalizer's: Python would print its traceback and carry on); ``interrupt_pending``
    then stops the command before it prints. The handler and the hook they replace, to put back; (None, None)
    when nothing was installed."""
    _sigint["seen"] = False
    try:
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return None, None
        previous = signal.signal(signal.SIGINT, _on_sigint)
    except (ValueError, OSError):  # not the main thread
        return None, None
    hook = sys.unraisablehook

    def unraisable(u: object) -> None:
        if isinstance(getattr(u, "exc_value", None), KeyboardInterrupt):
            return  # remembered by _on_sigint: emit() and main() act on it, without a traceback
        hook(u)  # type: ignore[arg-type]

    sys.unraisablehook = unraisable
    return previous, hook


def interrupt_pending() -> bool:
    """Whether Ctrl-C was pressed during this ``main`` (even if the KeyboardInterrupt was swallowed on the way)."""
    return _sigint["seen"]


def _run(args: list[str]) -> int | str | None:
    parsed = None
    if "plan" in args and not os.environ.get("_LLMSIZER_COMPLETE"):
        try:
            from llmsizer.cli.fast import option_table, parse_plan_argv

            parsed = parse_plan_argv(args, option_table())
        except Exception:  # noqa: BLE001 - any surprise in the fast path: Typer handles the command instead
            if _sigint["seen"]:
                raise KeyboardInterrupt from None
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
