"""``Step``: one derived figure with its formula, inputs, source and assumption, for ``plan --explain``.

Estimators return their results together with the steps that produced them; ``render/`` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Step:
    """One figure: ``value`` (in base units: bytes, s, FLOP, FLOP/s, tokens/s, USD) = ``formula`` over ``inputs``."""

    quantity: str  # what was computed, e.g. "weights per GPU"
    value: float
    unit: str  # "bytes", "s", "FLOP", "FLOP/s", "tokens/s", "USD", "fraction", "count"
    formula: str  # e.g. "P x 2 B / (tp x pp)"
    inputs: dict[str, float | int | str] = field(default_factory=dict)
    source: str = ""  # citation: paper + section, datasheet, config.json
    assumption: str = ""  # what is deliberately ignored or assumed
