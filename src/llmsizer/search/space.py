"""The search space, for every GPU type in scope:

  GPU count N   -- 1, 2, 4, then whole nodes (1, 2, 3, 4, 6, 8, 12, 16, ... nodes) up to the GPU limit
  tp            -- powers of two inside the node's scale-up (NVLink/xGMI) domain that divide the heads
  pp            -- powers of two up to the layer count with tp x pp dividing N (every divisor of N / tp when the
                   GPU count is pinned) that split the layers as the stacks can (``pipeline_split``); dp = N / (tp x pp)
  ep            -- MoE only: powers of two dividing dp and the expert count
  v             -- pretraining with pp > 1: interleaved pipeline chunks per GPU, 1 (plain 1F1B) or 2-8 that
                   divide every stage's layers (Megatron-LM), when the micro-batches per step are a multiple of pp
  zero, offload -- ZeRO stage 0-3 (FSDP), offload none/cpu (training)
  recompute     -- none / selective / full; micro-batch 1, 2, 4, 8, 16 (training)
A (gpu, N, tp, pp, dp, ep, v) is a *cell*. Pinned constraints fix their dimension.
"""

from __future__ import annotations

import functools

from llmsizer.specs.gpu import GpuSpec
from llmsizer.specs.model import ModelSpec

MICRO_BATCHES = (1, 2, 4, 8, 16)

#: interleaved pipeline chunks per GPU the search tries (Megatron-LM's --num-layers-per-virtual-pipeline-stage);
#: v must divide the layers of a stage, so every chunk has the same number of layers. Published runs use 2-8
#: (Korthikanti et al. 2022: 3; Narayanan et al. 2021 sec. 5.4: 2-8); beyond 8 the bubble is already small and
#: each chunk adds point-to-point traffic
VIRTUAL_STAGES = (2, 3, 4, 5, 6, 7, 8)

Cell = tuple[int, int, int, int, int]  # (tp, pp, dp, ep, v)


def pow2_upto(n: int) -> list[int]:
    out, x = [], 1
    while x <= n:
        out.append(x)
        x *= 2
    return out


def gpu_counts(gpus_per_node: int, max_gpus: int) -> list[int]:
    """1, 2, 4 (below a node), then whole nodes 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (2^k and 3 x 2^k), up to
    ``max_gpus``: steps of 1.33-1.5x, and counts that tensor and pipeline degrees divide."""
    counts = {c for c in (1, 2, 4) if c < gpus_per_node and c <= max_gpus}
    p2 = 1
    while p2 * gpus_per_node <= max_gpus:
        counts.add(p2 * gpus_per_node)
        if 3 * p2 * gpus_per_node <= max_gpus:
            counts.add(3 * p2 * gpus_per_node)
        p2 *= 2
    if not counts and max_gpus >= 1:
        counts.add(max_gpus)
    return sorted(counts)


def tp_options(model: ModelSpec, gpu: GpuSpec, n: int, per_node: int, pinned: int | None) -> list[int]:
    """Tensor-parallel degrees: heads split over tp, and KV heads too or replicated when tp is a multiple of them
    (vLLM / Megatron refuse other combinations); never past the node's scale-up domain."""
    if pinned is not None:
        return [pinned] if n % pinned == 0 else []
    limit = min(n, per_node, max(gpu.scaleup_domain, 1) if gpu.scaleup != "pcie" else per_node, 64)
    kv = model.kv_heads
    return [t for t in pow2_upto(limit) if model.heads % t == 0 and (kv % t == 0 or t % kv == 0)]


@functools.lru_cache(maxsize=4096)
def pipeline_split(layers: int, pp: int, v: int = 1) -> tuple[int, int, int] | None:
    """Layers on the (first, each middle, last) pipeline stage, or None when the stacks cannot split them so.

    Even splits (``pp x v`` divides the layers) run everywhere. Otherwise the first and last stages take fewer
    layers and every middle one ceil(L / pp), the busiest stage the memory and step models size: Megatron-LM's
    ``--decoder-first-pipeline-num-layers`` / ``--decoder-last-pipeline-num-layers``, as Llama 3 405B ran 126 layers
    on PP16 with one layer fewer on the first and the last stage (Dubey et al. 2024 sec. 3.3.2). Interleaved
    (v > 1), the middle stages' layers divide into v equal chunks, and the first and last stages need a layer in
    every chunk but one, which may hold only the embedding (first) or the output layer and loss (last):
    Megatron-LM's ``--pipeline-model-parallel-layout`` places layers chunk by chunk, its own example giving the
    embedding and the loss chunks of their own. So 80 layers never run on PP32: 30 middle stages of 3 layers would
    need 90. DeepSpeed's ``uniform`` partitioning accepts all of these."""
    if pp == 1:
        return (layers, layers, layers) if v == 1 else None
    if layers % (pp * v) == 0:
        k = layers // pp
        return (k, k, k)
    k = -(-layers // pp)
    if k % v:
        return None
    rest = layers - (pp - 2) * k  # for the first and last stages, each between max(1, v - 1) and k
    first, last = rest // 2, rest - rest // 2
    if first < max(1, v - 1) or last > k:
        return None
    return (first, k, last)


def pp_options(model: ModelSpec, n: int, tp: int, pinned: int | None) -> list[int]:
    if pinned is not None:
        return [pinned] if n % (tp * pinned) == 0 and pinned <= model.layers else []
    return [p for p in pow2_upto(min(model.layers, n // tp))
            if n % (tp * p) == 0 and pipeline_split(model.layers, p) is not None]


def pp_all_divisors(model: ModelSpec, n: int, tp: int) -> list[int]:
    """Every divisor of N / tp up to the layer count that splits the layers, for a pinned GPU count: 6 GPUs can
    run TP2 x PP3."""
    if n % tp:
        return []
    q = n // tp
    return [p for p in range(1, min(model.layers, q) + 1)
            if q % p == 0 and pipeline_split(model.layers, p) is not None]


def virtual_stage_options(model: ModelSpec, pp: int) -> tuple[int, ...]:
    """1 (plain 1F1B), and for pp > 1 the interleaved v in ``VIRTUAL_STAGES`` that divide every stage's layers
    (``pipeline_split``). Searched for pretraining only: the interleaved schedule
    is Megatron-LM's (and NeMo's, torchtitan's) for large pretraining runs; fine-tuning stacks (DeepSpeed,
    FSDP/accelerate, PEFT) run plain 1F1B if they pipeline."""
    if pp == 1:
        return (1,)
    return (1,) + tuple(v for v in VIRTUAL_STAGES if pipeline_split(model.layers, pp, v) is not None)


def ep_options(model: ModelSpec, dp: int, pinned: int | None) -> list[int]:
    if model.moe is None:
        return [1]
    if pinned is not None:
        return [pinned] if dp % pinned == 0 else []
    return [e for e in pow2_upto(min(dp, model.moe.experts)) if dp % e == 0 and model.moe.experts % e == 0]
