"""`llmsizer validate`: every shipped published figure runs through the plan path; errors stay where they are.

The thresholds below are the accuracy llmsizer has today (docs/accuracy.md); a change that makes the median error
of a category worse fails here. Improve the model, never a case.
"""

from __future__ import annotations

import json
import statistics

import pytest
from typer.testing import CliRunner

from llmsizer.catalog import load_catalog
from llmsizer.cli.app import app
from llmsizer.usecases.validate import load_cases, run_all, summarize

# Cases whose hardware the catalog does not carry (PaLM trained on TPU v4).
KNOWN_SKIPS = {"palm-540b-mfu"}


@pytest.fixture(scope="module")
def results():
    return run_all(load_catalog(user_dir=False))


def test_at_least_40_cited_cases_with_full_settings():
    cases = load_cases()
    assert len(cases) >= 40
    assert len({c["id"] for c in cases}) == len(cases)
    for c in cases:
        assert c["source"] and c["url"].startswith("http"), c["id"]
        assert c["category"] in ("memory", "training", "inference")
        assert c["published"] > 0 and c["setting"].get("mode"), c["id"]


def test_every_case_runs(results):
    skipped = {r.id for r in results if r.skipped}
    assert skipped <= KNOWN_SKIPS, skipped
    assert all(r.predicted is not None for r in results if not r.skipped)


def test_bounds_hold(results):
    # QLoRA paper sec. 1: ">780GB" for 16-bit fine-tuning of 65B and "<48GB" with QLoRA
    for r in results:
        if r.within_bound is not None:
            assert r.within_bound, (r.id, r.predicted, r.published)


# training: 0.09 before the training stacks (issue 16), 0.12 while Llama 2 and OPT were modelled on the cheapest
# cluster and without OPT's recomputation, back to 0.09 since (7.7%). Answer.AI's March-2024 RTX 4090 LoRA/QLoRA
# runs stay at -37% (their PEFT kept bf16 adapters; see the cases' notes).
# inference: 0.15; 0.20 while issue 17's 19 uncalibrated check cases (TensorRT-LLM's perf-overview max-throughput
# runs, Oracle's MI300X vLLM runs) read 17.9%; 0.15 again since the decode round takes its weight matmuls and its
# attention over the KV cache as separate kernels and the Llama 3.1 8B perf-overview runs an FP8 KV cache (12.7%);
# 0.10 since serving's FP8 GEMMs run at the GEMM-level speed-up and the engines pay per layer for kernel
# boundaries (8.2%).
@pytest.mark.parametrize("category,median_limit", [("memory", 0.05), ("training", 0.09), ("inference", 0.10)])
def test_median_error_per_category(results, category, median_limit):
    s = summarize(results)[category]
    assert s["median_abs_error"] <= median_limit, s


@pytest.mark.parametrize("quantity,median_limit", [("ttft_seconds", 0.15), ("tpot_seconds", 0.10)])
def test_serving_latency_medians(results, quantity, median_limit):
    # issue 17's targets on held-out runs are TTFT <= 25% and TPOT <= 10%; these are the shipped cases (NIM's 70B
    # sweep and the Hazy Research batch-1 figures are calibration): TTFT 12%, TPOT 5% (17% before the FP8 GEMM
    # speed-up and the per-layer kernel-boundary cost; InferenceX's DeepSeek-R1 sweep and one two-node TP16 run
    # are checks: see docs/serving.md)
    errs = sorted(abs(r.error) for r in results if r.category == "inference" and r.quantity == quantity
                  and r.error is not None)
    assert errs and statistics.median(errs) <= median_limit, errs


def test_every_category_reports_its_signed_bias(results):
    # the signed median sits beside the median |error|: it says whether a category is low or high overall
    for cat, s in summarize(results).items():
        signed = [r.error for r in results if r.category == cat and r.error is not None and r.comparison == "approx"]
        assert s["median_error"] == pytest.approx(statistics.median(signed)), cat
        assert abs(s["median_error"]) <= s["median_abs_error"] + 1e-12, cat


def test_pretraining_runs_are_not_biased_low(results):
    # issue 16: GPU-hours and days of the published pretraining runs (Llama 1/2/3.1, OPT, BLOOM, MPT, TinyLlama,
    # nanoGPT, DeepSeek-V3, Megatron-LM's 175B/1T estimates), signed median within +-10%. It was -21.8% when
    # Llama 2 ran on the search's cheapest 4-64 GPUs and OPT-175B without the recomputation its FLOP count includes.
    modes = {c["id"]: c["setting"].get("mode") for c in load_cases()}
    runs = [r.error for r in results if modes[r.id] == "pretrain" and r.error is not None
            and r.quantity in ("training_gpu_hours", "training_days")]
    assert len(runs) >= 19
    assert abs(statistics.median(runs)) <= 0.10, statistics.median(runs)


def test_zero_paper_model_states_within_2_percent(results):
    # Rajbhandari et al. 2020, Figure 1: 7.5B, 64 GPUs: 120 / 31.4 / 16.6 / 1.9 GB
    for r in results:
        if r.id.startswith("zero-fig1-"):
            assert abs(r.error) < 0.02, (r.id, r.error)


def test_validate_json_contract():
    r = CliRunner().invoke(app, ["validate", "--format", "json", "--category", "memory"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema_version"] == 1
    for c in doc["cases"]:
        assert {"id", "source", "quantity", "published", "predicted", "error"} <= set(c)
        if c["predicted"] is not None:
            assert c["error"] == pytest.approx(c["predicted"] / c["published"] - 1)
    assert "memory" in doc["summary"]
