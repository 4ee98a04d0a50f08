"""Derive a plausible architecture from a bare parameter count (``--params 7e9``).

The shape follows the Llama 3 recipe (Dubey et al. 2024, Table 3): RMSNorm, SwiGLU MLP with
ffn = 8/3 x hidden rounded up to a multiple of 256 (Llama 2's rule; Llama 3 8B uses 3.5 x), head_dim 128, vocabulary 128,256,
untied embeddings, grouped-query attention with 8 KV heads from 7B up (Llama 3), MHA below.
Width-to-depth ratio: hidden / layers near 128 (Llama 2 7B: 4096/32, 13B: 5120/40; Llama 3 405B: 16384/126);
Kaplan et al. 2020 (sec. 3.1) find loss nearly flat over aspect ratios of 50-200, so the choice barely matters for
sizing, but it does change the activation and KV-cache terms, which the output says.
"""

from __future__ import annotations

import math

from llmsizer.errors import invalid
from llmsizer.explain import Message, message
from llmsizer.record import replace
from llmsizer.specs import ModelSpec
from llmsizer.specs.architecture import count_params

_VOCAB = 128256
_HEAD_DIM = 128
_ASPECT = 128.0
_GQA_FROM = 7e9  # Llama 3 uses 8 KV heads from 8B up (Dubey et al. 2024, Table 3); Llama 2 from 34B


def _shape(h: int, n_target: float) -> tuple[int, int, int, int]:
    heads = max(1, h // _HEAD_DIM)
    kv = 8 if n_target >= _GQA_FROM and heads % 8 == 0 else heads
    ffn = int(math.ceil(8 / 3 * h / 256) * 256)
    per_layer = h * heads * _HEAD_DIM * 2 + 2 * h * kv * _HEAD_DIM + 3 * h * ffn + 2 * h
    return heads, kv, ffn, per_layer


def derive_from_params(n: float) -> tuple[ModelSpec, Message]:
    """A Llama-style ``ModelSpec`` whose exact count is within a few percent of ``n``, and a note on how it was
    chosen."""
    if not (1e6 <= n <= 1e13):
        raise invalid("params", f"{n:g} is outside 1e6..1e13 parameters")
    best: tuple[float, ModelSpec] | None = None
    # from 7B up, widths are multiples of 1024 so that the 128-wide heads split into 8 KV groups and tensor
    # parallelism of 2, 4 and 8 divides them (every Llama 3 / Qwen2.5 model of that size does)
    step = 1024 if n >= _GQA_FROM else 128
    for h in range(max(256, step), 32768 + 1, step):
        heads, kv, ffn, per_layer = _shape(h, n)
        emb = 2 * _VOCAB * h
        layers = round((n - emb - h) / per_layer)
        if layers < 1:
            continue
        # then trim the FFN width (multiples of 128, within 20% of the rule) so the count lands on the target
        attn = h * heads * _HEAD_DIM * 2 + 2 * h * kv * _HEAD_DIM + 2 * h
        want = ((n - emb - h) / layers - attn) / (3 * h)
        ffn = int(min(max(round(want / 128) * 128, 0.8 * ffn), 1.2 * ffn)) // 128 * 128 or ffn
        spec = ModelSpec(
            id="derived", name=f"Llama-style {n / 1e9:.3g}B", family="llama",
            published_params=float(n), layers=layers, hidden_size=h, heads=heads, kv_heads=kv,
            head_dim=_HEAD_DIM, ffn_size=ffn, vocab_size=_VOCAB, max_context=131072,
            attention="gqa" if kv < heads else "mha",
            source="derived by llmsizer from a bare parameter count (Llama 3 shape rules, derive.py)",
        )
        total = count_params(spec).total
        score = 10 * abs(math.log(total / n)) + abs(math.log((h / layers) / _ASPECT))
        if best is None or score < best[0]:
            best = (score, spec)
    if best is None:
        raise invalid("params", f"{n:g} is too small for a transformer with a 128k vocabulary")
    m = best[1]
    total = count_params(m).total
    note = message("derived_architecture", params=n, layers=m.layers, hidden=m.hidden_size, heads=m.heads,
                   kv_heads=m.kv_heads, ffn=m.ffn_size, vocab=m.vocab_size, total_params=total)
    return replace(m, published_params=float(total)), note
