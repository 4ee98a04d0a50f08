"""The training step model: time per micro-batch and per optimizer step of one layout (1F1B pipeline, Narayanan et
al. 2021 sec. 2.2 and 3).

  t_mb   = compute + dequantization + TP all-reduces + MoE all-to-alls + exposed per-micro-batch DP traffic
           + ZeRO-3 parameter streaming + pipeline sends                                    (one micro-batch, one GPU)
  m      = ceil(global batch tokens / (s x b x dp))                         micro-batches per step (grad accumulation);
           a DP group wider than the batch gets fewer sequences per micro-batch (or idle replicas), never a bigger
           batch than asked
  t_step = (m + (pp - 1) / v) x t_mb + exposed per-step DP traffic + offload transfers and CPU Adam
  tokens/s = tokens per step / t_step

A *cell* is (model, GPU, workload, tp, pp, dp, ep, GPUs per node, v). ``StepCell`` computes its terms once, most of
them affine in the tokens of a micro-batch (``fixed_s + per_token_s x tokens``) per recompute mode, then
``StepCell.step(zero, offload, recompute, micro_batch)`` evaluates a layout. ``estimate_training`` reports
``step``; the search ranks by ``step(...).tokens_per_second`` and bounds it (``search/bounds.py``) from the same
affine terms, so none of the three can drift from the others. Deliberately ignored: zero-bubble/DualPipe schedules,
context parallelism, data loading, stragglers, the optimizer step on the GPU (memory-bound, < 1% of a step).
"""

from __future__ import annotations

import functools
import math
from typing import Any

from llmsizer.compute.flops import training_flops
from llmsizer.compute.hardware import achieved_rate, compute_data, gpu_facts, training_efficiency
from llmsizer.compute.network import (
    ALL_GATHER,
    ALL_REDUCE,
    ALL_TO_ALL,
    REDUCE_SCATTER,
    SEND,
    Link,
    collective_seconds,
    fast_domain,
    link,
    transfer_seconds,
)
from llmsizer.compute.stacks import (
    adapter_bytes_per_token,
    adapter_fp32_flops_per_token,
    autocast_bytes_per_micro_batch,
    elementwise_bytes_per_token,
    optimizer_bytes_per_param,
)
from llmsizer.data.frameworks import check_mode
from llmsizer.memory.constants import constants
from llmsizer.memory.weights import stored_bytes_per_weight
from llmsizer.record import record
from llmsizer.specs.architecture import ledger, lora_adapters
from llmsizer.specs.gpu import GpuSpec
from llmsizer.specs.model import ModelSpec
from llmsizer.units import DTYPE_BYTES
from llmsizer.workload.choices import Framework, Offload, Precision, Recompute
from llmsizer.workload.job import Workload

RECOMPUTES = (Recompute.none, Recompute.selective, Recompute.full)


@functools.lru_cache(maxsize=8192)
def micro_batches(global_batch_tokens: int, s: int, dp: int, micro_batch: int) -> tuple[int, int, int]:
    """(micro-batches per step m, sequences per micro-batch actually run, tokens per step) for ``micro_batch``."""
    seqs_step = max(1.0, global_batch_tokens / s)  # sequences per optimizer step
    per_replica = seqs_step / dp
    if per_replica >= micro_batch:
        m = math.ceil(per_replica / micro_batch - 1e-9)
        return m, micro_batch, dp * m * micro_batch * s
    b_run = max(1, math.ceil(per_replica - 1e-9))
    return 1, b_run, min(dp * b_run, max(1, round(seqs_step))) * s  # idle replicas when per_replica < 1


def goodput(n_gpus: int, p: Any) -> float:
    """Share of wall time that trains: 1 / (1 + GPUs x interruptions per GPU-hour x hours lost per interruption)
    (Llama 3 paper sec. 3.3.4: synchronous training restarts from the last checkpoint on any failure)."""
    return 1.0 / (1.0 + n_gpus * p.interruptions_per_gpu_hour * p.hours_lost_per_interruption)


def training_seconds(tokens: float | None, tokens_per_second: float, gpu_count: int) -> float | None:
    """Wall time to train ``tokens``: tokens / (tokens/s x goodput); None without a token count."""
    if tokens is None:
        return None
    return tokens / (tokens_per_second * goodput(gpu_count, compute_data().training))


def exposed(t: float, hidden_by: float, overlap: float) -> float:
    """Communication left on the critical path: at least ``(1 - overlap)`` of it, and all it outlasts ``hidden_by``."""
    return max(t * (1.0 - overlap), t - hidden_by)


@record(mutable=True)
class StepTimes:
    """One layout's step: seconds per micro-batch (``*_s``) unless per step (``*_step_s``), FLOPs and tokens."""

    model_flops_per_token: float
    hardware_flops_per_token: float  # model FLOPs + recomputation
    global_batch_tokens: int  # the step's target
    micro_batches: int  # per step per pipeline (gradient accumulation, m)
    tokens_per_step: int  # actually trained per step (whole micro-batches; idle replicas when dp is too wide)
    compute_s: float
    tp_s: float  # exposed tensor-parallel all-reduces
    a2a_s: float  # exposed MoE all-to-alls
    dp_micro_batch_s: float  # exposed data-parallel traffic of each micro-batch (ZeRO-2/3)
    dp_step_s: float  # exposed data-parallel traffic once per step
    offload_step_s: float  # PCIe transfers and CPU Adam per step
    p2p_s: float  # pipeline sends
    dequant_s: float  # a quantized base's dequantization
    stream_s: float  # exposed ZeRO-Infinity parameter streaming
    micro_batch_s: float
    bubble_slots: float  # (pp - 1) / v micro-batch slots of pipeline bubble
    step_s: float
    tokens_per_second: float  # the whole plan
    optimizer_step_s: float = 0.0  # the optimizer's pass over its states on the GPU, per step


class StepJob:
    """What the step model needs that depends only on (model, GPU, resolved workload): the achieved FLOP/s, FLOPs
    per token per recompute mode, the dequantization and weight bytes of the whole model. Built once per search."""

    __slots__ = ("_cells", "_links", "_split", "a2a_bytes_per_token", "autocast_full_model", "dense_trainable",
                 "dequant_full_model", "eff", "expert_trainable", "g", "gpu", "grad_bytes", "hidden_bytes", "hw_flops",
                 "layers", "model", "model_flops", "moe_layers", "opt_bytes_per_param", "p", "param_bytes", "peak",
                 "prof", "rate", "reduce_bytes",
                 "size_f", "stack_per_token", "streaming_bw", "w", "weight_bytes")

    def __init__(self, model: ModelSpec, gpu: GpuSpec, w: Workload) -> None:
        led = ledger(model)
        self.model, self.gpu, self.w = model, gpu, w
        self.g = g = gpu_facts(gpu)
        self.p = p = compute_data().training
        moe = model.moe
        self.size_f, self.eff = training_efficiency(g, model.hidden_size, moe is not None, p)
        self.peak, self.rate = achieved_rate(g, w.precision.compute, self.eff, p.fp8_speedup_vs_bf16)
        flops = {rc: training_flops(led, w, rc) for rc in RECOMPUTES}
        self.model_flops = flops[Recompute.none][0]
        self.hw_flops = {rc: f[1] for rc, f in flops.items()}
        self.layers, self.moe_layers = led.layers, model.moe_layers
        self.hidden_bytes = model.hidden_size * p.activation_bytes  # one token's activations between layers
        self.a2a_bytes_per_token = moe.experts_per_token * self.hidden_bytes if moe is not None else 0.0
        per_weight = stored_bytes_per_weight(model, w)
        self.weight_bytes = led.total_params * per_weight  # the stored weights a step streams
        # a quantized frozen base (QLoRA's NF4, LoRA with a quantization) is dequantized to bf16 before each
        # matmul: the stored bits read and 2 bytes written per weight, once per pass over the layers (forward,
        # backward, recomputed forward); memory-bound, independent of the micro-batch (Dettmers et al. 2023 sec. 3)
        quantized_base = w.mode.is_adapter and w.quant.value != "none"
        self.dequant_full_model = {
            rc: ((3.0 if rc is Recompute.full else 2.0) * led.total_params * (per_weight + DTYPE_BYTES["bf16"])
                 / (g.bandwidth * p.streaming_bandwidth_efficiency) if quantized_base else 0.0)
            for rc in RECOMPUTES}
        # what data parallelism reduces: the trainable weights (dense, routed experts), before tp x pp (x ep)
        if w.mode.is_adapter:
            self.dense_trainable = float(lora_adapters(model, w.lora_rank, w.lora_targets).params)
            self.expert_trainable = 0.0
        else:
            self.dense_trainable = float(led.total_params - led.params.routed_experts)
            self.expert_trainable = float(led.params.routed_experts)
        self.grad_bytes = constants().grad_bytes[w.precision]
        # the training stack's own time (compute/stacks.py): eager ops, adapters, autocast, the optimizer step
        self.prof = prof = check_mode(w.framework or Framework.megatron, w.mode)
        self.grad_bytes = max(self.grad_bytes, prof.memory.gradient_bytes or 0.0)
        # what a gradient element weighs on the wire once the stack shards (ZeRO >= 1): its reduction dtype when it
        # casts before reducing (FSDP2's MixedPrecisionPolicy(reduce_dtype=float32), torchtitan's default, which
        # "only takes effect when data_parallel_shard_degree > 1"), else the gradient's own dtype
        self.reduce_bytes = max(self.grad_bytes, prof.speed.reduce_bytes or 0.0)
        k = constants()
        self.param_bytes = k.act_bytes[w.precision]  # weights are gathered in the compute dtype
        self.streaming_bw = bw = g.bandwidth * p.streaming_bandwidth_efficiency
        act = k.act_bytes[w.precision]
        amp = w.precision is Precision.fp32_amp
        peft32 = w.mode.is_adapter and prof.speed.lora == "peft" and prof.memory.adapter_dtype == "fp32"
        rate32 = g.peak["fp32"] * self.eff
        self.stack_per_token = {}
        for rc in RECOMPUTES:
            nbytes = 0.0
            if prof.speed.elementwise == "modules":
                nbytes += elementwise_bytes_per_token(model, act, amp, prof.memory.loss, rc)
            if w.mode.is_adapter:
                nbytes += adapter_bytes_per_token(model, w.lora_rank, w.lora_targets, prof.speed.lora, rc)
            t = nbytes / bw
            if peft32 and rate32 > 0:
                t += adapter_fp32_flops_per_token(model, w.lora_rank, w.lora_targets, rc) * max(
                    0.0, 1.0 / rate32 - 1.0 / self.rate)
            self.stack_per_token[rc] = t
        self.autocast_full_model = {
            rc: autocast_bytes_per_micro_batch(model, rc) / bw if amp and not w.mode.is_adapter else 0.0
            for rc in RECOMPUTES}
        opt = k.optimizers[w.optimizer]
        master = 0.0 if w.precision in (Precision.fp32, Precision.fp32_amp) else opt.master_bytes
        self.opt_bytes_per_param = optimizer_bytes_per_param(self.grad_bytes, k.weight_bytes[w.precision], opt,
                                                             master)
        self._links: dict[int, tuple[int, Link, Link]] = {}  # GPUs per node -> (fast domain, scale-up, scale-out)
        self._cells: dict[tuple[int, int, int, int, int], StepCell] = {}
        self._split: dict[tuple[int, int, int, int], tuple] = {}  # (tp, pp, ep, per_node) -> ``_split_terms``

    def seconds_per_token(self, rc: Recompute, split: int) -> float:
        """Compute seconds per token on a GPU that holds 1/``split`` of the layers' weights (tp x pp): the hardware
        FLOPs at the achieved rate, plus the training stack's own per-token time."""
        return (self.hw_flops[rc] / self.rate + self.stack_per_token[rc]) / split

    def split_terms(self, tp: int, pp: int, ep: int, per_node: int) -> tuple:
        """(compute seconds per token per recompute mode, dequantization per recompute mode, this GPU's stored weight
        bytes, TP all-reduce (latency, seconds per token), MoE all-to-all (latency, seconds per token)): a cell's
        terms that do not depend on its data-parallel degree (memoized: every dp of a (tp, pp, ep) shares them)."""
        key = (tp, pp, ep, per_node)
        terms = self._split.get(key)
        if terms is None:
            terms = self._split[key] = _split_terms(self, tp, pp, ep, per_node)
        return terms

    def link(self, per_node: int, span: int) -> Link:
        """The link of a group of ``span`` consecutive ranks: scale-up within ``fast_domain`` GPUs, else scale-out
        (memoized per GPUs per node and side of that limit: cells share their groups' links)."""
        fast = self._links.get(per_node)
        if fast is None:
            domain = fast_domain(self.g, per_node)
            fast = self._links[per_node] = (domain, link(self.g, per_node, 1, self.p),
                                            link(self.g, per_node, domain + 1, self.p))
        return fast[1] if span <= fast[0] else fast[2]

    def cell(self, tp: int, pp: int, dp: int, ep: int, per_node: int) -> StepCell:
        """The ``StepCell`` of (tp, pp, dp, ep, GPUs per node), memoized (the bounds and the timing share it)."""
        key = (tp, pp, dp, ep, per_node)
        c = self._cells.get(key)
        if c is None:
            if len(self._cells) > 65536:
                self._cells.clear()
            c = self._cells[key] = StepCell(self, tp, pp, dp, ep, per_node)
        return c


_STEP_JOBS: dict[tuple[int, int, int], StepJob] = {}


def step_job(model: ModelSpec, gpu: GpuSpec, w: Workload) -> StepJob:
    """The ``StepJob`` of (model, gpu, resolved workload), memoized by identity (the job holds all three)."""
    key = (id(model), id(gpu), id(w))
    j = _STEP_JOBS.get(key)
    if j is None or j.model is not model or j.w is not w or j.gpu is not gpu:
        if len(_STEP_JOBS) >= 4096:
            _STEP_JOBS.clear()
        j = _STEP_JOBS[key] = StepJob(model, gpu, w)
    return j


def collectives_per_layer(rc: Recompute) -> int:
    """Tensor-parallel all-reduces (and MoE all-to-alls) per layer and micro-batch: 2 forward + 2 backward, and 2
    more for the forward that full recomputation repeats."""
    return 6 if rc is Recompute.full else 4


def _split_terms(j: StepJob, tp: int, pp: int, ep: int, per_node: int) -> tuple:
    """A cell's terms that do not depend on its data-parallel degree (shared by every dp of a (tp, pp, ep)): compute
    and dequantization per token, this GPU's share of the weights, the TP all-reduce and MoE all-to-all costs."""
    p = j.p
    split = tp * pp
    compute_per_token = {rc: j.seconds_per_token(rc, split) for rc in RECOMPUTES}
    dequant = {rc: (d + j.autocast_full_model[rc]) / split for rc, d in j.dequant_full_model.items()}
    # tensor-parallel all-reduces (x collectives_per_layer), each of b x s x h activations (Narayanan et al. 2021
    # sec. 3.2; sequence parallelism's reduce-scatter + all-gather pair moves the same bytes, Korthikanti et al.
    # 2022 sec. 4.2.2): (latency, seconds per token) of one collective per layer on this GPU's layers
    tp_comm = (0.0, 0.0)
    if tp > 1:
        lk = j.link(per_node, tp)
        n = j.layers / pp * (1.0 - p.tp_overlap)
        tp_comm = (n * lk.latency_s, n * transfer_seconds(ALL_REDUCE, tp, j.hidden_bytes, lk))
    # MoE expert-parallel all-to-all: dispatch + combine (x collectives_per_layer) per MoE layer
    a2a = (0.0, 0.0)
    if j.a2a_bytes_per_token and ep > 1:
        lk = j.link(per_node, tp * ep)
        n = j.moe_layers / pp * (1.0 - p.moe_all_to_all_overlap)
        a2a = (n * lk.latency_s, n * transfer_seconds(ALL_TO_ALL, ep, j.a2a_bytes_per_token / tp, lk))
    return compute_per_token, dequant, j.weight_bytes / split, tp_comm, a2a


class StepCell:
    """The step model's terms for one cell (see the module docstring), affine in a micro-batch's tokens: every term
    that depends on (tp, pp, dp, ep, GPUs per node) only. Interleaving (v chunks per GPU) enters through the
    pipeline sends and the bubble, so it is an argument of the terms, not part of the cell."""

    __slots__ = ("a2a", "compute_per_token", "dense_trainable", "dequant", "dp", "dp_one_pass", "dp_weight_pass", "ep",
                 "expert_trainable", "j", "p2p", "per_node", "pp", "tp", "tp_comm", "weight_bytes_here",
                 "zero3_frozen_gather")

    def __init__(self, j: StepJob, tp: int, pp: int, dp: int, ep: int, per_node: int) -> None:
        self.j, self.tp, self.pp, self.dp, self.ep, self.per_node = j, tp, pp, dp, ep, per_node
        split = tp * pp
        (self.compute_per_token, self.dequant, self.weight_bytes_here, self.tp_comm,
         self.a2a) = j.split_terms(tp, pp, ep, per_node)
        # pipeline point-to-point: a micro-batch's activations cross each stage boundary forward and its gradients
        # backward, once per model chunk (x 2 v), each GPU sending its 1/tp slice (Narayanan et al. 2021 sec. 2.2.2
        # and 4.1); the neighbours sit tp x dp ranks apart, so across nodes unless both fit in the scale-up domain.
        # Not overlapped with compute (an upper bound; Megatron-LM can overlap it).
        self.p2p = (0.0, 0.0)
        if pp > 1:
            lk = j.link(per_node, 2 * tp * dp)
            self.p2p = (lk.latency_s, transfer_seconds(SEND, 2, j.hidden_bytes / tp, lk))
        # data-parallel traffic: what each GPU holds of the trainable weights (dense over dp, experts over dp / ep)
        self.dense_trainable = j.dense_trainable / split
        self.expert_trainable = j.expert_trainable / (split * ep)
        self.dp_one_pass = self.dp_weight_pass = self.zero3_frozen_gather = 0.0
        if dp > 1:
            # one ring pass ((n-1)/n of this GPU's gradient bytes) over the data-parallel group; the expert
            # gradients reduce over their own dp / ep replicas in the same bucketed pass. Gradients move in the
            # stack's reduction dtype (fp32 on Megatron-LM and torchtitan), weights in the compute dtype.
            lk = j.link(per_node, tp * dp)
            dp_e = max(dp // ep, 1)
            self.dp_one_pass = collective_seconds(REDUCE_SCATTER, dp, self.dense_trainable * j.grad_bytes, lk)
            self.dp_weight_pass = collective_seconds(ALL_GATHER, dp, self.dense_trainable * j.param_bytes, lk)
            if dp_e > 1:
                self.dp_one_pass += transfer_seconds(REDUCE_SCATTER, dp_e, self.expert_trainable * j.grad_bytes, lk)
                self.dp_weight_pass += transfer_seconds(ALL_GATHER, dp_e, self.expert_trainable * j.param_bytes, lk)
            if j.w.mode.is_adapter:
                # ZeRO-3 shards the frozen base too (the memory model counts 1/dp of it), so it is all-gathered for
                # the forward and again for the backward pass of every micro-batch, in its stored precision
                self.zero3_frozen_gather = 2.0 * collective_seconds(ALL_GATHER, dp, self.weight_bytes_here, lk)

    # ------------------------------------------------------------------------------------------- the terms
    def per_token_s(self, rc: Recompute, v: int) -> float:
        """Seconds per token of a micro-batch that scale with its tokens: compute, TP all-reduces, all-to-alls,
        pipeline sends."""
        k = collectives_per_layer(rc)
        return self.compute_per_token[rc] + k * self.tp_comm[1] + k * self.a2a[1] + 2.0 * v * self.p2p[1]

    def fixed_s(self, rc: Recompute, v: int) -> float:
        """Seconds per micro-batch that do not: dequantization, collective latencies."""
        k = collectives_per_layer(rc)
        return self.dequant[rc] + k * self.tp_comm[0] + k * self.a2a[0] + 2.0 * v * self.p2p[0]

    def dp_traffic(self, zero: int) -> tuple[float, float]:
        """(per micro-batch, per step) data-parallel seconds before overlap: ZeRO-3 / FSDP full shard all-gathers
        weights for forward and backward and reduce-scatters gradients every micro-batch (Rajbhandari et al. 2020
        sec. 7.2.1: 1.5x the all-reduce volume); ZeRO-2 reduce-scatters every micro-batch and all-gathers the
        updated weights once; ZeRO-1 reduce-scatters gradients and all-gathers the updated weights once per step;
        ZeRO 0 all-reduces the gradients once per step (2 ring passes). Sharded stages reduce-scatter in the stack's
        reduction dtype (``StepJob.reduce_bytes``)."""
        if self.dp == 1:
            return 0.0, 0.0
        if zero == 0:
            return 0.0, 2.0 * self.dp_one_pass
        rs = self.dp_one_pass * (self.j.reduce_bytes / self.j.grad_bytes)
        if zero >= 3:
            return 2.0 * self.dp_weight_pass + rs + self.zero3_frozen_gather, 0.0
        if zero == 2:
            return rs, self.dp_weight_pass
        return 0.0, rs + self.dp_weight_pass

    def offload_step_s(self, zero: int, offload: Offload) -> float:
        """Offload per step: gradients to host and weights back over PCIe, Adam on the CPU (ZeRO-Offload, Ren et al.
        2021 sec. 4); NVMe (ZeRO-Infinity) also streams the fp32 optimizer states (12 B/param) in and out."""
        if offload is Offload.none:
            return 0.0
        p = self.j.p
        shard = (self.dense_trainable + self.expert_trainable) / (self.dp if zero >= 1 else 1)
        t = 2.0 * shard * 2.0 / p.offload_pcie_bytes_per_s + shard * p.cpu_adam_seconds_per_param
        if offload is Offload.nvme:
            t += 2.0 * shard * 12.0 / p.nvme_bytes_per_s
        return t

    def optimizer_step_s(self, zero: int, offload: Offload) -> float:
        """The optimizer step on the GPU: a memory-bound pass over this GPU's shard of the trainable parameters'
        states (ZeRO >= 1 shards it over dp); offload runs it on the CPU instead (``offload_step_s``)."""
        if offload is not Offload.none:
            return 0.0
        shard = (self.dense_trainable + self.expert_trainable) / (self.dp if zero >= 1 else 1)
        return shard * self.j.opt_bytes_per_param / self.j.streaming_bw

    def stream_s(self, zero: int, offload: Offload) -> float:
        """ZeRO-Infinity parameter offload (ZeRO-3 + offload): every micro-batch streams this GPU's shard of its
        stage's weights in over PCIe for the forward pass and again for the backward pass (Rajbhandari et al. 2021
        sec. 5), before overlap; frozen (LoRA/QLoRA) weights stream too."""
        if offload is Offload.none or zero < 3:
            return 0.0
        p = self.j.p
        w_bytes = self.weight_bytes_here
        t = 2.0 * w_bytes / self.dp / p.offload_pcie_bytes_per_s
        if offload is Offload.nvme:
            t += 2.0 * w_bytes / self.dp / p.nvme_bytes_per_s
        return t

    # ------------------------------------------------------------------------------------------ the step
    def step(self, zero: int, offload: Offload, rc: Recompute, micro_batch: int, v: int = 1) -> StepTimes:
        """One layout of the cell: ZeRO stage, offload, recompute, micro-batch and interleaved chunks ``v``."""
        j = self.j
        p, w = j.p, j.w
        s = w.seq_len
        v = v if self.pp > 1 else 1
        m, b_run, tokens_step = micro_batches(w.global_batch_tokens, s, self.dp, micro_batch)
        tokens_mb = b_run * s
        compute = self.compute_per_token[rc] * tokens_mb
        k = collectives_per_layer(rc)
        t_tp = k * (self.tp_comm[0] + self.tp_comm[1] * tokens_mb)
        t_a2a = k * (self.a2a[0] + self.a2a[1] * tokens_mb)
        t_p2p = 2.0 * v * (self.p2p[0] + self.p2p[1] * tokens_mb)
        dp_mb, dp_step = self.dp_traffic(zero)
        dp_mb_exposed = exposed(dp_mb, compute, p.dp_overlap)
        dp_step_exposed = exposed(dp_step, compute * 2.0 / 3.0, p.dp_overlap)
        stream = self.stream_s(zero, offload)
        stream_exposed = exposed(stream, compute, p.dp_overlap) if stream else 0.0
        t_mb = compute + self.dequant[rc] + t_tp + t_a2a + dp_mb_exposed + stream_exposed + t_p2p
        bubble_slots = (self.pp - 1) / v
        t_off = self.offload_step_s(zero, offload)
        t_opt = self.optimizer_step_s(zero, offload)
        t_step = (m + bubble_slots) * t_mb + dp_step_exposed + t_off + t_opt
        return StepTimes(
            model_flops_per_token=j.model_flops, hardware_flops_per_token=j.hw_flops[rc],
            global_batch_tokens=w.global_batch_tokens, micro_batches=m, tokens_per_step=tokens_step,
            compute_s=compute, tp_s=t_tp, a2a_s=t_a2a, dp_micro_batch_s=dp_mb_exposed, dp_step_s=dp_step_exposed,
            offload_step_s=t_off, p2p_s=t_p2p, dequant_s=self.dequant[rc], stream_s=stream_exposed,
            micro_batch_s=t_mb, bubble_slots=bubble_slots, step_s=t_step, tokens_per_second=tokens_step / t_step,
            optimizer_step_s=t_opt)


def micro_batches_per_step(w: Workload, dp: int, micro_batch: int) -> int:
    """Micro-batches per optimizer step (gradient accumulation) of a layout, as the step model counts them."""
    return micro_batches(w.global_batch_tokens, w.seq_len, dp, micro_batch)[0]


__all__ = ["RECOMPUTES", "StepCell", "StepJob", "StepTimes", "collectives_per_layer", "exposed", "goodput", "micro_batches",
           "micro_batches_per_step", "step_job", "training_seconds"]
