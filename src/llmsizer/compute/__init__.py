"""Time, throughput, cost and energy of a job on one layout: pure functions of (model, gpu, workload, layout).

- ``hardware.py``: per-GPU facts, measured GEMM ceilings, the FLOP/s a kernel mix reaches (the FP8 rule, once);
- ``network.py``: the link a collective runs on and the one collective-time formula;
- ``flops.py``: FLOPs per token from the architecture ledger;
- ``training.py``: the step model (``StepCell``), shared by ``estimate_training`` and the search;
- ``inference.py``: decode/prefill on the roofline, continuous batching; ``cost.py``: dollars and energy;
- ``server.py``: the server around the GPUs; ``explain.py``: the steps of ``plan --explain``.
docs/methodology.md (part II) has the derivations and the calibration table; ``data/compute.yaml`` the constants.
MFU uses model FLOPs, HFU hardware FLOPs, both over the dense peak of the precision in use.
"""

from __future__ import annotations

from llmsizer.compute.cost import CostEstimate, amortized_price_usd_per_gpu_hour, estimate_cost, gpu_energy_kwh
from llmsizer.compute.flops import training_flops
from llmsizer.compute.hardware import compute_data
from llmsizer.compute.inference import InferenceEstimate, engine_profile, estimate_inference, expected_experts_touched
from llmsizer.compute.training import StepCell, goodput, micro_batches_per_step, step_job, training_seconds
from llmsizer.data.frameworks import check_layout
from llmsizer.explain import Step
from llmsizer.record import record
from llmsizer.specs.architecture import ledger
from llmsizer.specs.gpu import GpuSpec
from llmsizer.specs.model import ModelSpec
from llmsizer.units import HOUR_S
from llmsizer.workload.choices import Framework, Recompute
from llmsizer.workload.defaults import resolved
from llmsizer.workload.job import Layout, Workload


@record
class TrainingEstimate:
    tokens_per_second: float  # whole plan
    mfu: float
    hfu: float
    flops_per_token: float  # model FLOPs per token (forward + backward)
    seconds: float | None  # for workload.tokens; None when unknown
    gpu_hours: float | None
    energy_kwh: float | None  # GPU board energy (no PUE, no host)
    steps: tuple[Step, ...] = ()
    hardware_flops_per_token: float = 0.0  # model FLOPs + recomputation
    step_seconds: float = 0.0  # one optimizer step
    global_batch_tokens: int = 0  # tokens per optimizer step actually used (rounded to whole micro-batches)
    grad_accumulation: int = 1  # micro-batches per step per pipeline (m)
    bubble_fraction: float = 0.0  # share of the step lost to the pipeline bubble
    comm_fraction: float = 0.0  # share of the step spent in exposed communication/offload
    facility_energy_kwh: float | None = None  # energy_kwh x PUE
    goodput: float = 1.0  # share of wall time that trains (restarts after failures excluded); seconds include it


def step_cell(model: ModelSpec, gpu: GpuSpec, workload: Workload, layout: Layout) -> StepCell:
    """The step model's cell of ``layout`` (what ``estimate_training`` and the search evaluate)."""
    return step_job(model, gpu, resolved(model, workload)).cell(layout.tp, layout.pp, layout.dp, layout.ep,
                                                               layout.gpus_per_node)


def estimate_training(model: ModelSpec, gpu: GpuSpec, workload: Workload, layout: Layout, *,
                      explain: bool = False) -> TrainingEstimate:
    """Throughput, MFU/HFU, time, GPU-hours and energy of a training job on ``layout`` (``training.py`` has the
    step model): tokens/s = tokens per step / step time; MFU = tokens/s x model FLOPs per token / (GPUs x peak);
    seconds = tokens / (tokens/s x goodput)."""
    w = resolved(model, workload)
    cell = step_cell(model, gpu, w, layout)
    check_layout(w.framework or Framework.megatron, cell.j.prof, layout.tp, layout.pp, layout.dp, layout.ep,
                 layout.zero, layout.offload, layout.virtual_stages)
    st = cell.step(layout.zero, layout.offload, layout.recompute, layout.micro_batch, layout.virtual_stages)
    n = layout.gpu_count
    tps = st.tokens_per_second
    j = cell.j
    mfu = tps * st.model_flops_per_token / (n * j.peak)
    hfu = tps * st.hardware_flops_per_token / (n * j.peak)
    good = goodput(n, j.p)
    seconds = w.tokens / (tps * good) if w.tokens is not None else None
    gpu_hours = seconds * n / HOUR_S if seconds is not None else None
    energy = gpu_energy_kwh(n, j.g.tdp_w, j.p.power_fraction, seconds) if seconds is not None else None
    facility = energy * compute_data().cost.pue if energy is not None else None
    slots = st.micro_batches + st.bubble_slots
    comm = slots * (st.tp_s + st.a2a_s + st.dp_micro_batch_s) / st.step_s + (st.dp_step_s + st.offload_step_s) / st.step_s
    e = TrainingEstimate(
        tokens_per_second=tps, mfu=mfu, hfu=hfu, flops_per_token=st.model_flops_per_token, seconds=seconds,
        gpu_hours=gpu_hours, energy_kwh=energy, hardware_flops_per_token=st.hardware_flops_per_token,
        step_seconds=st.step_s, global_batch_tokens=st.tokens_per_step, grad_accumulation=st.micro_batches,
        bubble_fraction=st.bubble_slots * st.micro_batch_s / st.step_s, comm_fraction=comm,
        facility_energy_kwh=facility, goodput=good,
    )
    if explain:
        from llmsizer.compute.explain import training_steps
        from llmsizer.record import replace

        e = replace(e, steps=training_steps(model, w, layout, cell, st, e))
    return e


def training_flops_per_token(m: ModelSpec, w: Workload, recompute: Recompute) -> tuple[float, float]:
    """``(model, hardware)`` training FLOPs per token (``flops.py``)."""
    return training_flops(ledger(m), resolved(m, w), recompute)


def training_efficiency(model: ModelSpec, gpu: GpuSpec) -> float:
    """The share of the dense peak a training step's kernels reach before communication and the bubble."""
    from llmsizer.compute.hardware import gpu_facts
    from llmsizer.compute.hardware import training_efficiency as eff

    return eff(gpu_facts(gpu), model.hidden_size, model.moe is not None, compute_data().training)[1]


__all__ = [
    "CostEstimate", "InferenceEstimate", "StepCell", "TrainingEstimate", "amortized_price_usd_per_gpu_hour",
    "compute_data", "engine_profile", "estimate_cost", "estimate_inference", "estimate_training",
    "expected_experts_touched", "micro_batches_per_step", "step_cell", "training_efficiency",
    "training_flops_per_token", "training_seconds",
]
