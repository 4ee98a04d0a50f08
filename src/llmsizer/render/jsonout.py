"""Machine output: the dicts behind ``--format json`` (CONTRACT.md; every key in ``docs/json-output.md``).

Rules: base units only (bytes, seconds, per-second rates, USD), unit in every key name; byte counts are integers;
a figure that is unknown or not finite is ``null``; key order is fixed and nothing depends on the clock, so the same
input gives byte-identical output. Changes within ``schema_version`` 1 are additive only.
This module does not import Rich.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import llmsizer
from llmsizer.render.i18n import Namer, explain_words, network, say
from llmsizer.render.json_base import SCHEMA_VERSION, _enum, _int, _num, clean, dumps
from llmsizer.render.json_catalog import gpu_to_dict, gpus_to_dict, instance_to_dict, model_to_dict, models_to_dict
from llmsizer.render.json_serving import serving_to_dict, serving_workload, sweep_to_list

if TYPE_CHECKING:  # pragma: no cover - types only; keeps the import graph one-way and light
    from llmsizer.explain import Step
    from llmsizer.search import CloudOffer, Plan, PlanResult
    from llmsizer.workload import Workload

MEMORY_PARTS = (
    "weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes", "kv_cache_bytes", "overhead_bytes",
)


# ------------------------------------------------------------------------------------------------ plan


def workload_to_dict(w: Workload) -> dict:
    """The workload as given; ``null`` = not given (searched by the planner) or not used by this mode."""
    training = w.mode.is_training
    adapter = w.mode.is_adapter
    return {
        "mode": _enum(w.mode),
        "precision": _enum(w.precision),
        "quant": _enum(w.quant),
        "optimizer": _enum(w.optimizer) if training else None,
        "seq_len": w.seq_len if training else None,
        "micro_batch": w.micro_batch if training else None,
        "global_batch_tokens": w.global_batch_tokens if training and "global_batch_tokens" not in w.assumed else None,
        "recompute": _enum(w.recompute) if training and w.recompute is not None else None,
        "lora_rank": w.lora_rank if adapter else None,
        "lora_targets": _enum(w.lora_targets) if adapter else None,
        "tokens": _int(w.tokens) if training else None,
        "flash_attention": w.flash_attention,
        "prompt_tokens": None if training else w.prompt_tokens,
        "output_tokens": None if training else w.output_tokens,
        "context": None if training else w.context_tokens,
        "concurrency": None if training else w.concurrency,
        "engine": None if training else _enum(w.engine),
        "kv_cache_dtype": None if training else w.kv_cache_dtype,
        "framework": _enum(w.framework) if training and w.framework is not None else None,
    }


def memory_to_dict(mem: Any) -> dict:
    """``memory_per_gpu``: each part rounded to whole bytes, then ``total_bytes`` = their sum, exactly."""
    parts = {k: _int(getattr(mem, k)) or 0 for k in MEMORY_PARTS}
    parts["total_bytes"] = sum(parts.values())
    return parts


def step_to_dict(step: Step, stage: str) -> dict:
    quantity, formula, assumption = explain_words(step.key, step.variant, "en")
    return {
        "stage": stage,
        "key": step.key,
        "quantity": quantity,
        "value": clean(step.value),
        "unit": step.unit,
        "formula": formula,
        "inputs": clean(dict(step.inputs)),
        "source": step.source,
        "assumption": assumption,
    }


def plan_steps(plan: Plan) -> list[tuple[str, Step]]:
    """Every explained figure of ``plan``, tagged by stage, in the order the pipeline computed them."""
    out: list[tuple[str, Step]] = []
    out += [("memory", s) for s in plan.memory.steps]
    if plan.training is not None:
        out += [("training", s) for s in plan.training.steps]
    if plan.inference is not None:
        out += [("inference", s) for s in plan.inference.steps]
    if plan.cost is not None:
        out += [("cost", s) for s in plan.cost.steps]
    if plan.server is not None:
        out += [("server", s) for s in plan.server.steps]
    return out


def _training(t: Any) -> dict | None:
    if t is None:
        return None
    return {
        "tokens_per_second": _num(float(t.tokens_per_second)),
        "mfu": _num(float(t.mfu)),
        "hfu": _num(float(t.hfu)),
        "flops_per_token": _num(float(t.flops_per_token)),
        "seconds": None if t.seconds is None else _num(float(t.seconds)),
        "gpu_hours": None if t.gpu_hours is None else _num(float(t.gpu_hours)),
        "energy_kwh": None if t.energy_kwh is None else _num(float(t.energy_kwh)),
    }


def _inference(plan: Plan) -> dict | None:
    i = plan.inference
    if i is None:
        return None
    return {
        "ttft_seconds": _num(float(i.ttft_seconds)),
        "tpot_seconds": _num(float(i.tpot_seconds)),
        "tokens_per_second": _num(float(i.tokens_per_second)),
        "max_concurrency": int(i.max_concurrency),
        "saturation_concurrency": int(i.saturation_concurrency),
        **serving_to_dict(plan),
    }


def _purchase(plan: "Plan") -> dict:
    """On-premises: the GPUs' street/launch price x count (catalog ``purchase_usd``), servers not included; for an
    amortized price, the assumptions it is spread over (data/compute.yaml ``cost``)."""
    g = plan.gpu
    amortization = None
    if plan.cost is not None and plan.cost.price_basis == "amortized":
        from llmsizer.compute.hardware import compute_data

        c = compute_data().cost
        amortization = {"years": _num(float(c.amortization_years)),
                        "utilization": _num(float(c.amortization_utilization)),
                        "electricity_usd_per_kwh": _num(float(c.electricity_usd_per_kwh)),
                        "source": c.amortization_source}
    if g.purchase_usd is None:
        return {"gpu_purchase_usd": None, "gpu_purchase_source": None, "amortization": amortization}
    return {"gpu_purchase_usd": _num(float(g.purchase_usd) * plan.gpu_count), "gpu_purchase_source": g.purchase_source,
            "amortization": amortization}


def _cost(c: Any) -> dict:
    if c is None:
        return {"usd_per_hour": None, "usd_total": None, "usd_per_million_output_tokens": None, "energy_kwh": None,
                "basis": "unknown", "source": None, "as_of": None, "usd_per_gpu_hour": None}

    def opt(x: float | None) -> float | None:
        return None if x is None else _num(float(x))

    return {
        "usd_per_hour": opt(c.usd_per_hour),
        "usd_total": opt(c.usd_total),
        "usd_per_million_output_tokens": opt(c.usd_per_million_output_tokens),
        "energy_kwh": opt(c.energy_kwh),
        "basis": c.price_basis,
        "source": c.price_source,
        "as_of": c.price_as_of,
        "usd_per_gpu_hour": opt(c.price_usd_per_gpu_hour),
    }


def _server(s: Any) -> dict | None:
    if s is None:
        return None
    return {
        "gpus": int(s.gpus),
        "cpu_cores": int(s.cpu_cores),
        "ram_bytes": int(s.ram_bytes),
        "storage_bytes": int(s.storage_bytes),
        "network": network(s.network, "en"),
        "power_watts": int(s.power_watts),
        "psu_watts": int(s.psu_watts),
        "rack_units": int(s.rack_units),
        "chassis_gpus": int(s.chassis_gpus) or None,
        "sold_as": s.sold_as or None,
        "machine": bool(s.machine),
        "gpu_memory_limit_bytes": int(s.gpu_memory_limit_bytes) or None,
    }


def _cloud(o: CloudOffer) -> dict:
    return {
        "provider": o.provider,
        "instance": o.instance,
        "instances": int(o.instances),
        "usd_per_hour": _num(float(o.usd_per_hour)),
        "region": o.region,
        "price_date": o.price_date,
        "price_source": o.price_source,
        "idle_gpus": int(o.idle_gpus),
    }


def plan_entry_to_dict(plan: Plan, name: Namer | None = None) -> dict:
    """One element of ``plans``."""
    lay = plan.layout
    mem = plan.memory
    return {
        "gpu": {
            "id": plan.gpu.id,
            "name": plan.gpu.name,
            "vendor": plan.gpu.vendor,
            "memory_bytes": plan.gpu.memory_bytes,
        },
        "gpu_count": int(plan.gpu_count),
        "nodes": int(plan.nodes),
        "gpus_per_node": int(lay.gpus_per_node),
        "framework": _enum(plan.framework) if plan.framework is not None else None,
        "engine": _enum(plan.engine) if plan.engine is not None else None,
        "parallelism": {
            "dp": lay.dp,
            "tp": lay.tp,
            "pp": lay.pp,
            "ep": lay.ep,
            "zero": lay.zero,
            "offload": _enum(lay.offload),
            "recompute": _enum(lay.recompute),
            "micro_batch": lay.micro_batch,
            "sequence_parallel": bool(lay.sequence_parallel and lay.tp > 1),
            "virtual_stages": lay.virtual_stages,
            "attention_dp": bool(lay.attention_dp),
        },
        "fits": bool(plan.fits),
        "picked_as": list(plan.picked_as),
        "reasons": [say(r, "en", name) for r in plan.reasons],
        "memory_per_gpu": memory_to_dict(mem),
        "offload_per_gpu": {
            "host_bytes": _int(getattr(mem, "host_offload_bytes", 0.0)) or 0,
            "nvme_bytes": _int(getattr(mem, "nvme_offload_bytes", 0.0)) or 0,
        },
        "usable_memory_bytes": _int(plan.usable_memory_bytes),
        "training": _training(plan.training),
        "inference": _inference(plan),
        "cost": {**_cost(plan.cost), **_purchase(plan)},
        "server": _server(plan.server),
        "cloud": [_cloud(o) for o in plan.cloud],
    }


__all__ = ["MEMORY_PARTS", "SCHEMA_VERSION", "clean", "dumps", "gpu_to_dict", "gpus_to_dict", "instance_to_dict",
           "memory_to_dict", "model_to_dict", "models_to_dict", "plan_entry_to_dict", "plan_steps", "plan_to_dict",
           "step_to_dict", "workload_to_dict"]


def plan_to_dict(result: PlanResult, *, explain: bool = False, timing: bool = False,
                 name: Namer | None = None) -> dict:
    """Exactly CONTRACT.md's ``plan --format json`` object (plus the additive keys documented in docs/json-output.md).

    ``explain``: add an ``explain`` list (every Step) to the first plan.
    ``timing``: add ``search.seconds``, the wall time of the search; off by default because it differs run to run.
    ``name``: what to call the fields the notes mention (the CLI: its flags). Texts are English.
    """
    plans = [plan_entry_to_dict(p, name) for p in result.plans]
    if explain and result.plans:
        plans[0]["explain"] = [step_to_dict(s, stage) for stage, s in plan_steps(result.plans[0])]
    if result.sweep:
        plans[0]["inference"]["sweep"] = sweep_to_list(result.sweep)
    search: dict[str, Any] = {"evaluated": int(result.evaluated)}
    if timing:
        search["seconds"] = _num(float(result.search_seconds))
    doc = {
        "schema_version": SCHEMA_VERSION,
        "llmsizer_version": llmsizer.__version__,
        "model": model_to_dict(result.model),
        "workload": {**workload_to_dict(result.workload), **serving_workload(result)},
        "plans": plans,
        "fits": bool(result.any_fit),
        "notes": [say(m, "en", name) for m in result.notes],
        "suggestions": [say(m, "en", name) for m in result.suggestions],
        "search": search,
    }
    return clean(doc)
