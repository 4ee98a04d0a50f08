"""Per-GPU memory of a training or inference job: a typed breakdown whose parts sum to the total.

``estimate_memory(model, gpu, workload, layout)`` returns what *one* GPU of the layout holds (the worst pipeline
stage), split into weights, gradients, optimizer states, activations, KV cache and overhead. Every constant comes
from ``data/memory.yaml`` with its source; docs/methodology.md (part I) derives every formula.

Notation (Korthikanti et al. 2022, arXiv:2205.05198): s sequence length, b micro-batch, h hidden size, a heads,
L layers, V vocabulary, t tensor-parallel, p pipeline-parallel, d data-parallel degree.

The default path is plain arithmetic on per-model quantities cached by ``functools.lru_cache`` (keyed on the frozen
``ModelSpec``); ``Step`` objects are built only with ``explain=True``. The planner checks thousands of training
layouts per search through ``TrainingCellMemory``, which keeps the terms of one (gpu, tp, pp, dp, ep) cell and
evaluates the same formulas (``_Stage``, ``_states``, ``_activation_terms``) for any ZeRO stage, offload,
recomputation and micro-batch: bit-identical to ``estimate_memory``, a few microseconds per layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Literal, NamedTuple

from llmsizer.architecture import Linear, count_params, is_lora_target, linear_layers
from llmsizer.catalog import load_data_yaml, load_validated
from llmsizer.errors import InvalidInputError
from llmsizer.explain import Step
from llmsizer.specs import GpuSpec, ModelSpec
from llmsizer.units import DTYPE_BYTES, GIB
from llmsizer.workload import (
    Engine,
    Layout,
    LoraTargets,
    Mode,
    Offload,
    Optimizer,
    Precision,
    Quant,
    Recompute,
    Workload,
)

if TYPE_CHECKING:  # the data records' annotation vocabulary, resolved by validation.py (see specs.py)
    from typing import Annotated

    from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

    from llmsizer.validation import Source

__all__ = [
    "MemoryBreakdown",
    "MemoryData",
    "TrainingCellMemory",
    "activation_bytes_per_layer",
    "clear_caches",
    "effective_bits_per_weight",
    "estimate_memory",
    "kv_cache_bytes_per_sequence",
    "kv_cache_bytes_per_token",
    "lora_adapter_params",
    "memory_data",
    "usable_memory_bytes",
]

_BF16 = DTYPE_BYTES["bf16"]  # bytes of a tensor a toolchain leaves "in 16-bit"
_KORTHIKANTI = "Korthikanti et al. 2022, arXiv:2205.05198, sec. 4"
_ZERO = "Rajbhandari et al. 2020, ZeRO (arXiv:1910.02054), sec. 5 / Table 1"


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes each GPU holds. ``total_bytes`` is the sum of the six parts (CONTRACT.md ``memory_per_gpu``).

    ``host_offload_bytes`` / ``nvme_offload_bytes`` are this GPU's share of state moved off the GPU (ZeRO-Offload /
    ZeRO-Infinity); they are not part of the total. ``stage`` names the pipeline stage reported ("all" when pp = 1,
    else the worse of "first" and "last").
    """

    weights_bytes: float
    gradients_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    kv_cache_bytes: float
    overhead_bytes: float
    host_offload_bytes: float = 0.0  # what this GPU's share of offloaded states needs in host RAM
    nvme_offload_bytes: float = 0.0  # likewise on NVMe
    steps: tuple[Step, ...] = ()
    stage: str = "all"

    @property
    def total_bytes(self) -> float:
        return (
            self.weights_bytes + self.gradients_bytes + self.optimizer_bytes
            + self.activations_bytes + self.kv_cache_bytes + self.overhead_bytes
        )

    @property
    def model_states_bytes(self) -> float:
        """Weights + gradients + optimizer states: what ZeRO calls the model states."""
        return self.weights_bytes + self.gradients_bytes + self.optimizer_bytes


# ============================================================================================ data/memory.yaml


class _Strict:
    """Base of the records of ``data/memory.yaml``: frozen dataclasses checked by ``validation.validate``."""

    __pydantic_config__ = {"extra": "forbid"}


@dataclass(frozen=True, kw_only=True)
class PrecisionBytes(_Strict):
    weights: dict[str, PositiveFloat]
    gradients: dict[str, PositiveFloat]
    activations: dict[str, PositiveFloat]
    inference_weights: dict[str, PositiveFloat]
    source: Source

    def __post_init__(self) -> None:
        for name in ("weights", "gradients", "activations", "inference_weights"):
            missing = [p.value for p in Precision if p.value not in getattr(self, name)]
            if missing:
                raise ValueError(f"{name} lacks {', '.join(missing)}")


@dataclass(frozen=True, kw_only=True)
class QuantFormat(_Strict):
    bits_per_weight: PositiveFloat
    bits_per_output_row: NonNegativeFloat = 0.0
    keep_16bit: tuple[Literal["embedding", "lm_head", "router"], ...] = ()
    source: Source


@dataclass(frozen=True, kw_only=True)
class GgufBlock(_Strict):
    block_bytes: PositiveInt
    block_weights: PositiveInt

    @property
    def bits(self) -> float:
        return 8.0 * self.block_bytes / self.block_weights


GgufCondition = Literal["all", "use_more_bits", "first_2", "first_4", "first_eighth", "first_sixteenth", "gqa_ge_4"]


@dataclass(frozen=True, kw_only=True)
class GgufMix(_Strict):
    base: str
    output: str
    attn_v: tuple[tuple[GgufCondition, str], ...] = ()
    ffn_down: tuple[tuple[GgufCondition, str], ...] = ()
    attn_output: tuple[tuple[GgufCondition, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class GgufData(_Strict):
    block_types: dict[str, GgufBlock]
    vector_type: str
    block_source: Source
    mixes: dict[str, GgufMix]
    mix_source: Source

    def __post_init__(self) -> None:
        used = {self.vector_type}
        for mix in self.mixes.values():
            used |= {mix.base, mix.output}
            for rules in (mix.attn_v, mix.ffn_down, mix.attn_output):
                used |= {t for _, t in rules}
        unknown = sorted(used - set(self.block_types))
        if unknown:
            raise ValueError(f"unknown GGUF block type(s): {', '.join(unknown)}")


@dataclass(frozen=True, kw_only=True)
class OptimizerStates(_Strict):
    master_bytes: NonNegativeFloat
    state_bytes: NonNegativeFloat
    factored_bytes: NonNegativeFloat = 0.0
    source: Source


@dataclass(frozen=True, kw_only=True)
class LoraData(_Strict):
    master_copy: bool
    source: Source
    qlora_default_quant: str


@dataclass(frozen=True, kw_only=True)
class ActivationData(_Strict):
    dropout_mask_bytes: PositiveFloat
    softmax_lse_bytes: PositiveFloat
    router_prob_bytes: PositiveFloat
    logits_fp32_bytes: NonNegativeFloat
    logits_16bit_bytes: NonNegativeFloat
    source: Source
    full_recompute_working_layers: NonNegativeInt
    full_recompute_source: Source
    pipeline_source: Source


@dataclass(frozen=True, kw_only=True)
class ZeroData(_Strict):
    gathered_units: NonNegativeFloat
    unsharded_grad_units: NonNegativeFloat
    reduce_bucket_elements: NonNegativeFloat
    source: Source


@dataclass(frozen=True, kw_only=True)
class OffloadData(_Strict):
    host_gradient_bytes: PositiveFloat
    source: Source


@dataclass(frozen=True, kw_only=True)
class RuntimeData(_Strict):
    context_gib: dict[Literal["gpu", "unified", "cpu"], NonNegativeFloat]
    context_source: Source
    nccl_per_communicator_gib: NonNegativeFloat
    nccl_source: Source
    fragmentation_fraction: Annotated[float, Field(ge=0, lt=1)]
    fragmentation_source: Source


@dataclass(frozen=True, kw_only=True)
class EngineData(_Strict):
    memory_fraction: Annotated[float, Field(gt=0, le=1)]
    memory_fraction_by_tp: tuple[tuple[PositiveInt, float], ...] = ()
    context_in_reserve: bool = False
    prefill_tokens: PositiveInt | None = None
    prefill_tokens_small_gpu: PositiveInt | None = None
    sampler_rows: PositiveInt | None = None
    sampler_rows_small_gpu: PositiveInt | None = None
    small_gpu_below_gib: PositiveFloat | None = None
    small_gpu_ids: tuple[str, ...] = ()
    non_torch_gib: NonNegativeFloat = 0.0
    fragmentation: bool = False
    source: Source


@dataclass(frozen=True, kw_only=True)
class MemoryData(_Strict):
    """The validated contents of ``data/memory.yaml``."""

    schema_version: Literal[1]
    precision_bytes: PrecisionBytes
    quantization: dict[str, QuantFormat]
    gguf: GgufData
    optimizers: dict[str, OptimizerStates]
    lora: LoraData
    activations: ActivationData
    zero: ZeroData
    offload: OffloadData
    runtime: RuntimeData
    engines: dict[str, EngineData]

    def __post_init__(self) -> None:
        problems = []
        for q in Quant:
            if q is not Quant.none and q.value not in self.quantization and q.value not in self.gguf.mixes:
                problems.append(f"quant {q.value!r} is in neither quantization nor gguf.mixes")
        problems += [f"optimizers lacks {o.value!r}" for o in Optimizer if o.value not in self.optimizers]
        problems += [f"engines lacks {e.value!r}" for e in Engine if e.value not in self.engines]
        if self.lora.qlora_default_quant not in self.quantization:
            problems.append(f"lora.qlora_default_quant {self.lora.qlora_default_quant!r} is not in quantization")
        if problems:
            raise ValueError("; ".join(problems))


@cache
def memory_data() -> MemoryData:
    """Load and validate ``data/memory.yaml`` once (lazily, on first use; from the disk cache when unchanged)."""
    return load_validated("memory.yaml", MemoryData, load_data_yaml)


class _Engine:
    """Plain-attribute copy of an ``EngineData`` for the hot path."""

    __slots__ = (
        "fraction",
        "fraction_by_tp",
        "fragmentation",
        "in_reserve",
        "non_torch_bytes",
        "prefill",
        "prefill_small",
        "rows",
        "rows_small",
        "small_below_bytes",
        "small_ids",
        "source",
    )

    def __init__(self, e: EngineData) -> None:
        self.fraction = e.memory_fraction
        self.fraction_by_tp = tuple(sorted(e.memory_fraction_by_tp, reverse=True))
        self.in_reserve = e.context_in_reserve
        self.prefill = e.prefill_tokens
        self.prefill_small = e.prefill_tokens_small_gpu or e.prefill_tokens
        self.rows = e.sampler_rows
        self.rows_small = e.sampler_rows_small_gpu or e.sampler_rows
        self.small_below_bytes = (e.small_gpu_below_gib or 0.0) * GIB
        self.small_ids = e.small_gpu_ids
        self.non_torch_bytes = e.non_torch_gib * GIB
        self.fragmentation = e.fragmentation
        self.source = e.source

    def is_small(self, gpu: GpuSpec) -> bool:
        return gpu.memory_bytes < self.small_below_bytes or any(s in gpu.id for s in self.small_ids)

    def memory_fraction(self, tp: int) -> float:
        for min_tp, fraction in self.fraction_by_tp:
            if tp >= min_tp:
                return fraction
        return self.fraction


class _K:
    """Every constant of ``memory.yaml`` as plain floats and enum-keyed dicts (no pydantic in the hot path)."""

    def __init__(self, d: MemoryData) -> None:
        pb = d.precision_bytes
        self.weight_bytes = {p: pb.weights[p.value] for p in Precision}
        self.grad_bytes = {p: pb.gradients[p.value] for p in Precision}
        self.act_bytes = {p: pb.activations[p.value] for p in Precision}
        self.infer_bytes = {p: pb.inference_weights[p.value] for p in Precision}
        self.optimizers = {o: d.optimizers[o.value] for o in Optimizer}
        self.engines = {e: _Engine(d.engines[e.value]) for e in Engine}
        a = d.activations
        self.mask_bytes = a.dropout_mask_bytes
        self.lse_bytes = a.softmax_lse_bytes
        self.router_bytes = a.router_prob_bytes
        self.logit_bytes = a.logits_fp32_bytes + a.logits_16bit_bytes
        self.logit_fp32_bytes = a.logits_fp32_bytes
        self.working_layers = a.full_recompute_working_layers
        self.zero_units = d.zero.gathered_units
        self.zero_grad_units = d.zero.unsharded_grad_units
        self.bucket_elements = d.zero.reduce_bucket_elements
        self.host_grad_bytes = d.offload.host_gradient_bytes
        r = d.runtime
        self.context_bytes = {k: v * GIB for k, v in r.context_gib.items()}
        self.nccl_bytes = r.nccl_per_communicator_gib * GIB
        self.fragmentation = r.fragmentation_fraction
        self.lora_master = d.lora.master_copy
        self.qlora_quant = d.lora.qlora_default_quant
        self.data = d


@cache
def _k() -> _K:
    return _K(memory_data())


def clear_caches() -> None:
    """Forget the loaded memory.yaml and every per-model memo (for tests and for catalogs changed at runtime)."""
    memory_data.cache_clear()
    _k.cache_clear()
    _MODEL_CACHES.clear()
    _JOBS.clear()
    for f in (_arch, _lora, _weight_bytes, _layer_coeffs):
        f.cache_clear()


# ==================================================================================== per-model cached geometry


class _Arch(NamedTuple):  # a NamedTuple, not a dataclass: 5x cheaper to define at import (start-up time)
    """Parameter groups of a model, split the way parallelism splits them (all counts are whole-model)."""

    layers: int
    emb_params: int  # token (+ learned position) embedding: vocab-parallel over tp, on the first stage
    head_params: int  # untied lm_head (+ bias): vocab-parallel, on the last stage; 0 when tied
    layer_params: int  # attention, dense MLP, router, shared experts (+ biases), all layers: split by tp
    expert_params: int  # routed experts (+ biases), all layers: split by tp x ep
    vector_params: int  # per-layer norm gains (and latent/qk norms): replicated over tp
    final_params: int  # final norm (+ embedding norm): last stage, replicated
    total_params: int
    layer_unit: float  # non-expert parameters of one layer (what ZeRO-3 gathers per layer, before tp)
    expert_unit: float  # routed-expert parameters of one MoE layer (before tp x ep)
    largest_matrix: int  # largest quantizable weight matrix (QLoRA dequantizes one at a time to bf16)
    factored_elements: int  # Adafactor: rows + cols of every matrix + every vector element
    full_layers: int  # layers with global attention
    window_layers: int  # sliding-window layers
    window: int


def _norm_width_params(m: ModelSpec, width: int) -> int:
    return 2 * width if m.norm == "layernorm" else width


@lru_cache(maxsize=1024)
def _arch(m: ModelSpec) -> _Arch:
    pc = count_params(m)
    lin = linear_layers(m)
    expert = sum(x.params + (x.count * x.out_features if x.bias else 0) for x in lin if x.kind == "expert")
    head = sum(x.params + (x.count * x.out_features if x.bias else 0) for x in lin if x.kind == "lm_head")
    final = _norm_width_params(m, m.hidden_size) * (2 if m.embedding_norm else 1)
    vector = pc.norms - final
    layer = pc.total - pc.embedding - head - expert - vector - final
    largest = max((x.in_features * x.out_features for x in lin if x.kind not in ("lm_head", "router")), default=0)
    factored = sum(x.count * (x.in_features + x.out_features) for x in lin)
    factored += m.vocab_size + m.hidden_size + pc.norms + pc.biases  # embedding rows + cols, vectors
    sw = m.sliding_window_layers if m.sliding_window else 0
    return _Arch(
        layers=m.layers, emb_params=pc.embedding, head_params=head, layer_params=layer, expert_params=expert,
        vector_params=vector, final_params=final, total_params=pc.total, layer_unit=layer / m.layers,
        expert_unit=expert / max(1, m.moe_layers),
        largest_matrix=largest, factored_elements=factored, full_layers=m.layers - sw, window_layers=sw,
        window=m.sliding_window or 0,
    )


def _lora_target(x: Linear, targets: LoraTargets) -> bool:
    return is_lora_target(x, targets)


@lru_cache(maxsize=1024)
def _lora(m: ModelSpec, rank: int, targets: LoraTargets) -> tuple[int, int, int]:
    """(adapter params, Adafactor factored elements, sum of ranks per layer) for LoRA on ``m``."""
    params = factored = width = 0
    for x in linear_layers(m):
        if _lora_target(x, targets):
            params += x.count * rank * (x.in_features + x.out_features)
            factored += x.count * (x.in_features + 2 * rank + x.out_features)
            width += x.count * rank
    return params, factored, width // m.layers


def lora_adapter_params(model: ModelSpec, workload: Workload) -> int:
    """Trainable LoRA parameters: sum over adapted ``in x out`` matrices of ``r * (in + out)`` (Hu et al. 2021)."""
    return _mc(model).lora(workload.lora_rank, workload.lora_targets)[0]


class _ModelCache:
    """Per-model memo in front of the ``lru_cache``d functions, keyed by identity: hashing a pydantic model costs
    more than the arithmetic it would save, and the planner passes the same ``ModelSpec`` object every time."""

    __slots__ = ("_coeffs", "_lora", "_wbytes", "arch", "model")

    def __init__(self, m: ModelSpec) -> None:
        self.model = m
        self.arch = _arch(m)
        self._wbytes: dict[tuple[str, float], _WeightBytes] = {}
        self._coeffs: dict[tuple[float, bool, int], tuple[float, float, float]] = {}
        self._lora: dict[tuple[int, LoraTargets], tuple[int, int, int]] = {}

    def weight_bytes(self, storage: str, dense_bytes: float) -> _WeightBytes:
        key = (storage, dense_bytes)
        v = self._wbytes.get(key)
        if v is None:
            v = self._wbytes[key] = _weight_bytes(self.model, storage, dense_bytes)
        return v

    def coeffs(self, a: float, flash: bool, lora_width: int) -> tuple[float, float, float]:
        key = (a, flash, lora_width)
        v = self._coeffs.get(key)
        if v is None:
            v = self._coeffs[key] = _layer_coeffs(self.model, a, flash, lora_width)
        return v

    def lora(self, rank: int, targets: LoraTargets) -> tuple[int, int, int]:
        key = (rank, targets)
        v = self._lora.get(key)
        if v is None:
            v = self._lora[key] = _lora(self.model, rank, targets)
        return v


_MODEL_CACHES: dict[int, _ModelCache] = {}


def _mc(m: ModelSpec) -> _ModelCache:
    c = _MODEL_CACHES.get(id(m))
    if c is None or c.model is not m:  # the cache holds the model, so its id cannot be reused while cached
        if len(_MODEL_CACHES) >= 1024:
            _MODEL_CACHES.clear()
        c = _MODEL_CACHES[id(m)] = _ModelCache(m)
    return c


# ===================================================================================== weight storage (quant)


class _WeightBytes(NamedTuple):
    """Stored bytes of each parameter group (whole model) in one storage format."""

    emb: float
    head: float
    layer: float
    expert: float
    vector: float
    final: float

    @property
    def total(self) -> float:
        return self.emb + self.head + self.layer + self.expert + self.vector + self.final


def _gguf_condition(cond: str, i: int, n: int, m: ModelSpec) -> bool:
    """llama.cpp llama-quant.cpp layer conditions (integer division as in C)."""
    if cond == "all":
        return True
    if cond == "use_more_bits":
        return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2
    if cond == "first_2":
        return i < 2
    if cond == "first_4":
        return i < 4
    if cond == "first_eighth":
        return i < n // 8
    if cond == "first_sixteenth":
        return i < n // 16
    if cond == "gqa_ge_4":
        return m.heads // m.kv_heads >= 4
    raise ValueError(cond)  # unreachable: validated by GgufMix


def _linear_layer_span(m: ModelSpec, x: Linear) -> range:
    """Which layer indices hold copies of ``x`` (dense MLPs of a MoE model sit in its first layers)."""
    k = m.moe.dense_layers if m.moe is not None else m.layers
    if x.kind == "mlp":
        return range(k)
    if x.kind in ("expert", "shared_expert", "router"):
        return range(k, m.layers)
    return range(m.layers)


def _gguf_rules(mix: GgufMix, x: Linear) -> tuple[tuple[str, str], ...]:
    if x.name.endswith("down_proj"):
        return mix.ffn_down
    if x.name == "v_proj":
        return mix.attn_v
    if x.name == "o_proj":
        return mix.attn_output
    return ()


@lru_cache(maxsize=2048)
def _weight_bytes(m: ModelSpec, storage: str, dense_bytes: float) -> _WeightBytes:
    """Bytes of every parameter group when stored as ``storage`` ("dense", a quantization name or a GGUF mix).

    "dense": every tensor at ``dense_bytes`` per parameter. Quantized formats: matrices at their effective bits
    (plus per-row scales), the tensors the toolchain keeps in 16-bit at 2 bytes, norms and biases at 2 bytes
    (GGUF: F32). GGUF mixes follow llama.cpp's per-tensor, per-layer type choice.
    """
    a = _arch(m)
    lin = linear_layers(m)
    if storage == "dense":
        b = dense_bytes
        return _WeightBytes(a.emb_params * b, a.head_params * b, a.layer_params * b, a.expert_params * b,
                            a.vector_params * b, a.final_params * b)
    d = memory_data()
    sums = {"layer": 0.0, "expert": 0.0, "head": 0.0}

    def group(x: Linear) -> str:
        return "expert" if x.kind == "expert" else "head" if x.kind == "lm_head" else "layer"

    if storage in d.quantization:
        q = d.quantization[storage]
        for x in lin:
            keep = x.kind in ("router", "lm_head") and x.kind in q.keep_16bit
            per = _BF16 * x.in_features * x.out_features if keep else (
                x.in_features * x.out_features * q.bits_per_weight + x.out_features * q.bits_per_output_row) / 8
            sums[group(x)] += x.count * per + (x.count * x.out_features * _BF16 if x.bias else 0.0)
        emb = a.emb_params * (_BF16 if "embedding" in q.keep_16bit else q.bits_per_weight / 8)
        vec_b = _BF16
    else:
        g = d.gguf
        mix = g.mixes[storage]
        bits = {k: v.bits for k, v in g.block_types.items()}
        vec_b = bits[g.vector_type] / 8
        for x in lin:
            if x.kind == "router":
                per_matrix = x.in_features * x.out_features * vec_b
                sums[group(x)] += x.count * per_matrix
                continue
            if x.kind == "lm_head":
                sums["head"] += x.params * bits[mix.output] / 8 + (x.out_features * vec_b if x.bias else 0.0)
                continue
            rules = _gguf_rules(mix, x)
            span = _linear_layer_span(m, x)
            per_layer = x.count // max(1, len(span))
            total_bits = 0.0
            for i in span:
                t = next((typ for cond, typ in rules if _gguf_condition(cond, i, m.layers, m)), mix.base)
                total_bits += bits[t]
            sums[group(x)] += per_layer * x.in_features * x.out_features * total_bits / 8
            if x.bias:
                sums[group(x)] += x.count * x.out_features * vec_b
        emb_type = mix.output if m.tied_embeddings else mix.base
        emb = m.vocab_size * m.hidden_size * bits[emb_type] / 8 + m.learned_positions * m.hidden_size * vec_b
    # the linear-layer sums already hold every bias; norms are the vectors
    layer_norms = a.vector_params
    return _WeightBytes(emb, sums["head"], sums["layer"], sums["expert"], layer_norms * vec_b, a.final_params * vec_b)


def _storage(workload: Workload) -> tuple[str, float]:
    """How the (frozen or served) weights are stored: (storage name, bytes/param for "dense")."""
    q = workload.quant
    if workload.mode is Mode.inference:
        if q is Quant.none:
            if workload.precision is Precision.fp8:
                return "fp8", _BF16
            return "dense", _k().infer_bytes[workload.precision]
        return q.value, _BF16
    if workload.mode is Mode.qlora:
        return (q.value if q is not Quant.none else _k().qlora_quant), _BF16
    if workload.mode is Mode.lora and q is not Quant.none:
        return q.value, _BF16
    return "dense", _k().weight_bytes[workload.precision]


def effective_bits_per_weight(model: ModelSpec, quant: Quant | str) -> float:
    """Average stored bits per parameter of ``model`` in ``quant`` (metadata and unquantized tensors included)."""
    name = quant.value if isinstance(quant, Quant) else quant
    storage = "dense" if name == "none" else name
    wb = _weight_bytes(model, storage, _BF16)
    return 8.0 * wb.total / _arch(model).total_params


# ========================================================================================= parallel sharding


def _expert_sharding(layout: Layout) -> tuple[int, int]:
    """(GPUs one layer's experts are split over, replicas of each expert shard across data parallelism).

    ``ep <= dp`` (Megatron): experts split over ep ranks of the data-parallel group and tensor-split over tp.
    ``ep > dp`` (vLLM --enable-expert-parallel: EP spans the TP ranks): whole experts over ``ep <= tp x dp`` GPUs.
    """
    return _expert_sharding_of(layout.tp, layout.dp, layout.ep)


def _expert_sharding_of(tp: int, dp: int, ep: int) -> tuple[int, int]:
    shards = tp * ep if ep <= dp else min(ep, tp * dp)
    return shards, max(1, tp * dp // shards)


def _layers_on_stage(layers: int, pp: int) -> int:
    """Layers on the most loaded pipeline stage: ceil(L / p)."""
    return -(-layers // pp)


def _communicators(model: ModelSpec, layout: Layout, training: bool) -> int:
    return _communicators_of(model, layout.tp, layout.pp, layout.dp, layout.ep, training)


def _communicators_of(model: ModelSpec, tp: int, pp: int, dp: int, ep: int, training: bool) -> int:
    n = (tp > 1) + (pp > 1) + (ep > 1 and model.moe is not None)
    return n + (training and dp > 1)


# ============================================================================================= activations


@lru_cache(maxsize=4096)
def _layer_coeffs(m: ModelSpec, a: float, flash: bool, lora_width: int) -> tuple[float, float, float]:
    """Stored activation bytes per token of one transformer layer, averaged over layers: (R, T, S).

    R is not split by tensor parallelism (it is by sequence parallelism), T is split by tp, S is per token *per
    attended key* (the s x s attention scores, absent with FlashAttention). With GPT-3's architecture
    (LayerNorm, plain GeLU MLP f = 4h, MHA, dropout, no FlashAttention) R = 10h, T = 24h, S = 5a: Korthikanti's
    per-layer sbh(34 + 5as/h) (sec. 4.1) exactly.
    """
    k = _k()
    h, H, K, d = m.hidden_size, m.heads, m.kv_heads, m.head_dim_
    drop = m.dropout > 0
    mask = k.mask_bytes if drop else 0.0
    norms = (1 if m.parallel_block else 2) + m.extra_norms_per_layer
    linear_inputs = 1 if m.parallel_block else 2
    # norm inputs, normed outputs feeding QKV and MLP, residual dropout masks, LoRA A outputs (r wide)
    R = a * h * norms + a * h * linear_inputs + mask * h * 2 + a * lora_width
    lse = k.lse_bytes * H if flash else 0.0
    if m.attention == "mla":
        ml = m.mla
        assert ml is not None
        qk = ml.qk_nope_head_dim + ml.qk_rope_head_dim
        R += a * 2 * ml.q_lora_rank + a * (ml.kv_lora_rank + ml.qk_rope_head_dim) + a * ml.kv_lora_rank
        T_attn = a * H * qk * 2 + a * H * ml.v_head_dim * 2 + lse  # Q, K, V, attention output
    else:
        T_attn = a * (H * d + 2 * K * d) + a * H * d + lse  # Q, K, V, attention output (o_proj input)
        if m.qk_norm != "none":
            T_attn += a * (H + K) * d
    S = 0.0 if flash else H * (a + (k.mask_bytes + a if drop else 0.0))  # softmax out (+ dropout mask, output)
    mlp_mats = 3 if m.ffn_kind == "gated" else 2  # gated: gate, up, product; plain: act input, down input
    dense_T = a * mlp_mats * m.ffn_size
    if m.moe is None:
        return R, T_attn + dense_T, S
    e = m.moe
    fs = e.shared_expert_ffn_size or e.expert_ffn_size
    moe_T = a * e.experts_per_token * (2 * h + mlp_mats * e.expert_ffn_size) + a * e.shared_experts * mlp_mats * fs
    moe_R = k.router_bytes * e.experts
    n_moe = m.layers - e.dense_layers
    avg_T = (e.dense_layers * dense_T + n_moe * moe_T) / m.layers
    return R + moe_R * n_moe / m.layers, T_attn + avg_T, S


def _avg_keys(a: _Arch, s: int) -> float:
    """Keys each query attends to, averaged over layers (sliding-window layers see at most the window)."""
    if not a.window_layers:
        return float(s)
    return (a.full_layers * s + a.window_layers * min(s, a.window)) / a.layers


class _Job:
    """Everything that depends only on (model, workload), resolved once: the planner varies the layout and GPU
    hundreds of thousands of times for one model and workload, and enum-keyed lookups are not free."""

    __slots__ = (
        "ab",
        "adapter",
        "base",
        "coeffs",
        "engine",
        "fact_ratio",
        "flash",
        "gb",
        "k",
        "kv_bytes",
        "lora_params",
        "master",
        "mc",
        "opt",
        "opt_per_param",
        "params",
        "recompute_full_working",
        "storage",
        "training",
        "tw",
        "w",
        "width",
    )

    def __init__(self, mc: _ModelCache, w: Workload) -> None:
        k = _k()
        self.mc, self.w, self.k = mc, w, k
        a = mc.arch
        prec = w.precision
        self.training = w.mode is not Mode.inference
        self.adapter = w.mode is Mode.lora or w.mode is Mode.qlora
        self.ab = k.act_bytes[prec]
        self.gb = k.grad_bytes[prec]
        self.tw = k.weight_bytes[prec]
        self.opt = opt = k.optimizers[w.optimizer]
        fp32 = prec is Precision.fp32
        self.storage, dense_b = _storage(w)
        self.base = mc.weight_bytes(self.storage, dense_b)
        self.params = mc.weight_bytes("dense", 1.0)
        if self.adapter:
            lp, lfact, self.width = mc.lora(w.lora_rank, w.lora_targets)
            self.lora_params = lp
            self.fact_ratio = lfact / lp if lp else 0.0
            self.master = 0.0 if (fp32 or not k.lora_master) else opt.master_bytes
        else:
            self.lora_params, self.width = 0, 0
            self.fact_ratio = a.factored_elements / a.total_params
            self.master = 0.0 if fp32 else opt.master_bytes
        self.opt_per_param = self.master + opt.state_bytes + opt.factored_bytes * self.fact_ratio
        self.flash = w.flash_attention
        self.coeffs = mc.coeffs(self.ab, self.flash, self.width)
        self.engine = k.engines[w.engine]
        self.kv_bytes = _kv_dtype_bytes(w) if not self.training else 0.0


_JOBS: dict[tuple[int, int], _Job] = {}


def _job(model: ModelSpec, workload: Workload) -> _Job:
    key = (id(model), id(workload))
    j = _JOBS.get(key)
    if j is None or j.mc.model is not model or j.w is not workload:  # identity: the job holds both objects
        if len(_JOBS) >= 4096:
            _JOBS.clear()
        j = _JOBS[key] = _Job(_mc(model), workload)
    return j


def _per_layer(j: _Job, t: int, r_div: int, s: int, b: int, rec: Recompute) -> float:
    """Stored activation bytes of one layer for one micro-batch on one GPU (t-way TP, sequence parallelism
    dividing the replicated part by ``r_div``)."""
    if rec is Recompute.full:
        return s * b * j.ab * j.mc.model.hidden_size / r_div
    R, T, S = j.coeffs
    per_token = R / r_div + T / t
    if S and rec is Recompute.none:
        per_token += S * _avg_keys(j.mc.arch, s) / t
    return s * b * per_token


def _per_layer_bytes(j: _Job, lay: Layout, s: int, b: int, rec: Recompute) -> float:
    t = lay.tp
    return _per_layer(j, t, t if (lay.sequence_parallel and t > 1) else 1, s, b, rec)


def activation_bytes_per_layer(
    model: ModelSpec, workload: Workload, layout: Layout, *,
    seq_len: int | None = None, micro_batch: int | None = None, recompute: Recompute | None = None,
) -> float:
    """Stored activations of one transformer layer for one micro-batch, per GPU (Korthikanti et al. 2022, sec. 4).

    no recompute: s b (R/t_sp + T/t + S k/t); selective: drops the attention-score term S; full: only the layer
    input s b h (x 2 bytes) is kept. With GPT-3's architecture and t-way TP + SP this is sbh(34 + 5as/h)/t,
    34sbh/t and 2sbh/t (Korthikanti Table 2).
    """
    j = _job(model, workload)
    s = seq_len or workload.seq_len
    b = micro_batch or layout.micro_batch
    return _per_layer_bytes(j, layout, s, b, recompute or layout.recompute)


def _activation_terms(
    j: _Job, t: int, p: int, dp: int, r_div: int, first: bool, last: bool, rec: Recompute, b: int, v: int = 1,
) -> tuple[float, float, float, float, float, float]:
    """(total, per_layer, in_flight, emb, head, working): the activations of one pipeline stage (the one formula,
    shared by ``estimate_memory`` and the planner's ``TrainingCellMemory``). ``in_flight`` counts stored
    micro-batch forwards in layers-of-this-stage units: with 1F1B the first stage holds p micro-batches (capped by
    the micro-batches per step), the last one; with the interleaved schedule (v chunks of ls/v layers per GPU)
    rank r holds 2(p - 1 - r) + (v - 1) p + 1 chunk forwards at its peak (Megatron-LM's warm-up count), i.e. the
    first stage p + (p - 1)/v stages' worth: Korthikanti et al. 2022 sec. 4.2.3's factor 1 + (p - 1)/(p v)."""
    k, w = j.k, j.w
    m, a = j.mc.model, j.mc.arch
    s = w.seq_len
    ls = -(-a.layers // p)
    per_layer = _per_layer(j, t, r_div, s, b, rec)
    in_flight = p if first else 1
    micro_batches = math.inf  # per step; unknown without a global batch (the planner always gives one)
    if p > 1 and w.global_batch_tokens:
        micro_batches = math.ceil(w.global_batch_tokens / (s * b * dp))
        if first:
            in_flight = max(1, min(p, micro_batches))
    emb = s * b * k.mask_bytes * m.hidden_size / r_div if (first and m.dropout > 0) else 0.0
    head = 0.0
    if last:
        head = s * b * 2 * j.ab * m.hidden_size / r_div + s * b * k.logit_bytes * m.vocab_size / t
    working = 0.0
    if rec is Recompute.full and k.working_layers:
        working = k.working_layers * _per_layer(j, t, r_div, s, b, Recompute.none)
    if v > 1 and p > 1:
        rank = 0 if first else p - 1
        chunks = min(2 * (p - 1 - rank) + (v - 1) * p + 1, v * micro_batches)
        total = chunks * (ls / v) * per_layer + in_flight * emb + head + working
        return total, per_layer, chunks / v, emb, head, working
    total = in_flight * (ls * per_layer + emb) + head + working
    return total, per_layer, in_flight, emb, head, working


def _training_activations(j: _Job, lay: Layout, first: bool, last: bool, steps: list[Step] | None) -> float:
    k, w = j.k, j.w
    a = j.mc.arch
    s, b, t, p = w.seq_len, lay.micro_batch, lay.tp, lay.pp
    r_div = t if (lay.sequence_parallel and t > 1) else 1
    ls = -(-a.layers // p)
    rec = lay.recompute
    v = lay.virtual_stages if p > 1 else 1
    total, per_layer, in_flight, emb, head, working = _activation_terms(j, t, p, lay.dp, r_div, first, last, rec, b,
                                                                       v)
    if steps is not None:
        R, T, S = j.coeffs
        steps.append(Step(
            "activations per layer", per_layer, "bytes",
            {"none": "s b (R/t_sp + T/t + S keys/t)", "selective": "s b (R/t_sp + T/t)",
             "full": "s b h x act_bytes / t_sp"}[rec.value],
            {"s": s, "b": b, "R_bytes_per_token": R, "T_bytes_per_token": T, "S_bytes_per_token_key": S,
             "t": t, "t_sp": r_div, "recompute": rec.value, "flash_attention": str(w.flash_attention)},
            _KORTHIKANTI + " (34 + 5as/h specialised to the architecture: GQA K/V widths, gated MLP 3f, "
            "RMSNorm, dropout masks only when dropout > 0, FlashAttention log-sum-exp instead of s^2 scores, "
            "MoE: top-k dispatched copies and expert intermediates, MLA latents)",
            "MoE: tokens evenly balanced across experts, no capacity-factor padding; K/V heads split by t even "
            "when kv_heads < t; LoRA keeps every frozen-linear input (needed for the adapter's backward)",
        ))
        steps.append(Step(
            "activations per GPU", total, "bytes",
            "in_flight x (layers_on_stage x per_layer + emb_dropout) + last_stage(2 s b h x act_bytes / t_sp "
            "+ s b V x (4 + 2) / t) + full_recompute_working_layer; interleaved (v > 1): in_flight = "
            "(2 (p - 1 - rank) + (v - 1) p + 1) / v stages' worth, emb_dropout x min(p, micro-batches)",
            {"in_flight_microbatches": in_flight, "layers_on_stage": ls, "virtual_stages": v,
             "per_layer_bytes": per_layer,
             "embedding_dropout_bytes": emb, "output_layer_and_logits_bytes": head,
             "recompute_working_bytes": working},
            k.data.activations.pipeline_source + " " + k.data.activations.source,
            k.data.activations.full_recompute_source,
        ))
    return total


def _inference_activations(j: _Job, gpu: GpuSpec, lay: Layout, last: bool, steps: list[Step] | None) -> float:
    """The engine's transient for one forward pass of ``tokens`` tokens (nothing is kept between layers)."""
    k, w, m = j.k, j.w, j.mc.model
    eng = j.engine
    t = lay.tp
    ab = j.ab
    h, H, K, d = m.hidden_size, m.heads, m.kv_heads, m.head_dim_
    small = eng.is_small(gpu)
    if eng.prefill is None:  # no chunking: the whole prompt of every sequence at once
        tokens = w.concurrency * w.prompt_tokens
    else:
        tokens = eng.prefill_small if small else eng.prefill
    rows = (eng.rows_small if small else eng.rows) or w.concurrency
    if m.attention == "mla":
        ml = m.mla
        assert ml is not None
        attn = H * (ml.qk_nope_head_dim + ml.qk_rope_head_dim) * 2 + H * ml.v_head_dim * 2
    else:
        attn = (H + 2 * K) * d + H * d
    mats = 3 if m.ffn_kind == "gated" else 2
    mlp = mats * m.ffn_size
    if m.moe is not None:
        e = m.moe
        fs = e.shared_expert_ffn_size or e.expert_ffn_size
        mlp = max(mlp if e.dense_layers else 0,
                  e.experts_per_token * (mats * e.expert_ffn_size + h) + e.shared_experts * mats * fs)
    per_token = ab * (2 * h + max(attn, mlp) / t)  # residual + normed input + the larger block's intermediates
    transient = tokens * per_token
    if not w.flash_attention:
        keys = w.prompt_tokens if eng.prefill is None else w.context_tokens
        transient += tokens * keys * (H / t) * (ab + k.logit_fp32_bytes)  # scores + fp32 softmax
    logits = rows * m.vocab_size / t * k.logit_fp32_bytes if last else 0.0
    total = transient + logits
    if steps is not None:
        steps.append(Step(
            "activations per GPU (inference transient)", total, "bytes",
            "tokens x act_bytes x (2h + max(attention, MLP intermediates)/t) + rows x V/t x 4"
            + ("" if w.flash_attention else " + tokens x keys x heads/t x (act_bytes + 4)"),
            {"tokens": tokens, "bytes_per_token": per_token, "logit_rows": rows, "vocab": m.vocab_size, "t": t,
             "engine": w.engine.value},
            eng.source,
            "one layer's intermediates live at a time; the engine's profiling pass sets the peak",
        ))
    return total


# ================================================================================================= KV cache


def _kv_dtype_bytes(workload: Workload) -> float:
    dt = workload.kv_cache_dtype
    b = DTYPE_BYTES.get(dt)
    if b is None:
        raise InvalidInputError(f"unknown KV cache dtype {dt!r}; use one of {', '.join(DTYPE_BYTES)}")
    return b


def _kv_width(m: ModelSpec, tp: int) -> tuple[float, str]:
    """Elements cached per token per layer on one GPU, and the formula used."""
    if m.attention == "mla":
        ml = m.mla
        assert ml is not None
        return float(ml.kv_lora_rank + ml.qk_rope_head_dim), "(kv_lora_rank + qk_rope_head_dim), replicated over tp"
    heads = max(1, -(-m.kv_heads // tp))
    return float(2 * heads * m.head_dim_), "2 x max(1, ceil(kv_heads / tp)) x head_dim"


def kv_cache_bytes_per_sequence(
    model: ModelSpec, workload: Workload, layout: Layout, context_tokens: int | None = None,
) -> float:
    """KV-cache bytes one sequence of ``context_tokens`` needs on one GPU (worst pipeline stage).

    Per layer and token: 2 x kv_heads x head_dim x bytes (K and V; GQA/MQA-aware, Ainslie et al. 2023), or the MLA
    latent kv_lora_rank + qk_rope_head_dim (DeepSeek-V2, arXiv:2405.04434, sec. 2.1.2). tp splits KV heads (each
    GPU keeps at least one, replicated when kv_heads < tp); pp splits layers; sliding-window layers hold at most
    the window. Ignores the engine's block rounding (vLLM: 16-token blocks).
    """
    a = _mc(model).arch
    ctx = context_tokens if context_tokens is not None else workload.context_tokens
    width, _ = _kv_width(model, layout.tp)
    return _layers_on_stage(a.layers, layout.pp) * _avg_keys(a, ctx) * width * _kv_dtype_bytes(workload)


def kv_cache_bytes_per_token(model: ModelSpec, workload: Workload, layout: Layout) -> float:
    """Per-GPU KV-cache bytes per token of context (averaged over ``workload.context_tokens`` for sliding windows).

    E.g. Llama-2-7B fp16: 2 x 32 layers x 32 heads x 128 x 2 B = 0.5 MiB; DeepSeek-V3 MLA: (512 + 64) x 61 x 2 B.
    """
    ctx = workload.context_tokens
    return kv_cache_bytes_per_sequence(model, workload, layout, ctx) / ctx


# ================================================================================================ the stages


class _Parts:
    """One stage's bytes, filled in by ``_training_stage`` / ``_inference_stage`` (a plain class: cheap to define)."""

    __slots__ = ("activations", "gradients", "host", "kv", "nvme", "optimizer", "overhead", "weights")

    def __init__(self) -> None:
        self.weights = self.gradients = self.optimizer = self.activations = 0.0
        self.kv = self.overhead = self.host = self.nvme = 0.0

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.kv + self.overhead


def _stage_weight_bytes(
    wb: _WeightBytes, a: _Arch, lay: Layout, tied: bool, first: bool, last: bool, expert_shards: int,
) -> tuple[float, float]:
    """(non-expert, expert) stored bytes of one stage on one GPU, before ZeRO: TP splits matrices and the
    vocab-parallel embedding/lm_head, EP splits experts, PP gives each stage ceil(L/p) layers."""
    return _stage_weight_bytes_of(wb, a, lay.tp, lay.pp, tied, first, last, expert_shards)


def _stage_weight_bytes_of(
    wb: _WeightBytes, a: _Arch, tp: int, pp: int, tied: bool, first: bool, last: bool, expert_shards: int,
) -> tuple[float, float]:
    frac = _layers_on_stage(a.layers, pp) / a.layers
    dense = wb.layer * frac / tp + wb.vector * frac
    if first:
        dense += wb.emb / tp
    if last:
        dense += wb.head / tp + wb.final
        if tied and pp > 1:  # the last stage keeps its own copy of the tied embedding (Megatron)
            dense += wb.emb / tp
    return dense, wb.expert * frac / expert_shards


class _Stage:
    """One pipeline stage of one (gpu kind, tp, pp, dp, ep) training layout: every term that does not depend on
    the ZeRO stage, the offload target, the recompute mode or the micro-batch, computed once.

    ``_training_stage`` (what ``estimate_memory`` reports) and ``TrainingCellMemory`` (what the planner checks
    hundreds of thousands of times) both evaluate a stage through ``_states`` and ``_activation_terms`` on these
    terms, so the two agree to the last bit.
    """

    __slots__ = (
        "adapters", "base_dense", "base_expert", "bucket", "ctx", "dequant", "dp", "edp", "first", "j", "last",
        "nccl", "pp", "r_div", "shards", "tp", "train_dense", "train_expert", "v", "zero3",
    )

    def __init__(self, j: _Job, kind: str, tp: int, pp: int, dp: int, ep: int, sp: bool, first: bool,
                 last: bool, v: int = 1) -> None:
        k = j.k
        m, a = j.mc.model, j.mc.arch
        gb = j.gb
        self.j, self.tp, self.pp, self.dp, self.first, self.last = j, tp, pp, dp, first, last
        self.v = v if pp > 1 else 1
        self.r_div = tp if (sp and tp > 1) else 1
        shards, edp = _expert_sharding_of(tp, dp, ep)
        self.shards, self.edp = shards, edp
        frac = (-(-a.layers // pp)) / a.layers
        tied = m.tied_embeddings
        base = j.base
        self.base_dense, self.base_expert = _stage_weight_bytes_of(base, a, tp, pp, tied, first, last, shards)
        # parameters on this stage (what gradients and optimizer states are counted over)
        if j.adapter:
            self.train_dense, self.train_expert = j.lora_params * frac / tp, 0.0
        else:
            self.train_dense, self.train_expert = _stage_weight_bytes_of(j.params, a, tp, pp, tied, first, last,
                                                                         shards)
        self.adapters = self.train_dense * j.tw if j.adapter else 0.0
        self.ctx = k.context_bytes.get(kind, 0.0)
        self.nccl = _communicators_of(m, tp, pp, dp, ep, True) * k.nccl_bytes
        self.zero3 = 0.0  # the ZeRO-3 gather buffers (counted only at stage 3)
        if dp > 1:
            # the largest block gathered at once: one layer (this GPU's tp/ep shard of it), the embedding or lm_head
            unit = max(a.layer_unit / tp + a.expert_unit / shards, a.emb_params / tp, a.head_params / tp)
            unit_b = unit * (base.total / a.total_params)
            unit_grad = 0.0 if j.adapter else unit * gb
            self.zero3 = k.zero_units * unit_b + k.zero_grad_units * unit_grad
        self.bucket = min(k.bucket_elements, self.train_dense + self.train_expert) * gb if dp > 1 else 0.0
        self.dequant = _BF16 * a.largest_matrix / tp if j.storage != "dense" else 0.0


def _states(st: _Stage, zero: int, offload: Offload) -> tuple[float, float, float, float, float]:
    """(weights, gradients, optimizer, host, nvme) bytes of one stage after ZeRO sharding and offload."""
    j = st.j
    dp, edp = st.dp, st.edp
    gb = j.gb
    train_dense, train_expert = st.train_dense, st.train_expert
    w_div, we_div = (dp, edp) if zero >= 3 else (1, 1)
    g_div, ge_div = (dp, edp) if zero >= 2 else (1, 1)
    o_div, oe_div = (dp, edp) if zero >= 1 else (1, 1)
    weights = (st.base_dense + st.adapters) / w_div + st.base_expert / we_div
    grads = train_dense * gb / g_div + train_expert * gb / ge_div
    optim = (train_dense / o_div + train_expert / oe_div) * j.opt_per_param
    host = nvme = 0.0
    if offload is not Offload.none:
        trainable_shard = train_dense / g_div + train_expert / ge_div
        to_host = offload is Offload.cpu
        if to_host:
            host += optim
        else:
            nvme += optim
        optim = 0.0
        if zero >= 2:
            host += trainable_shard * j.k.host_grad_bytes
            grads = 0.0
        if zero >= 3:
            if to_host:
                host += weights
            else:
                nvme += weights
            weights = 0.0
    return weights, grads, optim, host, nvme


def _training_stage(
    j: _Job, gpu: GpuSpec, lay: Layout, first: bool, last: bool, steps: list[Step] | None,
) -> _Parts:
    k, w = j.k, j.w
    out = _Parts()
    gb = j.gb
    opt = j.opt
    adapter = j.adapter
    dp, zero = lay.dp, lay.zero
    st = _Stage(j, gpu.kind, lay.tp, lay.pp, dp, lay.ep, lay.sequence_parallel, first, last, lay.virtual_stages)
    storage = j.storage
    base_dense, base_expert = st.base_dense, st.base_expert
    train_dense, train_expert = st.train_dense, st.train_expert
    master, fact_ratio = j.master, j.fact_ratio
    adapters = st.adapters
    out.weights, out.gradients, out.optimizer, out.host, out.nvme = _states(st, zero, lay.offload)
    out.activations = _training_activations(j, lay, first, last, steps)

    # overhead ------------------------------------------------------------------------------------------------
    ctx, nccl = st.ctx, st.nccl
    frag = k.fragmentation * (out.activations + out.gradients)
    zero3 = st.zero3 if zero >= 3 else 0.0
    bucket, dequant = st.bucket, st.dequant
    out.overhead = ctx + nccl + frag + zero3 + bucket + dequant

    if steps is not None:
        d = k.data
        steps.insert(0, Step(
            "weights per GPU", out.weights, "bytes",
            "(stage params / tp [experts / (tp x ep)]) x bytes_per_weight / (dp if ZeRO-3)"
            + (" + LoRA adapters x bytes" if adapter else ""),
            {"storage": storage, "base_stage_bytes": base_dense + base_expert, "adapter_bytes": adapters,
             "tp": lay.tp, "pp": lay.pp, "dp": dp, "ep": lay.ep, "zero": zero, "offload": lay.offload.value},
            d.precision_bytes.source + (" " + _quant_source(storage) if storage != "dense" else ""),
            "embedding on the first stage, lm_head + final norm on the last; norms replicated over tp",
        ))
        steps.insert(1, Step(
            "gradients per GPU", out.gradients, "bytes",
            "trainable params on stage x grad_bytes / (dp if ZeRO >= 2)",
            {"trainable_params_on_gpu": train_dense + train_expert, "grad_bytes": gb, "zero": zero, "dp": dp},
            _ZERO, "gradients in the training precision (bf16), as in the ZeRO paper and Megatron-LM; DeepSpeed's "
            "fp32 gradient accumulation would add 2-4 bytes/param",
        ))
        steps.insert(2, Step(
            "optimizer states per GPU", out.optimizer, "bytes",
            "trainable params x (master + moments [+ factored]) / (dp if ZeRO >= 1)",
            {"optimizer": w.optimizer.value, "master_bytes": master, "state_bytes": opt.state_bytes,
             "factored_bytes_per_param": opt.factored_bytes * fact_ratio, "zero": zero, "dp": dp},
            opt.source + (" " + d.lora.source if adapter else ""),
            "offloaded states are reported as host/NVMe bytes, not GPU bytes" if lay.offload is not Offload.none
            else "",
        ))
        steps.append(Step(
            "overhead per GPU", out.overhead, "bytes",
            "context + NCCL x communicators + fragmentation x (activations + gradients) + ZeRO-3 gathered units "
            "+ reduce bucket + QLoRA dequantization buffer",
            {"context_bytes": ctx, "nccl_bytes": nccl, "fragmentation_bytes": frag, "zero3_buffer_bytes": zero3,
             "reduce_bucket_bytes": bucket, "dequant_buffer_bytes": dequant},
            f"{d.runtime.context_source} {d.runtime.nccl_source} {d.runtime.fragmentation_source} "
            f"{d.zero.source}",
            "named constants from data/memory.yaml",
        ))
        if out.host or out.nvme:
            steps.append(Step(
                "offloaded states per GPU", out.host + out.nvme, "bytes",
                "optimizer states (+ fp32 gradients if ZeRO >= 2, + weights if ZeRO-3) off the GPU",
                {"host_bytes": out.host, "nvme_bytes": out.nvme}, d.offload.source,
            ))
    return out


def _quant_source(storage: str) -> str:
    d = memory_data()
    if storage in d.quantization:
        return d.quantization[storage].source
    return d.gguf.block_source + " " + d.gguf.mix_source


def _inference_stage(
    j: _Job, gpu: GpuSpec, lay: Layout, first: bool, last: bool, steps: list[Step] | None,
) -> _Parts:
    k, w = j.k, j.w
    m, a = j.mc.model, j.mc.arch
    out = _Parts()
    storage, wb = j.storage, j.base
    dense, expert = _stage_weight_bytes(wb, a, lay, m.tied_embeddings, first, last, _expert_sharding(lay)[0])
    out.weights = dense + expert
    out.activations = _inference_activations(j, gpu, lay, last, steps)
    width, how = _kv_width(m, lay.tp)
    per_seq = (-(-a.layers // lay.pp)) * _avg_keys(a, w.context_tokens) * width * j.kv_bytes
    out.kv = per_seq * w.concurrency
    eng = j.engine
    ctx = 0.0 if eng.in_reserve else k.context_bytes.get(gpu.kind, 0.0)
    nccl = _communicators(m, lay, False) * k.nccl_bytes
    frag = k.fragmentation * (out.activations + out.kv) if eng.fragmentation else 0.0
    out.overhead = ctx + eng.non_torch_bytes + nccl + frag
    if steps is not None:
        d = k.data
        steps.insert(0, Step(
            "weights per GPU", out.weights, "bytes",
            "sum over tensors of params x stored bits / 8, matrices / tp [experts / (tp x ep)], layers / pp",
            {"storage": storage, "effective_bits_per_weight": 8 * wb.total / a.total_params, "tp": lay.tp,
             "pp": lay.pp, "ep": lay.ep},
            _quant_source(storage) if storage != "dense" else d.precision_bytes.source,
            "norms and biases unquantized; embeddings/lm_head as the quantization toolchain leaves them",
        ))
        steps.append(Step(
            "KV cache per GPU", out.kv, "bytes",
            f"layers_on_stage x {how} x kv_bytes x context x concurrency",
            {"layers_on_stage": _layers_on_stage(a.layers, lay.pp), "elements_per_token_per_layer": width,
             "kv_dtype": w.kv_cache_dtype, "context_tokens": w.context_tokens, "concurrency": w.concurrency,
             "bytes_per_sequence": per_seq},
            "Kwon et al. 2023 (vLLM/PagedAttention) sec. 2.2; Ainslie et al. 2023 (GQA); DeepSeek-V2 "
            "(arXiv:2405.04434) sec. 2.1.2 (MLA latent cache)",
            "sliding-window layers hold min(context, window) tokens; no block rounding",
        ))
        steps.append(Step(
            "overhead per GPU", out.overhead, "bytes",
            "context (outside the engine's reservation) + engine non-torch memory + NCCL x communicators"
            + (" + fragmentation x (activations + KV)" if eng.fragmentation else ""),
            {"context_bytes": ctx, "engine_non_torch_bytes": eng.non_torch_bytes, "nccl_bytes": nccl,
             "fragmentation_bytes": frag},
            d.runtime.context_source + " " + eng.source + " " + d.runtime.nccl_source,
            "the CUDA context and CUDA graphs live in the memory the engine leaves unreserved" if eng.in_reserve
            else "",
        ))
    return out


# ================================================================================================ public API


def estimate_memory(
    model: ModelSpec, gpu: GpuSpec, workload: Workload, layout: Layout, *, explain: bool = False
) -> MemoryBreakdown:
    """What one GPU of ``layout`` holds for ``workload`` on ``model``: the worst pipeline stage's breakdown.

    Training (finetune, pretrain, lora, qlora): weights, gradients, optimizer states after TP/PP/EP/ZeRO sharding
    and offload (ZeRO paper sec. 5), activations (Korthikanti et al. 2022 sec. 4), overhead. Inference: weights
    at their storage cost, the KV cache for ``concurrency`` sequences of ``context_tokens``, the engine's
    activation transient, overhead. With pp > 1 both the first stage (embedding, p micro-batches in flight) and
    the last (lm_head, logits) are sized and the larger is returned.
    """
    j = _job(model, workload)
    stage_fn = _training_stage if j.training else _inference_stage
    if layout.pp == 1:
        name, first, last = "all", True, True
        best = stage_fn(j, gpu, layout, True, True, None)
    else:
        a = stage_fn(j, gpu, layout, True, False, None)
        b = stage_fn(j, gpu, layout, False, True, None)
        if a.total >= b.total:
            best, name, first, last = a, "first", True, False
        else:
            best, name, first, last = b, "last", False, True
    steps: tuple[Step, ...] = ()
    if explain:
        collected: list[Step] = []
        best = stage_fn(j, gpu, layout, first, last, collected)
        collected.append(Step(
            "memory per GPU", best.total, "bytes",
            "weights + gradients + optimizer + activations + KV cache + overhead",
            {"weights_bytes": best.weights, "gradients_bytes": best.gradients, "optimizer_bytes": best.optimizer,
             "activations_bytes": best.activations, "kv_cache_bytes": best.kv, "overhead_bytes": best.overhead,
             "pipeline_stage": name},
            "llmsizer memory model (docs/methodology.md)",
            "the worse of the first and last pipeline stage" if layout.pp > 1 else "",
        ))
        steps = tuple(collected)
    return MemoryBreakdown(
        weights_bytes=best.weights, gradients_bytes=best.gradients, optimizer_bytes=best.optimizer,
        activations_bytes=best.activations, kv_cache_bytes=best.kv, overhead_bytes=best.overhead,
        host_offload_bytes=best.host, nvme_offload_bytes=best.nvme, steps=steps, stage=name,
    )


class TrainingCellMemory:
    """Per-GPU memory totals of one training cell (model, workload, GPU, tp, pp, dp, ep, v) for any ZeRO stage,
    offload target, recompute mode and micro-batch: what ``estimate_memory(...).total_bytes`` returns for that
    layout, to the last bit, without building a ``Layout`` or a ``MemoryBreakdown``.

    The planner asks this question hundreds of thousands of times per search, and most of a layout's memory
    (weights and states per stage, communicators, buffers) depends only on the cell. The per-cell terms live in
    ``_Stage``; states are memoized per (zero, offload) and activations per (recompute, micro-batch).
    """

    __slots__ = ("_acts", "_stages", "_states", "frag")

    def __init__(self, model: ModelSpec, gpu: GpuSpec, workload: Workload, tp: int, pp: int, dp: int, ep: int,
                 sequence_parallel: bool = True, virtual_stages: int = 1) -> None:
        j = _job(model, workload)
        if not j.training:
            raise ValueError("TrainingCellMemory is for training workloads")
        v = virtual_stages
        if pp == 1:
            stages = (_Stage(j, gpu.kind, tp, pp, dp, ep, sequence_parallel, True, True),)
        else:
            stages = (_Stage(j, gpu.kind, tp, pp, dp, ep, sequence_parallel, True, False, v),
                      _Stage(j, gpu.kind, tp, pp, dp, ep, sequence_parallel, False, True, v))
        self._stages = stages
        self._states: dict[tuple[int, Offload], tuple] = {}
        self._acts: dict[tuple[Recompute, int], tuple[float, ...]] = {}
        self.frag = j.k.fragmentation

    def total_bytes(self, zero: int, offload: Offload, recompute: Recompute, micro_batch: int) -> float:
        """``estimate_memory(model, gpu, workload, Layout(tp, pp, dp, ep, zero, offload, recompute, micro_batch))
        .total_bytes``: the worse of the first and last pipeline stage."""
        sk = (zero, offload)
        states = self._states.get(sk)
        if states is None:
            states = self._states[sk] = tuple(_states(st, zero, offload) for st in self._stages)
        ak = (recompute, micro_batch)
        acts = self._acts.get(ak)
        if acts is None:
            acts = self._acts[ak] = tuple(
                _activation_terms(st.j, st.tp, st.pp, st.dp, st.r_div, st.first, st.last, recompute, micro_batch,
                                  st.v)[0]
                for st in self._stages)
        best = -1.0
        for st, (weights, grads, optim, _, _), act in zip(self._stages, states, acts):
            # the same sums, in the same order, as _training_stage and _Parts.total
            overhead = st.ctx + st.nccl + self.frag * (act + grads) + (st.zero3 if zero >= 3 else 0.0) + st.bucket \
                + st.dequant
            total = weights + grads + optim + act + 0.0 + overhead
            if best < 0.0:
                best = total
            elif not best >= total:  # estimate_memory keeps the first stage unless the last is strictly larger
                best = total
        return best


def usable_memory_bytes(gpu: GpuSpec, workload: Workload, layout: Layout | None = None) -> float:
    """Bytes a job may fill on ``gpu``: the device's usable memory (Apple: the GPU's share of unified memory)
    times the engine's reservation for inference (vLLM gpu_memory_utilization 0.9, SGLang mem_fraction_static by
    tp size); training and the other engines may use all of it.
    """
    base = float(gpu.usable_memory_bytes)
    if workload.mode is not Mode.inference:
        return base
    return base * _k().engines[workload.engine].memory_fraction(layout.tp if layout is not None else 1)
