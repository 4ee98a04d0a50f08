"""--export: each launch config uses only the option names its engine documents, passes its tool's schema, and
round-trips: plan -> export -> parsed (JSON, YAML, argv) -> the plan's own fields. What a tool cannot carry is
refused (exit 2) instead of dropped."""

from __future__ import annotations

import json
import re
import shlex

import jsonschema
import pytest
import yaml
from k8s_schemas import BY_KIND
from typer.testing import CliRunner

from llmsizer.catalog import load_catalog
from llmsizer.cli.app import app
from llmsizer.cli.options import flag
from llmsizer.errors import InvalidInputError
from llmsizer.explain import message
from llmsizer.record import replace
from llmsizer.render.export import ENGINES, export_notes, export_plan, grad_accumulation
from llmsizer.render.export_common import GIB
from llmsizer.search import Constraints, plan
from llmsizer.workload import Mode, Offload, Quant, Workload

# https://www.deepspeed.ai/docs/config-json/
DEEPSPEED_KEYS = {"train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
                  "gradient_clipping", "bf16", "fp16", "zero_optimization", "activation_checkpointing",
                  "steps_per_print", "wall_clock_breakdown"}
DEEPSPEED_ZERO_KEYS = {"stage", "overlap_comm", "contiguous_gradients", "offload_optimizer", "offload_param"}
DEEPSPEED_OFFLOAD_DEVICES = {"cpu", "nvme"}  # "offload_optimizer": {"device": "[cpu|nvme]"}
# https://docs.vllm.ai/en/latest/configuration/engine_args.html
VLLM_FLAGS = {"--tensor-parallel-size", "--pipeline-parallel-size", "--max-model-len", "--gpu-memory-utilization",
              "--max-num-seqs", "--dtype", "--quantization", "--kv-cache-dtype", "--data-parallel-size", "--host",
              "--port", "--max-num-batched-tokens", "--enable-expert-parallel"}
# https://docs.sglang.ai/backend/server_arguments.html
SGLANG_FLAGS = {"--model-path", "--tp-size", "--pp-size", "--dp-size", "--context-length", "--mem-fraction-static",
                "--max-running-requests", "--dtype", "--quantization", "--kv-cache-dtype", "--host", "--port",
                "--chunked-prefill-size", "--ep-size"}
# llama.cpp tools/server/README.md
LLAMACPP_FLAGS = {"-m", "-ngl", "-c", "-np", "-b", "-ub", "--split-mode", "--cache-type-k", "--cache-type-v", "-fa"}
# Megatron-LM megatron/training/arguments.py
MEGATRON_FLAGS = {"--tensor-model-parallel-size", "--pipeline-model-parallel-size", "--num-layers", "--hidden-size",
                  "--num-attention-heads", "--ffn-hidden-size", "--seq-length", "--max-position-embeddings",
                  "--micro-batch-size", "--global-batch-size", "--optimizer", "--bf16", "--fp16", "--fp8-format",
                  "--sequence-parallel", "--num-layers-per-virtual-pipeline-stage",
                  "--decoder-first-pipeline-num-layers", "--decoder-last-pipeline-num-layers",
                  "--group-query-attention", "--num-query-groups", "--swiglu",
                  "--normalization", "--position-embedding-type", "--untie-embeddings-and-output-weights",
                  "--recompute-granularity", "--recompute-method", "--recompute-num-layers",
                  "--use-distributed-optimizer", "--optimizer-cpu-offload", "--optimizer-offload-fraction",
                  "--use-precision-aware-optimizer", "--num-experts", "--moe-router-topk",
                  "--expert-model-parallel-size", "--train-samples"}
# accelerate: `accelerate config` YAML (accelerate/commands/config/config_args.py)
ACCELERATE_KEYS = {"compute_environment", "distributed_type", "fsdp_config", "deepspeed_config", "mixed_precision",
                   "num_machines", "num_processes", "machine_rank", "main_training_function", "rdzv_backend",
                   "same_network", "use_cpu"}
FSDP_KEYS = {"fsdp_auto_wrap_policy", "fsdp_backward_prefetch", "fsdp_sharding_strategy", "fsdp_offload_params",
             "fsdp_state_dict_type", "fsdp_use_orig_params", "fsdp_activation_checkpointing"}
ACCELERATE_DEEPSPEED_KEYS = {"zero_stage", "gradient_accumulation_steps", "offload_optimizer_device",
                             "offload_param_device"}
# https://slurm.schedmd.com/sbatch.html
SBATCH_OPTIONS = {"--job-name", "--nodes", "--ntasks-per-node", "--gpus-per-node", "--cpus-per-task", "--mem",
                  "--time", "--exclusive"}
# torchrun (https://docs.pytorch.org/docs/stable/elastic/run.html)
TORCHRUN_FLAGS = {"--nnodes", "--nproc_per_node", "--rdzv_backend", "--rdzv_endpoint", "--rdzv_id", "--node_rank",
                  "--master_addr", "--master_port"}


@pytest.fixture(scope="module")
def cat():
    return load_catalog(user_dir=False)


@pytest.fixture(scope="module")
def train_result(cat):
    # the README's and docs/export.md's example: Llama 3.1 70B full fine-tuning on 16 H100
    w = Workload(mode=Mode.finetune, seq_len=4096, tokens=2e9)
    return plan(cat, cat.model("llama-3.1-70b"), w, Constraints(gpu_ids=("h100-sxm",), gpu_count=16))


@pytest.fixture(scope="module")
def serve_result(cat):
    w = Workload(mode=Mode.inference, quant=Quant.fp8, context=8192, concurrency=32, kv_dtype="fp8")
    return plan(cat, cat.model("llama-3.1-70b"), w, Constraints(gpu_ids=("h100-sxm",)))


@pytest.fixture(scope="module")
def replicated_result(cat):
    # four copies of an 8B model on one 8-GPU node: dp 4 x tp 2
    w = Workload(mode=Mode.inference, context=8192, concurrency=16)
    return plan(cat, cat.model("llama-3.1-8b"), w, Constraints(gpu_ids=("h100-sxm",), gpu_count=8, tp=2))


def top(result):
    return next(p for p in result.plans if p.fits)


def with_layout(result, **layout):
    """The result with its top plan's layout changed: a plan the search might rank first, exported as it is."""
    p = top(result)
    return replace(result, plans=[replace(p, layout=replace(p.layout, **layout))])


def argv(cmd: str) -> dict[str, str]:
    """``--flag value`` pairs of a command's first line."""
    tokens = shlex.split(cmd.splitlines()[0])
    return {t: (tokens[i + 1] if i + 1 < len(tokens) and not tokens[i + 1].startswith("-") else "")
            for i, t in enumerate(tokens) if t.startswith("-")}


def k8s_docs(text: str) -> list[dict]:
    docs = [d for d in yaml.safe_load_all(text) if d]
    for d in docs:
        jsonschema.validate(d, BY_KIND[d["kind"]])
    return docs


# ------------------------------------------------------------------------------------------- training configs


def test_deepspeed_round_trip(train_result):
    p = top(train_result)
    cfg = json.loads(export_plan(train_result, "deepspeed"))
    assert set(cfg) <= DEEPSPEED_KEYS and set(cfg["zero_optimization"]) <= DEEPSPEED_ZERO_KEYS
    z = cfg["zero_optimization"]
    assert z["stage"] == p.layout.zero
    assert cfg["train_micro_batch_size_per_gpu"] == p.layout.micro_batch
    assert cfg["gradient_accumulation_steps"] == grad_accumulation(train_result.workload, p)
    # DeepSpeed asserts train_batch_size == micro x accumulation x data-parallel size
    assert cfg["train_batch_size"] == p.layout.micro_batch * cfg["gradient_accumulation_steps"] * p.layout.dp
    offload = z.get("offload_optimizer", {}).get("device", "none")
    assert offload == p.layout.offload.value
    assert offload == "none" or offload in DEEPSPEED_OFFLOAD_DEVICES
    assert cfg["bf16"]["enabled"] is True


def test_deepspeed_refuses_tensor_and_pipeline_parallelism(train_result):
    with pytest.raises(InvalidInputError, match="tp=2 pp=2") as e:
        export_plan(with_layout(train_result, tp=2, pp=2, dp=4), "deepspeed")
    assert e.value.render(flag).startswith("--export deepspeed:") and "--tp 1 --pp 1" in e.value.render(flag)
    with pytest.raises(InvalidInputError, match="tp=2"):
        export_plan(with_layout(train_result, tp=2, dp=8), "accelerate")


def test_accelerate_round_trip(train_result):
    p = top(train_result)
    doc = yaml.safe_load(export_plan(train_result, "accelerate"))
    assert set(doc) <= ACCELERATE_KEYS
    assert doc["num_processes"] == p.gpu_count and doc["num_machines"] == p.nodes
    if p.layout.zero >= 2:
        fsdp = doc["fsdp_config"]
        assert set(fsdp) <= FSDP_KEYS
        assert fsdp["fsdp_sharding_strategy"] == ("FULL_SHARD" if p.layout.zero == 3 else "SHARD_GRAD_OP")
        assert fsdp["fsdp_offload_params"] == (p.layout.offload is not Offload.none)
    one = yaml.safe_load(export_plan(with_layout(train_result, zero=1, offload=Offload.cpu), "accelerate"))
    assert set(one["deepspeed_config"]) <= ACCELERATE_DEEPSPEED_KEYS
    assert one["deepspeed_config"]["offload_optimizer_device"] == "cpu"  # was dropped before


@pytest.fixture(scope="module")
def megatron_result(cat):
    w = Workload(mode=Mode.finetune, seq_len=4096, tokens=2e9, framework="megatron")
    return plan(cat, cat.model("llama-3.1-70b"), w, Constraints(gpu_ids=("h100-sxm",), gpu_count=16))


def test_megatron_round_trip(megatron_result):
    p, m, w = top(megatron_result), megatron_result.model, megatron_result.workload
    text = export_plan(megatron_result, "megatron")
    assert set(re.findall(r"(--[a-z0-9-]+)", text)) <= MEGATRON_FLAGS
    a = argv(text.replace("\\\n", " "))
    assert int(a["--tensor-model-parallel-size"]) == p.layout.tp
    assert int(a["--pipeline-model-parallel-size"]) == p.layout.pp
    assert int(a["--micro-batch-size"]) == p.layout.micro_batch
    assert int(a["--global-batch-size"]) == p.layout.micro_batch * grad_accumulation(w, p) * p.layout.dp
    assert int(a["--num-layers"]) == m.layers == 80 and int(a["--num-query-groups"]) == 8  # Llama 3.1 70B


def test_megatron_refuses_an_interleaving_the_layers_do_not_divide(megatron_result):
    # the Llama 2 70B case: TP4 PP32 VPP3 = 96 chunks for 80 layers
    bad = with_layout(megatron_result, tp=4, pp=32, dp=1, virtual_stages=3, gpus_per_node=8)
    with pytest.raises(InvalidInputError, match="80 layers do not split into pp=32 x 3"):
        export_plan(bad, "megatron")
    ok = with_layout(megatron_result, tp=4, pp=4, dp=1, virtual_stages=5)  # 80 = 4 x 5 x 4 layers
    assert "--num-layers-per-virtual-pipeline-stage 4" in export_plan(ok, "megatron")


def test_megatron_uneven_pipeline_as_llama_3_405b(cat):
    # Llama 3 405B: 126 layers on PP16 (Dubey et al. 2024 sec. 3.3.2: fewer layers on the first and last stages);
    # middle stages take ceil(126 / 16) = 8 as the plan sized them, the first and last 7 each
    w = Workload(mode=Mode.pretrain, seq_len=8192, global_batch_tokens=16 * 2**20, tokens=1e12)
    r = plan(cat, cat.model("llama-3.1-405b"), w, Constraints(gpu_ids=("h100-sxm",), gpu_count=16384, tp=8, pp=16))
    plain = with_layout(r, virtual_stages=1)
    text = export_plan(plain, "megatron")
    assert "--decoder-first-pipeline-num-layers 7 --decoder-last-pipeline-num-layers 7" in text
    assert 7 + 7 + 14 * 8 == 126
    assert any("126 layers over pp=16" in n for n in export_notes(plain, "megatron"))
    # interleaved (v = 2): Megatron-Core's custom layout, 32 chunks, the same 7 + 14 x 8 + 7
    text = export_plan(with_layout(r, virtual_stages=2), "megatron")
    assert "--pipeline-model-parallel-layout" in text and "--num-layers-per-virtual-pipeline-stage" not in text
    # v = 3: 8 layers per middle stage do not split into 3 equal chunks, which no stack runs
    with pytest.raises(InvalidInputError, match="126 layers do not split"):
        export_plan(with_layout(r, virtual_stages=3), "megatron")


def test_megatron_carries_offload_and_refuses_what_it_cannot(megatron_result):
    text = export_plan(with_layout(megatron_result, zero=1, offload=Offload.cpu), "megatron")
    assert "--optimizer-cpu-offload" in text and "--use-distributed-optimizer" in text
    with pytest.raises(InvalidInputError, match="ZeRO-3"):
        export_plan(with_layout(megatron_result, zero=3), "megatron")
    lora = replace(megatron_result, workload=megatron_result.workload.with_(mode=Mode.lora))
    with pytest.raises(InvalidInputError, match="lora"):
        export_plan(lora, "megatron")


# ---------------------------------------------------------------------------------------------- servers


def test_vllm_sglang_llamacpp_round_trip(serve_result):
    p, w = top(serve_result), serve_result.workload
    v = export_plan(serve_result, "vllm")
    assert set(argv(v)) <= VLLM_FLAGS
    a = argv(v)
    assert int(a["--tensor-parallel-size"]) == p.layout.tp and int(a["--pipeline-parallel-size"]) == p.layout.pp
    assert int(a["--max-model-len"]) == w.context_tokens == 8192 and int(a["--max-num-seqs"]) == w.concurrency
    assert a["--quantization"] == "fp8" and a["--kv-cache-dtype"] == "fp8"
    assert float(a["--gpu-memory-utilization"]) <= p.usable_memory_bytes / p.gpu.memory_bytes
    s = argv(export_plan(serve_result, "sglang"))
    assert set(s) - {"-m"} <= SGLANG_FLAGS  # -m is python's own
    assert int(s["--tp-size"]) == p.layout.tp and int(s["--context-length"]) == 8192
    gguf = replace(serve_result, workload=w.with_(quant=Quant.q4_k_m))
    ll = export_plan(gguf, "llama.cpp")
    assert set(argv(ll)) <= LLAMACPP_FLAGS
    assert "-c 262144" in ll  # 8,192 tokens x 32 slots


def test_int4_needs_a_quantized_checkpoint(serve_result):
    # the issue: `--quant int4 --export vllm` served the base repo with --quantization awq, which vLLM cannot load
    int4 = replace(serve_result, workload=serve_result.workload.with_(quant=Quant.int4))
    for engine in ("vllm", "sglang"):
        with pytest.raises(InvalidInputError, match="AWQ or GPTQ checkpoint") as e:
            export_plan(int4, engine)
        assert "--model" in e.value.render(flag)
    # a checkpoint that says it is stored quantized: served as it is, the engine reads its quantization_config
    stored = replace(int4, notes=[message("file_quant", quant="int4")])
    assert "--quantization" not in export_plan(stored, "vllm")


def test_data_parallel_replicas(replicated_result):
    p = top(replicated_result)
    assert p.layout.dp == 4 and p.layout.tp == 2
    assert argv(export_plan(replicated_result, "vllm"))["--data-parallel-size"] == "4"
    assert argv(export_plan(replicated_result, "sglang"))["--dp-size"] == "4"


# ------------------------------------------------------------------------------------------ slurm and k8s


def test_slurm_memory_is_gib_within_the_node(train_result):
    # the README's 70B example wrote --mem=1374G: a GB figure with Slurm's GiB suffix, above the node it sized
    p = top(train_result)
    script = export_plan(train_result, "slurm")
    opts = dict(m.groups() for m in re.finditer(r"^#SBATCH (--[a-z-]+)=?(\S*)", script, flags=re.MULTILINE))
    assert set(opts) <= SBATCH_OPTIONS
    assert int(opts["--nodes"]) == p.nodes and int(opts["--gpus-per-node"]) == min(p.gpu_count, 8)
    mem_gib = int(opts["--mem"].removesuffix("G"))
    assert opts["--mem"].endswith("G") and 0 < mem_gib * GIB <= p.server.ram_bytes
    run = script.splitlines()[-1]
    assert set(argv(run.removeprefix("srun "))) - {"--deepspeed"} <= TORCHRUN_FLAGS
    assert '"$HEAD:29500"' in run  # double quotes: the shell expands it


def test_slurm_runs_megatron_for_megatron_plans(megatron_result):
    run = export_plan(megatron_result, "slurm").splitlines()[-1]
    assert "pretrain_gpt.py" in run and "--deepspeed" not in run
    assert f"--tensor-model-parallel-size {top(megatron_result).layout.tp}" in run


def test_k8s_training_job_and_headless_service(train_result):
    p = top(train_result)
    docs = k8s_docs(export_plan(train_result, "k8s"))
    service, job = (next(d for d in docs if d["kind"] == k) for k in ("Service", "Job"))
    assert service["spec"]["clusterIP"] == "None"  # headless: pod 0 gets <job>-0.<service> for the rendezvous
    spec = job["spec"]
    assert spec["completions"] == spec["parallelism"] == p.nodes and spec["completionMode"] == "Indexed"
    pod = spec["template"]["spec"]
    assert pod["subdomain"] == service["metadata"]["name"]
    c = pod["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == min(p.gpu_count, 8)
    assert int(c["resources"]["limits"]["memory"].removesuffix("Gi")) * GIB <= p.server.ram_bytes
    assert pod["volumes"][0]["emptyDir"]["medium"] == "Memory"


@pytest.mark.parametrize("engine,image,port", [("vllm", "vllm/vllm-openai", 8000), ("sglang", "lmsysorg/sglang", 30000)])
def test_k8s_serving_is_a_deployment_and_service(replicated_result, engine, image, port):
    r = replace(replicated_result, workload=replicated_result.workload.with_(engine=engine))
    p = top(r)
    docs = k8s_docs(export_plan(r, "k8s"))
    dep, svc = (next(d for d in docs if d["kind"] == k) for k in ("Deployment", "Service"))
    assert dep["spec"]["replicas"] == p.layout.dp == 4
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"] == labels and svc["spec"]["selector"] == labels
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["image"].split(":")[0] == image
    assert c["ports"][0]["containerPort"] == port == svc["spec"]["ports"][0]["targetPort"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": port}
    assert c["resources"]["limits"]["nvidia.com/gpu"] == p.layout.tp * p.layout.pp == 2
    assert {"name": "dshm", "mountPath": "/dev/shm"} in c["volumeMounts"]
    assert dep["spec"]["template"]["spec"]["volumes"][0]["emptyDir"] == {"medium": "Memory"}
    a = argv(shlex.join(c["command"] + c["args"]))
    tp_flag, len_flag = (("--tensor-parallel-size", "--max-model-len") if engine == "vllm"
                         else ("--tp-size", "--context-length"))
    assert int(a[tp_flag]) == 2 and int(a[len_flag]) == r.workload.context_tokens
    assert "--data-parallel-size" not in a and "--dp-size" not in a  # the replicas are the Deployment's


# ----------------------------------------------------------------------------------------------- the CLI


def test_wrong_engine_for_the_mode(train_result, serve_result):
    with pytest.raises(InvalidInputError, match="inference server"):
        export_plan(train_result, "vllm")
    with pytest.raises(InvalidInputError, match="training launcher"):
        export_plan(serve_result, "deepspeed")
    with pytest.raises(InvalidInputError, match="unknown export 'tgi'") as e:
        export_plan(serve_result, "tgi")
    assert e.value.render(flag).startswith("unknown --export 'tgi'")  # the CLI names the flag
    assert len(ENGINES) == 8


def test_cli_refusal_is_one_line_and_exit_2(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMSIZER_CONFIG_DIR", str(tmp_path))
    r = CliRunner().invoke(app, ["plan", "--model", "llama-3.1-70b", "--quant", "int4", "--gpu", "a100-80gb-sxm",
                                 "--export", "vllm"])
    assert r.exit_code == 2 and r.stdout == ""
    errors = [line for line in r.stderr.splitlines() if line.startswith("llmsizer: error")]
    assert len(errors) == 1 and "AWQ or GPTQ" in errors[0] and "Traceback" not in r.stderr


def test_notes_say_what_only_the_training_script_sets(cat):
    w = Workload(mode=Mode.lora, seq_len=4096, tokens=1e9)
    r = plan(cat, cat.model("llama-3.1-8b"), w, Constraints(gpu_ids=("h100-sxm",), gpu_count=1))
    notes = export_notes(r, "deepspeed", flag)
    assert any("sequences of 4,096 tokens" in n for n in notes)
    assert any("LoRA rank 16 on every linear layer" in n for n in notes)
    amp = replace(r, workload=r.workload.with_(precision="fp32-amp"))
    with pytest.raises(InvalidInputError, match="fp32 weights under bf16 autocast"):
        export_plan(amp, "deepspeed")
    assert yaml.safe_load(export_plan(amp, "accelerate"))["mixed_precision"] == "bf16"


def test_export_notes_in_english_and_chinese(train_result):
    from llmsizer.render.i18n import en_export, zh_export

    assert set(zh_export.MESSAGES) == set(en_export.MESSAGES)
    zh = export_notes(train_result, "slurm", flag, "zh")
    en = export_notes(train_result, "slurm", flag, "en")
    assert len(zh) == len(en) > 0
    assert all(re.search(r"[\u4e00-\u9fff]", n) for n in zh)
    assert any("--export deepspeed" in n for n in zh)  # flags stay as they are


def test_megatron_layout_for_an_uneven_interleaved_split():
    # Llama 3 405B: 126 layers on PP16 x VPP8 (the top pretraining plan): Megatron-Core's
    # --pipeline-model-parallel-layout, chunk i on rank i mod pp, carries the plan's 7 + 14 x 8 + 7 layers
    from llmsizer.render.export_train import pipeline_layout
    from llmsizer.search.space import pipeline_split

    layout = pipeline_layout(126, 16, 8)
    chunks = layout.split("|")
    assert len(chunks) == 16 * 8 and chunks[0].startswith("E") and chunks[-1].endswith("L")
    per_rank = [0] * 16
    for i, chunk in enumerate(chunks):
        body = chunk.replace("E", "").replace("L", "")
        per_rank[i % 16] += 0 if not body else 1 if body == "t" else int(body.split("*")[1])
    first, mid, last = pipeline_split(126, 16, 8)
    assert per_rank == [first] + [mid] * 14 + [last] and sum(per_rank) == 126
