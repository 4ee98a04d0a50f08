"""Serving: decode and prefill on the roofline (Williams et al. 2009, applied to LLM decoding as in Pope et al. 2022,
"Efficiently Scaling Transformer Inference", sec. 2), continuous batching, and the KV capacity left over.

``workload.concurrency`` sequences are served by each replica (``tp x pp`` GPUs); the plan runs ``dp`` replicas.
One decode step of one pipeline stage with B sequences:
  t_mem  = (weight bytes read + B x context x KV bytes/token) / (bandwidth x engine bandwidth efficiency)
  t_comp = B x (2 N + attention) / (tp x pp) / (peak x engine FLOP efficiency)
  t_step = max(t_mem, t_comp) + 2 x layers/pp TP all-reduces + engine overhead
Continuous batching interleaves the prefills of replacement requests: per decode step the replica also prefills
B x P / O prompt tokens, so TPOT = pp x (t_step + that prefill share). TTFT = prefill of one prompt + queueing
behind other prefills (M/D/1 mean wait) + half a decode step.
Deliberately ignores: speculative decoding, prefix caching, chunked-prefill tuning, request length spread.
"""

from __future__ import annotations

import math

from llmsizer.compute.flops import forward_flops
from llmsizer.compute.hardware import GpuFacts, achieved_rate, compute_data, gpu_facts
from llmsizer.compute.network import ALL_REDUCE, collective_seconds, link
from llmsizer.explain import Step
from llmsizer.memory import MemoryBreakdown, estimate_memory, usable_memory_bytes
from llmsizer.memory.inference import kv_bytes_per_token
from llmsizer.record import record
from llmsizer.specs.architecture import ledger
from llmsizer.specs.gpu import GpuSpec
from llmsizer.specs.model import ModelSpec
from llmsizer.workload.choices import Precision, Quant
from llmsizer.workload.defaults import resolved
from llmsizer.workload.job import Layout, Workload


@record
class InferenceEstimate:
    ttft_seconds: float
    tpot_seconds: float
    tokens_per_second: float  # output tokens/s of the whole plan at workload.concurrency
    max_concurrency: int  # sequences of workload.context_tokens that fit at once on one replica (tp x pp GPUs)
    saturation_concurrency: int  # per-replica concurrency past which decode turns compute-bound; 0 = never
    steps: tuple[Step, ...] = ()
    prefill_seconds: float = 0.0  # one prompt, alone on the replica
    decode_step_seconds: float = 0.0  # one decode step of the replica's batch, prefills excluded
    bound: str = "memory"  # "memory" or "compute": which roofline side limits the decode step
    requests_per_second: float = 0.0  # whole plan


def engine_profile(engine: str):  # noqa: ANN201 - the engine's namespace from data/compute.yaml
    """The efficiency profile of an inference engine (``vllm``, ``sglang``, ``trt-llm``, ``llama.cpp``...)."""
    from llmsizer.errors import CatalogError

    engines = compute_data().engines
    try:
        return engines[engine]
    except KeyError:
        raise CatalogError(f"data/compute.yaml: no engine profile for '{engine}' (have: {', '.join(engines)})") from None


def engine_overhead_s(eng, kind: str, layers: float) -> float:  # noqa: ANN001
    """Scheduler, sampling and launch overhead of one engine step: per step (by device kind) + per layer."""
    return eng.step_overhead_s_by_kind.get(kind, eng.step_overhead_s) + eng.layer_overhead_s * layers


def matmul_dtype(w: Workload, g: GpuFacts) -> str:
    """The dtype of the matmuls: FP8 weights on FP8-capable GPUs run FP8 GEMMs; everything else computes in the
    activation precision (weight-only int4/int8/GGUF/NF4 are dequantized to it)."""
    if (w.quant is Quant.fp8 or w.precision is Precision.fp8) and g.peak["fp8"] > g.peak["bf16"]:
        return "fp8"
    return "bf16" if w.precision is Precision.fp8 else w.precision.value


def expected_experts_touched(experts: int, k: int, tokens: float) -> float:
    """Distinct routed experts that ``tokens`` tokens visit in one MoE layer under uniform routing:
    ``E (1 - (1 - k/E)^B)``. Real routers are skewed, so this is an upper bound on the bytes read."""
    if experts == 0:
        return 0.0
    return experts * (1.0 - (1.0 - k / experts) ** tokens)


def estimate_inference(model: ModelSpec, gpu: GpuSpec, workload: Workload, layout: Layout,
                       memory: MemoryBreakdown | None = None, *, explain: bool = False) -> InferenceEstimate:
    """TTFT, TPOT, throughput, max and saturation concurrency of serving ``model`` on ``layout`` (module docstring).
    ``memory``: the layout's ``estimate_memory`` when the caller has it (the search does); computed otherwise."""
    w = resolved(model, workload)
    if memory is None:
        memory = estimate_memory(model, gpu, w, layout)
    p = compute_data().training
    eng = engine_profile(w.engine.value)
    led = ledger(model)
    g = gpu_facts(gpu)
    tp, pp, dp = layout.tp, layout.pp, layout.dp
    P, O = w.prompt_tokens, w.output_tokens
    c_rep = w.concurrency  # sequences per replica
    b_stage = max(1, math.ceil(c_rep / pp)) if pp > 1 else c_rep  # sequences per stage step
    layers_here = led.layers / pp
    quantized = w.quant is not Quant.none and w.quant is not Quant.fp8
    moe = model.moe

    dtype = matmul_dtype(w, g)
    _, rate = achieved_rate(g, dtype, eng.flop_efficiency, p.fp8_speedup_vs_bf16)
    if quantized:
        rate *= eng.quant_flop_efficiency
    bw = g.bandwidth * eng.bandwidth_efficiency * (eng.quant_bandwidth_efficiency if quantized else 1.0)

    # bytes each GPU streams per decode step: its weights minus the embedding table (gathered, not streamed), the
    # routed experts only as far as the batch touches them
    total = float(led.total_params)
    w_gpu = memory.weights_bytes
    emb_frac = (0.0 if model.tied_embeddings else float(led.params.embedding)) / total
    exp_frac = float(led.params.routed_experts) / total
    touched = expected_experts_touched(moe.experts, moe.experts_per_token, b_stage) / moe.experts if moe else 0.0
    w_read = w_gpu * (1.0 - emb_frac - exp_frac + exp_frac * touched)
    kv_tok = kv_bytes_per_token(model, w, layout)  # per GPU
    ctx_decode = P + O / 2.0  # mean context during decode
    kv_read = b_stage * ctx_decode * kv_tok

    fpt_decode = forward_flops(led, ctx_decode)
    t_mem = (w_read + kv_read) / bw
    t_comp = b_stage * fpt_decode / (tp * pp) / rate
    lk = link(g, layout.gpus_per_node, tp, p, latency_s=eng.allreduce_latency_s)
    hidden_bytes = model.hidden_size * p.activation_bytes
    t_ar = 2.0 * layers_here * collective_seconds(ALL_REDUCE, tp, b_stage * hidden_bytes, lk) if tp > 1 else 0.0
    t_over = engine_overhead_s(eng, g.kind, layers_here)
    t_step = max(t_mem, t_comp) + t_ar + t_over

    # prefill of one prompt (compute-bound; all pp stages in sequence; causal attention over P/2 on average)
    fpt_prefill = forward_flops(led, P / 2.0)
    t_pf_comp = P * fpt_prefill / tp / rate
    t_pf_mem = w_gpu * pp / bw  # every stage streams its weights at least once
    t_pf_ar = 2.0 * led.layers * collective_seconds(ALL_REDUCE, tp, P * hidden_bytes, lk) if tp > 1 else 0.0
    t_prefill = max(t_pf_comp, t_pf_mem) + t_pf_ar + pp * engine_overhead_s(eng, g.kind, layers_here)

    # continuous batching: each decode step also carries the prefill work of the requests that replace finished
    # ones (static batching pays the same prefill work, once per batch instead of spread over the steps)
    prefill_share = b_stage * P / O * fpt_prefill / (tp * pp) / rate
    tpot = pp * (t_step + prefill_share)
    tps = dp * c_rep / tpot

    # TTFT: own prefill + M/D/1 wait behind the prefills of other arrivals + half a decode step already in flight
    if c_rep > 1:
        lam = c_rep / (O * tpot + t_prefill)  # requests per second per replica (closed loop)
        rho = min(lam * t_prefill, 0.9)
        ttft = t_prefill * (1.0 + rho / (2.0 * (1.0 - rho))) + 0.5 * pp * t_step
    else:
        ttft = t_prefill

    # memory: sequences of `context` tokens that fit next to everything else on each GPU of a replica
    usable = usable_memory_bytes(gpu, w, layout)
    free = usable - (memory.total_bytes - memory.kv_cache_bytes)
    per_seq = kv_tok * w.context_tokens
    max_conc = int(free // per_seq) if per_seq > 0 and free > 0 else 0

    # saturation: B where B x flops/rate = (W + B x ctx x kv)/bw
    per_b_comp = fpt_decode / (tp * pp) / rate
    per_b_mem = ctx_decode * kv_tok / bw
    sat = math.ceil((w_read / bw) / (per_b_comp - per_b_mem)) * pp if per_b_comp > per_b_mem else 0

    steps: tuple[Step, ...] = ()
    if explain:
        from llmsizer.compute.explain import inference_steps

        steps = inference_steps(w, layout, eng, g, dict(
            w_gpu=w_gpu, w_read=w_read, kv_tok=kv_tok, kv_read=kv_read, bw=bw, rate=rate, dtype=dtype,
            fpt_decode=fpt_decode, t_mem=t_mem, t_comp=t_comp, t_ar=t_ar, t_over=t_over, t_step=t_step,
            prefill_share=prefill_share, tpot=tpot, t_prefill=t_prefill, ttft=ttft, tps=tps, max_conc=max_conc,
            sat=sat, usable=usable, free=free, b_stage=b_stage, quantized=quantized))
    return InferenceEstimate(
        ttft_seconds=ttft, tpot_seconds=tpot, tokens_per_second=tps, max_concurrency=max_conc,
        saturation_concurrency=sat, steps=steps, prefill_seconds=t_prefill, decode_step_seconds=t_step,
        bound="compute" if t_comp > t_mem else "memory", requests_per_second=tps / O,
    )
