"""Stored weight bytes: each parameter group of the ledger in its storage format, and what one GPU of a layout holds.

Storage formats (``data/memory.yaml``): ``dense`` (every tensor at the precision's bytes per parameter), a
quantization (matrices at their effective bits plus per-row scales, the tensors the toolchain keeps in 16-bit at 2
bytes, norms and biases at 2 bytes) or a GGUF mix (llama.cpp's per-tensor, per-layer type choice; vectors in F32).
Parallelism: TP splits matrices and the vocab-parallel embedding/lm_head, EP splits experts, PP gives each stage
ceil(L/p) layers; the embedding sits on the first stage, lm_head and the final norm on the last.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from llmsizer.memory.constants import constants
from llmsizer.specs.architecture import ledger
from llmsizer.specs.ledger import Matrix
from llmsizer.specs.model import ModelSpec
from llmsizer.units import DTYPE_BYTES
from llmsizer.workload.choices import Mode, Precision, Quant
from llmsizer.workload.job import Workload

BF16 = DTYPE_BYTES["bf16"]  # bytes of a tensor a toolchain leaves "in 16-bit"


class GroupBytes:
    """Stored bytes of each parameter group of the ledger (whole model): see ``Ledger``. ``attn``: the attention
    matrices' share of ``layer`` (whole on every GPU under attention data parallelism)."""

    __slots__ = ("attn", "emb", "expert", "final", "head", "layer", "vector")

    def __init__(self, emb: float, head: float, layer: float, expert: float, vector: float, final: float,
                 attn: float = 0.0) -> None:
        self.emb, self.head, self.layer, self.expert, self.vector, self.final = emb, head, layer, expert, vector, final
        self.attn = attn

    @property
    def total(self) -> float:
        return self.emb + self.head + self.layer + self.expert + self.vector + self.final


def storage(w: Workload) -> tuple[str, float]:
    """How the (frozen or served) weights are stored: (storage name, bytes per parameter when "dense").

    Inference: the quantization, else fp8 (1 byte) or the precision's inference bytes. QLoRA and LoRA with a
    quantization: the quantized frozen base. Full training: the training precision (``resolve_defaults`` has
    already given QLoRA its NF4)."""
    k = constants()
    q = w.quant
    if w.mode is Mode.inference:
        if q is Quant.none:
            if w.precision is Precision.fp8:
                return "fp8", BF16
            return "dense", k.infer_bytes[w.precision]
        return q.value, BF16
    if w.mode.is_adapter and q is not Quant.none:
        return q.value, BF16
    return "dense", k.weight_bytes[w.precision]


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
    raise ValueError(cond)  # unreachable: validated by the schema


def _layer_span(m: ModelSpec, x: Matrix) -> range:
    """Which layer indices hold copies of ``x`` (dense MLPs of a MoE model sit in its first layers)."""
    k = m.moe.dense_layers if m.moe is not None else m.layers
    if x.kind == "mlp":
        return range(k)
    if x.kind in ("expert", "shared_expert", "router"):
        return range(k, m.layers)
    return range(m.layers)


def _gguf_rules(mix: Any, x: Matrix) -> tuple[tuple[str, str], ...]:
    if x.name.endswith("down_proj"):
        return mix.ffn_down
    if x.name == "v_proj":
        return mix.attn_v
    if x.name == "o_proj":
        return mix.attn_output
    return ()


def _group(x: Matrix) -> str:
    return "expert" if x.kind == "expert" else "head" if x.kind == "lm_head" else "layer"


@lru_cache(maxsize=2048)
def group_bytes(m: ModelSpec, storage_name: str, dense_bytes: float) -> GroupBytes:
    """Bytes of every parameter group when stored as ``storage_name`` ("dense", a quantization or a GGUF mix)."""
    led = ledger(m)
    if storage_name == "dense":
        b = dense_bytes
        attn = sum(x.params + x.bias_params for x in led.matrices if x.kind == "attn") * b
        return GroupBytes(led.embedding_params * b, led.head_params * b, led.layer_params * b, led.expert_params * b,
                          led.vector_params * b, led.final_params * b, attn)
    d = constants().data
    sums = {"layer": 0.0, "expert": 0.0, "head": 0.0, "attn": 0.0}
    if storage_name in d.quantization:
        q = d.quantization[storage_name]
        for x in led.matrices:
            keep = x.kind in ("router", "lm_head") and x.kind in q.keep_16bit
            per = BF16 * x.in_features * x.out_features if keep else (
                x.in_features * x.out_features * q.bits_per_weight + x.out_features * q.bits_per_output_row) / 8
            nbytes = x.count * per + (x.count * x.out_features * BF16 if x.bias else 0.0)
            sums[_group(x)] += nbytes
            if x.kind == "attn":
                sums["attn"] += nbytes
        emb = led.embedding_params * (BF16 if "embedding" in q.keep_16bit else q.bits_per_weight / 8)
        vec_b = BF16
    else:
        g = d.gguf
        mix = g.mixes[storage_name]
        bits = {k: 8.0 * v.block_bytes / v.block_weights for k, v in g.block_types.items()}
        vec_b = bits[g.vector_type] / 8
        for x in led.matrices:
            if x.kind == "router":
                sums[_group(x)] += x.count * x.in_features * x.out_features * vec_b
                continue
            if x.kind == "lm_head":
                sums["head"] += x.params * bits[mix.output] / 8 + (x.out_features * vec_b if x.bias else 0.0)
                continue
            rules = _gguf_rules(mix, x)
            span = _layer_span(m, x)
            per_layer = x.count // max(1, len(span))
            total_bits = 0.0
            for i in span:
                t = next((typ for cond, typ in rules if _gguf_condition(cond, i, m.layers, m)), mix.base)
                total_bits += bits[t]
            nbytes = per_layer * x.in_features * x.out_features * total_bits / 8
            if x.bias:
                nbytes += x.count * x.out_features * vec_b
            sums[_group(x)] += nbytes
            if x.kind == "attn":
                sums["attn"] += nbytes
        emb_type = mix.output if m.tied_embeddings else mix.base
        emb = m.vocab_size * m.hidden_size * bits[emb_type] / 8 + m.learned_positions * m.hidden_size * vec_b
    # the matrix sums already hold every bias; the vectors are the norms
    return GroupBytes(emb, sums["head"], sums["layer"], sums["expert"], led.vector_params * vec_b,
                      led.final_params * vec_b, sums["attn"])


def effective_bits_per_weight(model: ModelSpec, quant: Quant | str) -> float:
    """Average stored bits per parameter of ``model`` in ``quant`` (metadata and unquantized tensors included)."""
    name = quant.value if isinstance(quant, Quant) else quant
    wb = group_bytes(model, "dense" if name == "none" else name, BF16)
    return 8.0 * wb.total / ledger(model).total_params


def stored_bytes_per_weight(model: ModelSpec, w: Workload) -> float:
    """Average bytes per parameter of the weights a training step streams: the training precision, or for a
    quantized frozen base (QLoRA, LoRA with a quantization) its effective bits (unquantized embeddings and norms
    included)."""
    if w.mode.is_adapter and w.quant is not Quant.none:
        return effective_bits_per_weight(model, w.quant) / 8.0
    return DTYPE_BYTES["fp32" if w.precision.value == "fp32-amp" else w.precision.value]


def layers_on_stage(layers: int, pp: int) -> int:
    """Layers on the most loaded pipeline stage: ceil(L / p)."""
    return -(-layers // pp)


def expert_sharding(tp: int, dp: int, ep: int) -> tuple[int, int]:
    """(GPUs one layer's experts are split over, replicas of each expert shard across data parallelism).

    ``ep <= dp`` (Megatron): experts split over ep ranks of the data-parallel group and tensor-split over tp.
    ``ep > dp`` (vLLM --enable-expert-parallel: EP spans the TP ranks): whole experts over ``ep <= tp x dp`` GPUs.
    """
    shards = tp * ep if ep <= dp else min(ep, tp * dp)
    return shards, max(1, tp * dp // shards)


def stage_bytes(wb: GroupBytes, layers: int, tp: int, pp: int, tied: bool, first: bool, last: bool,
                expert_shards: int, *, attention_whole: bool = False) -> tuple[float, float]:
    """(non-expert, expert) stored bytes of one pipeline stage on one GPU, before ZeRO. ``attention_whole``:
    attention data parallelism keeps the whole attention weights on every GPU."""
    frac = layers_on_stage(layers, pp) / layers
    dense = wb.layer * frac / tp + wb.vector * frac
    if attention_whole:
        dense += wb.attn * frac * (1.0 - 1.0 / tp)
    if first:
        dense += wb.emb / tp
    if last:
        dense += wb.head / tp + wb.final
        if tied and pp > 1:  # the last stage keeps its own copy of the tied embedding (Megatron)
            dense += wb.emb / tp
    return dense, wb.expert * frac / expert_shards


def communicators(model: ModelSpec, tp: int, pp: int, dp: int, ep: int, training: bool) -> int:
    """NCCL communicators one GPU holds: one per parallel group that has more than one rank."""
    n = (tp > 1) + (pp > 1) + (ep > 1 and model.moe is not None)
    return n + (training and dp > 1)
