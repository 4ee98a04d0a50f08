"""``data/frameworks.yaml``: the training stacks' profiles (layouts they run, memory and speed mechanisms, exports),
and the two rules every floor above applies the same way: which stacks run a mode, and whether a layout is one the
stack can run (an error naming the field otherwise).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from llmsizer.errors import InvalidInputError, literal
from llmsizer.workload.choices import Framework, Mode, Offload


@cache
def frameworks_data() -> Any:
    """``data/frameworks.yaml``, validated, once per process (from the disk cache when unchanged)."""
    from llmsizer.data import load

    return load("frameworks")


def profile(framework: Framework) -> Any:
    """The profile of a concrete framework (not ``any``)."""
    return frameworks_data().frameworks[framework.value]


def frameworks_for(mode: Mode) -> tuple[Framework, ...]:
    """The stacks that run ``mode``, in the catalog's order."""
    return tuple(Framework(name) for name, p in frameworks_data().frameworks.items() if mode in p.modes)


def check_mode(framework: Framework, mode: Mode) -> Any:
    """The profile of ``framework`` if it runs ``mode``; an ``InvalidInputError`` naming ``framework`` otherwise."""
    if framework is Framework.any:
        raise InvalidInputError("{framework} " + literal("any compares the stacks in a plan; to size one layout, "
                                                         "name one of " + ", ".join(f.value for f in frameworks_for(mode))),
                                fields=("framework",))
    p = profile(framework)
    if mode not in p.modes:
        others = ", ".join(f.value for f in frameworks_for(mode))
        raise InvalidInputError("{framework} " + literal(f"{framework.value} does not run {mode.value}; use one of "
                                                         f"{others}"), fields=("framework",))
    return p


def layout_problem(p: Any, tp: int, pp: int, dp: int, ep: int, zero: int, offload: Offload, v: int,
                   gpus: int) -> str | None:
    """Why profile ``p`` cannot run this layout (None when it can). The search only enumerates layouts that pass."""
    lay = p.layouts
    if p.max_gpus is not None and gpus > p.max_gpus:
        return f"{p.name} trains on at most {p.max_gpus} GPU(s)"
    if tp > 1 and not lay.tensor_parallel:
        return f"{p.name} has no tensor parallelism"
    if pp > 1 and not lay.pipeline_parallel:
        return f"{p.name} has no pipeline parallelism"
    if v > 1 and not lay.interleaved_pipeline:
        return f"{p.name} has no interleaved pipeline schedule"
    if ep > 1 and not lay.expert_parallel:
        return f"{p.name} has no expert parallelism"
    allowed = lay.zero_with_pipeline if pp > 1 else lay.zero
    if zero not in allowed and (dp > 1 or offload is not Offload.none):  # with one replica ZeRO shards nothing
        return f"{p.name} runs ZeRO stage(s) {', '.join(map(str, allowed))}" + (" with a pipeline" if pp > 1 else "")
    if offload not in lay.offload:
        return f"{p.name} offloads to {', '.join(o.value for o in lay.offload if o is not Offload.none) or 'nothing'}"
    return None


def check_layout(framework: Framework, p: Any, tp: int, pp: int, dp: int, ep: int, zero: int, offload: Offload,
                 v: int) -> None:
    """``layout_problem`` as an ``InvalidInputError`` naming ``framework`` (the estimators' check)."""
    problem = layout_problem(p, tp, pp, dp, ep, zero, offload, v, tp * pp * dp)
    if problem is not None:
        raise InvalidInputError("{framework} " + literal(f"{framework.value}: {problem}"), fields=("framework",))
