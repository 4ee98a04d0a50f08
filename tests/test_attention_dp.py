"""Attention data parallelism in serving (issue 17): each of a replica's tp GPUs runs attention for its own
sequences, with every KV head and the whole attention weights, while the MLPs and experts spread over all of them
(SGLang --enable-dp-attention, TensorRT-LLM enable_attention_dp, vLLM --data-parallel-size).

What it changes is memory: an MLA cache (DeepSeek-V2, arXiv:2405.04434, sec. 2.1.2: one latent of
kv_lora_rank + qk_rope_head_dim = 512 + 64 elements per token and layer) is replicated on every tensor-parallel
rank, and a GQA cache is replicated once tp exceeds the KV heads; under attention data parallelism it is not.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import llmsizer
from llmsizer.cli.app import app
from llmsizer.memory import estimate_memory
from llmsizer.memory.inference import kv_bytes_per_token
from llmsizer.workload import Engine, Mode, Precision, Quant, Workload
from llmsizer.workload.job import Layout


@pytest.fixture(scope="module")
def cat():
    return llmsizer.load_catalog(user_dir=False)


def _work(**kw) -> Workload:
    return Workload(mode=Mode.inference, precision=Precision.fp8, quant=Quant.fp8, engine=Engine.sglang,
                    prompt_tokens=1000, output_tokens=1000, **kw)


def test_mla_cache_is_split_not_replicated(cat):
    # DeepSeek-V3: 61 layers x (512 + 64) latent elements x 2 bytes (bf16 cache) per token, on every TP rank;
    # under attention DP over 8 GPUs a token of the replica costs one eighth of that on average
    m, w = cat.model("deepseek-v3"), _work()
    full = 61 * (512 + 64) * 2
    assert kv_bytes_per_token(m, w, Layout(tp=8)) == pytest.approx(full)
    assert kv_bytes_per_token(m, w, Layout(tp=8, attention_dp=True)) == pytest.approx(full / 8)


def test_gqa_cache_stops_replicating_past_the_kv_heads(cat):
    # Qwen3-235B-A22B has 4 KV heads: TP8 keeps one head per rank (each replicated twice); attention DP does not.
    # Llama 3.1 70B has 8: at TP8 both layouts hold the same KV per token.
    w = _work()
    qwen, llama = cat.model("qwen3-235b-a22b"), cat.model("llama-3.1-70b")
    assert kv_bytes_per_token(qwen, w, Layout(tp=8, attention_dp=True)) == pytest.approx(
        kv_bytes_per_token(qwen, w, Layout(tp=8)) / 2)
    assert kv_bytes_per_token(llama, w, Layout(tp=8, attention_dp=True)) == pytest.approx(
        kv_bytes_per_token(llama, w, Layout(tp=8)))


def test_every_gpu_holds_the_whole_attention_weights(cat):
    # the attention projections are not split, so each GPU stores 7/8 of them more; the experts are split the same
    # way. DeepSeek-V3's MLA projections from its config.json (hidden 7168, q_lora_rank 1536, kv_lora_rank 512,
    # 128 heads, qk_nope 128 + qk_rope 64, v 128), per layer: q_a 7168 x 1536, q_b 1536 x 128 x 192,
    # kv_a 7168 x 576, kv_b 512 x 128 x 256, o 128 x 128 x 7168 = 187,105,280; x 61 layers = 11.41e9, one byte each
    # in FP8 (the 128 x 128 block scales add ~0.03%)
    m, g, w = cat.model("deepseek-v3"), cat.gpu("h200"), _work()
    tp = estimate_memory(m, g, w, Layout(tp=8, ep=8)).weights_bytes
    adp = estimate_memory(m, g, w, Layout(tp=8, ep=8, attention_dp=True)).weights_bytes
    assert adp - tp == pytest.approx(61 * 187_105_280 * (1 - 1 / 8), rel=0.01)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})


ARGS = ("plan", "--model", "deepseek-r1", "--quant", "fp8", "--precision", "fp8", "--gpu", "h200", "--gpus", "8",
        "--tp", "8", "--prompt-tokens", "1000", "--output-tokens", "1000", "--concurrency", "512")


def test_attention_dp_plan_holds_more_sequences_and_says_so():
    tp = json.loads(invoke(*ARGS, "--no-attention-dp", "--format", "json").stdout)["plans"][0]
    r = invoke(*ARGS, "--attention-dp", "--format", "json")
    assert r.exit_code == 0, r.stderr
    adp = json.loads(r.stdout)["plans"][0]
    assert adp["parallelism"]["attention_dp"] is True and tp["parallelism"]["attention_dp"] is False
    # MLA: TP8 replicates the latent cache on all 8 ranks; attention DP holds ~8x the sequences (less the extra
    # attention weights each GPU now stores)
    assert adp["inference"]["max_concurrency"] > 4 * tp["inference"]["max_concurrency"]
    assert "attention-DP" in invoke(*ARGS, "--attention-dp").stdout


@pytest.mark.parametrize("engine,pairs,flag", [
    # SGLang's limits are the replica's (ServerArgs divides --max-running-requests and --chunked-prefill-size by
    # --dp-size); each vLLM DP rank is its own engine core, so its limits are per rank: 512 sequences over 8 ranks
    ("sglang", {"--tp-size": "8", "--dp-size": "8", "--max-running-requests": "512",
                "--chunked-prefill-size": "8192"}, "--enable-dp-attention"),
    ("vllm", {"--tensor-parallel-size": "1", "--data-parallel-size": "8", "--max-num-seqs": "64",
              "--max-num-batched-tokens": "8192"}, "--data-parallel-size"),
])
def test_export_carries_attention_dp(engine, pairs, flag):
    r = invoke(*ARGS, "--attention-dp", "--engine", engine, "--export", engine)
    assert r.exit_code == 0, r.stderr
    argv = r.stdout.split()
    for name, value in pairs.items():
        assert argv[argv.index(name) + 1] == value, (name, r.stdout)
    assert flag in argv


def test_attention_dp_is_refused_for_training():
    r = invoke("plan", "--model", "7b", "--mode", "finetune", "--attention-dp")
    assert r.exit_code == 2 and "--attention-dp" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_the_search_weighs_both_attention_layouts_for_moe_models():
    # not pinned: at 512 sequences of DeepSeek-R1 the tensor-parallel layout holds only ~260 (the latent cache is
    # replicated 8 times), so the attention-DP one serves more per GPU and ranks first; alone, tensor parallelism
    # streams fewer attention weights per token and wins; a dense model is never laid out attention-DP
    top = json.loads(invoke(*ARGS, "--format", "json").stdout)["plans"][0]
    assert top["parallelism"]["attention_dp"] is True
    one = [a if a != "512" else "1" for a in ARGS]
    assert json.loads(invoke(*one, "--format", "json").stdout)["plans"][0]["parallelism"]["attention_dp"] is False
    dense = json.loads(invoke("plan", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--gpus", "8", "--tp", "8",
                              "--concurrency", "512", "--all", "--format", "json").stdout)
    assert not any(p["parallelism"]["attention_dp"] for p in dense["plans"])
