"""Only layouts that can run, and ties that prefer less hardware (issue 18), on the seed questions."""

from __future__ import annotations

import pytest

from llmsizer.catalog import load_catalog
from llmsizer.errors import InvalidInputError
from llmsizer.search import Constraints, SortKey, plan
from llmsizer.search.ranking import Ranker
from llmsizer.search.space import pipeline_split
from llmsizer.workload import Mode, Offload, Quant, Recompute, Workload, resolved


@pytest.fixture(scope="module")
def cat():
    return load_catalog(user_dir=False)


def test_ties_prefer_one_gpu_for_qlora_8b_on_rtx_4090(cat):
    # a 24 GB card holds QLoRA 8B (Dettmers et al. 2023 sec. 1); data-parallel copies only multiply the hourly
    # price and the tokens/s alike, the same cost per token, so the single card ranks first, then 2, then 4
    w = Workload(mode=Mode.qlora, quant=Quant.nf4)
    plans = plan(cat, cat.model("llama-3.1-8b"), w, Constraints(gpu_ids=("rtx-4090",), top=3)).plans
    assert [p.gpu_count for p in plans] == [1, 2, 4]
    assert plans[1].training.tokens_per_second == pytest.approx(2 * plans[0].training.tokens_per_second, rel=0.01)


def test_pipeline_chunks_split_the_layers_of_llama2_70b(cat):
    # Llama 2 70B has 80 layers: "TP4 PP32 VPP3" (96 chunks) cannot run; Megatron-LM's uneven split keeps the middle
    # stages equal and gives the first and last stages a layer per chunk at least
    model = cat.model("llama-2-70b")
    w = Workload(mode=Mode.pretrain, seq_len=4096, tokens=2e12)
    plans = plan(cat, model, w, Constraints(gpu_ids=("a100-40gb-sxm",), top=10)).plans
    assert plans and all(p.fits for p in plans)
    for p in plans:
        lay = p.layout
        split = pipeline_split(model.layers, lay.pp, lay.virtual_stages)
        assert split is not None, lay
        first, middle, last = split
        assert first + middle * max(lay.pp - 2, 0) + (last if lay.pp > 1 else 0) == model.layers
    with pytest.raises(InvalidInputError, match="cannot split"):
        plan(cat, model, w, Constraints(gpu_ids=("a100-40gb-sxm",), pp=32, gpu_count=512))


def test_llama3_405b_uneven_pipeline_is_allowed():
    # Llama 3 405B: 126 layers on 16 stages, one layer fewer on the first and the last (Dubey et al. 2024 sec. 3.3.2)
    assert pipeline_split(126, 16) == (7, 8, 7)
    assert pipeline_split(126, 16, 4) == (7, 8, 7)  # chunks of 2, 2, 2, 1 layers on the first and last stage
    assert pipeline_split(126, 16, 8) == (7, 8, 7)  # 128 chunks: one holds the embedding, one the output layer
    assert pipeline_split(124, 16, 8) is None  # two chunks would be empty
    assert pipeline_split(80, 32) is None and pipeline_split(80, 32, 3) is None
    assert pipeline_split(80, 16, 5) == (5, 5, 5)


def test_zero_stage_labels_only_with_data_parallelism(cat):
    # ZeRO shards over data-parallel ranks: with dp = 1 (and no offload) every stage is stage 0
    w = Workload(mode=Mode.qlora, quant=Quant.nf4, tokens=1e8)
    r = plan(cat, cat.model("llama-2-7b"), w, Constraints(top=30))
    single = [p for p in r.plans if p.layout.dp == 1 and p.layout.offload is Offload.none]
    assert single
    assert all(p.layout.zero == 0 for p in single)


def test_micro_batch_never_exceeds_the_global_batch_per_replica(cat):
    # micro-batch x dp x accumulation = the global batch: 16 sequences per step over dp = 4 leave 4 per replica
    model = cat.model("llama-2-7b")
    w = Workload(mode=Mode.qlora, quant=Quant.nf4, tokens=1e8, global_batch_tokens=16 * 2048)
    r = plan(cat, model, w, Constraints(top=30, gpu_ids=("h100-sxm", "mi300x", "a100-80gb-sxm")))
    seqs = resolved(model, w).global_batch_tokens / resolved(model, w).seq_len
    assert r.plans
    for p in r.plans:
        assert p.layout.micro_batch <= max(1.0, seqs / p.layout.dp), p.layout
        assert p.training.global_batch_tokens <= 16 * 2048 * 1.0001


@pytest.mark.parametrize("gpu_id", ["l40s", "rtx-a6000"])
def test_qlora_65b_on_one_48gb_card_keeps_the_4bit_base_on_the_gpu(cat, gpu_id):
    # QLoRA's own set-up: 65B fine-tuned on one 48 GB GPU, 4-bit base on the GPU with gradient checkpointing
    # (Dettmers et al. 2023, abstract and sec. 4); offload is the last resort (Hugging Face Transformers, DeepSpeed
    # integration: "How to Choose Which ZeRO Stage and Offloads To Use For Best Performance")
    w = Workload(mode=Mode.qlora, quant=Quant.nf4, tokens=1e8)
    best = plan(cat, cat.model("llama-65b"), w, Constraints(gpu_ids=(gpu_id,), gpu_count=1)).plans[0]
    assert best.fits
    assert best.layout.offload is Offload.none
    assert best.layout.recompute is not Recompute.none


def test_a_cost_within_the_tie_tolerance_ranks_fewer_gpus_first():
    # 2 GPUs at a hair under twice the tokens/s of one: no real saving, so the smaller machine ranks first; a real
    # saving (5%) still wins
    r = Ranker(SortKey.cost, 512)
    one = r.training(1000.0, (1, 1, 24e9), 1.0)
    assert one < r.training(2000.0 * (1 + 1e-3), (2, 1, 48e9), 2.0)
    assert one > r.training(2000.0 * 1.05, (2, 1, 48e9), 2.0)
