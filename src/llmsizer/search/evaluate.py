"""One layout -> a ``Plan``: memory, time, cost, and whether (and why not) it fits; and its rank key.

The search evaluates only what it ranks or shows (``search/engine.py`` checks everything else with the fast paths
``TrainingCell.total_bytes`` and ``StepCell.step``, the same arithmetic).
"""

from __future__ import annotations

from llmsizer.catalog import Catalog
from llmsizer.compute import (
    CostEstimate,
    estimate_cost,
    estimate_inference,
    estimate_training,
)
from llmsizer.explain import Message, message
from llmsizer.memory import MemoryBreakdown, estimate_memory
from llmsizer.record import replace
from llmsizer.search.ranking import Hardware, Price, Ranker, price_of
from llmsizer.search.result import Plan
from llmsizer.search.serving import misses_sla, sla_met
from llmsizer.specs.gpu import GpuSpec
from llmsizer.specs.model import ModelSpec
from llmsizer.workload.choices import SortKey
from llmsizer.workload.defaults import (
    batch_scales_with_gpus,
    pretrain_global_batch_tokens,
    resolve_defaults,
)
from llmsizer.workload.job import Constraints, Layout, Workload


class Evaluator:
    """Evaluates layouts of one (model, resolved workload, resolved constraints) and ranks the plans."""

    def __init__(self, catalog: Catalog, model: ModelSpec, w: Workload, c: Constraints,
                 order: SortKey | str | None = None) -> None:
        job = resolve_defaults(model, w, c)  # idempotent: a resolved job stays as it is
        w, c = job.workload, job.constraints
        self.catalog, self.model, self.w, self.c = catalog, model, w, c
        self.training = w.mode.is_training
        self.ranker = Ranker(order or c.sort, w.output_tokens)  # ``order``: another than ``--sort`` (the picks)
        self.evaluated = 0
        self.floor_probes = 0  # of those, the memory checks branch and bound adds (``Pruner.floor_recompute``)
        self._prices: dict[str, Price] = {}
        self._scaled_batch = batch_scales_with_gpus(w)
        self._by_batch: dict[int, Workload] = {w.global_batch_tokens or 0: w}
        self._by_count: dict[int, Workload] = {}

    def w_for(self, n: int) -> Workload:
        """The workload on ``n`` GPUs: the pretraining default batch grows with the GPU count
        (``workload.defaults.pretrain_global_batch_tokens``); anything else is the same on every count."""
        if not self._scaled_batch:
            return self.w
        w = self._by_count.get(n)
        if w is None:
            tokens = pretrain_global_batch_tokens(n)
            w = self._by_batch.get(tokens)
            if w is None:
                w = self._by_batch[tokens] = self.w.with_(global_batch_tokens=tokens)
            self._by_count[n] = w
        return w

    def price(self, gpu: GpuSpec) -> Price:
        p = self._prices.get(gpu.id)
        if p is None:
            p = self._prices[gpu.id] = price_of(gpu, self.catalog, self.c)
        return p

    def evaluate(self, gpu: GpuSpec, layout: Layout, usable: float, explain: bool = False,
                 mem: MemoryBreakdown | None = None) -> Plan:
        self.evaluated += 1
        w = self.w_for(layout.gpu_count)
        if mem is None:
            mem = estimate_memory(self.model, gpu, w, layout, explain=explain)
        reasons: list[Message] = []
        fits = mem.total_bytes <= usable
        if not fits:
            reasons.append(message("needs_memory", need_bytes=mem.total_bytes, usable_bytes=usable))
        training = inference = None
        price = self.price(gpu)
        if self.training:
            training = estimate_training(self.model, gpu, w, layout, explain=explain)
            seconds = training.seconds
            cost = self._cost(gpu, layout, seconds, None, price, explain)
        else:
            inference = estimate_inference(self.model, gpu, self.w, layout, mem, explain=explain, constraints=self.c)
            if fits and inference.max_concurrency < 1:
                fits = False
                reasons.append(message("no_kv_room"))
            if inference.load is not None:
                met = sla_met(inference.load, self.c)
                inference = replace(inference, sla_met=met)
                if fits and met is False:
                    fits = False
                    reasons.append(misses_sla(inference.load, self.c, self.w.request_rate, layout.dp))
            seconds = None
            cost = self._cost(gpu, layout, None, inference.tokens_per_second, price, explain)
        c = self.c
        if c.deadline_s is not None and seconds is not None and seconds > c.deadline_s:
            fits = False
            reasons.append(message("past_deadline", seconds=seconds, deadline_s=c.deadline_s))
        if c.budget_usd is not None and cost is not None and cost.usd_total is not None and cost.usd_total > c.budget_usd:
            fits = False
            reasons.append(message("over_budget", usd=cost.usd_total, budget_usd=c.budget_usd))
        return Plan(gpu, layout, fits, tuple(reasons), mem, usable, training, inference, cost,
                    framework=self.w.framework if self.training else None,
                    engine=None if self.training else self.w.engine)

    def _cost(self, gpu: GpuSpec, layout: Layout, seconds: float | None, tps: float | None, price: Price,
              explain: bool) -> CostEstimate | None:
        if price.usd_per_gpu_hour is None:
            return None
        return estimate_cost(gpu, layout.gpu_count, seconds=seconds, price_usd_per_gpu_hour=price.usd_per_gpu_hour,
                             output_tokens_per_second=tps, explain=explain, price_basis=price.basis,
                             price_source=price.source, price_as_of=price.as_of)

    def rank_key(self, p: Plan, ranker: Ranker | None = None) -> tuple:
        """Lower is better (``search/ranking.py``); ``ranker`` another order than the search's own."""
        ranker = ranker or self.ranker
        usd_per_hour = p.cost.usd_per_hour if p.cost is not None else None
        owned = self.price(p.gpu).owned
        hw = hardware(p.gpu, p.gpu_count, p.layout.gpus_per_node)
        if p.training is not None:
            return ranker.training(p.training.tokens_per_second, hw, usd_per_hour, owned)
        assert p.inference is not None
        i = p.inference
        return ranker.inference(i.tpot_seconds, i.ttft_seconds, i.tokens_per_second, hw, usd_per_hour, owned)

    def training_key(self, tokens_per_second: float, hw: Hardware, usd_per_hour: float | None,
                     owned: bool = False) -> tuple:
        return self.ranker.training(tokens_per_second, hw, usd_per_hour, owned)


def hardware(gpu: GpuSpec, n: int, per_node: int) -> Hardware:
    """(GPUs, nodes, GPU memory over all of them): what ties are broken by."""
    return (n, -(-n // per_node), n * gpu.memory_bytes)
