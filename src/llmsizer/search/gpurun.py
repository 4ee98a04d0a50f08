"""One GPU type's part of a search (``GpuRun``): its options, price, usable memory and throughput bounds, resolved
once per search and shared by the searches of the default answer's picks (``search/picks.py``)."""

from __future__ import annotations

from llmsizer.search.bounds import TrainingThroughputBound
from llmsizer.search.evaluate import hardware
from llmsizer.search.ranking import Hardware, Price
from llmsizer.specs.gpu import GpuSpec
from llmsizer.workload.choices import Offload, Recompute
from llmsizer.workload.job import Workload


class GpuRun:
    """One GPU type's part of the search: its options, resolved once."""

    __slots__ = (
        "_hw",
        "bound",
        "bounds",
        "counts",
        "floors",
        "gi",
        "gpu",
        "mem_cells",
        "micros",
        "offloads",
        "per_node",
        "price",
        "recomputes",
        "usable",
        "usable_by_tp",
        "weights_floor",
        "zeros",
    )

    def __init__(self, gi: int, gpu: GpuSpec, per_node: int, counts: list[int], zeros: list[int],
                 offloads: list[Offload], recomputes: list[Recompute], micros: list[int], price: Price,
                 usable: float) -> None:
        self.gi = gi  # position in the GPU list (equal plans: the earlier GPU wins, as in catalog order)
        self.gpu, self.per_node, self.counts = gpu, per_node, counts
        self.zeros, self.offloads, self.recomputes, self.micros = zeros, offloads, recomputes, micros
        self.price = price
        self.usable = usable  # training: every layout may fill this much
        self.usable_by_tp: dict[int, float] = {}  # inference: the engine's reservation per tp
        self.bound: TrainingThroughputBound | None = None
        self.bounds: dict[int, TrainingThroughputBound] = {}  # per global batch (it grows with N in pretraining)
        self.weights_floor: float | None = None  # the stored weights' bytes, 0 when they may be offloaded
        self._hw: dict[int, Hardware] = {}
        self.mem_cells: dict[tuple, object] = {}  # (tp, pp, dp, ep, v) -> its TrainingCell (``Search.memory``)
        self.floors: dict[tuple, object] = {}  # cell -> ``Pruner.floor_recompute``'s answer

    def bound_for(self, w: Workload) -> TrainingThroughputBound:
        """The cell bounds for ``w`` (the GPU-count ceilings of ``bound`` do not depend on the global batch)."""
        assert self.bound is not None
        if w is self.bound.w or w.global_batch_tokens == self.bound.w.global_batch_tokens:
            return self.bound
        b = self.bounds.get(w.global_batch_tokens)
        if b is None:
            o = self.bound
            b = self.bounds[w.global_batch_tokens] = TrainingThroughputBound(o.model, self.gpu, w, o.recomputes,
                                                                             o.zeros, o.offloads, o.micros, o.job)
        return b

    def usd_per_hour(self, n: int) -> float | None:
        p = self.price.usd_per_gpu_hour
        return p * n if p is not None else None

    def hw(self, n: int) -> Hardware:
        h = self._hw.get(n)
        if h is None:
            h = self._hw[n] = hardware(self.gpu, n, self.per_node)
        return h
