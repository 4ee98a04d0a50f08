"""``llmsizer plan ...`` parsed without importing Typer, when it can be (start-up time: Typer builds a pydantic
validator per option while it parses, which costs more than a whole plan; docs/performance.md).

The options are defined once, in ``cli/app.py``'s Typer signature. The first run reads them off the click command
Typer builds (spellings, flags, repeatability) and off that signature (types, ranges, defaults) into a plain table
that the disk cache keeps (rebuilt when llmsizer or Typer changes). Later runs parse ``plan``'s arguments with that
table into the same keyword arguments Typer would pass.

The fast parser accepts only the plain forms (``--opt value``, ``--opt=value``, ``-o value``, flags), values it can
convert exactly as Typer does and within the option's range, each option at most once unless repeatable. Anything
else (``--help``, an unknown option, a value out of range, a repeated option, ``--version``) goes to Typer, which
gives the answer or the error message it always gave. tests/test_entry.py checks that both parsers agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

# ------------------------------------------------------------------------------------------------ fast path


class Opt(NamedTuple):
    """One option of the option table: enough to parse a plain, valid use of it exactly as Typer would."""

    dest: str  # the Python parameter name (Typer's; cli/options.py maps it to the core's field)
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
    """``[root flags] plan [options]`` -> (root flags, plan's keyword arguments), or None: let Typer parse it."""
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

    from llmsizer.cli import app

    group = typer.main.get_command(app.app)

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

    root, _ = opts_of(group.params, app.root)
    plan, defaults = opts_of(group.commands["plan"].params, app.plan)
    return OptionTable({k: v for k, v in root.items() if v.flag_value}, plan, defaults)


def option_table() -> OptionTable:
    """The option table, from the disk cache while llmsizer and Typer are unchanged."""
    from importlib.util import find_spec

    from llmsizer.data.cache import cached

    typer_spec = find_spec("typer")  # Typer's own files are part of the key: upgrading it rebuilds the table
    sources = [Path(typer_spec.origin)] if typer_spec and typer_spec.origin else []
    return cached("cli-options", sources, build_option_table)


__all__ = ["Opt", "OptionTable", "build_option_table", "option_table", "parse_plan_argv"]
