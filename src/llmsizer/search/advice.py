"""What would make a job fit, in the order a user would try it: advice codes (``render/i18n`` words them)."""

from __future__ import annotations

from llmsizer.explain import Message, message
from llmsizer.search.result import Plan
from llmsizer.workload.choices import Mode, Offload, Quant, Recompute
from llmsizer.workload.job import Constraints, Workload


def given(c: Constraints, name: str) -> bool:
    """Whether the user set constraint ``name`` (not a default)."""
    return getattr(c, name) is not None and name not in c.assumed


def advise(w: Workload, c: Constraints, near_misses: list[Plan]) -> list[Message]:
    """Advice when nothing fits; ``near_misses`` are the closest plans shown."""
    in_memory = [p for p in near_misses if p.memory.total_bytes <= p.usable_memory_bytes]
    if in_memory and w.mode is Mode.inference:
        # they fit in memory and miss the request rate or the latency targets
        best = max(in_memory, key=lambda p: p.inference.requests_per_second if p.inference else 0.0)
        return [message("closest_serving", gpu_count=best.gpu_count, gpu_id=best.gpu.id,
                        rate=best.inference.requests_per_second if best.inference else 0.0),
                message("relax_sla")]
    if in_memory:
        # they fit in memory but miss the deadline or the budget: the advice is about time and money
        quickest = min(in_memory, key=lambda p: p.training.seconds if p.training and p.training.seconds else 0)
        seconds = quickest.training.seconds if quickest.training else None
        return [message("closest_in_memory", gpu_count=quickest.gpu_count, gpu_id=quickest.gpu.id,
                        seconds=seconds or None),
                message("relax_time_or_money")]
    out = []
    if near_misses:
        best = min(near_misses, key=lambda p: p.memory.total_bytes / p.usable_memory_bytes)
        out.append(message("closest_memory", gpu_count=best.gpu_count, gpu_id=best.gpu.id,
                           ratio=best.memory.total_bytes / best.usable_memory_bytes))
    if given(c, "gpu_count") or given(c, "max_gpus"):
        out.append(message("more_gpus"))
    if w.mode.is_training and c.offload is Offload.none:
        out.append(message("offload"))
    elif w.mode.is_training and c.offload in (None, Offload.cpu):  # the search already tried CPU offload
        out.append(message("offload_nvme"))
    if w.mode is Mode.finetune:
        out.append(message("adapters"))
    if w.mode is Mode.lora:
        out.append(message("qlora"))
    if w.mode is Mode.inference and w.quant is Quant.none:
        out.append(message("quantize"))
    if w.mode is Mode.inference:
        out.append(message("shorter_context"))
    if w.mode.is_training and (w.micro_batch or 1) > 1:
        out.append(message("lower_batch"))
    if w.mode.is_training and w.recompute not in (None, Recompute.full):
        out.append(message("recompute_full"))
    if c.gpu_ids:
        out.append(message("other_gpus"))
    if c.deadline_s is not None or c.budget_usd is not None:
        out.append(message("relax_limits"))
    return out
