"""FLOPs, training time, inference latency/throughput, cost and energy, as pure functions.

All estimates are functions of (model, gpu, workload, layout).

The default path is plain float arithmetic over quantities cached per model (``functools.lru_cache`` on the frozen
``ModelSpec``) and per GPU (an identity cache on the ``GpuSpec`` object); ``Step`` objects for ``plan --explain``
are built only when ``explain=True``. For the planner, ``training_tokens_per_second`` runs the step model of
``estimate_training`` (``_training_step``, shared) without building result objects, and ``TrainingThroughputBound``
bounds it from above over whole families of layouts (branch and bound; docs/performance.md).

Conventions (docs/methodology.md, part II, has the derivations and the calibration table):

- FLOPs count a multiply-add as 2. ``N`` is the number of weights that one token multiplies (every linear layer
  a token passes through, the LM head included, the input embedding excluded: it is a lookup); for MoE only the
  routed experts a token visits (``architecture.linear_layers(m)[i].active_count``).
- Training *model* FLOPs per token follow PaLM (Chowdhery et al. 2022, appendix B) and Megatron-LM (Narayanan
  et al. 2021, eq. 3): ``6 N + 6 s sum_l H (d_qk + d_v)``, i.e. ``6N + 12 l s h`` for standard attention, the
  attention term counted over the full ``s x s`` score matrix as those papers do (a causal kernel executes about
  half of it; the calibrated efficiencies absorb that). Dividing by 6 and multiplying by 8 and by ``B s`` gives
  back Megatron's ``96 B s l h^2 (1 + s/6h + V/16lh)`` for full recompute.
- *Hardware* FLOPs add what recomputation re-executes: a whole forward pass (``2N`` + forward attention) for full
  recompute, the attention core only for selective recompute (Korthikanti et al. 2022). MFU uses model FLOPs,
  HFU hardware FLOPs, both over the dense peak of the precision in use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from llmsizer.architecture import count_params, is_lora_target, linear_layers
from llmsizer.catalog import load_data_yaml, load_validated
from llmsizer.errors import CatalogError
from llmsizer.explain import Step
from llmsizer.memory import (
    MemoryBreakdown,
    effective_bits_per_weight,
    kv_cache_bytes_per_token,
    usable_memory_bytes,
)
from llmsizer.specs import GpuSpec, ModelSpec
from llmsizer.units import HOUR_S, dtype_bytes
from llmsizer.workload import Layout, LoraTargets, Mode, Offload, Precision, Quant, Recompute, Workload

if TYPE_CHECKING:  # the data records' annotation vocabulary, resolved by validation.py (see specs.py)
    from typing import Annotated

    from pydantic import Field

    from llmsizer.validation import Source

# ================================================================================================== results


@dataclass(frozen=True)
class TrainingEstimate:
    tokens_per_second: float  # whole plan
    mfu: float
    hfu: float
    flops_per_token: float  # model FLOPs per token (forward + backward)
    seconds: float | None  # for workload.tokens; None when unknown
    gpu_hours: float | None
    energy_kwh: float | None  # GPU board energy (no PUE, no host)
    steps: tuple[Step, ...] = ()
    hardware_flops_per_token: float = 0.0  # model FLOPs + recomputation
    step_seconds: float = 0.0  # one optimizer step
    global_batch_tokens: int = 0  # tokens per optimizer step actually used (rounded to whole micro-batches)
    grad_accumulation: int = 1  # micro-batches per step per pipeline (m)
    bubble_fraction: float = 0.0  # share of the step lost to the pipeline bubble
    comm_fraction: float = 0.0  # share of the step spent in exposed communication/offload
    facility_energy_kwh: float | None = None  # energy_kwh x PUE
    goodput: float = 1.0  # share of wall time that trains (restarts after failures excluded); seconds include it


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class CostEstimate:
    usd_per_hour: float
    usd_total: float | None
    usd_per_million_output_tokens: float | None = None
    energy_kwh: float | None = None
    steps: tuple[Step, ...] = ()
    facility_energy_kwh: float | None = None  # energy_kwh x PUE
    price_usd_per_gpu_hour: float = 0.0
    price_basis: str = "rental"  # "rental" (catalog/override) or "amortized" (purchase + power)
    kwh_per_million_output_tokens: float | None = None


# ===================================================================================== data (data/compute.yaml)


class _Data:
    """Base of the records of ``data/compute.yaml``: frozen dataclasses checked by ``validation.validate``."""

    __pydantic_config__ = {"extra": "forbid"}


@dataclass(frozen=True, kw_only=True)
class TrainingParams(_Data):
    step_efficiency: Annotated[float, Field(gt=0, le=1)]
    step_efficiency_source: str
    size_factor_k: Annotated[float, Field(ge=0)]
    size_factor_source: str
    fp8_speedup_vs_bf16: Annotated[float, Field(ge=1)]
    fp8_source: str
    moe_compute_efficiency: Annotated[float, Field(gt=0, le=1)]
    moe_source: str
    dequant_bandwidth_efficiency: Annotated[float, Field(gt=0, le=1)]
    qlora_source: str
    pretrain_global_batch_tokens: Annotated[int, Field(gt=0)]
    finetune_global_batch_sequences: Annotated[int, Field(gt=0)]
    global_batch_source: str
    scaleup_bus_efficiency: Annotated[float, Field(gt=0, le=1)]
    scaleout_bus_efficiency: Annotated[float, Field(gt=0, le=1)]
    bus_efficiency_source: str
    scaleup_latency_s: Annotated[float, Field(ge=0)]
    scaleout_latency_s: Annotated[float, Field(ge=0)]
    latency_source: str
    dp_overlap: Annotated[float, Field(ge=0, le=1)]
    tp_overlap: Annotated[float, Field(ge=0, le=1)]
    moe_all_to_all_overlap: Annotated[float, Field(ge=0, le=1)]
    overlap_source: str
    offload_pcie_bytes_per_s: Annotated[float, Field(gt=0)]
    cpu_adam_seconds_per_param: Annotated[float, Field(ge=0)]
    nvme_bytes_per_s: Annotated[float, Field(gt=0)]
    offload_source: str
    interruptions_per_gpu_hour: Annotated[float, Field(ge=0)]
    hours_lost_per_interruption: Annotated[float, Field(ge=0)]
    goodput_source: str
    activation_bytes: Annotated[float, Field(gt=0)]
    power_fraction: Annotated[float, Field(gt=0, le=1)]
    power_source: str


@dataclass(frozen=True, kw_only=True)
class GpuClass(_Data):
    id: str
    ids: tuple[str, ...] = ()
    vendor: str | None = None
    kind: str | None = None
    scaleup: str | None = None
    form_factor_contains: str | None = None
    exclude_form_factor_contains: str | None = None
    mamf_fraction: Annotated[float, Field(gt=0, le=1)]
    source: str

    def matches(self, gpu: GpuSpec) -> bool:
        if self.ids:
            return gpu.id in self.ids
        ff = gpu.form_factor.lower()
        return (
            (self.vendor is None or gpu.vendor == self.vendor)
            and (self.kind is None or gpu.kind == self.kind)
            and (self.scaleup is None or gpu.scaleup == self.scaleup)
            and (self.form_factor_contains is None or self.form_factor_contains.lower() in ff)
            and (self.exclude_form_factor_contains is None or self.exclude_form_factor_contains.lower() not in ff)
        )


@dataclass(frozen=True, kw_only=True)
class EngineProfile(_Data):
    bandwidth_efficiency: Annotated[float, Field(gt=0, le=1)]
    flop_efficiency: Annotated[float, Field(gt=0, le=1)]
    quant_flop_efficiency: Annotated[float, Field(gt=0, le=1)]
    quant_bandwidth_efficiency: Annotated[float, Field(gt=0, le=1)]
    step_overhead_s: Annotated[float, Field(ge=0)]
    step_overhead_s_by_kind: dict[str, float] = field(default_factory=dict)
    layer_overhead_s: Annotated[float, Field(ge=0)]
    allreduce_latency_s: Annotated[float, Field(ge=0)]
    continuous_batching: bool
    source: str

    def overhead_s(self, kind: str, layers: float) -> float:
        return self.step_overhead_s_by_kind.get(kind, self.step_overhead_s) + self.layer_overhead_s * layers


@dataclass(frozen=True, kw_only=True)
class CostParams(_Data):
    inference_power_fraction: Annotated[float, Field(gt=0, le=1)]
    inference_power_source: str
    pue: Annotated[float, Field(ge=1)]
    pue_source: str
    amortization_years: Annotated[float, Field(gt=0)]
    amortization_utilization: Annotated[float, Field(gt=0, le=1)]
    electricity_usd_per_kwh: Annotated[float, Field(ge=0)]
    amortization_source: str


@dataclass(frozen=True, kw_only=True)
class CalibrationPoint(_Data):
    id: str
    quantity: str
    published: float
    unit: str
    source: Source
    derivation: str | None = None
    tolerance: Annotated[float, Field(gt=0)]
    known_deviation: str | None = None


@dataclass(frozen=True, kw_only=True)
class ComputeData(_Data):
    """The validated content of ``data/compute.yaml``."""

    schema_version: int
    training: TrainingParams
    gpu_classes: Annotated[tuple[GpuClass, ...], Field(min_length=1)]
    engines: dict[str, EngineProfile]
    cost: CostParams
    calibration: tuple[CalibrationPoint, ...] = ()


@lru_cache(maxsize=1)
def compute_data() -> ComputeData:
    """Load and validate ``data/compute.yaml`` once (lazily, on first use; from the disk cache when unchanged)."""
    return load_validated("compute.yaml", ComputeData, load_data_yaml)


def engine_profile(engine: str) -> EngineProfile:
    """The efficiency profile of an inference engine (``vllm``, ``sglang``, ``trt-llm``, ``llama.cpp``...)."""
    engines = compute_data().engines
    try:
        return engines[engine]
    except KeyError:
        have = ", ".join(engines)
        raise CatalogError(f"data/compute.yaml: no engine profile for '{engine}' (have: {have})") from None


# ========================================================================================= per-model facts


class ModelFacts(NamedTuple):  # a NamedTuple, not a dataclass: 5x cheaper to define at import (start-up time)
    """Per-model quantities every estimate needs; cached per ``ModelSpec``."""

    matmul_params_active: float  # N: weights one token multiplies (LM head included, input embedding excluded)
    matmul_params_total: float
    params_total: float
    routed_expert_params: float  # stored in routed experts (0 for dense)
    embedding_params: float  # input embedding table (read by lookup only), 0 if tied to the LM head
    attn_full: float  # 2 sum_l H (d_qk + d_v) over layers with global attention: fwd FLOPs per token per context token
    attn_window: float  # the same over sliding-window layers
    window: int  # sliding window (tokens); 0 if none
    layers: int
    hidden: int
    moe_layers: int
    experts: int
    experts_per_token: int


@lru_cache(maxsize=512)
def model_facts(m: ModelSpec) -> ModelFacts:
    """Count the FLOP-relevant quantities of ``m`` (architecture.linear_layers / count_params)."""
    lin = linear_layers(m)
    pc = count_params(m)
    n_active = float(sum(x.active_params for x in lin))
    n_total = float(sum(x.params for x in lin))
    if m.tied_embeddings:  # the LM head multiplies by the (shared) embedding matrix
        n_active += m.vocab_size * m.hidden_size
        n_total += m.vocab_size * m.hidden_size
    if m.mla is not None:
        d_qk = m.mla.qk_nope_head_dim + m.mla.qk_rope_head_dim
        d_v = m.mla.v_head_dim
    else:
        d_qk = d_v = m.head_dim_
    per_layer = 2.0 * m.heads * (d_qk + d_v)
    win_layers = m.sliding_window_layers if m.sliding_window else 0
    return ModelFacts(
        matmul_params_active=n_active,
        matmul_params_total=n_total,
        params_total=float(pc.total),
        routed_expert_params=float(pc.routed_experts),
        embedding_params=0.0 if m.tied_embeddings else float(pc.embedding),
        attn_full=per_layer * (m.layers - win_layers),
        attn_window=per_layer * win_layers,
        window=m.sliding_window or 0,
        layers=m.layers,
        hidden=m.hidden_size,
        moe_layers=m.moe_layers,
        experts=m.moe.experts if m.moe else 0,
        experts_per_token=m.moe.experts_per_token if m.moe else 0,
    )


def attention_flops_per_token(f: ModelFacts, context: float) -> float:
    """Forward attention-core FLOPs (QK^T and AV) of one token that attends to ``context`` tokens.

    ``sum_l 2 H (d_qk + d_v) c_l`` with ``c_l = min(context, window)`` on sliding-window layers (Vaswani et al. 2017;
    Mistral/Gemma-2 windows). Ignores softmax and masking FLOPs (a few per score).
    """
    return f.attn_full * context + f.attn_window * (min(context, f.window) if f.window else context)


@lru_cache(maxsize=2048)
def adapter_params(m: ModelSpec, rank: int, targets: LoraTargets) -> tuple[float, float]:
    """LoRA adapter parameters ``(stored, active per token)``: ``r (d_in + d_out)`` per targeted matrix.

    Hu et al. 2021 (LoRA) sec. 4; targets ``all`` = every attention and MLP/expert projection (QLoRA paper's
    default, Dettmers et al. 2023 sec. 4), ``qv`` = the query and value projections (LoRA paper sec. 7.1).
    The router and the LM head are never adapted.
    """
    stored = active = 0.0
    for x in linear_layers(m):
        if not is_lora_target(x, targets):
            continue
        per = rank * (x.in_features + x.out_features)
        stored += per * x.count
        active += per * x.active_count
    return stored, active


def training_flops_per_token(m: ModelSpec, w: Workload, recompute: Recompute) -> tuple[float, float]:
    """``(model, hardware)`` training FLOPs per token for ``w.mode`` at ``w.seq_len``.

    full fine-tune / pretrain: model = 6N + 3A, with A = forward attention FLOPs at context s (PaLM appendix B;
    Narayanan et al. 2021 eq. 3). LoRA/QLoRA: the frozen base needs its forward (2N) and the input-gradient
    matmuls of the backward (2N) but no weight gradients (Hu et al. 2021 sec. 4.2), so 4N + 6 N_adapter + 3A.
    Hardware FLOPs add the recomputed forward: full = + 2N (+ 2 N_adapter) + A; selective = + A (Korthikanti
    et al. 2022, sec. 5: only the attention core is recomputed).
    """
    return _training_flops(model_facts(m), m, w, recompute)


def _training_flops(f: ModelFacts, m: ModelSpec, w: Workload, recompute: Recompute) -> tuple[float, float]:
    n = f.matmul_params_active
    a = attention_flops_per_token(f, w.seq_len)
    if w.mode.is_adapter:
        _, n_ad = adapter_params(m, w.lora_rank, w.lora_targets)
        model = 4.0 * n + 6.0 * n_ad + 3.0 * a
        fwd = 2.0 * n + 2.0 * n_ad
    else:
        model = 6.0 * n + 3.0 * a
        fwd = 2.0 * n
    if recompute is Recompute.full:
        hw = model + fwd + a
    elif recompute is Recompute.selective:
        hw = model + a
    else:
        hw = model
    return model, hw


# =========================================================================================== per-GPU facts


class GpuFacts(NamedTuple):
    """Per-GPU quantities every estimate needs; cached per ``GpuSpec`` object."""

    peak: dict[str, float]  # dense FLOP/s by dtype (GpuSpec.peak_flops, fallbacks applied)
    bandwidth: float  # memory bytes/s
    scaleup_bw: float  # per GPU, one direction, bytes/s
    scaleout_bw: float  # per GPU, one direction, bytes/s (falls back to scale-up when the GPU has no NIC figure)
    domain: int  # GPUs reachable over the scale-up fabric
    gpus_per_node: int
    ridge: float  # bf16 FLOP per byte of memory traffic
    class_id: str
    mamf_fraction: float
    class_source: str
    kind: str
    tdp_w: float


_GPU_CACHE: dict[int, tuple[GpuSpec, GpuFacts]] = {}


def gpu_facts(gpu: GpuSpec) -> GpuFacts:
    """Per-GPU quantities, cached on the ``GpuSpec`` object (``dense_tflops`` is a dict, so specs are unhashable;
    an identity cache also keeps two user catalogs that reuse an id from sharing an entry)."""
    hit = _GPU_CACHE.get(id(gpu))
    if hit is not None and hit[0] is gpu:
        return hit[1]
    cls = next((c for c in compute_data().gpu_classes if c.matches(gpu)), compute_data().gpu_classes[-1])
    peak = {d: gpu.peak_flops(d) for d in ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4")}
    scaleup = gpu.scaleup_bandwidth_bytes_per_s
    facts = GpuFacts(
        peak=peak,
        bandwidth=gpu.memory_bandwidth_bytes_per_s,
        scaleup_bw=scaleup,
        scaleout_bw=gpu.scaleout_bandwidth_bytes_per_s or scaleup,
        domain=max(1, gpu.scaleup_domain),
        gpus_per_node=gpu.gpus_per_node,
        ridge=peak["bf16"] / gpu.memory_bandwidth_bytes_per_s,
        class_id=cls.id,
        mamf_fraction=cls.mamf_fraction,
        class_source=cls.source,
        kind=gpu.kind,
        tdp_w=gpu.tdp_watts,
    )
    if len(_GPU_CACHE) > 4096:
        _GPU_CACHE.clear()
    _GPU_CACHE[id(gpu)] = (gpu, facts)
    return facts


def _fast_domain(g: GpuFacts, layout: Layout) -> int:
    """GPUs one collective can span and still use scale-up bandwidth: the NVLink/xGMI domain, cut to the node
    unless the domain itself spans nodes (GB200 NVL72)."""
    return _fast_domain_of(g, layout.gpus_per_node)


def _fast_domain_of(g: GpuFacts, per_node: int) -> int:
    if g.domain > g.gpus_per_node:
        return g.domain
    return min(g.domain, per_node) if g.domain > 1 else min(g.gpus_per_node, per_node)


def _link(g: GpuFacts, layout: Layout, span: int, p: TrainingParams) -> tuple[float, float]:
    """(effective bytes/s per GPU, latency s) for a collective whose group spans ``span`` consecutive ranks."""
    return _link_of(g, layout.gpus_per_node, span, p)


def _link_of(g: GpuFacts, per_node: int, span: int, p: TrainingParams) -> tuple[float, float]:
    if span <= _fast_domain_of(g, per_node):
        return g.scaleup_bw * p.scaleup_bus_efficiency, p.scaleup_latency_s
    return g.scaleout_bw * p.scaleout_bus_efficiency, p.scaleout_latency_s


def size_factor(hidden: int, ridge: float, k: float) -> float:
    """``h / (h + k x ridge)``: the share of a training step that is matmul-bound rather than memory-bound.

    Memory-bound work per token per layer scales as ``h`` bytes, matmul work as ``h^2`` FLOPs; their time ratio is
    ``ridge / h`` up to a constant ``k`` (calibrated, data/compute.yaml). Ignores micro-batch shape effects.
    """
    return hidden / (hidden + k * ridge)


def training_efficiency(model: ModelSpec, gpu: GpuSpec) -> float:
    """Fraction of the dense peak that the compute kernels of a training step reach (before communication,
    pipeline bubble and precision): ``mamf_fraction x step_efficiency x size_factor (x moe_compute_efficiency)``."""
    f, g, p = model_facts(model), gpu_facts(gpu), compute_data().training
    eff = g.mamf_fraction * p.step_efficiency * size_factor(f.hidden, g.ridge, p.size_factor_k)
    return eff * p.moe_compute_efficiency if f.experts else eff


def _compute_rate(g: GpuFacts, precision: Precision, eff: float, p: TrainingParams) -> tuple[float, float]:
    """(peak of the precision in use, achieved FLOP/s). FP8 runs at the BF16 rate x fp8_speedup_vs_bf16, capped
    by the FP8/BF16 peak ratio (a GPU without FP8 units gets its BF16 rate)."""
    if precision is Precision.fp8:
        peak = g.peak["fp8"]
        speedup = min(p.fp8_speedup_vs_bf16, peak / g.peak["bf16"])
        return peak, g.peak["bf16"] * eff * speedup
    peak = g.peak[precision.value]
    return peak, peak * eff


def default_global_batch_tokens(w: Workload) -> int:
    """Tokens per optimizer step when the workload gives none (data/compute.yaml ``training``)."""
    if w.global_batch_tokens is not None:
        return w.global_batch_tokens
    p = compute_data().training
    if w.mode is Mode.pretrain:
        return p.pretrain_global_batch_tokens
    return p.finetune_global_batch_sequences * w.seq_len


# ================================================================================================ training


def _training_step(
    f: ModelFacts, g: GpuFacts, p: TrainingParams, model: ModelSpec, workload: Workload, tp: int, pp: int,
    dp: int, ep: int, zero: int, offload: Offload, recompute: Recompute, b: int, per_node: int, v: int,
) -> tuple:
    """The step model of ``estimate_training`` on plain numbers (no ``Layout``, no result object): the planner
    ranks candidates with ``training_tokens_per_second``, which runs exactly this code."""
    s = workload.seq_len
    model_fpt, hw_fpt = _training_flops(f, model, workload, recompute)

    size_f = size_factor(f.hidden, g.ridge, p.size_factor_k)
    eff = g.mamf_fraction * p.step_efficiency * size_f
    if f.experts:
        eff *= p.moe_compute_efficiency
    peak, rate = _compute_rate(g, workload.precision, eff, p)

    # the global batch is a target, not a by-product of the layout: a data-parallel group wider than the batch
    # leaves replicas with less than a micro-batch (or nothing) to do per step
    gbt = default_global_batch_tokens(workload)
    m, b_eff, tokens_step = _micro_batches(gbt, s, dp, b)
    tokens_mb = b_eff * s
    t_mb_compute = hw_fpt * tokens_mb / (tp * pp) / rate
    t_dequant = _dequant_seconds(f, g, p, model, workload, tp, pp, recompute)

    layers_here = f.layers / pp
    act_bytes = p.activation_bytes
    # tensor-parallel all-reduces: 2 forward + 2 backward per layer (+2 for the recomputed forward), each of
    # b x s x h activations (Narayanan et al. 2021 sec. 3.2; with sequence parallelism the reduce-scatter +
    # all-gather pair moves the same bytes, Korthikanti et al. 2022 sec. 4.2.2)
    t_tp = 0.0
    if tp > 1:
        bw, lat = _link_of(g, per_node, tp, p)
        n_ar = (6 if recompute is Recompute.full else 4) * layers_here
        t_tp = n_ar * (lat + 2.0 * (tp - 1) / tp * tokens_mb * f.hidden * act_bytes / bw) * (1.0 - p.tp_overlap)
    # MoE expert-parallel all-to-all: dispatch + combine, forward and backward (+ recomputed forward)
    t_a2a = 0.0
    if f.experts and ep > 1:
        bw, lat = _link_of(g, per_node, tp * ep, p)
        n_a2a = (6 if recompute is Recompute.full else 4) * f.moe_layers / pp
        per = lat + (ep - 1) / ep * tokens_mb * f.experts_per_token * f.hidden * act_bytes / max(tp, 1) / bw
        t_a2a = n_a2a * per * (1.0 - p.moe_all_to_all_overlap)

    # data-parallel traffic: what each GPU holds of the trainable weights (dense part over dp, experts over dp/ep)
    dense_tr, expert_tr = _trainable_per_gpu(f, model, workload, tp, pp, ep)
    t_dp_mb = t_dp_step = 0.0
    if dp > 1:
        one_pass = _dp_one_pass(f, g, p, workload, tp, dp, ep, per_node, dense_tr, expert_tr)
        if zero >= 3:
            # ZeRO-3 / FSDP full shard: all-gather weights for forward and backward, reduce-scatter gradients,
            # every micro-batch (Rajbhandari et al. 2020 sec. 7.2.1: 1.5x the all-reduce volume)
            t_dp_mb = 3.0 * one_pass
            if workload.mode.is_adapter:
                # the frozen base is sharded too (the memory model counts 1/dp of it), so it is all-gathered for
                # the forward and again for the backward pass of every micro-batch, in its stored precision
                bw, lat = _link_of(g, per_node, tp * dp, p)
                frozen = f.params_total * _stored_weight_bytes(model, workload) / (tp * pp)
                t_dp_mb += 2.0 * ((dp - 1) / dp * frozen / bw + lat)
        elif zero == 2:
            t_dp_mb = one_pass  # gradients reduce-scattered as they are produced, every micro-batch
            t_dp_step = one_pass  # updated weights all-gathered after the optimizer step
        else:
            t_dp_step = 2.0 * one_pass  # ring all-reduce: 2 (n-1)/n x bytes (ZeRO-1 = reduce-scatter + all-gather)
    t_dp_mb_exposed = max(t_dp_mb * (1.0 - p.dp_overlap), t_dp_mb - t_mb_compute)
    t_dp_step_exposed = max(t_dp_step * (1.0 - p.dp_overlap), t_dp_step - t_mb_compute * 2.0 / 3.0)

    # offload: gradients to host and weights back over PCIe, Adam on the CPU (ZeRO-Offload, Ren et al. 2021 sec. 4);
    # NVMe (ZeRO-Infinity) also streams the fp32 optimizer states (12 B/param) in and out
    t_off = 0.0
    if offload is not Offload.none:
        shard = (dense_tr + expert_tr) / (dp if zero >= 1 else 1)
        t_off = 2.0 * shard * 2.0 / p.offload_pcie_bytes_per_s + shard * p.cpu_adam_seconds_per_param
        if offload is Offload.nvme:
            t_off += 2.0 * shard * 12.0 / p.nvme_bytes_per_s

    # ZeRO-Infinity parameter offload (zero 3 + offload): the weights live in host memory, so every micro-batch
    # streams this GPU's shard of its stage's weights over PCIe for the forward pass and again for the backward
    # pass (Rajbhandari et al. 2021, ZeRO-Infinity sec. 5); prefetching hides it only behind compute. Frozen
    # weights (LoRA/QLoRA) stream too. Without this term offloading the weights looked almost free.
    t_stream = 0.0
    if offload is not Offload.none and zero >= 3:
        w_bytes = f.params_total * _stored_weight_bytes(model, workload) / (tp * pp)
        t_stream = 2.0 * w_bytes / dp / p.offload_pcie_bytes_per_s
        if offload is Offload.nvme:
            t_stream += 2.0 * w_bytes / dp / p.nvme_bytes_per_s
        t_stream = max(t_stream * (1.0 - p.dp_overlap), t_stream - t_mb_compute)

    # pipeline point-to-point: a micro-batch's activations cross each stage boundary forward and its gradients
    # backward, once per model chunk (v times with the interleaved schedule), each GPU sending its 1/tp slice
    # (Narayanan et al. 2021 sec. 2.2.2 and 4.1, the scatter/gather optimisation); the two neighbours sit tp x dp
    # ranks apart (Megatron's rank order), so across nodes unless both stages fit in one scale-up domain
    t_p2p = 0.0
    if pp > 1:
        bw, lat = _link_of(g, per_node, 2 * tp * dp, p)
        t_p2p = 2.0 * v * (lat + tokens_mb * f.hidden * act_bytes / tp / bw)

    t_mb = t_mb_compute + t_dequant + t_tp + t_a2a + t_dp_mb_exposed + t_stream + t_p2p
    # 1F1B bubble (pp - 1) micro-batch slots; an interleaved schedule with v model chunks per GPU divides it by v
    # (Narayanan et al. 2021 sec. 2.2.2). Layout.virtual_stages sets v (1: plain 1F1B, DeepSpeed's schedule).
    bubble_slots = (pp - 1) / v
    t_step = (m + bubble_slots) * t_mb + t_dp_step_exposed + t_off
    tps = tokens_step / t_step
    return (model_fpt, hw_fpt, size_f, eff, peak, rate, gbt, m, tokens_step, t_mb_compute, t_tp, t_a2a,
            t_dp_mb_exposed, t_dp_step_exposed, t_off, t_p2p, t_dequant, t_mb, bubble_slots, t_step, tps)


def _dequant_seconds(f: ModelFacts, g: GpuFacts, p: TrainingParams, model: ModelSpec, workload: Workload, tp: int,
                     pp: int, recompute: Recompute) -> float:
    """Seconds per micro-batch a quantized frozen base (QLoRA's NF4, LoRA with --quant) spends dequantizing its
    weights to bf16 before each matmul: the stored bits read and 2 bytes written per weight, once per pass over the
    layers (forward, backward, and the recomputed forward with full recomputation); memory-bound, so it does not
    grow with the micro-batch and matters most for short ones (Dettmers et al. 2023 sec. 3; data/compute.yaml)."""
    if not workload.mode.is_adapter or (workload.mode is not Mode.qlora and workload.quant is Quant.none):
        return 0.0
    passes = 3.0 if recompute is Recompute.full else 2.0
    per_weight = _stored_weight_bytes(model, workload) + dtype_bytes("bf16")
    return passes * f.params_total / (tp * pp) * per_weight / (g.bandwidth * p.dequant_bandwidth_efficiency)


@lru_cache(maxsize=256)
def _stored_weight_bytes(model: ModelSpec, workload: Workload) -> float:
    """Average bytes per weight as the memory model stores them for training: the training precision
    (units.DTYPE_BYTES), or for a quantized frozen base (QLoRA's NF4, LoRA with --quant) the quantization's
    effective bits per weight, unquantized embeddings and norms included (memory.effective_bits_per_weight)."""
    quant = workload.quant
    if workload.mode is Mode.qlora and quant is Quant.none:
        quant = Quant.nf4
    if workload.mode.is_adapter and quant is not Quant.none:
        return effective_bits_per_weight(model, quant) / 8.0
    return dtype_bytes(workload.precision.value)


def _goodput(n_gpus: int, p: TrainingParams) -> float:
    """Share of wall time that trains: 1 / (1 + GPUs x interruptions per GPU-hour x hours lost per interruption)."""
    return 1.0 / (1.0 + n_gpus * p.interruptions_per_gpu_hour * p.hours_lost_per_interruption)


def training_seconds(workload: Workload, tokens_per_second: float, gpu_count: int) -> float | None:
    """``estimate_training(...).seconds`` from the plan's throughput: tokens / (tokens/s x goodput)."""
    if workload.tokens is None:
        return None
    return workload.tokens / (tokens_per_second * _goodput(gpu_count, compute_data().training))


def _micro_batches(gbt: int, s: int, dp: int, b: int) -> tuple[int, int, int]:
    """(micro-batches per step m, sequences per micro-batch actually run, tokens per step) for micro-batch ``b``."""
    seqs_step = max(1.0, gbt / s)  # sequences per optimizer step
    per_replica = seqs_step / dp
    if per_replica >= b:
        m = math.ceil(per_replica / b - 1e-9)
        b_eff = b
        tokens_step = dp * m * b * s
    else:
        m = 1
        b_eff = max(1, math.ceil(per_replica - 1e-9))
        tokens_step = min(dp * b_eff, max(1, round(seqs_step))) * s  # idle replicas when per_replica < 1
    return m, b_eff, tokens_step


def _trainable_per_gpu(f: ModelFacts, model: ModelSpec, workload: Workload, tp: int, pp: int,
                       ep: int) -> tuple[float, float]:
    """(dense, expert) trainable parameters one GPU holds before ZeRO: what data parallelism reduces."""
    if workload.mode.is_adapter:
        stored_ad, _ = adapter_params(model, workload.lora_rank, workload.lora_targets)
        return stored_ad / (tp * pp), 0.0
    return (f.params_total - f.routed_expert_params) / (tp * pp), f.routed_expert_params / (tp * pp * ep)


def _dp_one_pass(f: ModelFacts, g: GpuFacts, p: TrainingParams, workload: Workload, tp: int, dp: int, ep: int,
                 per_node: int, dense_tr: float, expert_tr: float) -> float:
    """Seconds of one ring pass ((n-1)/n of this GPU's gradient bytes) over the data-parallel group."""
    grad_bytes_per = 4.0 if workload.precision is Precision.fp32 else 2.0
    bw, lat = _link_of(g, per_node, tp * dp, p)
    dp_e = max(dp // ep, 1)
    ring = (dp - 1) / dp * dense_tr * grad_bytes_per
    ring_e = (dp_e - 1) / dp_e * expert_tr * grad_bytes_per if dp_e > 1 else 0.0
    return (ring + ring_e) / bw + lat


def estimate_training(
    model: ModelSpec, gpu: GpuSpec, workload: Workload, layout: Layout, *, explain: bool = False
) -> TrainingEstimate:
    """Throughput, MFU/HFU, time, GPU-hours and energy of a training job on ``layout``.

    Step model (1F1B pipeline, Narayanan et al. 2021 sec. 2.2 and 3):
      t_mb   = hardware FLOPs x b x s / (tp x pp) / (peak x efficiency)    compute of one micro-batch on one GPU
               (+ exposed TP all-reduces, MoE all-to-alls, ZeRO-3 gathers of that micro-batch)
      m      = ceil(global batch tokens / (s x b x dp))                     micro-batches per step (grad accumulation);
               a DP group wider than the batch gets fewer sequences per micro-batch (or idle replicas), never a
               bigger batch than asked
      t_step = (m + (pp - 1) / v) x t_mb + exposed DP gradient reduction + offload transfers and CPU Adam
      tokens/s = dp x m x b x s / t_step;  MFU = tokens/s x model FLOPs per token / (GPUs x peak)
      seconds = tokens / (tokens/s x goodput), goodput = 1 / (1 + GPUs x failures per GPU-hour x hours lost each)
    ``v`` (interleaved pipeline chunks) is ``layout.virtual_stages``: the bubble is (pp - 1)/v slots and the
    pipeline's point-to-point sends (2 v per micro-batch, 1/tp of b x s x h each) are counted in t_mb.
    Deliberately ignores: zero-bubble/DualPipe schedules, context parallelism, data loading, stragglers, the
    optimizer step on the GPU (memory-bound, < 1% of a step at realistic batch sizes).
    """
    d = compute_data()
    p = d.training
    f = model_facts(model)
    g = gpu_facts(gpu)
    v = layout.virtual_stages if layout.pp > 1 else 1
    (model_fpt, hw_fpt, size_f, eff, peak, rate, gbt, m, tokens_step, t_mb_compute, t_tp, t_a2a, t_dp_mb_exposed,
     t_dp_step_exposed, t_off, t_p2p, t_dequant, t_mb, bubble_slots, t_step, tps) = _training_step(
        f, g, p, model, workload, layout.tp, layout.pp, layout.dp, layout.ep, layout.zero, layout.offload,
        layout.recompute, layout.micro_batch, layout.gpus_per_node, v)
    n_gpus = layout.tp * layout.pp * layout.dp
    mfu = tps * model_fpt / (n_gpus * peak)
    hfu = tps * hw_fpt / (n_gpus * peak)
    goodput = _goodput(n_gpus, p)
    seconds = workload.tokens / (tps * goodput) if workload.tokens is not None else None
    gpu_hours = seconds * n_gpus / HOUR_S if seconds is not None else None
    energy = (n_gpus * g.tdp_w * p.power_fraction * seconds / HOUR_S / 1000.0) if seconds is not None else None
    facility = energy * d.cost.pue if energy is not None else None
    bubble = bubble_slots * t_mb / t_step
    comm = (m + bubble_slots) * (t_tp + t_a2a + t_dp_mb_exposed) / t_step + (t_dp_step_exposed + t_off) / t_step

    steps: tuple[Step, ...] = ()
    if explain:
        steps = _training_steps(
            model, gpu, workload, layout, f, g, p, model_fpt, hw_fpt, size_f, eff, peak, rate, t_mb_compute,
            t_tp, t_a2a, t_dp_mb_exposed, t_dp_step_exposed, t_off, gbt, m, t_step, tps, mfu, hfu, seconds,
            gpu_hours, energy, facility, t_p2p, t_dequant,
        )
    return TrainingEstimate(
        tokens_per_second=tps, mfu=mfu, hfu=hfu, flops_per_token=model_fpt, seconds=seconds, gpu_hours=gpu_hours,
        energy_kwh=energy, steps=steps, hardware_flops_per_token=hw_fpt, step_seconds=t_step,
        global_batch_tokens=tokens_step, grad_accumulation=m, bubble_fraction=bubble, comm_fraction=comm,
        facility_energy_kwh=facility, goodput=goodput,
    )


def _training_steps(model, gpu, w, layout, f, g, p, model_fpt, hw_fpt, size_f, eff, peak, rate, t_mb_compute,
                    t_tp, t_a2a, t_dp_mb, t_dp_step, t_off, gbt, m, t_step, tps, mfu, hfu, seconds, gpu_hours,
                    energy, facility, t_p2p, t_dequant) -> tuple[Step, ...]:
    src_flops = ("Narayanan et al. 2021 (Megatron-LM, SC21) eq. 3; Chowdhery et al. 2022 (PaLM) app. B; "
                 "LoRA: Hu et al. 2021 sec. 4.2")
    out = []
    n = f.matmul_params_active
    if w.mode.is_adapter:
        _, n_ad = adapter_params(model, w.lora_rank, w.lora_targets)
        formula = "4 N + 6 N_adapter + 6 s sum_l H (d_qk + d_v)"
        inputs = {"N": n, "N_adapter": n_ad, "s": w.seq_len, "layers": f.layers}
        assumption = "frozen base: no weight-gradient matmuls; attention counted over the full s x s matrix"
    else:
        formula = "6 N + 6 s sum_l H (d_qk + d_v)  (= 6N + 12 l s h for standard attention)"
        inputs = {"N": n, "s": w.seq_len, "layers": f.layers}
        assumption = ("N = weights a token multiplies (MoE: active experts; LM head in, embedding lookup out); "
                      "attention counted over the full s x s matrix as PaLM/Megatron do")
    out.append(Step("model FLOPs per token", model_fpt, "FLOP", formula, inputs, src_flops, assumption))
    out.append(Step("hardware FLOPs per token", hw_fpt, "FLOP",
                    {"full": "model + 2N + forward attention", "selective": "model + forward attention",
                     "none": "model"}[layout.recompute.value],
                    {"recompute": layout.recompute.value, "model_flops_per_token": model_fpt},
                    "Korthikanti et al. 2022 (Reducing Activation Recomputation) sec. 5",
                    "recomputation re-executes the forward pass it saved memory on"))
    out.append(Step("compute efficiency", eff, "fraction",
                    "MAMF fraction x step efficiency x h / (h + k x ridge)"
                    + (" x MoE efficiency" if f.experts else ""),
                    {"class": g.class_id, "mamf_fraction": g.mamf_fraction, "step_efficiency": p.step_efficiency,
                     "h": f.hidden,
                     "ridge_flop_per_byte": round(g.ridge, 1), "k": p.size_factor_k, "size_factor": size_f},
                    g.class_source, p.step_efficiency_source + " " + p.size_factor_source))
    prec_formula = "bf16 peak x efficiency x fp8 speedup" if w.precision is Precision.fp8 else "peak x efficiency"
    out.append(Step("achieved FLOP/s per GPU", rate, "FLOP/s", prec_formula,
                    {"precision": w.precision.value, "peak_flops": peak, "efficiency": eff},
                    p.fp8_source if w.precision is Precision.fp8 else "GPU datasheet dense peak",
                    "FP8 speeds up GEMMs by 1.3-1.5x, not 2x" if w.precision is Precision.fp8 else ""))
    out.append(Step("compute time per micro-batch", t_mb_compute, "s",
                    "hardware FLOPs x b x s / (tp x pp) / achieved FLOP/s",
                    {"b": layout.micro_batch, "s": w.seq_len, "tp": layout.tp, "pp": layout.pp}, "", ""))
    if t_dequant:
        out.append(Step("dequantization time per micro-batch", t_dequant, "s",
                        "passes x weights / (tp x pp) x (stored bytes + 2 B bf16 written) / (bandwidth x efficiency); "
                        "passes = 2 (forward, backward) or 3 with full recompute",
                        {"stored_bytes_per_weight": _stored_weight_bytes(model, w),
                         "bandwidth_bytes_per_s": g.bandwidth, "efficiency": p.dequant_bandwidth_efficiency},
                        p.qlora_source, "one dequantization per weight per pass, not per token (bitsandbytes "
                        "dequantizes a layer's weight before its matmul); independent of the micro-batch size"))
    out.append(Step("micro-batches per step (grad accumulation)", m, "count",
                    "ceil(global batch tokens / (s x b x dp))",
                    {"global_batch_tokens": gbt, "s": w.seq_len, "b": layout.micro_batch, "dp": layout.dp},
                    p.global_batch_source, "default global batch when --global-batch is not given"))
    if layout.tp > 1:
        out.append(Step("exposed tensor-parallel all-reduce time per micro-batch", t_tp, "s",
                        "(4 or 6) x layers/pp x (latency + 2 (tp-1)/tp x b s h x 2 B / bandwidth)",
                        {"tp": layout.tp, "layers_per_gpu": f.layers / layout.pp},
                        "Narayanan et al. 2021 sec. 3.2; Korthikanti et al. 2022 sec. 4.2.2", p.overlap_source))
    if t_a2a:
        out.append(Step("exposed MoE all-to-all time per micro-batch", t_a2a, "s",
                        "4 x MoE layers/pp x (ep-1)/ep x b s k h x 2 B / bandwidth x (1 - overlap)",
                        {"ep": layout.ep, "k": f.experts_per_token}, "Lepikhin et al. 2020 (GShard) sec. 3",
                        p.overlap_source))
    if t_p2p:
        out.append(Step("pipeline point-to-point time per micro-batch", t_p2p, "s",
                        "2 x v x (latency + b s h x 2 B / tp / bandwidth): activations forward, gradients back, "
                        "once per chunk",
                        {"pp": layout.pp, "v": layout.virtual_stages, "tp": layout.tp},
                        "Narayanan et al. 2021 sec. 2.2.2 and 4.1 (scatter/gather)",
                        "not overlapped with compute (an upper bound; Megatron-LM can overlap it)"))
    if layout.dp > 1:
        out.append(Step("exposed data-parallel communication per step", t_dp_step + m * t_dp_mb, "s",
                        "all-reduce 2 (n-1)/n x grad bytes / bandwidth; ZeRO-3: 3 (n-1)/n x weight bytes per "
                        "micro-batch; exposed = max(comm x (1 - overlap), comm - overlappable compute)",
                        {"dp": layout.dp, "zero": layout.zero},
                        "Rajbhandari et al. 2020 (ZeRO) sec. 7; Li et al. 2020 (PyTorch DDP)", p.overlap_source))
    if layout.pp > 1:
        v = layout.virtual_stages
        out.append(Step("pipeline bubble", (layout.pp - 1) / (v * m), "fraction", "(pp - 1) / (v x m)",
                        {"pp": layout.pp, "m": m, "v": v},
                        "Narayanan et al. 2021 sec. 2.2.1 (1F1B) and 2.2.2 (interleaved, v chunks per GPU)",
                        "v = 1 is plain 1F1B (DeepSpeed's schedule); v > 1 is Megatron-LM's interleaved schedule, "
                        "which needs the micro-batches per step to be a multiple of pp"))
    if t_off:
        out.append(Step("offload time per step", t_off, "s",
                        "2 x shard x 2 B / PCIe + shard x CPU-Adam time (+ NVMe state traffic)",
                        {"offload": layout.offload.value}, "Ren et al. 2021 (ZeRO-Offload) sec. 4", p.offload_source))
    out.append(Step("step time", t_step, "s", "(m + (pp - 1) / v) x t_micro-batch + exposed DP + offload",
                    {"m": m, "pp": layout.pp}, "Narayanan et al. 2021 sec. 2.2", ""))
    out.append(Step("training throughput", tps, "tokens/s", "dp x m x b x s / step time",
                    {"dp": layout.dp, "m": m, "b": layout.micro_batch, "s": w.seq_len}, "", ""))
    out.append(Step("MFU", mfu, "fraction", "tokens/s x model FLOPs per token / (GPUs x peak)",
                    {"gpus": layout.gpu_count, "peak_flops": peak}, "Chowdhery et al. 2022 (PaLM) app. B", ""))
    out.append(Step("HFU", hfu, "fraction", "tokens/s x hardware FLOPs per token / (GPUs x peak)",
                    {"gpus": layout.gpu_count, "peak_flops": peak}, "Chowdhery et al. 2022 (PaLM) app. B", ""))
    if seconds is not None:
        goodput = seconds and w.tokens / (tps * seconds)
        out.append(Step("goodput", goodput, "fraction",
                        "1 / (1 + GPUs x interruptions per GPU-hour x hours lost per interruption)",
                        {"gpus": layout.gpu_count, "interruptions_per_gpu_hour": p.interruptions_per_gpu_hour,
                         "hours_lost_per_interruption": p.hours_lost_per_interruption},
                        p.goodput_source, "synchronous training restarts from the last checkpoint on any failure"))
        out.append(Step("training time", seconds, "s", "tokens / (tokens per second x goodput)",
                        {"tokens": w.tokens}, "", ""))
        out.append(Step("GPU-hours", gpu_hours, "GPU-h", "seconds x GPUs / 3600", {"gpus": layout.gpu_count}, "",
                        ""))
        out.append(Step("GPU energy", energy * 3.6e6, "J", "GPUs x TDP x power fraction x seconds",
                        {"tdp_w": g.tdp_w, "power_fraction": p.power_fraction}, p.power_source,
                        "GPU boards only: no host, no cooling (PUE)"))
        out.append(Step("facility energy", facility * 3.6e6, "J", "GPU energy x PUE",
                        {"pue": compute_data().cost.pue}, compute_data().cost.pue_source, ""))
    return tuple(out)


# =============================================================================================== inference


def _inference_dtype(w: Workload, g: GpuFacts) -> str:
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


def estimate_inference(
    model: ModelSpec, gpu: GpuSpec, workload: Workload, layout: Layout, memory: MemoryBreakdown,
    *, explain: bool = False,
) -> InferenceEstimate:
    """TTFT, TPOT, throughput, max and saturation concurrency of serving ``model`` on ``layout``.

    ``workload.concurrency`` is the number of sequences each replica (``tp x pp`` GPUs) serves at once, as in
    ``memory.estimate_memory``; the plan runs ``dp`` replicas, so its throughput is ``dp x concurrency / TPOT``.
    ``max_concurrency`` and ``saturation_concurrency`` are per replica too. One decode step of one pipeline stage
    with B sequences (roofline, Williams et al. 2009, applied to LLM decoding as in Pope et al. 2022, "Efficiently
    Scaling Transformer Inference", sec. 2):
      t_mem  = (weight bytes read + B x context x KV bytes/token) / (bandwidth x engine bandwidth efficiency)
      t_comp = B x (2 N + attention) / (tp x pp) / (peak x engine FLOP efficiency)
      t_step = max(t_mem, t_comp) + 2 x layers/pp TP all-reduces + engine overhead
    Continuous batching interleaves the prefills of replacement requests: per decode step the replica also
    prefills B x P / O prompt tokens, so TPOT = pp x (t_step + that prefill share). TTFT = prefill of one prompt
    + queueing behind other prefills (M/D/1 mean wait) + half a decode step.
    Deliberately ignores: speculative decoding, prefix caching, chunked-prefill tuning, request length spread.
    """
    d = compute_data()
    p = d.training
    eng = engine_profile(workload.engine.value)
    f = model_facts(model)
    g = gpu_facts(gpu)
    tp, pp, dp = layout.tp, layout.pp, layout.dp
    P, O = workload.prompt_tokens, workload.output_tokens
    c_rep = workload.concurrency  # sequences per replica
    b_stage = max(1, math.ceil(c_rep / pp)) if pp > 1 else c_rep  # sequences per stage step
    layers_here = f.layers / pp
    quantized = workload.quant is not Quant.none and workload.quant is not Quant.fp8

    dtype = _inference_dtype(workload, g)
    if dtype == "fp8":
        rate = g.peak["bf16"] * eng.flop_efficiency * min(p.fp8_speedup_vs_bf16, g.peak["fp8"] / g.peak["bf16"])
    else:
        rate = g.peak[dtype] * eng.flop_efficiency
    if quantized:
        rate *= eng.quant_flop_efficiency
    bw = g.bandwidth * eng.bandwidth_efficiency * (eng.quant_bandwidth_efficiency if quantized else 1.0)

    # bytes each GPU streams per decode step: its weights minus the embedding table (gathered, not streamed), the
    # routed experts only as far as the batch touches them
    w_gpu = memory.weights_bytes
    emb_frac = f.embedding_params / f.params_total
    exp_frac = f.routed_expert_params / f.params_total
    if f.experts:
        touched = expected_experts_touched(f.experts, f.experts_per_token, b_stage) / f.experts
    else:
        touched = 0.0
    w_read = w_gpu * (1.0 - emb_frac - exp_frac + exp_frac * touched)
    kv_tok = kv_cache_bytes_per_token(model, workload, layout)  # per GPU
    ctx_decode = P + O / 2.0  # mean context during decode
    kv_read = b_stage * ctx_decode * kv_tok

    fpt_decode = 2.0 * f.matmul_params_active + 2.0 * attention_flops_per_token(f, ctx_decode)
    t_mem = (w_read + kv_read) / bw
    t_comp = b_stage * fpt_decode / (tp * pp) / rate
    ar_bw = _link(g, layout, tp, p)[0] if tp > 1 else 1.0
    t_ar = 0.0
    if tp > 1:
        n_ar = 2.0 * layers_here
        t_ar = n_ar * (eng.allreduce_latency_s + 2.0 * (tp - 1) / tp * b_stage * f.hidden * p.activation_bytes / ar_bw)
    t_over = eng.overhead_s(g.kind, layers_here)
    t_step = max(t_mem, t_comp) + t_ar + t_over

    # prefill of one prompt (compute-bound; all pp stages in sequence; causal attention over P/2 on average)
    fpt_prefill = 2.0 * f.matmul_params_active + 2.0 * attention_flops_per_token(f, P / 2.0)
    t_pf_comp = P * fpt_prefill / tp / rate
    t_pf_mem = w_gpu * pp / bw  # every stage streams its weights at least once
    t_pf_ar = 0.0
    if tp > 1:
        t_pf_ar = 2.0 * f.layers * (eng.allreduce_latency_s + 2.0 * (tp - 1) / tp * P * f.hidden
                                     * p.activation_bytes / ar_bw)
    t_prefill = max(t_pf_comp, t_pf_mem) + t_pf_ar + pp * eng.overhead_s(g.kind, layers_here)

    # continuous batching: each decode step also carries the prefill work of the requests that replace finished ones
    # (static batching pays the same prefill work, once per batch instead of spread over the steps)
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
    req_rate = tps / O

    # memory: sequences of `context` tokens that fit next to everything else on each GPU of a replica
    usable = usable_memory_bytes(gpu, workload, layout)
    free = usable - (memory.total_bytes - memory.kv_cache_bytes)
    per_seq = kv_tok * workload.context_tokens
    max_conc = int(free // per_seq) if per_seq > 0 and free > 0 else 0

    # saturation: B where B x flops/rate = (W + B x ctx x kv)/bw
    per_b_comp = fpt_decode / (tp * pp) / rate
    per_b_mem = ctx_decode * kv_tok / bw
    if per_b_comp > per_b_mem:
        sat = math.ceil((w_read / bw) / (per_b_comp - per_b_mem)) * pp
    else:
        sat = 0
    bound = "compute" if t_comp > t_mem else "memory"

    steps: tuple[Step, ...] = ()
    if explain:
        steps = _inference_steps(workload, layout, eng, g, f, w_gpu, w_read, kv_tok, kv_read, bw, rate, dtype,
                                 fpt_decode, t_mem, t_comp, t_ar, t_over, t_step, prefill_share, tpot, t_prefill,
                                 ttft, tps, max_conc, sat, usable, free, c_rep, b_stage, quantized)
    return InferenceEstimate(
        ttft_seconds=ttft, tpot_seconds=tpot, tokens_per_second=tps, max_concurrency=max_conc,
        saturation_concurrency=sat, steps=steps, prefill_seconds=t_prefill, decode_step_seconds=t_step,
        bound=bound, requests_per_second=req_rate,
    )


def _inference_steps(w, layout, eng, g, f, w_gpu, w_read, kv_tok, kv_read, bw, rate, dtype, fpt_decode, t_mem,
                     t_comp, t_ar, t_over, t_step, prefill_share, tpot, t_prefill, ttft, tps, max_conc, sat, usable,
                     free, c_rep, b_stage, quantized) -> tuple[Step, ...]:
    roof = "Pope et al. 2022 (Efficiently Scaling Transformer Inference) sec. 2; Williams et al. 2009 (roofline)"
    out = [
        Step("sequences per pipeline-stage step", b_stage, "count", "ceil(concurrency / pp) (concurrency if pp = 1)",
             {"concurrency": w.concurrency, "pp": layout.pp}, "", "concurrency is per replica of tp x pp GPUs"),
        Step("weight bytes read per decode step (per GPU)", w_read, "bytes",
             "weights x (1 - embedding share - expert share + expert share x experts touched / E)",
             {"weights_bytes": w_gpu, "experts": f.experts, "batch": b_stage}, "",
             "embedding rows are gathered, not streamed; MoE: E (1 - (1 - k/E)^B) experts touched, uniform routing"),
        Step("KV-cache bytes read per decode step (per GPU)", kv_read, "bytes",
             "batch x (prompt + output/2) x KV bytes per token per GPU",
             {"batch": b_stage, "kv_bytes_per_token": kv_tok}, "", "mean context over the generation"),
        Step("effective memory bandwidth", bw, "bytes/s",
             "bandwidth x engine bandwidth efficiency" + (" x quantized-kernel efficiency" if quantized else ""),
             {"engine": w.engine.value, "bandwidth_efficiency": eng.bandwidth_efficiency}, eng.source, ""),
        Step("effective FLOP/s per GPU", rate, "FLOP/s",
             "peak(dtype) x engine FLOP efficiency" + (" x quantized-kernel efficiency" if quantized else ""),
             {"dtype": dtype, "flop_efficiency": eng.flop_efficiency}, eng.source,
             "FP8 GEMMs at 1.35x the BF16 rate" if dtype == "fp8" else ""),
        Step("decode memory time per step", t_mem, "s", "(weight bytes + KV bytes) / effective bandwidth", {}, roof,
             ""),
        Step("decode compute time per step", t_comp, "s",
             "batch x (2 N + 2 attention(context)) / (tp x pp) / effective FLOP/s",
             {"flops_per_token": fpt_decode, "tp": layout.tp, "pp": layout.pp}, roof, ""),
    ]
    if layout.tp > 1:
        out.append(Step("tensor-parallel all-reduces per step", t_ar, "s",
                        "2 x layers/pp x (latency + 2 (tp-1)/tp x batch x h x 2 B / bandwidth)",
                        {"tp": layout.tp, "latency_s": eng.allreduce_latency_s},
                        "Shoeybi et al. 2019 (Megatron-LM) sec. 3", "small-batch all-reduces are latency-bound"))
    out += [
        Step("engine overhead per step", t_over, "s", "step overhead + layer overhead x layers on the GPU",
             {"engine": w.engine.value}, eng.source, "scheduler, sampling, kernel launches"),
        Step("decode step", t_step, "s", "max(memory, compute) + all-reduces + overhead", {}, roof, ""),
        Step("interleaved prefill per decode step", prefill_share, "s",
             "batch x prompt / output x prefill FLOPs per token / (tp x pp) / effective FLOP/s",
             {"prompt": w.prompt_tokens, "output": w.output_tokens}, "Kwon et al. 2023 (vLLM) sec. 4.5",
             "continuous batching admits a new request whenever one finishes"),
        Step("time per output token", tpot, "s", "pp x (decode step + interleaved prefill)", {"pp": layout.pp}, "",
             ""),
        Step("prefill of one prompt", t_prefill, "s",
             "max(prompt x (2N + 2 attention(prompt/2)) / tp / FLOP/s, weights / bandwidth) + all-reduces + overhead",
             {"prompt": w.prompt_tokens}, roof, "compute-bound for prompts longer than a few hundred tokens"),
        Step("time to first token", ttft, "s",
             "prefill x (1 + rho / (2 (1 - rho))) + half a decode step (M/D/1 queue)",
             {"concurrency": w.concurrency}, "Kleinrock 1975 (Pollaczek-Khinchine mean wait)",
             "steady state: the other sequences' prefills arrive at random"),
        Step("output throughput", tps, "tokens/s", "dp x concurrency / TPOT",
             {"concurrency": w.concurrency, "dp": layout.dp}, "", ""),
        Step("max concurrency (per replica)", max_conc, "count",
             "floor((usable - non-KV memory per GPU) / (KV bytes per token per GPU x context))",
             {"usable_bytes": usable, "free_bytes": free, "context": w.context_tokens}, "", ""),
        Step("saturation concurrency", sat, "count",
             "B where B x compute per sequence = weight time + B x KV time (0 = never compute-bound)", {}, roof, ""),
    ]
    return tuple(out)


# ==================================================================================================== cost


def amortized_price_usd_per_gpu_hour(gpu: GpuSpec) -> float | None:
    """Owning instead of renting: purchase / (years x 8760 h x utilization) + TDP x electricity price."""
    c = compute_data().cost
    if gpu.purchase_usd is None:
        return None
    hours = c.amortization_years * 8760.0 * c.amortization_utilization
    return gpu.purchase_usd / hours + gpu.tdp_watts / 1000.0 * c.electricity_usd_per_kwh


def estimate_cost(
    gpu: GpuSpec, gpu_count: int, *, seconds: float | None, price_usd_per_gpu_hour: float | None = None,
    output_tokens_per_second: float | None = None, explain: bool = False,
) -> CostEstimate:
    """Price of a plan: ``GPUs x $/GPU-hour``; a training run's total; inference $ per million output tokens.

    The price is the override, else the catalog's rental price, else purchase amortization (data/compute.yaml
    ``cost``); with none of them every dollar figure is 0 and ``price_basis`` is "unknown". Energy: GPU boards
    at a fraction of TDP (training fraction when ``seconds`` is given, inference fraction otherwise), without PUE;
    ``facility_energy_kwh`` multiplies by PUE. Excludes storage, networking and staff.
    """
    d = compute_data()
    basis = "rental"
    price = price_usd_per_gpu_hour if price_usd_per_gpu_hour is not None else gpu.price_usd_per_gpu_hour
    if price is None:
        price = amortized_price_usd_per_gpu_hour(gpu)
        basis = "amortized"
    if price is None:
        price, basis = 0.0, "unknown"
    per_hour = price * gpu_count
    total = per_hour * seconds / HOUR_S if seconds is not None else None
    per_m = None
    kwh_per_m = None
    energy = facility = None
    if seconds is not None:
        energy = gpu_count * gpu.tdp_watts * d.training.power_fraction * seconds / HOUR_S / 1000.0
        facility = energy * d.cost.pue
    if output_tokens_per_second:
        per_m = per_hour / (output_tokens_per_second * HOUR_S) * 1e6
        kw = gpu_count * gpu.tdp_watts * d.cost.inference_power_fraction / 1000.0
        kwh_per_m = kw / (output_tokens_per_second * HOUR_S) * 1e6
    steps: tuple[Step, ...] = ()
    if explain:
        src = {"rental": gpu.price_source or "price given on the command line",
               "amortized": d.cost.amortization_source, "unknown": ""}[basis]
        out = [Step("price per GPU-hour", price, "USD", {"rental": "catalog or override",
                                                        "amortized": "purchase / (years x 8760 x utilization) + power",
                                                        "unknown": "no price known"}[basis],
                    {"gpu": gpu.id}, src, "on-demand list price" if basis == "rental" else ""),
               Step("cost per hour", per_hour, "USD", "GPUs x price per GPU-hour", {"gpus": gpu_count}, "", "")]
        if total is not None:
            out.append(Step("total cost", total, "USD", "cost per hour x seconds / 3600", {"seconds": seconds}, "",
                            "GPU rental only: no storage, network egress or idle time"))
        if per_m is not None:
            out.append(Step("cost per million output tokens", per_m, "USD", "cost per hour / (tokens/s x 3600) x 1e6",
                            {"tokens_per_second": output_tokens_per_second}, "", "at full, steady load"))
        if energy is not None:
            out.append(Step("GPU energy", energy * 3.6e6, "J", "GPUs x TDP x power fraction x seconds",
                            {"tdp_w": gpu.tdp_watts, "power_fraction": d.training.power_fraction},
                            d.training.power_source, "no PUE, no host"))
        steps = tuple(out)
    return CostEstimate(
        usd_per_hour=per_hour, usd_total=total, usd_per_million_output_tokens=per_m, energy_kwh=energy, steps=steps,
        facility_energy_kwh=facility, price_usd_per_gpu_hour=price, price_basis=basis,
        kwh_per_million_output_tokens=kwh_per_m,
    )



# ======================================================================================== planner fast paths


def training_tokens_per_second(
    model: ModelSpec, gpu: GpuSpec, workload: Workload, tp: int, pp: int, dp: int, ep: int, zero: int,
    offload: Offload, recompute: Recompute, micro_batch: int, gpus_per_node: int, virtual_stages: int = 1,
) -> float:
    """``estimate_training(...).tokens_per_second`` for that layout, by the same code, without building a
    ``Layout`` or a ``TrainingEstimate``: what the planner ranks by."""
    return _training_step(model_facts(model), gpu_facts(gpu), compute_data().training, model, workload, tp, pp, dp,
                          ep, zero, offload, recompute, micro_batch, gpus_per_node,
                          virtual_stages if pp > 1 else 1)[-1]


def micro_batches_per_step(workload: Workload, dp: int, micro_batch: int) -> int:
    """Micro-batches per optimizer step (gradient accumulation) of a layout, as the step model counts them."""
    return _micro_batches(default_global_batch_tokens(workload), workload.seq_len, dp, micro_batch)[0]


class TrainingThroughputBound:
    """Upper bounds on ``estimate_training(...).tokens_per_second`` over whole families of layouts, for the
    planner's branch and bound. Every bound is the step model of ``estimate_training`` with each term that can
    only slow a step replaced by a lower bound of itself:

      - hardware FLOPs per token: those of the least recomputation allowed (none < selective < full)
      - TP all-reduces and MoE all-to-alls: 4 per layer (6 only when full recomputation is the only choice)
      - exposed DP traffic: each exposed term is max(t (1 - dp_overlap), t - compute) >= t (1 - dp_overlap);
        then the least over the allowed ZeRO stages of (m + bubble) x per-micro-batch traffic + per-step
        traffic (ZeRO 0/1: 2 ring passes per step, 2: 1 per micro-batch + 1 per step, 3: 3 per micro-batch)
      - offload: 0 without offload, else the PCIe + CPU-Adam time of the shard sharded over all dp ranks
      - micro-batches per step m, tokens per step and the bubble ((pp - 1) / v slots) exactly, per micro-batch
        size; the pipeline's point-to-point sends are left out (>= 0)
    ``per_gpu_count(n)`` drops the bubble and every communication term as well: n GPUs at the model's own compute
    efficiency ceiling, tokens/s <= n x rate / hardware FLOPs per token (m t_mb_compute alone already takes
    longer than the step's tokens need at that rate). Bounds carry a 1e-9 relative margin, so rounding never
    puts a bound below the value it bounds. tests/test_speed_invariants.py checks them on random layouts.
    """

    _MARGIN = 1.0 + 1e-9

    def __init__(self, model: ModelSpec, gpu: GpuSpec, workload: Workload, recomputes: list[Recompute],
                 zeros: list[int], offloads: list[Offload], micro_batches: list[int]) -> None:
        self.model, self.w = model, workload
        self.f, self.g, self.p = f, g, p = model_facts(model), gpu_facts(gpu), compute_data().training
        eff = g.mamf_fraction * p.step_efficiency * size_factor(f.hidden, g.ridge, p.size_factor_k)
        if f.experts:
            eff *= p.moe_compute_efficiency
        _, self.rate = _compute_rate(g, workload.precision, eff, p)
        self.hw = min(_training_flops(f, model, workload, r)[1] for r in recomputes)
        self.full_only = all(r is Recompute.full for r in recomputes)
        # a quantized base's dequantization per micro-batch, at its least (no full recomputation if allowed)
        self.dequant = min(_dequant_seconds(f, g, p, model, workload, 1, 1, r) for r in recomputes)
        self.zeros, self.offloads, self.micros = zeros, offloads, micro_batches
        self.gbt = default_global_batch_tokens(workload)
        self._zero_kinds = (any(z < 2 for z in zeros), 2 in zeros, any(z >= 3 for z in zeros))
        self._batches: dict[int, list[tuple[int, int, int, int]]] = {}
        self._cells: dict[tuple[int, ...], tuple] = {}  # (tp, pp, dp, ep, per_node) -> _cell_terms

    def seconds_lower_bound(self, n: int, tokens_per_second_bound: float) -> float | None:
        """``estimate_training(...).seconds`` of any plan on ``n`` GPUs with at most this throughput is at least
        this (None when the workload gives no token count)."""
        if self.w.tokens is None:
            return None
        return self.w.tokens / (tokens_per_second_bound * _goodput(n, self.p)) / self._MARGIN

    def per_gpu_count(self, n: int) -> float:
        """Tokens/s that no layout on ``n`` GPUs can exceed: n x rate / hardware FLOPs per token."""
        return n * self.rate / self.hw * self._MARGIN

    def _cell_terms(self, tp: int, pp: int, dp: int, ep: int, per_node: int) -> tuple:
        """What a cell's bound needs that does not depend on v: seconds per token and latency per micro-batch
        slot, one exposed DP pass, the offload time, the micro-batch splits."""
        f, g, p, w = self.f, self.g, self.p, self.w
        s = w.seq_len
        c = 1.0 / (tp * pp) / self.rate * self.hw  # compute seconds per token (hw FLOPs x 1/rate)
        layers_here = f.layers / pp
        n_coll = 6 if self.full_only else 4
        per_tok = c
        lat = self.dequant / (tp * pp)  # per micro-batch slot, like a latency
        if tp > 1:
            bw, tp_lat = _link_of(g, per_node, tp, p)
            lat += n_coll * layers_here * tp_lat * (1.0 - p.tp_overlap)
            per_tok += n_coll * layers_here * 2.0 * (tp - 1) / tp * f.hidden * p.activation_bytes / bw \
                * (1.0 - p.tp_overlap)
        if f.experts and ep > 1:
            bw, a2a_lat = _link_of(g, per_node, tp * ep, p)
            n_a2a = n_coll * f.moe_layers / pp * (1.0 - p.moe_all_to_all_overlap)
            lat += n_a2a * a2a_lat
            per_tok += n_a2a * (ep - 1) / ep * f.experts_per_token * f.hidden * p.activation_bytes / max(tp, 1) / bw
        dense_tr, expert_tr = _trainable_per_gpu(f, self.model, w, tp, pp, ep)
        one = _dp_one_pass(f, g, p, w, tp, dp, ep, per_node, dense_tr, expert_tr) * (1.0 - p.dp_overlap) \
            if dp > 1 else 0.0
        shard = (dense_tr + expert_tr) / dp
        t_off = 2.0 * shard * 2.0 / p.offload_pcie_bytes_per_s + shard * p.cpu_adam_seconds_per_param
        batches = self._batches.get(dp)
        if batches is None:
            batches = self._batches[dp] = [(b,) + _micro_batches(self.gbt, s, dp, b) for b in self.micros]
        return per_tok, lat, one, t_off, batches

    def cell(self, tp: int, pp: int, dp: int, ep: int, per_node: int, v: int = 1,
             micro_batches: list[int] | None = None) -> CellBound:
        """For one (tp, pp, dp, ep, v): tokens/s bounds per (offload, micro-batch), over every ZeRO stage and
        recompute mode allowed, for ``micro_batches`` (default: all the bound was built for)."""
        key = (tp, pp, dp, ep, per_node)
        terms = self._cells.get(key)
        if terms is None:
            if len(self._cells) > 65536:
                self._cells.clear()
            terms = self._cells[key] = self._cell_terms(tp, pp, dp, ep, per_node)
        per_tok, lat, one, t_off, batches = terms
        s = self.w.seq_len
        if micro_batches is not None and micro_batches is not self.micros:
            batches = [x for x in batches if x[0] in micro_batches]
        z01, z2, z3 = self._zero_kinds
        bubble = (pp - 1) / v
        per_micro = {}
        for b, m, b_eff, tokens_step in batches:
            slots = m + bubble
            dp_min = 0.0
            if one:
                dp_min = min(2.0 * one if z01 else math.inf, (slots + 1.0) * one if z2 else math.inf,
                             3.0 * slots * one if z3 else math.inf)
            per_micro[b] = (tokens_step * self._MARGIN, slots * (b_eff * s * per_tok + lat) + dp_min)
        return CellBound(per_micro, t_off, self.offloads)


class CellBound:
    """Tokens/s bounds of one (tp, pp, dp, ep) cell: ``at(offload, micro_batch)``, and ``best`` over both."""

    __slots__ = ("best", "per_micro", "t_off")

    def __init__(self, per_micro: dict[int, tuple[float, float]], t_off: float, offloads: list[Offload]) -> None:
        self.per_micro, self.t_off = per_micro, t_off
        least = 0.0 if Offload.none in offloads else t_off
        self.best = max((num / (den + least) for num, den in per_micro.values()), default=0.0)

    def at(self, offload: Offload, micro_batch: int) -> float:
        num, den = self.per_micro[micro_batch]
        return num / (den + (0.0 if offload is Offload.none else self.t_off))


__all__ = [
    "CalibrationPoint", "CellBound", "ComputeData", "CostEstimate", "EngineProfile", "GpuFacts", "InferenceEstimate",
    "ModelFacts", "TrainingEstimate", "TrainingThroughputBound", "adapter_params", "amortized_price_usd_per_gpu_hour",
    "attention_flops_per_token", "compute_data", "default_global_batch_tokens", "engine_profile", "estimate_cost",
    "estimate_inference", "estimate_training", "expected_experts_touched", "gpu_facts", "model_facts", "size_factor",
    "micro_batches_per_step", "training_efficiency", "training_flops_per_token", "training_seconds",
    "training_tokens_per_second",
]
