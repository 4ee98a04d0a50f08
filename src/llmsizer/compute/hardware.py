"""What compute needs to know about an accelerator: dense peaks by dtype, bandwidths, its measured GEMM ceiling
class (``data/compute.yaml`` ``gpu_classes``), and the FLOP/s a kernel mix reaches on it.

``data/compute.yaml`` is read here (``compute_data()``), as plain namespaces from the data layer.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from llmsizer.specs.gpu import GpuSpec

PEAK_DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4")


@cache
def compute_data() -> Any:
    """``data/compute.yaml``, validated, once per process (from the disk cache when unchanged)."""
    from llmsizer.data import load

    return load("compute")


def class_matches(c: Any, gpu: GpuSpec) -> bool:
    """Whether GPU class ``c`` (by ``ids``, or by vendor / kind / scale-up / form factor) covers ``gpu``."""
    if c.ids:
        return gpu.id in c.ids
    ff = gpu.form_factor.lower()
    return (
        (c.vendor is None or gpu.vendor == c.vendor)
        and (c.kind is None or gpu.kind == c.kind)
        and (c.scaleup is None or gpu.scaleup == c.scaleup)
        and (c.form_factor_contains is None or c.form_factor_contains.lower() in ff)
        and (c.exclude_form_factor_contains is None or c.exclude_form_factor_contains.lower() not in ff)
    )


class GpuFacts:
    """Per-GPU quantities every estimate needs, in base units (built once per ``GpuSpec`` object)."""

    __slots__ = ("bandwidth", "class_id", "class_source", "domain", "gpus_per_node", "kernel_fraction", "kind",
                 "mamf_fraction", "peak", "ridge", "scaleout_bw", "scaleup_bw", "tdp_w")

    def __init__(self, gpu: GpuSpec, cls: Any) -> None:
        self.peak = {d: gpu.peak_flops(d) for d in PEAK_DTYPES}  # dense FLOP/s, fallbacks applied
        self.bandwidth = gpu.memory_bandwidth_bytes_per_s
        self.scaleup_bw = gpu.scaleup_bandwidth_bytes_per_s  # per GPU, one direction
        # per GPU, one direction; the scale-up figure when the GPU has no NIC figure
        self.scaleout_bw = gpu.scaleout_bandwidth_bytes_per_s or self.scaleup_bw
        self.domain = max(1, gpu.scaleup_domain)  # GPUs reachable over the scale-up fabric
        self.gpus_per_node = gpu.gpus_per_node
        self.ridge = self.peak["bf16"] / gpu.memory_bandwidth_bytes_per_s  # bf16 FLOP per byte of memory traffic
        self.class_id, self.mamf_fraction, self.class_source = cls.id, cls.mamf_fraction, cls.source
        self.kernel_fraction = getattr(cls, "kernel_peak_fraction", 1.0)  # see achieved_rate
        self.kind = gpu.kind
        self.tdp_w = gpu.tdp_watts


_FACTS: dict[int, tuple[GpuSpec, GpuFacts]] = {}


def gpu_facts(gpu: GpuSpec) -> GpuFacts:
    """The ``GpuFacts`` of ``gpu``, cached on the object (``dense_tflops`` is a dict, so specs are unhashable; an
    identity cache also keeps two user catalogs that reuse an id from sharing an entry)."""
    hit = _FACTS.get(id(gpu))
    if hit is not None and hit[0] is gpu:
        return hit[1]
    classes = compute_data().gpu_classes
    cls = next((c for c in classes if class_matches(c, gpu)), classes[-1])
    facts = GpuFacts(gpu, cls)
    if len(_FACTS) > 4096:
        _FACTS.clear()
    _FACTS[id(gpu)] = (gpu, facts)
    return facts


def size_factor(hidden: int, ridge: float, k: float) -> float:
    """``h / (h + k x ridge)``: the share of a training step that is matmul-bound rather than memory-bound.

    Memory-bound work per token per layer scales as ``h`` bytes, matmul work as ``h^2`` FLOPs; their time ratio is
    ``ridge / h`` up to a constant ``k`` (calibrated, data/compute.yaml). Ignores micro-batch shape effects.
    """
    return hidden / (hidden + k * ridge)


def training_efficiency(g: GpuFacts, hidden: int, moe: bool, p: Any) -> tuple[float, float]:
    """(size factor, efficiency): the share of the dense peak a training step's kernels reach before
    communication and the bubble: ``mamf_fraction x step_efficiency x size_factor (x moe_compute_efficiency)``."""
    size_f = size_factor(hidden, g.ridge, p.size_factor_k)
    eff = g.mamf_fraction * p.step_efficiency * size_f
    if moe:
        eff *= p.moe_compute_efficiency
    return size_f, eff


def achieved_rate(g: GpuFacts, dtype: str, efficiency: float, fp8_speedup_vs_bf16: float) -> tuple[float, float]:
    """(peak of ``dtype``, achieved FLOP/s at ``efficiency``): ``peak x kernel_fraction x efficiency``, where
    ``kernel_fraction`` is the share of the datasheet peak the runtimes' kernels can issue on this class at all
    (data/compute.yaml ``kernel_peak_fraction``: 1 for GPUs; Intel AMX CPUs reach a few percent of their AMX tile
    peak in llama.cpp's measured prompt processing). FP8 GEMMs run at the BF16 rate x the measured FP8 speed-up
    (``fp8_speedup_vs_bf16``), capped by the FP8/BF16 peak ratio, so a GPU without FP8 units gets its BF16 rate
    (FP8-LM, Peng et al. 2023 sec. 4: ~1.3x, not 2x)."""
    efficiency *= g.kernel_fraction
    if dtype == "fp8":
        speedup = min(fp8_speedup_vs_bf16, g.peak["fp8"] / g.peak["bf16"])
        return g.peak["fp8"], g.peak["bf16"] * efficiency * speedup
    peak = g.peak[dtype]
    return peak, peak * efficiency
