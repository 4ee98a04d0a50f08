"""The library answers what the CLI answers: ``llmsizer.plan(...)`` and the estimators against ``llmsizer plan
--format json`` on 50 random jobs (issue 15).

Each job is written twice, independently: once as command-line flags, once as ``PlanRequest`` field names. The CLI
side goes through the real entry point (fast parser or Typer, the flag-to-field mapping, the JSON renderer); the
library side through ``llmsizer.plan`` and then ``estimate_memory`` / ``estimate_training`` / ``estimate_inference``
on the top plan's layout, with the workload written out by hand (defaults left for the library to resolve).
"""

from __future__ import annotations

import json
import random

import pytest

import llmsizer
from llmsizer.cli import main

MODELS = ["llama-3.1-8b", "llama-3.2-1b", "qwen2.5-7b", "mistral-7b", "gpt2", "mixtral-8x7b", "llama-3.1-70b",
          "gemma-2-9b", "phi-3-mini", "deepseek-v2-lite"]
GPUS = ["h100-sxm", "a100-80gb", "l40s", "rtx-4090", "mi300x", "h200", "b200", "rtx-3060"]
MODES = ["inference", "finetune", "lora", "qlora", "pretrain"]


def _job(rnd: random.Random) -> tuple[list[str], dict]:
    """One job as (flags, PlanRequest fields)."""
    model, mode = rnd.choice(MODELS), rnd.choice(MODES)
    argv, kw = ["--model", model, "--mode", mode], {"model": model, "mode": mode}

    def put(flag: str, field: str, value, text: str | None = None) -> None:
        argv.extend([flag, text if text is not None else str(value)])
        kw[field] = value

    gpus = rnd.sample(GPUS, rnd.choice([1, 1, 2]))
    for g in gpus:
        argv.extend(["--gpu", g])
    kw["gpu_ids"] = tuple(gpus)
    if rnd.random() < 0.4:
        put("--gpus", "gpu_count", rnd.choice([1, 2, 4, 8, 16]))
    if mode == "inference":
        if rnd.random() < 0.5:
            put("--concurrency", "concurrency", rnd.choice([1, 8, 64]))
        if rnd.random() < 0.4:
            put("--prompt-tokens", "prompt_tokens", rnd.choice([256, 4096]))
        if rnd.random() < 0.3:
            put("--quant", "quant", rnd.choice(["int8", "int4", "fp8"]))
        if rnd.random() < 0.3:
            put("--engine", "engine", rnd.choice(["vllm", "sglang", "llama.cpp", "transformers"]))
    else:
        if rnd.random() < 0.5:
            put("--seq-len", "seq_len", rnd.choice([512, 1024, 4096]))
        if rnd.random() < 0.4:
            put("--batch", "micro_batch", rnd.choice([1, 2, 4]))
        if rnd.random() < 0.6 or mode != "pretrain":
            tokens = rnd.choice([1e8, 1e9, 2e10])
            put("--tokens", "tokens", tokens, text=f"{tokens:g}")
        if mode in ("lora", "qlora") and rnd.random() < 0.5:
            put("--lora-rank", "lora_rank", rnd.choice([8, 64]))
        if rnd.random() < 0.3:
            put("--recompute", "recompute", rnd.choice(["none", "selective", "full"]))
        if mode == "pretrain" and rnd.random() < 0.5:
            put("--deadline", "deadline_s", "none")
    if rnd.random() < 0.3:
        put("--sort", "sort", rnd.choice(["cost", "time", "gpus"]))
    return argv, kw


JOBS = [_job(random.Random(seed)) for seed in range(50)]


def _cli_json(capsys, argv: list[str]) -> dict:
    with pytest.raises(SystemExit) as done:
        main(["plan", *argv, "--format", "json"])
    assert done.value.code in (0, 1), capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _close(a, b, rel=1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return a == pytest.approx(b, rel=rel)


@pytest.mark.parametrize(("argv", "kw"), JOBS, ids=[" ".join(a) for a, _ in JOBS])
def test_library_plan_equals_cli_json(capsys, argv, kw):
    cli = _cli_json(capsys, argv)
    result = llmsizer.plan(**kw)
    assert [p.gpu.id for p in result.plans] == [p["gpu"]["id"] for p in cli["plans"]]
    assert [p.gpu_count for p in result.plans] == [p["gpu_count"] for p in cli["plans"]]
    for lib, js in zip(result.plans, cli["plans"]):
        assert lib.layout.tp == js["parallelism"]["tp"] and lib.layout.pp == js["parallelism"]["pp"]
        assert lib.layout.zero == js["parallelism"]["zero"]
        assert lib.memory.total_bytes == pytest.approx(js["memory_per_gpu"]["total_bytes"], abs=1)
        assert _close(lib.cost.usd_per_hour if lib.cost else None, js["cost"]["usd_per_hour"] if js["cost"] else None)
        if lib.training is not None:
            assert _close(lib.training.tokens_per_second, js["training"]["tokens_per_second"])
            assert _close(lib.training.seconds, js["training"]["seconds"])
        if lib.inference is not None:
            assert _close(lib.inference.tokens_per_second, js["inference"]["tokens_per_second"])


@pytest.mark.parametrize(("argv", "kw"), JOBS[:25], ids=[" ".join(a) for a, _ in JOBS[:25]])
def test_estimators_on_the_top_layout_equal_cli_json(capsys, argv, kw):
    """The estimators, given the job the user typed (defaults unresolved) and the top plan's layout, give the
    CLI's figures for that plan: they resolve defaults the way the CLI does."""
    cli = _cli_json(capsys, argv)
    if not cli["plans"] or not cli["plans"][0]["fits"]:
        pytest.skip("nothing fits this job")
    top = cli["plans"][0]
    cat = llmsizer.load_catalog(user_dir=False)
    model, gpu = cat.model(kw["model"]), cat.gpu(top["gpu"]["id"])
    fields = {k: v for k, v in kw.items() if k in ("mode", "seq_len", "micro_batch", "tokens", "lora_rank",
                                                   "recompute", "quant", "concurrency", "prompt_tokens", "engine")}
    work = llmsizer.Workload(**{k: _choice(k, v) for k, v in fields.items()})
    par = top["parallelism"]
    layout = llmsizer.Layout(tp=par["tp"], pp=par["pp"], dp=par["dp"], ep=par["ep"],
                             zero=par["zero"], offload=_choice("offload", par["offload"]),
                             recompute=_choice("recompute", par["recompute"]), micro_batch=par["micro_batch"],
                             sequence_parallel=par["sequence_parallel"], virtual_stages=par["virtual_stages"],
                             gpus_per_node=top["gpus_per_node"])
    mem = llmsizer.estimate_memory(model, gpu, work, layout)
    assert mem.total_bytes == pytest.approx(top["memory_per_gpu"]["total_bytes"], abs=1)
    assert mem.weights_bytes == pytest.approx(top["memory_per_gpu"]["weights_bytes"], abs=1)
    if top["training"] is not None:
        est = llmsizer.estimate_training(model, gpu, work, layout)
        assert est.tokens_per_second == pytest.approx(top["training"]["tokens_per_second"], rel=1e-9)
    else:
        est = llmsizer.estimate_inference(model, gpu, work, layout)
        assert est.tokens_per_second == pytest.approx(top["inference"]["tokens_per_second"], rel=1e-9)


def _choice(name: str, value):
    """A closed choice's enum from its text (``Workload`` and ``Layout`` take enums, as the core does)."""
    from llmsizer.workload import choices

    enums = {"mode": choices.Mode, "recompute": choices.Recompute, "quant": choices.Quant,
             "engine": choices.Engine, "offload": choices.Offload}
    return enums[name](value) if name in enums and value is not None else value


def test_global_batch_takes_sequences_or_tokens_and_refuses_a_misread():
    # issue 18: "--global-batch 64" was read as 64 tokens (less than one sequence); DeepSpeed users mean sequences
    kw = dict(model="llama-3.1-8b", mode="finetune", gpu_ids=("h100-sxm",), seq_len=4096, top=1)
    assert llmsizer.plan(global_batch_tokens="64seq", **kw).workload.global_batch_tokens == 64 * 4096
    assert llmsizer.plan(global_batch_tokens="2Mtok", **kw).workload.global_batch_tokens == 2e6
    assert llmsizer.plan(global_batch_tokens="1e6", **kw).workload.global_batch_tokens == 1e6
    with pytest.raises(llmsizer.LlmsizerError) as e:
        llmsizer.plan(global_batch_tokens="64", **kw)
    assert e.value.fields == ("global_batch_tokens",) and "64seq" in e.value.render(lambda f: f)
