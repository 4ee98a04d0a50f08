"""Generate the docs that must not go stale: docs/cli.md (from --help) and docs/accuracy.md (from validate).

    python tools/gen_docs.py          # rewrite both files
    python tools/gen_docs.py --check  # exit 1 if either differs from what the code produces (CI runs this)

tests/test_docs.py runs the same check, so a changed option or estimate without regenerated docs fails the tests.
"""

from __future__ import annotations

import argparse
import os
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    stale = []
    for name, make in (("cli.md", cli_md), ("accuracy.md", accuracy_md)):
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
