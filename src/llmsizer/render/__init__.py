"""Render results for people (table, markdown, html) and for machines (json): the only place that formats units.

Entry points (``cli.py`` calls these; each returns the full text to print, newline-terminated):

- ``render_plan(result, fmt, *, lang, explain, width, color, name)``  fmt: table | json | markdown | html;
  ``name(field)`` is what to call a field the notes mention (the CLI passes its flags)
- ``render_models(models, fmt, *, lang)`` / ``render_model(model, fmt, *, lang)``
- ``render_gpus(gpus, fmt, *, lang)`` / ``render_gpu(gpu, instances, fmt, *, lang)``
- ``render_fit(result, fmt, *, lang)`` / ``render_validate(cases, fmt, *, lang)``: the use cases' results (or the
  CONTRACT-shaped dicts ``records.fit_to_dict`` / ``records.validate_to_dict`` build from them)
- ``export.export_plan(result, engine)``: the top plan as a launch config
- ``plan_to_dict(result, *, explain, timing)`` and friends in ``jsonout``; ``load_schema(name)``

Rich is imported only by ``render.table``, which is imported only when a table is asked for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING, Any

from llmsizer.render.i18n import LANGS, Namer, check_lang
from llmsizer.render.jsonout import (
    SCHEMA_VERSION,
    dumps,
    gpus_to_dict,
    model_to_dict,
    models_to_dict,
    plan_to_dict,
)

if TYPE_CHECKING:  # pragma: no cover
    from llmsizer.search import PlanResult
    from llmsizer.specs import CloudInstance, GpuSpec, ModelSpec

FORMATS = ("table", "json", "markdown")
PLAN_FORMATS = ("table", "json", "markdown", "html")
SCHEMAS = ("plan", "models", "gpus", "fit", "validate")

__all__ = [
    "FORMATS", "LANGS", "PLAN_FORMATS", "SCHEMAS", "SCHEMA_VERSION",
    "dumps", "gpus_to_dict", "load_schema", "model_to_dict", "models_to_dict", "plan_to_dict",
    "render_fit", "render_gpu", "render_gpus", "render_model", "render_models", "render_plan", "render_validate",
]


def _check(fmt: str, allowed: tuple[str, ...], lang: str) -> None:
    if fmt not in allowed:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(allowed)}")
    check_lang(lang)


def render_plan(result: PlanResult, fmt: str, *, lang: str = "en", explain: bool | str = False,
                width: int | None = None, color: bool | None = None, name: Namer | None = None) -> str:
    """The ``plan`` output in ``fmt``. ``explain``: True or ``"full"`` adds every derivation step of the top plan,
    ``"short"`` its key figures with formula and source (``explain_short``; JSON always carries every step)."""
    _check(fmt, PLAN_FORMATS, lang)
    if fmt == "json":
        return dumps(plan_to_dict(result, explain=bool(explain), name=name))
    if fmt == "markdown":
        from llmsizer.render import markdown

        return markdown.render_plan(result, lang=lang, explain=explain, name=name)
    if fmt == "html":
        from llmsizer.render import html

        return html.render_plan(result, lang=lang, explain=explain, name=name)
    from llmsizer.render import table

    return table.render_plan(result, lang=lang, explain=explain, width=width, color=color, name=name)


def render_models(models: Iterable[ModelSpec], fmt: str, lang: str = "en", *, width: int | None = None,
                  color: bool | None = None) -> str:
    """``llmsizer models``: the catalog, one row per model."""
    _check(fmt, FORMATS, lang)
    models = list(models)
    if fmt == "json":
        return dumps(models_to_dict(models))
    if fmt == "markdown":
        from llmsizer.render import markdown

        return markdown.render_models(models, lang=lang)
    from llmsizer.render import table

    return table.render_models(models, lang=lang, width=width, color=color)


def render_model(model: ModelSpec, fmt: str, lang: str = "en", *, width: int | None = None,
                 color: bool | None = None) -> str:
    """``llmsizer models ID``: one model in detail. JSON has the list's shape, with one entry."""
    _check(fmt, FORMATS, lang)
    if fmt == "json":
        return dumps(models_to_dict([model]))
    if fmt == "markdown":
        from llmsizer.render import markdown

        return markdown.render_model(model, lang=lang)
    from llmsizer.render import table

    return table.render_model(model, lang=lang, width=width, color=color)


def render_gpus(gpus: Iterable[GpuSpec], fmt: str, lang: str = "en", *, width: int | None = None,
                color: bool | None = None) -> str:
    """``llmsizer gpus``: the catalog, one row per GPU."""
    _check(fmt, FORMATS, lang)
    gpus = list(gpus)
    if fmt == "json":
        return dumps(gpus_to_dict(gpus))
    if fmt == "markdown":
        from llmsizer.render import markdown

        return markdown.render_gpus(gpus, lang=lang)
    from llmsizer.render import table

    return table.render_gpus(gpus, lang=lang, width=width, color=color)


def render_gpu(gpu: GpuSpec, instances: Iterable[CloudInstance], fmt: str, lang: str = "en", *,
               width: int | None = None, color: bool | None = None) -> str:
    """``llmsizer gpus ID``: one GPU in detail and the cloud instances that carry it."""
    _check(fmt, FORMATS, lang)
    instances = list(instances)
    if fmt == "json":
        return dumps(gpus_to_dict([gpu], {gpu.id: instances}))
    if fmt == "markdown":
        from llmsizer.render import markdown

        return markdown.render_gpu(gpu, instances, lang=lang)
    from llmsizer.render import table

    return table.render_gpu(gpu, instances, lang=lang, width=width, color=color)


def render_fit(result: Any, fmt: str, lang: str = "en", *, width: int | None = None,
               color: bool | None = None) -> str:
    """``llmsizer fit``: a ``FitResult`` (or the CONTRACT's ``fit --format json`` object itself)."""
    _check(fmt, FORMATS, lang)
    from llmsizer.render import records

    doc = result if isinstance(result, dict) else records.fit_to_dict(result)
    return records.render_fit(doc, fmt, lang=lang, width=width, color=color)


def render_validate(cases: Any, fmt: str, lang: str = "en", *, width: int | None = None,
                    color: bool | None = None) -> str:
    """``llmsizer validate``: the ``CaseResult`` list (or the CONTRACT's ``validate --format json`` object)."""
    _check(fmt, FORMATS, lang)
    from llmsizer.render import records

    doc = cases if isinstance(cases, dict) else records.validate_to_dict(cases)
    return records.render_validate(doc, fmt, lang=lang, width=width, color=color)


@cache
def _schema_text(name: str) -> str:
    from importlib import resources  # here, not at import: a plan never reads a schema

    return resources.files("llmsizer.render").joinpath("schema", f"{name}.schema.json").read_text("utf-8")


def load_schema(name: str) -> dict[str, Any]:
    """The packaged JSON Schema (draft 2020-12) of a command's ``--format json`` output: plan, models, gpus..."""
    if name not in SCHEMAS:
        raise ValueError(f"unknown schema {name!r}; choose one of {', '.join(SCHEMAS)}")
    return json.loads(_schema_text(name))
