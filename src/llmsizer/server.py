"""The server around the GPUs: CPU cores, system RAM, local NVMe, network and wall power for one node.

Rules and their sources live in ``data/server.yaml``; this module only applies them (planner stage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from llmsizer.architecture import count_params
from llmsizer.catalog import load_validated
from llmsizer.explain import Step
from llmsizer.memory import MemoryBreakdown
from llmsizer.specs import GpuSpec, ModelSpec
from llmsizer.units import GB, GIB
from llmsizer.workload import Layout, Mode, Workload


@dataclass(frozen=True, kw_only=True)
class ServerRules:
    """The validated content of ``data/server.yaml`` (checked by ``validation.validate``; other keys are ignored)."""

    cpu_cores_per_gpu: dict[str, float | str]
    cpu_cores_per_gpu_offload_extra: float
    min_cpu_cores: int
    ram_per_gpu_memory_ratio: float
    ram_source: str
    min_ram_gib: float
    checkpoints_kept: int
    checkpoint_bytes_per_param: dict[str, float]
    checkpoint_source: str
    dataset_bytes_per_token: float
    dataset_source: str
    storage_headroom: float
    system_power_overhead: float
    power_source: str
    psu_headroom: float
    psu_source: str
    rack_units_per_8_gpu_node: int


@lru_cache(maxsize=1)
def server_rules() -> ServerRules:
    return load_validated("server.yaml", ServerRules)


@dataclass(frozen=True)
class ServerSpec:
    """One node of a plan (CONTRACT.md ``server``)."""

    gpus: int
    cpu_cores: int
    ram_bytes: int
    storage_bytes: int
    network: str
    power_watts: int
    psu_watts: int
    rack_units: int
    steps: tuple[Step, ...] = ()


def _round_up(x: float, step: float) -> float:
    return math.ceil(x / step) * step


def size_server(
    model: ModelSpec, gpu: GpuSpec, workload: Workload, layout: Layout, memory: MemoryBreakdown,
) -> ServerSpec:
    """Size one node: cores, RAM (>= ratio x GPU memory + offload), NVMe (weights, checkpoints, data), power."""
    r = server_rules()
    per_node = min(layout.gpu_count, layout.gpus_per_node)
    training = workload.mode.is_training
    cores_per_gpu = float(r.cpu_cores_per_gpu["training" if training else "inference"])
    if layout.offload.value != "none":
        cores_per_gpu += r.cpu_cores_per_gpu_offload_extra
    cores = max(r.min_cpu_cores, int(_round_up(per_node * cores_per_gpu, 4)))

    gpu_mem = per_node * gpu.memory_bytes
    offload = per_node * memory.host_offload_bytes
    ram = max(r.min_ram_gib * GIB, r.ram_per_gpu_memory_ratio * gpu_mem + offload) if gpu.kind == "gpu" else 0
    ram = int(_round_up(ram, 64 * GIB)) if ram else 0

    pc = count_params(model)
    weights_disk = pc.total * 2.0  # the bf16 release checkpoint users download
    storage = weights_disk
    if training:
        trained = pc.total if workload.mode in (Mode.finetune, Mode.pretrain) else 0.0
        kind = "full" if trained else "adapter"
        if not trained:
            from llmsizer.memory import lora_adapter_params  # same formula as the memory model

            trained = lora_adapter_params(model, workload)
        ckpt = trained * r.checkpoint_bytes_per_param[kind] * r.checkpoints_kept
        data = (workload.tokens or 0.0) * r.dataset_bytes_per_token
        # checkpoints are written by each node's share in a sharded checkpoint; datasets live on every node
        storage = weights_disk + ckpt / max(1, layout.nodes) + data
    if memory.nvme_offload_bytes:
        storage += per_node * memory.nvme_offload_bytes
    storage = int(_round_up(storage * r.storage_headroom, 1e12 if storage > 2e12 else 1e11))

    if layout.nodes > 1 and gpu.scaleout_gbps:
        net = f"{gpu.scaleup} inside the node; {gpu.scaleout_gbps:g} Gb/s InfiniBand/RoCE per GPU between nodes"
    elif layout.nodes > 1:
        net = f"{gpu.scaleup} inside the node; 100+ Gb/s Ethernet between nodes (no RDMA fabric in the usual server)"
    elif per_node > 1:
        net = f"{gpu.scaleup} between the node's GPUs; 25 Gb/s Ethernet uplink"
    else:
        net = "single GPU; 10-25 Gb/s Ethernet uplink"

    power = per_node * gpu.tdp_watts * (1 + r.system_power_overhead) if gpu.kind == "gpu" else gpu.tdp_watts
    psu = _round_up(power * r.psu_headroom, 50)
    ru = max(1, math.ceil(r.rack_units_per_8_gpu_node * per_node / 8)) if gpu.kind == "gpu" else 1
    steps = (
        Step("CPU cores per node", cores, "count", f"{per_node} GPUs x {cores_per_gpu:g} cores/GPU",
             {"gpus_per_node": per_node}, str(r.cpu_cores_per_gpu.get("source", ""))),
        Step("system RAM per node", ram, "bytes",
             f"max({r.min_ram_gib:g} GiB, {r.ram_per_gpu_memory_ratio:g} x GPU memory + offloaded state)",
             {"gpu_memory_bytes": gpu_mem, "offload_bytes": offload}, r.ram_source),
        Step("local NVMe per node", storage, "bytes",
             "(bf16 weights + kept checkpoints / nodes + tokenised dataset) x headroom",
             {"weights_bytes": weights_disk, "checkpoints_kept": r.checkpoints_kept,
              "headroom": r.storage_headroom}, r.checkpoint_source),
        Step("wall power per node", power, "W", "GPUs x TDP x (1 + system overhead)",
             {"tdp_watts": gpu.tdp_watts, "overhead": r.system_power_overhead}, r.power_source),
    )
    return ServerSpec(per_node, cores, ram, storage, net, int(power), int(psu), ru, steps)


__all__ = ["ServerSpec", "size_server", "server_rules", "GB"]
