"""The catalog entries of ``--format json`` (``models``, ``gpus`` and the plan's ``model``/``gpu`` objects): every
figure in base units, with its source (docs/json-output.md)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from llmsizer.render.json_base import SCHEMA_VERSION, _int, _num
from llmsizer.specs.architecture import count_params

if TYPE_CHECKING:  # pragma: no cover - types only
    from llmsizer.specs import CloudInstance, GpuSpec, ModelSpec


def model_to_dict(model: ModelSpec) -> dict:
    """A model as ``models --format json`` and ``plan``'s ``model`` carry it."""
    pc = count_params(model)
    moe = None
    if model.moe is not None:
        e = model.moe
        moe = {
            "experts": e.experts,
            "experts_per_token": e.experts_per_token,
            "expert_ffn_size": e.expert_ffn_size,
            "shared_experts": e.shared_experts,
            "shared_expert_ffn_size": e.shared_expert_ffn_size,
            "dense_layers": e.dense_layers,
        }
    mla = None
    if model.mla is not None:
        a = model.mla
        mla = {
            "q_lora_rank": a.q_lora_rank,
            "kv_lora_rank": a.kv_lora_rank,
            "qk_nope_head_dim": a.qk_nope_head_dim,
            "qk_rope_head_dim": a.qk_rope_head_dim,
            "v_head_dim": a.v_head_dim,
        }
    return {
        "id": model.id,
        "name": model.name,
        "family": model.family,
        "aliases": list(model.aliases),
        "params": pc.total,
        "active_params": pc.active,
        "published_params": _int(model.published_params),
        "published_active_params": _int(model.published_active_params),
        "layers": model.layers,
        "hidden_size": model.hidden_size,
        "heads": model.heads,
        "kv_heads": model.kv_heads,
        "head_dim": model.head_dim_,
        "ffn_size": model.ffn_size,
        "ffn_kind": model.ffn_kind,
        "vocab_size": model.vocab_size,
        "tied_embeddings": model.tied_embeddings,
        "max_context": model.max_context,
        "attention": model.attention,
        "sliding_window": model.sliding_window,
        "mla": mla,
        "moe": moe,
        "params_by_part": {
            "embedding": pc.embedding,
            "lm_head": pc.lm_head,
            "attention": pc.attention,
            "dense_mlp": pc.dense_mlp,
            "routed_experts": pc.routed_experts,
            "shared_experts": pc.shared_experts,
            "router": pc.router,
            "norms": pc.norms,
            "biases": pc.biases,
        },
        "source": model.source,
    }


def gpu_to_dict(gpu: GpuSpec) -> dict:
    """A GPU as ``gpus --format json`` carries it: base units, dense FLOP/s by dtype."""
    return {
        "id": gpu.id,
        "name": gpu.name,
        "vendor": gpu.vendor,
        "kind": gpu.kind,
        "aliases": list(gpu.aliases),
        "form_factor": gpu.form_factor,
        "memory_bytes": gpu.memory_bytes,
        "usable_memory_bytes": gpu.usable_memory_bytes,
        "memory_bandwidth_bytes_per_s": _num(float(gpu.memory_bandwidth_bytes_per_s)),
        "flops": {k: _num(float(v)) for k, v in sorted(gpu.flops.items())},
        "tdp_watts": _num(float(gpu.tdp_watts)),
        "scaleup": gpu.scaleup,
        "scaleup_bandwidth_bytes_per_s": _num(float(gpu.scaleup_bandwidth_bytes_per_s)),
        "scaleup_domain": gpu.scaleup_domain,
        "gpus_per_node": gpu.gpus_per_node,
        "scaleout_bandwidth_bytes_per_s": _num(float(gpu.scaleout_bandwidth_bytes_per_s)),
        "price_usd_per_gpu_hour": gpu.price_usd_per_gpu_hour,
        "price_source": gpu.price_source,
        "price_date": gpu.price_date,
        "purchase_usd": gpu.purchase_usd,
        "release_year": gpu.release_year,
        "source": gpu.source,
    }


def instance_to_dict(inst: CloudInstance) -> dict:
    """A rentable instance from ``data/instances.yaml`` (``gpus ID --format json``)."""
    return {
        "provider": inst.provider,
        "instance": inst.instance,
        "gpu": inst.gpu,
        "gpus": inst.gpus,
        "vcpus": inst.vcpus,
        "ram_bytes": inst.ram_bytes,
        "local_nvme_bytes": _int(inst.local_nvme_tb * 1e12),
        "network_bits_per_s": _int(inst.network_gbps * 1e9),
        "usd_per_hour": inst.usd_per_hour,
        "region": inst.region,
        "price_date": inst.price_date,
        "price_source": inst.price_source,
    }


def models_to_dict(models: Iterable[ModelSpec]) -> dict:
    return {"schema_version": SCHEMA_VERSION, "models": [model_to_dict(m) for m in models]}


def gpus_to_dict(gpus: Iterable[GpuSpec], instances: dict[str, Iterable[CloudInstance]] | None = None) -> dict:
    """``{"schema_version": 1, "gpus": [...]}``; with ``instances`` (by GPU id) each GPU also lists its instances."""
    out = []
    for g in gpus:
        d = gpu_to_dict(g)
        if instances is not None:
            d["instances"] = [instance_to_dict(i) for i in instances.get(g.id, ())]
        out.append(d)
    return {"schema_version": SCHEMA_VERSION, "gpus": out}
