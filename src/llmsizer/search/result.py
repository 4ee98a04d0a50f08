"""What a search answers: ``Plan`` (one layout on one GPU type, with its memory, time, cost, server and cloud offers)
and ``PlanResult`` (the ranked plans, the notes, the advice when nothing fits)."""

from __future__ import annotations

import math

from llmsizer.catalog import Catalog
from llmsizer.compute import CostEstimate, InferenceEstimate, TrainingEstimate
from llmsizer.compute.server import ServerSpec
from llmsizer.explain import Message
from llmsizer.memory import MemoryBreakdown
from llmsizer.record import field, record
from llmsizer.specs.gpu import GpuSpec
from llmsizer.specs.model import ModelSpec
from llmsizer.workload.choices import Engine, Framework
from llmsizer.workload.job import Constraints, Layout, Workload


@record
class CloudOffer:
    provider: str
    instance: str
    instances: int
    usd_per_hour: float  # for all ``instances``
    region: str | None
    price_date: str
    price_source: str
    idle_gpus: int = 0  # GPUs the instances carry beyond the plan's (paid for, unused)


@record
class Plan:
    gpu: GpuSpec
    layout: Layout
    fits: bool
    reasons: tuple[Message, ...]  # why it does not fit (render/ words them)
    memory: MemoryBreakdown
    usable_memory_bytes: float
    training: TrainingEstimate | None
    inference: InferenceEstimate | None
    cost: CostEstimate | None
    server: ServerSpec | None = None
    cloud: tuple[CloudOffer, ...] = ()
    framework: Framework | None = None  # the training stack the plan runs on (None for inference)
    engine: Engine | None = None  # the inference engine it is sized for (None for training)
    picked_as: tuple[str, ...] = ()  # "cheapest", "quickest", "smallest" (search/picks.py)

    @property
    def gpu_count(self) -> int:
        return self.layout.gpu_count

    @property
    def nodes(self) -> int:
        return self.layout.nodes


@record(mutable=True)
class PlanResult:
    model: ModelSpec
    workload: Workload  # resolved: every default filled in (``workload.assumed`` says which)
    constraints: Constraints
    plans: list[Plan]
    notes: list[Message] = field(default_factory=list)
    suggestions: list[Message] = field(default_factory=list)
    evaluated: int = 0
    search_seconds: float = 0.0
    sweep: tuple = ()  # serving: the top plan's latency-throughput curve (search/serving.py SweepPoint), if asked

    @property
    def any_fit(self) -> bool:
        return any(p.fits for p in self.plans)


def cloud_offers(gpu: GpuSpec, layout: Layout, catalog: Catalog) -> tuple[CloudOffer, ...]:
    """Rentable instances that provide the plan's nodes (at most six): those whose GPUs the plan uses in full first,
    then those that leave GPUs idle (``idle_gpus`` says how many), cheapest first within each."""
    offers = []
    n = layout.gpu_count
    for inst in catalog.instances_for(gpu.id):
        if n > inst.gpus and inst.gpus < min(layout.gpus_per_node, 8):
            continue  # a multi-node plan needs full-node instances
        if layout.tp > inst.gpus:
            continue  # tensor parallelism must stay inside one instance
        k = math.ceil(n / inst.gpus)
        offers.append(CloudOffer(inst.provider, inst.instance, k, k * inst.usd_per_hour, inst.region,
                                 inst.price_date, inst.price_source, k * inst.gpus - n))
    offers.sort(key=lambda o: (o.idle_gpus > 0, o.usd_per_hour, o.instances))
    return tuple(offers[:6])
