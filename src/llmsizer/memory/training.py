"""Training memory per GPU: model states after ZeRO and offload (Rajbhandari et al. 2020, ZeRO, sec. 5 / Table 1),
activations (``activations.py``), and the runtime's overhead, for one pipeline stage of one layout.

A *cell* is (model, workload, GPU kind, tp, pp, dp, ep, sequence parallelism, v). ``TrainingCell`` computes
everything that depends only on the cell once (``Stage``: weights and trainable parameters per stage,
communicators, gather buffers) and then the breakdown for any ZeRO stage, offload target, recompute mode and
micro-batch. ``estimate_memory`` reports ``TrainingCell.breakdown`` and the search checks ``TrainingCell.total_bytes``,
which sums the very same parts: the two cannot differ.
"""

from __future__ import annotations

from llmsizer.data.frameworks import check_mode
from llmsizer.memory.activations import layer_coefficients, stage_tensor_bytes, training_activations
from llmsizer.memory.constants import constants
from llmsizer.memory.stacks import (
    Setup,
    autocast_cache_bytes,
    loss_bytes_per_token,
    module_last_stage_bytes,
    module_layer_bytes,
)
from llmsizer.memory.weights import communicators, expert_sharding, group_bytes, stage_bytes, storage
from llmsizer.specs.architecture import ledger, lora_adapters
from llmsizer.specs.model import ModelSpec
from llmsizer.units import DTYPE_BYTES
from llmsizer.workload.choices import Framework, Offload, Precision, Recompute
from llmsizer.workload.job import Workload

BF16_BYTES = 2.0  # the dequantization buffer of a quantized base holds one matrix in bf16


class TrainingJob:
    """What depends only on (model, resolved workload): bytes per element, optimizer state per parameter, stored
    weight bytes per group, LoRA adapters, activation coefficients. Built once per search (``training_job``)."""

    __slots__ = ("ab", "adapter", "amp_cache", "base", "coeffs", "fact_ratio", "first_bytes", "freed", "gb", "k",
                 "last_bytes", "led", "lora_params", "master", "model", "offloaded_checkpoints", "opt", "opt_per_param",
                 "params", "prof", "storage", "tw", "w")

    def __init__(self, model: ModelSpec, w: Workload) -> None:
        k = constants()
        led = ledger(model)
        self.model, self.w, self.k, self.led = model, w, k, led
        self.prof = prof = check_mode(w.framework or Framework.megatron, w.mode)
        mem = prof.memory
        prec = w.precision
        self.adapter = w.mode.is_adapter
        self.ab = k.act_bytes[prec]
        self.gb = max(k.grad_bytes[prec], mem.gradient_bytes or 0.0)  # Megatron accumulates in fp32 main_grad
        self.tw = k.weight_bytes[prec]
        self.opt = opt = k.optimizers[w.optimizer]
        fp32 = prec is Precision.fp32 or prec is Precision.fp32_amp  # the weights are the fp32 master copy
        self.storage, dense_b = storage(w)
        self.base = group_bytes(model, self.storage, dense_b)
        self.params = group_bytes(model, "dense", 1.0)  # parameter counts by group
        width = 0
        if self.adapter:
            ad = lora_adapters(model, w.lora_rank, w.lora_targets)
            self.lora_params, width = ad.params, ad.rank_width_per_layer
            self.fact_ratio = ad.factored_elements / ad.params if ad.params else 0.0
            self.master = 0.0 if (fp32 or not k.lora_master) else opt.master_bytes
        else:
            self.lora_params = 0
            self.fact_ratio = led.factored_elements / led.total_params
            self.master = 0.0 if fp32 else opt.master_bytes
        self.opt_per_param = self.master + opt.state_bytes + opt.factored_bytes * self.fact_ratio
        self.first_bytes = stage_tensor_bytes(model, self.ab, "first")
        sp, tp = stage_tensor_bytes(model, self.ab, "last")
        if mem.saved_tensors == "modules":
            stream = self.tw  # the residual stream is in the weights' dtype (fp32 under autocast over fp32 weights)
            adapter = DTYPE_BYTES["fp32"] if mem.adapter_dtype == "fp32" else self.ab
            st = Setup(self.ab, stream, not self.adapter, self.adapter, w.lora_rank, w.lora_targets, adapter)
            self.coeffs = module_layer_bytes(model, st, w.flash_attention)
            sp, tp = module_last_stage_bytes(model, st), 0.0
        else:
            self.coeffs = layer_coefficients(model, self.ab, w.flash_attention, width)
            if mem.loss != "fused":
                tp -= k.logit_bytes * model.vocab_size  # the fused count's fp32 + 16-bit logits
        if mem.loss != "fused":
            tp += loss_bytes_per_token(model, mem.loss, mem.loss_chunks, self.ab)
        self.last_bytes = (sp, tp)
        # autocast over fp32 weights: the bf16 copies of the matrices, kept for backward (whole model, pre-split)
        self.amp_cache = autocast_cache_bytes(model) if prec is Precision.fp32_amp and not self.adapter else 0.0
        self.freed = mem.gradients == "freed"
        self.offloaded_checkpoints = mem.offloaded_checkpoints


_JOBS: dict[tuple[int, int], TrainingJob] = {}


def training_job(model: ModelSpec, w: Workload) -> TrainingJob:
    """The job of (model, resolved workload), memoized by identity (the job holds both objects)."""
    key = (id(model), id(w))
    j = _JOBS.get(key)
    if j is None or j.model is not model or j.w is not w:
        if len(_JOBS) >= 4096:
            _JOBS.clear()
        j = _JOBS[key] = TrainingJob(model, w)
    return j


class Stage:
    """One pipeline stage of a cell: every term that does not depend on the ZeRO stage, the offload target, the
    recompute mode or the micro-batch."""

    __slots__ = ("adapters", "amp", "base_dense", "base_expert", "bucket", "ctx", "dequant", "dp", "edp", "first",
                 "last", "nccl", "pp", "r_div", "shards", "tp", "train_dense", "train_expert", "v", "zero3")

    def __init__(self, j: TrainingJob, kind: str, tp: int, pp: int, dp: int, ep: int, sp: bool, first: bool,
                 last: bool, v: int = 1) -> None:
        k, m, led = j.k, j.model, j.led
        gb = j.gb
        self.tp, self.pp, self.dp, self.first, self.last = tp, pp, dp, first, last
        self.v = v if pp > 1 else 1
        self.r_div = tp if (sp and tp > 1) else 1
        shards, edp = expert_sharding(tp, dp, ep)
        self.shards, self.edp = shards, edp
        frac = (-(-m.layers // pp)) / m.layers
        tied = m.tied_embeddings
        base = j.base
        self.base_dense, self.base_expert = stage_bytes(base, m.layers, tp, pp, tied, first, last, shards)
        # parameters on this stage (what gradients and optimizer states are counted over)
        if j.adapter:
            self.train_dense, self.train_expert = j.lora_params * frac / tp, 0.0
        else:
            self.train_dense, self.train_expert = stage_bytes(j.params, m.layers, tp, pp, tied, first, last, shards)
        self.adapters = self.train_dense * j.tw if j.adapter else 0.0
        self.ctx = k.context_bytes.get(kind, 0.0)
        self.nccl = communicators(m, tp, pp, dp, ep, True) * k.nccl_bytes
        self.zero3 = 0.0  # the ZeRO-3 gather buffers (counted only at stage 3)
        if dp > 1:
            # the largest block gathered at once: one layer (this GPU's tp/ep shard of it), the embedding or lm_head
            unit = max(led.layer_unit_params / tp + led.expert_unit_params / shards, led.embedding_params / tp,
                       led.head_params / tp)
            unit_b = unit * (base.total / led.total_params)
            unit_grad = 0.0 if j.adapter else unit * gb
            self.zero3 = k.zero_units * unit_b + k.zero_grad_units * unit_grad
        self.bucket = min(k.bucket_elements, self.train_dense + self.train_expert) * gb if dp > 1 else 0.0
        self.dequant = BF16_BYTES * led.largest_matrix / tp if j.storage != "dense" else 0.0
        self.amp = j.amp_cache * frac / tp  # autocast's bf16 weight copies of this stage's matrices


def model_states(j: TrainingJob, st: Stage, zero: int, offload: Offload) -> tuple[float, float, float, float, float]:
    """(weights, gradients, optimizer, host, nvme) bytes of one stage after ZeRO sharding and offload.

    ZeRO-1 shards optimizer states over dp, ZeRO-2 gradients too, ZeRO-3 weights too (experts over their own
    data-parallel replicas). Offload (ZeRO-Offload, Ren et al. 2021; ZeRO-Infinity, Rajbhandari et al. 2021) moves
    the optimizer states to host RAM or NVMe, and with ZeRO >= 2 the gradients (as fp32 on the host), with ZeRO-3
    the weights."""
    dp, edp, gb = st.dp, st.edp, j.gb
    train_dense, train_expert = st.train_dense, st.train_expert
    w_div, we_div = (dp, edp) if zero >= 3 else (1, 1)
    g_div, ge_div = (dp, edp) if zero >= 2 else (1, 1)
    o_div, oe_div = (dp, edp) if zero >= 1 else (1, 1)
    weights = (st.base_dense + st.adapters) / w_div + st.base_expert / we_div
    grads = train_dense * gb / g_div + train_expert * gb / ge_div
    optim = (train_dense / o_div + train_expert / oe_div) * j.opt_per_param
    host = nvme = 0.0
    if offload is not Offload.none:
        trainable_shard = train_dense / g_div + train_expert / ge_div
        to_host = offload is Offload.cpu
        if to_host:
            host += optim
        else:
            nvme += optim
        optim = 0.0
        if zero >= 2:
            host += trainable_shard * j.k.host_grad_bytes
            grads = 0.0
        if zero >= 3:
            if to_host:
                host += weights
            else:
                nvme += weights
            weights = 0.0
    return weights, grads, optim, host, nvme


def overhead_parts(j: TrainingJob, st: Stage, zero: int, activations: float, gradients: float) -> tuple[float, ...]:
    """(context, NCCL, fragmentation, ZeRO-3 gather buffers, reduce bucket, dequantization buffer) of one stage."""
    frag = j.k.fragmentation * (activations + gradients)
    return st.ctx, st.nccl, frag, (st.zero3 if zero >= 3 else 0.0), st.bucket, st.dequant


class TrainingCell:
    """Per-GPU training memory of one cell (see the module docstring), for any (zero, offload, recompute, micro-batch).

    ``parts`` is one stage's breakdown, ``breakdown`` the worse stage's (what ``estimate_memory`` reports) and
    ``total_bytes`` its total (what the search checks hundreds of thousands of times): all three go through
    ``parts``. States are memoized per (zero, offload), activations per (recompute, micro-batch)."""

    __slots__ = ("_acts", "_states", "job", "stages")

    def __init__(self, job: TrainingJob, gpu_kind: str, tp: int, pp: int, dp: int, ep: int,
                 sequence_parallel: bool = True, virtual_stages: int = 1) -> None:
        self.job = job
        v = virtual_stages
        if pp == 1:
            self.stages = (Stage(job, gpu_kind, tp, pp, dp, ep, sequence_parallel, True, True),)
        else:
            self.stages = (Stage(job, gpu_kind, tp, pp, dp, ep, sequence_parallel, True, False, v),
                           Stage(job, gpu_kind, tp, pp, dp, ep, sequence_parallel, False, True, v))
        self._states: dict[tuple[int, Offload], tuple] = {}
        self._acts: dict[tuple[Recompute, int], tuple] = {}

    def _acts_of(self, rec: Recompute, micro_batch: int) -> tuple:
        """Per stage: ``training_activations``'s (total, per layer, in flight, embedding, head, working), then the
        checkpointed layer inputs moved to host RAM (a stack with ``offloaded_checkpoints``)."""
        acts = self._acts.get((rec, micro_batch))
        if acts is None:
            j = self.job
            w = j.w
            out = []
            for st in self.stages:
                a = training_activations(j.model, j.coeffs, j.ab, w.seq_len, w.global_batch_tokens, st.tp, st.pp,
                                         st.dp, st.r_div, st.first, st.last, rec, micro_batch, st.v, j.first_bytes,
                                         j.last_bytes)
                total, per_layer, in_flight = a[0] + st.amp, a[1], a[2]
                host = 0.0
                if j.offloaded_checkpoints and rec is Recompute.full:
                    host = in_flight * (-(-j.model.layers // st.pp)) * per_layer
                    total -= host
                out.append((total, *a[1:], host))
            acts = self._acts[(rec, micro_batch)] = tuple(out)
        return acts

    def _states_of(self, zero: int, offload: Offload) -> tuple:
        states = self._states.get((zero, offload))
        if states is None:
            states = self._states[(zero, offload)] = tuple(model_states(self.job, st, zero, offload)
                                                            for st in self.stages)
        return states

    def activations(self, i: int, rec: Recompute, micro_batch: int) -> tuple[float, ...]:
        """``training_activations`` of stage ``i`` (total, per layer, in flight, embedding, head, working)."""
        return self._acts_of(rec, micro_batch)[i]

    def parts(self, i: int, zero: int, offload: Offload, rec: Recompute,
              micro_batch: int) -> tuple[float, float, float, float, float, float, float, float]:
        """Stage ``i``'s (weights, gradients, optimizer, activations, KV, overhead, host, NVMe) bytes."""
        weights, grads, optim, host, nvme = self._states_of(zero, offload)[i]
        acts = self._acts_of(rec, micro_batch)[i]
        act, host = acts[0], host + acts[6]
        st = self.stages[i]
        if self.job.freed and st.dp == 1 and zero == 0 and grads:
            # gradients set to None between steps and allocated while backward frees the activations (no DDP
            # bucket, no ZeRO partition): the peak holds the larger of the two, not both
            working = acts[5]
            if act >= grads + working:
                grads = 0.0
            else:
                act = working
        overhead = sum(overhead_parts(self.job, st, zero, act, grads))
        return weights, grads, optim, act, 0.0, overhead, host, nvme

    def breakdown(self, zero: int, offload: Offload, rec: Recompute, micro_batch: int) -> tuple[int, tuple]:
        """(stage index, parts) of the stage reported: the first unless the last needs strictly more (pp > 1)."""
        best_i, best, best_total = 0, None, -1.0
        for i in range(len(self.stages)):
            p = self.parts(i, zero, offload, rec, micro_batch)
            total = p[0] + p[1] + p[2] + p[3] + p[4] + p[5]  # MemoryBreakdown.total_bytes, in its order
            if total > best_total:
                best_i, best, best_total = i, p, total
        return best_i, best

    def total_bytes(self, zero: int, offload: Offload, recompute: Recompute, micro_batch: int) -> float:
        """The reported breakdown's total (the larger stage's): what ``estimate_memory(...).total_bytes`` is."""
        best = -1.0
        for i in range(len(self.stages)):
            p = self.parts(i, zero, offload, recompute, micro_batch)
            total = p[0] + p[1] + p[2] + p[3] + p[4] + p[5]
            if total > best:
                best = total
        return best

    def stage_name(self, i: int) -> str:
        return "all" if len(self.stages) == 1 else ("first", "last")[i]
