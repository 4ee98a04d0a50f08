"""Prices and rank keys: what a GPU-hour costs in a plan, and how plans are ordered (lower keys rank first).

Ranking: ``cost`` (USD per token: a training run's total cost, or inference $ per million output tokens), ``time``
(training time, goodput included, or inference time per output token with the first token's latency spread over
the output), ``gpus``
(fewest GPUs, then cost). Rented GPUs rank before owned ones under ``cost``: an ownership estimate (purchase
amortized, without the server, host RAM, power infrastructure or staff) is not comparable with a rental price
that includes them. Unpriced plans rank last.

Ties prefer less hardware: costs within ``COST_TIE`` of each other are a tie (the step model's own error is far
larger), broken by fewer GPUs, then fewer nodes, then time; equal times by fewer GPUs and nodes, then cost.
``SMALLEST`` is an internal order for the "smallest" pick of the default answer (``search/picks.py``): fewest GPUs,
fewest nodes, then the lowest price per hour (rented before owned), the least GPU memory, then cost per token.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from llmsizer.catalog import Catalog
from llmsizer.compute import amortized_price_usd_per_gpu_hour
from llmsizer.compute.hardware import compute_data
from llmsizer.compute.training import goodput
from llmsizer.specs.gpu import GpuSpec
from llmsizer.workload.choices import SortKey
from llmsizer.workload.job import Constraints

#: relative difference in USD per token below which two plans cost the same: the planner's time estimates are
#: good to about 10-20% (docs/accuracy.md), so a 0.5% difference is noise, and the smaller hardware should win
COST_TIE = 0.005
_LOG_TIE = math.log1p(COST_TIE)

#: ``Ranker`` order of the "smallest hardware that fits" pick (not a ``--sort`` choice)
SMALLEST = "smallest"


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


def cost_tier(cost: tuple[int, float]) -> tuple[int, float]:
    """``cost_key`` in steps of ``COST_TIE`` (a tie is the same step): monotone, so bounds stay bounds."""
    owned, per_token = cost
    if not 0.0 < per_token < math.inf:
        return cost
    return (owned, math.floor(math.log(per_token) / _LOG_TIE))


#: what a plan occupies, for tie-breaks: (GPUs, nodes, GPU memory in bytes over all its GPUs)
Hardware = tuple[int, int, float]


class Ranker:
    """Rank keys for one search's sort order (a ``SortKey``, or ``SMALLEST``)."""

    __slots__ = ("_goodput", "output_tokens", "sort")

    def __init__(self, sort: SortKey | str, output_tokens: int) -> None:
        self.sort, self.output_tokens = sort, output_tokens
        self._goodput: dict[int, float] = {}  # GPU count -> goodput (ranking asks for the same counts many times)

    def order(self, time_key: float, cost: tuple, hw: Hardware, usd_per_hour: float | None) -> tuple:
        n, nodes, memory_bytes = hw
        if self.sort is SortKey.time:
            return (time_key, n, nodes, cost)
        if self.sort is SortKey.gpus:
            return (n, nodes, cost, time_key)
        if self.sort == SMALLEST:
            price = (2, math.inf) if usd_per_hour is None else (cost[0], usd_per_hour)
            return (n, nodes, price, memory_bytes, cost, time_key)
        return (cost_tier(cost), n, nodes, time_key, cost)

    def training(self, tokens_per_second: float, hw: Hardware, usd_per_hour: float | None,
                 owned: bool = False) -> tuple:
        """The key of a training plan from its throughput, hardware and cost per hour (price x N). Time and cost
        are per token of *wall time*: the steady-state throughput times the goodput of ``n`` GPUs (restarts), so
        ``--sort time`` orders plans by the training time they show."""
        return self._training(tokens_per_second, self._goodput_of(hw[0]), hw, usd_per_hour, owned)

    def training_keyer(self, hw: Hardware, usd_per_hour: float | None, owned: bool) -> Callable[[float], tuple]:
        """``training`` for one hardware and price, as a function of the throughput alone (branch and bound asks
        for thousands of keys per (GPU, N))."""
        g, key = self._goodput_of(hw[0]), self._training
        return lambda tokens_per_second: key(tokens_per_second, g, hw, usd_per_hour, owned)

    def _goodput_of(self, n: int) -> float:
        g = self._goodput.get(n)
        if g is None:
            g = self._goodput[n] = goodput(n, compute_data().training)
        return g

    def _training(self, tokens_per_second: float, g: float, hw: Hardware, usd_per_hour: float | None,
                  owned: bool) -> tuple:
        tps = max(tokens_per_second * g, 1e-30)
        return self.order(1.0 / tps, cost_key(usd_per_hour, tps, owned), hw, usd_per_hour)

    def inference(self, tpot_s: float, ttft_s: float, tokens_per_second: float, hw: Hardware,
                  usd_per_hour: float | None, owned: bool) -> tuple:
        time_key = tpot_s + ttft_s / max(self.output_tokens, 1)
        tps = max(tokens_per_second, 1e-30)
        return self.order(time_key, cost_key(usd_per_hour, tps, owned), hw, usd_per_hour)
