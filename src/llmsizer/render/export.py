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
from llmsizer.render.export_cluster import k8s_manifest, slurm_script
from llmsizer.render.export_common import grad_accumulation, hf_name
from llmsizer.render.export_serve import llamacpp_command, sglang_command, vllm_command
from llmsizer.render.export_train import (
    accelerate_config,
    deepspeed_config,
    megatron_args,
)
from llmsizer.render.i18n import Namer
from llmsizer.search import Plan, PlanResult
from llmsizer.workload import Framework, Optimizer, Recompute

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


def export_notes(result: PlanResult, engine: str, name: Namer | None = None) -> list[str]:
    """What only the training script can set, and what the export assumed (printed on stderr, never in the
    config); ``name(field)`` names the options it mentions."""
    n = name or (lambda f: f)
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
        notes.append(f"train.py feeds sequences of {w.seq_len:,} tokens (the config does not carry the length)")
    if script and w.mode.value in ("lora", "qlora"):
        targets = "q_proj and v_proj" if w.lora_targets.value == "qv" else "every linear layer (all-linear)"
        notes.append(f"train.py sets the adapters: LoRA rank {w.lora_rank} on {targets} "
                     + ("over the 4-bit NF4 base (bitsandbytes)" if w.mode.value == "qlora" else "(PEFT)"))
    if script and lay.recompute is not Recompute.none and not (engine == "accelerate" and lay.zero >= 2):
        notes.append(f"train.py switches on activation checkpointing ({lay.recompute.value}): the Trainer's "
                     "gradient_checkpointing=True, or model.gradient_checkpointing_enable()")
    if script and w.optimizer is not Optimizer.adamw:
        notes.append(f"train.py builds the {w.optimizer.value} optimizer (the Trainer's optim=...)")
    if engine == "accelerate" and lay.zero != 1:
        notes.append(f"train.py sets gradient accumulation: Accelerator(gradient_accumulation_steps="
                     f"{grad_accumulation(w, p)})")
    if engine in ("slurm", "k8s") and stack in (None, Framework.deepspeed, Framework.transformers):
        notes.append(f"the launch runs train.py with ds_config.json: write that with {n('export')} deepspeed")
    if engine in ("slurm", "k8s") and stack in (Framework.fsdp, Framework.torchtune, Framework.unsloth):
        notes.append(f"train.py sets the layout of the plan on {stack.value}: ZeRO-{lay.zero} sharding, offload "
                     f"{lay.offload.value}, micro-batch {lay.micro_batch}, accumulation {grad_accumulation(w, p)}")
    if stack is Framework.megatron and engine in ("slurm", "k8s"):
        notes.append("pretrain_gpt.py is Megatron-LM's (github.com/NVIDIA/Megatron-LM): run from a checkout of it "
                     "in the container, with --data-path and --tokenizer-type for your data")
    if stack is Framework.megatron and w.mode.value == "finetune":
        notes.append("pretrain_gpt.py fine-tunes a Megatron checkpoint: add --load <dir> --finetune")
    layers = result.model.layers
    if stack is Framework.megatron and lay.pp > 1 and layers % lay.pp:
        notes.append(f"{layers} layers over pp={lay.pp}: the middle stages hold {-(-layers // lay.pp)} layers each, "
                     "as the plan sized them, and the first and last stages the rest")
    return notes


def _serving_notes(p: Plan, engine: str) -> list[str]:
    """A server spread over several nodes: what must run before the command does."""
    if p.layout.tp * p.layout.pp <= p.layout.gpus_per_node:
        return []
    if engine == "vllm":
        return [(f"one copy spans {p.nodes} nodes: start a Ray cluster over them and run the command on its head "
                 "node (vLLM docs, parallelism and scaling: multi-node)")]
    if engine == "sglang":
        return [(f"one copy spans {p.nodes} nodes: run the command on each with --nnodes {p.nodes} --node-rank <i> "
                 "--dist-init-addr <node 0>:5000 (SGLang server arguments)")]
    return []


__all__ = ["ENGINES", "export_notes", "export_plan", "grad_accumulation", "hf_name"]
