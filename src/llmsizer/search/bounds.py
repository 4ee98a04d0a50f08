"""Upper bounds on a training plan's tokens/s over whole families of layouts, for branch and bound.

Every bound is the step model (``compute/training.py``) evaluated on the *same* terms of the same ``StepCell``, with
each term that can only slow a step replaced by a lower bound of itself:
  - per-token and per-micro-batch terms (compute, dequantization, TP all-reduces, MoE all-to-alls, pipeline sends)
    at the least recomputation allowed: every one of them grows with recomputation;
  - exposed DP traffic: ``exposed(t) >= t (1 - dp_overlap)``, at the least over the allowed ZeRO stages of
    (m + bubble) x per-micro-batch traffic + per-step traffic; ZeRO-Infinity streaming >= 0;
  - offload: 0 without offload allowed, else the PCIe + CPU-Adam time of the shard sharded over all dp ranks;
  - micro-batches per step, tokens per step and the bubble exactly, per micro-batch size.
``per_gpu_count(n)`` drops the bubble and every communication term as well: n GPUs at the model's own compute
ceiling, tokens/s <= n x rate / hardware FLOPs per token. Bounds carry a 1e-9 relative margin, so rounding never
puts a bound below the value it bounds. tests/test_speed_invariants.py checks them on random layouts.
"""

from __future__ import annotations

from llmsizer.compute.training import StepJob, micro_batches, step_job, training_seconds
from llmsizer.specs.gpu import GpuSpec
from llmsizer.specs.model import ModelSpec
from llmsizer.workload.choices import Offload, Recompute
from llmsizer.workload.defaults import resolved
from llmsizer.workload.job import Workload

MARGIN = 1.0 + 1e-9


class CellBound:
    """Tokens/s bounds of one cell: ``at(offload, micro_batch)``, and ``best`` over both."""

    __slots__ = ("best", "per_micro", "t_off")

    def __init__(self, per_micro: dict[int, tuple[float, float]], t_off: float, offloads: list[Offload]) -> None:
        self.per_micro, self.t_off = per_micro, t_off
        least = 0.0 if Offload.none in offloads else t_off
        self.best = max((num / (den + least) for num, den in per_micro.values()), default=0.0)

    def at(self, offload: Offload, micro_batch: int) -> float:
        num, den = self.per_micro[micro_batch]
        return num / (den + (0.0 if offload is Offload.none else self.t_off))


class TrainingThroughputBound:
    """Bounds for one (model, GPU, resolved workload) over the allowed recompute modes, ZeRO stages, offloads and
    micro-batches (module docstring)."""

    def __init__(self, model: ModelSpec, gpu: GpuSpec, workload: Workload, recomputes: list[Recompute],
                 zeros: list[int], offloads: list[Offload], micro_batches_: list[int]) -> None:
        self.w = workload = resolved(model, workload)
        self.job: StepJob = step_job(model, gpu, workload)
        order = (Recompute.none, Recompute.selective, Recompute.full)
        self.least = min(recomputes, key=order.index)  # every term grows with recomputation
        self.zeros, self.offloads, self.micros = zeros, offloads, micro_batches_
        # every ZeRO stage allowed: their data-parallel traffic differs (fp32 gradients vs 16-bit weights)
        self._zero_kinds = tuple(sorted({min(z, 3) for z in zeros}))
        self._batches: dict[int, list[tuple[int, int, int, int]]] = {}
        self._cells: dict[tuple[int, ...], tuple] = {}

    def seconds_lower_bound(self, n: int, tokens_per_second_bound: float) -> float | None:
        """The training time of any plan on ``n`` GPUs with at most this throughput (None without a token count)."""
        seconds = training_seconds(self.w.tokens, tokens_per_second_bound, n)
        return None if seconds is None else seconds / MARGIN

    def per_gpu_count(self, n: int) -> float:
        """Tokens/s that no layout on ``n`` GPUs can exceed: n x rate / hardware FLOPs per token."""
        return n * self.job.rate / self.job.hw_flops[self.least] * MARGIN

    def _cell_terms(self, tp: int, pp: int, dp: int, ep: int, per_node: int, v: int) -> tuple:
        cell = self.job.cell(tp, pp, dp, ep, per_node)
        v = v if pp > 1 else 1
        rc = self.least
        ov = 1.0 - self.job.p.dp_overlap
        dp_costs = [(mb * ov, step * ov) for mb, step in (cell.dp_traffic(z) for z in self._zero_kinds)]
        batches = self._batches.get(dp)
        if batches is None:
            w = self.w
            batches = self._batches[dp] = [(b,) + micro_batches(w.global_batch_tokens, w.seq_len, dp, b)
                                           for b in self.micros]
        return (cell.per_token_s(rc, v), cell.fixed_s(rc, v), dp_costs, cell.offload_step_s(1, Offload.cpu), batches,
                (pp - 1) / v)

    def cell(self, tp: int, pp: int, dp: int, ep: int, per_node: int, v: int = 1,
             micro_batches_: list[int] | None = None) -> CellBound:
        """Tokens/s bounds of one (tp, pp, dp, ep, v) per (offload, micro-batch), over every ZeRO stage and recompute
        mode allowed, for ``micro_batches_`` (default: all the bound was built for)."""
        key = (tp, pp, dp, ep, per_node, v)
        terms = self._cells.get(key)
        if terms is None:
            if len(self._cells) > 65536:
                self._cells.clear()
            terms = self._cells[key] = self._cell_terms(tp, pp, dp, ep, per_node, v)
        per_tok, fixed, dp_costs, t_off, batches, bubble = terms
        s = self.w.seq_len
        if micro_batches_ is not None and micro_batches_ is not self.micros:
            batches = [x for x in batches if x[0] in micro_batches_]
        per_micro = {}
        for b, m, b_run, tokens_step in batches:
            slots = m + bubble
            dp_min = 0.0
            for i, (mb, step) in enumerate(dp_costs):
                cost = slots * mb + step
                if i == 0 or cost < dp_min:
                    dp_min = cost
            per_micro[b] = (tokens_step * MARGIN, slots * (b_run * s * per_tok + fixed) + dp_min)
        return CellBound(per_micro, t_off, self.offloads)


__all__ = ["MARGIN", "CellBound", "TrainingThroughputBound"]
