"""Serving under load: one replica of a continuously batched engine (vLLM, SGLang, TensorRT-LLM, llama.cpp) as a
stream of engine steps, and the latency a request sees at a concurrency (closed loop) or a request rate (open loop).

The engine (vLLM V1 ``Scheduler.schedule``, SGLang ``schedule_policy``, TensorRT-LLM in-flight batching) runs one
step after another; a step decodes one token for every running sequence and, within the step's token budget
(vLLM ``max_num_batched_tokens``, SGLang ``chunked_prefill_size``, TRT-LLM ``max_num_tokens``, llama.cpp
``n_batch``), prefills waiting prompts, chunking one that does not fit (Agrawal et al. 2024, Sarathi-Serve,
sec. 3-4). With ``B`` sequences running and ``lam`` requests/s arriving per replica:

* a *round* is one token for every running sequence (``pp`` stage steps with pipeline parallelism);
  ``round(B, k)`` is its time with ``k`` prefill tokens mixed in: ``max(weight bytes / bandwidth, matmul FLOPs /
  rate) + max(KV read / bandwidth, attention FLOPs / rate)`` (separate kernels, each on its own roofline) + TP
  all-reduces + the engine's step overhead (``compute/inference.py`` has the roofline terms);
* ``a = lam x round`` prompts arrive per round (Poisson); a share ``f = max(1 - e^-a, a P / budget)`` of rounds
  carries prefill, ``k = a P / f`` tokens each. The mean round, ``(1 - f) round(B, 0) + f round(B, k)``, is the
  time per output token (TPOT, first token excluded, as benchmarks define it);
* prefill work is a single server with utilisation ``rho`` (the share of time rounds spend on prompts) and service
  ``s`` (one prompt's extra time in a round): a prompt waits ``rho s / (2 (1 - rho))`` behind others
  (Pollaczek-Khinchine mean wait of M/D/1; Kleinrock 1975, Queueing Systems vol. 1, sec. 5.7), then its own
  (chunked) prefill round(s); TTFT is that, plus the rest of the round in flight when it came;
* ``B = lam x (prefill + (O - 1) x TPOT)`` by Little's law (Little 1961), held below the KV slots and the engine's
  sequence limit (vLLM ``max_num_seqs``...). Closed loop (a benchmark's N clients, each sending its next request
  when the last one ends): ``N = lam x (TTFT + (O - 1) TPOT)``; past the slots, requests queue for one
  (``(N / slots - 1)`` request lifetimes, Little's law again).

Percentiles: the wait is 0 with probability ``1 - rho`` and otherwise about exponential with mean ``W / rho``
(the exponential approximation of the M/G/1 waiting time, Tijms 2003, "A First Course in Stochastic Models",
sec. 2.5 and 9.3); TPOT of one request averages its ``O - 1`` rounds, of which a Binomial(O - 1, f) number carry a
prefill (normal quantile). Static batching (``transformers``: no continuous batching) prefills a whole batch, then
decodes it; a request arriving mid-batch waits for the batch to end.

Deliberately ignores: length spread (fixed prompt and output lengths, as the benchmarks run), preemption and
swapping, speculative decoding.
"""

from __future__ import annotations

import math
from functools import lru_cache

from llmsizer.compute.network import ALL_REDUCE, collective_seconds
from llmsizer.record import record

#: the latency percentiles every serving estimate reports (the SLA's own percentile is added when it differs)
PERCENTILES = (0.5, 0.9, 0.99)
_ITERATIONS = 12  # fixed-point passes of the steady state (it converges to 0.01% in a few)


class ReplicaCosts:
    """The step-time model of one replica (``tp x pp`` GPUs): plain floats, so a search can evaluate many loads.
    Set the attributes, then call ``ready()``."""

    __slots__ = ("_ar0", "_ar1", "_att_d", "_att_p", "_comp_d", "_comp_p", "_kvc", "_mem0", "_memx", "_miss",
                 "a_dec", "a_pf", "budget", "bw", "bw_expert", "continuous", "ctx", "decode_rounds", "experts",
                 "f_dec", "f_pf", "hidden_bytes", "kv_link_bw",
                 "kv_tok", "layers", "link", "spec_tokens", "spec_yield",
                 "max_seqs", "output", "pp", "prompt", "rate", "slots", "t_over", "top_k", "tp", "w_dense",
                 "w_expert")

    def ready(self) -> ReplicaCosts:
        """Fold the inputs into the per-round coefficients ``round_s`` adds up."""
        tp, pp = self.tp, self.pp
        # speculative decoding (Leviathan et al. 2023): each round verifies spec_tokens drafts per sequence and
        # yields spec_yield tokens on average, so a request needs (O - 1) / spec_yield decode rounds
        self.decode_rounds = max(self.output - 1, 1) / self.spec_yield if self.output > 1 else 0.0
        self._mem0, self._memx = self.w_dense / self.bw, self.w_expert / self.bw_expert
        self._miss = 1.0 - self.top_k / self.experts if self.experts else 1.0
        self._kvc = self.ctx * self.kv_tok / self.bw
        # f_* = all forward FLOPs of a token, a_* = its attention-core share: the matmuls against the weights
        # (f - a) and the attention over the KV cache (a) are separate kernels, each with its own roofline
        self._comp_d = (self.f_dec - self.a_dec) * (1 + self.spec_tokens) / (tp * pp) / self.rate
        self._comp_p = (self.f_pf - self.a_pf) / (tp * pp) / self.rate
        self._att_d = self.a_dec * (1 + self.spec_tokens) / (tp * pp) / self.rate
        self._att_p = self.a_pf / (tp * pp) / self.rate
        if tp > 1:  # two all-reduces per layer: latency + ring bytes (collective_seconds, linear in the tokens)
            per_layer = 2.0 * self.layers / pp
            self._ar0 = per_layer * collective_seconds(ALL_REDUCE, tp, 0.0, self.link)
            self._ar1 = per_layer * (collective_seconds(ALL_REDUCE, tp, self.hidden_bytes, self.link)
                                     - collective_seconds(ALL_REDUCE, tp, 0.0, self.link))
        else:
            self._ar0 = self._ar1 = 0.0
        return self

    def round_s(self, b: float, k: float) -> float:
        """One round: every one of ``b`` running sequences decodes a token, and ``k`` prompt tokens are prefilled
        (spread over the ``pp`` stage steps of the round)."""
        pp = self.pp
        bs = b / pp if b > pp else min(b, 1.0)
        ks = k / pp
        # the weight matmuls: weight bytes streamed vs their FLOPs; routed experts only as far as the round's
        # tokens touch them (inference.expected_experts_touched's E (1 - (1 - k/E)^tokens), folded into _memx and
        # _miss for the hot loop)
        t_w = self._mem0
        if self.experts:
            t_w += self._memx * (1.0 - self._miss ** (bs + ks))
        t_gemm = bs * self._comp_d + ks * self._comp_p
        # the attention kernels: every decoding sequence reads its KV cache vs the attention-core FLOPs
        t_kv = bs * self._kvc
        t_att = bs * self._att_d + ks * self._att_p
        tokens = bs * (1 + self.spec_tokens) + ks
        t_w = t_w if t_w > t_gemm else t_gemm  # noqa: FURB136 - hot loop: a conditional beats a max() call
        t_kv = t_kv if t_kv > t_att else t_att  # noqa: FURB136
        return pp * (t_w + t_kv + self._ar0 + self._ar1 * tokens + self.t_over)

    def own_prefill_s(self, b: float, k: float) -> float:
        """The round that carries a prompt's last ``k`` tokens, as the prompt sees it: with ``pp`` stages its
        tokens pass the stages one after another."""
        extra = (1.0 - 1.0 / self.pp) * k * self.f_pf / self.tp / self.rate if self.pp > 1 else 0.0
        return self.round_s(b, k) + extra

    @property
    def capacity(self) -> float:
        """Sequences the replica can run at once: its KV slots, capped by the engine's sequence limit."""
        return float(max(1.0, min(self.slots, self.max_seqs)))


@record
class Load:
    """One replica at one operating point. Times in seconds, rates per second, all per replica."""

    request_rate: float  # requests/s completed
    running: float  # sequences holding KV (mean)
    ttft_seconds: float  # mean, queueing for a slot included
    tpot_seconds: float  # mean time per output token after the first
    ttft_percentiles: tuple[tuple[float, float], ...]
    tpot_percentiles: tuple[tuple[float, float], ...]
    slot_wait_seconds: float = 0.0  # closed loop past the KV slots: waiting for one
    prefill_utilization: float = 0.0  # rho: share of time spent on prompts
    mixed_share: float = 0.0  # f: share of rounds carrying prefill tokens
    decode_round_seconds: float = 0.0  # a round without prefill at this load
    prefill_wait_seconds: float = 0.0  # mean wait behind other prompts (W)
    own_prefill_seconds: float = 0.0  # the prompt's own (chunked) prefill rounds
    stable: bool = True  # open loop: the replica keeps up with the rate (False: queues grow without bound)


@lru_cache(maxsize=64)
def _z(p: float) -> float:
    # imported when a percentile is asked for: with fractions and decimal it costs plans without one ~2 ms
    from statistics import NormalDist

    return NormalDist().inv_cdf(min(max(p, 1e-6), 1.0 - 1e-6))


class _State:
    """The steady state with ``b`` sequences running: what every latency is computed from."""

    __slots__ = ("b", "f", "lam", "own", "q", "rho", "t_bar", "t_d", "t_m", "tpot", "wait")


def _rounds(c: ReplicaCosts, b: float, lam: float, t_bar: float, q: float, st: _State) -> float:
    """One pass of the round model at ``b`` running and ``lam`` requests/s (``t_bar``: the mean round so far);
    fills ``st`` and returns the new mean round."""
    P = c.prompt
    t_d = c.round_s(b, 0.0)
    if c.continuous:
        # the decodes take one token each of the step's budget; engines keep the budget above their sequence
        # limit (vLLM refuses max_num_batched_tokens < max_num_seqs), so the floor only guards the arithmetic
        budget = max(c.budget - b, 64.0)
        chunks = max(1, math.ceil(P / budget))
        a = lam * t_bar  # prompts arriving per round
        f = min(1.0, max(-math.expm1(-a), a * P / budget)) if a > 0 else 0.0
        k = min(a * P / f, budget) if f > 0 else P
        t_m = c.round_s(b, k)
        t_new = (1.0 - f) * t_d + f * t_m
        rho = f * (t_m - t_d) / t_new if f > 0 else 0.0
        s = (t_m - t_d) * f / a if a > 0 else c.round_s(b, P) - t_d
        last = P - (chunks - 1) * budget
        merged = min(last + q * a * P, budget)  # other prompts prefilled in the same round as its last chunk
        own = (chunks - 1) * c.round_s(b, budget) + c.own_prefill_s(b, merged)
        rq = rho * q
        wait = rq * s / (2.0 * (1.0 - rq)) if rq < 0.999 else math.inf
        tpot = (t_d + q * f * (t_m - t_d)) / c.spec_yield
    else:  # static batches of b sequences: prefill them all at once, then decode them together
        f, t_m, t_new, tpot = 0.0, 0.0, t_d, t_d / c.spec_yield
        own = c.own_prefill_s(0.0, b * P)
        # a closed loop's clients send together, so every request starts a batch (q = 0 for one client; the
        # batch is the clients); open-loop arrivals wait for the batch in flight, the more often the fuller it is
        rho = min(b / c.capacity, 1.0) if q == 1.0 else 0.0
        wait = rho * (own + c.decode_rounds * t_d) / 2.0
    st.b, st.f, st.t_d, st.t_m, st.t_bar, st.rho, st.own, st.q, st.wait, st.tpot = (
        b, f, t_d, t_m, t_new, rho, own, q, wait, tpot)
    st.lam = lam
    return t_new


def _running(c: ReplicaCosts, b: float, q: float = 1.0, near: _State | None = None) -> _State:
    """The steady state with ``b`` sequences running: the request rate that keeps them busy, by Little's law
    ``b = lam (prefill + (O - 1) t_bar)``, solved by fixed-point iteration (a few passes: lam enters the round
    model only through the prompts per round). ``near``: a state at a nearby ``b`` to start from."""
    st = _State()
    if near is not None and math.isfinite(near.t_bar):
        t_bar = near.t_bar
        lam = b / (near.own + c.decode_rounds * t_bar)
    else:
        t_bar = c.round_s(b, 0.0)
        lam = b / (c.round_s(b, c.prompt) + c.decode_rounds * t_bar)
    for _ in range(_ITERATIONS):
        t_bar = _rounds(c, b, lam, t_bar, q, st)
        lam_new = b / (st.own + c.decode_rounds * t_bar)
        if abs(lam_new - lam) <= 1e-3 * lam:
            lam = lam_new
            break
        lam = 0.5 * (lam + lam_new)  # damped: the prompts per round feed back into the round time
    _rounds(c, b, lam, t_bar, q, st)
    return st


def _stable(st: _State) -> bool:
    return st.rho * st.q < 0.999 and not math.isinf(st.wait)


def _load(c: ReplicaCosts, st: _State, slot_wait: float, percentiles: tuple[float, ...],
          stable: bool = True) -> Load:
    residual = 0.5 * st.t_d * st.q * (1.0 - st.rho) if c.continuous else 0.0
    ttft = st.own + st.wait + residual + slot_wait
    n = max(c.decode_rounds, 1.0)
    f = st.f * st.q
    spread = math.sqrt(f * (1.0 - f) / n) * (st.t_m - st.t_d) / c.spec_yield
    rq = st.rho * st.q

    def ttft_at(p: float) -> float:
        w = 0.0
        if rq > 1.0 - p and rq > 0:
            w = st.wait / rq * math.log(rq / (1.0 - p))
        return st.own + w + 2.0 * p * residual + slot_wait

    ps = tuple(sorted(set(PERCENTILES) | set(percentiles)))
    return Load(request_rate=st.lam, running=st.b, ttft_seconds=ttft, tpot_seconds=st.tpot,
                ttft_percentiles=tuple((p, ttft_at(p)) for p in ps),
                tpot_percentiles=tuple((p, max(st.t_d / c.spec_yield, st.tpot + _z(p) * spread)) for p in ps),
                slot_wait_seconds=slot_wait, prefill_utilization=st.rho, mixed_share=st.f,
                decode_round_seconds=st.t_d, prefill_wait_seconds=st.wait, own_prefill_seconds=st.own, stable=stable)


def _bisect_running(c: ReplicaCosts, ok, steps: int = 16) -> tuple[float, _State | None]:  # noqa: ANN001
    """The largest running count in (0, capacity] whose steady state satisfies ``ok`` (assumed monotone: true
    below, false above), and that state; (0, None) when even a trickle fails."""
    cap = c.capacity
    st = _running(c, cap)
    if ok(st):
        return cap, st
    lo, hi, best = 0.0, cap, None
    for _ in range(steps):
        mid = 0.5 * (lo + hi) if hi / max(lo, 1e-3) < 4 else math.sqrt(max(lo, 1e-3) * hi)
        st = _running(c, mid, near=st)
        if ok(st):
            lo, best = mid, st
        else:
            hi = mid
    if best is None:
        st = _running(c, 1e-3)
        return (1e-3, st) if ok(st) else (0.0, None)
    return lo, best


def max_stable_rate(c: ReplicaCosts) -> float:
    """The highest open-loop request rate the replica keeps up with (requests/s): all its sequences running, or
    the prompts' share of the rounds approaching one, whichever comes first."""
    _, st = _bisect_running(c, _stable)
    return st.lam if st is not None else 0.0


def open_loop(c: ReplicaCosts, rate: float, percentiles: tuple[float, ...] = ()) -> Load:
    """Poisson arrivals at ``rate`` requests/s on one replica. ``stable`` is False (and the latencies those at the
    highest rate it sustains) when the replica cannot keep up."""
    # the running count whose rate is `rate` (the rate grows with it) or, if the replica saturates first, the
    # highest stable one: one bisection on it
    lo, hi, best = 0.0, c.capacity, None
    st = _running(c, hi)
    if _stable(st) and st.lam <= rate:
        return _load(c, st, 0.0, percentiles, stable=st.lam >= rate * 0.999)
    for _ in range(24):
        mid = 0.5 * (lo + hi) if hi / max(lo, 1e-3) < 4 else math.sqrt(max(lo, 1e-3) * hi)
        st = _running(c, mid, near=st)
        if _stable(st) and st.lam <= rate:
            lo, best = mid, st
            if st.lam >= rate * 0.999:
                break
        else:
            hi = mid
    if best is None:
        best = _running(c, 1e-3)
    return _load(c, best, 0.0, percentiles, stable=_stable(best) and best.lam >= rate * 0.99)


def closed_loop(c: ReplicaCosts, concurrency: int, percentiles: tuple[float, ...] = ()) -> Load:
    """``concurrency`` clients each with one request in flight (how benchmarks measure: vLLM ``bench serve
    --max-concurrency``, NVIDIA genai-perf/AIPerf ``--concurrency``). Up to the KV slots and the engine's sequence
    limit every client's request runs; past them the rest wait for a slot (Little's law)."""
    cap = c.capacity
    n = float(concurrency)
    q = (n - 1.0) / n
    running = min(n, cap)
    # clients waiting for their prompt's turn hold no KV: running = n x (life in the engine) / (life + wait)
    b = running
    for _ in range(8):
        st = _running(c, b, q)
        life = st.own + c.decode_rounds * st.t_bar
        b_new = min(running, n * life / (life + st.wait)) if _stable(st) else b * 0.7
        if abs(b_new - b) <= 1e-3 * b:
            break
        b = b_new
    st = _running(c, b, q)
    life = st.own + st.wait + c.decode_rounds * st.t_bar
    slot_wait = (n / running - 1.0) * life if n > running else 0.0
    return _load(c, st, slot_wait, percentiles)


def max_rate_within(c: ReplicaCosts, ttft_s: float | None, tpot_s: float | None, percentile: float) -> float:
    """The highest open-loop request rate at which the replica meets both targets at ``percentile`` (0 when it
    misses them even when idle). Latencies grow with the load, so a bisection on the running count finds it."""

    def ok(st: _State) -> bool:
        if not _stable(st):
            return False
        load = _load(c, st, 0.0, (percentile,))
        if ttft_s is not None and dict(load.ttft_percentiles)[percentile] > ttft_s:
            return False
        return tpot_s is None or dict(load.tpot_percentiles)[percentile] <= tpot_s

    _, st = _bisect_running(c, ok, steps=11)
    return st.lam if st is not None else 0.0


__all__ = ["PERCENTILES", "Load", "ReplicaCosts", "closed_loop", "max_rate_within", "max_stable_rate", "open_loop"]
