"""The server around the GPUs: CPU cores, system RAM, local NVMe, network and wall power for one node of a plan.

Rules and their sources live in ``data/server.yaml``; this module only applies them. The network is described by
what it is (``Network``); ``render/`` says it in words.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from llmsizer.explain import Step
from llmsizer.memory import MemoryBreakdown, lora_adapter_params
from llmsizer.record import record
from llmsizer.specs.architecture import count_params
from llmsizer.specs.gpu import GpuSpec
from llmsizer.specs.model import ModelSpec
from llmsizer.units import GIB
from llmsizer.workload.choices import Mode, Offload
from llmsizer.workload.job import Layout, Workload


@cache
def server_rules() -> Any:
    """``data/server.yaml``, validated, once per process."""
    from llmsizer.data import load

    return load("server")


@record
class Network:
    """How a node's GPUs talk: ``kind`` single (one GPU), node (one node's scale-up fabric), rdma (nodes joined by
    ``scaleout_gbps`` InfiniBand/RoCE per GPU) or ethernet (nodes without an RDMA fabric in the usual server)."""

    kind: str
    scaleup: str = ""
    scaleout_gbps: float = 0.0


@record
class ServerSpec:
    """One node of a plan (CONTRACT.md ``server``). ``chassis_gpus`` is the size of the server as it is sold that
    holds the node's ``gpus`` (an 8-GPU HGX board for a 2-GPU plan: 8, of which 2 in use) and ``sold_as`` names it
    (data/server.yaml ``chassis``); for a CPU server or a Mac (``machine``) the cores, RAM and power are the
    machine's own and ``gpu_memory_limit_bytes`` is what its GPU may use of the unified memory (Metal's
    recommendedMaxWorkingSetSize share, data/gpus.yaml ``usable_memory_fraction``)."""

    gpus: int
    cpu_cores: int
    ram_bytes: int
    storage_bytes: int
    network: Network
    power_watts: int
    psu_watts: int
    rack_units: int
    steps: tuple[Step, ...] = ()
    chassis_gpus: int = 0  # 0: not known (a user catalog's accelerator no chassis rule matches)
    sold_as: str = ""
    machine: bool = False
    chassis_id: str = ""  # data/server.yaml chassis rule (render/i18n words it)
    gpu_memory_limit_bytes: int = 0  # unified memory only


def chassis_for(gpu: GpuSpec) -> Any | None:
    """The first ``chassis`` rule of data/server.yaml that covers ``gpu`` (by id, else kind / vendor / form factor)."""
    ff = gpu.form_factor.lower()
    for c in server_rules().chassis:
        if c.ids:
            if gpu.id in c.ids:
                return c
            continue
        if ((c.kind is None or gpu.kind == c.kind) and (c.vendor is None or gpu.vendor == c.vendor)
                and (c.form_factor_contains is None or c.form_factor_contains.lower() in ff)):
            return c
    return None


def server_size(chassis: Any, gpus: int) -> tuple[int, int]:
    """(GPUs, rack units) of the smallest server as sold that holds ``gpus`` (the largest if none does)."""
    for n, ru in zip(chassis.gpus_per_server, chassis.rack_units):
        if n >= gpus:
            return n, ru
    return chassis.gpus_per_server[-1], chassis.rack_units[-1]


def _round_up(x: float, step: float) -> float:
    return math.ceil(x / step) * step


def size_server(model: ModelSpec, gpu: GpuSpec, workload: Workload, layout: Layout,
                memory: MemoryBreakdown) -> ServerSpec:
    """Size one node: cores, RAM (>= ratio x GPU memory + offload), NVMe (weights, checkpoints, data), power."""
    r = server_rules()
    per_node = min(layout.gpu_count, layout.gpus_per_node)
    training = workload.mode.is_training
    machine = gpu.kind != "gpu"  # a CPU server or a Mac: the catalog entry is the whole machine
    spec = r.machines.get(gpu.id) if machine else None
    cores_per_gpu = float(r.cpu_cores_per_gpu["training" if training else "inference"])
    if layout.offload is not Offload.none:
        cores_per_gpu += r.cpu_cores_per_gpu_offload_extra
    cores = max(r.min_cpu_cores, int(_round_up(per_node * cores_per_gpu, 4)))

    gpu_mem = per_node * gpu.memory_bytes
    offload = per_node * memory.host_offload_bytes
    if machine:  # its memory is the machine's RAM (CPU server) or unified memory (Mac)
        ram = gpu.memory_bytes
        cores = int(spec.cpu_cores) if spec is not None else cores
    else:
        ram = int(_round_up(max(r.min_ram_gib * GIB, r.ram_per_gpu_memory_ratio * gpu_mem + offload), 64 * GIB))

    total = count_params(model).total
    weights_disk = total * 2.0  # the bf16 release checkpoint users download
    storage = weights_disk
    if training:
        full = workload.mode in (Mode.finetune, Mode.pretrain)
        trained = total if full else lora_adapter_params(model, workload)  # the memory model's adapter count
        ckpt = trained * r.checkpoint_bytes_per_param["full" if full else "adapter"] * r.checkpoints_kept
        data = (workload.tokens or 0.0) * r.dataset_bytes_per_token
        # checkpoints are written by each node's share in a sharded checkpoint; datasets live on every node
        storage = weights_disk + ckpt / max(1, layout.nodes) + data
    if memory.nvme_offload_bytes:
        storage += per_node * memory.nvme_offload_bytes
    storage = int(_round_up(storage * r.storage_headroom, 1e12 if storage > 2e12 else 1e11))

    if machine:  # machines join over Ethernet / Thunderbolt, never InfiniBand
        net = Network("machines" if layout.nodes > 1 else "machine", "", gpu.scaleout_gbps)
    elif layout.nodes > 1:
        net = Network("rdma" if gpu.scaleout_gbps else "ethernet", gpu.scaleup, gpu.scaleout_gbps)
    else:
        net = Network("node" if per_node > 1 else "single", gpu.scaleup)

    if machine:
        power = float(spec.power_watts) if spec is not None else gpu.tdp_watts
    else:
        power = per_node * gpu.tdp_watts * (1 + r.system_power_overhead)
    psu = _round_up(power * r.psu_headroom, 50)
    chassis = chassis_for(gpu)
    if chassis is not None:
        chassis_gpus, ru = server_size(chassis, per_node)
    else:
        chassis_gpus, ru = 0, max(1, math.ceil(r.rack_units_per_8_gpu_node * per_node / 8))
    steps = (
        Step("server.cpu_cores", cores, "count", {"gpus_per_node": per_node, "cores_per_gpu": cores_per_gpu},
             str(r.cpu_cores_per_gpu.get("source", ""))),
        Step("server.ram", ram, "bytes", {"gpu_memory_bytes": gpu_mem, "offload_bytes": offload,
                                          "min_ram_bytes": r.min_ram_gib * GIB, "ratio": r.ram_per_gpu_memory_ratio},
             r.ram_source),
        Step("server.storage", storage, "bytes",
             {"weights_bytes": weights_disk, "checkpoints_kept": r.checkpoints_kept, "headroom": r.storage_headroom},
             r.checkpoint_source),
        Step("server.power", power, "W", {"tdp_watts": gpu.tdp_watts, "overhead": r.system_power_overhead},
             r.power_source),
    )
    if machine:  # the machine's own figures, not the GPU-server rules
        src = spec.source if spec is not None else gpu.source
        steps = (Step("server.cpu_cores", cores, "count", {"machine": gpu.id}, src, "machine"),
                 Step("server.ram", ram, "bytes", {"machine": gpu.id}, gpu.source, "machine"), steps[2],
                 Step("server.power", power, "W", {"machine": gpu.id}, src, "machine"))
    return ServerSpec(per_node, cores, ram, storage, net, int(power), int(psu), ru, steps,
                      chassis_gpus=chassis_gpus, sold_as=chassis.sold_as if chassis is not None else "",
                      machine=machine, chassis_id=chassis.id if chassis is not None else "",
                      gpu_memory_limit_bytes=gpu.usable_memory_bytes if gpu.kind == "unified" else 0)


__all__ = ["Network", "ServerSpec", "chassis_for", "server_rules", "server_size", "size_server"]
