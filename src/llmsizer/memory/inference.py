"""Inference memory per GPU of one replica stage: stored weights, the engine's activation transient, the KV cache
of ``concurrency`` sequences of ``context`` tokens, and the runtime's overhead."""

from __future__ import annotations

from llmsizer.memory.activations import inference_transient
from llmsizer.memory.constants import EngineMemory, constants
from llmsizer.memory.kv import kv_bytes_per_sequence, kv_dtype_bytes
from llmsizer.memory.weights import communicators, expert_sharding, group_bytes, stage_bytes, storage
from llmsizer.specs.gpu import GpuSpec
from llmsizer.specs.model import ModelSpec
from llmsizer.workload.job import Layout, Workload


class InferenceParts:
    """One stage's bytes and the figures behind them (``memory/explain.py`` shows them)."""

    __slots__ = ("activations", "ctx", "engine", "frag", "kv", "kv_per_sequence", "logit_rows", "nccl", "non_torch",
                 "overhead", "per_token", "storage", "tokens", "weights")

    @property
    def parts(self) -> tuple[float, float, float, float, float, float, float, float]:
        return self.weights, 0.0, 0.0, self.activations, self.kv, self.overhead, 0.0, 0.0


def engine_memory(w: Workload) -> EngineMemory:
    return constants().engines[w.engine]


def inference_parts(model: ModelSpec, gpu: GpuSpec, w: Workload, lay: Layout, first: bool,
                    last: bool) -> InferenceParts:
    """The breakdown of one pipeline stage (``first`` holds the embedding, ``last`` the lm_head and the sampler's
    logits). The engine's profiling pass sets the transient: a chunk of prefill tokens (vLLM's
    max_num_batched_tokens) or, without chunking, every sequence's prompt at once."""
    k = constants()
    eng = engine_memory(w)
    out = InferenceParts()
    out.engine = eng
    out.storage, dense_b = storage(w)
    wb = group_bytes(model, out.storage, dense_b)
    dense, expert = stage_bytes(wb, model.layers, lay.tp, lay.pp, model.tied_embeddings, first, last,
                                expert_sharding(lay.tp, lay.dp, lay.ep)[0], attention_whole=lay.attention_dp)
    out.weights = dense + expert
    small = eng.is_small(gpu)
    if eng.prefill is None:  # no chunking: the whole prompt of every sequence at once
        out.tokens = w.concurrency * w.prompt_tokens
        keys = w.prompt_tokens
    else:
        out.tokens = eng.prefill_small if small else eng.prefill
        keys = w.context_tokens
    out.logit_rows = (eng.rows_small if small else eng.rows) or w.concurrency
    out.activations, out.per_token = inference_transient(model, k.act_bytes[w.precision], out.tokens, keys,
                                                         out.logit_rows, lay.tp, w.flash_attention, last)
    out.kv_per_sequence = kv_bytes_per_sequence(model, w, lay.tp, lay.pp, w.context_tokens, lay.attention_dp)
    out.kv = out.kv_per_sequence * w.concurrency
    out.ctx = 0.0 if eng.in_reserve else k.context_bytes.get(gpu.kind, 0.0)
    out.non_torch = eng.non_torch_bytes
    out.nccl = communicators(model, lay.tp, lay.pp, lay.dp, lay.ep, False) * k.nccl_bytes
    out.frag = k.fragmentation * (out.activations + out.kv) if eng.fragmentation else 0.0
    out.overhead = out.ctx + out.non_torch + out.nccl + out.frag
    return out


def kv_bytes_per_token(model: ModelSpec, w: Workload, lay: Layout) -> float:
    """Per-GPU KV-cache bytes per token of context (averaged over ``w.context_tokens`` for sliding windows)."""
    ctx = w.context_tokens
    return kv_bytes_per_sequence(model, w, lay.tp, lay.pp, ctx, lay.attention_dp) / ctx


__all__ = ["InferenceParts", "engine_memory", "inference_parts", "kv_bytes_per_token", "kv_dtype_bytes"]
