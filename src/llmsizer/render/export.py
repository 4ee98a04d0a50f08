"""``plan --export ENGINE``: the top plan as a launch config or command for the engine users really run.

Option names follow each engine's documentation (cited per function); tests check them against those lists.
This is a renderer: it formats, it decides nothing the planner has not decided. An export carries every field of
the plan, or refuses with a note that says why (exit 2); what only the training script can set (LoRA, activation
checkpointing under DeepSpeed) is said on stderr by ``export_notes``.

Training configs live in ``export_train``, server commands in ``export_serve``, Slurm and Kubernetes in
``export_cluster``.
"""

from __future__ import annotations

from llmsizer.errors import InvalidInputError, literal
from llmsizer.explain import Message, message
from llmsizer.render.export_cluster import k8s_manifest, slurm_script
from llmsizer.render.export_common import grad_accumulation, hf_name
from llmsizer.render.export_serve import llamacpp_command, sglang_command, vllm_command
from llmsizer.render.export_train import (
    accelerate_config,
    deepspeed_config,
    megatron_args,
)
from llmsizer.render.i18n import Namer, say
from llmsizer.search import Plan, PlanResult
from llmsizer.workload import Framework, Optimizer, Recompute
from llmsizer.workload.choices import LLAMA_CPP_ENGINES

ENGINES = ("deepspeed", "accelerate", "megatron", "vllm", "sglang", "llama.cpp", "slurm", "k8s")
_TRAINING_ONLY = {"deepspeed", "accelerate", "megatron"}
_INFERENCE_ONLY = {"vllm", "sglang", "llama.cpp"}


def _top(result: PlanResult) -> Plan:
    fitting = [p for p in result.plans if p.fits]
    if not fitting:
        raise InvalidInputError("{export} needs a plan that fits; none does (try {include_unfit} to see near misses)",
                                fields=("export", "include_unfit"))
    return fitting[0]


def export_plan(result: PlanResult, engine: str) -> str:
    engine = engine.lower()
    if engine not in ENGINES:
        raise InvalidInputError(f"unknown {{export}} '{literal(engine)}'; use one of {', '.join(ENGINES)}",
                                fields=("export",))
    training = result.workload.mode.is_training
    if engine in _TRAINING_ONLY and not training:
        raise InvalidInputError(f"{{export}} {engine} is a training launcher; for inference use vllm, sglang or "
                                "llama.cpp", fields=("export",))
    if engine in _INFERENCE_ONLY and training:
        raise InvalidInputError(f"{{export}} {engine} is an inference server; for training use deepspeed, accelerate, "
                                "megatron, slurm or k8s", fields=("export",))
    p = _top(result)
    if p.layout.prefill_replicas:
        raise InvalidInputError(
            f"{{export}} {engine}: the top plan disaggregates prefill and decode ({p.layout.prefill_replicas} + "
            f"{p.layout.dp - p.layout.prefill_replicas} replicas), which needs a PD-disaggregation stack (NVIDIA "
            "Dynamo, llm-d, SGLang's PD router) and its KV connector; export a co-located plan (drop "
            "{disaggregate})", fields=("export", "disaggregate"))
    if result.workload.speculative_tokens and engine in ("vllm", "sglang", "k8s", "llama.cpp"):
        raise InvalidInputError(
            f"{{export}} {engine}: the plan assumes speculative decoding ({result.workload.speculative_tokens} draft "
            "tokens per step), which needs a draft model or EAGLE/MTP heads the plan does not name; export without "
            "{speculative_tokens} and add the engine's speculative config (vLLM --speculative-config, SGLang "
            "--speculative-algorithm) for the drafts you have", fields=("export", "speculative_tokens"))
    if not training and p.engine in LLAMA_CPP_ENGINES and engine in ("vllm", "sglang", "k8s"):
        raise InvalidInputError(
            f"{{export}} {engine}: the top plan is sized for {p.engine.value} on {literal(p.gpu.id)}, which "
            f"{engine if engine != 'k8s' else 'a vLLM container'} does not serve; use {{export}} llama.cpp, or "
            "{gpu} to choose CUDA or ROCm GPUs", fields=("export", "gpu"))
    if training and p.framework is not None:
        from llmsizer.data.frameworks import profile

        prof = profile(p.framework)
        if engine not in prof.exports:
            raise InvalidInputError(
                f"{{export}} {engine}: the top plan runs on {literal(prof.name)}, which does not launch that way; "
                f"use {{export}} {' or '.join(prof.exports)}, or choose a {{framework}} that does",
                fields=("export", "framework"))
    fn = {"deepspeed": deepspeed_config, "accelerate": accelerate_config, "megatron": megatron_args,
          "vllm": vllm_command, "sglang": sglang_command, "llama.cpp": llamacpp_command,
          "slurm": slurm_script, "k8s": k8s_manifest}[engine]
    return fn(result, p)


def export_notes(result: PlanResult, engine: str, name: Namer | None = None, lang: str = "en") -> list[str]:
    """What only the training script can set, and what must run before a server that spans nodes (printed on
    stderr, never in the config), in ``lang``; ``name(field)`` names the options it mentions."""
    return [say(m, lang, name) for m in export_messages(result, engine)]


def export_messages(result: PlanResult, engine: str) -> list[Message]:
    """``export_notes`` as messages (render/i18n/en_export.py words them)."""
    p = next((x for x in result.plans if x.fits), None)
    if p is None:
        return []
    if not result.workload.mode.is_training:
        return _serving_notes(p, engine)
    w, lay = result.workload, p.layout
    stack = p.framework or (Framework.megatron if engine == "megatron" else None)
    notes = []
    script = stack is not Framework.megatron and engine != "megatron"  # a train.py the user writes
    if script:
        notes.append(message("export.seq_len", seq_len=w.seq_len))
    if script and w.mode.value in ("lora", "qlora"):
        notes.append(message("export.adapters", rank=w.lora_rank, targets=w.lora_targets.value, mode=w.mode.value))
    if script and lay.recompute is not Recompute.none and not (engine == "accelerate" and lay.zero >= 2):
        notes.append(message("export.recompute", recompute=lay.recompute.value))
    if script and w.optimizer is not Optimizer.adamw:
        notes.append(message("export.optimizer", optimizer=w.optimizer.value))
    if engine == "accelerate" and lay.zero != 1:
        notes.append(message("export.accumulation", steps=grad_accumulation(w, p)))
    if engine in ("slurm", "k8s") and stack in (None, Framework.deepspeed, Framework.transformers):
        notes.append(message("export.ds_config"))
    if engine in ("slurm", "k8s") and stack in (Framework.fsdp, Framework.torchtune, Framework.unsloth):
        notes.append(message("export.script_layout", framework=stack.value, zero=lay.zero, offload=lay.offload.value,
                             micro_batch=lay.micro_batch, steps=grad_accumulation(w, p)))
    if stack is Framework.megatron and engine in ("slurm", "k8s"):
        notes.append(message("export.megatron_checkout"))
    if stack is Framework.megatron and w.mode.value == "finetune":
        notes.append(message("export.megatron_finetune"))
    layers = result.model.layers
    if stack is Framework.megatron and lay.pp > 1 and layers % lay.pp:
        notes.append(message("export.uneven_pipeline", layers=layers, pp=lay.pp, per_stage=-(-layers // lay.pp)))
    return notes


def _serving_notes(p: Plan, engine: str) -> list[Message]:
    """A server spread over several nodes: what must run before the command does."""
    if p.layout.tp * p.layout.pp <= p.layout.gpus_per_node or engine not in ("vllm", "sglang"):
        return []
    return [message(f"export.{engine}_nodes", nodes=p.nodes)]


__all__ = ["ENGINES", "export_messages", "export_notes", "export_plan", "grad_accumulation", "hf_name"]
