"""What a thing *is*: frozen, validated descriptions of accelerators, models and cloud instances.

Each record is a frozen standard-library dataclass whose annotations carry the constraints (``validation.py``):
``validate(GpuSpec, entry)`` checks a YAML/JSON entry with pydantic and returns the record, while a start-up served
from the disk cache unpickles records without importing pydantic. Constructing a record directly (tests, derived
models) runs only the cross-field checks of ``__post_init__``.

The YAML catalogs store figures in the units their datasheets print (GB/s, dense TFLOP/s, GiB or GB of memory);
each spec exposes the same figures in base units (bytes, bytes/s, FLOP/s) through properties whose names carry the
unit. Nothing outside this module and ``render/`` should ever see a GB or a TFLOP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from llmsizer.units import GB, GIB, TERA

if TYPE_CHECKING:  # the annotations' vocabulary, resolved by validation.py when a record is validated
    from typing import Annotated

    from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

    from llmsizer.validation import CatalogId, Source

DType = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp6", "fp4", "int4"]


class _Frozen:
    __pydantic_config__ = {"extra": "forbid"}  # an unknown key in a catalog entry is an error, not ignored


# --------------------------------------------------------------------------------------------------------- GPUs


@dataclass(frozen=True, kw_only=True)
class GpuSpec(_Frozen):
    """One accelerator (or a CPU socket / Apple SoC used as one), as its datasheet describes it."""

    id: CatalogId
    aliases: tuple[str, ...] = ()
    name: str
    vendor: Literal["nvidia", "amd", "intel", "huawei", "apple", "cpu"]
    kind: Literal["gpu", "unified", "cpu"] = "gpu"
    form_factor: str
    memory_gib: PositiveFloat | None = None
    memory_gb: PositiveFloat | None = None
    usable_memory_fraction: Annotated[float, Field(gt=0, le=1)] = 1.0
    usable_memory_source: str | None = None
    memory_bandwidth_gb_s: PositiveFloat
    dense_tflops: dict[DType, PositiveFloat]
    flops_notes: str | None = None
    scaleup: str = "pcie"
    scaleup_bandwidth_gb_s: PositiveFloat
    scaleup_domain: PositiveInt = 1
    gpus_per_node: PositiveInt = 8
    scaleout_gbps: NonNegativeFloat = 0.0
    tdp_watts: PositiveFloat
    price_usd_per_gpu_hour: PositiveFloat | None = None
    price_source: str | None = None
    price_date: str | None = None
    purchase_usd: PositiveFloat | None = None
    purchase_source: str | None = None
    release_year: PositiveInt | None = None
    source: Source
    notes: str | None = None

    def __post_init__(self) -> None:
        if (self.memory_gib is None) == (self.memory_gb is None):
            raise ValueError("give exactly one of memory_gib (2^30 bytes) or memory_gb (1e9 bytes)")
        if "bf16" not in self.dense_tflops and "fp16" not in self.dense_tflops and "fp32" not in self.dense_tflops:
            raise ValueError("dense_tflops needs at least one of bf16, fp16, fp32")
        if self.price_usd_per_gpu_hour is not None and not self.price_source:
            raise ValueError("price_usd_per_gpu_hour needs a price_source")

    @property
    def memory_bytes(self) -> int:
        """Total device memory in bytes (for Apple SoCs: the whole unified memory)."""
        if self.memory_gib is not None:
            return int(round(self.memory_gib * GIB))
        return int(round(self.memory_gb * GB))  # type: ignore[operator]

    @property
    def usable_memory_bytes(self) -> int:
        """Memory a framework can allocate on this device (Apple: the GPU's share of unified memory)."""
        return int(self.memory_bytes * self.usable_memory_fraction)

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        return self.memory_bandwidth_gb_s * GB

    @property
    def flops(self) -> dict[str, float]:
        """Dense peak FLOP/s (or OP/s for integer types) by dtype name."""
        return {k: v * TERA for k, v in self.dense_tflops.items()}

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s for compute in ``dtype``; falls back to the nearest wider type the chip has.

        A GPU without fp8 tensor cores runs fp8 weights through bf16/fp16 math, so fp8 falls back to bf16,
        bf16 to fp16 (V100, T4 have no bf16) and both to fp32.
        """
        chain = {
            "fp4": ["fp4", "fp8", "bf16", "fp16", "fp32"],
            "fp8": ["fp8", "bf16", "fp16", "fp32"],
            "int8": ["int8", "fp8", "bf16", "fp16", "fp32"],
            "bf16": ["bf16", "fp16", "fp32"],
            "fp16": ["fp16", "bf16", "fp32"],
            "tf32": ["tf32", "fp32"],
            "fp32": ["fp32", "tf32"],
        }.get(dtype, [dtype, "bf16", "fp16", "fp32"])
        for d in chain:
            if d in self.dense_tflops:
                return self.dense_tflops[d] * TERA  # type: ignore[index]
        return max(self.dense_tflops.values()) * TERA

    @property
    def scaleup_bandwidth_bytes_per_s(self) -> float:
        """Per-GPU scale-up bandwidth, *one direction* (vendors quote both directions summed)."""
        return self.scaleup_bandwidth_gb_s * GB / 2

    @property
    def scaleout_bandwidth_bytes_per_s(self) -> float:
        """Per-GPU scale-out network bandwidth (InfiniBand/RoCE), one direction, bytes/s."""
        return self.scaleout_gbps * 1e9 / 8

    @property
    def tdp_w(self) -> float:
        return self.tdp_watts


@dataclass(frozen=True, kw_only=True)
class CloudInstance(_Frozen):
    """A rentable server: which GPUs, how many, at what on-demand price."""

    provider: str
    instance: str
    gpu: str
    gpus: PositiveInt
    vcpus: PositiveInt
    ram_gib: PositiveFloat
    local_nvme_tb: NonNegativeFloat = 0.0
    network_gbps: NonNegativeFloat = 0.0
    usd_per_hour: PositiveFloat
    region: str | None = None
    price_source: Source
    price_date: str
    notes: str | None = None

    @property
    def ram_bytes(self) -> int:
        return int(self.ram_gib * GIB)


# ------------------------------------------------------------------------------------------------------- models


@dataclass(frozen=True, kw_only=True)
class MlaSpec(_Frozen):
    """Multi-head latent attention (DeepSeek-V2/V3): low-rank compressed K/V (and optionally Q)."""

    q_lora_rank: NonNegativeInt = 0  # 0 = queries are not compressed (DeepSeek-V2-Lite)
    kv_lora_rank: PositiveInt
    qk_nope_head_dim: PositiveInt
    qk_rope_head_dim: PositiveInt
    v_head_dim: PositiveInt


@dataclass(frozen=True, kw_only=True)
class MoeSpec(_Frozen):
    """Mixture-of-experts feed-forward layers."""

    experts: PositiveInt
    experts_per_token: PositiveInt
    expert_ffn_size: PositiveInt
    shared_experts: NonNegativeInt = 0
    shared_expert_ffn_size: NonNegativeInt | None = None  # per shared expert; default expert_ffn_size
    shared_expert_gate: bool = False  # Qwen2-MoE: a sigmoid gate (hidden x 1) on the shared expert
    dense_layers: NonNegativeInt = 0  # first k layers use a dense FFN of size ffn_size (DeepSeek first_k_dense)
    router_bias: bool = False

    def __post_init__(self) -> None:
        if self.experts_per_token > self.experts:
            raise ValueError("experts_per_token exceeds experts")


@dataclass(frozen=True, kw_only=True)
class ModelSpec(_Frozen):
    """A transformer's architecture, enough to count its parameters and size its memory and FLOPs."""

    id: CatalogId
    aliases: tuple[str, ...] = ()
    name: str
    family: str
    published_params: PositiveFloat
    published_active_params: PositiveFloat | None = None
    layers: PositiveInt
    hidden_size: PositiveInt
    heads: PositiveInt
    kv_heads: PositiveInt
    head_dim: PositiveInt | None = None
    ffn_size: PositiveInt
    ffn_kind: Literal["gated", "plain"] = "gated"
    activation: str = "silu"
    vocab_size: PositiveInt
    tied_embeddings: bool = False
    max_context: PositiveInt
    norm: Literal["rmsnorm", "layernorm", "layernorm_nobias"] = "rmsnorm"
    qkv_bias: bool = False
    attn_out_bias: bool = False
    mlp_bias: bool = False
    lm_head_bias: bool = False
    qk_norm: Literal["none", "head", "full"] = "none"  # RMSNorm on q and k: per head_dim (Qwen3) or full width (OLMo 2)
    extra_norms_per_layer: NonNegativeInt = 0  # Gemma 2/3 sandwich norms: 2 more per layer
    parallel_block: bool = False  # attention and MLP read the same normed input (GPT-J, Falcon, Cohere)
    position_embedding: Literal["rope", "learned", "alibi", "none"] = "rope"
    learned_positions: NonNegativeInt = 0
    embedding_norm: bool = False  # BLOOM: a LayerNorm right after the token embedding
    attention: Literal["mha", "gqa", "mqa", "mla"] = "gqa"
    mla: MlaSpec | None = None
    sliding_window: PositiveInt | None = None
    sliding_window_layers: NonNegativeInt = 0  # how many of `layers` use the window (rest are global)
    moe: MoeSpec | None = None
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    source: Source
    notes: str | None = None

    def __post_init__(self) -> None:
        if self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) is not divisible by kv_heads ({self.kv_heads})")
        if self.attention == "mla" and self.mla is None:
            raise ValueError("attention: mla needs an mla: block")
        if self.attention != "mla" and self.mla is not None:
            raise ValueError("an mla: block needs attention: mla")
        if self.sliding_window_layers > self.layers:
            raise ValueError("sliding_window_layers exceeds layers")
        if self.sliding_window_layers and self.sliding_window is None:
            raise ValueError("sliding_window_layers needs sliding_window")
        if self.moe and self.moe.dense_layers > self.layers:
            raise ValueError("moe.dense_layers exceeds layers")
        if self.position_embedding == "learned" and self.learned_positions == 0:
            raise ValueError("position_embedding: learned needs learned_positions")

    @property
    def head_dim_(self) -> int:
        """Per-head dimension (explicit in the config, else hidden / heads)."""
        return self.head_dim or self.hidden_size // self.heads

    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    @property
    def moe_layers(self) -> int:
        return 0 if self.moe is None else self.layers - self.moe.dense_layers
