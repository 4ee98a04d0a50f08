"""Search hardware x parallelism exhaustively, keep what fits, rank -> ``PlanResult``.

The search space, for every GPU type in scope:
  GPU count N   -- 1, 2, 4, then whole nodes (1, 2, 3, 4, 6, 8, 12, 16, ... nodes) up to ``max_gpus``
  tp            -- powers of two inside the node's scale-up (NVLink/xGMI) domain that divide the heads
  pp            -- powers of two up to the layer count, with tp x pp dividing N; dp = N / (tp x pp)
  ep            -- MoE only: powers of two dividing dp and the expert count
  zero, offload -- ZeRO stage 0-3 (FSDP), offload none/cpu/nvme (training)
  recompute     -- none / selective / full; micro-batch 1, 2, 4, 8, 16 (training)
Pinned options fix their dimension. Pruning never drops a configuration that could win:
  * a (gpu, N, tp, pp) whose smallest possible per-GPU footprint (ZeRO-3, full recompute, micro-batch 1,
    most expert parallelism) does not fit is skipped whole;
  * for fixed (gpu, N, tp, pp, ep, micro-batch, recompute, offload) only the lowest ZeRO stage that fits is timed:
    a higher stage holds less memory but never communicates less (ZeRO paper sec. 7: stages 1-2 move the same
    volume as DDP, stage 3 1.5x), so it cannot be faster or cheaper;
  * a larger micro-batch is tried only while the smaller one fits (activations grow with it).
Ranking: ``cost`` (USD per token: total cost for the run, or per million output tokens), ``time`` (training
time, or inference time per output token), ``gpus`` (fewest GPUs, then cost). Only the best layout per
(GPU type, GPU count) is kept, so the top plans show different hardware choices.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from dataclasses import dataclass, field, replace
from enum import Enum

from llmsizer.catalog import Catalog
from llmsizer.compute import (
    CostEstimate,
    InferenceEstimate,
    TrainingEstimate,
    estimate_cost,
    estimate_inference,
    estimate_training,
)
from llmsizer.errors import InvalidInputError
from llmsizer.memory import MemoryBreakdown, estimate_memory, usable_memory_bytes
from llmsizer.server import ServerSpec, size_server
from llmsizer.specs import CloudInstance, GpuSpec, ModelSpec
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
_DEFAULT_MAX_GPUS = {Mode.inference: 64, Mode.lora: 64, Mode.qlora: 64, Mode.finetune: 512, Mode.pretrain: 16384}


def _pow2_upto(n: int) -> list[int]:
    out, x = [], 1
    while x <= n:
        out.append(x)
        x *= 2
    return out


def gpu_counts(gpus_per_node: int, max_gpus: int) -> list[int]:
    """1, 2, 4 (below a node), then whole nodes in steps of about 1.5x, up to ``max_gpus``."""
    counts = {c for c in (1, 2, 4) if c < gpus_per_node and c <= max_gpus}
    nodes = 1
    while nodes * gpus_per_node <= max_gpus:
        counts.add(nodes * gpus_per_node)
        nodes = nodes + 1 if nodes < 4 else (nodes * 3 // 2 if nodes % 2 == 0 else nodes + 1)
    if not counts and max_gpus >= 1:
        counts.add(max_gpus)
    return sorted(counts)


def _tp_options(model: ModelSpec, gpu: GpuSpec, n: int, per_node: int, pinned: int | None) -> list[int]:
    if pinned is not None:
        return [pinned] if n % pinned == 0 else []
    limit = min(n, per_node, max(gpu.scaleup_domain, 1) if gpu.scaleup != "pcie" else per_node, 64)
    return [t for t in _pow2_upto(limit) if model.heads % t == 0]


def _pp_options(model: ModelSpec, n: int, tp: int, pinned: int | None) -> list[int]:
    if pinned is not None:
        return [pinned] if n % (tp * pinned) == 0 and pinned <= model.layers else []
    return [p for p in _pow2_upto(min(model.layers, n // tp)) if n % (tp * p) == 0]


def _ep_options(model: ModelSpec, dp: int, pinned: int | None) -> list[int]:
    if model.moe is None:
        return [1]
    if pinned is not None:
        return [pinned] if dp % pinned == 0 else []
    return [e for e in _pow2_upto(min(dp, model.moe.experts)) if dp % e == 0 and model.moe.experts % e == 0]


def _price(gpu: GpuSpec, catalog: Catalog, c: Constraints) -> float | None:
    if c.price_usd_per_gpu_hour is not None:
        return c.price_usd_per_gpu_hour
    if gpu.price_usd_per_gpu_hour is not None:
        return gpu.price_usd_per_gpu_hour
    offers = [i.usd_per_hour / i.gpus for i in catalog.instances_for(gpu.id)]
    return min(offers) if offers else None


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


class _Search:
    def __init__(self, catalog: Catalog, model: ModelSpec, workload: Workload, c: Constraints) -> None:
        self.catalog, self.model, self.w, self.c = catalog, model, workload, c
        self.training = workload.mode.is_training
        self.evaluated = 0
        self.best: dict[tuple[str, int], tuple[tuple, Plan]] = {}
        self.unfit: dict[tuple[str, int], Plan] = {}
        self._prices: dict[str, float | None] = {}
        self._kth: tuple | None = None  # the top-th best rank key so far (branch and bound)

    def price(self, gpu: GpuSpec) -> float | None:
        if gpu.id not in self._prices:
            self._prices[gpu.id] = _price(gpu, self.catalog, self.c)
        return self._prices[gpu.id]

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
            reasons.append(f"takes {seconds / 86400:.1f} days, past the deadline of "
                           f"{self.c.deadline_s / 86400:.1f} days")
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

    def rank_key(self, p: Plan) -> tuple:
        """Lower is better. Unpriced plans rank after priced ones under ``cost``."""
        if p.training is not None:
            tps = max(p.training.tokens_per_second, 1e-30)
            time_key = 1.0 / tps
        else:
            assert p.inference is not None
            time_key = p.inference.tpot_seconds + p.inference.ttft_seconds / max(self.w.output_tokens, 1)
            tps = max(p.inference.tokens_per_second, 1e-30)
        cost_key = (p.cost.usd_per_hour / tps) if p.cost is not None else math.inf
        if self.c.sort is SortKey.time:
            return (time_key, cost_key, p.gpu_count)
        if self.c.sort is SortKey.gpus:
            return (p.gpu_count, cost_key, time_key)
        return (cost_key, time_key, p.gpu_count)

    def lower_bound(self, gpu: GpuSpec, n: int) -> tuple | None:
        """A rank key no training plan on ``n`` x ``gpu`` can beat: every FLOP at the dense peak (MFU = 1).

        Only the first element is bounded (the rest are 0), which is enough to compare with ``_kth``.
        """
        if not self.training:
            return None
        fpt = _flops_per_token(self.model, self.w)
        peak = gpu.peak_flops(self.w.precision.value)
        best_time = fpt / (n * peak)  # seconds per token, whole plan
        price = self.price(gpu)
        best_cost = (price * n / 3600.0) * best_time * 3600.0 if price is not None else math.inf
        if self.c.sort is SortKey.time:
            return (best_time, 0.0, 0)
        if self.c.sort is SortKey.gpus:
            return (n, 0.0, 0.0)
        return (best_cost, 0.0, 0)

    def offer(self, plan: Plan) -> None:
        key = (plan.gpu.id, plan.gpu_count)
        if plan.fits:
            k = self.rank_key(plan)
            if key not in self.best or k < self.best[key][0]:
                self.best[key] = (k, plan)
                if len(self.best) >= self.c.top:
                    self._kth = sorted(v[0] for v in self.best.values())[self.c.top - 1]
        elif key not in self.best:
            prev = self.unfit.get(key)
            if prev is None or plan.memory.total_bytes < prev.memory.total_bytes:
                self.unfit[key] = plan

    def layouts_for(self, gpu: GpuSpec, n: int, per_node: int):
        c = self.c
        for tp in _tp_options(self.model, gpu, n, per_node, c.tp):
            for pp in _pp_options(self.model, n, tp, c.pp):
                dp = n // (tp * pp)
                if c.dp is not None and dp != c.dp:
                    continue
                if not self.training and dp > 1 and c.dp is None and c.gpu_count is None:
                    continue  # inference: one replica serves --concurrency; replicas only multiply throughput
                yield tp, pp, dp

    def run_gpu(self, gpu: GpuSpec) -> None:
        c, w = self.c, self.w
        per_node = c.gpus_per_node or gpu.gpus_per_node
        usable = usable_memory_bytes(gpu, w)
        max_gpus = c.max_gpus or _DEFAULT_MAX_GPUS[w.mode]
        if gpu.kind != "gpu":
            max_gpus = min(max_gpus, per_node)  # Apple SoCs and CPU sockets: no multi-node plans
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

        for n in counts:
            bound = self.lower_bound(gpu, n)
            if bound is not None and self._kth is not None and bound > self._kth and not c.include_unfit:
                continue  # branch and bound: even at 100% MFU this count cannot enter the top plans
            for tp, pp, dp in self.layouts_for(gpu, n, per_node):
                for ep in _ep_options(self.model, dp, c.ep):
                    self._search_cell(gpu, usable, per_node, tp, pp, dp, ep, zeros, offloads, recomputes, micros)

    def _search_cell(self, gpu, usable, per_node, tp, pp, dp, ep, zeros, offloads, recomputes, micros) -> None:
        """One (gpu, N, tp, pp, ep) cell. For each micro-batch, a staircase walk over (recompute, ZeRO stage) finds,
        for each recompute mode, the lowest stage that fits; only those are timed (module docstring: a higher
        stage or more recomputation at the same micro-batch is never faster). Offload is searched like any other
        option: whether streaming state over PCIe beats recomputation is the compute model's call."""
        floor = Layout(tp=tp, pp=pp, dp=dp, ep=ep, zero=zeros[-1], offload=offloads[-1],
                       recompute=recomputes[-1], micro_batch=micros[0], gpus_per_node=per_node)
        ok, mem = self.memory_fits(gpu, floor, usable)
        if not ok:
            if (gpu.id, floor.gpu_count) not in self.best:
                self.offer(self.evaluate(gpu, floor, usable, mem=mem))
            return
        for offload in offloads:
            if offload is Offload.none:
                # ZeRO shards over dp: with dp = 1 every stage equals stage 0
                zs = [z for z in zeros if not (dp == 1 and z > 0 and len(zeros) > 1)] or zeros[:1]
            else:
                # offload needs ZeRO (ZeRO-Offload builds on stage 2, ZeRO-Infinity on 3); on one GPU too
                zs = [z for z in zeros if z > 0 or len(zeros) == 1]
            for micro in micros:
                hits = self._staircase(gpu, usable, per_node, tp, pp, dp, ep, zs, offload, recomputes, micro)
                for layout, mem in hits:
                    self.offer(self.evaluate(gpu, layout, usable, mem=mem))
                if not hits:
                    break  # a larger micro-batch needs more memory still

    def _staircase(self, gpu, usable, per_node, tp, pp, dp, ep, zs, offload, recomputes, micro):
        """For each recompute mode (least first), the lowest ZeRO stage in ``zs`` that fits, keeping only those
        that lower the stage: at most len(zs) + 2 len(recomputes) memory evaluations."""
        hits = []
        cur = None  # index in zs of the lowest stage that fits for the previous recompute mode
        for rc in recomputes:
            def fits(zi: int):
                lay = Layout(tp=tp, pp=pp, dp=dp, ep=ep, zero=zs[zi], offload=offload, recompute=rc,
                             micro_batch=micro, gpus_per_node=per_node)
                ok, mem = self.memory_fits(gpu, lay, usable)
                return (lay, mem) if ok else None

            if cur is None:
                for zi in range(len(zs)):
                    hit = fits(zi)
                    if hit:
                        cur = zi
                        hits.append(hit)
                        break
            else:
                best, zi = None, cur - 1
                while zi >= 0:
                    hit = fits(zi)
                    if not hit:
                        break
                    best, cur = hit, zi
                    zi -= 1
                if best:
                    hits.append(best)
            if cur == 0:
                break
        return hits


@lru_cache(maxsize=256)
def _flops_per_token(model: ModelSpec, w: Workload) -> float:
    """Model FLOPs per trained token, for the branch-and-bound lower bound (same function as the estimator)."""
    from llmsizer.compute import training_flops_per_token

    return training_flops_per_token(model, w, Recompute.none)[0]


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
    if c.tp is not None and model.heads % c.tp:
        raise InvalidInputError(f"--tp {c.tp} does not divide the model's {model.heads} attention heads")
    if c.pp is not None and c.pp > model.layers:
        raise InvalidInputError(f"--pp {c.pp} exceeds the model's {model.layers} layers")

    search = _Search(catalog, model, workload, c)
    for gpu in gpus:
        search.run_gpu(gpu)

    fitting = sorted((v for v in search.best.values()), key=lambda kv: kv[0])
    winners = [p for _, p in fitting][: c.top]
    result = PlanResult(model, workload, c, [], evaluated=search.evaluated)
    final: list[Plan] = []
    for i, p in enumerate(winners):
        final.append(_finish(search, catalog, p, explain=explain and i == 0))
    if c.include_unfit or not final:
        near = sorted(search.unfit.values(), key=lambda p: p.memory.total_bytes / p.usable_memory_bytes)
        shown = near[: c.top if c.include_unfit else 3]
        final += [_finish(search, catalog, p, explain=False) for p in shown]
    result.plans = final
    if not winners:
        result.suggestions = suggest(model, workload, c, near_misses=[p for p in final if not p.fits])
    result.search_seconds = time.perf_counter() - t0
    return result


def _finish(search: _Search, catalog: Catalog, p: Plan, *, explain: bool) -> Plan:
    """Re-evaluate a winner with explanations, then add the server and the cloud offers."""
    q = search.evaluate(p.gpu, p.layout, p.usable_memory_bytes, explain=explain)
    q = replace(q, fits=p.fits, reasons=p.reasons) if q.fits != p.fits else q
    server = size_server(search.model, q.gpu, search.w, q.layout, q.memory)
    return replace(q, server=server, cloud=_cloud(q.gpu, q.layout, catalog))


def suggest(model: ModelSpec, w: Workload, c: Constraints, near_misses: list[Plan]) -> list[str]:
    """What would make the job fit, in the order a user would try it."""
    out = []
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
