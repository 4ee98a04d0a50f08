"""llmsizer: what servers do I need to serve, fine-tune or pretrain model Y, how long, and at what cost?

Data flows one way, one package a floor (docs/architecture.md):
  units, errors, explain -> specs -> workload -> data -> catalog -> memory -> compute -> search -> usecases
  -> render -> cli

The public API (imported on first use, so ``import llmsizer`` stays cheap):

    import llmsizer
    result = llmsizer.plan(model="llama-3.1-70b", mode="finetune", gpu_ids=("h100-sxm",), gpu_count=16)
    top = result.plans[0]
    mem = llmsizer.estimate_memory(result.model, top.gpu, llmsizer.Workload(mode="finetune"), top.layout)

``plan`` takes what the CLI's ``plan`` takes, by field name (``usecases.plan.PlanRequest``), and answers what the
CLI answers; the estimators resolve a workload's defaults the same way.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing (~9 ms) would widen the start-up window Ctrl-C can hit
if TYPE_CHECKING:  # before the console script's handler is installed (cli/__init__.py main)
    from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_catalog": "llmsizer.catalog",
    "Catalog": "llmsizer.catalog",
    "estimate_memory": "llmsizer.memory",
    "MemoryBreakdown": "llmsizer.memory",
    "usable_memory_bytes": "llmsizer.memory",
    "estimate_training": "llmsizer.compute",
    "estimate_inference": "llmsizer.compute",
    "estimate_cost": "llmsizer.compute",
    "TrainingEstimate": "llmsizer.compute",
    "InferenceEstimate": "llmsizer.compute",
    "CostEstimate": "llmsizer.compute",
    "Workload": "llmsizer.workload",
    "Layout": "llmsizer.workload",
    "Constraints": "llmsizer.workload",
    "Mode": "llmsizer.workload",
    "resolve_defaults": "llmsizer.workload",
    "ModelSpec": "llmsizer.specs",
    "GpuSpec": "llmsizer.specs",
    "count_params": "llmsizer.specs.architecture",
    "PlanRequest": "llmsizer.usecases.plan",
    "PlanResult": "llmsizer.search",
    "Plan": "llmsizer.search",
    "render_plan": "llmsizer.render",
    "LlmsizerError": "llmsizer.errors",
}


def plan(**request: Any) -> Any:
    """Size one job as ``llmsizer plan`` does: ``request`` holds ``PlanRequest`` fields (``model``, ``mode``,
    ``gpu_ids``, ``gpu_count``, ``tokens``...; closed choices may be plain strings). Returns the ``PlanResult``."""
    from llmsizer.usecases.plan import PlanRequest, plan_request

    return plan_request(PlanRequest(**request)).result


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmsizer' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = ["__version__", "plan", *_EXPORTS]
