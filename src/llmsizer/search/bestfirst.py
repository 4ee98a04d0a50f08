"""Branch and bound, best bound first: the training walk of ``Search.run`` (engine.py).

Every item on the heap carries a rank-key bound (``Pruner.bound_key``) that no layout under it can beat, and each
level's bound is at least the next one's, so items leave the heap best bound first and the walk ends when the best
bound left ranks below the top-th plan found. The levels:

1. a (GPU, N) entry: the compute ceiling (``TrainingThroughputBound.per_gpu_count``);
2. a group of cells that differ only in interleaving, first bounded by the terms that do not depend on its
   data-parallel degree (compute, TP all-reduces, MoE all-to-alls) and the pipeline bubble (``compute_bound``: no
   ``StepCell`` needed), then with its pipeline sends and data-parallel traffic too (``group``);
3. a cell, bounded from the least recomputation the group's lightest layout fits with (``Pruner.floor_recompute``,
   ``TrainingThroughputBound.cell``);
4. its layouts, checked for memory and timed (``Search._training_cell``).

An item whose bound ranks below the top-th plan, or below its GPU type's row when the answer has one row per type,
is dropped (ties are kept, and go to the first in enumeration order, as in the plain walk). Items that can only
miss the deadline or budget are set aside, and searched without bounds only if nothing fits (for the near misses).
A heap item is (key, enumeration order, GpuRun, N, tokens/s bound, what): ``what`` is None (an entry),
(``GROUP``, stage, cells) or (``CELL``, cell, its bounds).
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from llmsizer.search.gpurun import GpuRun
from llmsizer.search.space import Cell

if TYPE_CHECKING:
    from llmsizer.search.engine import Search

GROUP, CELL = 0, 1


def best_first(s: Search, runs: list[GpuRun]) -> None:
    """Walk ``runs`` best bound first (module docstring), offering what fits to ``s``."""
    heap: list[tuple] = []
    for r in runs:
        assert r.bound is not None
        for ni, n in enumerate(r.counts):
            tps = r.bound.per_gpu_count(n)
            heap.append((s.bound_key(r, n, tps), (r.gi, ni), r, n, tps, None))
    heapq.heapify(heap)
    past_limits: list[tuple] = []

    def push(r: GpuRun, n: int, order: tuple, tps: float, what: tuple) -> None:
        """Queue an item unless its bound already ranks below what was found."""
        k = s.bound_key(r, n, tps)
        if (s._kth is None or not k > s._kth) and not s._row_taken(r, k):
            heapq.heappush(heap, (k, order, r, n, tps, what))

    while heap:
        item = heapq.heappop(heap)
        k, order, r, n, tps, what = item
        if s._kth is not None and k > s._kth:
            break  # every bound left is at least k: nothing left can enter the top plans
        if s._row_taken(r, k):
            continue  # its GPU type has a better row already
        if s._past_limits(r, n, tps):
            if not s.best:
                past_limits.append(item)
            continue
        if what is None:  # an entry: its groups, by their dp-independent terms and bubble
            for group in s.groups(r, n):
                first = group[0][1]
                if s.best and s._weights_overflow(r, first):
                    continue  # its weights alone exceed the GPU (near misses are shown only if nothing fits)
                tp, pp, dp, ep, _ = first
                bound = r.bound_for(s.w_for(n)).compute_bound(tp, pp, dp, ep, r.per_node, [cl[4] for _, cl in group],
                                                              s._micros_for(r, first))
                push(r, n, order + (group[0][0],), bound, (GROUP, 0, group))
        elif what[0] == GROUP and what[1] == 0:  # with its pipeline sends and data-parallel traffic
            push(r, n, order, s._group_bound(r, [cl for _, cl in what[2]]).best, (GROUP, 1, what[2]))
        elif what[0] == GROUP:  # its cells, from the least recomputation its lightest layout fits with
            group = what[2]
            least = s.floor_recompute(r, group[0][1])
            if least is None and s.best:
                continue  # nothing in it fits (near misses are shown only if nothing fits)
            for ci, cl in group:
                bounds = s._cell_bound(r, cl, least)
                if bounds.best > 0.0:  # else an interleaved cell with no micro-batch count the schedule accepts
                    push(r, n, order[:-1] + (ci,), bounds.best, (CELL, cl, bounds))
        else:
            s._training_cell(r, n, what[1], what[2], order)
    if s.best or not s.memory_near_misses:
        return
    # nothing fits: what was set aside holds near misses too (nothing in it fits, so no pruning is lost)
    for _, order, r, n, _, what in sorted(past_limits, key=lambda it: it[1]):
        for cell_order, cl in _cells_of(s, r, n, order, what):
            s._training_cell(r, n, cl, None, cell_order)


def _cells_of(s: Search, r: GpuRun, n: int, order: tuple, what: tuple | None) -> list[tuple[tuple, Cell]]:
    """(enumeration order, cell) of every cell under a heap item."""
    if what is None:
        return [(order + (ci,), cl) for ci, cl in enumerate(s.cells(r, n))]
    if what[0] == GROUP:
        return [(order[:-1] + (ci,), cl) for ci, cl in what[2]]
    return [(order, what[1])]


__all__ = ["best_first"]
