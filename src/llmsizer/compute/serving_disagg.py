"""Disaggregated serving: prefill and decode on separate replicas (Zhong et al. 2024, DistServe; NVIDIA Dynamo;
SGLang PD disaggregation; vLLM's KV connectors). A prompt is prefilled on a prefill replica, its KV cache sent to a
decode replica, which decodes it among others with no prompts in its rounds: TPOT loses the prefill interference
of co-located serving (``compute/serving.py``), TTFT gains a KV transfer, and each pool is sized for its own target.
The same step-time model (``ReplicaCosts``) prices both pools' rounds.
"""

from __future__ import annotations

import math

from llmsizer.compute.serving import PERCENTILES, Load, ReplicaCosts


def kv_transfer_s(c: ReplicaCosts) -> float:
    """Moving one prompt's KV cache from a prefill replica to a decode replica: every GPU sends its shard over its
    own link at once (NIXL / Mooncake transfer engines over RDMA; DistServe sec. 4)."""
    return c.prompt * c.kv_tok / c.kv_link_bw


def _decode_only(c: ReplicaCosts, rate: float) -> tuple[float, float] | None:
    """(running, round) of a decode replica fed ``rate`` requests/s, each needing ``decode_rounds`` rounds: the
    fixed point of B = rate x rounds x round(B); None past its capacity."""
    n = max(c.decode_rounds, 1.0)
    b = rate * n * c.round_s(1.0, 0.0)
    for _ in range(40):
        b_new = rate * n * c.round_s(max(b, 1e-9), 0.0)
        if b_new > c.capacity * 1.001:
            return None
        if abs(b_new - b) <= 1e-4 * max(b, 1e-9):
            b = b_new
            break
        b = b_new
    return b, c.round_s(max(b, 1e-9), 0.0)


def disaggregated(c: ReplicaCosts, rate: float, prefill: int, decode: int,
                  percentiles: tuple[float, ...] = ()) -> Load:
    """``rate`` requests/s over ``prefill`` replicas that only prefill and ``decode`` replicas that only decode
    (Zhong et al. 2024, DistServe; NVIDIA Dynamo; SGLang PD disaggregation). A prompt waits behind others on its
    prefill replica (M/D/1 with service = one prompt's prefill, alone), is prefilled, its KV cache is sent to a
    decode replica; the decode rounds carry no prompts, so TPOT is the decode round at that replica's load.
    ``Load.request_rate`` is per replica of the whole deployment, so replicas x rate is the plan's."""
    chunks = max(1, math.ceil(c.prompt / c.budget)) if c.continuous else 1
    s = chunks * c.round_s(0.0, c.prompt / chunks)  # service: with pp stages, pp prompts are in flight at once
    latency = chunks * c.own_prefill_s(0.0, c.prompt / chunks)  # one prompt through every stage
    rho = rate / prefill * s
    stable = rho < 0.999
    rho = min(rho, 0.999)
    wait = rho * s / (2.0 * (1.0 - rho))
    xfer = kv_transfer_s(c)
    dec = _decode_only(c, rate / decode)
    if dec is None:
        stable, dec = False, (c.capacity, c.round_s(c.capacity, 0.0))
    b, t_d = dec
    tpot = t_d / c.spec_yield

    def ttft_at(p: float) -> float:
        w = wait / rho * math.log(rho / (1.0 - p)) if rho > 1.0 - p and rho > 0 else 0.0
        return latency + w + xfer

    ps = tuple(sorted(set(PERCENTILES) | set(percentiles)))
    return Load(request_rate=rate / (prefill + decode), running=b, ttft_seconds=latency + wait + xfer,
                tpot_seconds=tpot,
                ttft_percentiles=tuple((p, ttft_at(p)) for p in ps), tpot_percentiles=tuple((p, tpot) for p in ps),
                prefill_utilization=rho, decode_round_seconds=t_d, prefill_wait_seconds=wait,
                own_prefill_seconds=latency, stable=stable)


def _fewest(ok, lo: int, limit: int) -> int | None:  # noqa: ANN001
    """The smallest n in [lo, limit] with ok(n), for ok monotone in n (doubling, then bisection)."""
    hi = max(lo, 1)
    while not ok(hi):
        if hi >= limit:
            return None
        lo, hi = hi + 1, min(2 * hi, limit)
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi


def disaggregated_replicas(c: ReplicaCosts, rate: float, ttft_s: float | None, tpot_s: float | None,
                           percentile: float, limit: int) -> tuple[int, int] | None:
    """The fewest (prefill, decode) replicas that carry ``rate`` within the targets at ``percentile``; None when
    no split within ``limit`` replicas does (a TTFT target below one prompt's prefill plus its KV transfer, or a
    TPOT target below one decode round)."""
    chunks = max(1, math.ceil(c.prompt / c.budget)) if c.continuous else 1
    s = chunks * c.round_s(0.0, c.prompt / chunks)
    if ttft_s is not None and chunks * c.own_prefill_s(0.0, c.prompt / chunks) + kv_transfer_s(c) > ttft_s:
        return None

    def prefill_ok(n: int) -> bool:
        load = disaggregated(c, rate, n, limit, (percentile,))
        return load.prefill_utilization < 0.999 and (ttft_s is None or dict(load.ttft_percentiles)[percentile] <= ttft_s)

    def decode_ok(n: int) -> bool:
        dec = _decode_only(c, rate / n)
        return dec is not None and (tpot_s is None or dec[1] / c.spec_yield <= tpot_s)

    n_p = _fewest(prefill_ok, max(1, math.floor(rate * s)), limit)
    n_d = _fewest(decode_ok, 1, limit) if n_p is not None else None
    return (n_p, n_d) if n_p is not None and n_d is not None and n_p + n_d <= limit else None


__all__ = ["disaggregated", "disaggregated_replicas", "kv_transfer_s"]
