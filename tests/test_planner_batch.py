"""The pretraining global batch grows with the run (issue 18), as published runs grew theirs."""

from __future__ import annotations

import pytest

from llmsizer.catalog import load_catalog
from llmsizer.search import Constraints, plan
from llmsizer.workload import Mode, Workload
from llmsizer.workload.defaults import pretrain_global_batch_tokens

M = 2**20


@pytest.fixture(scope="module")
def cat():
    return load_catalog(user_dir=False)


def test_the_default_batch_doubles_with_the_gpu_count():
    # Llama 2 and early Llama 3: 4M tokens; Llama 3 405B on 16,384 H100: 16M (Dubey et al. 2024 sec. 3.4.1, Table 4)
    assert pretrain_global_batch_tokens(8) == 4 * M
    assert pretrain_global_batch_tokens(4096) == 4 * M
    assert pretrain_global_batch_tokens(8192) == 8 * M
    assert pretrain_global_batch_tokens(16384) == 16 * M
    assert pretrain_global_batch_tokens(10**6) == 16 * M


def test_llama31_405b_on_16k_h100_without_a_batch_runs_near_metas_mfu(cat):
    # Meta: 405B on 16,384 H100 at BF16 MFU 38-43% (Table 4), 30.84M H100-hours for 15.6T tokens (Llama 3.1 model
    # card) = 78 days on 16,384 GPUs. With the 4M-token default kept at this scale the plan came out at MFU 12%
    model = cat.model("llama-3.1-405b")
    c = Constraints(gpu_ids=("h100-sxm",), gpu_count=16384)
    best = plan(cat, model, Workload(mode=Mode.pretrain, tokens=15.6e12), c).plans[0]
    assert best.fits
    assert best.training.global_batch_tokens >= 16 * M
    assert 0.33 < best.training.mfu < 0.5
    assert 55 < best.training.seconds / 86400 < 110
    small = plan(cat, model, Workload(mode=Mode.pretrain, tokens=15.6e12, global_batch_tokens=4 * M), c)
    assert small.plans[0].training.mfu < 0.25  # a batch the user pins is kept, and the plan says it limits them
    assert "batch_limits_dp" in [n.code for n in small.notes]


def test_small_runs_keep_the_4m_default(cat):
    r = plan(cat, cat.model("llama-2-7b"), Workload(mode=Mode.pretrain, tokens=1e11),
             Constraints(gpu_ids=("h100-sxm",), max_gpus=512))
    assert r.plans[0].fits and r.plans[0].training.global_batch_tokens <= 4 * M * 1.01
    assert "global_batch_scaled" not in [n.code for n in r.notes]
