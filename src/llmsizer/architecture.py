"""Parameter counts and weight-matrix shapes derived from a ``ModelSpec``.

Every count here is exact arithmetic over the architecture (the same shapes a Hugging Face ``config.json``
instantiates); ``tests/test_model_params.py`` checks each catalog entry against its published count.

Conventions (d = head_dim, H = heads, K = kv_heads, h = hidden, f = ffn size, V = vocab, L = layers):
- attention (MHA/GQA/MQA): q  h x H*d,  k, v  h x K*d,  o  H*d x h                (Vaswani et al. 2017; GQA: Ainslie 2023)
- attention (MLA, DeepSeek-V2 sec. 2.1): q_a h x r_q, q_b r_q x H*(d_nope+d_rope) (or q h x H*(d_nope+d_rope)),
  kv_a h x (r_kv + d_rope), kv_b r_kv x H*(d_nope+d_v), o H*d_v x h, plus RMSNorms over r_q and r_kv
- MLP: gated (SwiGLU/GeGLU, Shazeer 2020) 3 h f; plain 2 h f
- MoE layer: router h x E, E routed experts and S shared experts, each a (gated) MLP of its own width
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from llmsizer.specs import ModelSpec


@dataclass(frozen=True)
class Linear:
    """One kind of weight matrix: ``count`` copies of an ``in_features x out_features`` matrix in the model.

    ``active_count`` is how many of them one token passes through (differs from ``count`` for routed experts).
    ``kind``: attn | mlp | expert | shared_expert | router | lm_head.
    """

    name: str
    in_features: int
    out_features: int
    count: int
    active_count: int
    kind: str
    bias: bool = False

    @property
    def params(self) -> int:
        return self.count * self.in_features * self.out_features

    @property
    def active_params(self) -> int:
        return self.active_count * self.in_features * self.out_features


@dataclass(frozen=True)
class ParamCount:
    """Parameters by part; ``total`` is their sum and ``active`` what one token uses."""

    embedding: int
    lm_head: int
    attention: int
    dense_mlp: int
    routed_experts: int
    shared_experts: int
    router: int
    norms: int
    biases: int
    active: int

    @property
    def total(self) -> int:
        return (
            self.embedding + self.lm_head + self.attention + self.dense_mlp + self.routed_experts
            + self.shared_experts + self.router + self.norms + self.biases
        )


def _norm_params(m: ModelSpec, width: int) -> int:
    """Learnable parameters of one norm over ``width`` features: RMSNorm (gain) or LayerNorm (gain + bias)."""
    return 2 * width if m.norm == "layernorm" else width


def _mlp_matrices(m: ModelSpec) -> int:
    return 3 if m.ffn_kind == "gated" else 2


@lru_cache(maxsize=512)
def linear_layers(m: ModelSpec) -> tuple[Linear, ...]:
    """Every weight matrix of the decoder stack and the LM head (embeddings excluded)."""
    h, L, H, K, d = m.hidden_size, m.layers, m.heads, m.kv_heads, m.head_dim_
    out: list[Linear] = []
    if m.attention == "mla":
        a = m.mla
        assert a is not None
        qk = a.qk_nope_head_dim + a.qk_rope_head_dim
        if a.q_lora_rank:
            out.append(Linear("q_a_proj", h, a.q_lora_rank, L, L, "attn"))
            out.append(Linear("q_b_proj", a.q_lora_rank, H * qk, L, L, "attn"))
        else:
            out.append(Linear("q_proj", h, H * qk, L, L, "attn"))
        out.append(Linear("kv_a_proj", h, a.kv_lora_rank + a.qk_rope_head_dim, L, L, "attn"))
        out.append(Linear("kv_b_proj", a.kv_lora_rank, H * (a.qk_nope_head_dim + a.v_head_dim), L, L, "attn"))
        out.append(Linear("o_proj", H * a.v_head_dim, h, L, L, "attn", m.attn_out_bias))
    else:
        out.append(Linear("q_proj", h, H * d, L, L, "attn", m.qkv_bias))
        out.append(Linear("k_proj", h, K * d, L, L, "attn", m.qkv_bias))
        out.append(Linear("v_proj", h, K * d, L, L, "attn", m.qkv_bias))
        out.append(Linear("o_proj", H * d, h, L, L, "attn", m.attn_out_bias))

    dense_layers = L if m.moe is None else m.moe.dense_layers
    gated = m.ffn_kind == "gated"

    def mlp(prefix: str, width: int, count: int, active: int, kind: str) -> None:
        if gated:
            out.append(Linear(f"{prefix}gate_proj", h, width, count, active, kind, m.mlp_bias))
        out.append(Linear(f"{prefix}up_proj", h, width, count, active, kind, m.mlp_bias))
        out.append(Linear(f"{prefix}down_proj", width, h, count, active, kind, m.mlp_bias))

    if dense_layers:
        mlp("", m.ffn_size, dense_layers, dense_layers, "mlp")
    if m.moe is not None:
        e = m.moe
        n = L - e.dense_layers
        if n:
            out.append(Linear("router", h, e.experts, n, n, "router", e.router_bias))
            mlp("experts.", e.expert_ffn_size, n * e.experts, n * e.experts_per_token, "expert")
            if e.shared_experts:
                fs = e.shared_expert_ffn_size or e.expert_ffn_size
                mlp("shared_experts.", fs, n * e.shared_experts, n * e.shared_experts, "shared_expert")
                if e.shared_expert_gate:
                    out.append(Linear("shared_expert_gate", h, 1, n, n, "router"))
    if not m.tied_embeddings:
        out.append(Linear("lm_head", h, m.vocab_size, 1, 1, "lm_head", m.lm_head_bias))
    return tuple(out)


@lru_cache(maxsize=512)
def count_params(m: ModelSpec) -> ParamCount:
    """Exact parameter count of ``m`` by part (weights, biases and norm gains)."""
    h, L = m.hidden_size, m.layers
    lin = linear_layers(m)
    by_kind: dict[str, int] = {}
    for x in lin:
        by_kind[x.kind] = by_kind.get(x.kind, 0) + x.params
    biases = sum(x.count * x.out_features for x in lin if x.bias)
    active_biases = sum(x.active_count * x.out_features for x in lin if x.bias)

    embedding = m.vocab_size * h + m.learned_positions * h
    norms_per_layer = (1 if m.parallel_block else 2) + m.extra_norms_per_layer
    norms = L * norms_per_layer * _norm_params(m, h) + _norm_params(m, h)  # + final norm
    if m.embedding_norm:
        norms += _norm_params(m, h)
    if m.attention == "mla":
        assert m.mla is not None
        norms += L * (m.mla.kv_lora_rank + m.mla.q_lora_rank)  # RMSNorm gains on the latents
    elif m.qk_norm == "head":
        norms += L * 2 * m.head_dim_
    elif m.qk_norm == "full":
        norms += L * (m.heads + m.kv_heads) * m.head_dim_

    active_linear = sum(x.active_params for x in lin)
    active = embedding + active_linear + active_biases + norms
    return ParamCount(
        embedding=embedding,
        lm_head=by_kind.get("lm_head", 0),
        attention=by_kind.get("attn", 0),
        dense_mlp=by_kind.get("mlp", 0),
        routed_experts=by_kind.get("expert", 0),
        shared_experts=by_kind.get("shared_expert", 0),
        router=by_kind.get("router", 0),
        norms=norms,
        biases=biases,
        active=active,
    )


def total_params(m: ModelSpec) -> int:
    return count_params(m).total


def active_params(m: ModelSpec) -> int:
    return count_params(m).active


_QV = frozenset({"q_proj", "v_proj", "q_b_proj", "kv_b_proj"})


def is_lora_target(x: Linear, targets: object) -> bool:
    """Whether LoRA adapts matrix ``x`` (the one rule memory and compute share).

    ``all``: every attention and MLP projection, routed and shared experts included -- PEFT's
    ``target_modules="all-linear"`` (the QLoRA paper's setting, Dettmers et al. 2023 sec. 4) matches every
    ``nn.Linear`` but the LM head, and Hugging Face MoE models (Mixtral, Qwen-MoE, DeepSeek) keep experts as
    ``nn.Linear``s. ``qv``: the query and value projections only (Hu et al. 2021, sec. 7.1); for MLA the
    up-projections that produce them. The router and the LM head are never adapted.
    """
    if getattr(targets, "value", targets) == "qv":
        return x.name in _QV
    return x.kind in ("attn", "mlp", "expert", "shared_expert")
