"""What a training stack holds that the fused count does not: eager modules' saved tensors, the loss, autocast.

``activations.py`` counts what fused kernels keep (Korthikanti et al. 2022 sec. 4.1: one kernel per block, norms and
activations recomputed inside it). Stacks built from eager PyTorch modules (Hugging Face Transformers, and DeepSpeed
or torchtune driving such modules; ``data/frameworks.yaml`` ``saved_tensors: modules``) keep every tensor an
autograd op saves, which is more. Per layer and token, for the Hugging Face Llama family (modeling_llama.py; the
other families differ only where the architecture does):

- RMSNorm (``LlamaRMSNorm.forward``): ``x.to(float32)`` feeds ``pow`` and ``mul``, which save the fp32 copy (4 bytes
  per element; the input itself when the stream is already fp32); with a trainable gain ``weight * normed`` also
  saves ``normed`` (the stream's bytes). LayerNorm (``F.layer_norm``) saves its input and two per-token statistics.
- A linear saves its input only when its weight is trainable (the input is needed for the weight gradient). Three
  projections reading one normed tensor share it. A frozen base (LoRA) saves nothing for its own matmul; PEFT's
  ``lora.Linear.forward`` casts the input to the adapter dtype, so with fp32 adapters (``autocast_adapter_dtype``)
  *each* adapted projection saves its own fp32 copy of its input, and ``lora_B`` saves the r-wide ``lora_A`` output.
  Under bf16 autocast over fp32 weights, each linear saves its own bf16 cast of an fp32 input.
- Attention (``sdpa_attention_forward``, PyTorch SDPA with a flash / memory-efficient kernel): q and k after rotary,
  v, the output and the fp32 log-sum-exp; GQA runs natively (no ``repeat_kv``) when no mask is passed. The output is
  transposed and made contiguous for ``o_proj``: a second copy. Eager attention also saves the fp32 softmax and its
  cast (``softmax(..., dtype=float32).to(dtype)``).
- Gated MLP (``down_proj(act_fn(gate_proj(x)) * up_proj(x))``): the gate output (saved by SiLU), the SiLU output and
  the up output (saved by the product), and the product (``down_proj``'s input, by the rule above). A plain MLP
  saves the first projection's output and, for the tanh-formula GELU (``NewGELUActivation``), three intermediates.
- MoE (``MixtralSparseMoeBlock``): router probabilities in fp32, and per routed copy its gathered input, the expert's
  MLP intermediates and its output (scaled by the routing weight).

The loss (``loss`` in frameworks.yaml): ``upcast`` -- ``ForCausalLMLoss`` casts the whole logits to fp32 and
``cross_entropy`` saves its fp32 log-softmax; during its backward the saved output, the incoming gradient and the
outgoing one coexist: 12 bytes per logit. ``chunked`` -- torchtune's ``CEWithChunkedOutputLoss`` (compiled, as its
published figures are: the compiled cross-entropy saves each chunk's bf16 input and log-sum-exp, not an fp32
log-softmax) keeps the bf16 logits and works on one chunk in fp32 at a time. ``lse`` -- a fused
cross-entropy kernel (Unsloth, Liger) keeps the bf16 logits and one log-sum-exp per token and writes the gradient in
place. ``fused`` -- Megatron's vocab-parallel cross-entropy: fp32 logits and their 16-bit original
(``activations.py``).
"""

from __future__ import annotations

from functools import lru_cache

from llmsizer.memory.constants import constants
from llmsizer.specs.architecture import is_lora_target, ledger
from llmsizer.specs.model import ModelSpec
from llmsizer.units import DTYPE_BYTES

FP32 = DTYPE_BYTES["fp32"]
STATS_BYTES = 2 * FP32  # LayerNorm's fp32 mean and rstd per token
UPCAST_LOSS_BYTES = 12.0  # per logit: fp32 log-softmax saved + its incoming and outgoing gradients
TANH_GELU = frozenset({"gelu_new", "gelu_fast", "gelu_python"})

# which projections read which tensor: the normed attention input, the attention output, the normed MLP input, the
# MLP's product (Hugging Face names, the ledger's ``Matrix.name``)
ATTN_IN = frozenset({"q_proj", "k_proj", "v_proj", "q_a_proj", "kv_a_proj"})
MLP_IN = frozenset({"gate_proj", "up_proj"})


class Setup:
    """What a stack's saved tensors depend on besides the architecture (hashable, for the per-model cache)."""

    __slots__ = ("act", "adapter", "key", "lora", "rank", "stream", "targets", "trainable")

    def __init__(self, act: float, stream: float, trainable: bool, lora: bool, rank: int, targets: object,
                 adapter: float) -> None:
        self.act, self.stream, self.trainable, self.lora = act, stream, trainable, lora
        self.rank, self.targets, self.adapter = rank, getattr(targets, "value", targets), adapter
        self.key = (act, stream, trainable, lora, rank, self.targets, adapter)

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Setup) and other.key == self.key


def _input_bytes(m: ModelSpec, st: Setup, names: list[str], width: int, in_bytes: float) -> float:
    """Bytes per token the projections ``names`` (reading one tensor of ``width`` elements in ``in_bytes``) keep of
    their input: once if any weight is trainable, else one copy per adapted projection in the adapter dtype (shared
    when the adapter dtype is the input's); under autocast (a 2-byte compute over a 4-byte input) one bf16 cast per
    projection."""
    if not names:
        return 0.0
    if st.trainable:
        if in_bytes > st.act:  # autocast: each linear casts the fp32 input to bf16 and saves its own copy
            return len(names) * st.act * width
        return in_bytes * width
    if not st.lora:
        return 0.0
    matrices = {x.name: x for x in ledger(m).matrices}
    adapted = [n for n in names if n in matrices and is_lora_target(matrices[n], st.targets)]
    if not adapted:
        return 0.0
    rank_out = len(adapted) * st.rank * st.adapter  # lora_B's input, the r-wide lora_A output
    if st.adapter > in_bytes:
        return len(adapted) * st.adapter * width + rank_out
    return in_bytes * width + rank_out


def _norm_bytes(m: ModelSpec, st: Setup, width: int) -> float:
    """One norm over ``width`` features: RMSNorm's fp32 copy (+ the normed tensor when the gain trains), or
    LayerNorm's input and statistics."""
    if m.norm == "rmsnorm":
        return FP32 * width + (st.stream * width if st.trainable else 0.0)
    return st.stream * width + STATS_BYTES


def _mlp_bytes(m: ModelSpec, st: Setup, f: int, prefix: str = "") -> float:
    """A (gated or plain) MLP of width ``f``: its intermediates and the second projection's input."""
    a = st.act
    down = _input_bytes(m, st, [prefix + "down_proj"], f, a)
    if m.ffn_kind == "gated":
        return 3.0 * a * f + down  # gate out (SiLU input), SiLU out, up out; the product is down_proj's input
    extra = 3.0 if m.activation in TANH_GELU else 0.0
    return (1.0 + extra) * a * f + down


@lru_cache(maxsize=4096)
def module_layer_bytes(m: ModelSpec, st: Setup, flash: bool) -> tuple[float, float, float]:
    """(R, T, S) bytes per token of one layer (as ``activations.layer_coefficients``) for eager modules: R the
    norms, T the rest, S per attended key (eager attention's scores)."""
    h, H, K, d = m.hidden_size, m.heads, m.kv_heads, m.head_dim_
    a, r = st.act, st.stream
    L = m.layers
    norms = (1 if m.parallel_block else 2) + m.extra_norms_per_layer
    R = norms * _norm_bytes(m, st, h)
    mlp_inputs = [] if m.parallel_block else ["gate_proj", "up_proj"] if m.ffn_kind == "gated" else ["up_proj"]
    attn_inputs = ["q_proj", "k_proj", "v_proj"] + (["gate_proj", "up_proj"] if m.parallel_block else [])
    T = 0.0
    if m.attention == "mla":
        mla = m.mla
        assert mla is not None
        qk = mla.qk_nope_head_dim + mla.qk_rope_head_dim
        first = (["q_a_proj"] if mla.q_lora_rank else ["q_proj"]) + ["kv_a_proj"]
        T += _input_bytes(m, st, first, h, r)
        if mla.q_lora_rank:
            T += _norm_bytes(m, st, mla.q_lora_rank) + _input_bytes(m, st, ["q_b_proj"], mla.q_lora_rank, a)
        T += a * (mla.kv_lora_rank + mla.qk_rope_head_dim)  # kv_a output, split into the latent and k_pe
        T += _norm_bytes(m, st, mla.kv_lora_rank) + _input_bytes(m, st, ["kv_b_proj"], mla.kv_lora_rank, a)
        T += a * (2 * H * qk + 2 * H * mla.v_head_dim) + constants().lse_bytes * H  # q, k, v, output
        T += _input_bytes(m, st, ["o_proj"], H * mla.v_head_dim, a)
    else:
        T += _input_bytes(m, st, attn_inputs, h, r)
        kv = H * d if not flash else K * d  # eager attention repeats the KV heads before its matmuls
        T += a * (H * d + 2 * kv + H * d)  # q and k after rotary, v, the attention output
        T += constants().lse_bytes * H if flash else 0.0
        if m.qk_norm != "none":
            T += _norm_bytes(m, st, (H + K) * d)
        T += _input_bytes(m, st, ["o_proj"], H * d, a)  # the transposed, contiguous copy of the output
    if m.dropout > 0:
        T += 2.0 * h * constants().mask_bytes  # the two residual dropout masks
    if m.moe is None or m.moe.dense_layers:
        dense = L if m.moe is None else m.moe.dense_layers
        T += (_input_bytes(m, st, mlp_inputs, h, r) + _mlp_bytes(m, st, m.ffn_size)) * dense / L
    if m.moe is not None:
        e = m.moe
        n = L - e.dense_layers
        k = e.experts_per_token
        routed = (FP32 * e.experts  # router probabilities (softmax in fp32)
                  + k * (_input_bytes(m, st, ["experts.gate_proj", "experts.up_proj"], h, a) if st.trainable or st.lora
                         else 0.0)
                  + k * a * h * 2.0  # the gathered copy of the token and the expert output before its weighting
                  + k * _mlp_bytes(m, st, e.expert_ffn_size, "experts."))
        if e.shared_experts:
            fs = e.shared_expert_ffn_size or e.expert_ffn_size
            routed += e.shared_experts * _mlp_bytes(m, st, fs, "shared_experts.")
        T += (_input_bytes(m, st, mlp_inputs, h, r) + routed) * n / L
    S = 0.0
    if not flash:
        S = (FP32 + a) * H  # the fp32 softmax and its cast to the compute dtype, per attended key
    return R, T, S


def loss_bytes_per_token(m: ModelSpec, style: str, chunks: int, act: float) -> float:
    """Bytes per token the loss holds at its peak (module docstring), before tensor parallelism."""
    V = m.vocab_size
    if style == "upcast":
        return UPCAST_LOSS_BYTES * V
    if style == "chunked":
        return act * V + (FP32 + act) * V / chunks  # the bf16 logits, one chunk in fp32 and its gradient
    if style == "lse":
        return act * V + FP32
    raise ValueError(style)


def module_last_stage_bytes(m: ModelSpec, st: Setup) -> float:
    """The last stage's final norm and ``lm_head`` input per token (the loss is separate): the input is kept when
    the head trains (an untied head is frozen under LoRA, and a tied one is the frozen embedding)."""
    return _norm_bytes(m, st, m.hidden_size) + _input_bytes(m, st, ["lm_head"] if st.trainable else [], m.hidden_size,
                                                            st.stream)


def autocast_cache_bytes(m: ModelSpec) -> float:
    """bf16 copies of every trainable matrix that autocast makes in the forward pass and the linears save for
    backward (fp32 weights under bf16 autocast): 2 bytes per matrix weight, before sharding."""
    led = ledger(m)
    return 2.0 * sum(x.params for x in led.matrices)
