"""What makes the planner fast must not change what it answers (issue 10).

* the search's fast paths (``TrainingCell.total_bytes``, ``StepCell.step``, ``training_seconds``) equal
  ``estimate_memory`` / ``estimate_training`` to the last bit;
* the branch-and-bound bounds (``search/bounds.py``) never fall below the throughput they bound;
* the pruned, best-first search finds exactly what the plain exhaustive walk finds;
* the disk cache of validated catalogs is rebuilt when a source changes and never fails a run;
* a JSON plan imports neither rich nor (with a warm cache) yaml.

No test here measures time: benchmarks/ does (benchmarks/run.py, benchmarks/test_bench_plan.py).
"""

from __future__ import annotations

import itertools
import os
import pickle
import random
import subprocess
import sys

import pytest

from llmsizer import catalog as catalog_mod
from llmsizer.catalog import load_catalog
from llmsizer.compute import estimate_training, step_cell, training_seconds
from llmsizer.data import cache as diskcache
from llmsizer.data.frameworks import frameworks_for, layout_problem, profile
from llmsizer.memory import estimate_memory, training_cell
from llmsizer.search import Constraints, Search, SortKey, plan
from llmsizer.search.bounds import RECOMPUTE_COST_ORDER, TrainingThroughputBound
from llmsizer.search.evaluate import hardware
from llmsizer.workload import Engine, Layout, Mode, Offload, Optimizer, Precision, Recompute, Workload, resolved


def training_tokens_per_second(m, g, w, tp, pp, dp, ep, z, off, rc, mb, per_node, v=1):
    """What the search ranks a layout by: the step of its cell, without a TrainingEstimate."""
    lay = Layout(tp=tp, pp=pp, dp=dp, ep=ep, gpus_per_node=per_node)
    return step_cell(m, g, w, lay).step(z, off, rc, mb, v).tokens_per_second


@pytest.fixture(scope="module")
def cat():
    return load_catalog(user_dir=False)


def _random_jobs(cat, seed: int, n: int):
    """(model, gpu, training workload) triples over the whole catalog: dense, MoE, MLA, LoRA, QLoRA, fp8/fp32..."""
    rnd = random.Random(seed)
    models, gpus = list(cat.models.values()), list(cat.gpus.values())
    for _ in range(n):
        mode = rnd.choice([Mode.finetune, Mode.pretrain, Mode.lora, Mode.qlora])
        w = Workload(mode=mode, seq_len=rnd.choice([512, 2048, 8192]), precision=rnd.choice(list(Precision)),
                     optimizer=rnd.choice(list(Optimizer)), flash_attention=rnd.random() < 0.8,
                     global_batch_tokens=rnd.choice([None, 2**16, 2**22]), tokens=rnd.choice([None, 1e10]),
                     framework=rnd.choice(frameworks_for(mode)))
        yield rnd, rnd.choice(models), rnd.choice(gpus), w


# ------------------------------------------------------------------------------------- fast paths = full paths


def _runs(w, lay) -> bool:
    """Whether the job's training stack runs ``lay`` (the others are never planned, and the estimators refuse them)."""
    return layout_problem(profile(w.framework), lay.tp, lay.pp, lay.dp, lay.ep, lay.zero, lay.offload,
                          lay.virtual_stages, lay.gpu_count) is None


def test_cell_memory_equals_estimate_memory_to_the_bit(cat):
    for rnd, m, g, w in _random_jobs(cat, 1, 60):
        tp, pp, dp = rnd.choice([1, 2, 8]), rnd.choice([1, 2, 4, 16]), rnd.choice([1, 3, 64])
        ep = rnd.choice([1, 2, 8]) if m.moe else 1
        sp = rnd.random() < 0.9
        v = rnd.choice([1, 2, 4]) if pp > 1 else 1
        cell = training_cell(m, g, w, tp, pp, dp, ep, sp, v)
        for z, off, rc, mb in itertools.product(range(4), list(Offload), list(Recompute), (1, 2, 16)):
            lay = Layout(tp=tp, pp=pp, dp=dp, ep=ep, zero=z, offload=off, recompute=rc, micro_batch=mb,
                         sequence_parallel=sp, virtual_stages=v)
            if not _runs(w, lay):
                continue
            assert cell.total_bytes(z, off, rc, mb) == estimate_memory(m, g, w, lay).total_bytes, (m.id, lay)


def test_training_fast_path_equals_estimate_training_to_the_bit(cat):
    for rnd, m, g, w in _random_jobs(cat, 2, 60):
        tp, pp, dp = rnd.choice([1, 2, 8]), rnd.choice([1, 4, 16]), rnd.choice([1, 2, 24, 512])
        ep = rnd.choice([1, 2, 8]) if m.moe else 1
        per_node = rnd.choice([4, 8])
        v = rnd.choice([1, 2, 8]) if pp > 1 else 1
        for z, off, rc, mb in itertools.product(range(4), list(Offload), list(Recompute), (1, 4)):
            lay = Layout(tp=tp, pp=pp, dp=dp, ep=ep, zero=z, offload=off, recompute=rc, micro_batch=mb,
                         gpus_per_node=per_node, virtual_stages=v)
            if not _runs(w, lay):
                continue
            est = estimate_training(m, g, w, lay)
            tps = training_tokens_per_second(m, g, w, tp, pp, dp, ep, z, off, rc, mb, per_node, v)
            assert tps == est.tokens_per_second
            assert training_seconds(resolved(m, w).tokens, tps, lay.gpu_count) == est.seconds


def test_the_search_ranks_by_the_same_key_as_evaluate(cat):
    model, gpu = cat.model("mixtral-8x7b"), cat.gpu("h100-sxm")
    for sort in SortKey:
        for framework, lay in (("megatron", Layout(tp=2, dp=4, ep=2, zero=1)),
                               ("fsdp", Layout(tp=8, pp=2, dp=2, zero=3, recompute=Recompute.full))):
            w = Workload(mode=Mode.finetune, tokens=1e9, framework=framework)
            s = Search(cat, model, w, Constraints(sort=sort))
            p = s.evaluate(gpu, lay, gpu.usable_memory_bytes)
            tps = training_tokens_per_second(model, gpu, w, lay.tp, lay.pp, lay.dp, lay.ep, lay.zero, lay.offload,
                                             lay.recompute, lay.micro_batch, lay.gpus_per_node)
            price = s.price(gpu).usd_per_gpu_hour
            hw = hardware(gpu, lay.gpu_count, lay.gpus_per_node)
            assert s.training_key(tps, hw, price * lay.gpu_count) == s.rank_key(p)


# ---------------------------------------------------------------------------------------------------- bounds


def test_throughput_bounds_hold_on_random_layouts(cat):
    for rnd, m, g, w in _random_jobs(cat, 3, 80):
        rcs = rnd.sample(list(Recompute), rnd.randint(1, 3))
        zs = rnd.sample([0, 1, 2, 3], rnd.randint(1, 4))
        offs = rnd.sample(list(Offload), rnd.randint(1, 3))
        mbs = [1, 2, 4, 8, 16]
        bound = TrainingThroughputBound(m, g, w, rcs, zs, offs, mbs)
        tp, pp, dp = rnd.choice([1, 2, 8]), rnd.choice([1, 2, 8]), rnd.choice([1, 2, 8, 128, 1024])
        ep = rnd.choice([1, 2, 8]) if m.moe else 1
        per_node = rnd.choice([4, 8])
        v = rnd.choice([1, 2, 8]) if pp > 1 else 1
        cb = bound.cell(tp, pp, dp, ep, per_node, v)
        assert cb.best == max(cb.at(o, b) for o in offs for b in mbs)
        vs = sorted({1, v, 4 if pp > 1 else 1})
        group = bound.group(tp, pp, dp, ep, per_node, vs)  # the cells that differ only in v, bounded at once
        assert group.best >= cb.best
        # the group's first bound: its dp-independent terms and the bubble alone
        assert bound.compute_bound(tp, pp, dp, ep, per_node, vs, mbs) >= group.best
        for z, off, rc, mb, vi in itertools.product(zs, offs, rcs, mbs, vs):
            lay = Layout(tp=tp, pp=pp, dp=dp, ep=ep, zero=z, offload=off, recompute=rc, micro_batch=mb,
                         gpus_per_node=per_node, virtual_stages=vi)
            if not _runs(w, lay):
                continue
            est = estimate_training(m, g, w, lay)
            assert est.tokens_per_second <= group.at(off, mb), (m.id, g.id, lay)
            if vi != v:
                continue
            assert est.tokens_per_second <= cb.at(off, mb), (m.id, g.id, lay)
            assert est.tokens_per_second <= bound.per_gpu_count(lay.gpu_count)
            if est.seconds is not None:
                assert bound.seconds_lower_bound(lay.gpu_count, cb.at(off, mb)) <= est.seconds


def test_no_layout_of_a_group_fits_with_less_recomputation_than_its_floor(cat):
    """``Pruner.floor_recompute``: memory falls as ZeRO and offload rise and grows with the micro-batch and with
    interleaving, so the least recomputation that fits the group's lightest layout is a floor for all of them."""
    checked = 0
    for rnd, m, g, w in _random_jobs(cat, 5, 60):
        s = Search(cat, m, w, Constraints())
        r = s.setup(0, g)
        tp, pp, dp = rnd.choice([1, 2, 8]), rnd.choice([1, 2, 4]), rnd.choice([1, 2, 16])
        ep = rnd.choice([1, 2]) if m.moe else 1
        vs = [1] + ([v for v in (2, 3, 4) if m.layers % (pp * v) == 0] if pp > 1 else [])
        if m.layers % pp:
            continue
        floor = s.floor_recompute(r, (tp, pp, dp, ep, 1))
        order = list(RECOMPUTE_COST_ORDER)
        for v, z, off, rc, mb in itertools.product(vs, r.zeros, r.offloads, r.recomputes, (1, 2, 4)):
            lay = Layout(tp=tp, pp=pp, dp=dp, ep=ep, zero=z, offload=off, recompute=rc, micro_batch=mb,
                         gpus_per_node=r.per_node, virtual_stages=v)
            if not _runs(s.w_for(lay.gpu_count), lay):
                continue
            if s.memory(r, (tp, pp, dp, ep, v)).total_bytes(z, off, rc, mb) <= r.usable:
                checked += 1
                assert floor is not None and order.index(rc) >= order.index(floor), (m.id, g.id, lay, floor)
    assert checked > 50  # the sample holds layouts that fit


# ------------------------------------------------------------------------------- pruned search = exhaustive walk


def _answer(s: Search, top: int):
    """What ``plan`` shows: the top per-(GPU, N) bests, then (with --all or when nothing fits) the near misses."""
    best = sorted(s.best.values(), key=lambda v: (v[0], v[1][:2]))[:top]
    near = sorted(s.unfit.values(), key=lambda v: (v[2].memory.total_bytes / v[2].usable_memory_bytes, v[1][:2]))
    return ([(k, g.id, lay) for k, _, g, lay, _ in best],
            [(p.gpu.id, p.layout, p.reasons) for _, _, p in near[:top]] if s.c.include_unfit or not best else [])


CASES = [
    ("llama-3.1-70b", Workload(mode=Mode.finetune, tokens=1e9), Constraints(max_gpus=64)),
    ("llama-3.1-70b", Workload(mode=Mode.finetune, tokens=1e9), Constraints(max_gpus=64, sort=SortKey.time, top=8)),
    ("llama-3.1-70b", Workload(mode=Mode.finetune, tokens=1e9), Constraints(max_gpus=64, sort=SortKey.gpus)),
    ("llama-3.1-8b", Workload(mode=Mode.qlora, tokens=1e8), Constraints(max_gpus=16, top=12)),
    ("mixtral-8x7b", Workload(mode=Mode.pretrain, seq_len=4096, tokens=1e11), Constraints(max_gpus=48, top=6)),
    ("llama-3.1-70b", Workload(mode=Mode.finetune, tokens=1e10),
     Constraints(max_gpus=48, budget_usd=5000, top=6)),
    ("llama-3.1-70b", Workload(mode=Mode.finetune, tokens=1e10),
     Constraints(max_gpus=48, deadline_s=2 * 86400, top=6)),
    ("llama-3.1-405b", Workload(mode=Mode.finetune, tokens=1e9),
     Constraints(gpu_ids=("rtx-4090", "l4", "a100-40gb-sxm"), max_gpus=64)),
    ("llama-3.1-405b", Workload(mode=Mode.finetune, tokens=1e10),  # nothing fits: the near misses are the answer
     Constraints(gpu_ids=("rtx-4090", "l4"), max_gpus=16, deadline_s=86400)),
    ("llama-3.1-405b", Workload(mode=Mode.finetune, tokens=1e10),
     Constraints(gpu_ids=("rtx-4090", "l4"), max_gpus=16, deadline_s=86400, include_unfit=True)),
    ("llama-3.1-70b", Workload(mode=Mode.lora, tokens=1e9), Constraints(max_gpus=32, include_unfit=True)),
    ("qwen2.5-72b", Workload(mode=Mode.finetune, tokens=1e9),
     Constraints(gpu_ids=("h100-sxm", "a100-80gb-sxm", "h100-sxm"), gpu_count=32, tp=4, top=10)),
    ("llama-3.1-70b", Workload(mode=Mode.finetune, tokens=1e9, micro_batch=2),
     Constraints(max_gpus=64, offload=Offload.cpu, zero=3, price_usd_per_gpu_hour=1.0)),
]


@pytest.mark.parametrize("model_id,w,c", CASES)
def test_pruned_search_finds_what_the_exhaustive_walk_finds(cat, model_id, w, c):
    model = cat.model(model_id)
    gpus = [cat.gpu(g) for g in c.gpu_ids] if c.gpu_ids else list(cat.gpus.values())
    pruned, full = Search(cat, model, w, c), Search(cat, model, w, c)
    pruned.run(gpus)
    full.run(gpus, prune=False)
    assert _answer(pruned, c.top) == _answer(full, c.top)
    if not c.include_unfit:  # no more layouts evaluated, but for the memory probes that bound groups of cells
        assert pruned.evaluated - pruned.floor_probes <= full.evaluated


def test_inference_fits_the_engine_reservation_at_its_tp(cat):
    # SGLang's mem_fraction_static shrinks as tp grows: every plan is sized against its own tp's reservation
    model = cat.model("llama-3.1-70b")
    r = plan(cat, model, Workload(mode=Mode.inference, engine=Engine.sglang), Constraints(top=8))
    assert any(p.layout.tp > 1 for p in r.plans)
    for p in r.plans:
        from llmsizer.memory import usable_memory_bytes

        assert p.usable_memory_bytes == usable_memory_bytes(p.gpu, r.workload, p.layout)


# ------------------------------------------------------------------------------------------------- disk cache


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMSIZER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("LLMSIZER_NO_CACHE", raising=False)
    return tmp_path / "cache"


def _counting(value):
    calls = []

    def build():
        calls.append(1)
        return value() if callable(value) else value
    return build, calls


def test_cache_is_reused_until_a_source_changes(cache_dir, tmp_path):
    src = tmp_path / "a.yaml"
    src.write_text("x: 1\n")
    build, calls = _counting({"x": 1})
    assert diskcache.cached("t", [src], build) == {"x": 1}
    assert diskcache.cached("t", [src], build) == {"x": 1}
    assert len(calls) == 1  # the second answer came from the pickle
    src.write_text("x: 22\n")  # another size (and mtime)
    build2, calls2 = _counting({"x": 22})
    assert diskcache.cached("t", [src], build2) == {"x": 22} and calls2 == [1]
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same size, newer mtime
    build3, calls3 = _counting({"x": 33})
    assert diskcache.cached("t", [src], build3) == {"x": 33} and calls3 == [1]


def test_corrupt_foreign_or_unwritable_caches_fall_back(cache_dir, tmp_path, monkeypatch):
    src = tmp_path / "a.yaml"
    src.write_text("x: 1\n")
    cache_dir.mkdir(parents=True)
    (cache_dir / "t.pickle").write_bytes(b"not a pickle")
    build, calls = _counting(7)
    assert diskcache.cached("t", [src], build) == 7 and calls == [1]
    assert diskcache.cached("t", [src], build) == 7 and calls == [1]  # rewritten, then reused
    # a pickle others may write is never loaded (pickles can run code)
    key = pickle.loads((cache_dir / "t.pickle").read_bytes())[0]
    (cache_dir / "t.pickle").write_bytes(pickle.dumps((key, 666)))
    (cache_dir / "t.pickle").chmod(0o666)
    if hasattr(os, "getuid"):
        assert diskcache.cached("t", [src], lambda: 7) == 7
    # a cache folder that cannot be created: no error, no cache
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("LLMSIZER_CACHE_DIR", str(blocker / "sub"))
    assert diskcache.cached("t", [src], lambda: 8) == 8
    monkeypatch.setenv("LLMSIZER_NO_CACHE", "1")
    build, calls = _counting(9)
    assert diskcache.cached("t", [src], build) == 9 and diskcache.cached("t", [src], build) == 9 and len(calls) == 2


def test_invalid_data_is_raised_not_cached(cache_dir, tmp_path):
    src = tmp_path / "a.yaml"
    src.write_text("x: 1\n")

    def bad():
        raise ValueError("invalid")
    for _ in range(2):
        with pytest.raises(ValueError):
            diskcache.cached("t", [src], bad)
    assert not (cache_dir / "t.pickle").exists()


def test_catalog_cache_follows_an_edited_user_catalog(cache_dir, tmp_path):
    user = tmp_path / "mine.yaml"
    gpu = cat_gpu_yaml("my-gpu", 80)
    user.write_text(gpu)
    catalog_mod._MEMO.clear()
    try:
        first = load_catalog([user], user_dir=False)
        assert first.gpu("my-gpu").memory_gib == 80
        assert any(p.name.startswith("catalog-") for p in cache_dir.iterdir())
        catalog_mod._MEMO.clear()
        again = load_catalog([user], user_dir=False)  # from the pickle
        assert again.gpu("my-gpu") == first.gpu("my-gpu") and again.models.keys() == first.models.keys()
        user.write_text(cat_gpu_yaml("my-gpu", 141))
        catalog_mod._MEMO.clear()
        assert load_catalog([user], user_dir=False).gpu("my-gpu").memory_gib == 141
        user.write_text(cat_gpu_yaml("my-gpu", 141).replace("memory_gib: 141", "memory_gib: -1"))
        catalog_mod._MEMO.clear()
        with pytest.raises(Exception, match="memory_gib"):
            load_catalog([user], user_dir=False)  # an invalid edit is reported, not served from the cache
    finally:
        catalog_mod._MEMO.clear()


def cat_gpu_yaml(gpu_id: str, gib: int) -> str:
    return f"""gpus:
  - id: {gpu_id}
    name: My GPU
    vendor: nvidia
    form_factor: SXM
    memory_gib: {gib}
    memory_bandwidth_gb_s: 3000
    dense_tflops: {{bf16: 900, fp16: 900, fp32: 60}}
    scaleup: nvlink
    scaleup_bandwidth_gb_s: 450
    scaleup_domain: 8
    tdp_watts: 700
    source: https://example.com/my-gpu-datasheet
"""


# --------------------------------------------------------------------------------------------- import hygiene


def test_a_warm_json_plan_imports_neither_typer_pydantic_rich_nor_yaml(tmp_path):
    """The start-up budget (issue 10): with a warm cache, `plan --format json` is parsed without Typer
    (cli/fast.py), unpickles plain records (no pydantic), renders JSON without Rich and parses no YAML."""
    script = (
        "import sys\n"
        "from llmsizer.cli import main\n"
        "sys.argv = ['llmsizer', 'plan', '--model', 'llama-3.1-8b', '--mode', 'qlora', '--format', 'json']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(*(m in sys.modules for m in ('typer', 'pydantic', 'rich', 'yaml')), file=sys.stderr)\n"
    )
    env = dict(os.environ, LLMSIZER_CACHE_DIR=str(tmp_path / "cache"), LLMSIZER_CONFIG_DIR=str(tmp_path / "cfg"))
    env.pop("LLMSIZER_NO_CACHE", None)
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
            for _ in range(2)]
    assert all('"schema_version"' in r.stdout for r in runs)
    assert runs[1].stdout == runs[0].stdout
    # cold: Typer is read once for the option table, the YAML parsed and validated (pydantic) once (whether
    # Rich comes along with Typer depends on the Typer version)
    typer_, pydantic_, _, yaml_ = runs[0].stderr.strip().splitlines()[-1].split()
    assert (typer_, pydantic_, yaml_) == ("True", "True", "True")
    assert runs[1].stderr.strip().splitlines()[-1] == "False False False False"  # warm: all from the cache
