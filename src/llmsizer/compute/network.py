"""Communication time: which link a collective runs on, and the one formula every communication term calls.

A collective over ``n`` ranks moving ``nbytes`` per rank (NCCL's ring algorithms; bus bandwidth as nccl-tests
PERFORMANCE.md defines it) takes ``latency + factor x nbytes / bandwidth`` with
  all-reduce 2 (n - 1) / n,  reduce-scatter / all-gather / all-to-all (n - 1) / n,  point-to-point send 1.
A group whose ranks fit in the scale-up domain (NVLink/xGMI, cut to the node unless the domain spans nodes, as on
GB200 NVL72) runs at the scale-up bandwidth x bus efficiency; otherwise at the per-GPU scale-out (InfiniBand/RoCE)
bandwidth x bus efficiency (data/compute.yaml ``training``).
"""

from __future__ import annotations

from typing import Any

from llmsizer.compute.hardware import GpuFacts

ALL_REDUCE = "all_reduce"
REDUCE_SCATTER = "reduce_scatter"
ALL_GATHER = "all_gather"
ALL_TO_ALL = "all_to_all"
SEND = "send"


class Link:
    """Effective bytes/s per GPU and latency of the fabric a collective runs on."""

    __slots__ = ("bandwidth", "latency_s")

    def __init__(self, bandwidth: float, latency_s: float) -> None:
        self.bandwidth, self.latency_s = bandwidth, latency_s


def fast_domain(g: GpuFacts, per_node: int) -> int:
    """GPUs one collective can span and still use scale-up bandwidth."""
    if g.domain > g.gpus_per_node:
        return g.domain
    return min(g.domain, per_node) if g.domain > 1 else min(g.gpus_per_node, per_node)


def link(g: GpuFacts, per_node: int, span: int, p: Any, latency_s: float | None = None) -> Link:
    """The link of a group spanning ``span`` consecutive ranks (Megatron's rank order: tp innermost, then dp, then
    pp); ``latency_s`` overrides the fabric's (an inference engine's measured all-reduce latency, a scale-up
    figure: a group that leaves the scale-up domain pays at least the scale-out fabric's latency)."""
    if span <= fast_domain(g, per_node):
        return Link(g.scaleup_bw * p.scaleup_bus_efficiency,
                    p.scaleup_latency_s if latency_s is None else latency_s)
    return Link(g.scaleout_bw * p.scaleout_bus_efficiency,
                p.scaleout_latency_s if latency_s is None else max(latency_s, p.scaleout_latency_s))


def factor(op: str, n: int) -> float:
    """Bytes on the wire per byte of payload and rank (ring algorithms)."""
    if op == ALL_REDUCE:
        return 2.0 * (n - 1) / n
    if op == SEND:
        return 1.0
    return (n - 1) / n


def transfer_seconds(op: str, n: int, nbytes: float, lk: Link) -> float:
    """The bandwidth part of a collective: ``factor(op, n) x nbytes / bandwidth``."""
    return factor(op, n) * nbytes / lk.bandwidth


def collective_seconds(op: str, n: int, nbytes: float, lk: Link) -> float:
    """One collective: ``latency + factor(op, n) x nbytes / bandwidth``."""
    return lk.latency_s + factor(op, n) * nbytes / lk.bandwidth
