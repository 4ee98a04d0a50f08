"""What every renderer shows of a serving plan under load: the load in the workload line, latency cells at the
SLA percentile, and the top plan's latency-throughput curve (a concurrency sweep) as rows and as an inline SVG
chart (no JavaScript). Plain strings; table.py, markdown.py and html.py lay them out."""

from __future__ import annotations

from html import escape
from typing import Any

from llmsizer.render import fmt
from llmsizer.render.i18n import label


def load_bits(result: Any, lang: str) -> list[str]:
    """``20 req/s (Poisson) · TTFT ≤ 1 s, TPOT ≤ 50 ms at p95`` or ``concurrency 16``."""
    w, c = result.workload, result.constraints
    bits = []
    if w.request_rate is not None:
        bits.append(f"{fmt.sig(w.request_rate, 3)} {label('req_per_s', lang)} ({label('open_loop', lang)})")
    else:
        bits.append(f"{label('concurrency', lang)} {w.concurrency}")
    targets = []
    if c.ttft_target_s is not None:
        targets.append(f"{label('ttft', lang)} ≤ {fmt.duration(c.ttft_target_s, lang)}")
    if c.tpot_target_s is not None:
        targets.append(f"{label('tpot', lang)} ≤ {fmt.duration(c.tpot_target_s, lang)}")
    if targets:
        bits.append(", ".join(targets) + f" {label('at', lang)} {percentile_tag(result)}")
    if w.prefix_cache_hit:
        bits.append(f"{label('prefix_cache', lang)} {fmt.percent(w.prefix_cache_hit)}")
    return bits


def percentile_tag(result: Any) -> str:
    from llmsizer.compute.inference import sla_percentile

    return f"p{sla_percentile(result.constraints) * 100:g}"


def has_targets(result: Any) -> bool:
    c = result.constraints
    return c.ttft_target_s is not None or c.tpot_target_s is not None


def latency_cells(plan: Any, result: Any, lang: str) -> tuple[str, str]:
    """TTFT and TPOT of a plan: the mean, and with latency targets the value at their percentile."""
    n = plan.inference
    if n is None:
        return "—", "—"
    ttft, tpot = fmt.duration(n.ttft_seconds, lang), fmt.duration(n.tpot_seconds, lang)
    if has_targets(result) and n.load is not None:
        from llmsizer.compute.inference import sla_percentile

        p = sla_percentile(result.constraints)
        tag = percentile_tag(result)
        ttft += f" ({tag} {fmt.duration(dict(n.load.ttft_percentiles)[p], lang)})"
        tpot += f" ({tag} {fmt.duration(dict(n.load.tpot_percentiles)[p], lang)})"
    return ttft, tpot


def sweep_headers(lang: str) -> list[str]:
    return [label("concurrency_per_replica", lang), label("ttft", lang), f"{label('ttft', lang)} p99",
            label("tpot", lang), label("throughput", lang), label("req_per_s", lang)]


def sweep_rows(result: Any, lang: str) -> list[list[str]]:
    return [[f"{s.concurrency:,}", fmt.duration(s.ttft_seconds, lang), fmt.duration(s.ttft_p99_seconds, lang),
             fmt.duration(s.tpot_seconds, lang), fmt.rate(s.tokens_per_second), fmt.sig(s.requests_per_second, 3)]
            for s in result.sweep]


def sweep_title(result: Any, lang: str) -> str:
    p = result.plans[0]
    return f"{label('sweep', lang)}: {p.gpu_count} × {p.gpu.name}"


def sweep_svg(result: Any, lang: str, width: int = 900, height: int = 320) -> str:
    """Throughput (x) against TPOT and TTFT (y, log scale) over the sweep's concurrencies, each point labelled
    with its concurrency: the latency-throughput curve of the top plan."""
    import math

    pts = result.sweep
    if len(pts) < 2:
        return ""
    left, right, top, bottom = 70, 20, 20, 50
    pw, ph = width - left - right, height - top - bottom
    xs = [s.tokens_per_second for s in pts]
    ys = [s.tpot_seconds for s in pts] + [s.ttft_seconds for s in pts]
    x_max = max(xs) * 1.05
    y_lo, y_hi = math.log10(min(ys) * 0.8), math.log10(max(ys) * 1.25)

    def x(v: float) -> float:
        return left + pw * v / x_max

    def y(v: float) -> float:
        return top + ph * (1 - (math.log10(v) - y_lo) / max(y_hi - y_lo, 1e-9))

    out = [f'<svg class="sweep" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="{escape(sweep_title(result, lang))}" xmlns="http://www.w3.org/2000/svg">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for e in range(math.floor(y_lo), math.ceil(y_hi) + 1):  # decades on the latency axis
        for m in (1, 2, 5):
            v = m * 10.0 ** e
            if y_lo <= math.log10(v) <= y_hi:
                out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
                           f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end">'
                           f'{escape(fmt.duration(v, lang))}</text>')
    for i in range(5):
        v = x_max * i / 4
        out.append(f'<text x="{x(v):.1f}" y="{top + ph + 16}" font-size="11" text-anchor="middle">'
                   f'{escape(fmt.rate(v))}</text>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 8}" font-size="12" text-anchor="middle">'
               f'{escape(label("throughput", lang))}</text>')
    for key, color, attr in (("tpot", "#1f77b4", "tpot_seconds"), ("ttft", "#d62728", "ttft_seconds")):
        path = " ".join(f"{x(s.tokens_per_second):.1f},{y(getattr(s, attr)):.1f}" for s in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for s in pts:
            cx, cy = x(s.tokens_per_second), y(getattr(s, attr))
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{color}"><title>'
                       f'{escape(label("concurrency", lang))} {s.concurrency}: {escape(label(key, lang))} '
                       f'{escape(fmt.duration(getattr(s, attr), lang))}, {escape(fmt.rate(s.tokens_per_second))}'
                       f'</title></circle>')
            if key == "tpot":
                out.append(f'<text x="{cx + 4:.1f}" y="{cy - 5:.1f}" font-size="10">{s.concurrency}</text>')
    out.append(f'<text x="{left + 8}" y="{top + 14}" font-size="12" fill="#1f77b4">{escape(label("tpot", lang))}'
               f'</text><text x="{left + 60}" y="{top + 14}" font-size="12" fill="#d62728">'
               f'{escape(label("ttft", lang))}</text>')
    out.append("</svg>")
    return "\n".join(out)
