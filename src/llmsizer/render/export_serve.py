"""Inference server commands: ``vllm serve``, SGLang's ``launch_server``, llama.cpp's ``llama-server``.

Each carries the plan's tensor/pipeline/data-parallel degrees, context, concurrency, dtype, weight format and
KV-cache dtype, or refuses (``export_common.refuse``).
"""

from __future__ import annotations

import shlex

from llmsizer.render.export_common import gpus_per_node, hf_name, refuse
from llmsizer.search import Plan, PlanResult
from llmsizer.workload import Quant

#: weight formats that need a checkpoint stored that way: the base repo holds 16-bit weights, and serving it
#: with --quantization awq/gptq/w8a8 fails (vLLM reads the scales from the checkpoint)
_PREQUANTIZED = {Quant.int4: "an AWQ or GPTQ", Quant.int8: "a W8A8 (INT8)"}
#: formats an engine quantizes while it loads 16-bit weights (vLLM: fp8 and bitsandbytes; SGLang the same)
_ONLINE = {Quant.fp8: "fp8", Quant.nf4: "bitsandbytes"}
#: notes that say the model came from a file whose weights are stored quantized (usecases/plan.py, modelfiles)
_FILE_QUANT_NOTES = ("file_quant", "file.quant_config")


def dtype_arg(result: PlanResult) -> str:
    return {"fp16": "float16", "fp32": "float32"}.get(result.workload.precision.value, "bfloat16")


def stored_quantized(result: PlanResult) -> bool:
    """True when ``--model`` is a checkpoint whose config or headers say its weights are stored quantized: the
    engine then reads the method from its ``quantization_config`` (vLLM engine args: ``--quantization`` "if None,
    we first check the quantization_config attribute in the model config file")."""
    return any(getattr(n, "code", "") in _FILE_QUANT_NOTES for n in result.notes)


def quant_args(result: PlanResult, engine: str) -> list[str]:
    """``--quantization`` for the plan's weight format, or a refusal when the base repo cannot be served so."""
    q = result.workload.quant
    if q is Quant.none or stored_quantized(result):
        return []
    if q in _ONLINE:
        return ["--quantization", _ONLINE[q]]
    if q in _PREQUANTIZED:
        raise refuse(engine, f"the plan serves {q.value} weights, and {hf_name(result.model)} holds 16-bit weights "
                     f"({engine} does not quantize to {q.value} while it loads)",
                     f"point {{model}} at {_PREQUANTIZED[q]} checkpoint of this model (its config.json or Hub "
                     "org/name), and the export serves that", ("model",))
    raise refuse(engine, f"{q.value} is a GGUF (llama.cpp) format", "use {export} llama.cpp with {engine} "
                 "llama.cpp, or a format it serves: {quant} int4, int8, fp8 or nf4", ("engine", "quant"))


def _single_node_data_parallel(engine: str, p: Plan) -> None:
    if p.layout.dp > 1 and p.gpu_count > p.layout.gpus_per_node:
        raise refuse(engine, f"the plan runs {p.layout.dp} replicas on {p.nodes} nodes, and one {engine} server "
                     "runs its data-parallel replicas on one node", "use {export} k8s (a Deployment with one "
                     "replica per copy), or pin {gpus} to one node", ("gpus",))


#: each server's spelling of the plan's fields: the command, then the flags for model, TP, PP, context, memory
#: share, running-request limit, per-step token budget, data-parallel size, its fp8 KV-cache dtype, and expert
#: parallelism (https://docs.vllm.ai/en/latest/configuration/engine_args.html,
#: https://docs.sglang.ai/backend/server_arguments.html)
_SERVER_FLAGS = {
    "vllm": (["vllm", "serve"], "", "--tensor-parallel-size", "--pipeline-parallel-size", "--max-model-len",
             "--gpu-memory-utilization", "--max-num-seqs", "--max-num-batched-tokens", "--data-parallel-size", "fp8",
             lambda ep: ["--enable-expert-parallel"]),  # experts over the TP (x DP) ranks
    "sglang": (["python3", "-m", "sglang.launch_server"], "--model-path", "--tp-size", "--pp-size", "--context-length",
               "--mem-fraction-static", "--max-running-requests", "--chunked-prefill-size", "--dp-size", "fp8_e5m2",
               lambda ep: ["--ep-size", str(ep)]),
}


def _attention_dp_args(engine: str, p: Plan, replicas: bool) -> tuple[int, list[str]]:
    """(tensor-parallel size, flags) of an attention-DP replica: SGLang keeps --tp-size and adds
    --enable-dp-attention with --dp-size of the same degree; vLLM runs it as --data-parallel-size ranks of TP 1
    (docs.vllm.ai, "Data Parallel Deployment": the expert layers form one DP x TP tensor-parallel group, or an
    expert-parallel one with --enable-expert-parallel)."""
    lay = p.layout
    if replicas and lay.dp > 1:
        raise refuse(engine, f"the plan runs {lay.dp} copies of an attention-DP replica, and one {engine} server's "
                     "data-parallel ranks are that replica's attention ranks", "use {export} k8s (a Deployment with "
                     "one replica per copy)", ("export",))
    if engine == "sglang":
        return lay.tp, ["--enable-dp-attention", "--dp-size", str(lay.tp)]
    # vLLM's experts form one tensor-parallel group over the DP ranks unless --enable-expert-parallel (lay.ep)
    return 1, ["--data-parallel-size", str(lay.tp)]


def server_args(result: PlanResult, p: Plan, engine: str, *, replicas: bool = True) -> list[str]:
    """``vllm serve`` or SGLang's ``launch_server`` arguments for the plan; ``replicas`` False leaves data
    parallelism to the caller (Kubernetes replicas). SGLang's --pp-size is given only when pp > 1."""
    w, lay = result.workload, p.layout
    cmd, model, tp, pp, context, share, seqs, budget, dp, kv_fp8, ep = _SERVER_FLAGS[engine]
    q = quant_args(result, engine)
    tp_size, adp = _attention_dp_args(engine, p, replicas) if lay.attention_dp else (lay.tp, [])
    args = [*cmd, *([model] if model else []), hf_name(result.model), tp, str(tp_size)]
    if engine == "vllm" or lay.pp > 1:
        args += [pp, str(lay.pp)]
    ranks = _ranks_per_limit(engine, p)
    args += [context, str(w.context_tokens), share, memory_share(p), seqs, str(-(-batch_limit(result, p) // ranks)),
             *token_budget(budget, p, ranks), "--dtype", dtype_arg(result)]
    if lay.ep > 1:
        args += ep(lay.ep)
    args += adp
    if replicas and lay.dp > 1:
        _single_node_data_parallel(engine, p)
        args += [dp, str(lay.dp)]
    args += q
    if w.kv_cache_dtype in ("fp8", "int8"):
        args += ["--kv-cache-dtype", kv_fp8]
    return args


def batch_limit(result: PlanResult, p: Plan) -> int:
    """The engine's running-request limit: the concurrency asked for, or, for a request rate or the default load,
    the sequences a replica holds at once (its KV slots, capped by the engine's own limit), as the plan sized."""
    w = result.workload
    if w.request_rate is None and "concurrency" not in w.assumed:
        return w.concurrency
    return p.inference.replica_concurrency if p.inference is not None else w.concurrency


def token_budget(flag: str, p: Plan, ranks: int = 1) -> list[str]:
    """The per-step token budget the plan's serving model assumed (the engine's default, data/serving.yaml), per
    scheduling rank."""
    costs = p.inference.costs if p.inference is not None else None
    return [flag, str(int(costs.budget // ranks))] if costs is not None and costs.continuous else []


def _ranks_per_limit(engine: str, p: Plan) -> int:
    """How many schedulers share the replica's limits: an attention-DP replica's ranks where each keeps its own
    (vLLM; data/serving.yaml attention_dp_limits), else 1."""
    from llmsizer.data.serving import engine_serving

    per_rank = p.layout.attention_dp and engine_serving(engine).attention_dp_limits == "per_rank"
    return p.layout.tp if per_rank else 1


def memory_share(p: Plan) -> str:
    """The share of each GPU's memory the plan budgets (its usable memory over the GPU's), two decimals, down."""
    share = int(p.usable_memory_bytes / p.gpu.memory_bytes * 100) / 100
    return f"{min(share, 0.95):.2f}"


def vllm_command(result: PlanResult, p: Plan) -> str:
    return shlex.join(server_args(result, p, "vllm"))


def sglang_command(result: PlanResult, p: Plan) -> str:
    return shlex.join(server_args(result, p, "sglang"))


def llamacpp_command(result: PlanResult, p: Plan) -> str:
    """llama.cpp ``llama-server`` (tools/server/README.md): all layers on GPU, one slot per concurrent sequence."""
    w, lay = result.workload, p.layout
    if lay.dp > 1 or p.nodes > 1:
        raise refuse("llama.cpp", f"the plan runs {lay.dp} replicas on {p.nodes} node(s), and one llama-server "
                     "serves one copy of the model on one machine", "pin {gpus} to the GPUs of one copy", ("gpus",))
    q = w.quant.value if w.quant is not Quant.none else "f16"
    args = ["llama-server", "-m", f"{result.model.id}-{q}.gguf", "-ngl", "999",
            "-c", str(w.context_tokens * w.concurrency), "-np", str(w.concurrency), "-b", "2048", "-ub", "512"]
    if gpus_per_node(p) > 1:
        args += ["--split-mode", "row" if lay.tp > 1 else "layer"]
    if w.kv_cache_dtype in ("fp8", "int8"):
        args += ["--cache-type-k", "q8_0", "--cache-type-v", "q8_0", "-fa", "on"]
    return shlex.join(args) + "\n# -c is the total context of all -np slots: context x concurrency"
