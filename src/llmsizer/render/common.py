"""What every human format shows, as rows of already-formatted text; table, markdown and html only lay them out.

Keeping the content here means the three formats cannot drift apart: a figure added to the plans table appears in
all of them with the same unit and rounding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmsizer.explain import message
from llmsizer.record import record
from llmsizer.render import fmt
from llmsizer.render.i18n import Namer, explain_words, label, network, say
from llmsizer.render.jsonout import MEMORY_PARTS, plan_steps
from llmsizer.specs.architecture import count_params

if TYPE_CHECKING:  # pragma: no cover
    from llmsizer.search import Plan, PlanResult
    from llmsizer.search.result import CloudOffer
    from llmsizer.specs import ModelSpec


@record
class Part:
    """One segment of a memory bar."""

    key: str  # weights_bytes, ...
    label: str
    bytes: float
    char: str  # the glyph that draws it without colour
    color: str  # a CSS/Rich colour


# glyphs tell the parts apart when there is no colour (NO_COLOR); colours are the Okabe-Ito palette (colour-blind safe)
_PART_STYLE = {
    "weights_bytes": ("weights", "█", "#0072B2"),
    "gradients_bytes": ("gradients", "▓", "#E69F00"),
    "optimizer_bytes": ("optimizer_state", "▒", "#009E73"),
    "activations_bytes": ("activations", "░", "#CC79A7"),
    "kv_cache_bytes": ("kv_cache", "≡", "#56B4E9"),
    "overhead_bytes": ("overhead", "▪", "#999999"),
}
FREE_CHAR = "·"


def cap(text: str) -> str:
    """Capitalise a label for a header (``max context`` -> ``Max context``); a no-op for Chinese."""
    return text[:1].upper() + text[1:]


def mode_label(mode: object, lang: str) -> str:
    return label(f"mode_{getattr(mode, 'value', mode)}", lang)


def model_line(model: ModelSpec, lang: str) -> str:
    """``Llama 3.1 70B: 70.6B parameters, 80 layers, hidden 8,192, 64 heads (8 KV), vocab 128,256``."""
    pc = count_params(model)
    params = fmt.params(pc.total)
    if pc.active != pc.total:
        params += f" ({fmt.params(pc.active)} {label('active', lang)})"
    pairs = [
        ("params", params, True), ("layers", str(model.layers), True), ("hidden", f"{model.hidden_size:,}", False),
        ("heads", f"{model.heads} ({model.kv_heads} KV)", True), ("vocab", f"{model.vocab_size:,}", False),
    ]
    if model.moe is not None:
        pairs.append(("experts", f"{model.moe.experts_per_token}/{model.moe.experts}", True))
    if lang == "en":  # "70.6B parameters" but "hidden 8,192"
        bits = [f"{v} {label(k, lang)}" if after else f"{label(k, lang)} {v}" for k, v, after in pairs]
        bits[3] = f"{model.heads} {label('heads', lang)} ({model.kv_heads} KV)"
    else:  # Chinese puts the label first: "参数量 70.6B"
        bits = [f"{label(k, lang)} {v}" for k, v, _ in pairs]
    return f"{model.name}: " + ", ".join(bits)


def names_engine(result: PlanResult) -> bool:
    """Whether each plan names its own inference engine (GPUs of both kinds with no ``--engine``)."""
    return len({p.engine for p in result.plans if p.engine is not None}) > 1


def names_framework(result: PlanResult) -> bool:
    """Whether each plan names its own training stack (``--framework any``)."""
    w = result.workload
    return w.mode.is_training and w.framework is not None and w.framework.value == "any"


def workload_line(result: PlanResult, lang: str) -> str:
    """The workload in one line: ``full fine-tuning · transformers · bf16 · adamw · sequence 4,096 · 1T training
    tokens``."""
    w = result.workload
    bits = [mode_label(w.mode, lang)]
    if w.mode.is_training and w.framework is not None:
        bits.append(w.framework.value)
    bits.append(w.precision.value)
    if w.quant.value != "none":
        bits.append(f"{label('quant', lang)} {w.quant.value}")
    if w.mode.is_training:
        bits.append(w.optimizer.value)
        bits.append(f"{label('seq_len', lang)} {w.seq_len:,}")
        if w.mode.is_adapter:
            bits.append(f"{label('lora_rank', lang)} {w.lora_rank}")
        if w.micro_batch is not None:
            bits.append(f"{label('micro_batch', lang)} {w.micro_batch}")
        if w.recompute is not None:
            bits.append(f"{label('recompute', lang)} {label('recompute_' + w.recompute.value, lang)}")
        bits.append(f"{fmt.si(w.tokens)} {label('tokens', lang)}" if w.tokens else label("unknown_time", lang))
    else:
        bits.append(f"{label('prompt_tokens', lang)} {w.prompt_tokens:,}")
        bits.append(f"{label('output_tokens', lang)} {w.output_tokens:,}")
        bits.append(f"{label('context', lang)} {w.context_tokens:,}")
        from llmsizer.render.serving_view import load_bits

        bits += load_bits(result, lang)
        engines = dict.fromkeys(p.engine.value for p in result.plans if p.engine is not None)
        bits.append(" / ".join(engines) if len(engines) > 1 else w.engine.value)
    return " · ".join(bits)


def gpus_cell(plan: Plan, lang: str) -> str:
    """``8`` on one node, ``16 (2 nodes)`` across nodes."""
    n = plan.gpu_count
    if plan.nodes <= 1:
        return str(n)
    return f"{n} ({plan.nodes} {label('nodes', lang)})"


def layout_cell(plan: Plan, training: bool, lang: str = "en", framework: bool = False, engine: bool = False) -> str:
    """``TP2 PP1 DP8 ZeRO-3 recompute:full mb2``; ``PP16 VPP8``: 16 stages, interleaved in 8 chunks per GPU
    (NeMo's virtual_pipeline_model_parallel_size; inference shows only what applies). ``framework``: lead with
    the plan's training stack (``--framework any`` compares stacks); ``engine``: with its inference engine (an
    answer that mixes engines: ``names_engine``)."""
    lay = plan.layout
    bits = [plan.framework.value] if framework and plan.framework is not None else []
    if engine and plan.engine is not None:
        bits.append(plan.engine.value)
    bits += [f"TP{lay.tp}", f"PP{lay.pp}"]
    if lay.virtual_stages > 1:
        bits.append(f"VPP{lay.virtual_stages}")
    bits.append(f"DP{lay.dp}")
    if lay.prefill_replicas:
        bits.append(f"({lay.prefill_replicas} {label('prefill', lang)} + {lay.dp - lay.prefill_replicas} "
                    f"{label('decode', lang)})")
    if lay.ep > 1:
        bits.append(f"EP{lay.ep}")
    if lay.attention_dp:
        bits.append(label("attention_dp", lang))
    if training:
        if lay.zero:
            bits.append(f"ZeRO-{lay.zero}")
        if lay.offload.value != "none":
            bits.append(f"{label('layout_offload', lang)}:{label('offload_' + lay.offload.value, lang)}")
        bits.append(f"{label('layout_recompute', lang)}:{label('recompute_' + lay.recompute.value, lang)}")
        bits.append(f"{label('layout_micro_batch', lang)}{lay.micro_batch}")
    return " ".join(bits)


def memory_cell(plan: Plan) -> str:
    """``62.3 / 75.2 GiB``."""
    return f"{fmt.gib_number(plan.memory.total_bytes)} / {fmt.gib_number(plan.usable_memory_bytes)} GiB"


def training_time_cell(plan: Plan, lang: str) -> str:
    t = plan.training
    if t is None:
        return "—"
    return fmt.duration(t.seconds, lang) if t.seconds is not None else label("unknown_time", lang)


def usd_per_hour_cell(plan: Plan, lang: str) -> str:
    """``$3.99/h`` for a rent (or the user's price); ``$0.12/h owned`` for a purchase amortized over its life, so an
    ownership estimate never reads as a rental."""
    c = plan.cost
    if c is None:
        return "—"
    text = fmt.usd_per_hour(c.usd_per_hour)
    return f"{text} {label('owned', lang)}" if c.price_basis == "amortized" else text


def usd_per_mtok_cell(plan: Plan) -> str:
    c = plan.cost
    if c is None or c.usd_per_million_output_tokens is None:
        return "—"
    return fmt.usd(c.usd_per_million_output_tokens)


@record
class PlanTable:
    headers: list[str]
    rows: list[list[str]]
    right: tuple[int, ...]  # right-aligned (numeric) columns
    unfit: list[str]  # "#3 NVIDIA L40S: needs ..." for every plan that does not fit


def plan_table(result: PlanResult, lang: str, name: Namer | None = None) -> PlanTable:
    """The ranked plans, best first: training shows time and total cost, inference latency and $/M tokens."""
    training = result.workload.mode.is_training
    show_fit = any(not p.fits for p in result.plans)
    L = lambda k: label(k, lang)
    if training:
        headers = [L("rank"), L("gpu"), L("gpus"), L("layout"), L("mem_used_usable"), L("time"), L("throughput"),
                   L("mfu"), L("usd_per_hour"), L("total_usd")]
        right: tuple[int, ...] = (0, 2, 4, 5, 6, 7, 8, 9)
    else:
        headers = [L("rank"), L("gpu"), L("gpus"), L("layout"), L("mem_used_usable"), L("ttft"), L("tpot"),
                   L("throughput"), L("max_concurrency"), L("usd_per_hour"), L("usd_per_mtok")]
        right = (0, 2, 4, 5, 6, 7, 8, 9, 10)
    if show_fit:
        headers.append(L("fits"))
    rows, unfit = [], []
    for i, p in enumerate(result.plans, 1):
        usd_h = usd_per_hour_cell(p, lang)
        cell = layout_cell(p, training, lang, names_framework(result), names_engine(result))
        row = [str(i), p.gpu.id, gpus_cell(p, lang), cell,
               memory_cell(p)]
        if training:
            t = p.training
            row += [training_time_cell(p, lang), fmt.rate(t.tokens_per_second) if t else "—",
                    fmt.percent(t.mfu) if t else "—", usd_h,
                    fmt.usd(p.cost.usd_total) if p.cost is not None else "—"]
        else:
            from llmsizer.render.serving_view import latency_cells

            n = p.inference
            row += [*latency_cells(p, result, lang),
                    fmt.rate(n.tokens_per_second) if n else "—", fmt.count(n.max_concurrency) if n else "—",
                    usd_h, usd_per_mtok_cell(p)]
        if show_fit:
            row.append(L("yes") if p.fits else L("no"))
        if not p.fits:
            reasons = "; ".join(say(r, lang, name) for r in p.reasons)
            unfit.append(f"#{i} {p.gpu_count} × {p.gpu.name}: " + (reasons or L("no")))
        rows.append(row)
    return PlanTable(headers, rows, right, unfit)


def memory_parts(plan: Plan, lang: str) -> list[Part]:
    """The six parts of the per-GPU memory, in CONTRACT order (zero parts included: the legend stays stable)."""
    out = []
    for key in MEMORY_PARTS:
        name, char, color = _PART_STYLE[key]
        out.append(Part(key, label(name, lang), float(getattr(plan.memory, key)), char, color))
    return out


def memory_rows(plan: Plan, lang: str) -> list[list[str]]:
    """``part | size | share of usable`` for the non-zero parts, then total and usable."""
    usable = plan.usable_memory_bytes or 1.0
    rows = [[cap(p.label), fmt.gib(p.bytes), fmt.percent(p.bytes / usable)]
            for p in memory_parts(plan, lang) if p.bytes]
    total = plan.memory.total_bytes
    rows.append([cap(label("total", lang)), fmt.gib(total), fmt.percent(total / usable)])
    rows.append([cap(label("usable", lang)), fmt.gib(plan.usable_memory_bytes),
                 f"{label('capacity', lang)} {fmt.gib(plan.gpu.memory_bytes)}"])
    host = getattr(plan.memory, "host_offload_bytes", 0.0)
    nvme = getattr(plan.memory, "nvme_offload_bytes", 0.0)
    if host:
        rows.append([cap(label("host_offload", lang)), fmt.gib(host), ""])
    if nvme:
        rows.append([cap(label("nvme_offload", lang)), fmt.gib(nvme), ""])
    return rows


def bar_cells(plan: Plan, width: int) -> list[tuple[Part | None, int]]:
    """Split ``width`` character cells among the parts, scaled to max(usable, total); ``None`` = free space.

    Every non-zero part gets at least one cell so a small KV cache is still visible; cells are handed out by
    largest remainder so they add up to exactly ``width``.
    """
    parts = [p for p in memory_parts(plan, "en") if p.bytes > 0]
    total = sum(p.bytes for p in parts)
    scale = max(plan.usable_memory_bytes, total, 1.0)
    free = max(plan.usable_memory_bytes - total, 0.0)
    items: list[tuple[Part | None, float]] = [(p, p.bytes) for p in parts]
    if free > 0:
        items.append((None, free))
    exact = [b / scale * width for _, b in items]
    cells = [max(1, int(e)) if b > 0 else 0 for e, (_, b) in zip(exact, items)]
    # hand out the rest by largest remainder; take back from the largest if the minimums overshot
    while sum(cells) < width:
        i = max(range(len(items)), key=lambda k: exact[k] - cells[k])
        cells[i] += 1
    while sum(cells) > width:
        i = max(range(len(items)), key=lambda k: cells[k])
        cells[i] -= 1
    return [(item, c) for (item, _), c in zip(items, cells) if c > 0]


def sold_as_line(plan: Plan, lang: str) -> str:
    """How the node is bought or rented: ``2 of 8 GPUs in use in an 8-GPU NVIDIA HGX baseboard server; or rent a
    2-GPU slice of one: lambda gpu_2x_a100``; for a CPU server or a Mac, what the machine is."""
    s = plan.server
    if s is None or not getattr(s, "sold_as", ""):
        return ""
    key = f"chassis_{getattr(s, 'chassis_id', '')}"
    words = label(key, lang)
    words = s.sold_as if words == key else words  # a rule of the user's own data: its own wording
    if s.machine:
        return f"{words}: {plan.gpu.form_factor}"
    text = say(message("server_as_sold", gpus=s.gpus, chassis=s.chassis_gpus, sold_as=words), lang)
    if s.gpus < s.chassis_gpus:
        fits = [o for o in plan.cloud if getattr(o, "idle_gpus", 0) == 0 and o.instances == 1]
        if fits:
            offer = f"{fits[0].provider} {fits[0].instance}"
            text += "; " + say(message("server_slice", gpus=s.gpus, offer=offer), lang)
    return text


def _memory_text(plan: Plan, lang: str) -> str:
    s = plan.server
    if s.machine:
        return say(message("machine_memory", ram=s.ram_bytes, limit=s.gpu_memory_limit_bytes), lang)
    return f"{fmt.ram(s.ram_bytes)} {label('ram_short', lang)}"


def server_rows(plan: Plan, lang: str) -> list[list[str]]:
    s = plan.server
    if s is None:
        return []
    gpus = plan.gpu.name if s.machine else f"{s.gpus} × {plan.gpu.name}"
    rows = [
        [label("gpus", lang), gpus],
        [label("cpu_cores", lang), f"{s.cpu_cores:,}"],
        [label("ram", lang), _memory_text(plan, lang) if s.machine else fmt.ram(s.ram_bytes)],
        [label("nvme", lang), fmt.storage(s.storage_bytes)],
        [label("network", lang), network(s.network, lang)],
        [label("power", lang), f"{fmt.watts(s.power_watts)} ({label('psu', lang)} {fmt.watts(s.psu_watts)})"],
        [label("rack_units", lang), f"{s.rack_units}U"],
    ]
    sold = sold_as_line(plan, lang)
    if sold:
        rows.insert(1, [label("sold_as", lang), sold])
    return rows


def server_line(plan: Plan, lang: str) -> str:
    """The server in one line, for the terminal."""
    s = plan.server
    if s is None:
        return ""
    gpus = plan.gpu.name if s.machine else f"{s.gpus} × {plan.gpu.name}"
    return (f"{gpus} · {s.cpu_cores} {label('cpu_cores', lang)} · {_memory_text(plan, lang)} · "
            f"{fmt.storage(s.storage_bytes)} {label('local_storage', lang)} · "
            f"{fmt.watts(s.power_watts)} ({label('psu', lang)} {fmt.watts(s.psu_watts)}) · {s.rack_units}U")


def cloud_headers(lang: str) -> list[str]:
    return [label("provider", lang), label("instance", lang), label("instances", lang), label("usd_per_hour", lang),
            label("region", lang), label("price_date", lang)]


def cloud_rows(plan: Plan, lang: str = "en") -> list[list[str]]:
    """One row per offer; an offer with more GPUs than the plan uses says how many sit idle (``1 (6 GPUs idle)``)."""
    def count(o: CloudOffer) -> str:
        idle = getattr(o, "idle_gpus", 0)
        return f"{o.instances} ({idle} {label('gpus_idle', lang)})" if idle > 0 else str(o.instances)

    return [[o.provider, o.instance, count(o), fmt.usd_per_hour(o.usd_per_hour), o.region or "—",
             o.price_date] for o in plan.cloud]


def explain_headers(lang: str) -> list[str]:
    return [label("stage", lang), label("quantity", lang), label("result", lang), label("formula", lang),
            label("inputs", lang), label("source", lang), label("assumption", lang)]


def explain_rows(plan: Plan, lang: str) -> list[list[str]]:
    rows = []
    for stage, s in plan_steps(plan):
        quantity, formula, assumption = explain_words(s.key, s.variant, lang)
        rows.append([label(f"stage_{stage}", lang), quantity, fmt.value(s.value, s.unit, lang), formula,
                     fmt.inputs(s.inputs, lang), s.source, assumption])
    return rows


def note_lines(result: PlanResult, lang: str, name: Namer | None = None) -> list[tuple[str, list[str]]]:
    """(heading label key, lines) for the notes and the suggestions, in words; a footnote that says what an
    ``owned`` price is when a plan shows one."""
    notes = [say(m, lang, name) for m in result.notes]
    if any(p.cost is not None and p.cost.price_basis == "amortized" for p in result.plans):
        from llmsizer.compute.hardware import compute_data

        c = compute_data().cost
        notes.append(say(message("owned_price", years=c.amortization_years, utilization=c.amortization_utilization,
                                 usd_per_kwh=c.electricity_usd_per_kwh), lang, name))
    return [("notes", notes), ("suggestions", [say(m, lang, name) for m in result.suggestions])]


def search_line(result: PlanResult, lang: str, seconds: bool) -> str:
    text = f"{result.evaluated:,} {label('evaluated', lang)}"
    if seconds:
        text += f" ({fmt.duration(result.search_seconds, lang)})"
    return text


def picks_line(result: PlanResult, lang: str) -> str:
    """``Picks: cheapest #1 · quickest #6 · smallest (fewest GPUs) #7`` (search/picks.py), or "" when none."""
    bits = [f"{label('pick_' + name, lang)} #{i}" for i, p in enumerate(result.plans, 1) for name in p.picked_as]
    order = {"cheapest": 0, "quickest": 1, "smallest": 2}
    bits.sort(key=lambda b: next((v for k, v in order.items() if b.startswith(label('pick_' + k, lang))), 3))
    return f"{label('picks', lang)}: " + " · ".join(bits) if bits else ""
