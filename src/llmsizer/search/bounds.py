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

from collections.abc import Sequence

from llmsizer.compute.training import (
    RECOMPUTES,
    StepJob,
    collectives_per_layer,
    micro_batches,
    step_job,
    training_seconds,
)
from llmsizer.specs.gpu import GpuSpec
from llmsizer.specs.model import ModelSpec
from llmsizer.workload.choices import Offload, Recompute
from llmsizer.workload.defaults import resolved
from llmsizer.workload.job import Workload

MARGIN = 1.0 + 1e-9

#: recompute modes by cost (the step model's own order): every per-token and per-micro-batch term grows along it
RECOMPUTE_COST_ORDER = RECOMPUTES


class CellBound:
    """Tokens/s bounds of one cell: ``at(offload, micro_batch)``, and ``best`` over both."""

    __slots__ = ("best", "per_micro", "t_off")

    def __init__(self, per_micro: dict[int, tuple[float, float]], t_off: float, best: float) -> None:
        """``best``: the largest ``at`` over the micro-batches and the offloads allowed."""
        self.per_micro, self.t_off, self.best = per_micro, t_off, best

    def at(self, offload: Offload, micro_batch: int) -> float:
        num, den = self.per_micro[micro_batch]
        return num / (den + (0.0 if offload is Offload.none else self.t_off))


class TrainingThroughputBound:
    """Bounds for one (model, GPU, resolved workload) over the allowed recompute modes, ZeRO stages, offloads and
    micro-batches (module docstring)."""

    def __init__(self, model: ModelSpec, gpu: GpuSpec, workload: Workload, recomputes: list[Recompute],
                 zeros: list[int], offloads: list[Offload], micro_batches_: list[int],
                 job: StepJob | None = None) -> None:
        """``job``: a ``StepJob`` of the same model, GPU and workload but for the global batch, which only the
        micro-batch counts here read (the pretraining default batch grows with the GPU count)."""
        self.model, self.recomputes = model, recomputes
        self.w = workload = resolved(model, workload)
        self.job: StepJob = job or step_job(model, gpu, workload)
        self.least = min(recomputes, key=RECOMPUTE_COST_ORDER.index)  # every term grows with recomputation
        self.zeros, self.offloads, self.micros = zeros, offloads, micro_batches_
        self._no_offload = Offload.none in offloads  # the best case of a cell pays no offload time
        self._micros_t = tuple(micro_batches_)
        # every ZeRO stage allowed: their data-parallel traffic differs (fp32 gradients vs 16-bit weights)
        self._zero_kinds = tuple(sorted({min(z, 3) for z in zeros}))
        self._batches: dict[int, list[tuple[int, int, int, int]]] = {}
        self._bounds: dict[tuple, CellBound] = {}
        self._terms: dict[tuple, tuple] = {}  # (tp, pp, dp, ep, per_node) -> the v-independent cell terms

    def seconds_lower_bound(self, n: int, tokens_per_second_bound: float) -> float | None:
        """The training time of any plan on ``n`` GPUs with at most this throughput (None without a token count)."""
        seconds = training_seconds(self.w.tokens, tokens_per_second_bound, n)
        return None if seconds is None else seconds / MARGIN

    def per_gpu_count(self, n: int) -> float:
        """Tokens/s that no layout on ``n`` GPUs can exceed: n over one GPU's compute seconds per token (hardware
        FLOPs at the achieved rate, plus the stack's own per-token time)."""
        return n / self.job.seconds_per_token(self.least, 1) * MARGIN

    def compute_bound(self, tp: int, pp: int, dp: int, ep: int, per_node: int, vs: Sequence[int],
                      micro_batches_: Sequence[int]) -> float:
        """Tokens/s no cell (tp, pp, dp, ep, v in ``vs``) can exceed from the terms that do not depend on dp
        (compute, TP all-reduces, MoE all-to-alls, dequantization) and the pipeline bubble alone: ``group`` without
        the pipeline sends, data-parallel traffic and offload (each only adds time), so it needs no ``StepCell``."""
        compute, dequant, _, tp_comm, a2a = self.job.split_terms(tp, pp, ep, per_node)
        rc = self.least
        k = collectives_per_layer(rc)
        per_tok = compute[rc] + k * tp_comm[1] + k * a2a[1]
        fixed = dequant[rc] + k * tp_comm[0] + k * a2a[0]
        bubble = (pp - 1) / max(vs) if pp > 1 else 0.0
        s = self.w.seq_len
        return max([tokens_step * MARGIN / ((m + bubble) * (b_run * s * per_tok + fixed))
                    for b, m, b_run, tokens_step in self._batches_for(dp) if b in micro_batches_], default=0.0)

    def _batches_for(self, dp: int) -> list[tuple[int, int, int, int]]:
        """(micro-batch, micro-batches per step, sequences run per micro-batch, tokens per step) per micro-batch
        size, with ``dp`` replicas."""
        batches = self._batches.get(dp)
        if batches is None:
            w = self.w
            batches = self._batches[dp] = [(b,) + micro_batches(w.global_batch_tokens, w.seq_len, dp, b)
                                           for b in self.micros]
        return batches

    def _cell_terms(self, tp: int, pp: int, dp: int, ep: int, per_node: int, v: int, rc: Recompute) -> tuple:
        """(per-token seconds, per-micro-batch seconds, [(exposed DP seconds per micro-batch, per step) per ZeRO
        kind], offload seconds per step, [(micro-batch, m, sequences run, tokens per step)]) at recomputation
        ``rc``; only the first two depend on v and rc (memoized per cell without them)."""
        key = (tp, pp, dp, ep, per_node)
        shared = self._terms.get(key)
        if shared is None:
            if len(self._terms) > 65536:
                self._terms.clear()
            cell = self.job.cell(tp, pp, dp, ep, per_node)
            ov = 1.0 - self.job.p.dp_overlap
            dp_costs = []
            for z in self._zero_kinds:
                mb, step = cell.dp_traffic(z)
                dp_costs.append((mb * ov, step * ov))
            shared = self._terms[key] = (cell, dp_costs, cell.offload_step_s(1, Offload.cpu), self._batches_for(dp))
        cell, dp_costs, t_off, batches = shared
        v = v if pp > 1 else 1
        return cell.per_token_s(rc, v), cell.fixed_s(rc, v), dp_costs, t_off, batches

    def cell(self, tp: int, pp: int, dp: int, ep: int, per_node: int, v: int = 1,
             micro_batches_: Sequence[int] | None = None, least: Recompute | None = None) -> CellBound:
        """Tokens/s bounds of one (tp, pp, dp, ep, v) per (offload, micro-batch), over every ZeRO stage and recompute
        mode allowed, for ``micro_batches_`` (default: all the bound was built for). ``least``: the least
        recomputation any layout of the cell can fit with, when the caller knows one above the least allowed.
        Memoized: searches that share this bound (the picks' searches, ``search/picks.py``) ask for the same
        cells."""
        return self._bound(tp, pp, dp, ep, per_node, v, v, micro_batches_, least or self.least)

    def group(self, tp: int, pp: int, dp: int, ep: int, per_node: int, vs: Sequence[int],
              micro_batches_: Sequence[int] | None = None) -> CellBound:
        """Bounds of every cell (tp, pp, dp, ep, v) for v in ``vs`` at once: the pipeline sends at the least v (they
        grow with v), the bubble (pp - 1) / v at the largest, and ``micro_batches_`` those of the least v (the
        interleaved schedule only removes micro-batch sizes). Each cell's bound is at most this one, so a group whose
        bound cannot change the answer is skipped without bounding its cells."""
        return self._bound(tp, pp, dp, ep, per_node, min(vs), max(vs), micro_batches_, self.least)

    def _bound(self, tp: int, pp: int, dp: int, ep: int, per_node: int, v_sends: int, v_bubble: int,
               micro_batches_: Sequence[int] | None, rc: Recompute) -> CellBound:
        micros = self._micros_t if micro_batches_ is None else tuple(micro_batches_)
        key = (tp, pp, dp, ep, per_node, v_sends, v_bubble, micros, rc)
        hit = self._bounds.get(key)
        if hit is not None:
            return hit
        if len(self._bounds) > 65536:
            self._bounds.clear()
        per_tok, fixed, dp_costs, t_off, batches = self._cell_terms(tp, pp, dp, ep, per_node, v_sends, rc)
        bubble = (pp - 1) / (v_bubble if pp > 1 else 1)
        s = self.w.seq_len
        least = 0.0 if self._no_offload else t_off  # the best offload's extra seconds per step
        per_micro = {}
        for b, m, b_run, tokens_step in batches:
            if b not in micros:
                continue
            slots = m + bubble
            den = slots * (b_run * s * per_tok + fixed)
            if dp_costs:
                den = den + min([slots * mb + step for mb, step in dp_costs])
            per_micro[b] = (tokens_step * MARGIN, den)
        best = max([num / (den + least) for num, den in per_micro.values()], default=0.0)
        bound = self._bounds[key] = CellBound(per_micro, t_off, best)
        return bound


__all__ = ["MARGIN", "RECOMPUTE_COST_ORDER", "CellBound", "TrainingThroughputBound"]
