"""``data/memory.yaml`` as plain numbers for the hot path: bytes per element, optimizer states, engine reservations.

Every constant here comes from the data file with its ``source:``; this module only reshapes it (enum-keyed dicts,
GiB to bytes) once per process. ``constants()`` is what the rest of ``memory/`` reads.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from llmsizer.units import GIB
from llmsizer.workload.choices import Engine, Optimizer, Precision


class EngineMemory:
    """An inference engine's memory rules (``memory.yaml`` ``engines``): its reservation and profiling transient."""

    __slots__ = ("fraction", "fraction_by_tp", "fragmentation", "in_reserve", "non_torch_bytes", "prefill",
                 "prefill_small", "rows", "rows_small", "small_below_bytes", "small_ids", "source")

    def __init__(self, e: Any) -> None:
        self.fraction = e.memory_fraction
        self.fraction_by_tp = tuple(sorted(e.memory_fraction_by_tp, reverse=True))
        self.in_reserve = e.context_in_reserve
        self.prefill = e.prefill_tokens
        self.prefill_small = e.prefill_tokens_small_gpu or e.prefill_tokens
        self.rows = e.sampler_rows
        self.rows_small = e.sampler_rows_small_gpu or e.sampler_rows
        self.small_below_bytes = (e.small_gpu_below_gib or 0.0) * GIB
        self.small_ids = e.small_gpu_ids
        self.non_torch_bytes = e.non_torch_gib * GIB
        self.fragmentation = e.fragmentation
        self.source = e.source

    def is_small(self, gpu: Any) -> bool:
        return gpu.memory_bytes < self.small_below_bytes or any(s in gpu.id for s in self.small_ids)

    def memory_fraction(self, tp: int) -> float:
        """The share of device memory the engine reserves at this tensor-parallel size (SGLang shrinks it)."""
        for min_tp, fraction in self.fraction_by_tp:
            if tp >= min_tp:
                return fraction
        return self.fraction


class MemoryConstants:
    """Every constant of ``memory.yaml`` as plain floats and enum-keyed dicts; ``data`` is the file itself."""

    def __init__(self, d: Any) -> None:
        pb = d.precision_bytes
        self.weight_bytes = {p: pb.weights[p.value] for p in Precision}
        self.grad_bytes = {p: pb.gradients[p.value] for p in Precision}
        self.act_bytes = {p: pb.activations[p.value] for p in Precision}
        self.infer_bytes = {p: pb.inference_weights[p.value] for p in Precision}
        self.optimizers = {o: d.optimizers[o.value] for o in Optimizer}
        from llmsizer.data.serving import runtime_of

        self.engines = {e: EngineMemory(d.engines.get(e.value) or d.engines[runtime_of(e.value)]) for e in Engine}
        a = d.activations
        self.mask_bytes = a.dropout_mask_bytes
        self.lse_bytes = a.softmax_lse_bytes
        self.router_bytes = a.router_prob_bytes
        self.logit_bytes = a.logits_fp32_bytes + a.logits_16bit_bytes
        self.logit_fp32_bytes = a.logits_fp32_bytes
        self.working_layers = a.full_recompute_working_layers
        self.zero_units = d.zero.gathered_units
        self.zero_grad_units = d.zero.unsharded_grad_units
        self.bucket_elements = d.zero.reduce_bucket_elements
        self.host_grad_bytes = d.offload.host_gradient_bytes
        r = d.runtime
        self.context_bytes = {k: v * GIB for k, v in r.context_gib.items()}
        self.nccl_bytes = r.nccl_per_communicator_gib * GIB
        self.fragmentation = r.fragmentation_fraction
        self.lora_master = d.lora.master_copy
        self.data = d

    def dtype_bytes(self, act_bytes: float) -> dict[str, float]:
        """Bytes of each saved-tensor dtype class of the ledger (``specs/ledger.py`` ``Saved.dtype``)."""
        return {"act": act_bytes, "mask": self.mask_bytes, "lse": self.lse_bytes, "router": self.router_bytes,
                "logits": self.logit_bytes}


@cache
def constants() -> MemoryConstants:
    """``data/memory.yaml``, validated (data.load) and reshaped, once per process."""
    from llmsizer.data import load

    return MemoryConstants(load("memory"))


def source_of_storage(storage: str) -> str:
    """The citation of a weight storage format (a quantization or a GGUF mix)."""
    d = constants().data
    if storage in d.quantization:
        return d.quantization[storage].source
    return d.gguf.block_source + " " + d.gguf.mix_source
