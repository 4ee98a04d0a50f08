"""Generate the docs that must not go stale: docs/cli.md (from --help), docs/accuracy.md (from validate) and the
module list of docs/architecture.md (from each module's docstring).

    python tools/gen_docs.py          # rewrite the three files
    python tools/gen_docs.py --check  # exit 1 if any differs from what the code produces (CI runs this)

tests/test_docs.py runs the same check, so a changed option or estimate without regenerated docs fails the tests.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["", "plan", "fit", "models", "gpus", "validate"]


def _run(args: list[str]) -> str:
    from typer.testing import CliRunner

    from llmsizer.cli.app import app

    env = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb", "LLMSIZER_CONFIG_DIR": "/nonexistent"}
    r = CliRunner().invoke(app, args, env=env, terminal_width=100)
    return r.stdout


def cli_md() -> str:
    out = ["# Command-line reference", "",
           "Generated from `llmsizer --help` by `python tools/gen_docs.py`; `tests/test_docs.py` fails when it is",
           "stale. The JSON output of every command is described in [json-output.md](json-output.md).", ""]
    for cmd in COMMANDS:
        args = ([cmd] if cmd else []) + ["--help"]
        out += [f"## `llmsizer {' '.join(args)}`", "", "```text", _run(args).rstrip(), "```", ""]
    return "\n".join(out)


def accuracy_md() -> str:
    header = (ROOT / "docs" / "accuracy-intro.md").read_text(encoding="utf-8")
    table = _run(["validate", "--format", "markdown"])
    return header.rstrip() + "\n\n" + table.replace("# Validation against published figures", "## Every case", 1)


BEGIN, END = "<!-- modules:begin -->", "<!-- modules:end -->"
SRC = ROOT / "src" / "llmsizer"
_SENTENCE_END = re.compile(r"(?<!\bal)(?<!e\.g)(?<!i\.e)(?<!\bsec)(?<!\bvs)\.\s")


def _summary(path: Path) -> str:
    """A module docstring's first sentence (its first paragraph when that has no sentence end), on one line."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    para = " ".join(doc.split("\n\n")[0].split())
    end = _SENTENCE_END.search(para)
    return para[: end.start() + 1] if end else para


def _floors() -> list[set[str]]:
    spec = importlib.util.spec_from_file_location("test_layers", ROOT / "tests" / "test_layers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.FLOORS


def modules_table() -> str:
    """Every module, floor by floor (the order of tests/test_layers.py), with its summary."""
    rows = ["| floor | module | what it is |", "|---:|---|---|"]
    for i, floor in enumerate(_floors()):
        for pkg in sorted(floor):
            base = SRC / pkg
            paths = sorted(base.rglob("*.py")) if base.is_dir() else [SRC / f"{pkg}.py"]
            for path in paths:
                name = path.relative_to(SRC).as_posix()
                rows.append(f"| {i} | `{name}` | {_summary(path).replace('|', '/')} |")
    return "\n".join(rows)


def architecture_md() -> str:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    return f"{head}{BEGIN}\n{modules_table()}\n{END}{tail}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    stale = []
    for name, make in (("cli.md", cli_md), ("accuracy.md", accuracy_md), ("architecture.md", architecture_md)):
        path = ROOT / "docs" / name
        text = make()
        if a.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("stale (run python tools/gen_docs.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("NO_COLOR", "1")
    sys.exit(main())
