"""GitHub-flavoured Markdown: pipe tables that paste into a proposal, an issue or a wiki page.

Deterministic (no timestamps, no timings): ``tests/golden/plan.md`` compares it byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from llmsizer.render import catalog_rows, common, explain_short
from llmsizer.render.i18n import Namer, label

if TYPE_CHECKING:  # pragma: no cover
    from llmsizer.search import PlanResult
    from llmsizer.specs import CloudInstance, GpuSpec, ModelSpec


def cell(text: object) -> str:
    """A table cell: pipes escaped, line breaks flattened, empty shown as a dash."""
    s = " ".join(str(text).split())
    return s.replace("|", "\\|") if s else "—"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None) -> str:
    """A pipe table; ``align`` is one letter per column, ``l`` or ``r``."""
    align = align or "l" * len(headers)
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _bullets(items: Iterable[str]) -> str:
    return "\n".join(f"- {' '.join(str(i).split())}" for i in items)


def render_plan(result: PlanResult, *, lang: str = "en", explain: bool | str = False,
                name: Namer | None = None) -> str:
    out: list[str] = []
    m = result.model
    out.append(f"# {label('plan_title', lang)}: {m.name}")
    out.append(f"**{label('model', lang)}:** {common.model_line(m, lang)}  \n"
               f"**{label('workload', lang)}:** {common.workload_line(result, lang)}")
    if not result.plans:
        out.append(label("no_plans", lang))
    else:
        if not result.any_fit:
            out.append(f"> {label('no_fit', lang)}")
        out.append(f"## {label('plans', lang)}")
        pt = common.plan_table(result, lang, name)
        out.append(table(pt.headers, pt.rows, "".join("r" if i in pt.right else "l" for i in range(len(pt.headers)))))
        if picked := common.picks_line(result, lang):
            out.append(f"*{picked}*")
        if pt.unfit:
            out.append(f"**{label('does_not_fit', lang)}:**\n\n{_bullets(pt.unfit)}")
        best = result.plans[0]
        out.append(f"## {label('best_memory', lang)}: {best.gpu.name}")
        out.append(_bar(best, lang))
        out.append(table([label("part", lang), label("size", lang), label("share", lang)],
                         common.memory_rows(best, lang), "lrr"))
        if best.server is not None:
            out.append(f"## {label('server', lang)}")
            out.append(table([label("item", lang), label("value", lang)], common.server_rows(best, lang)))
        out.append(f"## {label('cloud', lang)}")
        if best.cloud:
            out.append(table(common.cloud_headers(lang), common.cloud_rows(best, lang), "llrrll"))
        else:
            out.append(label("no_cloud", lang))
        if result.sweep:
            from llmsizer.render import serving_view as sv

            out.append(f"## {sv.sweep_title(result, lang)}")
            out.append(table(sv.sweep_headers(lang), sv.sweep_rows(result, lang), "rrrrrr"))
    for key, items in common.note_lines(result, lang, name):
        if items:
            out.append(f"## {label(key, lang)}\n\n{_bullets(items)}")
    if explain and result.plans and explain_short.mode(explain) == "short":
        rows = explain_short.summary_rows(result.plans[0], lang)
        if rows:
            out.append(f"## {explain_short.summary_title(result.plans[0], lang)}")
            out.append(table(explain_short.summary_headers(lang), rows))
            out.append(explain_short.more_line(lang, name))
    elif explain and result.plans:
        rows = common.explain_rows(result.plans[0], lang)
        if rows:
            out.append(f"## {label('explain', lang)}: {result.plans[0].gpu.name}")
            out.append(table(common.explain_headers(lang), rows))
    out.append(f"<sub>{label('generated_by', lang)} {_version()} · "
               f"{common.search_line(result, lang, seconds=False)}</sub>")
    return "\n\n".join(out) + "\n"


def _bar(plan, lang: str) -> str:
    """A 50-cell text bar inside a code span, so it renders monospaced: ``█████▓▓▒▒▒░≡▪·····``."""
    cells = common.bar_cells(plan, 50)
    bar = "".join((p.char if p is not None else common.FREE_CHAR) * n for p, n in cells)
    legend = "  ".join(f"{p.char} {p.label}" for p in common.memory_parts(plan, lang) if p.bytes > 0)
    return f"`{bar}`  \n`{legend}  {common.FREE_CHAR} {label('free', lang)}`"


def _version() -> str:
    import llmsizer

    return llmsizer.__version__


def render_models(models: Iterable[ModelSpec], *, lang: str = "en") -> str:
    rows = [catalog_rows.model_row(m) for m in models]
    return (f"# {label('models_title', lang)}\n\n"
            + table(catalog_rows.model_headers(lang), rows, "llrrrrrrrl") + "\n")


def render_model(model: ModelSpec, *, lang: str = "en") -> str:
    return (f"# {model.name}\n\n"
            + table([label("item", lang), label("value", lang)], catalog_rows.model_detail_rows(model, lang)) + "\n")


def render_gpus(gpus: Iterable[GpuSpec], *, lang: str = "en") -> str:
    rows = [catalog_rows.gpu_row(g, lang) for g in gpus]
    return f"# {label('gpus_title', lang)}\n\n" + table(catalog_rows.gpu_headers(lang), rows, "llrrrrlr") + "\n"


def render_gpu(gpu: GpuSpec, instances: Iterable[CloudInstance] = (), *, lang: str = "en") -> str:
    out = f"# {gpu.name}\n\n" + table([label("item", lang), label("value", lang)], catalog_rows.gpu_detail_rows(gpu, lang))
    rows = [catalog_rows.instance_row(i) for i in instances]
    if rows:
        out += f"\n\n## {label('cloud', lang)}\n\n" + table(catalog_rows.instance_headers(lang), rows, "llrrrrrll")
    return out + "\n"
