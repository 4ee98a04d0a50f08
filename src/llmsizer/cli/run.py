"""What each command does once its options are parsed (by Typer, or for ``plan`` by the fast parser): build the
request, ask the use case, render, print. No Typer here: ``plan``'s fast path runs through this module alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmsizer.cli.edge import Root, color, emit, note
from llmsizer.cli.options import flag, plan_request
from llmsizer.errors import EXIT_NO_FIT, EXIT_OK
from llmsizer.explain import message


def run_plan(options: dict[str, Any], root: Root) -> int:
    """``plan``: search, print the plans (or a launch config) on stdout. The notes are part of the table, Markdown
    and HTML output (their Notes section), so they go to stderr only beside JSON and launch configs, whose readers
    are programs."""
    from llmsizer.render import render_plan
    from llmsizer.render.i18n import label, say
    from llmsizer.usecases.plan import plan_request as answer

    request, out = plan_request(options)
    result = answer(request).result
    if out.export or out.fmt == "json":
        prefix = label("note", out.lang)
        for n in result.notes:
            note(root, f"{prefix}: {say(n, out.lang, flag)}")
    if root.verbose:
        note(root, say(message("searched", evaluated=result.evaluated, ms=result.search_seconds * 1000), out.lang))
    code = EXIT_OK if result.any_fit else EXIT_NO_FIT
    if out.export:
        from llmsizer.render.export import export_notes, export_plan

        text = export_plan(result, out.export)
        for n in export_notes(result, out.export.lower(), flag, out.lang):
            note(root, f"{label('note', out.lang)}: {n}")
    else:
        explain = ("full" if out.explain_all else "short") if request.explain else False
        text = render_plan(result, out.fmt, lang=out.lang, explain=explain, color=color(), name=flag)
    emit(root, text, out.output, "text" if out.export else out.fmt)
    return code


def run_models(model_id: str | None, family: str | None, min_params: str | None, max_params: str | None,
               fmt: str, lang: str, catalog: list[Path]) -> int:
    from llmsizer.render import render_model, render_models
    from llmsizer.usecases import listing
    from llmsizer.usecases.plan import positive_count

    files = tuple(catalog)
    if model_id is not None:
        emit(Root(), render_model(listing.show_model(model_id, files), fmt, lang), None, fmt)
        return EXIT_OK
    lo, hi = positive_count("min_params", min_params), positive_count("max_params", max_params)
    emit(Root(), render_models(listing.list_models(family, lo, hi, files), fmt, lang), None, fmt)
    return EXIT_OK


def run_gpus(gpu_id: str | None, vendor: str | None, min_memory_gb: float | None, fmt: str, lang: str,
             catalog: list[Path]) -> int:
    from llmsizer.render import render_gpu, render_gpus
    from llmsizer.usecases import listing

    files = tuple(catalog)
    if gpu_id is not None:
        gpu, instances = listing.show_gpu(gpu_id, files)
        emit(Root(), render_gpu(gpu, instances, fmt, lang), None, fmt)
        return EXIT_OK
    min_bytes = min_memory_gb * 1e9 if min_memory_gb is not None else None
    emit(Root(), render_gpus(listing.list_gpus(vendor, min_bytes, files), fmt, lang), None, fmt)
    return EXIT_OK


def run_fit(gpu: str, gpus: int, mode: Any, context: int | None, concurrency: int, model: str | None,
            family: str | None, fmt: str, lang: str, catalog: list[Path]) -> int:
    from llmsizer.render import render_fit
    from llmsizer.usecases.fit import fit_request

    result = fit_request(gpu, gpus, mode, context, concurrency, model, family, tuple(catalog))
    emit(Root(), render_fit(result, fmt, lang, color=color()), None, fmt)
    return EXIT_OK if result.any_fit else EXIT_NO_FIT


def run_validate(category: str | None, fmt: str, lang: str, catalog: list[Path]) -> int:
    from llmsizer.render import render_validate
    from llmsizer.usecases.validate import validate_request

    emit(Root(), render_validate(validate_request(category, tuple(catalog)), fmt, lang, color=color()), None, fmt)
    return EXIT_OK
