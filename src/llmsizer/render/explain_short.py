"""``plan --explain``'s short form: the key figures of the top plan, each with its formula and source.

The full derivation (every step, its inputs and assumptions; ``common.explain_rows``) is ``--explain-all``; JSON's
``explain`` list always carries every step. ``explain`` arguments across render/: False (none), ``"short"`` (this
summary), True or ``"full"`` (every step).
"""

from __future__ import annotations

from llmsizer.render import fmt
from llmsizer.render.i18n import Namer, explain_words, label
from llmsizer.render.jsonout import plan_steps
from llmsizer.search import Plan

#: the figures a reader checks first, in the order the pipeline computes them: memory per GPU and its parts,
#: speed, time, price and its basis
KEY_STEPS = (
    "memory.weights", "memory.weights_inference", "memory.gradients", "memory.optimizer", "memory.activations",
    "memory.activations_inference", "memory.kv", "memory.total",
    "compute.throughput", "compute.mfu", "compute.training_time",
    "inference.ttft", "inference.tpot", "inference.throughput", "inference.max_concurrency",
    "cost.price", "cost.per_hour", "cost.total", "cost.per_mtok",
)
_SOURCE_CHARS = 90


def mode(explain: bool | str) -> str:
    """``"none"``, ``"short"`` or ``"full"`` for any ``explain`` argument render/ accepts."""
    if explain is True or explain == "full":
        return "full"
    return "short" if explain == "short" else "none"


def short_source(source: str) -> str:
    """A citation's first clause (up to the first ";"), at most ~90 characters: the full text is --explain-all's."""
    first = source.split(";")[0].strip()
    if len(first) <= _SOURCE_CHARS:
        return first
    cut = first[:_SOURCE_CHARS].rsplit(" ", 1)[0]
    return cut.rstrip(",.:") + " …"


def summary_rows(plan: Plan, lang: str) -> list[list[str]]:
    """[quantity, result, formula, source] of each key figure of ``plan`` that it explains."""
    rows = []
    for _, s in plan_steps(plan):
        if s.key not in KEY_STEPS:
            continue
        quantity, formula, _ = explain_words(s.key, s.variant, lang)
        rows.append([quantity, fmt.value(s.value, s.unit, lang), formula, short_source(s.source)])
    return rows


def summary_headers(lang: str) -> list[str]:
    return [label("quantity", lang), label("result", lang), label("formula", lang), label("source", lang)]


def summary_title(plan: Plan, lang: str) -> str:
    return f"{label('explain_short', lang)}: {plan.gpu.name}"


def more_line(lang: str, name: Namer | None = None) -> str:
    """Where the full derivation is: "every step, with its inputs and assumptions: --explain-all"."""
    flag = (name or (lambda f: "--" + f.replace("_", "-")))("explain_all")
    return label("explain_more", lang).format(flag=flag)
