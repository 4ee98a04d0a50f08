"""pytest-benchmark suite (issue 10). Timing never fails a test; CI runs it once to prove it works:

    pytest benchmarks --benchmark-disable        # each benchmark runs once, as a plain test
    pytest benchmarks                            # timings (min/median/ops) from pytest-benchmark

In-process benchmarks time one search (catalog loaded); ``test_cli_*`` time a whole fresh ``llmsizer`` process.
benchmarks/run.py prints the same as ratios to the import floor; docs/performance.md has the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmsizer.catalog import load_catalog
from llmsizer.search import Constraints, SortKey, plan
from llmsizer.workload import Mode, Workload

BIN = str(Path(sys.executable).with_name("llmsizer"))


@pytest.fixture(scope="module")
def cat():
    return load_catalog(user_dir=False)


def _search(cat, model_id: str, w: Workload, c: Constraints):
    return plan(cat, cat.model(model_id), w, c)


@pytest.mark.parametrize("label,model_id,w,c", [
    ("70b-finetune", "llama-3.1-70b", Workload(mode=Mode.finetune), Constraints()),
    ("70b-finetune-time", "llama-3.1-70b", Workload(mode=Mode.finetune, tokens=1e9), Constraints(sort=SortKey.time)),
    ("405b-pretrain-16k", "llama-3.1-405b", Workload(mode=Mode.pretrain, seq_len=4096, tokens=8.1e12),
     Constraints(max_gpus=16384)),
    ("mixtral-pretrain", "mixtral-8x7b", Workload(mode=Mode.pretrain, seq_len=4096, tokens=1e12), Constraints()),
    ("8b-qlora", "llama-3.1-8b", Workload(mode=Mode.qlora), Constraints()),
    ("8b-inference", "llama-3.1-8b", Workload(mode=Mode.inference), Constraints()),
    ("70b-finetune-budget", "llama-3.1-70b", Workload(mode=Mode.finetune, tokens=1e10),
     Constraints(budget_usd=5000)),
    ("70b-serving-sla", "llama-3.1-70b",
     Workload(mode=Mode.inference, request_rate=20.0, prompt_tokens=2000, output_tokens=300),
     Constraints(ttft_target_s=1.0, tpot_target_s=0.05)),
])
def test_search(benchmark, cat, label, model_id, w, c):
    r = benchmark(_search, cat, model_id, w, c)
    assert r.any_fit and r.plans[0].fits


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1")
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=env, check=False)


def test_cli_help(benchmark):
    r = benchmark.pedantic(_cli, args=("--help",), rounds=5, warmup_rounds=1)
    assert r.returncode == 0 and "plan" in r.stdout


@pytest.mark.parametrize("args", [
    ("plan", "--model", "70b", "--mode", "finetune", "--format", "json"),
    ("plan", "--model", "llama-3.1-405b", "--mode", "pretrain", "--max-gpus", "16384", "--format", "json"),
], ids=["70b-finetune-json", "405b-pretrain-json"])
def test_cli_plan(benchmark, args):
    r = benchmark.pedantic(_cli, args=args, rounds=5, warmup_rounds=1)
    assert r.returncode == 0
    assert json.loads(r.stdout)["plans"][0]["fits"]


# ------------------------------------------------------------------- the estimators the search calls most often
# (the search calls them through the cells; these are the public, one-layout-at-a-time entry points)


def test_estimate_memory(benchmark, cat):
    from llmsizer.memory import estimate_memory
    from llmsizer.workload import Layout

    model, gpu = cat.model("llama-3.1-8b"), cat.gpu("h100-sxm")
    w = Workload(mode=Mode.finetune, seq_len=2048, framework="fsdp")  # a stack that runs all of these layouts
    layouts = [Layout(tp=t, pp=p, dp=d, zero=z) for t in (1, 2, 4, 8) for p in (1, 2, 4) for d in (1, 8)
               for z in (0, 1, 2, 3)]

    def every_layout():
        return [estimate_memory(model, gpu, w, lay).total_bytes for lay in layouts]

    assert all(b > 0 for b in benchmark(every_layout))


def test_estimate_training(benchmark, cat):
    from llmsizer.compute import estimate_training
    from llmsizer.workload import Layout, Recompute

    model, gpu = cat.model("llama-3.1-70b"), cat.gpu("h100-sxm")
    w = Workload(mode=Mode.pretrain, seq_len=4096, tokens=1e12)
    lay = Layout(tp=8, pp=4, dp=16, zero=1, recompute=Recompute.selective)
    assert benchmark(estimate_training, model, gpu, w, lay).tokens_per_second > 0
