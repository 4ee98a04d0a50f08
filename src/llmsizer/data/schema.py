"""The record schemas of the data files (``data/memory.yaml``, ``compute.yaml``, ``server.yaml``, ``frameworks.yaml``): frozen dataclasses
that ``data/validation.py`` checks the YAML against, every field a number with a unit in its name or a ``source``.

Imported only on a cache miss: ``data.load`` validates a file against its schema once, converts the records into
plain namespaces (``data/__init__.py``) and keeps those in the disk cache, so a warm start-up never defines these
classes. Cross-field rules live in ``__post_init__``; unknown keys are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from llmsizer.workload.choices import LLAMA_CPP_APPS, Engine, Framework, Mode, Offload, Optimizer, Precision, Quant

if TYPE_CHECKING:  # the records' annotation vocabulary, resolved by data/validation.py
    from typing import Annotated

    from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

    from llmsizer.data.validation import Source


class _Strict:
    """Base of the records: an unknown key in a data file is an error."""

    __pydantic_config__ = {"extra": "forbid"}


# ================================================================================================ memory.yaml

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
        problems += [f"engines lacks {e.value!r}" for e in Engine
                     if e.value not in self.engines and e not in LLAMA_CPP_APPS]
        if problems:
            raise ValueError("; ".join(problems))


# =============================================================================================== compute.yaml


@dataclass(frozen=True, kw_only=True)
class TrainingParams(_Strict):
    step_efficiency: Annotated[float, Field(gt=0, le=1)]
    step_efficiency_source: str
    size_factor_k: Annotated[float, Field(ge=0)]
    size_factor_source: str
    fp8_speedup_vs_bf16: Annotated[float, Field(ge=1)]
    fp8_source: str
    moe_compute_efficiency: Annotated[float, Field(gt=0, le=1)]
    moe_source: str
    streaming_bandwidth_efficiency: Annotated[float, Field(gt=0, le=1)]
    qlora_source: str
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
class InferenceParams(_Strict):
    fp8_gemm_speedup_vs_bf16: Annotated[float, Field(ge=1)]
    fp8_gemm_source: str
    moe_expert_bandwidth_efficiency: Annotated[float, Field(gt=0, le=1)]
    moe_expert_source: str


@dataclass(frozen=True, kw_only=True)
class GpuClass(_Strict):
    """A class of accelerators sharing a measured GEMM ceiling: by ``ids``, or by vendor/kind/scale-up/form factor."""

    id: str
    ids: tuple[str, ...] = ()
    vendor: str | None = None
    kind: str | None = None
    scaleup: str | None = None
    form_factor_contains: str | None = None
    exclude_form_factor_contains: str | None = None
    mamf_fraction: Annotated[float, Field(gt=0, le=1)]
    source: str
    # the share of the datasheet peak that the runtimes' matmul kernels can issue at all on this class (1 for GPUs;
    # below 1 where the datasheet counts units LLM kernels barely use, e.g. Intel AMX tiles)
    kernel_peak_fraction: Annotated[float, Field(gt=0, le=1)] = 1.0
    kernel_peak_source: str | None = None


@dataclass(frozen=True, kw_only=True)
class EngineProfile(_Strict):
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
    # the gpu_classes id whose measured GEMM ceiling flop_efficiency was calibrated against: other classes scale it
    # by their mamf_fraction over that one's (None: flop_efficiency is a share of any device's peak as it stands)
    flop_efficiency_reference: str | None = None


@dataclass(frozen=True, kw_only=True)
class CostParams(_Strict):
    inference_power_fraction: Annotated[float, Field(gt=0, le=1)]
    inference_power_source: str
    pue: Annotated[float, Field(ge=1)]
    pue_source: str
    amortization_years: Annotated[float, Field(gt=0)]
    amortization_utilization: Annotated[float, Field(gt=0, le=1)]
    electricity_usd_per_kwh: Annotated[float, Field(ge=0)]
    amortization_source: str


@dataclass(frozen=True, kw_only=True)
class CalibrationPoint(_Strict):
    id: str
    quantity: str
    published: float
    unit: str
    source: Source
    derivation: str | None = None
    tolerance: Annotated[float, Field(gt=0)]
    known_deviation: str | None = None


@dataclass(frozen=True, kw_only=True)
class ComputeData(_Strict):
    """The validated content of ``data/compute.yaml``."""

    schema_version: int
    training: TrainingParams
    gpu_classes: Annotated[tuple[GpuClass, ...], Field(min_length=1)]
    inference: InferenceParams
    engines: dict[str, EngineProfile]
    cost: CostParams
    calibration: tuple[CalibrationPoint, ...] = ()

    def __post_init__(self) -> None:
        classes = {c.id for c in self.gpu_classes}
        bad = [f"engines.{n}.flop_efficiency_reference {e.flop_efficiency_reference!r} is no gpu_classes id"
               for n, e in self.engines.items()
               if e.flop_efficiency_reference is not None and e.flop_efficiency_reference not in classes]
        if bad:
            raise ValueError("; ".join(bad))


# ============================================================================================ frameworks.yaml


@dataclass(frozen=True, kw_only=True)
class FrameworkLayouts(_Strict):
    tensor_parallel: bool
    pipeline_parallel: bool
    interleaved_pipeline: bool
    sequence_parallel: bool
    expert_parallel: bool
    zero: Annotated[tuple[Annotated[int, Field(ge=0, le=3)], ...], Field(min_length=1)]
    zero_with_pipeline: Annotated[tuple[Annotated[int, Field(ge=0, le=3)], ...], Field(min_length=1)]
    offload: Annotated[tuple[Offload, ...], Field(min_length=1)]

    def __post_init__(self) -> None:
        if not set(self.zero_with_pipeline) <= set(self.zero):
            raise ValueError("zero_with_pipeline must be a subset of zero")
        if Offload.none not in self.offload:
            raise ValueError("offload must include none")


@dataclass(frozen=True, kw_only=True)
class FrameworkMemory(_Strict):
    saved_tensors: Literal["fused", "modules"]
    loss: Literal["fused", "upcast", "chunked", "lse"]
    loss_chunks: PositiveInt = 1
    gradients: Literal["persistent", "freed"]
    gradient_bytes: PositiveFloat | None = None
    adapter_dtype: Literal["compute", "fp32"]
    offloaded_checkpoints: bool = False


@dataclass(frozen=True, kw_only=True)
class FrameworkSpeed(_Strict):
    elementwise: Literal["fused", "modules"]
    lora: Literal["fused", "modules", "peft"]
    reduce_bytes: PositiveFloat | None = None  # bytes per gradient element on the wire (the stack's reduce dtype)


@dataclass(frozen=True, kw_only=True)
class FrameworkProfile(_Strict):
    name: str
    modes: Annotated[tuple[Mode, ...], Field(min_length=1)]
    max_gpus: PositiveInt | None = None
    layouts: FrameworkLayouts
    memory: FrameworkMemory
    speed: FrameworkSpeed
    exports: tuple[str, ...] = ()
    source: Source

    def __post_init__(self) -> None:
        if Mode.inference in self.modes:
            raise ValueError("a training framework does not serve inference (that is --engine)")


@dataclass(frozen=True, kw_only=True)
class FrameworksData(_Strict):
    """The validated content of ``data/frameworks.yaml``."""

    schema_version: int
    frameworks: dict[str, FrameworkProfile]

    def __post_init__(self) -> None:
        names = {f.value for f in Framework if f is not Framework.any}
        if set(self.frameworks) != names:
            raise ValueError(f"frameworks must be exactly {', '.join(sorted(names))}")


# server.yaml: data/schema_server.py (ServerRules, Chassis, Machine)
from llmsizer.data.schema_server import Chassis, Machine, ServerRules  # noqa: F401

