"""render/i18n: Chinese has every entry English has, renders them, and leaves no English words behind."""

from __future__ import annotations

import re

import pytest

from llmsizer.catalog import load_catalog
from llmsizer.explain import message
from llmsizer.render import fmt
from llmsizer.render.i18n import en, en_explain, say, zh, zh_explain
from llmsizer.workload.choices import Engine, Framework, Optimizer, Precision, Quant


def name(field: str) -> str:
    return "--" + field.replace("_", "-")


#: one params dict that covers every parameter any message reads (see the callers of ``message(...)``)
PARAMS = {
    "size": "70b", "model_id": "llama-3.1-70b", "model_name": "Llama 3.1 70B",
    "params": 7e9, "layers": 32, "hidden": 4096, "heads": 32, "kv_heads": 8, "ffn": 14336, "vocab": 128256,
    "total_params": 7.1e9,
    "quant": "q4_k_m",
    "text": "目录自带的说明",
    "fields": ("tokens", "zero", "micro_batch"),
    "max_context": 131072, "seq_len": 262144, "context": 262144,
    "tokens_per_param": 20.0, "tokens": 1.4e12,
    "deadline_s": 90 * 86400.0,
    "gpu_id": "rtx-3060", "precision": "bf16", "dtypes": "fp16, fp32",
    "need_bytes": 160 * 2**30, "usable_bytes": 11.5 * 2**30,
    "seconds": 120 * 86400.0,
    "usd": 1.25e6, "budget_usd": 1e6,
    "gpu_count": 8, "ratio": 13.9,
    "evaluated": 2270, "ms": 35.2,
    "framework": "transformers", "mode": "lora",
    "frameworks": ("megatron", "deepspeed", "fsdp", "torchtune", "transformers", "unsloth"),
    "gpus": 2, "chassis": 8, "sold_as": "NVIDIA HGX", "offer": "lambda gpu_2x_a100",
    "ram": 96 * 2**30, "limit": 72 * 2**30, "years": 3.0, "utilization": 0.7, "usd_per_kwh": 0.12,
    "engine": "llama.cpp", "fits": 12, "rate": 50.0, "replicas": 4, "max_rate": 10.0, "percentile": 0.95,
    "ttft_s": 1.2, "tpot_s": 0.06, "ttft_target_s": 1.0, "tpot_target_s": 0.05,
    "default_tokens": 4 * 2**20, "dp": 64, "pp": 32, "micro_batches": 16, "bubble": 0.66,
}
NETWORK_PARAMS = {"scaleup": "nvlink", "scaleout_gbps": 400.0}

#: what may stay in Latin letters: the values passed in, flags, units, product and paper names, CLI values
ALLOWED = sorted({
    *(str(v) for v in PARAMS.values() if isinstance(v, str)), NETWORK_PARAMS["scaleup"],
    *(name(f) for f in ("params", "quant", "tokens", "deadline_s", "max_gpus", "gpu_count", "budget_usd", "offload",
                        "zero", "mode", "context", "concurrency", "micro_batch", "recompute", "gpu_ids", "seq_len", "framework",
                        "request_rate", "engine", "global_batch_tokens", "ttft_target_s", "tpot_target_s",
                        "sla_percentile", "prompt_tokens", "disaggregate", *PARAMS["fields"])),
    "GiB", "GPU", "ms", "ZeRO-Infinity", "nvme",
    "KV", "CPU", "NVMe", "Gb/s", "InfiniBand", "RoCE", "RDMA", "Chinchilla", "Hoffmann", "et al.",
    "Table", "SwiGLU", "FFN", "Llama", "token",  # "token" as a unit, as the zh labels write it
    "Metal",  # Apple's GPU API (the unified-memory working set)
    "none", "cpu", "lora", "qlora", "int8", "int4", "full",  # values of command-line options
    "TensorRT-LLM", "vLLM", "SGLang", "CUDA", "ROCm", "ollama", "lmstudio",  # engines and GPU stacks
    "megatron", "deepspeed", "fsdp", "torchtune", "transformers", "unsloth", "any", "LoRA",
}, key=len, reverse=True)

ENGLISH = re.compile(r"[A-Za-z]{3,}")
CJK = re.compile(r"[\u4e00-\u9fff]")


def english_left(text: str) -> list[str]:
    for word in ALLOWED:
        text = text.replace(word, " ")
    return ENGLISH.findall(text)


def test_zh_has_exactly_the_english_keys():
    assert set(zh.MESSAGES) == set(en.MESSAGES)
    assert set(zh.NETWORK) == set(en.NETWORK)
    assert set(zh_explain.EXPLAIN) == set(en_explain.EXPLAIN)
    assert set(zh.LABELS) == set(en.LABELS)


@pytest.mark.parametrize("key", sorted(en_explain.EXPLAIN))
def test_zh_explain_has_the_english_sub_keys(key):
    en_entry, zh_entry = en_explain.EXPLAIN[key], zh_explain.EXPLAIN[key]
    assert set(zh_entry) == set(en_entry)
    for sub, text in en_entry.items():
        # empty where English is empty; words where English has words (a pure formula may stay as it is)
        assert bool(zh_entry[sub]) == bool(text), sub
        if ENGLISH.sub("", text) != text and zh_entry[sub] != text:
            assert CJK.search(zh_entry[sub]), sub


@pytest.mark.parametrize("key", sorted(en.MESSAGES))
def test_zh_message_renders_without_english_words(key):
    text = zh.MESSAGES[key](PARAMS, name, fmt)
    en.MESSAGES[key](PARAMS, name, fmt)  # the params cover English too
    assert text and isinstance(text, str)
    if key != "text":
        assert CJK.search(text), text
    assert english_left(text) == [], text


@pytest.mark.parametrize("key", sorted(en.NETWORK))
def test_zh_network_renders_without_english_words(key):
    text = zh.NETWORK[key](NETWORK_PARAMS, name, fmt)
    assert CJK.search(text) and english_left(text) == [], text


def test_zh_keeps_numbers_and_flags():
    assert "--tokens、--zero、--micro-batch" in zh.MESSAGES["ignored_for_training"](PARAMS, name, fmt)
    assert "160.0 GiB" in zh.MESSAGES["needs_memory"](PARAMS, name, fmt)
    assert "11.5 GiB" in zh.MESSAGES["needs_memory"](PARAMS, name, fmt)
    assert "$1,250,000" in zh.MESSAGES["over_budget"](PARAMS, name, fmt)
    assert "131,072" in zh.MESSAGES["seq_len_capped"](PARAMS, name, fmt)
    assert "+1.4%" in zh.MESSAGES["derived_architecture"](PARAMS, name, fmt)
    assert "120.0 天" in zh.MESSAGES["past_deadline"](PARAMS, name, fmt)
    assert "90 天" in zh.MESSAGES["deadline_default"](PARAMS, name, fmt)
    assert "13.9" in zh.MESSAGES["closest_memory"](PARAMS, name, fmt)
    assert "400 Gb/s" in zh.NETWORK["rdma"](NETWORK_PARAMS, name, fmt)


def test_closest_in_memory_without_a_time():
    p = {**PARAMS, "seconds": None}
    text = zh.MESSAGES["closest_in_memory"](p, name, fmt)
    assert "天" not in text and english_left(text) == []
    assert "120.0 天" in zh.MESSAGES["closest_in_memory"](PARAMS, name, fmt)


def test_say_in_chinese_and_fallback_to_english():
    msg = message("no_kv_room")
    assert say(msg, "zh") == zh.MESSAGES["no_kv_room"]({}, name, fmt)
    assert say(msg, "fr") == say(msg, "en") == en.MESSAGES["no_kv_room"]({}, name, fmt)
    msg = message("lower_batch")
    assert say(msg, "zh", name) == "降低 --micro-batch"


# ------------------------------------------------------------------------------------- whole plans, end to end

#: jobs that between them reach every kind of output line: notes, advice, offload, cloud offers, deadlines
ZH_JOBS = [
    ["--model", "70b", "--mode", "finetune"],
    ["--model", "llama-3.1-8b"],
    ["--model", "8b", "--mode", "qlora", "--gpu", "rtx-3060"],
    ["--model", "llama-3.1-405b", "--mode", "pretrain"],
    ["--model", "mixtral-8x7b", "--mode", "lora", "--gpu", "h100-sxm", "--gpus", "3"],
    ["--model", "70b", "--mode", "finetune", "--budget", "100", "--tokens", "1e9"],
    ["--model", "deepseek-v3", "--context", "200000"],
    ["--params", "3e9", "--mode", "pretrain", "--tokens", "1e11", "--deadline", "1h"],
    ["--model", "llama-3.1-405b", "--gpu", "rtx-3060", "--gpus", "2"],
]

#: Latin-letter runs a Chinese plan may keep: units, parallelism tags, product and technique names, citations
KEPT = re.compile(
    r"--[a-z][a-z-]*|ZeRO-Infinity|(?:TP|PP|DP|EP|VPP)\d+|ZeRO-\d|\$[\d.,]+[kKM]?/h|tok/s|[kMGT]?i?B\b|\bk?W\b|\bms\b|\bkW\b"
    r"|\b(?:GiB|MiB|TB|GB|Gb/s|GPU|CPU|KV|NVMe|MFU|LoRA|QLoRA|InfiniBand/RoCE|InfiniBand|RoCE|RDMA|Chinchilla"
    r"|Hoffmann|et al\.|Table|token|/M tok|llmsizer|SwiGLU|FFN|Llama-style|Llama"
    r"|NVIDIA|HGX|OAM|UBB|PCIe|Metal|NVL72|GB200|B200"  # product names of servers as sold
    r"|TensorRT-LLM|vLLM|SGLang|CUDA|ROCm)\b")  # engines and the GPU stacks they need


@pytest.fixture(scope="module")
def cat():
    return load_catalog(user_dir=False)


def _zh_plan(capsys, args):
    from llmsizer.cli import main

    with pytest.raises(SystemExit):
        main(["plan", *args, "--lang", "zh"])
    out = capsys.readouterr()
    return out.out + out.err


@pytest.mark.parametrize("args", ZH_JOBS, ids=lambda a: " ".join(a))
def test_zh_plan_has_no_english_outside_names_ids_and_units(capsys, cat, args):
    text = _zh_plan(capsys, args)
    assert CJK.search(text), text
    # names and ids come from the catalogs: every model, GPU, cloud offer and link name may stay as written
    names = {w for m in cat.models.values() for w in (m.id, m.name)}
    names |= {w for g in cat.gpus.values() for w in (g.id, g.name, getattr(g, "scaleup", "") or "")}
    names |= {w for c in cat.instances for w in (c.provider, c.instance, c.region or "")}
    names |= {e.value for e in (*Precision, *Quant, *Optimizer, *Engine, *Framework)}
    names |= {"nvlink", "xgmi", "ethernet", "pcie", "ualink", "infinity-fabric"}
    for word in sorted((n for n in names if n), key=len, reverse=True):
        text = text.replace(word, " ")
    left = ENGLISH.findall(KEPT.sub(" ", text))
    assert left == [], left
