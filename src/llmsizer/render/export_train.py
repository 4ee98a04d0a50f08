"""Training launch configs: DeepSpeed JSON, an accelerate YAML, Megatron-LM arguments.

Each carries the plan's layout (data/tensor/pipeline degrees, ZeRO stage, offload, recompute, micro-batch and
accumulation) or refuses (``export_common.refuse``) where its tool cannot say it.
"""

from __future__ import annotations

import json
import math
import shlex

from llmsizer.render.export_common import global_batch, grad_accumulation, refuse
from llmsizer.search import Plan, PlanResult
from llmsizer.search.space import pipeline_split as space_split
from llmsizer.workload import Mode, Offload, Optimizer, Precision, Recompute


def _data_parallel_only(engine: str, p: Plan) -> None:
    lay = p.layout
    if lay.tp > 1 or lay.pp > 1:
        raise refuse(engine, f"the plan uses tp={lay.tp} pp={lay.pp}, and a {engine} config carries only data "
                     "parallelism, ZeRO and offload",
                     "use {export} megatron, or pin {tp} 1 {pp} 1 for a plan it can run", ("tp", "pp"))


def deepspeed_config(result: PlanResult, p: Plan) -> str:
    """DeepSpeed JSON config (https://www.deepspeed.ai/docs/config-json/)."""
    w, lay = result.workload, p.layout
    _data_parallel_only("deepspeed", p)
    if w.precision is Precision.fp8:
        raise refuse("deepspeed", "a DeepSpeed config has no fp8 training switch (FP8 runs through Transformer "
                     "Engine in the model code)", "use {precision} bf16, or {export} megatron", ("precision",))
    if w.precision is Precision.fp32_amp:
        raise refuse("deepspeed", "DeepSpeed's bf16 mode keeps bf16 weights, and the plan keeps fp32 weights under "
                     "bf16 autocast", "use {export} accelerate (its mixed_precision: bf16 is that autocast), or "
                     "{precision} bf16", ("precision",))
    if lay.offload is not Offload.none and lay.zero == 0:
        raise refuse("deepspeed", "DeepSpeed offloads only under ZeRO (stage 1 or more)", "pin {zero} 1 or more",
                     ("zero",))
    ga = grad_accumulation(w, p)
    zero: dict = {"stage": lay.zero, "overlap_comm": True, "contiguous_gradients": True}
    if lay.offload is not Offload.none:
        zero["offload_optimizer"] = {"device": lay.offload.value, "pin_memory": True}
        if lay.zero == 3:
            zero["offload_param"] = {"device": lay.offload.value, "pin_memory": True}
    cfg = {
        "train_batch_size": global_batch(w, p),
        "train_micro_batch_size_per_gpu": lay.micro_batch,
        "gradient_accumulation_steps": ga,
        "gradient_clipping": 1.0,
        "bf16": {"enabled": w.precision is Precision.bf16},
        "fp16": {"enabled": w.precision is Precision.fp16},
        "zero_optimization": zero,
        "activation_checkpointing": {"partition_activations": False,
                                     "contiguous_memory_optimization": False},
        "steps_per_print": 100,
        "wall_clock_breakdown": False,
    }
    return json.dumps(cfg, indent=2)


def accelerate_config(result: PlanResult, p: Plan) -> str:
    """An accelerate config YAML (``accelerate launch --config_file``), FSDP when ZeRO >= 2
    (accelerate/commands/config/config_args.py; docs/source/usage_guides/fsdp.md, deepspeed.md)."""
    w, lay = result.workload, p.layout
    _data_parallel_only("accelerate", p)
    if lay.offload is Offload.nvme and lay.zero >= 2:
        raise refuse("accelerate", "FSDP offloads to CPU memory only, and the plan offloads to NVMe",
                     "use {export} deepspeed (ZeRO-Infinity), or pin {offload} cpu", ("offload",))
    if lay.offload is not Offload.none and lay.zero == 0:
        raise refuse("accelerate", "offload needs ZeRO (stage 1 or more)", "pin {zero} 1 or more", ("zero",))
    lines = ["compute_environment: LOCAL_MACHINE"]
    if lay.zero >= 2:
        strategy = "FULL_SHARD" if lay.zero == 3 else "SHARD_GRAD_OP"
        lines += [
            "distributed_type: FSDP",
            "fsdp_config:",
            "  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP",
            "  fsdp_backward_prefetch: BACKWARD_PRE",
            f"  fsdp_sharding_strategy: {strategy}",
            f"  fsdp_offload_params: {'true' if lay.offload is not Offload.none else 'false'}",
            "  fsdp_state_dict_type: SHARDED_STATE_DICT",
            "  fsdp_use_orig_params: true",
            f"  fsdp_activation_checkpointing: {'true' if lay.recompute is not Recompute.none else 'false'}",
        ]
    elif lay.zero == 1:
        lines += ["distributed_type: DEEPSPEED", "deepspeed_config:", "  zero_stage: 1",
                  f"  gradient_accumulation_steps: {grad_accumulation(w, p)}",
                  f"  offload_optimizer_device: {lay.offload.value}", "  offload_param_device: none"]
    else:
        lines += ["distributed_type: MULTI_GPU" if p.gpu_count > 1 else "distributed_type: 'NO'"]
    mp = {"bf16": "bf16", "fp16": "fp16", "fp8": "fp8", "fp32-amp": "bf16"}.get(w.precision.value, "'no'")
    lines += [
        f"mixed_precision: {mp}",
        f"num_machines: {lay.nodes}",
        f"num_processes: {p.gpu_count}",
        "machine_rank: 0",
        "main_training_function: main",
        "rdzv_backend: static",
        "same_network: true",
        "use_cpu: false",
    ]
    return "\n".join(lines)


def pipeline_split(layers: int, pp: int, virtual: int) -> str:
    """Megatron-LM arguments for the layers of the first and last pipeline stages when ``layers`` do not divide
    by ``pp``: every middle stage holds ceil(layers / pp), as the plan sized them, and the first and last share the
    rest (``--decoder-first-pipeline-num-layers`` / ``--decoder-last-pipeline-num-layers``, as Llama 3 405B ran
    with fewer layers on its first and last stages). "" when the split is even; ``refuse`` when it cannot be made
    (the interleaved schedule needs pp x v equal chunks)."""
    if layers % (pp * virtual) == 0:
        return ""
    if virtual > 1:
        return "--pipeline-model-parallel-layout " + shlex.quote(pipeline_layout(layers, pp, virtual))
    k = -(-layers // pp)
    if pp == 2:  # no middle stage: the last takes what the first leaves
        return f"--decoder-first-pipeline-num-layers {layers - k}"
    rest = layers - (pp - 2) * k
    if rest < 2:
        raise refuse("megatron", f"{layers} layers do not split into pp={pp} stages of at most {k} layers with "
                     "at least one on each", f"pin a {{pp}} that divides {layers}", ("pp",))
    return f"--decoder-first-pipeline-num-layers {rest // 2} --decoder-last-pipeline-num-layers {rest - rest // 2}"


def pipeline_layout(layers: int, pp: int, virtual: int) -> str:
    """Megatron-Core's ``--pipeline-model-parallel-layout`` for an uneven interleaved split (docs: "Custom Pipeline
    Model Parallel Layout"): ``E`` the embedding, ``t`` a transformer layer, ``L`` the loss and output layer, ``|``
    ends a chunk, and chunk i runs on pipeline rank i mod pp. The layer counts are the plan's
    (``search.space.pipeline_split``): every middle rank ``mid / v`` per chunk, the first and last ranks their fewer
    layers spread over their chunks, the lightest chunk of the first rank being the one with the embedding and of
    the last rank the one with the loss. Refused when the stacks cannot split the layers so."""
    split = space_split(layers, pp, virtual)
    if split is None:
        raise refuse("megatron", f"{layers} layers do not split into pp={pp} x {virtual} interleaved chunks",
                     f"pin a {{pp}} whose stages times chunks divide {layers}", ("pp",))
    first, mid, last = split
    counts = [0] * (pp * virtual)
    for r in range(pp):
        n = first if r == 0 else last if r == pp - 1 else mid
        base, extra = divmod(n, virtual)
        per = [base] * virtual
        for i in range(extra):  # the first rank's later chunks take the extra layers, the last rank's earlier ones
            per[virtual - 1 - i if r == 0 else i] += 1
        for c in range(virtual):
            counts[c * pp + r] = per[c]
    chunks = []
    for i, k in enumerate(counts):
        body = "t" if k == 1 else f"t*{k}" if k > 1 else ""
        chunks.append(("E" if i == 0 else "") + body + ("L" if i == len(counts) - 1 else ""))
    return "|".join(chunks)


def _megatron_checks(result: PlanResult, p: Plan) -> None:
    w, lay = result.workload, p.layout
    if w.mode in (Mode.lora, Mode.qlora):
        raise refuse("megatron", f"pretrain_gpt.py trains every weight and the plan is {w.mode.value}",
                     "run adapters through NeMo's PEFT recipes, or use {export} deepspeed with {framework} "
                     "deepspeed", ("framework",))
    if lay.zero >= 2 or lay.offload is Offload.nvme:
        raise refuse("megatron", f"Megatron-LM's distributed optimizer shards optimizer states only (ZeRO-1) and "
                     f"offloads them to CPU memory only; the plan uses ZeRO-{lay.zero}, offload {lay.offload.value}",
                     "pin {zero} 1 and {offload} none or cpu", ("zero", "offload"))
    if w.precision is Precision.fp32_amp:
        raise refuse("megatron", "Megatron-LM keeps bf16 weights with fp32 main copies, not fp32 weights under "
                     "autocast", "use {precision} bf16", ("precision",))
    if w.optimizer not in (Optimizer.adamw, Optimizer.sgd):
        raise refuse("megatron", f"Megatron-LM's --optimizer is adam (decoupled weight decay) or sgd, and the "
                     f"plan uses {w.optimizer.value}", "use {optimizer} adamw or sgd", ("optimizer",))


def megatron_args(result: PlanResult, p: Plan) -> str:
    """Megatron-LM ``pretrain_gpt.py`` arguments (megatron/training/arguments.py)."""
    m, w, lay = result.model, result.workload, p.layout
    _megatron_checks(result, p)
    split = pipeline_split(m.layers, lay.pp, lay.virtual_stages) if lay.pp > 1 else ""
    precision = {Precision.bf16: "--bf16", Precision.fp16: "--fp16", Precision.fp8: "--bf16 --fp8-format hybrid",
                 Precision.fp32: ""}[w.precision]
    a = [
        f"--tensor-model-parallel-size {lay.tp}", f"--pipeline-model-parallel-size {lay.pp}",
        f"--num-layers {m.layers}", f"--hidden-size {m.hidden_size}", f"--num-attention-heads {m.heads}",
        f"--ffn-hidden-size {m.ffn_size}", f"--seq-length {w.seq_len}",
        f"--max-position-embeddings {max(w.seq_len, m.max_context)}",
        f"--micro-batch-size {lay.micro_batch}", f"--global-batch-size {global_batch(w, p)}",
        f"--optimizer {'sgd' if w.optimizer is Optimizer.sgd else 'adam'}",
    ]
    a += [precision] if precision else []
    if lay.tp > 1 and lay.sequence_parallel:
        a.append("--sequence-parallel")
    if split:
        a.append(split)
    if lay.pp > 1 and lay.virtual_stages > 1 and m.layers % (lay.pp * lay.virtual_stages) == 0:
        # the interleaved schedule: v chunks of this many layers per GPU (uneven splits: the layout above)
        a.append(f"--num-layers-per-virtual-pipeline-stage {m.layers // lay.pp // lay.virtual_stages}")
    if m.kv_heads < m.heads:
        a.append(f"--group-query-attention --num-query-groups {m.kv_heads}")
    if m.ffn_kind == "gated":
        a.append("--swiglu")
    if m.norm == "rmsnorm":
        a.append("--normalization RMSNorm")
    if m.position_embedding == "rope":
        a.append("--position-embedding-type rope")
    if not m.tied_embeddings:
        a.append("--untie-embeddings-and-output-weights")
    if lay.recompute is Recompute.full:
        a.append("--recompute-granularity full --recompute-method uniform --recompute-num-layers 1")
    elif lay.recompute is Recompute.selective:
        a.append("--recompute-granularity selective")
    if lay.zero >= 1 or lay.offload is Offload.cpu:
        a.append("--use-distributed-optimizer")
    if lay.offload is Offload.cpu:  # HybridDeviceOptimizer: the whole optimizer step on the host
        a.append("--optimizer-cpu-offload --optimizer-offload-fraction 1.0 --use-precision-aware-optimizer")
    if m.moe is not None:
        a.append(f"--num-experts {m.moe.experts} --moe-router-topk {m.moe.experts_per_token} "
                 f"--expert-model-parallel-size {lay.ep}")
    if w.tokens:
        a.append(f"--train-samples {math.ceil(w.tokens / w.seq_len)}")
    return "torchrun ... pretrain_gpt.py \\\n  " + " \\\n  ".join(a)
