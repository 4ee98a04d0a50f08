"""What every ``--export`` shares: the plan's numbers each launcher needs, and the one way an export refuses.

An export carries every field of the plan or refuses (``refuse``: an ``InvalidInputError``, exit 2) with a note
that says what the launcher cannot express and what to pin instead; docs/export.md lists the refusals.
"""

from __future__ import annotations

import math

from llmsizer.errors import InvalidInputError, literal
from llmsizer.search import Plan, PlanResult
from llmsizer.specs import ModelSpec
from llmsizer.units import GIB
from llmsizer.workload import Workload

#: share of a node's RAM a job asks for (--mem, memory limits): the rest stays with the OS, the kubelet or slurmd,
#: the page cache of the data loader. Slurm refuses a --mem above the node's RealMemory, which slurm.conf sets
#: below the physical size (https://slurm.schedmd.com/slurm.conf.html#OPT_RealMemory).
HOST_RAM_SHARE = 0.9


def refuse(engine: str, problem: str, fix: str, fields: tuple[str, ...] = ()) -> InvalidInputError:
    """``{export} ENGINE: <problem>; <fix>``: the export cannot carry a field of the plan. ``problem`` and ``fix``
    may name fields as ``{field}`` placeholders (listed in ``fields``)."""
    return InvalidInputError(f"{{export}} {literal(engine)}: {problem}; {fix}", fields=("export", *fields))


def hf_name(model: ModelSpec) -> str:
    """The Hugging Face repo id when the catalog knows one (an alias with a slash), else the catalog id."""
    return next((a for a in model.aliases if "/" in a), model.id)


def grad_accumulation(w: Workload, plan: Plan) -> int:
    """Micro-batches per optimizer step, as the plan's step model counted them (compute.TrainingEstimate); else
    the (resolved) global batch tokens / (seq_len x micro-batch x dp), at least 1."""
    if plan.training is not None and plan.training.grad_accumulation:
        return plan.training.grad_accumulation
    gbt = w.global_batch_tokens or w.seq_len
    return max(1, round(gbt / (w.seq_len * plan.layout.micro_batch * plan.layout.dp)))


def global_batch(w: Workload, p: Plan) -> int:
    """Sequences per optimizer step: micro-batch x accumulation x data-parallel size."""
    return p.layout.micro_batch * grad_accumulation(w, p) * p.layout.dp


def gpus_per_node(p: Plan) -> int:
    """GPUs the plan uses on each of its nodes."""
    return min(p.gpu_count, p.layout.gpus_per_node)


def host_cpus(p: Plan) -> int:
    """CPU cores of one node as the plan sized it (8 per GPU when it sized none)."""
    return p.server.cpu_cores if p.server and p.server.cpu_cores else 8 * gpus_per_node(p)


def host_mem_gib(p: Plan) -> int:
    """Whole GiB of host RAM a job on one node of the plan asks for: ``HOST_RAM_SHARE`` of the node's RAM, never
    above it (0 when the plan sized no RAM). Slurm's ``--mem=<n>G`` and Kubernetes' ``<n>Gi`` are both GiB:
    Slurm's ``str_to_mbytes`` (src/common/proc_args.c) reads the G suffix as 1,024 MiB."""
    ram = p.server.ram_bytes if p.server else 0
    return math.floor(ram * HOST_RAM_SHARE / GIB) if ram else 0


def job_name(result: PlanResult) -> str:
    """A name Slurm and Kubernetes both accept (DNS-1123 label: lower case, digits, '-'; at most 50 characters
    so that Kubernetes' pod suffixes still fit in 63)."""
    raw = f"llmsizer-{result.model.id}".lower()
    name = "".join(c if c.isalnum() and c.isascii() else "-" for c in raw)
    return "-".join(part for part in name.split("-") if part)[:50].rstrip("-")


def seconds_to_slurm_time(seconds: float | None) -> str:
    """``D-HH:MM:SS`` for sbatch ``--time``: the plan's training time + 10%, rounded up to the hour (24 h when
    the time is unknown)."""
    hours = math.ceil(seconds / 3600 * 1.1) if seconds else 24
    return f"{hours // 24}-{hours % 24:02d}:00:00"
