"""The exhaustive search over hardware x parallelism, with pruning that never drops a configuration that could
change the answer (``search/__init__.py`` states the rules; docs/performance.md has the proofs and figures):

* a cell whose smallest per-GPU footprint (highest ZeRO stage and offload allowed, full recompute, micro-batch 1)
  does not fit is skipped whole;
* for fixed (cell, micro-batch, ZeRO stage, offload) only the least recomputation that fits is timed:
  recomputation adds FLOPs and TP all-reduces and saves no time anywhere. Every ZeRO stage that fits is timed:
  how much of their traffic hides behind compute differs;
* a larger micro-batch is tried only while the smaller one fits (activations grow with it);
* branch and bound (training, ``bestfirst.py``): (GPU, N) entries, groups of cells and cells are visited best bound
  first (``bounds.py``); one whose bound ranks below the top-th best plan found so far cannot enter the answer;
  with a deadline or budget, what is bounded to miss it can only be a near miss. Ties go to the first in
  enumeration order, as in the plain walk.
Memory is checked with ``TrainingCell.total_bytes`` and throughput with ``StepCell.step``: the arithmetic
``estimate_memory`` / ``estimate_training`` report, without building their result objects."""

from __future__ import annotations

import bisect

from llmsizer.catalog import Catalog
from llmsizer.compute.inference import replica_costs
from llmsizer.compute.training import StepCell, step_job
from llmsizer.data.frameworks import check_mode
from llmsizer.memory import TrainingCell, usable_memory_bytes
from llmsizer.record import replace
from llmsizer.search.bestfirst import best_first
from llmsizer.search.bounds import CellBound, TrainingThroughputBound
from llmsizer.search.evaluate import hardware
from llmsizer.search.gpurun import GpuRun
from llmsizer.search.prune import Pruner
from llmsizer.search.ranking import Ranker
from llmsizer.search.result import Plan
from llmsizer.search.serving import (
    disaggregated_split,
    replicas_lower_bound,
    replicas_needed,
)
from llmsizer.search.space import (
    MICRO_BATCHES,
    Cell,
    ep_options,
    gpu_counts,
    pp_all_divisors,
    pp_options,
    tp_options,
    virtual_stage_options,
)
from llmsizer.search.staircase import any_fits, staircase
from llmsizer.specs.gpu import GpuSpec
from llmsizer.specs.model import ModelSpec
from llmsizer.workload.choices import Mode, Offload, Recompute, SortKey
from llmsizer.workload.defaults import MAX_GPUS
from llmsizer.workload.job import Constraints, Layout, Workload


class Search(Pruner):
    """One search: walks the cells of every GPU type, keeps the best fitting layout per (GPU type, GPU count) and
    the near misses (the smallest layout that does not fit, met before the first that fits)."""

    def __init__(self, catalog: Catalog, model: ModelSpec, w: Workload, c: Constraints,
                 order: SortKey | str | None = None) -> None:
        super().__init__(catalog, model, w, c, order)
        w, c = self.w, self.c
        # (gpu id, N) -> (rank key, enumeration order, gpu, layout, usable): the best fitting layout found so far
        self.best: dict[tuple[str, int], tuple] = {}
        # (gpu id, N) -> (memory bytes, enumeration order, Plan): the near miss of that (GPU, N)
        self.unfit: dict[tuple[str, int], tuple] = {}
        self._has_fit: set[tuple[str, int]] = set()  # (gpu id, N) where a layout that fits was met
        self._kth: tuple | None = None  # the top-th best rank key so far (branch and bound)
        self._keys: list[tuple] = []  # the best rank key of every group, sorted
        # the answer's rows: the best plan per GPU type (``per_type``), else per (GPU type, GPU count)
        self.per_type = False
        self._group_best: dict[object, tuple] = {}
        # other orders whose best timed layout is kept as well (the default answer's picks, ``search/picks.py``):
        # name -> Ranker, and name -> (rank key, enumeration order, gpu, layout, usable)
        self.pick_rankers: dict[str, Ranker] = {}
        self.pick_best: dict[str, tuple] = {}
        self.runs: list[GpuRun] = []  # each GPU type's options, as ``run`` set them up
        self._micro_cache: dict[tuple, tuple[int, ...]] = {}  # (tp, pp, dp, v > 1) -> micro-batches it runs
        self._groups_cache: dict[tuple, list] = {}  # (N, GPUs per node, scale-up) -> ``groups``
        self._keyers: dict[tuple[int, int], object] = {}  # (GPU index, N) -> its rank key of a throughput
        # a deadline or budget can turn away a layout that fits in memory (training with a token count only)
        self.limits = self.training and w.tokens is not None and (c.deadline_s is not None or c.budget_usd is not None)
        # when nothing fits: search what the deadline/budget bounds set aside, for the memory near misses
        # (plan() turns this off while it first looks for layouts that only miss the deadline or budget)
        self.memory_near_misses = True
        # the training stack's layouts (data/frameworks.yaml): only those are ever enumerated
        self.prof = check_mode(w.framework, w.mode) if self.training and w.framework is not None else None
        # serving at a request rate: each layout gets the replicas the rate needs (search/serving.py)
        self.sizing_replicas = (not self.training and w.request_rate is not None and c.dp is None
                                and c.gpu_count is None)

    # ----------------------------------------------------------------------------------------------- offers
    def _accept(self, key: tuple[str, int], k: tuple, order: tuple) -> bool:
        cur = self.best.get(key)
        return cur is None or (k, order) < (cur[0], cur[1])  # ties go to the first in enumeration order

    def _set_best(self, key: tuple[str, int], k: tuple, order: tuple, gpu: GpuSpec, layout: Layout,
                  usable: float) -> None:
        self.best[key] = (k, order, gpu, layout, usable)
        group = key[0] if self.per_type else key
        old = self._group_best.get(group)
        if old is not None and not k < old:
            return
        self._group_best[group] = k
        keys = self._keys  # every group's best rank key, sorted
        if old is not None:
            del keys[bisect.bisect_left(keys, old)]
        bisect.insort(keys, k)
        if len(keys) >= self.c.top:
            self._kth = keys[self.c.top - 1]

    def _keep_pick(self, name: str, k: tuple, order: tuple, gpu: GpuSpec, layout, usable: float) -> None:
        """Keep a fitting layout as the pick ``name`` if it ranks first under that order (``layout``: the Layout,
        or a function that builds it, called only when it is kept)."""
        cur = self.pick_best.get(name)
        if cur is None or (k, order) < (cur[0], cur[1]):
            self.pick_best[name] = (k, order, gpu, layout() if callable(layout) else layout, usable)

    def _near_miss_wanted(self, key: tuple[str, int], total_bytes: float, order: tuple) -> bool:
        """Whether a layout that does not fit would become the near miss of its (GPU, N)."""
        if key in self._has_fit or (self._kth is not None and not self.c.include_unfit):
            return False  # near misses are shown with --all or when nothing fits; once kth is set, plans fit
        prev = self.unfit.get(key)
        return prev is None or (total_bytes, order) < (prev[0], prev[1])

    def offer(self, plan: Plan, order: tuple = ()) -> None:
        key = (plan.gpu.id, plan.gpu_count)
        if plan.fits:
            self._has_fit.add(key)
            k = self.rank_key(plan)
            if self._accept(key, k, order):
                self._set_best(key, k, order, plan.gpu, plan.layout, plan.usable_memory_bytes)
            for name, ranker in self.pick_rankers.items():
                self._keep_pick(name, self.rank_key(plan, ranker), order, plan.gpu, plan.layout,
                                plan.usable_memory_bytes)
        elif key not in self._has_fit:
            prev = self.unfit.get(key)
            total = plan.memory.total_bytes
            if total <= plan.usable_memory_bytes:
                # it fits in memory and misses the deadline or budget: the quickest such plan is the near miss,
                # and it beats every layout that does not fit in memory (scores below any byte count)
                seconds = plan.training.seconds if plan.training is not None and plan.training.seconds else 0.0
                total = -1e300 + seconds * 1e280
            if prev is None or (total, order) < (prev[0], prev[1]):
                self.unfit[key] = (total, order, plan)

    # ------------------------------------------------------------------------------------------ enumeration
    def setup(self, gi: int, gpu: GpuSpec) -> GpuRun:
        c, w = self.c, self.w
        per_node = c.gpus_per_node or gpu.gpus_per_node
        max_gpus = c.max_gpus
        if gpu.kind != "gpu" or not gpu.scaleout_gbps:
            # Apple SoCs, CPU sockets and cards whose usual server has no scale-out fabric (GeForce: no RDMA NIC,
            # catalog scaleout_gbps 0) are sized as single machines; a pinned GPU count still pins any count
            max_gpus = min(max_gpus, per_node)
        prof = self.prof
        if prof is not None and prof.max_gpus is not None:
            max_gpus = min(max_gpus, prof.max_gpus)
        if self.sizing_replicas:
            max_gpus = min(max_gpus, MAX_GPUS[w.mode])  # per replica; the replicas may add up to c.max_gpus
        counts = [c.gpu_count] if c.gpu_count is not None else gpu_counts(per_node, max_gpus)
        zeros = [c.zero] if c.zero is not None else ([0, 1, 2, 3] if self.training else [0])
        if c.offload is not None:
            offloads = [c.offload]
        else:
            offloads = [Offload.none, Offload.cpu] if self.training and gpu.kind == "gpu" else [Offload.none]
        if prof is not None:
            zeros = [z for z in zeros if z in prof.layouts.zero]
            offloads = [o for o in offloads if o in prof.layouts.offload]
        if w.recompute is not None:
            recomputes = [w.recompute]
        else:
            recomputes = list(Recompute) if self.training else [Recompute.none]
        micros = [w.micro_batch] if w.micro_batch is not None else (list(MICRO_BATCHES) if self.training else [1])
        r = GpuRun(gi, gpu, per_node, counts, zeros, offloads, recomputes, micros, self.price(gpu),
                   usable_memory_bytes(gpu, w))
        if self.training:
            r.bound = TrainingThroughputBound(self.model, gpu, w, recomputes, zeros, offloads, micros)
        return r

    def layouts_for(self, gpu: GpuSpec, n: int, per_node: int):
        c, prof = self.c, self.prof
        for tp in tp_options(self.model, gpu, n, per_node, c.tp):
            if prof is not None and tp > 1 and not prof.layouts.tensor_parallel:
                continue
            pps = (pp_all_divisors(self.model, n, tp) if c.gpu_count is not None and c.pp is None
                   else pp_options(self.model, n, tp, c.pp))
            for pp in pps:
                if prof is not None and pp > 1 and not prof.layouts.pipeline_parallel:
                    continue
                dp = n // (tp * pp)
                if c.dp is not None and dp != c.dp:
                    continue
                if not self.training and dp > 1 and c.dp is None and c.gpu_count is None:
                    continue  # inference: one replica serves the concurrency; replicas only multiply throughput
                yield tp, pp, dp

    def cells(self, r: GpuRun, n: int):
        """The (tp, pp, dp, ep, v) cells on ``n`` GPUs, in enumeration order."""
        prof = self.prof
        interleave = self.w.mode is Mode.pretrain and (prof is None or prof.layouts.interleaved_pipeline)
        for tp, pp, dp in self.layouts_for(r.gpu, n, r.per_node):
            vs = virtual_stage_options(self.model, pp) if interleave else (1,)
            # inference engines run expert parallelism inside the TP (or attention-DP) group: vLLM
            # --enable-expert-parallel, SGLang --ep-size, TRT-LLM moe_expert_parallel_size (TP8 EP8 on 8 GPUs);
            # it holds the same expert bytes per GPU as TP, so it is laid out only when asked for
            group = dp if self.training else (dp * tp if self.c.ep is not None else 1)
            for ep in ep_options(self.model, group, self.c.ep):
                if prof is not None and ep > 1 and not prof.layouts.expert_parallel:
                    continue
                for v in vs:
                    yield tp, pp, dp, ep, v

    def run(self, gpus: list[GpuSpec], *, prune: bool = True, runs: list[GpuRun] | None = None) -> None:
        """Search ``gpus``; ``prune=False`` walks every cell in enumeration order without bounds (for tests).
        ``runs``: another search's ``runs`` of the same job and GPUs (their bounds' caches are shared)."""
        runs = self.runs = runs or [self.setup(gi, g) for gi, g in enumerate(gpus)]
        if self.training and prune and not self.c.include_unfit:
            self._best_first(runs)
            return
        # every cell in enumeration order: inference spaces are small, and --all reports the near misses met
        # before the first layout that fits on each (GPU, N), which depends on the order. Training cells are
        # still bounded by the top-th plan (their floors are always checked, so the near misses are those of
        # the full search) unless a deadline or budget can turn a layout that fits in memory away.
        for r in runs:
            for ni, n in enumerate(r.counts):
                for ci, cell in enumerate(self.cells(r, n)):
                    if not self.training:
                        self._inference_cell(r, cell, (r.gi, ni, ci))
                        continue
                    bounds = self._cell_bound(r, cell) if prune and not self.limits else None
                    self._training_cell(r, n, cell, bounds, (r.gi, ni, ci))

    def _best_first(self, runs: list[GpuRun]) -> None:
        best_first(self, runs)

    def groups(self, r: GpuRun, n: int) -> list[list[tuple[int, Cell]]]:
        """The cells on ``n`` GPUs as (enumeration index, cell), in runs that differ only in interleaving (v is the
        innermost loop of ``cells``, its first value 1). The cells depend on the GPU only through the tensor-parallel
        limit (``tp_options``), so GPU types alike share them (memoized per search)."""
        g = r.gpu
        key = (n, r.per_node, g.scaleup_domain, g.scaleup == "pcie")
        groups = self._groups_cache.get(key)
        if groups is None:
            groups = self._groups_cache[key] = []
            for ci, cl in enumerate(self.cells(r, n)):
                if groups and groups[-1][0][1][:4] == cl[:4]:
                    groups[-1].append((ci, cl))
                else:
                    groups.append([(ci, cl)])
        return groups

    # ------------------------------------------------------------------------------------------- one cell
    def _training_cell(self, r: GpuRun, n: int, cell: Cell, bounds: CellBound | None, order: tuple) -> None:
        """One (gpu, N, tp, pp, dp, ep, v) cell. For each micro-batch, a staircase walk over (ZeRO stage,
        recompute) finds, for each stage, the least recomputation that fits; only those are timed. Offload is
        searched like any other option. With ``bounds``, what cannot change the result is skipped."""
        tp, pp, dp, ep, _ = cell
        gpu, usable = r.gpu, r.usable
        zeros, offloads, recomputes = self._zeros_for(r, pp), r.offloads, r.recomputes
        micros = self._micros_for(r, cell)
        if not micros or not zeros or not offloads:
            return
        w = self.w_for(n)
        mem = self.memory(r, cell)
        self.evaluated += 1
        floor_bytes = mem.total_bytes(zeros[-1], offloads[-1], recomputes[-1], micros[0])
        if not floor_bytes <= usable:
            key = (gpu.id, n)
            if self._near_miss_wanted(key, floor_bytes, order):
                self.offer(self.evaluate(gpu, self._layout(r, cell, zeros[-1], offloads[-1], recomputes[-1],
                                                           micros[0]), usable), order)
            return
        if not self.limits:
            # the floor fits, so the staircase of (last offload, first micro-batch) times at least this layout
            self._has_fit.add((gpu.id, n))
        if bounds is not None and self._beaten(r, n, bounds.best):
            return
        step = step_job(self.model, gpu, w).cell(tp, pp, dp, ep, r.per_node)
        fits_on_gpu = False  # a layout without offload fits in this cell
        for oi, offload in enumerate(offloads):
            if offload is Offload.none:
                # ZeRO shards over dp: with dp = 1 every stage equals stage 0
                zs = [z for z in zeros if not (dp == 1 and z > 0 and len(zeros) > 1)] or zeros[:1]
            elif fits_on_gpu:
                break  # offload is the last resort: only where nothing fits without it (docs/planner.md)
            else:
                # offload needs ZeRO (ZeRO-Offload builds on stage 2, ZeRO-Infinity on 3); on one GPU too
                zs = [z for z in zeros if z > 0 or len(zeros) == 1]
            for mi, micro in enumerate(micros):
                if bounds is not None and self._beaten(r, n, bounds.at(offload, micro)):
                    found, k = any_fits(mem, usable, zs, offload, recomputes, micro)
                    self.evaluated += k
                    if not found:
                        break  # as below: nothing fits at this micro-batch, so nothing larger does
                    fits_on_gpu = fits_on_gpu or offload is Offload.none
                    continue
                hits, k = staircase(mem, usable, zs, offload, recomputes, micro)
                self.evaluated += k
                for hi, (rc, z) in enumerate(hits):
                    self._time(r, n, cell, mem, step, z, offload, rc, micro, order + (oi, mi, hi))
                if not hits:
                    break  # a larger micro-batch needs more memory still
                fits_on_gpu = fits_on_gpu or offload is Offload.none

    def _layout(self, r: GpuRun, cell: Cell, z: int, offload: Offload, rc: Recompute, micro: int,
                attention_dp: bool = False) -> Layout:
        tp, pp, dp, ep, v = cell
        if dp == 1 and offload is Offload.none and self.c.zero is None:
            z = 0  # ZeRO shards over data-parallel ranks: with one, every stage is stage 0
        return Layout(tp=tp, pp=pp, dp=dp, ep=ep, zero=z, offload=offload, recompute=rc, micro_batch=micro,
                      gpus_per_node=r.per_node, virtual_stages=v, attention_dp=attention_dp)

    def attention_dp_options(self, tp: int) -> tuple[bool, ...]:
        """The attention layouts a serving cell is laid out with: attention data parallelism only over more than
        one GPU; both for a MoE model unless ``--attention-dp`` or ``--no-attention-dp`` says which."""
        if self.training or tp == 1:
            return (False,)
        if self.c.attention_dp is None:
            return (False, True) if self.model.moe is not None else (False,)
        return (self.c.attention_dp,)

    def _time(self, r: GpuRun, n: int, cell: Cell, mem: TrainingCell, step: StepCell, z: int, offload: Offload,
              rc: Recompute, micro: int, order: tuple) -> None:
        """Time a layout that fits in memory and offer it; a ``Layout`` (and, for a near miss, a ``Plan``) is built
        only when the offer is taken."""
        self.evaluated += 1
        tps = step.step(z, offload, rc, micro, cell[4]).tokens_per_second
        key = (r.gpu.id, n)
        if self.limits and not self._within_limits(r, n, tps):
            if self._near_miss_wanted(key, mem.total_bytes(z, offload, rc, micro), order):
                self.offer(self.evaluate(r.gpu, self._layout(r, cell, z, offload, rc, micro), r.usable), order)
            return
        self._has_fit.add(key)
        hw, usd = r.hw(n), r.usd_per_hour(n)
        k = self.training_key(tps, hw, usd, r.price.owned)
        if self._accept(key, k, order):
            self._set_best(key, k, order, r.gpu, self._layout(r, cell, z, offload, rc, micro), r.usable)
        for name, ranker in self.pick_rankers.items():
            self._keep_pick(name, ranker.training(tps, hw, usd, r.price.owned), order, r.gpu,
                            lambda: self._layout(r, cell, z, offload, rc, micro), r.usable)

    def _inference_cell(self, r: GpuRun, cell: Cell, order: tuple) -> None:
        """One inference cell: a layout per attention layout (``attention_dp_options``), fitted against the
        engine's reservation at this tp (SGLang reserves less as tp grows)."""
        tp = cell[0]
        usable = r.usable_by_tp.get(tp)
        if usable is None:
            usable = r.usable_by_tp[tp] = usable_memory_bytes(r.gpu, self.w, Layout(tp=tp))
        for adp in self.attention_dp_options(tp):
            self._inference_layout(r, self._layout(r, cell, r.zeros[0], r.offloads[0], r.recomputes[0], r.micros[0],
                                                   adp), usable, (*order, adp))

    def _inference_layout(self, r: GpuRun, layout: Layout, usable: float, order: tuple) -> None:
        from llmsizer.memory import estimate_memory

        mem = estimate_memory(self.model, r.gpu, self.w, layout)
        if not mem.total_bytes <= usable and not self._near_miss_wanted((r.gpu.id, layout.gpu_count),
                                                                         mem.total_bytes, order):
            self.evaluated += 1
            return  # does not fit, and would not be shown as a near miss: no need to time it
        if self.sizing_replicas and mem.total_bytes <= usable:
            # capacity planning: as many replicas of this layout as the request rate needs within the targets
            costs = replica_costs(self.model, r.gpu, self.w, layout, mem)[0]
            rate = self.w.request_rate
            if self._kth is not None and not self.c.include_unfit:
                n = replicas_lower_bound(costs, rate) * layout.gpu_count
                usd = r.usd_per_hour(n)
                bound = self.ranker.inference(0.0, 0.0, rate * self.w.output_tokens, hardware(r.gpu, n, r.per_node),
                                              usd, r.price.owned)
                if bound > self._kth:
                    self.evaluated += 1
                    return  # even the fewest replicas it could need rank below the top plans found
            if self.c.disaggregate:
                split = disaggregated_split(costs, rate, self.c, self.c.max_gpus // layout.gpu_count)
                replicas = None if split is None else split[0] + split[1]
            else:
                split, replicas = None, replicas_needed(costs, rate, self.c)
            if replicas is not None and replicas * layout.gpu_count <= self.c.max_gpus:
                layout = replace(layout, dp=replicas, prefill_replicas=split[0] if split else 0)
            elif not self._near_miss_wanted((r.gpu.id, layout.gpu_count), mem.total_bytes, order):
                self.evaluated += 1
                return  # misses the targets and would not be shown
        self.offer(self.evaluate(r.gpu, layout, usable, mem=mem), order)
