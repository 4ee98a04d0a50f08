"""The command line: ``app.py`` declares every option (Typer), ``fast.py`` parses ``plan`` without Typer when it can,
``options.py`` maps options to the core's fields (and fields to flags, once), ``run.py`` runs each command,
``edge.py`` turns errors into one line and an exit code. The console script is ``main``.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    """The ``llmsizer`` console script: ``plan`` through the fast parser when it accepts the arguments, everything
    else (and anything unusual) through Typer."""
    args = sys.argv[1:] if argv is None else list(argv)
    parsed = None
    if "plan" in args and not os.environ.get("_LLMSIZER_COMPLETE"):
        try:
            from llmsizer.cli.fast import option_table, parse_plan_argv

            parsed = parse_plan_argv(args, option_table())
        except Exception:  # noqa: BLE001 - any surprise in the fast path: Typer handles the command instead
            parsed = None
    if parsed is None:
        from llmsizer.cli.app import app

        app(args=args)
        return
    from llmsizer.cli.edge import Root, run_guarded
    from llmsizer.cli.run import run_plan

    flags, options = parsed
    root = Root(**flags)
    sys.exit(run_guarded(lambda: run_plan(options, root), debug=root.debug))
