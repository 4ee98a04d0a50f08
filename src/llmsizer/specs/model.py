"""What a model *is*: a transformer's architecture, enough to count its parameters and size its memory and FLOPs.

Frozen standard-library dataclasses whose annotations carry the constraints (``data/validation.py``), like
``specs/gpu.py``. ``specs/architecture.py`` turns a ``ModelSpec`` into the ledger of its weight matrices and saved
tensors that memory and compute both read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from llmsizer.record import record

if TYPE_CHECKING:  # the annotations' vocabulary, resolved by data/validation.py when a record is validated
    from typing import Annotated

    from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

    from llmsizer.data.validation import CatalogId, Source


class _Frozen:
    __pydantic_config__ = {"extra": "forbid"}  # an unknown key in a catalog entry is an error, not ignored


@record(kw_only=True)
class MlaSpec(_Frozen):
    """Multi-head latent attention (DeepSeek-V2/V3): low-rank compressed K/V (and optionally Q)."""

    q_lora_rank: NonNegativeInt = 0  # 0 = queries are not compressed (DeepSeek-V2-Lite)
    kv_lora_rank: PositiveInt
    qk_nope_head_dim: PositiveInt
    qk_rope_head_dim: PositiveInt
    v_head_dim: PositiveInt


@record(kw_only=True)
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


@record(kw_only=True)
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
