"""``plan --format html``: one standalone page for a proposal or a browser.

Inline CSS, an inline SVG bar chart, no scripts and no external resources; the only links are the citations a
source string already carries (rendered as ``<a href>``). Every piece of catalog or user text is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING

from llmsizer.render import common, explain_short, fmt
from llmsizer.render.i18n import Namer, label

if TYPE_CHECKING:  # pragma: no cover
    from llmsizer.search import Plan, PlanResult

_URL = re.compile(r"https?://[^\s<>\"')\]]+[^\s<>\"')\].,;:]")

_CSS = """
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #ffffff; --head: #f6f8fa; --bad: #cf222e; }
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", "Noto Sans", "PingFang SC", "Microsoft YaHei", Helvetica, Arial,
       sans-serif; color: var(--fg); background: var(--bg); margin: 0 auto; max-width: 1200px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
p.meta { color: var(--muted); margin: 2px 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; max-width: 100%; }
table.wide { width: 100%; }
th, td { border: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
td a, .explain td.formula { overflow-wrap: anywhere; }  /* URLs and formulas wrap: tables stay within the page */
th { background: var(--head); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.unfit td { color: var(--muted); }
tr.best td { font-weight: 600; }
.bad { color: var(--bad); }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 6px 0 12px; font-size: 14px; }
.legend span.sw { display: inline-block; width: 12px; height: 12px; margin-right: 6px; vertical-align: -1px;
                  border: 1px solid rgba(0,0,0,.2); }
.explain td { font-size: 13px; }
.explain td.formula { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
footer { color: var(--muted); font-size: 13px; margin-top: 32px; }
svg text { font: 12px sans-serif; fill: var(--fg); }
@media print { body { padding: 0; } h2 { break-after: avoid; } table { break-inside: auto; } }
"""


def linkify(text: str) -> str:
    """Escape ``text`` and turn the URLs in it into links (citations are the only links on the page)."""
    out, last = [], 0
    for m in _URL.finditer(text):
        out.append(escape(text[last:m.start()]))
        url = m.group(0)
        out.append(f'<a href="{escape(url, quote=True)}">{escape(url)}</a>')
        last = m.end()
    out.append(escape(text[last:]))
    return "".join(out)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, right: Sequence[int] = (),
           cls: str = "", row_classes: Sequence[str] | None = None, link_cols: Sequence[int] = ()) -> str:
    head = "".join(f'<th class="num">{escape(h)}</th>' if i in right else f"<th>{escape(h)}</th>"
                   for i, h in enumerate(headers))
    body = []
    for n, row in enumerate(rows):
        tds = []
        for i, c in enumerate(row):
            text = linkify(str(c)) if i in link_cols else escape(str(c))
            klass = ' class="num"' if i in right else ""
            tds.append(f"<td{klass}>{text}</td>")
        rc = f' class="{row_classes[n]}"' if row_classes and row_classes[n] else ""
        body.append(f"<tr{rc}>{''.join(tds)}</tr>")
    c = f' class="{cls}"' if cls else ""
    return f"<table{c}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def memory_svg(result: PlanResult, lang: str, width: int = 1000) -> str:
    """Stacked horizontal bars, one per plan: the six memory parts of one GPU against its usable memory."""
    plans = result.plans
    label_w, right_w, row_h, gap, top = 260, 150, 22, 10, 8
    bar_w = width - label_w - right_w
    scale = max(max(max(p.memory.total_bytes, p.usable_memory_bytes) for p in plans), 1.0)
    height = top + len(plans) * (row_h + gap) + 4
    parts_svg = []
    for n, p in enumerate(plans):
        y = top + n * (row_h + gap)
        name = f"{n + 1}. {p.gpu_count} × {p.gpu.name}"
        parts_svg.append(f'<text x="0" y="{y + 15}">{escape(name)}</text>')
        x = float(label_w)
        parts_svg.append(f'<rect x="{label_w}" y="{y}" width="{p.usable_memory_bytes / scale * bar_w:.1f}" '
                         f'height="{row_h}" fill="#f6f8fa" stroke="#d0d7de"/>')
        for part in common.memory_parts(p, lang):
            if part.bytes <= 0:
                continue
            w = part.bytes / scale * bar_w
            parts_svg.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h}" fill="{part.color}">'
                             f"<title>{escape(part.label)}: {escape(fmt.gib(part.bytes))}</title></rect>")
            x += w
        ux = label_w + p.usable_memory_bytes / scale * bar_w
        parts_svg.append(f'<line x1="{ux:.1f}" x2="{ux:.1f}" y1="{y - 3}" y2="{y + row_h + 3}" stroke="#1b1f24" '
                         f'stroke-width="2"/>')
        klass = "" if p.fits else ' class="bad" fill="#cf222e"'
        parts_svg.append(f'<text x="{label_w + bar_w + 8}" y="{y + 15}"{klass}>'
                         f"{escape(common.memory_cell(p))}</text>")
    title = escape(label("memory_chart", lang))
    return (f'<svg role="img" aria-label="{title}" viewBox="0 0 {width} '
            f'{height}" width="100%" preserveAspectRatio="xMinYMin meet">{"".join(parts_svg)}</svg>')


def _legend(plans: list[Plan], lang: str) -> str:
    """Swatches for the parts that any plan holds (an inference chart has no optimizer state to explain)."""
    held = {p.key for plan in plans for p in common.memory_parts(plan, lang) if p.bytes > 0}
    items = [f'<span><span class="sw" style="background:{p.color}"></span>{escape(p.label)}</span>'
             for p in common.memory_parts(plans[0], lang) if p.key in held]
    items.append(f'<span><span class="sw" style="background:#f6f8fa"></span>{escape(label("free", lang))} '
                 f'(│ = {escape(label("usable", lang))})</span>')
    return f'<div class="legend">{"".join(items)}</div>'


def render_plan(result: PlanResult, *, lang: str = "en", explain: bool | str = False,
                name: Namer | None = None) -> str:
    import llmsizer

    m = result.model
    title = f"{label('plan_title', lang)}: {m.name}"
    body = [f"<h1>{escape(title)}</h1>",
            f'<p class="meta"><b>{escape(label("model", lang))}:</b> {escape(common.model_line(m, lang))}</p>',
            (f'<p class="meta"><b>{escape(label("workload", lang))}:</b> '
             f"{escape(common.workload_line(result, lang))}</p>")]
    if not result.plans:
        body.append(f"<p>{escape(label('no_plans', lang))}</p>")
    else:
        if not result.any_fit:
            body.append(f'<p class="bad"><b>{escape(label("no_fit", lang))}</b></p>')
        body.append(f"<h2>{escape(label('plans', lang))}</h2>")
        pt = common.plan_table(result, lang, name)
        classes = [("best" if i == 0 else "") if p.fits else "unfit" for i, p in enumerate(result.plans)]
        body.append(_table(pt.headers, pt.rows, right=pt.right, row_classes=classes, cls="wide"))
        if picked := common.picks_line(result, lang):
            body.append(f'<p class="meta">{escape(picked)}</p>')
        if pt.unfit:
            lis = "".join(f"<li>{escape(u)}</li>" for u in pt.unfit)
            body.append(f'<p class="bad"><b>{escape(label("does_not_fit", lang))}:</b></p><ul>{lis}</ul>')
        body.append(f"<h2>{escape(label('memory_chart', lang))}</h2>")
        body.append(_legend(result.plans, lang))
        body.append(memory_svg(result, lang))
        best = result.plans[0]
        body.append(f"<h2>{escape(label('best_memory', lang))}: {escape(best.gpu.name)}</h2>")
        body.append(_table([label("part", lang), label("size", lang), label("share", lang)],
                           common.memory_rows(best, lang), right=(1, 2)))
        if best.server is not None:
            body.append(f"<h2>{escape(label('server', lang))}</h2>")
            body.append(_table([label("item", lang), label("value", lang)], common.server_rows(best, lang)))
        body.append(f"<h2>{escape(label('cloud', lang))}</h2>")
        if best.cloud:
            headers = common.cloud_headers(lang) + [label("price_source", lang)]
            rows = [r + [o.price_source] for r, o in zip(common.cloud_rows(best, lang), best.cloud)]
            body.append(_table(headers, rows, right=(2, 3), link_cols=(6,), cls="wide"))
        else:
            body.append(f"<p>{escape(label('no_cloud', lang))}</p>")
        if result.sweep:
            from llmsizer.render import serving_view as sv

            body.append(f"<h2>{escape(sv.sweep_title(result, lang))}</h2>")
            body.append(sv.sweep_svg(result, lang))
            body.append(_table(sv.sweep_headers(lang), sv.sweep_rows(result, lang), right=range(6)))
    for key, items in common.note_lines(result, lang, name):
        if items:
            lis = "".join(f"<li>{linkify(str(i))}</li>" for i in items)
            body.append(f"<h2>{escape(label(key, lang))}</h2><ul>{lis}</ul>")
    if explain and result.plans and explain_short.mode(explain) == "short":
        rows = explain_short.summary_rows(result.plans[0], lang)
        if rows:
            body.append(f"<h2>{escape(explain_short.summary_title(result.plans[0], lang))}</h2>")
            body.append(_table(explain_short.summary_headers(lang), rows, right=(1,), cls="explain wide", link_cols=(3,)))
            body.append(f'<p class="meta">{escape(explain_short.more_line(lang, name))}</p>')
    elif explain and result.plans:
        rows = common.explain_rows(result.plans[0], lang)
        if rows:
            body.append(f"<h2>{escape(label('explain', lang))}: {escape(result.plans[0].gpu.name)}</h2>")
            body.append(_explain_table(rows, lang))
    body.append(f"<footer>{escape(label('generated_by', lang))} {escape(llmsizer.__version__)} · "
                f"{escape(common.search_line(result, lang, seconds=False))}</footer>")
    return _page(title, "\n".join(body), lang)


def _explain_table(rows: list[list[str]], lang: str) -> str:
    headers = common.explain_headers(lang)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    trs = []
    for stage, quantity, result, formula, inputs, source, assumption in rows:
        trs.append(f"<tr><td>{escape(stage)}</td><td>{escape(quantity)}</td><td class=\"num\">{escape(result)}</td>"
                   f"<td class=\"formula\">{escape(formula)}</td><td>{escape(inputs)}</td>"
                   f"<td>{linkify(source)}</td><td>{escape(assumption)}</td></tr>")
    return f'<table class="explain wide"><thead><tr>{head}</tr></thead><tbody>{"".join(trs)}</tbody></table>'


def _page(title: str, body: str, lang: str) -> str:
    html_lang = "zh-CN" if lang == "zh" else lang
    return (f'<!DOCTYPE html>\n<html lang="{html_lang}">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="generator" content="llmsizer">\n<title>{escape(title)}</title>\n'
            f"<style>{_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
