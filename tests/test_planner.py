"""The planner: exhaustive on small spaces (against brute force), constraints hold, ranking, known-good layouts."""

from __future__ import annotations

import itertools

import pytest

from llmsizer.catalog import load_catalog
from llmsizer.compute import estimate_training, micro_batches_per_step
from llmsizer.data.frameworks import layout_problem
from llmsizer.memory import estimate_memory, usable_memory_bytes
from llmsizer.render.i18n import say
from llmsizer.search import Constraints, Search, SortKey, gpu_counts, plan
from llmsizer.search.space import pipeline_split
from llmsizer.workload import Layout, Mode, Offload, Quant, Recompute, Workload, resolved


@pytest.fixture(scope="module")
def cat():
    return load_catalog(user_dir=False)


def test_gpu_counts_are_whole_nodes_past_one_node():
    counts = gpu_counts(8, 16384)
    assert counts[:8] == [1, 2, 4, 8, 16, 24, 32, 48]  # 1, 2, 3, 4, 6 nodes ...
    assert all(c % 8 == 0 for c in counts[3:])
    assert counts[-1] <= 16384 and counts[-1] >= 8192
    assert gpu_counts(1, 1) == [1]


def _brute_force_best(cat, model, w, gpu, n, per_node, c):
    """Every (tp, pp, dp, zero, offload, recompute, micro, v) on n GPUs, no pruning: the best fitting rank key.
    The planner's rules, restated: pipeline chunks split the layers; a micro-batch never exceeds the step's
    sequences per replica; offload only in a layout where nothing fits without it."""
    s = Search(cat, model, w, c)
    rw = resolved(model, w)
    usable = usable_memory_bytes(gpu, w)
    best = None
    for tp, pp in itertools.product((1, 2, 4, 8), (1, 2, 4, 8)):
        if n % (tp * pp) or tp > per_node or model.heads % tp or pp > model.layers:
            continue
        if pipeline_split(model.layers, pp) is None:
            continue
        dp = n // (tp * pp)
        eps = [e for e in (1, 2, 4, 8) if model.moe and dp % e == 0 and model.moe.experts % e == 0] or [1]
        # interleaved pipeline chunks (pretraining): v <= 8 that split the layers (pipeline_split), and the
        # micro-batches per step a multiple of pp
        vs = [v for v in range(1, 9)
              if v == 1 or (w.mode is Mode.pretrain and pp > 1 and pipeline_split(model.layers, pp, v) is not None)]
        per_replica = rw.global_batch_tokens / rw.seq_len / dp
        mbs = [b for b in (1, 2, 4, 8, 16) if b == 1 or b <= per_replica]
        for ep, v in itertools.product(eps, vs):
            fits_on_gpu = False
            for off in (Offload.none, Offload.cpu):
                if off is Offload.cpu and fits_on_gpu:
                    continue
                for zero, rc, mb in itertools.product((0, 1, 2, 3), list(Recompute), mbs):
                    if off is not Offload.none and zero == 0:
                        continue
                    if v > 1 and micro_batches_per_step(rw, dp, mb) % pp:
                        continue
                    if s.prof is not None and layout_problem(s.prof, tp, pp, dp, ep, zero, off, v, n) is not None:
                        continue  # a layout the training stack cannot run is never a plan
                    lay = Layout(tp=tp, pp=pp, dp=dp, ep=ep, zero=zero, offload=off, recompute=rc, micro_batch=mb,
                                 gpus_per_node=per_node, virtual_stages=v)
                    p = s.evaluate(gpu, lay, usable)
                    if p.fits:
                        fits_on_gpu = fits_on_gpu or off is Offload.none
                        k = s.rank_key(p)
                        best = k if best is None or k < best else best
    return best


@pytest.mark.parametrize("model_id,mode,gpu_id,sort", [
    ("llama-3.2-1b", Mode.finetune, "a100-80gb-sxm", SortKey.cost),
    ("llama-3.1-8b", Mode.finetune, "rtx-4090", SortKey.cost),
    ("llama-3.1-8b", Mode.lora, "l4", SortKey.cost),
    ("llama-3.1-8b", Mode.pretrain, "h100-sxm", SortKey.time),
    ("qwen2.5-3b", Mode.pretrain, "a100-40gb-sxm", SortKey.time),
    ("mixtral-8x7b", Mode.finetune, "h100-sxm", SortKey.time),
])
def test_search_matches_brute_force_on_small_spaces(cat, model_id, mode, gpu_id, sort):
    model, gpu = cat.model(model_id), cat.gpu(gpu_id)
    w = Workload(mode=mode, seq_len=2048, tokens=1e9)
    c = Constraints(gpu_ids=(gpu_id,), max_gpus=8, top=50, sort=sort)
    result = plan(cat, model, w, c)
    found = {p.gpu_count: Search(cat, model, w, c).rank_key(p) for p in result.plans if p.fits}
    # cards without a scale-out fabric (GeForce) are sized as single machines
    for n in gpu_counts(gpu.gpus_per_node, 8 if gpu.scaleout_gbps else min(8, gpu.gpus_per_node)):
        want = _brute_force_best(cat, model, w, gpu, n, gpu.gpus_per_node, c)
        got = found.get(n)
        assert (want is None) == (got is None), f"{n} GPUs: brute force {want}, planner {got}"
        if want is not None:
            flat = lambda k: [y for x in k for y in (x if isinstance(x, tuple) else (x,))]  # noqa: E731
            assert flat(got) == pytest.approx(flat(want), rel=1e-9), f"{n} GPUs: planner missed a better layout"


def test_pinned_options_always_hold(cat):
    model = cat.model("llama-3.1-70b")
    w = Workload(mode=Mode.finetune, seq_len=4096, tokens=1e9, framework="fsdp")  # FSDP + TP runs both pins
    c = Constraints(gpu_ids=("h100-sxm", "a100-80gb-sxm"), gpu_count=32, tp=4, zero=3, top=20, include_unfit=True)
    result = plan(cat, model, w, c)
    assert result.plans
    for p in result.plans:
        assert p.gpu.id in ("h100-sxm", "a100-80gb-sxm")
        assert p.gpu_count == 32 and p.layout.tp == 4 and p.layout.zero == 3


def test_max_gpus_and_no_tensor_parallelism_across_nodes(cat):
    model = cat.model("llama-3.1-70b")
    w = Workload(mode=Mode.pretrain, seq_len=4096, tokens=1e11)
    result = plan(cat, model, w, Constraints(max_gpus=256, top=40))
    assert result.plans
    for p in result.plans:
        assert p.gpu_count <= 256
        assert p.layout.tp <= p.layout.gpus_per_node


@pytest.mark.parametrize("sort", list(SortKey))
def test_ranking_is_sorted(cat, sort):
    model = cat.model("llama-3.1-8b")
    w = Workload(mode=Mode.lora, seq_len=2048, tokens=1e8)
    c = Constraints(sort=sort, top=10, max_gpus=16)
    result = plan(cat, model, w, c)
    s = Search(cat, model, w, c)
    keys = [s.rank_key(p) for p in result.plans if p.fits]
    assert len(keys) >= 3
    assert keys == sorted(keys)


def test_405b_pretraining_keeps_tp8_in_the_node_and_llama3_layout_fits(cat):
    # Llama 3 405B was trained with TP 8 inside the node and PP 16 across nodes on 16,384 H100s, 16M-token
    # batches of 8,192-token sequences (Dubey et al. 2024, sec. 3.3.2 and Table 4)
    model = cat.model("llama-3.1-405b")
    w = Workload(mode=Mode.pretrain, seq_len=8192, tokens=15.6e12, global_batch_tokens=16 * 2**20)
    best = plan(cat, model, w, Constraints(gpu_ids=("h100-sxm",), gpu_count=16384, sort=SortKey.time, top=1)).plans[0]
    assert best.fits and best.layout.tp == 8  # the whole NVLink domain: 405B needs all of it
    meta = plan(cat, model, w, Constraints(gpu_ids=("h100-sxm",), gpu_count=16384, tp=8, pp=16, top=1)).plans[0]
    assert meta.fits
    assert 0.15 < meta.training.mfu < 0.5


def test_7b_qlora_fits_one_24gb_card(cat):
    # QLoRA (Dettmers et al. 2023, sec. 1): 4-bit base + adapters bring 7B fine-tuning onto one consumer GPU
    model = cat.model("llama-2-7b")
    w = Workload(mode=Mode.qlora, quant=Quant.nf4, seq_len=2048, tokens=1e8)
    result = plan(cat, model, w, Constraints(gpu_ids=("rtx-4090", "rtx-3090"), gpu_count=1))
    assert result.any_fit
    assert result.plans[0].gpu_count == 1


def test_nothing_fits_gives_suggestions(cat):
    model = cat.model("llama-3.1-70b")
    w = Workload(mode=Mode.finetune, seq_len=2048, tokens=1e9)
    result = plan(cat, model, w, Constraints(gpu_ids=("rtx-4090",), gpu_count=1, offload=Offload.none))
    assert not result.any_fit
    assert result.plans and not result.plans[0].fits and result.plans[0].reasons
    assert any("lora" in say(s) for s in result.suggestions)


def test_offload_makes_70b_finetune_fit_one_24gb_card_with_a_terabyte_of_ram(cat):
    # ZeRO-Infinity (Rajbhandari et al. 2021) trains models whose states live in CPU memory: with ZeRO-3 and
    # offload, 70B x 16 B/param (about 1.1 TB) sits in host RAM and the GPU holds a layer at a time
    model = cat.model("llama-3.1-70b")
    w = Workload(mode=Mode.finetune, seq_len=2048, tokens=1e9)
    top = plan(cat, model, w, Constraints(gpu_ids=("rtx-4090",), gpu_count=1)).plans[0]
    assert top.fits and top.layout.offload is Offload.cpu and top.layout.zero == 3
    assert top.memory.host_offload_bytes > 16 * 70e9 * 0.95
    assert top.server.ram_bytes >= top.memory.host_offload_bytes


def test_every_fitting_plan_is_within_usable_memory(cat):
    model = cat.model("mixtral-8x7b")
    for mode in (Mode.inference, Mode.finetune):
        w = Workload(mode=mode, seq_len=2048, tokens=1e9)
        for p in plan(cat, model, w, Constraints(top=20)).plans:
            mem = estimate_memory(model, p.gpu, w, p.layout)
            assert p.fits == (mem.total_bytes <= p.usable_memory_bytes) or p.reasons
            if p.fits:
                assert mem.total_bytes <= p.usable_memory_bytes


def test_more_gpus_in_the_same_layout_family_is_not_slower(cat):
    model = cat.model("llama-3.1-8b")
    gpu = cat.gpu("h100-sxm")
    w = Workload(mode=Mode.pretrain, seq_len=4096, tokens=1e12)
    times = [estimate_training(model, gpu, w, Layout(dp=n, zero=1, recompute=Recompute.selective, micro_batch=2)
                               ).seconds for n in (8, 16, 32, 64)]
    assert all(a >= b for a, b in zip(times, times[1:]))


def test_pinned_gpu_count_allows_odd_pipeline_degrees(cat):
    # 6 x H100 for Qwen2.5-72B inference: TP must divide 64 heads... and 6 GPUs, so TP2 x PP3 is the layout
    # (vLLM supports pipeline parallelism of any degree) for one replica serving 16 sequences; every plan uses
    # exactly the pinned count
    w = Workload(mode=Mode.inference, concurrency=16)
    r = plan(cat, cat.model("qwen2.5-72b"), w, Constraints(gpu_ids=("h100-sxm",), gpu_count=6, dp=1, top=10))
    assert r.any_fit
    assert all(p.gpu_count == 6 and p.layout.tp * p.layout.pp * p.layout.dp == 6 for p in r.plans)
    assert any(p.layout.pp == 3 for p in r.plans if p.fits)


def test_an_impossible_deadline_shows_the_quickest_layouts(cat):
    # nothing trains 2T tokens of a 70B model in a day on A100s: the near misses are the quickest layouts (what
    # --sort time without the deadline ranks first), each saying by how much it misses, not the smallest ones
    model = cat.model("llama-2-70b")
    w = Workload(mode=Mode.pretrain, seq_len=4096, tokens=2e12)
    c = Constraints(gpu_ids=("a100-80gb-sxm",), deadline_s=86400, top=3)
    r = plan(cat, model, w, c)
    assert not r.any_fit and len(r.plans) == 3
    quickest = plan(cat, model, w, Constraints(gpu_ids=("a100-80gb-sxm",), sort=SortKey.time, top=3)).plans
    assert [(p.gpu_count, p.layout) for p in r.plans] == [(p.gpu_count, p.layout) for p in quickest[:3]]
    assert all(p.memory.total_bytes <= p.usable_memory_bytes for p in r.plans)
    assert all(any("past the deadline of 1.0 days" in say(x) for x in p.reasons) for p in r.plans)
    seconds = [p.training.seconds for p in r.plans]
    assert seconds == sorted(seconds)


def test_an_impossible_budget_shows_the_cheapest_layouts(cat):
    model = cat.model("llama-2-70b")
    w = Workload(mode=Mode.pretrain, seq_len=4096, tokens=2e12)
    r = plan(cat, model, w, Constraints(gpu_ids=("a100-80gb-sxm",), budget_usd=1000, top=2))
    cheapest = plan(cat, model, w, Constraints(gpu_ids=("a100-80gb-sxm",), top=2)).plans
    assert not r.any_fit
    assert [(p.gpu_count, p.layout) for p in r.plans] == [(p.gpu_count, p.layout) for p in cheapest[:2]]
    assert all(any("over the budget of $1,000" in say(x) for x in p.reasons) for p in r.plans)


def test_sort_time_orders_plans_by_the_training_time_they_show(cat):
    # issue 18: 70B pretraining --sort time listed 124,326 s before 119,116 s (ranked by steady-state tokens/s,
    # shown with the goodput of its GPU count)
    r = plan(cat, cat.model("llama-3.1-70b"), Workload(mode=Mode.pretrain, tokens=1e12),
             Constraints(sort=SortKey.time, top=10))
    seconds = [p.training.seconds for p in r.plans if p.fits]
    assert len(seconds) >= 5 and seconds == sorted(seconds)
