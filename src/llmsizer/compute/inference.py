"""Serving: decode and prefill on the roofline (Williams et al. 2009, applied to LLM decoding as in Pope et al. 2022,
"Efficiently Scaling Transformer Inference", sec. 2), the KV capacity left over, and the replica under load.

``replica_costs`` folds one replica (``tp x pp`` GPUs) into the per-round coefficients of ``compute/serving.py``.
One decode step of one pipeline stage with B sequences:
  t_gemm = max(weight bytes read / bw, B x 2 N / (tp x pp) / rate)   (the weight matmuls; routed experts at bw_expert)
  t_attn = max(B x context x KV bytes/token / bw, B x attention / (tp x pp) / rate)   (attention over the KV)
  t_step = t_gemm + t_attn + 2 x layers/pp TP all-reduces + engine overhead
with bw = bandwidth x engine bandwidth efficiency, bw_expert = bandwidth x the grouped GEMMs' share (DeepGEMM),
rate = peak x engine FLOP efficiency (FP8: x the GEMM-level FP8 speed-up), engine overhead = per step + per layer
(kernel boundaries, Hazy Research 2025). The two rooflines are separate because the kernels are (Williams et al.
2009 bound each kernel by its own bytes and FLOPs): a large batch makes the matmuls compute-bound while the
attention kernels still stream every sequence's KV cache.
``estimate_inference`` then puts the replica under its load: ``workload.concurrency`` requests in flight per replica
(closed loop), or ``workload.request_rate`` requests/s spread over the plan's ``dp`` replicas (open loop), or a
disaggregated split (``compute/serving_disagg.py``). TTFT and TPOT come from continuous batching with chunked
prefill, the prefill queue and the KV slots (docs/serving.md).
With ``layout.attention_dp`` each GPU holds the whole attention weights and its own sequences' KV (memory/kv.py).
Deliberately ignores: request length spread, preemption, the draft model's cost in speculative decoding, expert
load imbalance.
"""

from __future__ import annotations

import math

from llmsizer.compute.flops import forward_flops
from llmsizer.compute.hardware import GpuFacts, achieved_rate, compute_data, gpu_facts
from llmsizer.compute.network import ALL_REDUCE, collective_seconds, link
from llmsizer.compute.serving import Load, ReplicaCosts, closed_loop, open_loop
from llmsizer.compute.serving_disagg import disaggregated
from llmsizer.data.serving import engine_serving, serving_data
from llmsizer.explain import Step
from llmsizer.memory import MemoryBreakdown, estimate_memory, usable_memory_bytes
from llmsizer.memory.inference import engine_memory, kv_bytes_per_token
from llmsizer.record import record
from llmsizer.specs.architecture import ledger
from llmsizer.specs.gpu import GpuSpec
from llmsizer.specs.model import ModelSpec
from llmsizer.workload.choices import Precision, Quant
from llmsizer.workload.defaults import resolved
from llmsizer.workload.job import Constraints, Layout, Workload


@record
class InferenceEstimate:
    ttft_seconds: float  # mean time to first token at the load (closed loop: workload.concurrency; open: request_rate)
    tpot_seconds: float  # mean time per output token after the first
    tokens_per_second: float  # output tokens/s of the whole plan at that load
    max_concurrency: int  # sequences of workload.context_tokens that fit at once on one replica (tp x pp GPUs)
    saturation_concurrency: int  # per-replica concurrency past which decode turns compute-bound; 0 = never
    steps: tuple[Step, ...] = ()
    prefill_seconds: float = 0.0  # one prompt, alone on the replica
    decode_step_seconds: float = 0.0  # one decode round of the replica's running batch, prefills excluded
    bound: str = "memory"  # "memory" or "compute": which roofline side limits the decode step
    requests_per_second: float = 0.0  # whole plan
    load: Load | None = None  # the replica's operating point (compute/serving.py): percentiles, queueing
    costs: ReplicaCosts | None = None  # the replica's step-time model, for sweeps and capacity planning
    sla_met: bool | None = None  # the latency targets met at their percentile (None: no targets; search sets it)

    @property
    def replica_concurrency(self) -> int:
        """Sequences one replica can run at once: the KV slots, capped by the engine's sequence limit."""
        return min(self.max_concurrency, self.costs.max_seqs) if self.costs is not None else self.max_concurrency


def sla_percentile(c: Constraints | None) -> float:
    """The percentile latency targets are met at: the one given, else data/serving.yaml's default."""
    if c is not None and c.sla_percentile is not None:
        return c.sla_percentile
    return serving_data().sla.percentile


def engine_profile(engine: str):  # noqa: ANN201 - the engine's namespace from data/compute.yaml
    """The efficiency profile of an inference engine (``vllm``, ``sglang``, ``trt-llm``, ``llama.cpp``...)."""
    from llmsizer.data.serving import runtime_of
    from llmsizer.errors import CatalogError

    engines = compute_data().engines
    try:
        return engines[engine] if engine in engines else engines[runtime_of(engine)]
    except KeyError:
        raise CatalogError(f"data/compute.yaml: no engine profile for '{engine}' (have: {', '.join(engines)})") from None


def gemm_ceiling_ratio(g: GpuFacts, eng) -> float:
    """This GPU's measured GEMM ceiling over the one the engine's FLOP efficiency was calibrated on
    (data/compute.yaml ``flop_efficiency_reference``); 1 for engines calibrated on the devices themselves."""
    ref = eng.flop_efficiency_reference
    if ref is None:
        return 1.0
    return g.mamf_fraction / next(c.mamf_fraction for c in compute_data().gpu_classes if c.id == ref)


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


def replica_costs(model: ModelSpec, gpu: GpuSpec, workload: Workload, layout: Layout,
                  memory: MemoryBreakdown | None = None) -> tuple[ReplicaCosts, dict]:
    """The step-time model of one replica of ``layout`` (``compute/serving.py``), and the roofline figures behind
    it by name (for ``--explain``)."""
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
    # FP8 matmuls at the GEMM-level FP8 speed-up (data/compute.yaml inference), not training's end-to-end one
    inf_p = compute_data().inference
    _, rate = achieved_rate(g, dtype, eng.flop_efficiency * gemm_ceiling_ratio(g, eng), inf_p.fp8_gemm_speedup_vs_bf16)
    if quantized:
        rate *= eng.quant_flop_efficiency
    q_bw = eng.quant_bandwidth_efficiency if quantized else 1.0
    bw = g.bandwidth * eng.bandwidth_efficiency * q_bw
    # routed experts stream through grouped GEMMs over a few tokens each (data/compute.yaml inference)
    bw_expert = g.bandwidth * min(eng.bandwidth_efficiency, inf_p.moe_expert_bandwidth_efficiency) * q_bw

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
    att_decode = 2.0 * led.attention_flops_per_token(ctx_decode)  # the attention-core share of fpt_decode
    w_exp_read = w_gpu * exp_frac * touched  # the routed experts' share of w_read
    t_w_read = (w_read - w_exp_read) / bw + w_exp_read / bw_expert
    t_mem = t_w_read + kv_read / bw
    t_comp = b_stage * fpt_decode / (tp * pp) / rate
    # operator by operator (Williams et al. 2009 apply the roofline per kernel): the weight matmuls and the
    # attention over the KV cache run one after the other, each bound by its own bytes or FLOPs
    t_gemm = max(t_w_read, b_stage * (fpt_decode - att_decode) / (tp * pp) / rate)
    t_attn = max(kv_read / bw, b_stage * att_decode / (tp * pp) / rate)
    lk = link(g, layout.gpus_per_node, tp, p, latency_s=eng.allreduce_latency_s)
    hidden_bytes = model.hidden_size * p.activation_bytes
    t_ar = 2.0 * layers_here * collective_seconds(ALL_REDUCE, tp, b_stage * hidden_bytes, lk) if tp > 1 else 0.0
    t_over = engine_overhead_s(eng, g.kind, layers_here)
    t_step = t_gemm + t_attn + t_ar + t_over

    # prefill of one prompt alone (compute-bound; all pp stages in sequence; causal attention over P/2 on average)
    fpt_prefill = forward_flops(led, P / 2.0)
    t_pf_comp = P * fpt_prefill / tp / rate
    if layout.attention_dp and tp > 1:
        # attention data parallelism: one prompt's attention (its projections and the attention core) runs on the
        # one GPU that holds its sequence; only the MLPs and experts spread over the tp GPUs
        f_attn = 2.0 * led.params.attention + 2.0 * led.attention_flops_per_token(P / 2.0)
        t_pf_comp = P * ((fpt_prefill - f_attn) / tp + f_attn) / rate
    # every stage streams its weights at least once (the routed experts through their grouped GEMMs)
    t_pf_mem = (w_gpu * (1.0 - exp_frac) / bw + w_gpu * exp_frac / bw_expert) * pp
    t_pf_ar = 2.0 * led.layers * collective_seconds(ALL_REDUCE, tp, P * hidden_bytes, lk) if tp > 1 else 0.0
    t_prefill = max(t_pf_comp, t_pf_mem) + t_pf_ar + pp * engine_overhead_s(eng, g.kind, layers_here)

    # memory: sequences of `context` tokens that fit next to everything else on each GPU of a replica
    usable = usable_memory_bytes(gpu, w, layout)
    free = usable - (memory.total_bytes - memory.kv_cache_bytes)
    per_seq = kv_tok * w.context_tokens
    max_conc = int(free // per_seq) if per_seq > 0 and free > 0 else 0

    # the replica under load (compute/serving.py): continuous batching with chunked prefill
    sched = engine_serving(w.engine.value)
    small = engine_memory(w).is_small(gpu)
    c = ReplicaCosts()
    c.tp, c.pp, c.layers, c.link, c.hidden_bytes = tp, pp, led.layers, lk, hidden_bytes
    c.bw, c.bw_expert, c.rate, c.kv_tok, c.ctx = bw, bw_expert, rate, kv_tok, ctx_decode
    c.w_dense = w_gpu * (1.0 - emb_frac - exp_frac)
    c.w_expert = w_gpu * exp_frac
    c.experts, c.top_k = (moe.experts, moe.experts_per_token) if moe else (0, 0)
    c.f_dec, c.f_pf, c.t_over = fpt_decode, fpt_prefill, t_over
    c.a_dec, c.a_pf = att_decode, 2.0 * led.attention_flops_per_token(P / 2.0)
    c.prompt, c.output = max(P * (1.0 - w.prefix_cache_hit), 1.0), O
    k = w.speculative_tokens
    a = w.speculative_acceptance if w.speculative_acceptance is not None else serving_data().speculative.acceptance
    # expected tokens per verification step with k drafts at acceptance rate a (Leviathan et al. 2023, eq. 1)
    c.spec_tokens, c.spec_yield = k, ((1.0 - a ** (k + 1)) / (1.0 - a) if k else 1.0)
    c.continuous = (w.batching or sched.scheduler) == "continuous"
    c.budget = float(sched.step_tokens or (engine_memory(w).prefill_small if small else engine_memory(w).prefill)
                     or P)
    c.max_seqs = (sched.max_num_seqs_small_gpu if small and sched.max_num_seqs_small_gpu else sched.max_num_seqs)
    if layout.attention_dp and sched.attention_dp_limits == "per_rank":
        # every attention rank schedules its own batch and token budget (data/serving.yaml attention_dp_limits)
        c.budget, c.max_seqs = c.budget * tp, c.max_seqs * tp
    # the engine's KV pool: what is left after the weights and the profiled transient (TRT-LLM keeps 10% back)
    slots = max_conc
    if sched.kv_allocation == "on_demand" and per_seq > 0 and free > 0:
        # blocks allocated as sequences grow: a steady mix holds prompt + output / 2 tokens each on average
        slots = int(free // (kv_tok * min(w.context_tokens, ctx_decode)))
    c.slots = float(max(int(slots * sched.kv_cache_fraction), 1))
    c.kv_link_bw = g.scaleout_bw  # disaggregated serving sends the KV cache between replicas over it
    c.ready()
    return c, dict(
        w_gpu=w_gpu, w_read=w_read, kv_tok=kv_tok, kv_read=kv_read, bw=bw, rate=rate, dtype=dtype,
        fpt_decode=fpt_decode, t_mem=t_mem, t_comp=t_comp, t_ar=t_ar, t_over=t_over, t_step=t_step,
        gemm_compute=t_gemm > t_w_read, t_w_read=t_w_read,
        t_prefill=t_prefill, layers_here=layers_here, bw_expert=bw_expert if moe else None, max_conc=max_conc,
        usable=usable, free=free, b_stage=b_stage, quantized=quantized,
        eng=eng, g=g)


def estimate_inference(model: ModelSpec, gpu: GpuSpec, workload: Workload, layout: Layout,
                       memory: MemoryBreakdown | None = None, *, explain: bool = False,
                       constraints: Constraints | None = None) -> InferenceEstimate:
    """TTFT, TPOT, throughput, max and saturation concurrency of serving ``model`` on ``layout`` (module docstring).
    ``memory``: the layout's ``estimate_memory`` when the caller has it (the search does); computed otherwise.
    ``constraints``: the SLA's percentile is reported next to p50/p90/p99 when given."""
    w = resolved(model, workload)
    c, v = replica_costs(model, gpu, w, layout, memory)
    dp, O = layout.dp, w.output_tokens
    pct = (sla_percentile(constraints),) if constraints is not None else ()
    if layout.prefill_replicas and w.request_rate is not None:
        load = disaggregated(c, w.request_rate, layout.prefill_replicas, dp - layout.prefill_replicas, pct)
    elif w.request_rate is not None:
        load = open_loop(c, w.request_rate / dp, pct)
    else:
        load = closed_loop(c, w.concurrency, pct)
    ttft, tpot = load.ttft_seconds, load.tpot_seconds
    tps = dp * load.request_rate * O

    # saturation: B where the weight matmuls turn compute-bound, B x (matmul FLOPs)/rate = W/bw (the attention
    # kernels stay bound by the KV bytes: a decode token's attention does ~2 FLOPs per byte of KV read)
    per_b_comp = (c.f_dec - c.a_dec) / (c.tp * c.pp) / c.rate
    sat = math.ceil(v["t_w_read"] / per_b_comp) * c.pp if per_b_comp > 0 else 0

    steps: tuple[Step, ...] = ()
    if explain:
        from llmsizer.compute.explain import inference_steps

        steps = inference_steps(w, layout, v.pop("eng"), v.pop("g"), dict(
            v, prefill_share=tpot - v["t_step"], tpot=tpot, ttft=ttft, tps=tps, sat=sat, load=load))
    return InferenceEstimate(
        ttft_seconds=ttft, tpot_seconds=tpot, tokens_per_second=tps, max_concurrency=v["max_conc"],
        saturation_concurrency=sat, steps=steps, prefill_seconds=v["t_prefill"],
        decode_step_seconds=load.decode_round_seconds, bound="compute" if v["gemm_compute"] else "memory",
        requests_per_second=tps / O, load=load, costs=c,
    )
