"""Activations: what training keeps for the backward pass (Korthikanti et al. 2022, arXiv:2205.05198, sec. 4), and the
transient an inference engine's profiling forward holds.

Notation: s sequence length, b micro-batch, h hidden size, t tensor-parallel degree, p pipeline stages.
Per layer and token the ledger's saved tensors (``specs/architecture.py``) sum, in bytes, to three coefficients:
R (split only by sequence parallelism), T (split by t) and S (per attended key: the attention scores, absent with
FlashAttention). With GPT-3's architecture R = 10h, T = 24h, S = 5a: Korthikanti's sbh(34 + 5as/h) exactly.
"""

from __future__ import annotations

import math
from functools import lru_cache

from llmsizer.memory.constants import constants
from llmsizer.specs.architecture import ledger
from llmsizer.specs.model import ModelSpec
from llmsizer.workload.choices import Recompute


@lru_cache(maxsize=4096)
def layer_coefficients(m: ModelSpec, act_bytes: float, flash: bool, lora_width: int) -> tuple[float, float, float]:
    """(R, T, S) stored bytes per token of one layer, averaged over layers, for activations of ``act_bytes``;
    ``lora_width``: the sum of LoRA ranks per layer (each adapter's r-wide A output is kept, in R)."""
    led = ledger(m)
    nbytes = constants().dtype_bytes(act_bytes)
    sums = {"sp": 0.0, "tp": 0.0, "key": 0.0}
    for x in led.saved:
        if x.stage == "layer" and (x.flash is None or x.flash == flash):
            sums[x.split] += nbytes[x.dtype] * x.elements * x.layers
    L = m.layers
    return sums["sp"] / L + act_bytes * lora_width, sums["tp"] / L, sums["key"] / L


@lru_cache(maxsize=4096)
def stage_tensor_bytes(m: ModelSpec, act_bytes: float, stage: str) -> tuple[float, float]:
    """Bytes per token the first or last pipeline stage keeps outside its layers: (split by sequence parallelism,
    split by tp). First: the embedding's dropout mask; last: the final norm's and lm_head's inputs and the logits
    (fp32 for the loss plus their 16-bit original, Korthikanti et al. sec. 4.3)."""
    nbytes = constants().dtype_bytes(act_bytes)
    sp = tp = 0.0
    for x in ledger(m).saved:
        if x.stage == stage:
            if x.split == "sp":
                sp += nbytes[x.dtype] * x.elements
            else:
                tp += nbytes[x.dtype] * x.elements
    return sp, tp


def per_layer_bytes(m: ModelSpec, coeffs: tuple[float, float, float], act_bytes: float, t: int, r_div: int, s: int,
                    b: int, rec: Recompute) -> float:
    """Stored activation bytes of one layer for one micro-batch on one GPU (t-way TP; sequence parallelism divides
    the R part by ``r_div``): s b (R/r_div + T/t + S keys/t); selective recompute drops the S term; full keeps only
    the layer input s b h (Korthikanti et al. Table 2)."""
    if rec is Recompute.full:
        return s * b * act_bytes * m.hidden_size / r_div
    R, T, S = coeffs
    per_token = R / r_div + T / t
    if S and rec is Recompute.none:
        per_token += S * ledger(m).attended_keys(s) / t  # (S is 0 with FlashAttention: the usual case)
    return s * b * per_token


def training_activations(m: ModelSpec, coeffs: tuple[float, float, float], act_bytes: float, s: int,
                         global_batch_tokens: int, t: int, p: int, dp: int, r_div: int, first: bool, last: bool,
                         rec: Recompute, b: int, v: int = 1, first_bytes: tuple[float, float] | None = None,
                         last_bytes: tuple[float, float] | None = None) -> tuple[float, float, float, float, float, float]:
    """(total, per_layer, in_flight, emb, head, working): the activations one pipeline stage holds.

    ``in_flight`` counts stored micro-batch forwards in layers-of-this-stage units: with 1F1B the first stage holds
    p micro-batches (at most the micro-batches per step), the last one (Narayanan et al. 2021; Korthikanti sec.
    4.2.3); with the interleaved schedule (v chunks of ls/v layers per GPU) rank r holds 2(p - 1 - r) + (v - 1) p + 1
    chunk forwards at its peak (Megatron-LM's warm-up count): the first stage's factor 1 + (p - 1)/(p v). Full
    recomputation re-materialises one layer at a time during backward (``working``), after the loss and the output
    layer have released their tensors (``head``), so the two never coexist: the stage holds the larger. ``first_bytes`` /
    ``last_bytes``: ``stage_tensor_bytes`` of the model, when the caller has them."""
    k = constants()
    ls = -(-m.layers // p)
    per_layer = per_layer_bytes(m, coeffs, act_bytes, t, r_div, s, b, rec)
    in_flight = p if first else 1
    micro_batches = math.ceil(global_batch_tokens / (s * b * dp))  # per step, per pipeline
    if p > 1 and first:
        in_flight = max(1, min(p, micro_batches))
    emb = head = 0.0
    if first:
        emb = s * b * (first_bytes or stage_tensor_bytes(m, act_bytes, "first"))[0] / r_div
    if last:
        sp, tp = last_bytes or stage_tensor_bytes(m, act_bytes, "last")
        head = s * b * sp / r_div + s * b * tp / t
    working = 0.0
    if rec is Recompute.full and k.working_layers:
        working = k.working_layers * per_layer_bytes(m, coeffs, act_bytes, t, r_div, s, b, Recompute.none)
    if v > 1 and p > 1:
        rank = 0 if first else p - 1
        chunks = min(2 * (p - 1 - rank) + (v - 1) * p + 1, v * micro_batches)
        total = chunks * (ls / v) * per_layer + in_flight * emb + max(head, working)
        return total, per_layer, chunks / v, emb, head, working
    total = in_flight * (ls * per_layer + emb) + max(head, working)
    return total, per_layer, in_flight, emb, head, working


def inference_transient(m: ModelSpec, act_bytes: float, tokens: int, keys: int, rows: int, t: int, flash: bool,
                        last: bool) -> tuple[float, float]:
    """(transient bytes, bytes per token) of one forward pass of ``tokens`` tokens: the residual, the normed input
    and the larger block's intermediates live at once (nothing is kept between layers); without FlashAttention the
    scores and their fp32 softmax too; on the last stage ``rows`` rows of fp32 logits (the sampler)."""
    k = constants()
    led = ledger(m)
    per_token = act_bytes * (2 * m.hidden_size + max(led.attention_block_elements, led.mlp_block_elements) / t)
    transient = tokens * per_token
    if not flash:
        transient += tokens * keys * (m.heads / t) * (act_bytes + k.logit_fp32_bytes)
    logits = rows * m.vocab_size / t * k.logit_fp32_bytes if last else 0.0
    return transient + logits, per_token
