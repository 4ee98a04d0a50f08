"""The console script: ``llmsizer plan ...`` parsed without importing Typer when it can be; everything else by cli.py.

Why: Typer builds a pydantic validator per option while it parses, which costs more than a whole plan
(docs/performance.md). The options themselves are still defined once, in ``cli.plan``'s Typer signature. The first
run reads them off the click command Typer builds (spellings, flags, repeatability) and off that signature (types,
ranges, defaults) into a plain table that the disk cache keeps (``diskcache.py``; rebuilt when llmsizer or Typer changes). Later runs parse ``plan``'s arguments with that
table and call the same ``app.run_plan`` with the same ``PlanArgs`` Typer would have built.

The fast parser accepts only the plain forms (``--opt value``, ``--opt=value``, ``-o value``, flags), values it
can convert exactly as Typer does and within the option's range, each option at most once unless repeatable.
Anything else -- ``--help``, an unknown option, a value out of range, a repeated option, ``--version`` -- goes to
Typer, which gives the answer or the error message it always gave. tests/test_entry.py checks that both parsers
build the same ``PlanArgs``.

Also here, because both paths use them: the error -> exit-code guard and the output helpers.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

from llmsizer.errors import EXIT_OK, EXIT_USAGE, LlmsizerError

STATE = {"debug": False, "quiet": False, "verbose": False}


# ------------------------------------------------------------------------------------- shared by both parsers


def run_guarded(call: Callable[[], Any], *, debug: bool) -> int:
    """Run the CLI; every error becomes one line on stderr and its exit code (never a traceback)."""
    try:
        rv = call()
        return rv if isinstance(rv, int) else EXIT_OK
    except LlmsizerError as e:
        print(f"llmsizer: error: {e}", file=sys.stderr)
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


def note(msg: str) -> None:
    """A note for the user on stderr, unless --quiet."""
    if not STATE["quiet"]:
        print(msg, file=sys.stderr)


def emit(text: str, output: Path | None) -> None:
    """The result on stdout, or into ``--output``."""
    from llmsizer.errors import InvalidInputError

    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        try:
            output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        except OSError as e:
            raise InvalidInputError(f"cannot write --output {output}: {e.strerror or e}") from None
        note(f"wrote {output}")


def color() -> bool | None:
    """False when NO_COLOR is set (https://no-color.org), else let the renderer decide."""
    return False if os.environ.get("NO_COLOR") else None


def run_plan_command(kwargs: dict[str, Any]) -> int:
    """``plan`` once its options are parsed (by either parser): plan, print, return the exit code."""
    from llmsizer.app import PlanArgs, run_plan

    args = PlanArgs(**kwargs)
    text, code = run_plan(args, note=note, verbose=STATE["verbose"], color=color())
    emit(text, args.output)
    return code


# ------------------------------------------------------------------------------------------------ fast path


class Opt(NamedTuple):
    """One option of the option table: enough to parse a plain, valid use of it exactly as Typer would."""

    dest: str  # the Python parameter name (PlanArgs field / root state key)
    kind: str  # "flag", "int", "float", "str", "path" or "enum"
    flag_value: bool = True  # for flags: the value the spelling sets (--explain True, --no-explain False)
    lo: float | None = None  # inclusive range, as Typer's min= / max=
    hi: float | None = None
    choices: type | None = None  # the Enum class of an "enum" option
    multiple: bool = False


class OptionTable(NamedTuple):
    root: dict[str, Opt]  # the root command's flags (--quiet, -v...), by spelling
    plan: dict[str, Opt]  # plan's options, by every spelling
    defaults: dict[str, Any]  # what Typer passes for an option not given


# the plain spellings every parser reads alike (no sign, no leading zeros, no "inf"): anything else goes to Typer
_INT = re.compile(r"0|[1-9][0-9]*")
_FLOAT = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _convert(opt: Opt, text: str) -> Any:
    """``text`` as ``opt``'s type, or None when it is not a plain valid value (then Typer decides)."""
    if opt.kind == "str":
        return text
    if opt.kind == "path":
        return Path(text) if text else None
    if opt.kind == "enum":
        assert opt.choices is not None
        return next((c for c in opt.choices if c.value == text), None)  # type: ignore[attr-defined]
    if opt.kind == "int" and _INT.fullmatch(text):
        v: float = int(text)
    elif opt.kind == "float" and _FLOAT.fullmatch(text):
        v = float(text)
        if v == float("inf"):
            return None
    else:
        return None
    if (opt.lo is not None and v < opt.lo) or (opt.hi is not None and v > opt.hi):
        return None
    return v


def parse_plan_argv(argv: list[str], table: OptionTable) -> tuple[dict[str, bool], dict[str, Any]] | None:
    """``[root flags] plan [options]`` -> (root state, PlanArgs keywords), or None: let Typer parse it."""
    root = {o.dest: False for o in table.root.values()}
    i = 0
    while i < len(argv) and argv[i] in table.root:
        root[table.root[argv[i]].dest] = True
        i += 1
    if i >= len(argv) or argv[i] != "plan":
        return None
    values: dict[str, Any] = {}
    rest = argv[i + 1:]
    j = 0
    while j < len(rest):
        token = rest[j]
        inline = token.startswith("--") and "=" in token
        name, _, text = token.partition("=") if inline else (token, "", "")
        opt = table.plan.get(name)
        if opt is None:  # --help, an unknown option, a stray argument, -abc clusters, --
            return None
        if opt.kind == "flag":
            if inline or opt.dest in values:
                return None
            values[opt.dest] = opt.flag_value
            j += 1
            continue
        if not inline:
            j += 1
            if j >= len(rest) or rest[j].startswith("-"):
                return None
            text = rest[j]
        value = _convert(opt, text)
        if value is None:
            return None
        if opt.multiple:
            values.setdefault(opt.dest, []).append(value)
        elif opt.dest in values:
            return None
        else:
            values[opt.dest] = value
        j += 1
    return root, {**table.defaults, **values}


def build_option_table() -> OptionTable:
    """Read the option table off the Typer commands in cli.py (imports Typer; the disk cache keeps the result).

    Spellings, flags and repeatability come from the click parameters Typer builds (click's public attributes);
    types, ranges and defaults from the Python signatures Typer reads them from (``Annotated[T, typer.Option]``)."""
    import enum
    import inspect
    import typing

    import typer.main

    from llmsizer import cli

    group = typer.main.get_command(cli.app)

    def opts_of(params: list[Any], func: Callable[..., Any]) -> tuple[dict[str, Opt], dict[str, Any]]:
        hints = typing.get_type_hints(func, include_extras=True)
        signature = inspect.signature(func).parameters
        table: dict[str, Opt] = {}
        defaults: dict[str, Any] = {}
        for p in params:
            if p.is_eager or p.name not in signature:  # --version: Typer's business
                continue
            defaults[p.name] = signature[p.name].default
            if p.is_flag:
                for spelling in p.opts:
                    table[spelling] = Opt(p.name, "flag", True)
                for spelling in p.secondary_opts:
                    table[spelling] = Opt(p.name, "flag", False)
                continue
            hint = hints[p.name]
            info = next((x for x in getattr(hint, "__metadata__", ()) if hasattr(x, "min")), None)
            t = typing.get_args(hint)[0] if info is not None else hint  # Annotated[T, Option] -> T
            t = next((x for x in typing.get_args(t) if x is not type(None)), t)  # Optional[T] -> T
            if typing.get_origin(t) is list and len(typing.get_args(t)) == 1:
                t = typing.get_args(t)[0]
            lo, hi = (info.min, info.max) if info is not None else (None, None)
            if isinstance(t, type) and issubclass(t, enum.Enum):
                o = Opt(p.name, "enum", choices=t, multiple=p.multiple)
            elif t in (int, float, str, Path):
                kind = {int: "int", float: "float", str: "str", Path: "path"}[t]
                o = Opt(p.name, kind, lo=lo, hi=hi, multiple=p.multiple)
            else:  # a type the fast parser does not know: leave the whole option to Typer
                continue
            for spelling in p.opts:
                table[spelling] = o
        return table, defaults

    root, _ = opts_of(group.params, cli._root)
    plan, defaults = opts_of(group.commands["plan"].params, cli.plan)
    return OptionTable({k: v for k, v in root.items() if v.flag_value}, plan, defaults)


def _option_table() -> OptionTable:
    from importlib.util import find_spec

    from llmsizer.diskcache import cached

    typer_spec = find_spec("typer")  # Typer's own files are part of the key: upgrading it rebuilds the table
    sources = [Path(typer_spec.origin)] if typer_spec and typer_spec.origin else []
    return cached("cli-options", sources, build_option_table)


def main(argv: list[str] | None = None) -> None:
    """The ``llmsizer`` console script."""
    args = sys.argv[1:] if argv is None else list(argv)
    parsed = None
    if "plan" in args and not os.environ.get("_LLMSIZER_COMPLETE"):
        try:
            parsed = parse_plan_argv(args, _option_table())
        except Exception:  # noqa: BLE001 - any surprise in the fast path: Typer handles the command instead
            parsed = None
    if parsed is None:
        from llmsizer.cli import app

        app(args=args)
        return
    root, kwargs = parsed
    STATE.update(root)
    sys.exit(run_guarded(lambda: run_plan_command(kwargs), debug=STATE["debug"]))


__all__ = ["OptionTable", "build_option_table", "color", "emit", "main", "note", "parse_plan_argv", "run_guarded",
           "run_plan_command"]
