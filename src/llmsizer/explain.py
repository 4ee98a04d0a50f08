"""What the core tells the user, as codes and numbers; ``render/`` puts it into words (English or Chinese).

- ``Step``: one derived figure of ``plan --explain``: its ``key`` names the quantity, formula and assumption in
  ``render/i18n``; ``value`` is in base units (bytes, s, FLOP, FLOP/s, tokens/s, USD); ``inputs`` are the numbers
  put in (unit-named keys); ``source`` is the citation (a paper, datasheet or data file's ``source:``).
- ``Message``: a note, a piece of advice or a reason a plan does not fit: a ``code`` and its parameters
  (unit-named keys, raw numbers). Fields are named by field name (``tokens``), never by command-line flag.
"""

from __future__ import annotations

from llmsizer.record import field, record


@record
class Step:
    """One figure: ``value`` = the formula of ``key`` over ``inputs``."""

    key: str  # e.g. "memory.weights"; render/i18n has its quantity, formula and assumption per language
    value: float
    unit: str  # "bytes", "s", "FLOP", "FLOP/s", "tokens/s", "USD", "fraction", "count", "W", "J", "GPU-h"
    inputs: dict[str, float | int | str] = field(default_factory=dict)
    source: str = ""  # citation: paper + section, datasheet, config.json, a data file's source
    variant: str = ""  # which form of the formula applies (e.g. "adapter", "interleaved"), for render/i18n


@record
class Message:
    """A note, advice or reason: ``code`` (render/i18n words it) and ``params`` (unit-named keys, raw values)."""

    code: str
    params: dict[str, object] = field(default_factory=dict)


def message(code: str, **params: object) -> Message:
    return Message(code, params)
