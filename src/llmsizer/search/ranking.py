"""Prices and rank keys: what a GPU-hour costs in a plan, and how plans are ordered (lower keys rank first).

Ranking: ``cost`` (USD per token: a training run's total cost, or inference $ per million output tokens), ``time``
(training time, goodput included, or inference time per output token with the first token's latency spread over
the output), ``gpus``
(fewest GPUs, then cost). Rented GPUs rank before owned ones under ``cost``: an ownership estimate (purchase
amortized, without the server, host RAM, power infrastructure or staff) is not comparable with a rental price
that includes them. Unpriced plans rank last.
"""

from __future__ import annotations

import math

from llmsizer.catalog import Catalog
from llmsizer.compute import amortized_price_usd_per_gpu_hour
from llmsizer.compute.hardware import compute_data
from llmsizer.compute.training import goodput
from llmsizer.specs.gpu import GpuSpec
from llmsizer.workload.choices import SortKey
from llmsizer.workload.job import Constraints


class Price:
    """A GPU-hour's price in a plan and where it comes from: ``override`` (the user's), ``rental`` (the catalog's
    own price for the GPU), ``instance`` (the cheapest cloud instance per GPU), ``amortized`` (owning it);
    ``source`` and ``as_of`` (the month it was read) cite it."""

    __slots__ = ("as_of", "basis", "source", "usd_per_gpu_hour")

    def __init__(self, usd_per_gpu_hour: float | None, basis: str, source: str, as_of: str | None = None) -> None:
        self.usd_per_gpu_hour, self.basis, self.source, self.as_of = usd_per_gpu_hour, basis, source, as_of

    @property
    def owned(self) -> bool:
        return self.basis in ("amortized", "unknown")


def price_of(gpu: GpuSpec, catalog: Catalog, c: Constraints) -> Price:
    """The price a plan on ``gpu`` is costed at: the user's, else the catalog's rental price for the GPU, else the
    cheapest cloud instance per GPU, else an ownership estimate (purchase amortized plus power)."""
    if c.price_usd_per_gpu_hour is not None:
        return Price(c.price_usd_per_gpu_hour, "override", "")
    if gpu.price_usd_per_gpu_hour is not None:
        return Price(gpu.price_usd_per_gpu_hour, "rental", gpu.price_source or "", gpu.price_date)
    offers = sorted(((i.usd_per_hour / i.gpus, i.price_source, i.price_date, i.provider, i.instance)
                     for i in catalog.instances_for(gpu.id)), key=lambda o: o[0])
    if offers:
        usd, source, date, provider, instance = offers[0]
        return Price(usd, "instance", f"{provider} {instance}: {source}", date)
    # not rented anywhere in the catalog (consumer cards, Apple): the cost of owning it, purchase price amortized
    # plus electricity (data/compute.yaml ``cost``), so such GPUs still rank by cost instead of dropping to last
    amortized = amortized_price_usd_per_gpu_hour(gpu)
    return Price(amortized, "amortized" if amortized is not None else "unknown", gpu.purchase_source or "")


def cost_key(usd_per_hour: float | None, tokens_per_second: float, owned: bool) -> tuple[int, float]:
    """USD per token, rented GPUs first, unpriced last."""
    if usd_per_hour is None:
        return (2, math.inf)
    return (1 if owned else 0, usd_per_hour / tokens_per_second)


class Ranker:
    """Rank keys for one search's sort order."""

    __slots__ = ("output_tokens", "sort")

    def __init__(self, sort: SortKey, output_tokens: int) -> None:
        self.sort, self.output_tokens = sort, output_tokens

    def order(self, time_key: float, cost: tuple, n: int) -> tuple:
        if self.sort is SortKey.time:
            return (time_key, cost, n)
        if self.sort is SortKey.gpus:
            return (n, cost, time_key)
        return (cost, time_key, n)

    def training(self, tokens_per_second: float, n: int, usd_per_hour: float | None, owned: bool = False) -> tuple:
        """The key of a training plan from its throughput, GPU count and cost per hour (price x N). Time and cost
        are per token of *wall time*: the steady-state throughput times the goodput of ``n`` GPUs (restarts), so
        ``--sort time`` orders plans by the training time they show."""
        tps = max(tokens_per_second * goodput(n, compute_data().training), 1e-30)
        return self.order(1.0 / tps, cost_key(usd_per_hour, tps, owned), n)

    def inference(self, tpot_s: float, ttft_s: float, tokens_per_second: float, n: int, usd_per_hour: float | None,
                  owned: bool) -> tuple:
        time_key = tpot_s + ttft_s / max(self.output_tokens, 1)
        tps = max(tokens_per_second, 1e-30)
        return self.order(time_key, cost_key(usd_per_hour, tps, owned), n)
