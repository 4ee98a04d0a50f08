"""`llmsizer fit`: what runs on hardware the user has, checked against what people actually run."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llmsizer.cli.app import app


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMSIZER_CONFIG_DIR", str(tmp_path / "none"))


def _fit(*args):
    r = CliRunner().invoke(app, ["fit", *args, "--format", "json"])
    assert r.exit_code in (0, 1), r.stderr
    return {m["id"]: m for m in json.loads(r.stdout)["models"]}, json.loads(r.stdout)


def test_one_rtx_4090_serves_8b_in_bf16_and_70b_only_quantized_away():
    rows, doc = _fit("--gpu", "rtx-4090")
    assert doc["schema_version"] == 1
    # 8B in bf16: 16 GB of weights on a 24 GB card (common knowledge; llama.cpp/vLLM users run it)
    assert rows["llama-3.1-8b"]["fits"] and rows["llama-3.1-8b"]["quant"] == "none"
    # 70B needs ~35-40 GB even at 4 bits: never on one 24 GB card at int4 (q3 GGUF may squeeze in)
    r70 = rows["llama-3.1-70b"]
    assert not r70["fits"] or r70["quant"] in ("q3_k_m",)
    for m in doc["models"]:
        for key in ("id", "fits", "precision", "quant", "max_context", "tokens_per_second"):
            assert key in m


def test_mac_with_unified_memory_runs_70b_at_4_bits():
    # M2 Ultra 192 GB: the GPU may wire ~75% (147 GB); Llama 3 70B q4 is ~40 GB (llama.cpp discussion #4167 runs
    # 70B models on M2 Ultra)
    rows, _ = _fit("--gpu", "m2-ultra", "--model", "llama-3.1-70b")
    assert rows["llama-3.1-70b"]["fits"]


def test_a_16gb_mac_is_fitted_with_llama_cpp_and_its_gguf_formats():
    # an M2 Pro 16 GB lets Metal wire ~2/3 of it (10.7 GiB): Llama 2 7B Q8_0 is 7.16 GB (TheBloke/Llama-2-7B-GGUF,
    # llama-2-7b.Q8_0.gguf), so it fits at 8 bits in llama.cpp's own format, not as a GPTQ/AWQ int8 it cannot load
    rows, doc = _fit("--gpu", "m2-pro", "--family", "llama")
    assert doc["engine"] == "llama.cpp"
    assert rows["llama-2-7b"]["fits"] and rows["llama-2-7b"]["quant"] == "q8_0"
    assert 7.16e9 <= rows["llama-2-7b"]["memory_per_gpu_bytes"] <= 10.7 * 2**30
    assert {m["quant"] for m in doc["models"] if m["fits"]} <= {"none", "q8_0", "q4_k_m", "q3_k_m"}
    _, gpu_doc = _fit("--gpu", "rtx-4090", "--model", "llama-3.1-8b")
    assert gpu_doc["engine"] == "vllm"


def test_qlora_on_two_3090s():
    rows, _ = _fit("--gpu", "rtx-3090", "--gpus", "2", "--mode", "qlora", "--family", "llama")
    assert rows["llama-2-7b"]["fits"] and rows["llama-2-7b"]["max_context"] >= 2048


def test_fit_rejects_pretrain():
    r = CliRunner().invoke(app, ["fit", "--gpu", "h100", "--mode", "pretrain"])
    assert r.exit_code == 2 and "plan" in r.stderr


def test_a_misfit_says_what_it_needs():
    # Llama 3.1 70B at q3_k_m, the lightest format fit tries: bartowski/Meta-Llama-3.1-70B-Instruct-GGUF lists
    # Meta-Llama-3.1-70B-Instruct-Q3_K_M.gguf at 34.27 GB. More than one 24 GB RTX 4090 holds, less than two.
    rows, _ = _fit("--gpu", "rtx-4090", "--model", "llama-3.1-70b")
    r70 = rows["llama-3.1-70b"]
    assert not r70["fits"] and r70["needs_quant"] == "q3_k_m"
    assert 34.27e9 <= r70["needs_memory_bytes"] <= 34.27e9 * 1.15  # the file, plus a 1,536-token KV cache and runtime
    assert r70["needs_gpus"] == 2
    ok = _fit("--gpu", "rtx-4090", "--model", "llama-3.1-8b")[0]["llama-3.1-8b"]
    assert ok["fits"] and ok["needs_gpus"] is None and ok["needs_memory_bytes"] is None


def test_table_shows_needs_not_zeros_and_no_dump():
    r = CliRunner().invoke(app, ["fit", "--gpu", "rtx-4090", "--family", "llama"], env={"COLUMNS": "120"})
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "What fits on 1 × NVIDIA GeForce RTX 4090 24GB · 24.0 GiB · inference · vllm"
    row = next(line for line in lines if line.startswith("llama-3.1-70b "))
    assert "2 GPUs (q3_k_m)" in row and " 0 tok/s" not in row and " 0 " not in row
    assert not any(line.startswith(("gpu:", "gpu_count:", "mode:")) for line in lines)  # the old key: value dump
