"""The architecture ledger: every weight matrix, norm vector and saved tensor of a ``ModelSpec``, counted once.

Memory and compute both read this ledger instead of recounting the model (the model of calculon's
``llm/layers.py``, where each layer declares its FLOPs and its weight and activation space):

The records (``Matrix``, ``Vector``, ``Saved``, ``ParamCount``, ``Ledger``) are in ``specs/ledger.py``; this module
builds them from a ``ModelSpec`` and answers the questions asked of them (parameter counts, LoRA adapters, KV
elements per token).

Conventions (d = head_dim, H = heads, K = kv_heads, h = hidden, f = ffn size, V = vocab, L = layers):
- attention (MHA/GQA/MQA): q  h x H*d,  k, v  h x K*d,  o  H*d x h            (Vaswani et al. 2017; GQA: Ainslie 2023)
- attention (MLA, DeepSeek-V2 sec. 2.1): q_a h x r_q, q_b r_q x H*(d_nope+d_rope) (or q h x H*(d_nope+d_rope)),
  kv_a h x (r_kv + d_rope), kv_b r_kv x H*(d_nope+d_v), o H*d_v x h, plus RMSNorms over r_q and r_kv
- MLP: gated (SwiGLU/GeGLU, Shazeer 2020) 3 h f; plain 2 h f
- MoE layer: router h x E, E routed experts and S shared experts, each a (gated) MLP of its own width
Saved tensors follow Korthikanti et al. 2022 (arXiv:2205.05198) sec. 4.1, specialised to the architecture: with
GPT-3's (LayerNorm, plain GeLU MLP f = 4h, MHA, dropout, no FlashAttention) the per-layer sum is their
sbh(34 + 5as/h) exactly (tests/test_memory.py).
"""

from __future__ import annotations

from functools import lru_cache

from llmsizer.record import record
from llmsizer.specs.ledger import Ledger, Matrix, ParamCount, Saved, Vector
from llmsizer.specs.model import ModelSpec

# ------------------------------------------------------------------------------------------------ building it


def _norm(m: ModelSpec, width: int) -> int:
    """Learnable parameters of one norm over ``width`` features: RMSNorm (gain) or LayerNorm (gain + bias)."""
    return 2 * width if m.norm == "layernorm" else width


def _matrices(m: ModelSpec) -> tuple[Matrix, ...]:
    h, L, H, K, d = m.hidden_size, m.layers, m.heads, m.kv_heads, m.head_dim_
    out: list[Matrix] = []
    if m.attention == "mla":
        a = m.mla
        assert a is not None
        qk = a.qk_nope_head_dim + a.qk_rope_head_dim
        if a.q_lora_rank:
            out.append(Matrix("q_a_proj", h, a.q_lora_rank, L, L, "attn"))
            out.append(Matrix("q_b_proj", a.q_lora_rank, H * qk, L, L, "attn"))
        else:
            out.append(Matrix("q_proj", h, H * qk, L, L, "attn"))
        out.append(Matrix("kv_a_proj", h, a.kv_lora_rank + a.qk_rope_head_dim, L, L, "attn"))
        out.append(Matrix("kv_b_proj", a.kv_lora_rank, H * (a.qk_nope_head_dim + a.v_head_dim), L, L, "attn"))
        out.append(Matrix("o_proj", H * a.v_head_dim, h, L, L, "attn", m.attn_out_bias))
    else:
        out.append(Matrix("q_proj", h, H * d, L, L, "attn", m.qkv_bias))
        out.append(Matrix("k_proj", h, K * d, L, L, "attn", m.qkv_bias))
        out.append(Matrix("v_proj", h, K * d, L, L, "attn", m.qkv_bias))
        out.append(Matrix("o_proj", H * d, h, L, L, "attn", m.attn_out_bias))

    def mlp(prefix: str, width: int, count: int, active: int, kind: str) -> None:
        if m.ffn_kind == "gated":
            out.append(Matrix(f"{prefix}gate_proj", h, width, count, active, kind, m.mlp_bias))
        out.append(Matrix(f"{prefix}up_proj", h, width, count, active, kind, m.mlp_bias))
        out.append(Matrix(f"{prefix}down_proj", width, h, count, active, kind, m.mlp_bias))

    dense_layers = L if m.moe is None else m.moe.dense_layers
    if dense_layers:
        mlp("", m.ffn_size, dense_layers, dense_layers, "mlp")
    if m.moe is not None:
        e = m.moe
        n = L - e.dense_layers
        if n:
            out.append(Matrix("router", h, e.experts, n, n, "router", e.router_bias))
            mlp("experts.", e.expert_ffn_size, n * e.experts, n * e.experts_per_token, "expert")
            if e.shared_experts:
                fs = e.shared_expert_ffn_size or e.expert_ffn_size
                mlp("shared_experts.", fs, n * e.shared_experts, n * e.shared_experts, "shared_expert")
                if e.shared_expert_gate:
                    out.append(Matrix("shared_expert_gate", h, 1, n, n, "router"))
    if not m.tied_embeddings:
        out.append(Matrix("lm_head", h, m.vocab_size, 1, 1, "lm_head", m.lm_head_bias))
    return tuple(out)


def _vectors(m: ModelSpec) -> tuple[Vector, ...]:
    h, L = m.hidden_size, m.layers
    norms_per_layer = (1 if m.parallel_block else 2) + m.extra_norms_per_layer
    out = [Vector("layer_norms", _norm(m, h), L * norms_per_layer)]
    if m.attention == "mla":
        assert m.mla is not None
        out.append(Vector("latent_norms", m.mla.kv_lora_rank + m.mla.q_lora_rank, L))  # RMSNorm gains
    elif m.qk_norm == "head":
        out.append(Vector("qk_norms", 2 * m.head_dim_, L))
    elif m.qk_norm == "full":
        out.append(Vector("qk_norms", (m.heads + m.kv_heads) * m.head_dim_, L))
    out.append(Vector("final_norm", _norm(m, h), 1, final=True))
    if m.embedding_norm:
        out.append(Vector("embedding_norm", _norm(m, h), 1, final=True))
    return tuple(out)


def _saved(m: ModelSpec) -> tuple[Saved, ...]:
    """The tensors each layer keeps for backward (Korthikanti et al. 2022 sec. 4.1, per architecture)."""
    h, L, H, K, d, V = m.hidden_size, m.layers, m.heads, m.kv_heads, m.head_dim_, m.vocab_size
    drop = m.dropout > 0
    norms = (1 if m.parallel_block else 2) + m.extra_norms_per_layer
    linear_inputs = 1 if m.parallel_block else 2
    out = [
        Saved("norm inputs", h * norms, "act", "sp", L),
        Saved("normed inputs of the QKV and MLP projections", h * linear_inputs, "act", "sp", L),
    ]
    if drop:
        out.append(Saved("residual dropout masks", 2 * h, "mask", "sp", L))
    if m.attention == "mla":
        a = m.mla
        assert a is not None
        qk = a.qk_nope_head_dim + a.qk_rope_head_dim
        out += [
            Saved("q latent and its normed copy", 2 * a.q_lora_rank, "act", "sp", L),
            Saved("kv_a output", a.kv_lora_rank + a.qk_rope_head_dim, "act", "sp", L),
            Saved("normed kv latent", a.kv_lora_rank, "act", "sp", L),
            Saved("Q and K", 2 * H * qk, "act", "tp", L),
            Saved("V and the attention output", 2 * H * a.v_head_dim, "act", "tp", L),
        ]
    else:
        out += [
            Saved("Q, K and V", H * d + 2 * K * d, "act", "tp", L),
            Saved("attention output (o_proj input)", H * d, "act", "tp", L),
        ]
        if m.qk_norm != "none":
            out.append(Saved("q/k norm inputs", (H + K) * d, "act", "tp", L))
    out.append(Saved("softmax log-sum-exp", H, "lse", "tp", L, flash=True))
    out.append(Saved("softmax output", H, "act", "key", L, flash=False))
    if drop:
        out.append(Saved("attention dropout mask", H, "mask", "key", L, flash=False))
        out.append(Saved("attention dropout output", H, "act", "key", L, flash=False))
    mats = 3 if m.ffn_kind == "gated" else 2  # gated: gate, up, product; plain: activation input, down input
    dense_layers = L if m.moe is None else m.moe.dense_layers
    if dense_layers:
        out.append(Saved("MLP intermediates", mats * m.ffn_size, "act", "tp", dense_layers))
    if m.moe is not None:
        e = m.moe
        n = L - e.dense_layers
        fs = e.shared_expert_ffn_size or e.expert_ffn_size
        out += [
            Saved("router probabilities", e.experts, "router", "sp", n),
            Saved("routed copies in and out", e.experts_per_token * 2 * h, "act", "tp", n),
            Saved("expert intermediates", e.experts_per_token * mats * e.expert_ffn_size, "act", "tp", n),
        ]
        if e.shared_experts:
            out.append(Saved("shared expert intermediates", e.shared_experts * mats * fs, "act", "tp", n))
    if drop:
        out.append(Saved("embedding dropout mask", h, "mask", "sp", stage="first"))
    out += [
        Saved("final norm input and lm_head input", 2 * h, "act", "sp", stage="last"),
        Saved("logits", V, "logits", "tp", stage="last"),
    ]
    return tuple(out)


def _block_elements(m: ModelSpec) -> tuple[int, int]:
    """(attention, larger MLP/MoE) intermediate elements per token of one block: what an inference forward holds."""
    h, H, K, d = m.hidden_size, m.heads, m.kv_heads, m.head_dim_
    if m.attention == "mla":
        a = m.mla
        assert a is not None
        attn = H * (a.qk_nope_head_dim + a.qk_rope_head_dim) * 2 + H * a.v_head_dim * 2
    else:
        attn = (H + 2 * K) * d + H * d
    mats = 3 if m.ffn_kind == "gated" else 2
    mlp = mats * m.ffn_size
    if m.moe is not None:
        e = m.moe
        fs = e.shared_expert_ffn_size or e.expert_ffn_size
        mlp = max(mlp if e.dense_layers else 0,
                  e.experts_per_token * (mats * e.expert_ffn_size + h) + e.shared_experts * mats * fs)
    return attn, mlp


_LEDGERS: dict[int, tuple[ModelSpec, Ledger]] = {}


def ledger(m: ModelSpec) -> Ledger:
    """The ledger of ``m``, memoized by identity: hashing a frozen ``ModelSpec`` (45 fields) costs more than the
    lookups the estimators make, and a search passes the same object every time."""
    hit = _LEDGERS.get(id(m))
    if hit is not None and hit[0] is m:
        return hit[1]
    if len(_LEDGERS) >= 1024:
        _LEDGERS.clear()
    led = _build(m)
    _LEDGERS[id(m)] = (m, led)  # the entry holds the model, so its id cannot be reused while cached
    return led


def _build(m: ModelSpec) -> Ledger:
    h = m.hidden_size
    mats = _matrices(m)
    vecs = _vectors(m)
    by_kind: dict[str, int] = {}
    for x in mats:
        by_kind[x.kind] = by_kind.get(x.kind, 0) + x.params
    biases = sum(x.bias_params for x in mats)
    active_biases = sum(x.active_count * x.out_features for x in mats if x.bias)
    embedding = m.vocab_size * h + m.learned_positions * h
    norms = sum(v.params for v in vecs)
    active_linear = sum(x.active_params for x in mats)
    pc = ParamCount(
        embedding=embedding, lm_head=by_kind.get("lm_head", 0), attention=by_kind.get("attn", 0),
        dense_mlp=by_kind.get("mlp", 0), routed_experts=by_kind.get("expert", 0),
        shared_experts=by_kind.get("shared_expert", 0), router=by_kind.get("router", 0), norms=norms, biases=biases,
        active=embedding + active_linear + active_biases + norms,
    )
    expert = sum(x.params + x.bias_params for x in mats if x.kind == "expert")
    head = sum(x.params + x.bias_params for x in mats if x.kind == "lm_head")
    final = sum(v.params for v in vecs if v.final)
    vector = norms - final
    tied_head = m.vocab_size * h if m.tied_embeddings else 0  # the LM head multiplies by the shared embedding
    if m.mla is not None:
        d_qk, d_v = m.mla.qk_nope_head_dim + m.mla.qk_rope_head_dim, m.mla.v_head_dim
    else:
        d_qk = d_v = m.head_dim_
    window_layers = m.sliding_window_layers if m.sliding_window else 0
    attn_block, mlp_block = _block_elements(m)
    factored = sum(x.count * (x.in_features + x.out_features) for x in mats)
    return Ledger(
        model=m, matrices=mats, vectors=vecs, saved=_saved(m), params=pc,
        embedding_params=embedding, head_params=head, layer_params=pc.total - embedding - head - expert - norms,
        expert_params=expert, vector_params=vector, final_params=final,
        matmul_params_active=active_linear + tied_head, matmul_params_total=sum(x.params for x in mats) + tied_head,
        attention_flops_per_key=2 * m.heads * (d_qk + d_v),
        full_attention_layers=m.layers - window_layers, window_layers=window_layers, window=m.sliding_window or 0,
        largest_matrix=max((x.in_features * x.out_features for x in mats if x.kind not in ("lm_head", "router")),
                           default=0),
        factored_elements=factored + m.vocab_size + h + norms + biases,  # embedding rows + cols, vectors
        attention_block_elements=attn_block, mlp_block_elements=mlp_block,
    )


# ------------------------------------------------------------------------------------------------ what it answers


def count_params(m: ModelSpec) -> ParamCount:
    """Exact parameter count of ``m`` by part (weights, biases and norm gains); tests/test_model_params.py checks
    every catalog entry against its published count."""
    return ledger(m).params


def total_params(m: ModelSpec) -> int:
    return ledger(m).params.total


def active_params(m: ModelSpec) -> int:
    return ledger(m).params.active


_QV = frozenset({"q_proj", "v_proj", "q_b_proj", "kv_b_proj"})


def is_lora_target(x: Matrix, targets: object) -> bool:
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


@record
class Adapters:
    """LoRA on a model: ``r (d_in + d_out)`` parameters per adapted matrix (Hu et al. 2021, sec. 4)."""

    params: int  # stored adapter parameters
    active_params: int  # the adapters one token passes through
    factored_elements: int  # Adafactor's factored state over the A and B matrices
    rank_width_per_layer: int  # sum of ranks per layer: the A outputs (r wide) each layer keeps for backward


@lru_cache(maxsize=1024)
def lora_adapters(m: ModelSpec, rank: int, targets: object) -> Adapters:
    """The adapters LoRA of ``rank`` on ``targets`` (``all`` or ``qv``) adds to ``m``."""
    params = active = factored = width = 0
    for x in ledger(m).matrices:
        if is_lora_target(x, targets):
            per = rank * (x.in_features + x.out_features)
            params += per * x.count
            active += per * x.active_count
            factored += x.count * (x.in_features + 2 * rank + x.out_features)
            width += x.count * rank
    return Adapters(params, active, factored, width // m.layers)


def kv_elements_per_token(m: ModelSpec, tp: int, attention_dp: bool = False) -> float:
    """KV-cache elements per token per layer on one of ``tp`` GPUs: ``2 max(1, ceil(K / tp)) d`` (K and V, each
    rank keeping at least one head, Ainslie et al. 2023), or MLA's latent ``r_kv + d_rope`` replicated over tp
    (DeepSeek-V2, arXiv:2405.04434, sec. 2.1.2). With attention data parallelism each GPU keeps every head of its
    own sequences, so a token of the replica costs one GPU's full KV over ``tp`` on average (nothing replicated)."""
    if m.attention == "mla":
        assert m.mla is not None
        full = m.mla.kv_lora_rank + m.mla.qk_rope_head_dim
        return full / tp if attention_dp else full
    if attention_dp:
        return 2 * m.kv_heads * m.head_dim_ / tp
    return 2 * max(1, -(-m.kv_heads // tp)) * m.head_dim_
