"""Capacity planning for serving: how many replicas of a layout carry a request rate within the latency targets.

For one replica layout (``tp x pp`` GPUs, a candidate of the ordinary search) the replica's step-time model
(``compute/serving.py``) gives the highest Poisson request rate at which it still meets the TTFT and TPOT targets
at the SLA percentile (or, without targets, still keeps up); requests are spread evenly over replicas (a round-robin
or least-loaded router: vLLM's production stack, SGLang's router, Kubernetes Services), so
``replicas = ceil(rate / that rate)``. The plan then prices ``replicas x tp x pp`` GPUs, and every latency it shows
is the one at ``rate / replicas`` per replica. The search ranks these plans like any other, so the cheapest
deployment per GPU type comes first: GPU type, replica layout, replicas (nodes follow), $/hour and $/M tokens.

Also here: the latency-throughput curve of a plan (a concurrency sweep, as ``vllm bench serve
--max-concurrency`` or genai-perf sweep it) for the table and the HTML chart.
"""

from __future__ import annotations

import math

from llmsizer.compute.inference import sla_percentile
from llmsizer.compute.serving import Load, ReplicaCosts, closed_loop, max_rate_within
from llmsizer.compute.serving_disagg import disaggregated_replicas
from llmsizer.explain import Message, message
from llmsizer.record import record
from llmsizer.workload.job import Constraints

#: replicas a plan may have at most (a fleet of 4,096 replicas is a data-centre, not a plan to rank)
MAX_REPLICAS = 4096
#: the concurrencies a sweep visits (per replica), capped at what fits
SWEEP = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def replicas_needed(costs: ReplicaCosts, rate: float, c: Constraints) -> int | None:
    """Replicas of this layout that carry ``rate`` requests/s within ``c``'s targets; None when one replica misses
    them even unloaded (or more than ``MAX_REPLICAS`` would be needed)."""
    per = max_rate_within(costs, c.ttft_target_s, c.tpot_target_s, sla_percentile(c))
    if not per > 0:
        return None
    n = max(1, math.ceil(rate / per * (1.0 - 1e-9)))
    return n if n <= MAX_REPLICAS else None


def disaggregated_split(costs: ReplicaCosts, rate: float, c: Constraints, limit: int) -> tuple[int, int] | None:
    """(prefill, decode) replicas of this layout for ``rate`` within ``c``'s targets (``--disaggregate``)."""
    return disaggregated_replicas(costs, rate, c.ttft_target_s, c.tpot_target_s, sla_percentile(c),
                                  min(limit, MAX_REPLICAS))


def replicas_lower_bound(costs: ReplicaCosts, rate: float) -> int:
    """Replicas of this layout that ``rate`` needs at the least, with no latency target: a replica completes at
    most ``capacity / ((O - 1) x decode round at capacity)`` requests/s (each request needs O - 1 decode rounds,
    and running sequences per round time grows with the batch up to the capacity). A bound for pruning."""
    cap = costs.capacity
    per = cap / (max(costs.decode_rounds, 1.0) * costs.round_s(cap, 0.0))
    return max(1, math.ceil(rate / per * (1.0 - 1e-9)))


def sla_met(load: Load, c: Constraints) -> bool | None:
    """Whether ``load`` meets ``c``'s latency targets at the SLA percentile (None: no target given)."""
    if c.ttft_target_s is None and c.tpot_target_s is None:
        return None if load.stable else False
    p = sla_percentile(c)
    ok = load.stable
    if c.ttft_target_s is not None:
        ok = ok and _at(load.ttft_percentiles, p) <= c.ttft_target_s * (1 + 1e-9)
    if c.tpot_target_s is not None:
        ok = ok and _at(load.tpot_percentiles, p) <= c.tpot_target_s * (1 + 1e-9)
    return ok


def misses_sla(load: Load, c: Constraints, rate: float | None, replicas: int) -> Message:
    """Why a serving plan misses its targets: the replica cannot keep up with its share of the rate, or a latency
    at the SLA percentile is over its target."""
    p = sla_percentile(c)
    if not load.stable:
        return message("sla_overloaded", rate=rate or 0.0, replicas=replicas, max_rate=load.request_rate)
    return message("sla_missed", percentile=p, ttft_s=_at(load.ttft_percentiles, p),
                   tpot_s=_at(load.tpot_percentiles, p), ttft_target_s=c.ttft_target_s or 0.0,
                   tpot_target_s=c.tpot_target_s or 0.0)


def _at(percentiles: tuple[tuple[float, float], ...], p: float) -> float:
    return dict(percentiles)[p]


@record
class SweepPoint:
    concurrency: int  # per replica, closed loop
    ttft_seconds: float  # mean
    tpot_seconds: float  # mean
    tokens_per_second: float  # output tokens/s of the whole plan (all replicas)
    requests_per_second: float  # whole plan
    ttft_p99_seconds: float


def concurrency_sweep(costs: ReplicaCosts, replicas: int) -> tuple[SweepPoint, ...]:
    """The plan's latency and throughput at 1, 2, 4 ... concurrent requests per replica, up to its KV slots and
    one step past them (where requests start queueing for a slot)."""
    cap = max(1, int(min(costs.slots, costs.max_seqs)))
    points = [c for c in SWEEP if c <= cap]
    if cap not in points:
        points.append(cap)
    if 2 * cap not in points:
        points.append(2 * cap)  # past the slots: the knee of the curve
    out = []
    for n in sorted(set(points)):
        load = closed_loop(costs, n, (0.99,))
        out.append(SweepPoint(concurrency=n, ttft_seconds=load.ttft_seconds, tpot_seconds=load.tpot_seconds,
                              tokens_per_second=replicas * load.request_rate * costs.output,
                              requests_per_second=replicas * load.request_rate,
                              ttft_p99_seconds=_at(load.ttft_percentiles, 0.99)))
    return tuple(out)


__all__ = ["MAX_REPLICAS", "SWEEP", "SweepPoint", "concurrency_sweep", "disaggregated_split", "misses_sla", "replicas_lower_bound",
           "replicas_needed", "sla_met"]
