"""The terminal view (``--format table``, the default), drawn with Rich into a string.

Rich is imported here only, and this module is imported only when a table is asked for, so ``--format json`` never
pays for it. Colour follows https://no-color.org: off when ``NO_COLOR`` is set (any value) or ``color=False``;
without an explicit choice, on only when stdout is a terminal. Every memory part also has its own glyph, so the bar
reads the same without colour.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rich import box
from rich.columns import Columns
from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from llmsizer.render import catalog_rows, common, explain_short
from llmsizer.render.i18n import Namer, label, network

if TYPE_CHECKING:  # pragma: no cover
    from llmsizer.search import Plan, PlanResult
    from llmsizer.specs import CloudInstance, GpuSpec, ModelSpec

_ACCENT = "bold cyan"
_DIM = "dim"


def want_color(color: bool | None, stream=None) -> bool:
    """Colour or not: ``NO_COLOR`` wins, then an explicit choice, then whether ``stream`` is a terminal."""
    if os.environ.get("NO_COLOR"):
        return False
    if color is not None:
        return color
    if os.environ.get("FORCE_COLOR"):
        return True
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def _width(width: int | None) -> int:
    if width is not None:
        return max(40, width)
    return max(40, shutil.get_terminal_size((100, 24)).columns)


def _console(width: int | None, color: bool | None) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    colored = want_color(color)
    console = Console(
        file=buf,
        width=_width(width),
        color_system="auto" if colored else None,
        force_terminal=colored,
        no_color=not colored,
        highlight=False,
        emoji=False,
        markup=False,
        legacy_windows=False,
        soft_wrap=False,
    )
    return console, buf


def _simple_table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, right: Sequence[int] = (),
                  title: str | None = None, colored: bool = True, keep: Sequence[int] = (),
                  widths: Sequence[int] | None = None) -> Table:
    """A borderless table; ``keep`` columns never wrap (numbers), the others wrap when the terminal is narrow."""
    t = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", title_style=_ACCENT if colored else "",
              header_style="bold" if colored else "", show_edge=False, pad_edge=False, expand=False)
    rows = [[str(c) for c in r] for r in rows]
    for i, h in enumerate(headers):
        # a wrapping column never gets narrower than its longest word, so words are not cut in half
        t.add_column(h, justify="right" if i in right else "left", overflow="fold", no_wrap=i in keep,
                     width=widths[i] if widths else None)
    for r in rows:
        t.add_row(*[str(c) for c in r])
    return t


def _column_widths(headers: Sequence[str], rows: Sequence[Sequence[str]], wrap: Sequence[int],
                   width: int, soft_min: int = 0) -> list[int] | None:
    """Column widths that fit ``width`` cells without breaking a word, or ``None`` when no such layout exists.

    Columns not in ``wrap`` get their full width; those in ``wrap`` start at their longest word (or header word) and
    share what is left, up to their full width, in the order given; ``soft_min`` keeps wrapped columns at least that
    wide (when their text is). Widths are in terminal cells (a CJK character is two).
    """
    from rich.cells import cell_len

    n = len(headers)
    full, least = [], []
    for i in range(n):
        cells = [headers[i]] + [str(r[i]) for r in rows]
        full.append(max(cell_len(c) for c in cells))
        word = max(cell_len(w) for c in cells for w in (c.split() or [""]))
        least.append(max(word, min(full[i], soft_min)) if i in wrap else full[i])
    spare = width - 3 * (n - 1) - sum(least)
    if spare < 0:
        return None
    widths = list(least)
    for i in wrap:
        give = min(full[i] - widths[i], spare)
        widths[i] += give
        spare -= give
    return widths


def _plan_cards(result: PlanResult, lang: str, colored: bool) -> Table:
    """Narrow terminals: one block per plan, its figures flowing over as many indented lines as needed."""
    from llmsizer.render import fmt

    training = result.workload.mode.is_training
    blocks = []
    for i, p in enumerate(result.plans, 1):
        head = Text(f"{common.gpus_cell(p, lang)} × {p.gpu.name}", style="bold" if colored else "")
        cell = common.layout_cell(p, training, lang, common.names_framework(result), common.names_engine(result))
        head.append(f" · {cell}")
        bits = [f"{label('memory', lang)} {common.memory_cell(p)} {label('per_gpu', lang)}"]
        if p.training is not None:
            bits += [common.training_time_cell(p, lang), fmt.rate(p.training.tokens_per_second),
                     f"MFU {fmt.percent(p.training.mfu)}"]
        if p.inference is not None:
            n = p.inference
            bits += [f"{label('ttft', lang)} {fmt.duration(n.ttft_seconds, lang)}",
                     f"{label('tpot', lang)} {fmt.duration(n.tpot_seconds, lang)}", fmt.rate(n.tokens_per_second),
                     f"{label('max_concurrency', lang).lower()} {n.max_concurrency:,}"]
        if p.cost is not None:
            bits.append(common.usd_per_hour_cell(p, lang))
            if p.cost.usd_total is not None:
                bits.append(f"{label('total', lang)} {fmt.usd(p.cost.usd_total)}")
            elif p.cost.usd_per_million_output_tokens is not None:
                bits.append(f"{common.usd_per_mtok_cell(p)}/M tok")
        blocks.append((Text(f"{i}{'' if p.fits else ' ✗'}.", style="bold" if colored else ""),
                       Group(head, Text(" · ".join(bits)))))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, justify="right")
    grid.add_column()
    for number, body in blocks:
        grid.add_row(number, body)
    return grid


def _heading(text: str, colored: bool) -> Text:
    return Text(text, style=_ACCENT if colored else "")


def _memory_bar(plan: Plan, width: int, lang: str, colored: bool) -> Group:
    """``[█████▓▓▒▒▒▒░░≡▪·····]  62.3 / 75.2 GiB`` and a legend with each part's size."""
    from llmsizer.render import fmt

    bar_width = max(10, min(60, width - 28))
    bar = Text("[")
    for part, n in common.bar_cells(plan, bar_width):
        if part is None:
            bar.append(common.FREE_CHAR * n, style=_DIM if colored else "")
        else:
            bar.append(part.char * n, style=part.color if colored else "")
    bar.append("] ")
    bar.append(common.memory_cell(plan), style="bold" if colored else "")
    total = plan.memory.total_bytes
    if total > plan.usable_memory_bytes:
        bar.append(f"  {label('over_capacity', lang)} {fmt.gib(total - plan.usable_memory_bytes)}",
                   style="bold red" if colored else "")
    swatches = []
    for part in common.memory_parts(plan, lang):
        if part.bytes <= 0:
            continue
        item = Text(part.char, style=part.color if colored else "")
        item.append(f" {part.label} {fmt.gib(part.bytes)}")
        swatches.append(item)
    free = plan.usable_memory_bytes - total
    if free > 0:
        swatches.append(Text(f"{common.FREE_CHAR} {label('free', lang)} {fmt.gib(free)}",
                             style=_DIM if colored else ""))
    swatches.append(Text(f"{label('capacity', lang)} {fmt.gib(plan.gpu.memory_bytes)}",
                         style=_DIM if colored else ""))
    legend = Columns(swatches, padding=(0, 3), expand=False)
    extras = []
    host = getattr(plan.memory, "host_offload_bytes", 0.0)
    nvme = getattr(plan.memory, "nvme_offload_bytes", 0.0)
    if host:
        extras.append(f"{label('host_offload', lang)}: {fmt.gib(host)}")
    if nvme:
        extras.append(f"{label('nvme_offload', lang)}: {fmt.gib(nvme)}")
    if extras:
        return Group(bar, legend, Text("; ".join(extras)))
    return Group(bar, legend)


def render_plan(result: PlanResult, *, lang: str = "en", explain: bool | str = False, width: int | None = None,
                color: bool | None = None, name: Namer | None = None) -> str:
    console, buf = _console(width, color)
    colored = console.color_system is not None
    w = console.width
    m = result.model
    title = Text(f"{label('plan_title', lang)}: ", style="bold" if colored else "")
    title.append(common.model_line(m, lang))
    console.print(title)
    console.print(Text(f"{label('workload', lang)}: {common.workload_line(result, lang)}"))
    console.print()
    if not result.plans:
        console.print(label("no_plans", lang))
    else:
        if not result.any_fit:
            console.print(Text(label("no_fit", lang), style="bold red" if colored else ""))
        pt = common.plan_table(result, lang, name)
        headers, rows = list(pt.headers), [list(r) for r in pt.rows]
        headers[4] = label("mem_short", lang)  # the full header is long; a caption says what the cell holds
        if headers[-1] == label("fits", lang):  # unfit plans are marked in the # column and listed below
            headers.pop()
            rows = [r[:-1] if p.fits else [f"{r[0]} ✗"] + r[1:-1] for r, p in zip(rows, result.plans)]
        wrap = (2, 1, 3)  # GPUs, GPU, Layout may wrap, in this order of preference for room
        widths = _column_widths(headers, rows, wrap, w)
        if widths is not None:
            console.print(_simple_table(headers, rows, right=pt.right, title=label("plans", lang), colored=colored,
                                        keep=[i for i in range(len(headers)) if i not in wrap], widths=widths))
            console.print(Text(f"{label('mem_short', lang)} = {label('mem_used_usable', lang)}",
                               style=_DIM if colored else ""))
        else:
            console.print(_heading(label("plans", lang), colored))
            console.print(_plan_cards(result, lang, colored))
        picked = common.picks_line(result, lang)
        if picked:
            console.print(Text(picked, style=_DIM if colored else ""))
        for line in pt.unfit:
            console.print(Padding(Text(f"✗ {line}", style="red" if colored else ""), (0, 0, 0, 2)))
        console.print()
        best = result.plans[0]
        console.print(_heading(f"{label('best_memory', lang)}: {best.gpu.name}", colored))
        console.print(Padding(_memory_bar(best, w, lang, colored), (0, 0, 1, 2)))
        if best.server is not None:
            console.print(_heading(label("server", lang), colored))
            console.print(Padding(Text(common.server_line(best, lang)), (0, 0, 0, 2)))
            sold = common.sold_as_line(best, lang)
            if sold:
                console.print(Padding(Text(f"{label('sold_as', lang)}: {sold}"), (0, 0, 0, 2)))
            console.print(Padding(Text(f"{label('network', lang)}: {network(best.server.network, lang)}"),
                                  (0, 0, 1, 2)))
        if best.cloud:
            headers, rows = common.cloud_headers(lang), common.cloud_rows(best, lang)
            if _column_widths(headers, rows, (), w) is None:  # narrow: drop region and price date
                headers, rows = headers[:4], [r[:4] for r in rows]
            console.print(_simple_table(headers, rows, right=(2, 3), title=label("cloud", lang), colored=colored,
                                        keep=range(len(headers))))
            console.print()
        if result.sweep:
            from llmsizer.render import serving_view as sv

            console.print(_simple_table(sv.sweep_headers(lang), sv.sweep_rows(result, lang), right=range(6),
                                        title=sv.sweep_title(result, lang), colored=colored, keep=range(6)))
            console.print()
    for key, items in common.note_lines(result, lang, name):
        if items:
            console.print(_heading(label(key, lang), colored))
            for item in items:
                console.print(Padding(Text(f"• {item}"), (0, 0, 0, 2)))
            console.print()
    if explain and result.plans:
        if explain_short.mode(explain) == "short":
            _print_summary(console, result.plans[0], lang, colored, name)
        else:
            rows = common.explain_rows(result.plans[0], lang)
            if rows:
                console.print(_explain_table(rows, lang, w, colored, result.plans[0].gpu.name))
    console.print(Text(common.search_line(result, lang, seconds=True), style=_DIM if colored else ""))
    return _tidy(buf.getvalue())


def _tidy(text: str) -> str:
    """Drop the padding Rich leaves at the end of lines (it pastes badly into issues and chats)."""
    return "\n".join(line.rstrip(" ") for line in text.split("\n"))


def _print_summary(console: Console, plan: Plan, lang: str, colored: bool, name: Namer | None) -> None:
    """The key figures, three short lines each: quantity = result, formula, source; then where the rest is."""
    rows = explain_short.summary_rows(plan, lang)
    if not rows:
        return
    console.print(_heading(explain_short.summary_title(plan, lang), colored))
    for quantity, result, formula, source in rows:
        line = Text("  ")
        line.append(quantity, style="bold" if colored else "")
        line.append(f" = {result}")
        console.print(line)
        console.print(Padding(Text(formula), (0, 0, 0, 4)))
        if source:
            console.print(Padding(Text(source, style=_DIM if colored else ""), (0, 0, 0, 4)))
    console.print(Text(explain_short.more_line(lang, name), style=_DIM if colored else ""))
    console.print()


def _explain_table(rows: list[list[str]], lang: str, width: int, colored: bool, gpu_name: str) -> Table:
    """Wide terminals get one column per field; narrow ones a stacked cell per step so nothing is cut."""
    title = f"{label('explain', lang)}: {gpu_name}"
    if width >= 160:
        return _simple_table(common.explain_headers(lang), rows, right=(2,), title=title, colored=colored)
    t = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", title_style=_ACCENT if colored else "",
              header_style="bold" if colored else "", show_edge=False, pad_edge=False, show_lines=True)
    t.add_column(f"{label('quantity', lang)} = {label('result', lang)}", overflow="fold", ratio=1)
    t.add_column(f"{label('formula', lang)} · {label('inputs', lang)} · {label('source', lang)}",
                 overflow="fold", ratio=2)
    for stage, quantity, result, formula, inputs, source, assumption in rows:
        left = Text(f"[{stage}] ", style=_DIM if colored else "")
        left.append(quantity, style="bold" if colored else "")
        left.append(f"\n= {result}")
        right = Text(formula)
        if inputs:
            right.append(f"\n{label('inputs', lang)}: {inputs}", )
        if source:
            right.append(f"\n{label('source', lang)}: {source}", style=_DIM if colored else "")
        if assumption:
            right.append(f"\n{label('assumption', lang)}: {assumption}", style=_DIM if colored else "")
        t.add_row(left, right)
    return t


# ------------------------------------------------------------------------------------------------ catalogs


def _print_table(headers, rows, right, title, width, color, wrap=(), drop=()) -> str:
    """A catalog list that fits the terminal: ``wrap`` columns may wrap, ``drop`` columns go first when too narrow."""
    console, buf = _console(width, color)
    headers, rows, right = list(headers), [list(r) for r in rows], list(right)
    keep_cols = list(range(len(headers)))
    drop = list(drop)
    while True:
        h = [headers[i] for i in keep_cols]
        rs = [[r[i] for i in keep_cols] for r in rows]
        wr = [keep_cols.index(i) for i in wrap if i in keep_cols]
        widths = _column_widths(h, rs, wr, console.width, soft_min=16)
        if widths is None and not drop:  # last resort: let wrapped columns shrink to their longest word
            widths = _column_widths(h, rs, wr, console.width)
        if widths is not None or not drop:
            break
        keep_cols.remove(drop.pop(0))
    ri = [keep_cols.index(i) for i in right if i in keep_cols]
    console.print(_simple_table(h, rs, right=ri, title=title, colored=console.color_system is not None,
                                keep=[i for i in range(len(h)) if i not in wr], widths=widths))
    return _tidy(buf.getvalue())


def _print_detail(title: str, rows: list[list[str]], width: int | None, color: bool | None,
                  extra: tuple[list[str], list[list[str]], str] | None = None) -> str:
    console, buf = _console(width, color)
    colored = console.color_system is not None
    t = Table(box=None, show_header=False, title=title, title_justify="left",
              title_style=_ACCENT if colored else "", pad_edge=False)
    t.add_column(style="bold" if colored else "", no_wrap=True)
    t.add_column(overflow="fold")
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)
    if extra is not None and extra[1]:
        console.print()
        console.print(_simple_table(extra[0], extra[1], right=(2, 3, 4, 5, 6), title=extra[2], colored=colored))
    return _tidy(buf.getvalue())


def render_models(models: Iterable[ModelSpec], *, lang: str = "en", width: int | None = None,
                  color: bool | None = None) -> str:
    return _print_table(catalog_rows.model_headers(lang), [catalog_rows.model_row(m) for m in models],
                        (2, 3, 4, 5, 6, 7, 8), label("models_title", lang), width, color,
                        wrap=(1, 9), drop=(5, 7, 4, 3, 8))


def render_model(model: ModelSpec, *, lang: str = "en", width: int | None = None, color: bool | None = None) -> str:
    return _print_detail(model.name, catalog_rows.model_detail_rows(model, lang), width, color)


def render_gpus(gpus: Iterable[GpuSpec], *, lang: str = "en", width: int | None = None,
                color: bool | None = None) -> str:
    return _print_table(catalog_rows.gpu_headers(lang), [catalog_rows.gpu_row(g, lang) for g in gpus], (2, 3, 4, 5, 7),
                        label("gpus_title", lang), width, color, wrap=(1, 6), drop=(6, 5, 7, 3))


def render_gpu(gpu: GpuSpec, instances: Iterable[CloudInstance] = (), *, lang: str = "en",
               width: int | None = None, color: bool | None = None) -> str:
    rows = [catalog_rows.instance_row(i) for i in instances]
    return _print_detail(gpu.name, catalog_rows.gpu_detail_rows(gpu, lang), width, color,
                         (catalog_rows.instance_headers(lang), rows, label("cloud", lang)))
