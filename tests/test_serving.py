"""Serving under load (issue 17): the continuous-batching model against NVIDIA NIM's published concurrency sweep, the
open-loop queue, capacity planning for a request rate within latency targets, and the CLI around them.

Calibration data (not held out): NVIDIA NIM for LLMs Benchmarking Guide, Performance page, Llama-3.3-70B-Instruct,
NIM 1.8.0, 2 x H100 80G, fp8 TP2, 5000 input / 500 output tokens, AIPerf at fixed concurrency
(https://docs.nvidia.com/nim/benchmarking/llm/1.0.0/performance). The same rows are validate cases.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import llmsizer
from llmsizer.cli.app import app
from llmsizer.compute.serving import closed_loop, max_stable_rate, open_loop
from llmsizer.search import Constraints, plan
from llmsizer.workload import Engine, Mode, Precision, Quant, Workload
from llmsizer.workload.job import Layout

#: concurrency -> (TTFT s, ITL s) published for NIM 1.8.0 (see the module docstring)
NIM_70B = {1: (0.40677, 0.01858), 5: (0.5467, 0.02183), 25: (0.68869, 0.03875), 50: (0.83451, 0.05973),
           150: (34.79422, 0.09286), 250: (88.60532, 0.0932)}


@pytest.fixture(scope="module")
def cat():
    return llmsizer.load_catalog(user_dir=False)


@pytest.fixture(scope="module")
def nim(cat):
    """The replica model of the NIM case (TRT-LLM fp8 weights and KV cache on 2 x H100 SXM, TP2)."""
    model, gpu = cat.model("llama-3.1-70b"), cat.gpu("h100-sxm")
    w = Workload(mode=Mode.inference, precision=Precision.fp8, quant=Quant.fp8, kv_dtype="fp8",
                 engine=Engine.trt_llm, prompt_tokens=5000, output_tokens=500)
    est = llmsizer.estimate_inference(model, gpu, w, Layout(tp=2))
    return est.costs


@pytest.mark.parametrize("concurrency", sorted(NIM_70B))
def test_nim_sweep_within_tolerance(nim, concurrency):
    # below the KV slots the latencies come from the step mix (TTFT 25%, ITL 10%); past them (150, 250) TTFT is
    # the wait for a slot (Little's law, 20%) and ITL the saturated mix (15%: +12% today, the prompts' share of
    # the rounds amplifying any prefill error)
    ttft, itl = NIM_70B[concurrency]
    load = closed_loop(nim, concurrency)
    saturated = concurrency > nim.capacity
    assert load.ttft_seconds == pytest.approx(ttft, rel=0.20 if saturated else 0.25)
    assert load.tpot_seconds == pytest.approx(itl, rel=0.15 if saturated else 0.10)


def test_ttft_grows_with_load_as_published(nim):
    # the published sweep: TTFT doubles from 1 to 50 clients, then jumps ten-fold once requests wait for KV slots
    c1, c50, c150 = (closed_loop(nim, c).ttft_seconds for c in (1, 50, 150))
    assert 1.5 < c50 / c1 < 3.0  # published 2.05
    assert c150 / c50 > 10  # published 41.7
    assert 80 < nim.capacity < 110  # ~85-95 sequences of 5,500 tokens in the fp8 cache saturate the published sweep


def test_open_loop_latency_grows_with_the_rate_and_saturates(nim):
    top = max_stable_rate(nim)
    assert top > 0
    low, mid = open_loop(nim, 0.2 * top, (0.95,)), open_loop(nim, 0.8 * top, (0.95,))
    assert low.stable and mid.stable
    assert low.ttft_seconds < mid.ttft_seconds and low.tpot_seconds < mid.tpot_seconds
    p50, p95 = dict(mid.ttft_percentiles)[0.5], dict(mid.ttft_percentiles)[0.95]
    assert p50 <= mid.ttft_seconds * 1.05 <= p95 * 1.05  # the wait's tail is above its mean
    assert not open_loop(nim, 1.5 * top).stable


def _serving_plan(cat, rate: float, **c):
    w = Workload(mode=Mode.inference, request_rate=rate, prompt_tokens=2000, output_tokens=300)
    return plan(cat, cat.model("llama-3.1-70b"), w, Constraints(gpu_ids=("h100-sxm",), **c))


def test_capacity_plan_meets_its_targets_and_scales_with_the_rate(cat):
    c = dict(ttft_target_s=1.0, tpot_target_s=0.05, top=3)
    small, large = _serving_plan(cat, 5.0, **c), _serving_plan(cat, 40.0, **c)
    for r in (small, large):
        assert r.any_fit
        for p in r.plans:
            load = p.inference.load
            assert p.inference.sla_met is True
            assert dict(load.ttft_percentiles)[0.95] <= 1.0 and dict(load.tpot_percentiles)[0.95] <= 0.05
            assert p.inference.requests_per_second == pytest.approx(r.workload.request_rate, rel=0.01)
    g_small, g_large = small.plans[0].gpu_count, large.plans[0].gpu_count
    assert 4 <= g_large / g_small <= 12  # 8x the rate: about 8x the GPUs (bigger replicas batch better)


def test_an_unreachable_target_is_said(cat):
    r = _serving_plan(cat, 5.0, ttft_target_s=0.001)
    assert not r.any_fit


def test_moe_expert_parallel_inside_the_tp_group_is_answerable(cat):
    # Qwen3-235B-A22B FP8 on 8 H200 with TRT-LLM, TP8 EP8: experts split over the TP ranks (issue 17)
    w = Workload(mode=Mode.inference, precision=Precision.fp8, quant=Quant.fp8, engine=Engine.trt_llm,
                 concurrency=64)
    r = plan(cat, cat.model("qwen3-235b-a22b"), w, Constraints(gpu_ids=("h200",), gpu_count=8, tp=8, ep=8))
    assert r.any_fit
    lay = r.plans[0].layout
    assert (lay.tp, lay.ep, lay.dp) == (8, 8, 1)


def test_ollama_serves_one_request_at_a_time_by_default(cat):
    # OLLAMA_NUM_PARALLEL defaults to 1: a second client waits a whole request for the slot
    model, gpu = cat.model("llama-3.1-8b"), cat.gpu("rtx-4090")
    w = Workload(mode=Mode.inference, engine=Engine.ollama, quant=Quant.q4_k_m, prompt_tokens=512, output_tokens=256)
    one = llmsizer.estimate_inference(model, gpu, w, Layout())
    two = llmsizer.estimate_inference(model, gpu, w.with_(concurrency=2), Layout())
    life = one.ttft_seconds + 255 * one.tpot_seconds
    assert one.costs.capacity == 1
    assert two.ttft_seconds == pytest.approx(one.ttft_seconds + life, rel=0.05)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMSIZER_CONFIG_DIR", str(tmp_path / "no-user-config"))
    monkeypatch.setenv("NO_COLOR", "1")


def test_ollama_sizes_the_weights_it_downloads_by_default():
    # `ollama pull llama3.1:8b` fetches 8b-instruct-q4_K_M, 4.9GB (ollama.com/library/llama3.1): without --quant the
    # plan sizes those weights and says so; llama.cpp itself keeps 16-bit weights unless told otherwise
    r = invoke("plan", "--model", "llama-3.1-8b", "--gpu", "m2-pro", "--engine", "ollama", "--format", "json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["workload"]["quant"] == "q4_k_m"
    assert doc["plans"][0]["fits"]
    assert doc["plans"][0]["memory_per_gpu"]["weights_bytes"] == pytest.approx(4.9e9, rel=0.03)
    assert "ollama downloads q4_k_m" in r.stderr
    plain = json.loads(invoke("plan", "--model", "llama-3.1-8b", "--gpu", "m2-pro", "--engine", "llama.cpp",
                              "--format", "json").stdout)
    assert plain["workload"]["quant"] == "none"
    # --quant none, said: Ollama's 16-bit tags (8b-instruct-fp16, 16GB), no default applied and no note
    r = invoke("plan", "--model", "llama-3.1-8b", "--gpu", "m2-max", "--engine", "ollama", "--quant", "none",
               "--format", "json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["workload"]["quant"] == "none" and "ollama downloads" not in r.stderr
    assert doc["plans"][0]["memory_per_gpu"]["weights_bytes"] == pytest.approx(16.1e9, rel=0.03)


def test_without_an_engine_macs_and_cpus_are_sized_with_llama_cpp_beside_vllm_gpus():
    # vLLM, SGLang and TensorRT-LLM need CUDA or ROCm: a whole-catalog answer sizes Apple SoCs and CPU sockets with
    # llama.cpp (its bandwidth efficiency and step costs, data/compute.yaml), each plan naming its engine
    r = invoke("plan", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--gpu", "m2-max", "--gpu", "epyc-9654-2s",
               "--format", "json")
    assert r.exit_code == 0, r.stderr
    engines = {p["gpu"]["id"]: p["engine"] for p in json.loads(r.stdout)["plans"]}
    assert engines == {"h100-sxm": "vllm", "m2-max": "llama.cpp", "epyc-9654-2s": "llama.cpp"}
    assert "llama.cpp on Apple silicon and CPUs" in r.stderr
    # the same Mac alone, as before: llama.cpp for the whole answer; and an engine named applies to every plan
    alone = json.loads(invoke("plan", "--model", "llama-3.1-8b", "--gpu", "m2-max", "--format", "json").stdout)
    mixed = {p["gpu"]["id"]: p for p in json.loads(r.stdout)["plans"]}
    assert alone["plans"][0]["inference"]["tpot_seconds"] == pytest.approx(mixed["m2-max"]["inference"]["tpot_seconds"])
    named = json.loads(invoke("plan", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--gpu", "m2-max",
                              "--engine", "sglang", "--format", "json").stdout)
    assert {p["engine"] for p in named["plans"]} == {"sglang"}
    # a llama.cpp plan is not exported as a vLLM server
    ex = invoke("plan", "--model", "llama-3.1-8b", "--gpu", "m2-max", "--export", "vllm")
    assert ex.exit_code == 2 and "sized for llama.cpp on m2-max" in ex.stderr


def test_cli_capacity_plan_json():
    r = invoke("plan", "--model", "llama-3.1-8b", "--request-rate", "3000/min", "--ttft-target", "500ms",
               "--tpot-target", "40ms", "--percentile", "p99", "--gpu", "h100-sxm", "--format", "json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["workload"]["request_rate"] == pytest.approx(50.0)
    assert doc["workload"]["load"] == "open" and doc["workload"]["sla_percentile"] == 0.99
    top = doc["plans"][0]["inference"]
    assert top["sla_met"] is True and top["replicas"] >= 1
    assert top["ttft_percentiles_seconds"]["p99"] <= 0.5 and top["tpot_percentiles_seconds"]["p99"] <= 0.04
    assert [s["concurrency"] for s in top["sweep"]][:3] == [1, 2, 4]


@pytest.mark.parametrize("args,fragment", [
    (("--ttft-target", "500"), "500ms"),
    (("--tpot-target", "fast"), "500ms"),
    (("--percentile", "150"), "--percentile"),
    (("--request-rate", "-3"), "--request-rate"),
    (("--request-rate", "5/day"), "1200/min"),
])
def test_cli_refuses_misread_serving_options(args, fragment):
    r = invoke("plan", "--model", "8b", *args)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in r.stderr


def test_default_inference_is_one_full_context_sequence_on_one_card():
    # seed question: "13B INT4 on an RTX 3090": one card holds it for one user; the note says how many fit
    r = invoke("plan", "--model", "llama-2-13b", "--quant", "int4", "--gpu", "rtx-3090", "--format", "json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["plans"][0]["gpu_count"] == 1
    assert any("such sequences at once" in n for n in doc["notes"])


def test_html_sweep_chart_is_inline_svg(tmp_path):
    r = invoke("plan", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--sweep", "--format", "html")
    assert r.exit_code == 0, r.stderr
    assert '<svg class="sweep"' in r.stdout and "<script" not in r.stdout


def test_disaggregated_pools_meet_their_targets(cat):
    # DistServe-style split: the decode replicas' rounds carry no prompts, so a tight TPOT target needs fewer GPUs
    # than co-located serving at the same rate (Zhong et al. 2024, DistServe, sec. 6: the gain is largest when
    # both TTFT and TPOT targets are tight)
    c = dict(ttft_target_s=0.4, tpot_target_s=0.02, top=1)
    w = Workload(mode=Mode.inference, request_rate=20.0, prompt_tokens=4000, output_tokens=300)
    model = cat.model("llama-3.1-70b")
    split = plan(cat, model, w, Constraints(gpu_ids=("h100-sxm",), disaggregate=True, **c))
    colocated = plan(cat, model, w, Constraints(gpu_ids=("h100-sxm",), **c))
    p = split.plans[0]
    assert p.fits and 0 < p.layout.prefill_replicas < p.layout.dp
    load = p.inference.load
    assert dict(load.ttft_percentiles)[0.95] <= 0.4 and dict(load.tpot_percentiles)[0.95] <= 0.02
    assert p.gpu_count < colocated.plans[0].gpu_count


def test_disaggregate_needs_a_request_rate():
    r = invoke("plan", "--model", "8b", "--disaggregate")
    assert r.exit_code == 2 and "--request-rate" in r.stderr and "Traceback" not in r.stderr


def test_k8s_export_of_a_capacity_plan_carries_replicas_and_engine_limits():
    import yaml

    # a target the cheapest deployment meets with one-node replicas (TP4 x 3 at 20 req/s; at 50 ms it is TP8 PP2,
    # one copy across two nodes, which a Deployment cannot run)
    args = ("plan", "--model", "llama-3.1-70b", "--request-rate", "20", "--ttft-target", "1s", "--tpot-target", "60ms",
            "--gpu", "h100-sxm")
    doc = json.loads(invoke(*args, "--format", "json").stdout)
    top = doc["plans"][0]
    r = invoke(*args, "--export", "k8s")
    assert r.exit_code == 0, r.stderr
    deployment = next(d for d in yaml.safe_load_all(r.stdout) if d and d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == top["inference"]["replicas"] == top["parallelism"]["dp"]
    argv = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert argv[argv.index("--max-num-seqs") + 1] == str(top["inference"]["replica_concurrency"])
    assert argv[argv.index("--tensor-parallel-size") + 1] == str(top["parallelism"]["tp"])
    assert "--max-num-batched-tokens" in argv


def test_a_disaggregated_plan_is_not_exported_as_colocated():
    r = invoke("plan", "--model", "llama-3.1-70b", "--request-rate", "20", "--ttft-target", "400ms",
               "--tpot-target", "20ms", "--prompt-tokens", "4000", "--output-tokens", "300", "--gpu", "h100-sxm",
               "--disaggregate", "--export", "k8s")
    assert r.exit_code == 2 and "Dynamo" in r.stderr and "Traceback" not in r.stderr


def test_apple_silicon_defaults_to_llama_cpp():
    # seed question "7B on a Mac": vLLM does not run on Metal; the plan serves with llama.cpp and says so
    r = invoke("plan", "--model", "7b", "--gpu", "m2-pro", "--quant", "q4_k_m", "--format", "json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["workload"]["engine"] == "llama.cpp" and doc["plans"][0]["fits"]
    assert any("llama.cpp on this hardware" in n for n in doc["notes"])


def test_speculative_decoding_yields_the_expected_tokens_per_step(cat):
    # Leviathan et al. 2023, eq. 1: k drafts accepted at rate a yield (1 - a^(k+1)) / (1 - a) tokens per step; at a
    # small batch the step stays bound by the weights' bytes, so TPOT falls by about that factor
    model, gpu = cat.model("llama-3.1-8b"), cat.gpu("h100-sxm")
    w = Workload(mode=Mode.inference, concurrency=1)
    plain = llmsizer.estimate_inference(model, gpu, w, Layout())
    spec = llmsizer.estimate_inference(model, gpu, w.with_(speculative_tokens=3, speculative_acceptance=0.7), Layout())
    assert plain.tpot_seconds / spec.tpot_seconds == pytest.approx((1 - 0.7 ** 4) / 0.3, rel=0.05)
    # at a large batch the verification of 4 tokens per sequence makes the step compute-bound: the gain shrinks
    big = w.with_(concurrency=256)
    gain_big = (llmsizer.estimate_inference(model, gpu, big, Layout()).tpot_seconds
                / llmsizer.estimate_inference(model, gpu, big.with_(speculative_tokens=3), Layout()).tpot_seconds)
    assert gain_big < plain.tpot_seconds / spec.tpot_seconds


def test_a_speculative_plan_is_not_exported_without_its_drafts():
    r = invoke("plan", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--speculative-tokens", "3", "--export", "vllm")
    assert r.exit_code == 2 and "--speculative-tokens" in r.stderr and "Traceback" not in r.stderr
