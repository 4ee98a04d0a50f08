"""Cluster launchers: an sbatch script, and Kubernetes manifests (an indexed Job with its headless Service for
training; a Deployment and a Service for vLLM or SGLang serving).

Sizes are the plan's: GPUs per node, CPU cores and host RAM of the node it sized (in GiB, the unit both Slurm's
``G`` and Kubernetes' ``Gi`` read), nodes, time, replicas.
"""

from __future__ import annotations

import shlex

import yaml

from llmsizer.render.export_common import (
    gpus_per_node,
    host_cpus,
    host_mem_gib,
    job_name,
    refuse,
    seconds_to_slurm_time,
)
from llmsizer.render.export_serve import server_args, vllm_command
from llmsizer.render.export_train import deepspeed_config, megatron_args
from llmsizer.search import Plan, PlanResult
from llmsizer.workload import Engine, Framework

#: the engines' own images (vLLM docs, deployment/k8s; SGLang docs, references/deploy / docker: lmsysorg/sglang),
#: the port each server listens on by default and its health endpoint
SERVE_IMAGES = {"vllm": ("vllm/vllm-openai:latest", 8000), "sglang": ("lmsysorg/sglang:latest", 30000)}
TRAIN_IMAGE = "nvcr.io/nvidia/pytorch:24.08-py3"
RDZV_PORT = 29500


def shell_join(tokens: list[str]) -> str:
    """A command line: a token that names a shell or Kubernetes variable (``$HEAD``, ``$(JOB_COMPLETION_INDEX)``)
    in double quotes, so that it is still expanded; any other quoted as ``shlex.join`` does."""
    return " ".join(f'"{t}"' if "$" in t else shlex.quote(t) for t in tokens)


def train_command(result: PlanResult, p: Plan, rendezvous: list[str]) -> str:
    """``torchrun`` with ``rendezvous`` and the stack's entry point: Megatron-LM's ``pretrain_gpt.py`` with the
    plan's arguments, else ``train.py`` with the DeepSpeed config of ``--export deepspeed`` (DeepSpeed and the
    Hugging Face Trainer read it), else ``train.py`` alone (FSDP, torchtune, Unsloth set the layout in code)."""
    lay = p.layout
    run = ["torchrun", "--nnodes", str(lay.nodes), "--nproc_per_node", str(gpus_per_node(p)), *rendezvous]
    if p.framework is Framework.megatron:
        args = megatron_args(result, p).split("\\\n  ")[1:]
        return shell_join([*run, "pretrain_gpt.py"]) + " " + " ".join(a.strip() for a in args)
    if p.framework in (None, Framework.deepspeed, Framework.transformers):
        deepspeed_config(result, p)  # the same refusals as --export deepspeed: the script runs that config
        return shell_join([*run, "train.py", "--deepspeed", "ds_config.json"])
    return shell_join([*run, "train.py"])


def slurm_script(result: PlanResult, p: Plan) -> str:
    """An sbatch script: one torchrun per node (https://slurm.schedmd.com/sbatch.html). ``--mem`` is in GiB
    (Slurm's ``G``), the plan's share of the node's RAM, never above it."""
    lay = p.layout
    seconds = p.training.seconds if p.training and p.training.seconds else None
    if result.workload.mode.is_training:
        run = "srun " + train_command(result, p, ["--rdzv_backend", "c10d", "--rdzv_endpoint", f"$HEAD:{RDZV_PORT}",
                                                  "--rdzv_id", "$SLURM_JOB_ID"])
    else:
        if lay.nodes > 1:
            raise refuse("slurm", f"the plan serves from {lay.nodes} nodes, and one vllm serve runs on one node "
                         "(more need a Ray cluster)", "use {export} k8s, or pin {gpus} to one node", ("gpus",))
        run = "srun " + vllm_command(result, p)
    mem = host_mem_gib(p)
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={job_name(result)}",
        f"#SBATCH --nodes={lay.nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --gpus-per-node={gpus_per_node(p)}",
        f"#SBATCH --cpus-per-task={host_cpus(p)}",
        f"#SBATCH --mem={mem}G" if mem else "#SBATCH --mem=0",
        f"#SBATCH --time={seconds_to_slurm_time(seconds)}",
        "#SBATCH --exclusive",
        "set -euo pipefail",
        'HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        run,
    ]
    return "\n".join(lines)


def _resources(p: Plan, gpus: int) -> dict:
    """A pod's share of the node the plan sized, by its share of the node's GPUs: GPUs, CPU cores, GiB of RAM."""
    share = gpus / gpus_per_node(p)
    mem = int((host_mem_gib(p) or 64) * share)
    limits = {"nvidia.com/gpu": gpus, "cpu": str(max(1, int(host_cpus(p) * share))), "memory": f"{mem}Gi"}
    return {"limits": limits, "requests": dict(limits)}


def _shm() -> tuple[dict, dict]:
    """``/dev/shm`` as a RAM-backed emptyDir: NCCL and the engines' worker processes share memory through it, and
    a container's default is 64 MiB (vLLM docs, deployment/k8s)."""
    return {"name": "dshm", "emptyDir": {"medium": "Memory"}}, {"name": "dshm", "mountPath": "/dev/shm"}


def _dump(*docs: dict) -> str:
    return "---\n".join(yaml.safe_dump(d, sort_keys=False, width=10_000) for d in docs).rstrip("\n")


def k8s_manifest(result: PlanResult, p: Plan) -> str:
    """Kubernetes manifests for the plan: serving -> ``k8s_serving``, training -> ``k8s_training``."""
    return k8s_training(result, p) if result.workload.mode.is_training else k8s_serving(result, p)


def k8s_training(result: PlanResult, p: Plan) -> str:
    """An indexed ``batch/v1`` Job, one pod per node, and the headless ``v1`` Service that gives pod 0 the DNS
    name the others rendezvous at (Kubernetes docs, "Indexed Job for parallel processing with static work
    assignment" and "Job with pod-to-pod communication")."""
    lay, name = p.layout, job_name(result)
    cmd = train_command(result, p, ["--node_rank", "$(JOB_COMPLETION_INDEX)", "--master_addr",
                                    f"{name}-0.{name}", "--master_port", str(RDZV_PORT)])
    volume, mount = _shm()
    job = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {
            "completions": lay.nodes, "parallelism": lay.nodes, "completionMode": "Indexed", "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "subdomain": name, "restartPolicy": "Never",
                    "containers": [{
                        "name": "worker", "image": TRAIN_IMAGE, "command": ["bash", "-c", cmd],
                        "ports": [{"containerPort": RDZV_PORT}],
                        "resources": _resources(p, gpus_per_node(p)), "volumeMounts": [mount],
                    }],
                    "volumes": [volume],
                },
            },
        },
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
               "spec": {"clusterIP": "None", "selector": {"app": name},
                        "ports": [{"name": "rendezvous", "port": RDZV_PORT}]}}
    return _dump(service, job)


def k8s_serving(result: PlanResult, p: Plan) -> str:
    """An ``apps/v1`` Deployment with one replica per copy of the model (the plan's data-parallel size) and a
    ``v1`` Service in front, on the engine's own image, with its port, readiness and liveness probes on
    ``/health``, the plan's GPUs per copy and engine arguments (vLLM docs, deployment/k8s)."""
    lay, name, engine = p.layout, job_name(result), result.workload.engine
    if engine not in (Engine.vllm, Engine.sglang):
        raise refuse("k8s", f"Kubernetes serving is exported for vllm and sglang, and the plan runs "
                     f"{engine.value}", "use {engine} vllm or sglang", ("engine",))
    per_copy = lay.tp * lay.pp
    if per_copy > lay.gpus_per_node:
        raise refuse("k8s", f"one copy of the model spans {per_copy} GPUs, more than a node's {lay.gpus_per_node}, "
                     "and a Deployment's pod runs on one node (multi-node serving needs LeaderWorkerSet and Ray)",
                     "pin {tp} and {pp} to fit one node", ("tp", "pp"))
    image, port = SERVE_IMAGES[engine.value]
    args = server_args(result, p, engine.value, replicas=False)
    args += ["--host", "0.0.0.0", "--port", str(port)]
    volume, mount = _shm()

    def probe(**more: int) -> dict:  # a fresh dict each time: YAML would otherwise write anchors and aliases
        return {"httpGet": {"path": "/health", "port": port}, "periodSeconds": 10, **more}

    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": lay.dp,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{
                        "name": engine.value, "image": image, "command": args[:1], "args": args[1:],
                        "ports": [{"name": "http", "containerPort": port}],
                        "resources": _resources(p, per_copy),
                        "startupProbe": probe(failureThreshold=180),  # 30 min to load the weights
                        "readinessProbe": probe(), "livenessProbe": probe(),
                        "volumeMounts": [mount],
                    }],
                    "volumes": [volume],
                },
            },
        },
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
               "spec": {"type": "ClusterIP", "selector": {"app": name},
                        "ports": [{"name": "http", "port": port, "targetPort": port}]}}
    return _dump(deployment, service)

