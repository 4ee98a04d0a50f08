"""Time a training stack spends beyond the fused step model: memory-bound traffic of eager ops, adapters, autocast
and the optimizer step, each as HBM bytes moved at the GPU's streaming bandwidth (Williams et al. 2009, roofline).

The step model's efficiencies (``data/compute.yaml``) were calibrated on fused stacks (Megatron-LM, Meta's and
MosaicML's runs), whose RMSNorm, rotary and SwiGLU kernels read and write each tensor about once. Eager modules
(``speed.elementwise: modules`` in ``data/frameworks.yaml``) run each op of those blocks as its own kernel. Bytes
moved per element in the forward pass, read off the Hugging Face code (a = the activation bytes):

  RMSNorm   ``x.to(fp32)``, ``pow``, ``mean``, ``x * rsqrt``, ``.to(a)``, ``weight *``: 28 + 4a (fused: 2a)
  rotary    ``q * cos + rotate_half(q) * sin`` (a slice, a negation, a concatenation): 10a (fused: 2a), on q and k
  SwiGLU    ``act_fn(gate) * up``: 5a (fused: 3a), on the MLP width
  o_proj    ``attn_output.transpose(1, 2).contiguous()``: 2a extra, on the attention output
  loss      ``logits.float()`` + log-softmax + NLL and their backward: 40 + 2a per logit (fused vocab-parallel
            cross-entropy: about 24 + 2a)

A backward pass moves about twice its forward's bytes (each op reads its saved inputs and the incoming gradient and
writes one gradient per input); full recomputation repeats the forward. PEFT (``speed.lora: peft``) wraps every
adapted matrix in ``x.to(fp32)``, ``lora_B(lora_A(x)) * scaling`` and ``result + ...`` (promoted to fp32, cast
back): per token 10 / 28 bytes per input / output element forward and 20 / 24 backward, and runs the adapter
matmuls in fp32, which PyTorch executes without tensor cores (``torch.backends.cuda.matmul.allow_tf32`` is False by
default, pytorch.org/docs/stable/notes/cuda.html#tf32-on-ampere). Autocast over fp32 weights casts every matrix to
bf16 on each forward pass (R 4 + W 2 bytes per weight) and the bf16 weight gradient back to fp32 (W 2, R 2, W 4),
and keeps the residual stream in fp32. The optimizer step reads and writes every state it holds once per step:
``grad + 2 (weight + master + moments)`` bytes per trainable parameter (fused AdamW, torch.optim).
"""

from __future__ import annotations

from typing import Any

from llmsizer.specs.architecture import is_lora_target, ledger
from llmsizer.specs.model import ModelSpec
from llmsizer.workload.choices import Recompute

NORM_MODULES = (28.0, 4.0)  # (constant, x a) bytes per element, eager RMSNorm forward
NORM_FUSED = 2.0  # x a
ROPE_MODULES, ROPE_FUSED = 10.0, 2.0  # x a, on q and k
SWIGLU_MODULES, SWIGLU_FUSED = 5.0, 3.0  # x a, on the MLP width
CONTIGUOUS = 2.0  # x a, the attention output's transposed copy
LOSS_MODULES, LOSS_FUSED = 40.0, 24.0  # + 2a per logit, forward and backward together
BACKWARD_OVER_FORWARD = 2.0
PEFT_IN, PEFT_OUT = (10.0, 20.0), (28.0, 24.0)  # (forward, backward) bytes per input / output element
ADAPTER_MODULES_IN, ADAPTER_MODULES_OUT = (2.0, 6.0), (12.0, 14.0)  # bf16 adapters as separate kernels
AUTOCAST_CAST = 6.0  # R fp32 + W bf16 per weight and forward pass
AUTOCAST_GRAD = 8.0  # W bf16 weight gradient, R it, W fp32 .grad
# autocast over fp32 weights: an fp32 norm input skips no upcast but reads 4 bytes (44 vs 36 per element), a
# residual add reads an fp32 stream and writes one (R 2 + 4, W 4 instead of R 2 + 2, W 2), and each projection
# reading the fp32 stream casts it to bf16 for itself (R 4, W 2)
AMP_NORM_EXTRA, AMP_ADD_EXTRA, AMP_CAST = 8.0, 4.0, 6.0


def _forward_passes(rc: Recompute) -> float:
    """Forward passes per micro-batch over the layers' elementwise work: 1, and 1 more when recomputed."""
    return 2.0 if rc is Recompute.full else 1.0


def elementwise_bytes_per_token(m: ModelSpec, act: float, fp32_stream: bool, loss_style: str,
                                rc: Recompute) -> float:
    """Extra HBM bytes per token (whole model, one GPU) that eager modules move over fused kernels."""
    h, H, K, d = m.hidden_size, m.heads, m.kv_heads, m.head_dim_
    norms = (1 if m.parallel_block else 2) + m.extra_norms_per_layer
    fwd = norms * h * (NORM_MODULES[0] + NORM_MODULES[1] * act - NORM_FUSED * act)
    if m.position_embedding == "rope" and m.attention != "mla":
        fwd += (H + K) * d * (ROPE_MODULES - ROPE_FUSED) * act
    if m.ffn_kind == "gated":
        width = m.ffn_size if m.moe is None else m.moe.experts_per_token * m.moe.expert_ffn_size
        fwd += width * (SWIGLU_MODULES - SWIGLU_FUSED) * act
    fwd += H * d * CONTIGUOUS * act
    if fp32_stream:
        projections = 3 + (2 if m.ffn_kind == "gated" else 1)  # q, k, v and the MLP's input projections
        fwd += h * (norms * AMP_NORM_EXTRA + 2 * AMP_ADD_EXTRA + projections * AMP_CAST)
    per_pass = fwd * (_forward_passes(rc) + BACKWARD_OVER_FORWARD)
    loss = (LOSS_MODULES - LOSS_FUSED) * m.vocab_size if loss_style == "upcast" else 0.0
    return per_pass * m.layers + loss


def adapter_bytes_per_token(m: ModelSpec, rank: int, targets: object, style: str, rc: Recompute) -> float:
    """Extra HBM bytes per token (whole model) around LoRA's adapted matrices: PEFT's casts, scaling and promoted
    adds, or plain separate adapter kernels."""
    if style == "fused":
        return 0.0
    ins, outs = (PEFT_IN, PEFT_OUT) if style == "peft" else (ADAPTER_MODULES_IN, ADAPTER_MODULES_OUT)
    passes = _forward_passes(rc)
    per_in = ins[0] * passes + ins[1]
    per_out = outs[0] * passes + outs[1]
    total = 0.0
    for x in ledger(m).matrices:
        if is_lora_target(x, targets):
            total += x.active_count * (per_in * x.in_features + per_out * x.out_features)
    return total


def adapter_fp32_flops_per_token(m: ModelSpec, rank: int, targets: object, rc: Recompute) -> float:
    """FLOPs per token of fp32 adapter matmuls (PEFT): 6 r (in + out) per adapted matrix, + 2 r (in + out) for a
    recomputed forward."""
    per = 6.0 + (2.0 if rc is Recompute.full else 0.0)
    return sum(per * rank * (x.in_features + x.out_features) * x.active_count
               for x in ledger(m).matrices if is_lora_target(x, targets))


def autocast_bytes_per_micro_batch(m: ModelSpec, rc: Recompute) -> float:
    """HBM bytes per micro-batch (whole model) autocast spends on weights: a bf16 cast per forward pass, the fp32
    gradient cast and accumulation."""
    n = float(sum(x.params for x in ledger(m).matrices))
    return n * (AUTOCAST_CAST * _forward_passes(rc) + AUTOCAST_GRAD)


def optimizer_bytes_per_param(grad_bytes: float, weight_bytes: float, opt: Any, master_bytes: float) -> float:
    """HBM bytes an optimizer step moves per trainable parameter: the gradient read, weights, master copy and
    moments read and written."""
    return grad_bytes + 2.0 * (weight_bytes + master_bytes + opt.state_bytes)
