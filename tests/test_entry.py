"""The fast ``plan`` parser (cli/fast.py) against Typer: the same request for every input it accepts, Typer for the
rest.

The fast parser exists for start-up time only (issue 10); it must never change what a command means. Every test
here runs both parsers on the same argv and compares what they hand to ``run_plan`` (as the typed ``PlanRequest``
and ``OutputOptions`` that cli/options.py builds from either).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import llmsizer.cli.app as cli
from llmsizer.cli import fast, main
from llmsizer.cli.edge import Root
from llmsizer.cli.options import plan_request

TABLE = fast.build_option_table()


def typer_parse(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, tuple | None, Root | None]:
    """What Typer hands to ``plan``'s body for ``argv``: (exit code, (request, output options) or None, root)."""
    seen: list[tuple] = []
    monkeypatch.setattr(cli, "run_plan_command", lambda kw, root: seen.append((kw, root)) or 0)
    result = CliRunner().invoke(cli.app, argv)
    if not seen:
        return result.exit_code, None, None
    return result.exit_code, plan_request(seen[0][0]), seen[0][1]


def fast_parse(argv: list[str]) -> tuple[tuple, Root] | None:
    parsed = fast.parse_plan_argv(argv, TABLE)
    if parsed is None:
        return None
    root, kwargs = parsed
    return plan_request(kwargs), Root(**root)


def assert_same(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    fast = fast_parse(argv)
    assert fast is not None, f"the fast parser refused {argv}"
    code, args, root = typer_parse(argv, monkeypatch)
    assert code == 0 and args is not None, f"Typer refused {argv} that the fast parser accepted"
    assert fast[0] == args, argv
    assert fast[1] == root, argv


# ------------------------------------------------------------------------------------------------ the table


def test_the_table_covers_every_plan_option_and_root_flag():
    import typer.main

    group = typer.main.get_command(cli.app)
    for p in group.commands["plan"].params:
        for spelling in p.opts + p.secondary_opts:
            assert spelling in TABLE.plan, spelling
    assert set(TABLE.root) == {"--debug", "--quiet", "-q", "--verbose", "-v"}  # --version stays with Typer
    import inspect

    assert set(TABLE.defaults) == set(inspect.signature(cli.plan).parameters) - {"ctx"}


def _valid_values(opt: fast.Opt) -> list[str]:
    if opt.kind == "enum":
        return [c.value for c in opt.choices]  # type: ignore[union-attr]
    if opt.kind == "int":
        lo = int(opt.lo or 0)
        return [str(lo), str(int(opt.hi))] if opt.hi is not None else [str(lo), str(lo + 7)]
    if opt.kind == "float":
        lo = opt.lo or 0.0
        return [repr(lo), "2.5", "3e2"] if opt.hi is None or opt.hi >= 300 else [repr(lo), repr(opt.hi)]
    if opt.kind == "path":
        return ["out.json", "dir/catalog.yaml"]
    return ["llama-3.1-8b", "7B", "h100,a100"]


SINGLE_CASES = [
    [spelling, value] if opt.kind != "flag" else [spelling]
    for spelling, opt in TABLE.plan.items()
    for value in (_valid_values(opt) if opt.kind != "flag" else [""])
]


@pytest.mark.parametrize("args", [[]] + SINGLE_CASES, ids=lambda a: " ".join(a) or "no options")
def test_each_option_alone_parses_as_typer_parses_it(args, monkeypatch):
    assert_same(["plan", *args], monkeypatch)


@pytest.mark.parametrize("argv", [
    ["plan", "--model=llama-3.1-70b", "--mode=finetune", "--top=3", "--format=json"],
    ["-q", "-v", "--debug", "plan", "-m", "8b", "-g", "h100", "-g", "a100,l40s", "--gpu=mi300x"],
    ["--verbose", "plan", "--catalog", "a.yaml", "--catalog=b.yaml", "-o", "x.md", "-f", "markdown"],
    ["plan", "--explain", "--all", "--model", "70b", "--epochs", "0.5", "--budget", "1e4"],
    ["plan", "--no-explain", "--price-per-gpu-hour", "2.49", "--deadline", "30d", "--tokens", "1T"],
])
def test_combinations_parse_as_typer_parses_them(argv, monkeypatch):
    assert_same(argv, monkeypatch)


@pytest.mark.parametrize("argv", [
    ["plan", "--help"], ["plan", "-h"], ["--help"], ["--version", "plan"], ["models"], ["gpus", "plan"],
    ["plan", "--top", "0"], ["plan", "--top", "1001"], ["plan", "--top", "x"], ["plan", "--top", "007"],
    ["plan", "--mode", "bogus"], ["plan", "--mode", "Inference"], ["plan", "--budget", "-5"],
    ["plan", "--epochs", "inf"], ["plan", "--epochs", "nan"], ["plan", "--epochs", ".5"],
    ["plan", "--top", "5", "--top", "6"], ["plan", "--explain", "--explain"], ["plan", "--explain=yes"],
    ["plan", "stray"], ["plan", "--model"], ["plan", "--model", "--mode", "lora"], ["plan", "--"],
    ["plan", "--nope"], ["plan", "-qm", "8b"], ["plan", "-m8b"], ["plan", "--output", ""],
])
def test_anything_unusual_goes_to_typer(argv):
    assert fast.parse_plan_argv(argv, TABLE) is None


# a random mix of options, each spelled any accepted way: the fast parser and Typer agree on all of them
_single = [o for o in TABLE.plan.items() if not o[1].multiple]
_multi = [o for o in TABLE.plan.items() if o[1].multiple]


@st.composite
def _argvs(draw):
    chosen = draw(st.lists(st.sampled_from(_single), unique_by=lambda o: o[1].dest, max_size=12))
    argv: list[str] = draw(st.lists(st.sampled_from(sorted(TABLE.root)), max_size=3)) + ["plan"]
    for spelling, opt in chosen + draw(st.lists(st.sampled_from(_multi), max_size=4)):
        if opt.kind == "flag":
            argv.append(spelling)
            continue
        value = draw(st.sampled_from(_valid_values(opt)))
        argv += [f"{spelling}={value}"] if spelling.startswith("--") and draw(st.booleans()) else [spelling, value]
    return argv


@settings(max_examples=150, deadline=None)
@given(_argvs())
def test_random_option_mixes_parse_as_typer_parses_them(argv):
    with pytest.MonkeyPatch.context() as mp:
        assert_same(argv, mp)


# ------------------------------------------------------------------------------------------------ end to end


def _run_entry(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.mark.parametrize("argv", [
    ["plan", "--model", "llama-3.1-8b", "--mode", "qlora", "--format", "json"],
    ["-q", "plan", "--model", "70b", "--mode", "finetune", "--gpu", "h100", "--top", "2"],
    ["plan", "--model", "llama-3.1-405b", "--gpu", "rtx-4090", "--max-gpus", "2", "--format", "json"],  # exit 1
    ["plan", "--model", "no-such-model"],  # exit 2, one line with suggestions
])
def test_console_script_answers_as_the_typer_cli(argv, capsys):
    code, out, err = _run_entry(argv, capsys)
    ref = CliRunner().invoke(cli.app, argv)
    assert code == ref.exit_code
    if '"schema_version"' in out:  # the search time in the JSON differs run to run
        a, b = json.loads(out), json.loads(ref.stdout)
        a["search"].pop("seconds", None), b["search"].pop("seconds", None)
        assert a == b
    else:  # nor does the table's "(16.2 ms)"
        assert re.sub(r"\([0-9.]+ ms\)", "", out) == re.sub(r"\([0-9.]+ ms\)", "", ref.stdout)
    assert err == ref.stderr


def test_fast_path_writes_output_files(tmp_path: Path, capsys):
    target = tmp_path / "plan.md"
    code, out, err = _run_entry(["plan", "--model", "8b", "-f", "markdown", "-o", str(target)], capsys)
    assert code == 0 and out == "" and f"wrote {target}" in err
    assert target.read_text(encoding="utf-8").startswith("#")


def test_a_broken_table_falls_back_to_typer(monkeypatch, capsys):
    def broken():
        raise RuntimeError("cache gone wrong")

    monkeypatch.setattr(fast, "option_table", broken)
    code, out, _ = _run_entry(["plan", "--model", "8b", "--format", "json"], capsys)
    assert code == 0 and '"schema_version"' in out


# messy command lines: the console script (fast path or fallback) answers exactly as the Typer CLI does (--help is
# left out: both print Typer's help, wrapped to the terminal, which CliRunner fakes)
_MESSY = st.lists(st.sampled_from([
    "--model", "llama-3.1-8b", "7b", "--mode", "lora", "pretrain", "inference", "--gpus", "3", "0", "-1", "--tp",
    "2", "--pp", "4", "--tokens", "1T", "nan", "--batch", "4", "--format", "json", "--gpu", "h100", "l4",
    "--zero", "3", "--offload", "cpu", "--quant", "int4", "--top", "2", "--top=1", "--", "=", "", "-q", "-v",
    "--explain", "--no-explain", "--all", "--format=markdown", "--lang", "zh", "-m", "-g", "plan",
]), max_size=8)


@settings(max_examples=60, deadline=None)
@given(_MESSY)
def test_messy_command_lines_answer_as_typer_does(args):
    import contextlib
    import io

    argv = ["plan", *args]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        main(argv)
    code = exit_info.value.code or 0
    ref = CliRunner().invoke(cli.app, argv)
    assert code == ref.exit_code, (argv, err.getvalue(), ref.stderr)
    assert "Traceback" not in err.getvalue()
    strip = lambda t: re.sub(r'\([0-9.]+ ms\)|"seconds": [0-9.e-]+', "", t)  # noqa: E731 - timings differ
    assert strip(out.getvalue()) == strip(ref.stdout), argv
    assert err.getvalue() == ref.stderr, argv
