"""What a search may skip: rank-key bounds of (GPU, N) entries and cells, the deadline and budget tests, the rows
already taken, the cells whose weights cannot fit, and the micro-batches a cell runs. ``Search`` (engine.py) walks;
``Pruner`` decides; both read the state ``Search.__init__`` sets (``best``, ``_kth``, ``_group_best``, ``per_type``,
``limits``, ``_micro_cache``, ``_keyers``)."""

from __future__ import annotations

from llmsizer.compute.training import micro_batches_per_step, step_job, training_seconds
from llmsizer.memory import TrainingCell, training_cell
from llmsizer.search.bounds import MARGIN, RECOMPUTE_COST_ORDER, CellBound
from llmsizer.search.evaluate import Evaluator
from llmsizer.search.gpurun import GpuRun
from llmsizer.search.space import Cell
from llmsizer.units import HOUR_S
from llmsizer.workload.choices import Offload, Recompute


class Pruner(Evaluator):
    """The pruning rules of a search (module docstring)."""

    def bound_key(self, r: GpuRun, n: int, tokens_per_second_bound: float) -> tuple:
        """A rank key that no training plan on ``n`` x ``r.gpu`` with at most this throughput can beat."""
        keyer = self._keyers.get((r.gi, n))
        if keyer is None:
            keyer = self._keyers[(r.gi, n)] = self.ranker.training_keyer(r.hw(n), r.usd_per_hour(n), r.price.owned)
        return keyer(tokens_per_second_bound)

    def _beaten(self, r: GpuRun, n: int, tokens_per_second_bound: float) -> bool:
        """Whether no plan on ``n`` x ``r.gpu`` with at most this throughput can change the result: it ranks below
        the top-th plan found, or it misses the deadline/budget once near misses no longer matter."""
        k = self.bound_key(r, n, tokens_per_second_bound)
        if self._kth is not None and k > self._kth or self._row_taken(r, k):
            return True
        return bool(self.best) and not self.c.include_unfit and self._past_limits(r, n, tokens_per_second_bound)

    def _row_taken(self, r: GpuRun, k: tuple) -> bool:
        """With one row per GPU type: a plan of ``r.gpu`` that ranks below its type's best found so far cannot
        be its row."""
        if not self.per_type:
            return False
        best = self._group_best.get(r.gpu.id)
        return best is not None and k > best

    def _past_limits(self, r: GpuRun, n: int, tokens_per_second_bound: float) -> bool:
        """Every plan on ``n`` GPUs with at most this throughput misses the deadline or exceeds the budget."""
        if not self.limits or r.bound is None:
            return False
        seconds = r.bound.seconds_lower_bound(n, tokens_per_second_bound)
        c = self.c
        if c.deadline_s is not None and seconds > c.deadline_s * MARGIN:
            return True
        usd = r.usd_per_hour(n)
        return c.budget_usd is not None and usd is not None and usd * seconds / HOUR_S > c.budget_usd * MARGIN

    def _within_limits(self, r: GpuRun, n: int, tokens_per_second: float) -> bool:
        """``evaluate``'s deadline and budget test of a training plan, from its throughput (the same arithmetic)."""
        seconds = training_seconds(self.w.tokens, tokens_per_second, n)
        if seconds is None:
            return True
        if self.c.deadline_s is not None and seconds > self.c.deadline_s:
            return False
        budget, usd = self.c.budget_usd, r.usd_per_hour(n)
        return not (budget is not None and usd is not None and usd * seconds / HOUR_S > budget)

    def _weights_overflow(self, r: GpuRun, cell: Cell) -> bool:
        """Whether the stored weights alone, spread as evenly as tp x pp x ep (and dp under ZeRO-3) could spread
        them, exceed the usable memory: a lower bound of every layout's footprint in the cell (the busiest stage
        holds at least the average; replicated norms and embeddings only add). Never when parameters may be
        offloaded (ZeRO-3 with offload)."""
        floor = r.weights_floor
        if floor is None:
            if 3 in r.zeros and any(o is not Offload.none for o in r.offloads):
                floor = 0.0
            else:
                floor = step_job(self.model, r.gpu, self.w).weight_bytes
            r.weights_floor = floor
        tp, pp, dp, ep, _ = cell
        split = tp * pp * ep * (dp if 3 in r.zeros else 1)
        return floor / split > r.usable

    def _cell_bound(self, r: GpuRun, cell: Cell, least: Recompute | None = None) -> CellBound:
        tp, pp, dp, ep, v = cell
        bound = r.bound_for(self.w_for(tp * pp * dp))
        return bound.cell(tp, pp, dp, ep, r.per_node, v, self._micros_for(r, cell), least)

    def _group_bound(self, r: GpuRun, cells: list[Cell]) -> CellBound:
        """One bound over cells that differ only in interleaving (``TrainingThroughputBound.group``); the first is
        v = 1, whose micro-batch sizes include every other's."""
        tp, pp, dp, ep, _ = cells[0]
        bound = r.bound_for(self.w_for(tp * pp * dp))
        return bound.group(tp, pp, dp, ep, r.per_node, [c[4] for c in cells], self._micros_for(r, cells[0]))

    def _zeros_for(self, r: GpuRun, pp: int) -> list[int]:
        """The ZeRO stages a cell with ``pp`` stages runs: with a pipeline, those the stack's pipeline engine takes
        (DeepSpeed's refuses ZeRO-2/3)."""
        if pp > 1 and self.prof is not None:
            return [z for z in r.zeros if z in self.prof.layouts.zero_with_pipeline]
        return r.zeros

    def memory(self, r: GpuRun, cell: Cell) -> TrainingCell:
        """The ``TrainingCell`` of ``cell`` on ``r.gpu`` (memoized per GPU type: the picks' searches share it)."""
        mem = r.mem_cells.get(cell)
        if mem is None:
            tp, pp, dp, ep, v = cell
            if len(r.mem_cells) > 65536:
                r.mem_cells.clear()
            mem = r.mem_cells[cell] = training_cell(self.model, r.gpu, self.w_for(tp * pp * dp), tp, pp, dp, ep,
                                                    True, v)
        return mem

    def floor_recompute(self, r: GpuRun, cell: Cell) -> Recompute | None:
        """The least costly recomputation that fits ``cell``'s lightest layout (the highest ZeRO stage and offload
        it runs, its smallest micro-batch), None when none does. Memory only falls as the ZeRO stage and offload
        rise and grows with the micro-batch (the search's floor rule, engine.py) and with interleaving (the
        interleaved schedule holds p + (p - 1)/v micro-batches' layers where 1F1B holds p:
        ``training_activations``), so with v = 1 no layout of any v in the group fits with a cheaper one."""
        if cell in r.floors:
            return r.floors[cell]  # the picks' searches ask again for the same cells
        zs = self._zeros_for(r, cell[1])
        micros = self._micros_for(r, cell)
        found = None
        if zs and micros and r.offloads:
            mem = self.memory(r, cell)
            for rc in sorted(r.recomputes, key=RECOMPUTE_COST_ORDER.index):
                self.evaluated += 1
                self.floor_probes += 1
                if mem.total_bytes(zs[-1], r.offloads[-1], rc, micros[0]) <= r.usable:
                    found = rc
                    break
        r.floors[cell] = found
        return found

    def _micros_for(self, r: GpuRun, cell: Cell) -> tuple[int, ...]:
        """The micro-batch sizes a cell can run: none larger than the step's sequences per data-parallel replica
        (micro x dp x accumulation = the global batch; a larger micro-batch would only pad it), and for
        Megatron-LM's interleaved schedule (v > 1) only those whose micro-batches per step are a multiple of pp.
        A micro-batch the user pinned is kept."""
        tp, pp, dp, _, v = cell
        key = (tp, pp, dp, v > 1)  # r.micros depends on the workload only: the same for every GPU type
        micros = self._micro_cache.get(key)
        if micros is None:
            w = self.w_for(tp * pp * dp)
            ms = r.micros
            if w.micro_batch is None:
                per_replica = w.global_batch_tokens / w.seq_len / dp
                ms = [b for b in ms if b == 1 or b <= per_replica + 1e-9]
            if v > 1:
                ms = [b for b in ms if micro_batches_per_step(w, dp, b) % pp == 0]
            micros = self._micro_cache[key] = tuple(ms)
        return micros
