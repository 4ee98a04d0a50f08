"""What the user wants to do: the job (``Workload``), its limits (``Constraints``), one ``Layout`` of it on GPUs, and
every default (``resolve_defaults``). The third floor of the house: it knows models, not hardware.
"""

from llmsizer.workload.choices import (
    Engine,
    Framework,
    LoraTargets,
    Mode,
    Offload,
    Optimizer,
    Precision,
    Quant,
    Recompute,
    SortKey,
)
from llmsizer.workload.defaults import Job, default_global_batch_tokens, resolve_defaults, resolved
from llmsizer.workload.job import NO_DEADLINE, Constraints, Layout, Workload

__all__ = [
    "NO_DEADLINE", "Constraints", "Engine", "Framework", "Job", "Layout", "LoraTargets", "Mode", "Offload", "Optimizer",
    "Precision", "Quant", "Recompute", "SortKey", "Workload", "default_global_batch_tokens", "resolve_defaults",
    "resolved",
]
