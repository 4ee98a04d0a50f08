"""--export: each launch config uses only the option names its engine documents, with the plan's numbers."""

from __future__ import annotations

import json
import re
import shlex

import pytest
import yaml

from llmsizer.catalog import load_catalog
from llmsizer.cli.options import flag
from llmsizer.errors import InvalidInputError
from llmsizer.render.export import ENGINES, export_notes, export_plan, grad_accumulation
from llmsizer.search import Constraints, plan
from llmsizer.workload import Mode, Quant, Workload

# https://www.deepspeed.ai/docs/config-json/
DEEPSPEED_KEYS = {"train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
                  "gradient_clipping", "bf16", "fp16", "zero_optimization", "activation_checkpointing",
                  "steps_per_print", "wall_clock_breakdown"}
DEEPSPEED_ZERO_KEYS = {"stage", "overlap_comm", "contiguous_gradients", "offload_optimizer", "offload_param"}
# https://docs.vllm.ai/en/latest/configuration/engine_args.html
VLLM_FLAGS = {"--tensor-parallel-size", "--pipeline-parallel-size", "--max-model-len", "--gpu-memory-utilization",
              "--max-num-seqs", "--dtype", "--quantization", "--kv-cache-dtype", "--data-parallel-size"}
# https://docs.sglang.ai/backend/server_arguments.html
SGLANG_FLAGS = {"--model-path", "--tp-size", "--dp-size", "--context-length", "--mem-fraction-static",
                "--max-running-requests", "--dtype", "--quantization", "--kv-cache-dtype"}
# llama.cpp tools/server/README.md
LLAMACPP_FLAGS = {"-m", "-ngl", "-c", "-np", "-b", "-ub", "--split-mode", "--cache-type-k", "--cache-type-v", "-fa"}
# Megatron-LM megatron/training/arguments.py
MEGATRON_FLAGS = {"--tensor-model-parallel-size", "--pipeline-model-parallel-size", "--num-layers", "--hidden-size",
                  "--num-attention-heads", "--ffn-hidden-size", "--seq-length", "--max-position-embeddings",
                  "--micro-batch-size", "--global-batch-size", "--bf16", "--fp16", "--fp8-format",
                  "--sequence-parallel", "--num-layers-per-virtual-pipeline-stage", "--group-query-attention",
                  "--num-query-groups", "--swiglu",
                  "--normalization", "--position-embedding-type", "--untie-embeddings-and-output-weights",
                  "--recompute-granularity", "--recompute-method", "--recompute-num-layers",
                  "--use-distributed-optimizer", "--num-experts", "--moe-router-topk", "--expert-model-parallel-size",
                  "--train-samples"}
# accelerate: `accelerate config` YAML (accelerate/commands/config/config_args.py)
ACCELERATE_KEYS = {"compute_environment", "distributed_type", "fsdp_config", "deepspeed_config", "mixed_precision",
                   "num_machines", "num_processes", "machine_rank", "main_training_function", "rdzv_backend",
                   "same_network", "use_cpu"}
FSDP_KEYS = {"fsdp_auto_wrap_policy", "fsdp_backward_prefetch", "fsdp_sharding_strategy", "fsdp_offload_params",
             "fsdp_state_dict_type", "fsdp_use_orig_params", "fsdp_activation_checkpointing"}
# https://slurm.schedmd.com/sbatch.html
SBATCH_OPTIONS = {"--job-name", "--nodes", "--ntasks-per-node", "--gpus-per-node", "--cpus-per-task", "--mem",
                  "--time", "--exclusive"}


@pytest.fixture(scope="module")
def cat():
    return load_catalog(user_dir=False)


@pytest.fixture(scope="module")
def train_result(cat):
    w = Workload(mode=Mode.finetune, seq_len=4096, tokens=2e9)
    return plan(cat, cat.model("llama-3.1-70b"), w, Constraints(gpu_ids=("h100-sxm",), gpu_count=16))


@pytest.fixture(scope="module")
def serve_result(cat):
    w = Workload(mode=Mode.inference, quant=Quant.int4, context=8192, concurrency=32, kv_dtype="fp8")
    return plan(cat, cat.model("llama-3.1-70b"), w, Constraints(gpu_ids=("a100-80gb-sxm",)))


def _flags(cmd: str) -> set[str]:
    return {t for t in shlex.split(cmd.splitlines()[0]) if t.startswith("-")}


def test_deepspeed_json_is_consistent(train_result):
    p = train_result.plans[0]
    cfg = json.loads(export_plan(train_result, "deepspeed"))
    assert set(cfg) <= DEEPSPEED_KEYS
    assert set(cfg["zero_optimization"]) <= DEEPSPEED_ZERO_KEYS
    assert cfg["zero_optimization"]["stage"] == p.layout.zero
    # DeepSpeed asserts train_batch_size == micro x accumulation x data-parallel size
    assert cfg["train_batch_size"] == (cfg["train_micro_batch_size_per_gpu"] * cfg["gradient_accumulation_steps"]
                                       * p.layout.dp)
    assert cfg["gradient_accumulation_steps"] == grad_accumulation(train_result.workload, p)


@pytest.fixture(scope="module")
def megatron_result(cat):
    w = Workload(mode=Mode.finetune, seq_len=4096, tokens=2e9, framework="megatron")
    return plan(cat, cat.model("llama-3.1-70b"), w, Constraints(gpu_ids=("h100-sxm",), gpu_count=16))


def test_megatron_args(megatron_result):
    p = megatron_result.plans[0]
    text = export_plan(megatron_result, "megatron")
    flags = set(re.findall(r"(--[a-z0-9-]+)", text))
    assert flags <= MEGATRON_FLAGS
    assert f"--tensor-model-parallel-size {p.layout.tp}" in text
    assert f"--pipeline-model-parallel-size {p.layout.pp}" in text
    assert "--num-query-groups 8" in text  # Llama 3.1 70B: 8 KV heads


def test_accelerate_yaml(train_result):
    doc = yaml.safe_load(export_plan(train_result, "accelerate"))
    assert set(doc) <= ACCELERATE_KEYS
    assert doc["num_processes"] == train_result.plans[0].gpu_count
    if "fsdp_config" in doc:
        assert set(doc["fsdp_config"]) <= FSDP_KEYS


def test_slurm_and_k8s(train_result):
    p = train_result.plans[0]
    script = export_plan(train_result, "slurm")
    opts = {m.split("=")[0] for m in re.findall(r"^#SBATCH (\S+)", script, flags=re.M)}
    assert opts <= SBATCH_OPTIONS
    assert f"#SBATCH --nodes={p.nodes}" in script
    job = yaml.safe_load(export_plan(train_result, "k8s"))
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["spec"]["completions"] == p.nodes
    limits = job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == min(p.gpu_count, p.layout.gpus_per_node)


def test_vllm_sglang_llamacpp_commands(serve_result):
    p = serve_result.plans[0]
    v = export_plan(serve_result, "vllm")
    assert _flags(v) <= VLLM_FLAGS
    assert f"--tensor-parallel-size {p.layout.tp}" in v and "--max-model-len 8192" in v
    assert "--quantization awq" in v and "--kv-cache-dtype fp8" in v
    assert _flags(export_plan(serve_result, "sglang")) - {"-m"} <= SGLANG_FLAGS  # -m is python's own
    ll = export_plan(serve_result, "llama.cpp")
    assert _flags(ll) <= LLAMACPP_FLAGS
    assert "-c 262144" in ll  # 8,192 tokens x 32 slots


def test_wrong_engine_for_the_mode(train_result, serve_result):
    with pytest.raises(InvalidInputError, match="inference server"):
        export_plan(train_result, "vllm")
    with pytest.raises(InvalidInputError, match="training launcher"):
        export_plan(serve_result, "deepspeed")
    with pytest.raises(InvalidInputError, match="unknown export 'tgi'") as e:
        export_plan(serve_result, "tgi")
    assert e.value.render(flag).startswith("unknown --export 'tgi'")  # the CLI names the flag
    assert len(ENGINES) == 8


def test_megatron_interleaved_plan_and_uneven_split_note(cat):
    # Llama 3 405B as Meta ran it (TP8 x PP16, 16M-token batches of 8k sequences): the planner interleaves the
    # stages; 126 layers do not split evenly over 16 stages, which the export says instead of hiding it
    w = Workload(mode=Mode.pretrain, seq_len=8192, global_batch_tokens=16 * 2**20, tokens=1e12)
    r = plan(cat, cat.model("llama-3.1-405b"), w, Constraints(gpu_ids=("h100-sxm",), gpu_count=16384, tp=8, pp=16))
    lay = r.plans[0].layout
    assert lay.virtual_stages > 1
    text = export_plan(r, "megatron")
    assert f"--num-layers-per-virtual-pipeline-stage {8 // lay.virtual_stages}" in text
    assert any("126 layers do not split evenly" in n for n in export_notes(r, "megatron"))
    assert any("interleaves" in n for n in export_notes(r, "deepspeed"))
