"""Per-GPU memory of a training or inference job: a typed breakdown whose parts sum to the total.

``estimate_memory(model, gpu, workload, layout)`` returns what *one* GPU of the layout holds (the worse pipeline
stage), split into weights, gradients, optimizer states, activations, KV cache and overhead; docs/methodology.md
(part I) derives every formula and ``data/memory.yaml`` holds every constant with its source.

- ``weights.py``: stored bytes per parameter group and storage format (dense, quantized, GGUF), and per stage;
- ``activations.py``: saved activations per layer and stage (Korthikanti et al. 2022), inference transients;
- ``kv.py``: the KV cache; ``training.py`` / ``inference.py``: the parts of one stage;
- ``explain.py``: the derivation steps of ``plan --explain`` (imported only when asked for).
The workload's defaults are resolved first (``workload.resolve_defaults``), so a library call sizes the same job as
the CLI does.
"""

from __future__ import annotations

from llmsizer.data.frameworks import check_layout
from llmsizer.explain import Step
from llmsizer.memory.activations import per_layer_bytes
from llmsizer.memory.constants import constants
from llmsizer.memory.inference import engine_memory, inference_parts, kv_bytes_per_token
from llmsizer.memory.kv import kv_bytes_per_sequence
from llmsizer.memory.training import TrainingCell, training_job
from llmsizer.memory.weights import effective_bits_per_weight
from llmsizer.record import record
from llmsizer.specs.architecture import lora_adapters
from llmsizer.specs.gpu import GpuSpec
from llmsizer.specs.model import ModelSpec
from llmsizer.workload.choices import Framework, Mode, Recompute
from llmsizer.workload.defaults import resolved
from llmsizer.workload.job import Layout, Workload


@record
class MemoryBreakdown:
    """Bytes each GPU holds. ``total_bytes`` is the sum of the six parts (CONTRACT.md ``memory_per_gpu``).

    ``host_offload_bytes`` / ``nvme_offload_bytes`` are this GPU's share of state moved off the GPU (ZeRO-Offload /
    ZeRO-Infinity); they are not part of the total. ``stage`` names the pipeline stage reported ("all" when pp = 1,
    else the worse of "first" and "last").
    """

    weights_bytes: float
    gradients_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    kv_cache_bytes: float
    overhead_bytes: float
    host_offload_bytes: float = 0.0
    nvme_offload_bytes: float = 0.0
    steps: tuple[Step, ...] = ()
    stage: str = "all"

    @property
    def total_bytes(self) -> float:
        return (
            self.weights_bytes + self.gradients_bytes + self.optimizer_bytes
            + self.activations_bytes + self.kv_cache_bytes + self.overhead_bytes
        )

    @property
    def model_states_bytes(self) -> float:
        """Weights + gradients + optimizer states: what ZeRO calls the model states."""
        return self.weights_bytes + self.gradients_bytes + self.optimizer_bytes


def training_cell(model: ModelSpec, gpu: GpuSpec, workload: Workload, tp: int, pp: int, dp: int, ep: int,
                  sequence_parallel: bool = True, virtual_stages: int = 1) -> TrainingCell:
    """The ``TrainingCell`` of a training job on a (gpu, tp, pp, dp, ep, v) cell: what the search checks layouts
    against, and what ``estimate_memory`` reports from."""
    w = resolved(model, workload)
    return TrainingCell(training_job(model, w), gpu.kind, tp, pp, dp, ep, sequence_parallel,
                        virtual_stages if pp > 1 else 1)


def estimate_memory(model: ModelSpec, gpu: GpuSpec, workload: Workload, layout: Layout, *,
                    explain: bool = False) -> MemoryBreakdown:
    """What one GPU of ``layout`` holds for ``workload`` on ``model``: the worse pipeline stage's breakdown.

    Training (finetune, pretrain, lora, qlora): weights, gradients, optimizer states after TP/PP/EP/ZeRO sharding
    and offload (ZeRO paper sec. 5), activations (Korthikanti et al. 2022 sec. 4), overhead. Inference: weights at
    their storage cost, the KV cache for ``concurrency`` sequences of ``context_tokens``, the engine's activation
    transient, overhead. With pp > 1 both the first stage (embedding, micro-batches in flight) and the last
    (lm_head, logits) are sized and the larger is returned.
    """
    w = resolved(model, workload)
    if w.mode.is_training:
        cell = training_cell(model, gpu, w, layout.tp, layout.pp, layout.dp, layout.ep, layout.sequence_parallel,
                             layout.virtual_stages)
        check_layout(w.framework or Framework.megatron, cell.job.prof, layout.tp, layout.pp, layout.dp, layout.ep,
                     layout.zero, layout.offload, layout.virtual_stages)
        i, parts = cell.breakdown(layout.zero, layout.offload, layout.recompute, layout.micro_batch)
        name = cell.stage_name(i)
        steps: tuple[Step, ...] = ()
        if explain:
            from llmsizer.memory.explain import training_steps

            steps = training_steps(cell, i, layout, parts)
    else:
        stages = [inference_parts(model, gpu, w, layout, True, True)] if layout.pp == 1 else [
            inference_parts(model, gpu, w, layout, True, False), inference_parts(model, gpu, w, layout, False, True)]
        i = 0
        if len(stages) == 2 and sum(stages[1].parts[:6]) > sum(stages[0].parts[:6]):
            i = 1
        parts = stages[i].parts
        name = "all" if len(stages) == 1 else ("first", "last")[i]
        steps = ()
        if explain:
            from llmsizer.memory.explain import inference_steps

            steps = inference_steps(model, w, layout, stages[i], name)
    return MemoryBreakdown(*parts, steps=steps, stage=name)


def usable_memory_bytes(gpu: GpuSpec, workload: Workload, layout: Layout | None = None) -> float:
    """Bytes a job may fill on ``gpu``: the device's usable memory (Apple: the GPU's share of unified memory)
    times the engine's reservation for inference (vLLM gpu_memory_utilization 0.9, SGLang mem_fraction_static by
    tp size); training and the other engines may use all of it."""
    base = float(gpu.usable_memory_bytes)
    if workload.mode is not Mode.inference:
        return base
    return base * engine_memory(workload).memory_fraction(layout.tp if layout is not None else 1)


def activation_bytes_per_layer(model: ModelSpec, workload: Workload, layout: Layout, *, seq_len: int | None = None,
                               micro_batch: int | None = None, recompute: Recompute | None = None) -> float:
    """Stored activations of one transformer layer for one micro-batch, per GPU (Korthikanti et al. 2022, sec. 4):
    no recompute s b (R/t_sp + T/t + S k/t); selective drops S; full keeps s b h. With GPT-3's architecture and
    t-way TP + SP: sbh(34 + 5as/h)/t, 34sbh/t and 2sbh/t (Korthikanti Table 2)."""
    w = resolved(model, workload)
    j = training_job(model, w)
    t = layout.tp
    r_div = t if (layout.sequence_parallel and t > 1) else 1
    return per_layer_bytes(model, j.coeffs, j.ab, t, r_div, seq_len or w.seq_len, micro_batch or layout.micro_batch,
                           recompute or layout.recompute)


def kv_cache_bytes_per_sequence(model: ModelSpec, workload: Workload, layout: Layout,
                                context_tokens: int | None = None) -> float:
    """KV-cache bytes one sequence of ``context_tokens`` (default: the workload's) needs on one GPU (``kv.py``)."""
    ctx = context_tokens if context_tokens is not None else workload.context_tokens
    return kv_bytes_per_sequence(model, workload, layout.tp, layout.pp, ctx, layout.attention_dp)


def kv_cache_bytes_per_token(model: ModelSpec, workload: Workload, layout: Layout) -> float:
    """Per-GPU KV-cache bytes per token of context, e.g. Llama-2-7B fp16: 2 x 32 layers x 32 heads x 128 x 2 B =
    0.5 MiB; DeepSeek-V3 MLA: (512 + 64) x 61 x 2 B."""
    return kv_bytes_per_token(model, workload, layout)


def lora_adapter_params(model: ModelSpec, workload: Workload) -> int:
    """Trainable LoRA parameters: sum over adapted ``in x out`` matrices of ``r (in + out)`` (Hu et al. 2021)."""
    return lora_adapters(model, workload.lora_rank, workload.lora_targets).params


def memory_data():  # noqa: ANN201 - the namespace tree of data/memory.yaml
    """``data/memory.yaml``, validated (for tests and docs)."""
    return constants().data


def clear_caches() -> None:
    """Forget the loaded memory.yaml and every per-model memo (tests that swap data files in)."""
    from llmsizer import data
    from llmsizer.memory import activations, training, weights

    data.forget()
    constants.cache_clear()
    training._JOBS.clear()
    for f in (weights.group_bytes, activations.layer_coefficients, activations.stage_tensor_bytes):
        f.cache_clear()


__all__ = [
    "MemoryBreakdown", "TrainingCell", "activation_bytes_per_layer", "clear_caches", "effective_bits_per_weight",
    "estimate_memory", "kv_cache_bytes_per_sequence", "kv_cache_bytes_per_token", "lora_adapter_params",
    "memory_data", "training_cell", "usable_memory_bytes",
]
