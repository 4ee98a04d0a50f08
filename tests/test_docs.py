"""Docs that cannot go stale: docs/cli.md is generated from --help, docs/accuracy.md from `validate`, the module
list of docs/architecture.md from the modules' docstrings."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _gen():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "tools" / "gen_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_md_matches_help():
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == _gen().cli_md(), \
        "docs/cli.md is stale: run python tools/gen_docs.py"


def test_accuracy_md_matches_validate():
    assert (ROOT / "docs" / "accuracy.md").read_text(encoding="utf-8") == _gen().accuracy_md(), \
        "docs/accuracy.md is stale: run python tools/gen_docs.py"


def test_architecture_md_lists_every_module():
    assert (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8") == _gen().architecture_md(), \
        "docs/architecture.md's module list is stale: run python tools/gen_docs.py"


def test_readme_documents_two_commands_that_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count("```bash\npython3 -m venv .venv") == 2
    assert "llmsizer plan --model" in readme and "pytest" in readme
