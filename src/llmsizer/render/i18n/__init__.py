"""Every word a person reads, in English and Chinese: labels, notes, advice, reasons, network lines and explain
steps. JSON keys never change with the language; JSON's own texts (notes, reasons, explain) are English.

A key missing from a language falls back to English, so a new entry never breaks ``--lang zh``;
tests/test_render.py checks that Chinese has every entry English has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmsizer.render.i18n import (
    en,
    en_explain,
    en_export,
    en_files,
    zh,
    zh_explain,
    zh_export,
    zh_files,
)

LANGS = ("en", "zh")
LABELS = {"en": en.LABELS, "zh": zh.LABELS}
MESSAGES = {"en": {**en.MESSAGES, **en_files.MESSAGES, **en_export.MESSAGES},
            "zh": {**zh.MESSAGES, **zh_files.MESSAGES, **zh_export.MESSAGES}}
NETWORK = {"en": en.NETWORK, "zh": zh.NETWORK}
EXPLAIN = {"en": en_explain.EXPLAIN, "zh": zh_explain.EXPLAIN}

Namer = Callable[[str], str]


def check_lang(lang: str) -> str:
    """``lang`` if known; a ``ValueError`` naming the choices otherwise."""
    if lang not in LABELS:
        raise ValueError(f"unknown language {lang!r}; choose one of {', '.join(LANGS)}")
    return lang


def label(key: str, lang: str = "en") -> str:
    """The label for ``key`` in ``lang``, falling back to English, then to the key itself."""
    return LABELS.get(lang, en.LABELS).get(key) or en.LABELS.get(key, key)


def _field(name: str) -> str:
    return name


def say(msg: Any, lang: str = "en", name: Namer | None = None) -> str:
    """A ``Message`` (note, advice, reason) in words; ``name(field)`` names the fields it mentions."""
    from llmsizer.render import fmt

    if isinstance(msg, str):  # text that is already words (a catalog's own wording)
        return msg
    render = MESSAGES.get(lang, {}).get(msg.code) or MESSAGES["en"][msg.code]
    return render(msg.params, name or _field, fmt)


def network(net: Any, lang: str = "en") -> str:
    """A node's ``Network`` in words."""
    from llmsizer.render import fmt

    render = NETWORK.get(lang, {}).get(net.kind) or en.NETWORK[net.kind]
    return render({"scaleup": net.scaleup, "scaleout_gbps": net.scaleout_gbps}, _field, fmt)


def explain_words(key: str, variant: str, lang: str = "en") -> tuple[str, str, str]:
    """(quantity, formula, assumption) of an explain step ``key`` with ``variant`` tags, in ``lang``."""
    entry = EXPLAIN.get(lang, {}).get(key) or en_explain.EXPLAIN[key]
    tags = variant.split()
    formula = next((entry[f"formula:{t}"] for t in tags if f"formula:{t}" in entry), entry["formula"])
    formula += "".join(entry.get(f"formula+{t}", "") for t in tags)
    assumption = next((entry[f"assumption:{t}"] for t in tags if f"assumption:{t}" in entry), entry["assumption"])
    return entry["quantity"], formula, assumption
