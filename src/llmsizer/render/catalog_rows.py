"""What the catalog listings show (``models``, ``gpus``), as rows of already-formatted text; table and markdown lay
them out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmsizer.render import fmt
from llmsizer.render.common import cap
from llmsizer.render.i18n import label
from llmsizer.specs.architecture import count_params

if TYPE_CHECKING:  # pragma: no cover
    from llmsizer.specs import CloudInstance, GpuSpec, ModelSpec


def model_headers(lang: str) -> list[str]:
    return [cap(x) for x in (label("id", lang), label("name", lang), label("params", lang), label("active", lang),
                             label("layers", lang), label("hidden", lang), f"{label('heads', lang)} (KV)",
                             label("vocab", lang), label("max_context", lang), label("attention", lang))]


def model_row(m: ModelSpec) -> list[str]:
    pc = count_params(m)
    attention = m.attention + (f", MoE {m.moe.experts_per_token}/{m.moe.experts}" if m.moe else "")
    return [m.id, m.name, fmt.params(pc.total), fmt.params(pc.active), str(m.layers), f"{m.hidden_size:,}",
            f"{m.heads} ({m.kv_heads})", f"{m.vocab_size:,}", f"{m.max_context:,}", attention]


def model_detail_rows(m: ModelSpec, lang: str) -> list[list[str]]:
    pc = count_params(m)
    rows = [
        [label("id", lang), m.id],
        [label("name", lang), m.name],
        [label("params", lang), f"{pc.total:,} ({fmt.params(pc.total)})"],
        [label("active", lang), f"{pc.active:,} ({fmt.params(pc.active)})"],
        ["published", fmt.params(m.published_params)],
        [label("layers", lang), str(m.layers)],
        [label("hidden", lang), f"{m.hidden_size:,}"],
        [label("heads", lang), f"{m.heads} ({m.kv_heads} KV, head_dim {m.head_dim_})"],
        ["FFN", f"{m.ffn_size:,} ({m.ffn_kind})"],
        [label("vocab", lang), f"{m.vocab_size:,}"],
        [label("max_context", lang), f"{m.max_context:,}"],
        [label("attention", lang), m.attention],
    ]
    if m.moe is not None:
        e = m.moe
        moe = (f"{e.experts} {label('experts', lang)}, {e.experts_per_token}/token, ffn {e.expert_ffn_size:,}, "
               f"shared {e.shared_experts}")
        rows.append([label("moe", lang), moe])
    for part in ("embedding", "lm_head", "attention", "dense_mlp", "routed_experts", "shared_experts", "router",
                 "norms", "biases"):
        n = getattr(pc, part)
        if n:
            rows.append([f"  {part}", f"{n:,} ({fmt.params(n)})"])
    if m.aliases:
        rows.append([label("aliases", lang), ", ".join(m.aliases)])
    rows.append([label("source", lang), m.source])
    if m.notes:
        rows.append([label("notes_field", lang), m.notes])
    return [[cap(k) if not k.startswith(" ") else k, v] for k, v in rows]


def _flops_text(g: GpuSpec) -> str:
    order = ["fp4", "fp8", "int8", "bf16", "fp16", "tf32", "fp32", "fp64"]
    items = sorted(g.flops.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)
    return ", ".join(f"{k} {fmt.flops(v)}" for k, v in items)


def gpu_headers(lang: str) -> list[str]:
    return [label("id", lang), label("name", lang), label("memory", lang), label("bandwidth", lang),
            "BF16", label("tdp", lang), label("scaleup", lang), label("price", lang)]


def gpu_row(g: GpuSpec, lang: str = "en") -> list[str]:
    # dense 16-bit rate; GPUs without bf16 (V100, T4, CPUs) show the type they have, named
    dtype = next(d for d in ("bf16", "fp16", "fp32", *g.flops) if d in g.flops)
    rate = fmt.flops(g.flops[dtype]) + ("" if dtype == "bf16" else f" ({dtype})")
    # a rental per GPU-hour, else the purchase price (plans on it are costed as owned), never one read as the other
    if g.price_usd_per_gpu_hour:
        price = fmt.usd_per_hour(g.price_usd_per_gpu_hour)
    elif g.purchase_usd:
        price = f"{fmt.usd(g.purchase_usd)} {label('to_buy', lang)}"
    else:
        price = "—"
    return [g.id, g.name, fmt.gib(g.memory_bytes), fmt.bandwidth(g.memory_bandwidth_bytes_per_s), rate,
            fmt.watts(g.tdp_watts), g.scaleup, price]


def gpu_detail_rows(g: GpuSpec, lang: str) -> list[list[str]]:
    rows = [
        [label("id", lang), g.id],
        [label("name", lang), g.name],
        [label("vendor", lang), g.vendor],
        [label("form_factor", lang), g.form_factor],
        [label("memory", lang), f"{fmt.gib(g.memory_bytes)} ({fmt.storage(g.memory_bytes)})"],
        [label("usable_memory", lang), fmt.gib(g.usable_memory_bytes)],
        [label("bandwidth", lang), fmt.bandwidth(g.memory_bandwidth_bytes_per_s)],
        [label("dense_flops", lang), _flops_text(g)],
        [label("tdp", lang), fmt.watts(g.tdp_watts)],
        [label("scaleup", lang),
         f"{g.scaleup}, {fmt.bandwidth(g.scaleup_bandwidth_bytes_per_s)} per direction, domain {g.scaleup_domain}"],
        [label("scaleout", lang), f"{g.scaleout_gbps:g} Gb/s" if g.scaleout_gbps else "—"],
        [label("per_node", lang), str(g.gpus_per_node)],
    ]
    if g.price_usd_per_gpu_hour:
        price = f"{fmt.usd_per_hour(g.price_usd_per_gpu_hour)} per GPU ({g.price_date or '—'}; {g.price_source or '—'})"
        rows.append([label("price", lang), price])
    if g.purchase_usd:
        rows.append([label("purchase", lang), f"{fmt.usd(g.purchase_usd)} ({g.purchase_source or '—'})"])
    if g.release_year:
        rows.append([label("release_year", lang), str(g.release_year)])
    if g.aliases:
        rows.append([label("aliases", lang), ", ".join(g.aliases)])
    rows.append([label("source", lang), g.source])
    if g.notes:
        rows.append([label("notes_field", lang), g.notes])
    return rows


def instance_headers(lang: str) -> list[str]:
    return [label("provider", lang), label("instance", lang), label("gpus", lang), "vCPU", label("ram", lang),
            label("nvme", lang), label("usd_per_hour", lang), label("region", lang), label("price_date", lang)]


def instance_row(i: CloudInstance) -> list[str]:
    return [i.provider, i.instance, str(i.gpus), str(i.vcpus), fmt.ram(i.ram_bytes),
            fmt.storage(i.local_nvme_tb * 1e12) if i.local_nvme_tb else "—", fmt.usd_per_hour(i.usd_per_hour),
            i.region or "—", i.price_date]
