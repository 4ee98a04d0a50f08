"""Search hardware x parallelism exhaustively, keep what fits, rank -> ``PlanResult``.

The search space, for every GPU type in scope:
  GPU count N   -- 1, 2, 4, then whole nodes (1, 2, 3, 4, 6, 8, 12, 16, ... nodes) up to ``max_gpus``
  tp            -- powers of two inside the node's scale-up (NVLink/xGMI) domain that divide the heads
  pp            -- powers of two up to the layer count with tp x pp dividing N (every divisor of N / tp when the
                   GPU count is pinned with --gpus); dp = N / (tp x pp)
  ep            -- MoE only: powers of two dividing dp and the expert count
  v             -- pretraining with pp > 1: interleaved pipeline chunks per GPU, 1 (plain 1F1B) or 2-8 dividing
                   a stage's layers when the micro-batches per step are a multiple of pp (Megatron-LM)
  zero, offload -- ZeRO stage 0-3 (FSDP), offload none/cpu/nvme (training)
  recompute     -- none / selective / full; micro-batch 1, 2, 4, 8, 16 (training)
A (gpu, N, tp, pp, dp, ep, v) is a *cell*. Pinned options fix their dimension. Pruning never drops a configuration
that could change the answer:
  * a cell whose smallest possible per-GPU footprint (highest ZeRO stage and offload allowed, full recompute,
    micro-batch 1) does not fit is skipped whole;
  * for fixed (cell, micro-batch, ZeRO stage, offload) only the least recomputation that fits is timed:
    recomputation adds FLOPs (a forward pass for full, attention for selective) and TP all-reduces and saves
    no time anywhere, so more of it cannot be faster or cheaper. Every ZeRO stage that fits is timed: their
    communication volumes are similar (ZeRO paper sec. 7) but how much of it hides behind compute differs;
  * a larger micro-batch is tried only while the smaller one fits (activations grow with it).
Branch and bound (training; docs/performance.md has the proofs and the figures):
  * ``compute.TrainingThroughputBound`` bounds the tokens/s of every layout of a (GPU, N) (compute at the model's
    own efficiency ceiling, no communication, no bubble), of a cell and of a cell's (offload, micro-batch) (the
    step model with each slowing term at its least: least recomputation, least exposed TP/EP/DP traffic over the
    allowed ZeRO stages, exact bubble and batch split). A tokens/s bound is a rank-key bound for every sort key.
  * (GPU, N) entries and cells are visited best bound first (a heap); one whose bound ranks below the top-th
    best plan found so far (``top``-th of the per-(GPU, N) bests) cannot enter the answer and is skipped, and the
    search ends when the best bound left does. A skipped micro-batch still ends its micro-batch loop when nothing
    fits at it: that is checked, not assumed.
  * with a deadline or budget, once something fits: what is bounded to miss the deadline or exceed the budget
    can only be a near miss, and is skipped; if nothing fits in the end, it is searched after all.
  * ties between equal rank keys go to the first in enumeration order (GPU list order, N, cell, offload,
    micro-batch), as in the plain exhaustive walk, so the visiting order never changes the answer.
  * ``include_unfit`` (--all) shows the near misses met before the first layout that fits on each (GPU, N),
    which depends on the order: cells are walked in enumeration order and every floor is checked; fitting
    layouts are still bounded by the top-th plan (not by a deadline or budget).
Memory is checked with ``memory.TrainingCellMemory`` and throughput with ``compute.training_tokens_per_second``,
which run the same arithmetic as ``estimate_memory`` / ``estimate_training`` (bit for bit, tested) without building
``Layout``, breakdown or estimate objects; only the winners are evaluated in full. Inference searches every cell
(one layout each, a few hundred in all), fitted against the engine's memory reservation at the cell's tp.
Ranking: ``cost`` (USD per token: total cost for the run, or per million output tokens), ``time`` (training
time, or inference time per output token), ``gpus`` (fewest GPUs, then cost). Only the best layout per
(GPU type, GPU count) is kept, so the top plans show different hardware choices.
"""
from __future__ import annotations

import bisect
import heapq
import math
import time
from dataclasses import dataclass, field, replace
from enum import Enum

from llmsizer.catalog import Catalog
from llmsizer.compute import (
    amortized_price_usd_per_gpu_hour,
    CellBound,
    default_global_batch_tokens,
    CostEstimate,
    InferenceEstimate,
    TrainingEstimate,
    TrainingThroughputBound,
    estimate_cost,
    estimate_inference,
    estimate_training,
    micro_batches_per_step,
    training_seconds,
    training_tokens_per_second,
)
from llmsizer.errors import InvalidInputError
from llmsizer.memory import MemoryBreakdown, TrainingCellMemory, estimate_memory, usable_memory_bytes
from llmsizer.server import ServerSpec, size_server
from llmsizer.specs import GpuSpec, ModelSpec
from llmsizer.units import DAY_S, HOUR_S
from llmsizer.workload import Layout, Mode, Offload, Recompute, Workload


class SortKey(str, Enum):
    cost = "cost"
    time = "time"
    gpus = "gpus"


@dataclass(frozen=True)
class Constraints:
    """What the user pinned or bounded. ``None`` means searched."""

    gpus: tuple[str, ...] = ()  # GPU ids in scope; empty = whole catalog
    gpu_count: int | None = None
    tp: int | None = None
    pp: int | None = None
    dp: int | None = None
    ep: int | None = None
    zero: int | None = None
    offload: Offload | None = None
    max_gpus: int | None = None
    gpus_per_node: int | None = None
    deadline_s: float | None = None
    budget_usd: float | None = None
    price_usd_per_gpu_hour: float | None = None
    sort: SortKey = SortKey.cost
    top: int = 5
    include_unfit: bool = False


@dataclass(frozen=True)
class CloudOffer:
    provider: str
    instance: str
    instances: int
    usd_per_hour: float  # for all ``instances``
    region: str | None
    price_date: str
    price_source: str


@dataclass(frozen=True)
class Plan:
    gpu: GpuSpec
    layout: Layout
    fits: bool
    reasons: tuple[str, ...]
    memory: MemoryBreakdown
    usable_memory_bytes: float
    training: TrainingEstimate | None
    inference: InferenceEstimate | None
    cost: CostEstimate | None
    server: ServerSpec | None = None
    cloud: tuple[CloudOffer, ...] = ()

    @property
    def gpu_count(self) -> int:
        return self.layout.gpu_count

    @property
    def nodes(self) -> int:
        return self.layout.nodes


@dataclass
class PlanResult:
    model: ModelSpec
    workload: Workload
    constraints: Constraints
    plans: list[Plan]
    notes: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    evaluated: int = 0
    search_seconds: float = 0.0

    @property
    def any_fit(self) -> bool:
        return any(p.fits for p in self.plans)


# ------------------------------------------------------------------------------------------------ enumeration

_MICRO_BATCHES = (1, 2, 4, 8, 16)
_MARGIN = 1.0 + 1e-9  # bounds compared with a user's deadline or budget: rounding never prunes a plan that fits
_DEFAULT_MAX_GPUS = {Mode.inference: 64, Mode.lora: 64, Mode.qlora: 64, Mode.finetune: 512, Mode.pretrain: 16384}


def _pow2_upto(n: int) -> list[int]:
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


def _tp_options(model: ModelSpec, gpu: GpuSpec, n: int, per_node: int, pinned: int | None) -> list[int]:
    if pinned is not None:
        return [pinned] if n % pinned == 0 else []
    limit = min(n, per_node, max(gpu.scaleup_domain, 1) if gpu.scaleup != "pcie" else per_node, 64)
    # attention heads split over tp; KV heads split too, or are replicated when tp is a multiple of them
    # (vLLM / Megatron refuse other combinations)
    kv = model.kv_heads
    return [t for t in _pow2_upto(limit) if model.heads % t == 0 and (kv % t == 0 or t % kv == 0)]


def _pp_options(model: ModelSpec, n: int, tp: int, pinned: int | None) -> list[int]:
    if pinned is not None:
        return [pinned] if n % (tp * pinned) == 0 and pinned <= model.layers else []
    return [p for p in _pow2_upto(min(model.layers, n // tp)) if n % (tp * p) == 0]


def _pp_all_divisors(model: ModelSpec, n: int, tp: int) -> list[int]:
    """Every divisor of N / tp up to the layer count, for a GPU count the user pinned: 6 GPUs can run TP2 x PP3
    even though 3 is not a power of two."""
    if n % tp:
        return []
    q = n // tp
    return [p for p in range(1, min(model.layers, q) + 1) if q % p == 0]


#: interleaved pipeline chunks per GPU the search tries (Megatron-LM's --num-layers-per-virtual-pipeline-stage);
#: v must divide the layers of a stage, so every chunk has the same number of layers. Published runs use 2-8
#: (Korthikanti et al. 2022: 3; Narayanan et al. 2021 sec. 5.4: 2-8); beyond 8 the bubble is already small and
#: each chunk adds point-to-point traffic
_VIRTUAL_STAGES = (2, 3, 4, 5, 6, 7, 8)


def _virtual_stage_options(model: ModelSpec, pp: int) -> tuple[int, ...]:
    """1 (plain 1F1B), and for pp > 1 the interleaved v in ``_VIRTUAL_STAGES`` that divide the stage's layers.
    Searched for pretraining only: the interleaved schedule is Megatron-LM's (and NeMo's, torchtitan's) for
    large pretraining runs; fine-tuning stacks (DeepSpeed, FSDP/accelerate, PEFT) run plain 1F1B if they
    pipeline at all. A pinned layout may still set v (``Layout.virtual_stages``)."""
    if pp == 1:
        return (1,)
    per_stage = -(-model.layers // pp)
    return (1,) + tuple(v for v in _VIRTUAL_STAGES if per_stage % v == 0)


def _ep_options(model: ModelSpec, dp: int, pinned: int | None) -> list[int]:
    if model.moe is None:
        return [1]
    if pinned is not None:
        return [pinned] if dp % pinned == 0 else []
    return [e for e in _pow2_upto(min(dp, model.moe.experts)) if dp % e == 0 and model.moe.experts % e == 0]


def _cost_key(usd_per_hour: float | None, tokens_per_second: float, owned: bool) -> tuple[int, float]:
    """USD per token, rented GPUs first: an ownership estimate (GPU purchase amortized, without the server,
    host RAM, power infrastructure or staff) is not comparable with a rental price that includes them, so owned
    hardware ranks after every rentable plan and among its own kind by its estimate; unpriced last."""
    if usd_per_hour is None:
        return (2, math.inf)
    return (1 if owned else 0, usd_per_hour / tokens_per_second)


def _rental_price(gpu: GpuSpec, catalog: Catalog, c: Constraints) -> float | None:
    if c.price_usd_per_gpu_hour is not None:
        return c.price_usd_per_gpu_hour
    if gpu.price_usd_per_gpu_hour is not None:
        return gpu.price_usd_per_gpu_hour
    offers = [i.usd_per_hour / i.gpus for i in catalog.instances_for(gpu.id)]
    return min(offers) if offers else None


def _price(gpu: GpuSpec, catalog: Catalog, c: Constraints) -> float | None:
    rental = _rental_price(gpu, catalog, c)
    if rental is not None:
        return rental
    # not rented anywhere in the catalog (consumer cards, Apple): the cost of owning it, purchase price amortized
    # plus electricity (data/compute.yaml ``cost``), so such GPUs still rank by cost instead of dropping to last
    return amortized_price_usd_per_gpu_hour(gpu)


def _cloud(gpu: GpuSpec, layout: Layout, catalog: Catalog) -> tuple[CloudOffer, ...]:
    offers = []
    n = layout.gpu_count
    for inst in catalog.instances_for(gpu.id):
        if n > inst.gpus and inst.gpus < min(layout.gpus_per_node, 8):
            continue  # a multi-node plan needs full-node instances
        k = math.ceil(n / inst.gpus)
        if layout.tp > inst.gpus:
            continue  # tensor parallelism must stay inside one instance
        offers.append(CloudOffer(inst.provider, inst.instance, k, k * inst.usd_per_hour, inst.region,
                                 inst.price_date, inst.price_source))
    offers.sort(key=lambda o: (o.usd_per_hour, o.instances))
    return tuple(offers[:6])


# ------------------------------------------------------------------------------------------------- the search


class _GpuRun:
    """One GPU type's part of the search: its options, resolved once (a plain class: cheap to define)."""

    __slots__ = ("bound", "counts", "gi", "gpu", "micros", "offloads", "per_node", "price", "recomputes", "usable",
                 "usable_by_tp", "zeros")

    def __init__(self, gi: int, gpu: GpuSpec, per_node: int, counts: list[int], zeros: list[int],
                 offloads: list[Offload], recomputes: list[Recompute], micros: list[int], price: float | None,
                 usable: float) -> None:
        self.gi = gi  # position in the GPU list (equal plans: the earlier GPU wins, as in catalog order)
        self.gpu, self.per_node, self.counts = gpu, per_node, counts
        self.zeros, self.offloads, self.recomputes, self.micros = zeros, offloads, recomputes, micros
        self.price = price
        self.usable = usable  # training: every layout may fill this much
        self.usable_by_tp: dict[int, float] = {}  # inference: the engine's reservation per tp
        self.bound: TrainingThroughputBound | None = None


Cell = tuple[int, int, int, int, int]  # (tp, pp, dp, ep, v): v interleaved pipeline chunks per GPU


class _Search:
    def __init__(self, catalog: Catalog, model: ModelSpec, workload: Workload, c: Constraints) -> None:
        self.training = workload.mode.is_training
        if self.training and workload.global_batch_tokens is None:
            # the step model's default batch, made explicit so that the memory model counts the micro-batches
            # a pipeline really has in flight (fewer than pp when a wide data-parallel group splits the batch)
            workload = workload.with_(global_batch_tokens=default_global_batch_tokens(workload))
        self.catalog, self.model, self.w, self.c = catalog, model, workload, c
        self.evaluated = 0
        # (gpu id, N) -> (rank key, enumeration order, gpu, layout, usable): the best fitting layout found so far
        self.best: dict[tuple[str, int], tuple] = {}
        # (gpu id, N) -> (memory bytes, enumeration order, Plan): the smallest layout that does not fit, among
        # those met before the first one that fits (the near misses shown with --all or when nothing fits)
        self.unfit: dict[tuple[str, int], tuple] = {}
        self._has_fit: set[tuple[str, int]] = set()  # (gpu id, N) where a layout that fits was met
        self._prices: dict[str, float | None] = {}
        self._kth: tuple | None = None  # the top-th best rank key so far (branch and bound)
        self._keys: list[tuple] = []  # the rank keys in ``best``, sorted
        self._interleavable: dict[tuple[int, int], list[int]] = {}  # (pp, dp) -> micro-batches v > 1 can run
        # a deadline or budget can turn away a layout that fits in memory (training with a token count only)
        self._limits = self.training and workload.tokens is not None and (
            c.deadline_s is not None or c.budget_usd is not None)
        # when nothing fits: search what the deadline/budget bounds set aside, for the memory near misses
        # (plan() turns this off while it first looks for layouts that only miss the deadline or budget)
        self.memory_near_misses = True

    def price(self, gpu: GpuSpec) -> float | None:
        if gpu.id not in self._prices:
            self._prices[gpu.id] = _price(gpu, self.catalog, self.c)
        return self._prices[gpu.id]

    def owned(self, gpu: GpuSpec) -> bool:
        """Whether the GPU's price is an ownership estimate (purchase amortized), not a rental price."""
        return _rental_price(gpu, self.catalog, self.c) is None

    # one layout -> a Plan (memory + time + cost), ``explain`` only for the winners
    def evaluate(self, gpu: GpuSpec, layout: Layout, usable: float, explain: bool = False,
                 mem: MemoryBreakdown | None = None) -> Plan:
        self.evaluated += 1
        if mem is None:
            mem = estimate_memory(self.model, gpu, self.w, layout, explain=explain)
        reasons: list[str] = []
        fits = mem.total_bytes <= usable
        if not fits:
            reasons.append(f"needs {mem.total_bytes / 2**30:.1f} GiB per GPU, {usable / 2**30:.1f} GiB usable")
        training = inference = None
        price = self.price(gpu)
        if self.training:
            training = estimate_training(self.model, gpu, self.w, layout, explain=explain)
            seconds = training.seconds
            cost = self._cost(gpu, layout, seconds, None, price, explain)
        else:
            inference = estimate_inference(self.model, gpu, self.w, layout, mem, explain=explain)
            if fits and inference.max_concurrency < 1:
                fits = False
                reasons.append("no room left for the KV cache of one sequence")
            seconds = None
            cost = self._cost(gpu, layout, None, inference.tokens_per_second, price, explain)
        if self.c.deadline_s is not None and seconds is not None and seconds > self.c.deadline_s:
            fits = False
            reasons.append(f"takes {_days(seconds)}, past the deadline of {_days(self.c.deadline_s)}")
        if (self.c.budget_usd is not None and cost is not None and cost.usd_total is not None
                and cost.usd_total > self.c.budget_usd):
            fits = False
            reasons.append(f"costs ${cost.usd_total:,.0f}, over the budget of ${self.c.budget_usd:,.0f}")
        return Plan(gpu, layout, fits, tuple(reasons), mem, usable, training, inference, cost)

    def memory_fits(self, gpu: GpuSpec, layout: Layout, usable: float) -> tuple[bool, MemoryBreakdown]:
        """The cheap half of an evaluation: does the layout fit in memory? (no timing)"""
        self.evaluated += 1
        mem = estimate_memory(self.model, gpu, self.w, layout)
        return mem.total_bytes <= usable, mem

    def _cost(self, gpu: GpuSpec, layout: Layout, seconds: float | None, tps: float | None,
              price: float | None, explain: bool) -> CostEstimate | None:
        if price is None:
            return None
        return estimate_cost(gpu, layout.gpu_count, seconds=seconds, price_usd_per_gpu_hour=price,
                             output_tokens_per_second=tps, explain=explain)

    # ---------------------------------------------------------------------------------------------- ranking
    def rank_key(self, p: Plan) -> tuple:
        """Lower is better. Unpriced plans rank after priced ones under ``cost``."""
        if p.training is not None:
            return self.training_key(p.training.tokens_per_second, p.gpu_count,
                                     p.cost.usd_per_hour if p.cost is not None else None, self.owned(p.gpu))
        assert p.inference is not None
        time_key = p.inference.tpot_seconds + p.inference.ttft_seconds / max(self.w.output_tokens, 1)
        tps = max(p.inference.tokens_per_second, 1e-30)
        cost_key = _cost_key(p.cost.usd_per_hour if p.cost is not None else None, tps, self.owned(p.gpu))
        return self._order(time_key, cost_key, p.gpu_count)

    def training_key(self, tokens_per_second: float, n: int, usd_per_hour: float | None,
                     owned: bool = False) -> tuple:
        """``rank_key`` of a training plan from its throughput, GPU count and cost per hour (price x N)."""
        tps = max(tokens_per_second, 1e-30)
        return self._order(1.0 / tps, _cost_key(usd_per_hour, tps, owned), n)

    def _order(self, time_key: float, cost_key: tuple, n: int) -> tuple:
        if self.c.sort is SortKey.time:
            return (time_key, cost_key, n)
        if self.c.sort is SortKey.gpus:
            return (n, cost_key, time_key)
        return (cost_key, time_key, n)

    # ----------------------------------------------------------------------------------------------- bounds
    def bound_key(self, r: _GpuRun, n: int, tokens_per_second_bound: float) -> tuple:
        """A rank key that no training plan on ``n`` x ``r.gpu`` with at most this throughput can beat."""
        return self.training_key(tokens_per_second_bound, n, r.price * n if r.price is not None else None,
                                 self.owned(r.gpu))

    def _beaten(self, r: _GpuRun, n: int, tokens_per_second_bound: float) -> bool:
        """Whether no training plan on ``n`` x ``r.gpu`` with at most this throughput can change the result:
        it ranks below the top-th plan found, or it misses the deadline/budget at a time when near misses no
        longer matter (something fits and --all was not asked for)."""
        if self._kth is not None and self.bound_key(r, n, tokens_per_second_bound) > self._kth:
            return True
        return bool(self.best) and not self.c.include_unfit and self._past_limits(r, n, tokens_per_second_bound)

    def _past_limits(self, r: _GpuRun, n: int, tokens_per_second_bound: float) -> bool:
        """Every plan on ``n`` GPUs with at most this throughput misses the deadline or exceeds the budget."""
        if not self._limits or r.bound is None:
            return False
        seconds = r.bound.seconds_lower_bound(n, tokens_per_second_bound)
        c = self.c
        if c.deadline_s is not None and seconds > c.deadline_s * _MARGIN:
            return True
        return (c.budget_usd is not None and r.price is not None
                and r.price * n * seconds / HOUR_S > c.budget_usd * _MARGIN)

    def _within_limits(self, r: _GpuRun, n: int, tokens_per_second: float) -> bool:
        """``evaluate``'s deadline and budget test of a training plan, from its throughput (the same arithmetic)."""
        seconds = training_seconds(self.w, tokens_per_second, n)
        if seconds is None:
            return True
        if self.c.deadline_s is not None and seconds > self.c.deadline_s:
            return False
        budget = self.c.budget_usd
        return not (budget is not None and r.price is not None and r.price * n * seconds / HOUR_S > budget)

    # ----------------------------------------------------------------------------------------------- offers
    def _accept(self, key: tuple[str, int], k: tuple, order: tuple) -> bool:
        cur = self.best.get(key)
        return cur is None or (k, order) < (cur[0], cur[1])  # ties go to the first in enumeration order

    def _set_best(self, key: tuple[str, int], k: tuple, order: tuple, gpu: GpuSpec, layout: Layout,
                  usable: float) -> None:
        old = self.best.get(key)
        self.best[key] = (k, order, gpu, layout, usable)
        keys = self._keys  # every (GPU, N)'s best rank key, sorted
        if old is not None:
            del keys[bisect.bisect_left(keys, old[0])]
        bisect.insort(keys, k)
        if len(keys) >= self.c.top:
            self._kth = keys[self.c.top - 1]

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
    def setup(self, gi: int, gpu: GpuSpec) -> _GpuRun:
        c, w = self.c, self.w
        per_node = c.gpus_per_node or gpu.gpus_per_node
        max_gpus = c.max_gpus or _DEFAULT_MAX_GPUS[w.mode]
        if gpu.kind != "gpu" or not gpu.scaleout_gbps:
            # Apple SoCs, CPU sockets and cards whose usual server has no scale-out fabric (GeForce: no RDMA NIC,
            # catalog scaleout_gbps 0) are sized as single machines; --gpus still pins any count
            max_gpus = min(max_gpus, per_node)
        counts = [c.gpu_count] if c.gpu_count is not None else gpu_counts(per_node, max_gpus)
        zeros = [c.zero] if c.zero is not None else ([0, 1, 2, 3] if self.training else [0])
        if c.offload is not None:
            offloads = [c.offload]
        else:
            offloads = [Offload.none, Offload.cpu] if self.training and gpu.kind == "gpu" else [Offload.none]
        if w.recompute is not None:
            recomputes = [w.recompute]
        else:
            recomputes = list(Recompute) if self.training else [Recompute.none]
        micros = [w.micro_batch] if w.micro_batch is not None else (list(_MICRO_BATCHES) if self.training else [1])
        r = _GpuRun(gi, gpu, per_node, counts, zeros, offloads, recomputes, micros, self.price(gpu),
                    usable_memory_bytes(gpu, w))
        if self.training:
            r.bound = TrainingThroughputBound(self.model, gpu, w, recomputes, zeros, offloads, micros)
        return r

    def layouts_for(self, gpu: GpuSpec, n: int, per_node: int):
        c = self.c
        for tp in _tp_options(self.model, gpu, n, per_node, c.tp):
            pps = (_pp_all_divisors(self.model, n, tp) if c.gpu_count is not None and c.pp is None
                   else _pp_options(self.model, n, tp, c.pp))
            for pp in pps:
                dp = n // (tp * pp)
                if c.dp is not None and dp != c.dp:
                    continue
                if not self.training and dp > 1 and c.dp is None and c.gpu_count is None:
                    continue  # inference: one replica serves --concurrency; replicas only multiply throughput
                yield tp, pp, dp

    def cells(self, r: _GpuRun, n: int):
        """The (tp, pp, dp, ep, v) cells on ``n`` GPUs, in enumeration order."""
        for tp, pp, dp in self.layouts_for(r.gpu, n, r.per_node):
            vs = _virtual_stage_options(self.model, pp) if self.w.mode is Mode.pretrain else (1,)
            for ep in _ep_options(self.model, dp, self.c.ep):
                for v in vs:
                    yield tp, pp, dp, ep, v

    def run(self, gpus: list[GpuSpec], *, prune: bool = True) -> None:
        """Search ``gpus``; ``prune=False`` walks every cell in enumeration order without bounds (for tests)."""
        runs = [self.setup(gi, g) for gi, g in enumerate(gpus)]
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
                    assert r.bound is not None
                    bounds = self._cell_bound(r, cell) if prune and not self._limits else None
                    self._training_cell(r, n, cell, bounds, (r.gi, ni, ci))

    def _best_first(self, runs: list[_GpuRun]) -> None:
        """Branch and bound, best bound first (module docstring): (GPU, N) entries by their compute ceiling, each
        expanded into (tp, pp, dp, ep) cells by a bound that adds the bubble and the communication; the search
        ends when the best bound left ranks below the top-th plan found. Entries and cells that can only miss
        the deadline or budget are set aside, and searched only if nothing fits (for the near misses)."""
        heap: list[tuple] = []
        for r in runs:
            assert r.bound is not None
            for ni, n in enumerate(r.counts):
                tps = r.bound.per_gpu_count(n)
                heap.append((self.bound_key(r, n, tps), (r.gi, ni), r, n, tps, None))
        heapq.heapify(heap)
        past_limits: list[tuple] = []
        while heap:
            item = heapq.heappop(heap)
            k, order, r, n, tps, cell = item
            if self._kth is not None and k > self._kth:
                break  # every bound left is at least k: nothing left can enter the top plans
            if self._past_limits(r, n, tps):
                if not self.best:
                    past_limits.append(item)
                continue
            if cell is None:
                assert r.bound is not None
                for ci, cl in enumerate(self.cells(r, n)):
                    bounds = self._cell_bound(r, cl)
                    ctps = bounds.best
                    if not ctps > 0.0:
                        continue  # an interleaved cell with no micro-batch count the schedule accepts
                    if self._kth is None or not self.bound_key(r, n, ctps) > self._kth:
                        heapq.heappush(heap, (self.bound_key(r, n, ctps), order + (ci,), r, n, ctps, (cl, bounds)))
            else:
                self._training_cell(r, n, cell[0], cell[1], order)
        if self.best or not self.memory_near_misses:
            return
        # nothing fits: what was set aside holds near misses too (nothing in it fits, so no pruning is lost)
        for _, order, r, n, _, cell in sorted(past_limits, key=lambda it: it[1]):
            if cell is not None:
                self._training_cell(r, n, cell[0], None, order)
            else:
                for ci, cl in enumerate(self.cells(r, n)):
                    self._training_cell(r, n, cl, None, order + (ci,))

    def _cell_bound(self, r: _GpuRun, cell: Cell) -> CellBound:
        tp, pp, dp, ep, v = cell
        assert r.bound is not None
        return r.bound.cell(tp, pp, dp, ep, r.per_node, v, self._micros_for(r, cell))

    def _micros_for(self, r: _GpuRun, cell: Cell) -> list[int]:
        """The micro-batch sizes a cell can run: all of them, except that Megatron-LM's interleaved schedule
        (v > 1) needs the micro-batches per step to be a multiple of pp."""
        _, pp, dp, _, v = cell
        if v == 1:
            return r.micros
        key = (pp, dp)  # r.micros depends on the workload only, so it is the same list for every GPU type
        micros = self._interleavable.get(key)
        if micros is None:
            micros = self._interleavable[key] = [b for b in r.micros
                                                 if micro_batches_per_step(self.w, dp, b) % pp == 0]
        return micros

    # ------------------------------------------------------------------------------------------- one cell
    def _training_cell(self, r: _GpuRun, n: int, cell: Cell, bounds: CellBound | None, order: tuple) -> None:
        """One (gpu, N, tp, pp, dp, ep, v) cell. For each micro-batch, a staircase walk over (ZeRO stage, recompute)
        finds, for each stage, the least recomputation that fits; only those are timed (module docstring: more
        recomputation at the same stage and micro-batch is never faster). Offload is searched like any
        other option: whether streaming state over PCIe beats recomputation is the compute model's call.
        With ``bounds``, a cell or (offload, micro-batch) that cannot change the result is skipped."""
        tp, pp, dp, ep, v = cell
        gpu, usable = r.gpu, r.usable
        zeros, offloads, recomputes = r.zeros, r.offloads, r.recomputes
        micros = self._micros_for(r, cell)
        if not micros:
            return
        mem = TrainingCellMemory(self.model, gpu, self.w, tp, pp, dp, ep, virtual_stages=v)
        self.evaluated += 1
        floor_bytes = mem.total_bytes(zeros[-1], offloads[-1], recomputes[-1], micros[0])
        if not floor_bytes <= usable:
            key = (gpu.id, n)
            if self._near_miss_wanted(key, floor_bytes, order):
                self.offer(self.evaluate(gpu, self._layout(r, cell, zeros[-1], offloads[-1], recomputes[-1],
                                                           micros[0]), usable), order)
            return
        if not self._limits:
            # the floor fits, so the staircase of (last offload, first micro-batch) times at least this layout
            self._has_fit.add((gpu.id, n))
        if bounds is not None and self._beaten(r, n, bounds.best):
            return
        for oi, offload in enumerate(offloads):
            if offload is Offload.none:
                # ZeRO shards over dp: with dp = 1 every stage equals stage 0
                zs = [z for z in zeros if not (dp == 1 and z > 0 and len(zeros) > 1)] or zeros[:1]
            else:
                # offload needs ZeRO (ZeRO-Offload builds on stage 2, ZeRO-Infinity on 3); on one GPU too
                zs = [z for z in zeros if z > 0 or len(zeros) == 1]
            for mi, micro in enumerate(micros):
                if bounds is not None and self._beaten(r, n, bounds.at(offload, micro)):
                    if not self._any_fits(mem, usable, zs, offload, recomputes, micro):
                        break  # as below: nothing fits at this micro-batch, so nothing larger does
                    continue
                hits = self._staircase(mem, usable, zs, offload, recomputes, micro)
                for hi, (rc, z) in enumerate(hits):
                    self._time(r, n, cell, mem, z, offload, rc, micro, order + (oi, mi, hi))
                if not hits:
                    break  # a larger micro-batch needs more memory still

    def _staircase(self, mem: TrainingCellMemory, usable: float, zs: list[int], offload: Offload,
                   recomputes: list[Recompute], micro: int) -> list[tuple[Recompute, int]]:
        """For each ZeRO stage in ``zs``, the least recomputation that fits. More recomputation at the same
        (stage, offload, micro-batch) only adds FLOPs and all-reduces, so it is never faster; ZeRO stages are
        *not* ordered by speed in the step model (stage 2's reduce-scatter can hide better than stage 1's
        all-reduce), so every stage that fits is timed. Memory falls as the stage rises, so the least fitting
        recompute index never rises along ``zs``: at most len(zs) + len(recomputes) memory evaluations."""
        hits = []
        ri = 0  # least recompute index that might fit at this stage
        for z in zs:
            if ri >= len(recomputes):
                ri = len(recomputes) - 1
            # walk down while a lighter recompute also fits (memory fell with the higher stage) ...
            fit = None
            while True:
                self.evaluated += 1
                if mem.total_bytes(z, offload, recomputes[ri], micro) <= usable:
                    fit = ri
                    if ri == 0:
                        break
                    ri -= 1
                    continue
                if fit is not None:
                    ri = fit
                    break
                # ... or up until one fits
                if ri + 1 >= len(recomputes):
                    break
                ri += 1
            if fit is not None:
                ri = fit
                hits.append((recomputes[fit], z))
            else:
                ri = len(recomputes)  # nothing fits at this stage; a higher stage starts from the top again
                ri = 0
        return hits

    def _any_fits(self, mem: TrainingCellMemory, usable: float, zs: list[int], offload: Offload,
                  recomputes: list[Recompute], micro: int) -> bool:
        """Whether ``_staircase`` would find anything, i.e. any (recompute, stage) fits; the most frugal first."""
        for rc in reversed(recomputes):
            for z in reversed(zs):
                self.evaluated += 1
                if mem.total_bytes(z, offload, rc, micro) <= usable:
                    return True
        return False

    def _layout(self, r: _GpuRun, cell: Cell, z: int, offload: Offload, rc: Recompute, micro: int) -> Layout:
        tp, pp, dp, ep, v = cell
        return Layout(tp=tp, pp=pp, dp=dp, ep=ep, zero=z, offload=offload, recompute=rc, micro_batch=micro,
                      gpus_per_node=r.per_node, virtual_stages=v)

    def _time(self, r: _GpuRun, n: int, cell: Cell, mem: TrainingCellMemory, z: int, offload: Offload,
              rc: Recompute, micro: int, order: tuple) -> None:
        """Time a layout that fits in memory and offer it. A ``Layout`` (and, for a near miss, a ``Plan``) is
        built only when the offer is taken."""
        tp, pp, dp, ep, v = cell
        self.evaluated += 1
        tps = training_tokens_per_second(self.model, r.gpu, self.w, tp, pp, dp, ep, z, offload, rc, micro,
                                         r.per_node, v)
        key = (r.gpu.id, n)
        if self._limits and not self._within_limits(r, n, tps):
            if self._near_miss_wanted(key, mem.total_bytes(z, offload, rc, micro), order):
                self.offer(self.evaluate(r.gpu, self._layout(r, cell, z, offload, rc, micro), r.usable), order)
            return
        self._has_fit.add(key)
        k = self.training_key(tps, n, r.price * n if r.price is not None else None, self.owned(r.gpu))
        if self._accept(key, k, order):
            self._set_best(key, k, order, r.gpu, self._layout(r, cell, z, offload, rc, micro), r.usable)

    def _inference_cell(self, r: _GpuRun, cell: Cell, order: tuple) -> None:
        """One inference cell: its single layout (inference searches no ZeRO stage, offload, recomputation or
        micro-batch), fitted against the engine's reservation at this tp (SGLang reserves less as tp grows)."""
        tp = cell[0]
        usable = r.usable_by_tp.get(tp)
        if usable is None:
            usable = r.usable_by_tp[tp] = usable_memory_bytes(r.gpu, self.w, Layout(tp=tp))
        layout = self._layout(r, cell, r.zeros[0], r.offloads[0], r.recomputes[0], r.micros[0])
        mem = estimate_memory(self.model, r.gpu, self.w, layout)
        if not mem.total_bytes <= usable and not self._near_miss_wanted((r.gpu.id, layout.gpu_count),
                                                                         mem.total_bytes, order):
            self.evaluated += 1
            return  # does not fit, and would not be shown as a near miss: no need to time it
        self.offer(self.evaluate(r.gpu, layout, usable, mem=mem), order)


def plan(
    catalog: Catalog, model: ModelSpec, workload: Workload, constraints: Constraints | None = None,
    *, explain: bool = False,
) -> PlanResult:
    """Every configuration that fits, best first (``constraints.top`` of them), with the server and cloud offers."""
    c = constraints or Constraints()
    t0 = time.perf_counter()
    if c.gpus:
        gpus = [catalog.gpu(g) for g in c.gpus]
    else:
        gpus = list(catalog.gpus.values())
    if c.gpu_count is not None:
        pinned = [x for x in (c.tp, c.pp, c.dp) if x is not None]
        if math.prod(pinned) and c.gpu_count % math.prod(pinned):
            raise InvalidInputError(
                f"--gpus {c.gpu_count} is not divisible by the pinned tp x pp x dp = {math.prod(pinned)}")
        if c.tp and c.pp and c.dp and c.tp * c.pp * c.dp != c.gpu_count:
            raise InvalidInputError(
                f"--tp {c.tp} x --pp {c.pp} x --dp {c.dp} = {c.tp * c.pp * c.dp}, not --gpus {c.gpu_count}")
    if c.tp is not None and model.kv_heads % c.tp and c.tp % model.kv_heads:
        raise InvalidInputError(
            f"--tp {c.tp} and the model's {model.kv_heads} KV heads do not divide one another; engines shard KV "
            f"heads over tensor-parallel ranks (or replicate them), so use a tp that divides {model.kv_heads} "
            "or a multiple of it")
    if c.tp is not None and model.heads % c.tp:
        raise InvalidInputError(f"--tp {c.tp} does not divide the model's {model.heads} attention heads")
    if c.pp is not None and c.pp > model.layers:
        raise InvalidInputError(f"--pp {c.pp} exceeds the model's {model.layers} layers")

    search = _Search(catalog, model, workload, c)
    search.memory_near_misses = not search._limits
    search.run(gpus)
    limit_misses: list[Plan] = []
    if not search.best and search._limits and not c.include_unfit:
        # nothing meets the deadline/budget: show the quickest (cheapest) layouts that fit in memory; only if
        # none does are the memory near misses searched for
        limit_misses = _closest_to_limits(catalog, model, workload, c, gpus, search)
        if not limit_misses:
            evaluated = search.evaluated
            search = _Search(catalog, model, workload, c)
            search.run(gpus)
            search.evaluated += evaluated

    # best first; equal keys in enumeration order (GPU list order, then GPU count)
    fitting = sorted(search.best.values(), key=lambda v: (v[0], v[1][:2]))[: c.top]
    result = PlanResult(model, workload, c, [], evaluated=search.evaluated)
    final: list[Plan] = []
    for i, (_, _, gpu, layout, usable) in enumerate(fitting):
        p = search.evaluate(gpu, layout, usable)
        final.append(_finish(search, catalog, p, explain=explain and i == 0))
    winners = list(final)
    if c.include_unfit or not final:
        near = [p for _, _, p in sorted(search.unfit.values(),
                                        key=lambda v: (v[2].memory.total_bytes / v[2].usable_memory_bytes, v[1][:2]))]
        shown = limit_misses or near[: c.top if c.include_unfit else 3]
        final += [_finish(search, catalog, p, explain=False) for p in shown]
    result.plans = final
    if not winners:
        result.suggestions = suggest(model, workload, c, near_misses=[p for p in final if not p.fits])
    result.search_seconds = time.perf_counter() - t0
    return result


def _days(seconds: float) -> str:
    """A training time for a message: ``36.5 days``, ``2.4 years``."""
    days = seconds / DAY_S
    return f"{days:,.1f} days" if days < 730 else f"{days / 365.25:,.1f} years"


def _closest_to_limits(catalog: Catalog, model: ModelSpec, workload: Workload, c: Constraints,
                       gpus: list[GpuSpec], search: _Search) -> list[Plan]:
    """When layouts fit in memory but every one misses the deadline or the budget, the near misses worth showing
    are the quickest (deadline) or the cheapest (budget) of them, not the smallest: the same search without the
    limits, ranked by time or cost, its plans evaluated against the limits (so they say by how much they miss)."""
    relaxed = replace(c, deadline_s=None, budget_usd=None, include_unfit=False,
                      sort=SortKey.time if c.deadline_s is not None else SortKey.cost)
    rs = _Search(catalog, model, workload, relaxed)
    rs.run(gpus)
    search.evaluated += rs.evaluated
    best = sorted(rs.best.values(), key=lambda v: (v[0], v[1][:2]))[: min(c.top, 3)]
    return [search.evaluate(gpu, layout, usable) for _, _, gpu, layout, usable in best]


def search_space_size(catalog: Catalog, model: ModelSpec, workload: Workload,
                      constraints: Constraints | None = None) -> int:
    """How many layouts ``plan`` answers for: every (GPU, N, tp, pp, dp, ep, zero, offload, recompute, micro-batch)
    in the search space, whether it was evaluated, pruned by a rule or bounded away (for benchmarks)."""
    c = constraints or Constraints()
    s = _Search(catalog, model, workload, c)
    gpus = [catalog.gpu(g) for g in c.gpus] if c.gpus else list(catalog.gpus.values())
    total = 0
    for gi, gpu in enumerate(gpus):
        r = s.setup(gi, gpu)
        per_cell = len(r.zeros) * len(r.offloads) * len(r.recomputes) * len(r.micros)
        total += per_cell * sum(1 for n in r.counts for _ in s.cells(r, n))
    return total


def _finish(search: _Search, catalog: Catalog, p: Plan, *, explain: bool) -> Plan:
    """Re-evaluate a winner with explanations, then add the server and the cloud offers."""
    q = search.evaluate(p.gpu, p.layout, p.usable_memory_bytes, explain=explain)
    q = replace(q, fits=p.fits, reasons=p.reasons) if q.fits != p.fits else q
    server = size_server(search.model, q.gpu, search.w, q.layout, q.memory)
    return replace(q, server=server, cloud=_cloud(q.gpu, q.layout, catalog))


def suggest(model: ModelSpec, w: Workload, c: Constraints, near_misses: list[Plan]) -> list[str]:
    """What would make the job fit, in the order a user would try it."""
    out = []
    in_memory = [p for p in near_misses if p.memory.total_bytes <= p.usable_memory_bytes]
    if in_memory:
        # they fit in memory but miss the deadline or the budget: the advice is about time and money
        quickest = min(in_memory, key=lambda p: p.training.seconds if p.training and p.training.seconds else 0)
        t = quickest.training.seconds if quickest.training else None
        when = f" in {_days(t)}" if t else ""
        out.append(f"closest: {quickest.gpu_count}x {quickest.gpu.id} fits in memory and finishes{when}")
        out.append("allow more GPUs (--max-gpus, or drop --gpus), a faster GPU, fewer --tokens, or relax "
                   "--deadline / --budget (--deadline none lifts the pretraining default)")
        return out
    if near_misses:
        best = min(near_misses, key=lambda p: p.memory.total_bytes / p.usable_memory_bytes)
        ratio = best.memory.total_bytes / best.usable_memory_bytes
        out.append(f"closest: {best.gpu_count}x {best.gpu.id} needs {ratio:.1f}x the usable memory per GPU")
    if c.gpu_count is not None or c.max_gpus is not None:
        out.append("allow more GPUs (--max-gpus, or drop --gpus)")
    if w.mode.is_training and c.offload in (None, Offload.none):
        out.append("offload optimizer state to CPU (--offload cpu with --zero 2 or 3)")
    if w.mode is Mode.finetune:
        out.append("train adapters instead: --mode lora, or --mode qlora for a 4-bit base")
    if w.mode is Mode.lora:
        out.append("quantize the frozen base: --mode qlora")
    if w.mode is Mode.inference and w.quant.value == "none":
        out.append("quantize the weights: --quant int8, int4 or q4_k_m")
    if w.mode is Mode.inference:
        out.append("shorten --context or lower --concurrency (the KV cache grows with both)")
    if w.mode.is_training and (w.micro_batch or 1) > 1:
        out.append("lower --batch")
    if w.mode.is_training and w.recompute not in (None, Recompute.full):
        out.append("recompute activations: --recompute full")
    if c.gpus:
        out.append("try other GPU types (drop --gpu)")
    if c.deadline_s is not None or c.budget_usd is not None:
        out.append("relax --deadline or --budget")
    return out
