"""``plan --export ENGINE``: the top plan as a launch config or command for the engine users really run.

Option names follow each engine's documentation (cited per function); tests check them against those lists.
This is a renderer: it formats, it decides nothing the planner has not decided.
"""

from __future__ import annotations

import json
import math
import shlex

from llmsizer.errors import InvalidInputError, literal
from llmsizer.render.i18n import Namer
from llmsizer.search import Plan, PlanResult
from llmsizer.specs import ModelSpec
from llmsizer.workload import Offload, Quant, Recompute, Workload

ENGINES = ("deepspeed", "accelerate", "megatron", "vllm", "sglang", "llama.cpp", "slurm", "k8s")
_TRAINING_ONLY = {"deepspeed", "accelerate", "megatron"}
_INFERENCE_ONLY = {"vllm", "sglang", "llama.cpp"}


def hf_name(model: ModelSpec) -> str:
    """The Hugging Face repo id when the catalog knows one (an alias with a slash), else the catalog id."""
    return next((a for a in model.aliases if "/" in a), model.id)


def grad_accumulation(w: Workload, plan: Plan) -> int:
    """Micro-batches per optimizer step, as the plan's step model counted them (compute.TrainingEstimate); else
    the (resolved) global batch tokens / (seq_len x micro-batch x dp), at least 1."""
    if plan.training is not None and plan.training.grad_accumulation:
        return plan.training.grad_accumulation
    gbt = w.global_batch_tokens or w.seq_len
    return max(1, round(gbt / (w.seq_len * plan.layout.micro_batch * plan.layout.dp)))


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
          "slurm": slurm_script, "k8s": k8s_job}[engine]
    return fn(result, p)


def deepspeed_config(result: PlanResult, p: Plan) -> str:
    """DeepSpeed JSON config (https://www.deepspeed.ai/docs/config-json/)."""
    w, lay = result.workload, p.layout
    ga = grad_accumulation(w, p)
    zero: dict = {"stage": lay.zero, "overlap_comm": True, "contiguous_gradients": True}
    if lay.offload is not Offload.none:
        zero["offload_optimizer"] = {"device": lay.offload.value, "pin_memory": True}
        if lay.zero == 3:
            zero["offload_param"] = {"device": lay.offload.value, "pin_memory": True}
    cfg = {
        "train_batch_size": lay.micro_batch * ga * lay.dp,
        "train_micro_batch_size_per_gpu": lay.micro_batch,
        "gradient_accumulation_steps": ga,
        "gradient_clipping": 1.0,
        "bf16": {"enabled": w.precision.value in ("bf16", "fp32-amp")},
        "fp16": {"enabled": w.precision.value == "fp16"},
        "zero_optimization": zero,
        "activation_checkpointing": {"partition_activations": lay.tp > 1,
                                     "contiguous_memory_optimization": False},
        "steps_per_print": 100,
        "wall_clock_breakdown": False,
    }
    return json.dumps(cfg, indent=2)


def accelerate_config(result: PlanResult, p: Plan) -> str:
    """An accelerate config YAML (``accelerate launch --config_file``), FSDP when ZeRO >= 2."""
    w, lay = result.workload, p.layout
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
                  f"  gradient_accumulation_steps: {grad_accumulation(w, p)}"]
    else:
        lines += ["distributed_type: MULTI_GPU" if p.gpu_count > 1 else "distributed_type: 'NO'"]
    mp = {"bf16": "bf16", "fp16": "fp16", "fp8": "fp8"}.get(w.precision.value, "'no'")
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


def megatron_args(result: PlanResult, p: Plan) -> str:
    """Megatron-LM ``pretrain_gpt.py`` arguments (megatron/training/arguments.py)."""
    m, w, lay = result.model, result.workload, p.layout
    ga = grad_accumulation(w, p)
    a = [
        f"--tensor-model-parallel-size {lay.tp}", f"--pipeline-model-parallel-size {lay.pp}",
        f"--num-layers {m.layers}", f"--hidden-size {m.hidden_size}", f"--num-attention-heads {m.heads}",
        f"--ffn-hidden-size {m.ffn_size}", f"--seq-length {w.seq_len}",
        f"--max-position-embeddings {max(w.seq_len, m.max_context)}",
        f"--micro-batch-size {lay.micro_batch}", f"--global-batch-size {lay.micro_batch * ga * lay.dp}",
        f"--{w.precision.value}" if w.precision.value in ("bf16", "fp16") else "--bf16 --fp8-format hybrid",
    ]
    if lay.tp > 1:
        a.append("--sequence-parallel")
    if lay.pp > 1 and lay.virtual_stages > 1:  # the interleaved schedule: v chunks of this many layers per GPU
        a.append(f"--num-layers-per-virtual-pipeline-stage {-(-m.layers // lay.pp) // lay.virtual_stages}")
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
    if lay.zero >= 1:
        a.append("--use-distributed-optimizer")
    if m.moe is not None:
        a.append(f"--num-experts {m.moe.experts} --moe-router-topk {m.moe.experts_per_token} "
                 f"--expert-model-parallel-size {lay.ep}")
    if w.tokens:
        a.append(f"--train-samples {math.ceil(w.tokens / w.seq_len)}")
    return "torchrun ... pretrain_gpt.py \\\n  " + " \\\n  ".join(a)


def _quant_flag(w: Workload, engine: str) -> list[str]:
    q = w.quant
    if q is Quant.none:
        return []
    if q is Quant.int4:
        return ["--quantization", "awq"]  # GPTQ checkpoints: gptq; both are 4-bit with group-128 scales
    if q is Quant.fp8:
        return ["--quantization", "fp8"]
    if q is Quant.int8:
        return [] if engine == "vllm" else ["--quantization", "w8a8_int8"]
    if q is Quant.nf4:
        return ["--quantization", "bitsandbytes"]
    return ["--quantization", "gguf"] if engine == "vllm" else []


def vllm_command(result: PlanResult, p: Plan) -> str:
    """``vllm serve`` (https://docs.vllm.ai/en/latest/serving/engine_args.html)."""
    w, lay = result.workload, p.layout
    args = ["vllm", "serve", hf_name(result.model), "--tensor-parallel-size", str(lay.tp),
            "--pipeline-parallel-size", str(lay.pp), "--max-model-len", str(w.context_tokens),
            "--gpu-memory-utilization", "0.9", "--max-num-seqs", str(w.concurrency),
            "--dtype", {"fp16": "float16", "fp32": "float32"}.get(w.precision.value, "bfloat16")]
    args += _quant_flag(w, "vllm")
    if w.kv_cache_dtype in ("fp8", "int8"):
        args += ["--kv-cache-dtype", "fp8"]
    cmd = shlex.join(args)
    if w.quant in (Quant.int4, Quant.int8, Quant.nf4):
        cmd += f"\n# serve a {w.quant.value} checkpoint of this model (AWQ/GPTQ for int4, W8A8 for int8)"
    if lay.dp > 1:
        cmd += f"\n# run {lay.dp} replicas of this server behind a load balancer (or --data-parallel-size {lay.dp})"
    return cmd


def sglang_command(result: PlanResult, p: Plan) -> str:
    """SGLang server (https://docs.sglang.ai/backend/server_arguments.html)."""
    w, lay = result.workload, p.layout
    args = ["python", "-m", "sglang.launch_server", "--model-path", hf_name(result.model),
            "--tp-size", str(lay.tp), "--context-length", str(w.context_tokens),
            "--mem-fraction-static", "0.88", "--max-running-requests", str(w.concurrency),
            "--dtype", {"fp16": "float16", "fp32": "float32"}.get(w.precision.value, "bfloat16")]
    if lay.dp > 1:
        args += ["--dp-size", str(lay.dp)]
    args += _quant_flag(w, "sglang")
    if w.kv_cache_dtype in ("fp8", "int8"):
        args += ["--kv-cache-dtype", "fp8_e5m2"]
    return shlex.join(args)


def llamacpp_command(result: PlanResult, p: Plan) -> str:
    """llama.cpp ``llama-server`` (tools/server/README.md): all layers on GPU, one slot per concurrent sequence."""
    w = result.workload
    q = w.quant.value if w.quant is not Quant.none else "f16"
    args = ["llama-server", "-m", f"{result.model.id}-{q}.gguf", "-ngl", "999",
            "-c", str(w.context_tokens * w.concurrency), "-np", str(w.concurrency), "-b", "2048", "-ub", "512"]
    if p.gpu_count > 1:
        args += ["--split-mode", "layer"]
    if w.kv_cache_dtype in ("fp8", "int8"):
        args += ["--cache-type-k", "q8_0", "--cache-type-v", "q8_0", "-fa", "on"]
    return shlex.join(args) + "\n# -c is the total context of all -np slots: context x concurrency"


def slurm_script(result: PlanResult, p: Plan) -> str:
    """An sbatch script: one torchrun per node (https://slurm.schedmd.com/sbatch.html)."""
    lay = p.layout
    per_node = min(p.gpu_count, lay.gpus_per_node)
    server = p.server
    cpus = server.cpu_cores if server else 8 * per_node
    mem_gb = int(server.ram_bytes / 1e9) if server else 0
    seconds = p.training.seconds if p.training and p.training.seconds else None
    hours = math.ceil(seconds / 3600 * 1.1) if seconds else 24
    run = (f"srun torchrun --nnodes {lay.nodes} --nproc_per_node {per_node} --rdzv_backend c10d "
           f"--rdzv_endpoint \"$HEAD:29500\" --rdzv_id \"$SLURM_JOB_ID\" train.py --deepspeed ds_config.json")
    if not result.workload.mode.is_training:
        run = "srun " + vllm_command(result, p).splitlines()[0]
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name=llmsizer-{result.model.id}",
        f"#SBATCH --nodes={lay.nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --gpus-per-node={per_node}",
        f"#SBATCH --cpus-per-task={cpus}",
        f"#SBATCH --mem={mem_gb}G" if mem_gb else "#SBATCH --mem=0",
        f"#SBATCH --time={hours // 24}-{hours % 24:02d}:00:00",
        "#SBATCH --exclusive",
        "set -euo pipefail",
        'HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        run,
    ]
    return "\n".join(lines)


def k8s_job(result: PlanResult, p: Plan) -> str:
    """A Kubernetes indexed Job, one pod per node, requesting ``nvidia.com/gpu``."""
    lay = p.layout
    per_node = min(p.gpu_count, lay.gpus_per_node)
    server = p.server
    cpu = server.cpu_cores if server else 8 * per_node
    mem_gi = int(server.ram_bytes / 2**30 * 0.9) if server else 64
    name = f"llmsizer-{result.model.id}".replace(".", "-")[:50]
    cmd = (f"torchrun --nnodes {lay.nodes} --nproc_per_node {per_node} --node_rank $(JOB_COMPLETION_INDEX) "
           f"--master_addr {name}-0.{name} --master_port 29500 train.py"
           if result.workload.mode.is_training else vllm_command(result, p).splitlines()[0])
    return "\n".join([
        "apiVersion: batch/v1",
        "kind: Job",
        "metadata:",
        f"  name: {name}",
        "spec:",
        f"  completions: {lay.nodes}",
        f"  parallelism: {lay.nodes}",
        "  completionMode: Indexed",
        "  template:",
        "    spec:",
        f"      subdomain: {name}",
        "      restartPolicy: Never",
        "      containers:",
        "        - name: worker",
        "          image: nvcr.io/nvidia/pytorch:24.08-py3",
        f"          command: [\"bash\", \"-c\", {json.dumps(cmd)}]",
        "          resources:",
        "            limits:",
        f"              nvidia.com/gpu: {per_node}",
        f"              cpu: \"{cpu}\"",
        f"              memory: {mem_gi}Gi",
    ])


def export_notes(result: PlanResult, engine: str, name: Namer | None = None) -> list[str]:
    """What the exported file cannot say by itself (printed on stderr, never in the config); ``name(field)``
    names the options it mentions."""
    n = name or (lambda f: f)
    p = next((x for x in result.plans if x.fits), None)
    if p is None:
        return []
    lay = p.layout
    notes = []
    if engine in ("deepspeed", "accelerate") and (lay.tp > 1 or lay.pp > 1):
        notes.append(f"the plan uses tp={lay.tp} pp={lay.pp}: DeepSpeed/accelerate configs carry only data "
                     "parallelism and ZeRO; launch with Megatron-DeepSpeed or Megatron-LM "
                     f"({n('export')} megatron), or pin {n('tp')} 1 {n('pp')} 1 to get a plan they can run alone")
    if engine in ("deepspeed", "accelerate", "slurm") and lay.pp > 1 and lay.virtual_stages > 1:
        notes.append(f"the plan interleaves {lay.virtual_stages} pipeline chunks per GPU (Megatron-LM's schedule); "
                     "DeepSpeed's pipeline engine runs plain 1F1B, so its bubble is larger than estimated")
    layers = result.model.layers
    if engine in ("megatron", "slurm") and lay.pp > 1 and layers % (lay.pp * lay.virtual_stages):
        notes.append(f"{layers} layers do not split evenly into pp={lay.pp} x {lay.virtual_stages} chunk(s): the plan "
                     f"sizes every stage for {-(-layers // lay.pp)} layers; Megatron-LM wants an even split (or "
                     "its options for fewer layers on the first and last stages, as Llama 3 405B used)")
    if engine == "slurm" and result.workload.mode.is_training:
        notes.append(f"the script launches train.py with ds_config.json: write that with {n('export')} deepspeed")
    return notes

