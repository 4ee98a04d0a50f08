"""Speed benchmarks (issue 10): start-up and search time as ratios to the import floor on this machine.

    python benchmarks/run.py            # 7 runs each (best and median), the ratios, the search rates
    python benchmarks/run.py --runs 1   # what CI does: proves the benchmarks work, never fails on timing
    python benchmarks/run.py --no-cache # the same without the disk cache (the very first run after a change)

The import floor is the wall time of ``python -c "import typer, rich, pydantic, yaml"``: what any Typer + Rich +
pydantic CLI pays before doing anything. Targets: --help <= 1.3x; the 70B fine-tuning JSON plan <= 1.0x and the 405B
pretraining search over the whole catalog <= 1.3x (issue 15; issue 10 had set 1.5x and 3x); the serving capacity
plan (a request rate and latency targets over the whole catalog) within 1 s of wall time on 2 cores (issue 17). Timings are wall-clock runs in fresh processes, after one discarded warm-up run (it
fills the disk cache of validated catalogs, as any earlier llmsizer run would have). The ratio uses the best run
of each (the least disturbed by other load); the median is printed next to it. The package's bytecode is compiled
first, as ``pip install`` does: a checkout with PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every module
on every run. docs/performance.md explains the figures.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PY = sys.executable
BIN = str(Path(PY).with_name("llmsizer"))

CASES = [
    ("import floor (typer, rich, pydantic, yaml)", [PY, "-c", "import typer, rich, pydantic, yaml"], None),
    ("llmsizer --help", [BIN, "--help"], 1.3),
    ("plan 70b finetune --format json", [BIN, "plan", "--model", "70b", "--mode", "finetune", "--format", "json"], 1.0),
    ("plan 405b pretrain, whole catalog, <=16k GPUs, json",
     [BIN, "plan", "--model", "llama-3.1-405b", "--mode", "pretrain", "--max-gpus", "16384", "--format", "json"], 1.3),
    ("plan 405b pretrain, table", [BIN, "plan", "--model", "llama-3.1-405b", "--mode", "pretrain"], None),
    ("plan 8b inference --format json", [BIN, "plan", "--model", "llama-3.1-8b", "--format", "json"], None),
    ("plan 70b serving 20 req/s, TTFT 1s TPOT 50ms, json",
     [BIN, "plan", "--model", "llama-3.1-70b", "--request-rate", "20", "--ttft-target", "1s", "--tpot-target", "50ms",
      "--prompt-tokens", "2000", "--output-tokens", "300", "--format", "json"], "1 s"),
    ("plan 70b finetune --format json, parsed by Typer",
     [PY, "-c", "from llmsizer.cli.app import app; app(args=['plan', '--model', '70b', '--mode', 'finetune', "
      "'--format', 'json'])"], None),
]

# (label, model, workload keywords, constraints keywords): the searches whose rate is reported
SEARCHES = [
    ("70b finetune, whole catalog", "llama-3.1-70b", {"mode": "finetune", "seq_len": 2048}, {}),
    ("405b pretrain, whole catalog, <=16k GPUs", "llama-3.1-405b",
     {"mode": "pretrain", "seq_len": 4096, "tokens": 20 * 405.9e9}, {"max_gpus": 16384}),
    ("mixtral-8x7b pretrain (MoE), whole catalog", "mixtral-8x7b",
     {"mode": "pretrain", "seq_len": 4096, "tokens": 1e12}, {}),
    ("8b inference, whole catalog", "llama-3.1-8b", {"mode": "inference"}, {}),
    ("70b serving at 20 req/s within SLA, whole catalog", "llama-3.1-70b",
     {"mode": "inference", "request_rate": 20.0, "prompt_tokens": 2000, "output_tokens": 300},
     {"ttft_target_s": 1.0, "tpot_target_s": 0.05}),
]


def wall(cmd: list[str], runs: int, env: dict[str, str]) -> tuple[float, float]:
    """(best, median) wall seconds of ``runs`` fresh processes, after one discarded warm-up run."""
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def search_rates() -> list[tuple[str, int, int, float]]:
    """(label, layouts in the search space, layouts evaluated, seconds) per search, in-process (catalog loaded,
    model caches cold: each search runs once, as the CLI does)."""
    from llmsizer.catalog import load_catalog
    from llmsizer.search import Constraints, plan, search_space_size
    from llmsizer.workload import Mode, Workload

    cat = load_catalog(user_dir=False)
    out = []
    for label, model_id, wkw, ckw in SEARCHES:
        model = cat.model(model_id)
        w = Workload(**{**wkw, "mode": Mode(wkw["mode"])})
        c = Constraints(**ckw)
        t0 = time.perf_counter()
        r = plan(cat, model, w, c)
        seconds = time.perf_counter() - t0
        out.append((label, search_space_size(cat, model, w, c), r.evaluated, seconds))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--no-cache", action="store_true", help="set LLMSIZER_NO_CACHE=1 (YAML parsed every run)")
    args = ap.parse_args()
    import llmsizer

    compileall.compile_dir(str(Path(llmsizer.__file__).parent), quiet=1)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["NO_COLOR"] = "1"
    if args.no_cache:
        env["LLMSIZER_NO_CACHE"] = "1"
    floor = None
    print(f"{'benchmark':58} {'best s':>7} {'median s':>9} {'x floor':>8} {'target':>7}")
    for name, cmd, target in CASES:
        best, median = wall(cmd, max(args.runs, 1), env)
        floor = floor or best
        # a number is a ratio to the floor; a string ("1 s") an absolute wall time
        print(f"{name:58} {best:7.3f} {median:9.3f} {best / floor:8.2f} {('<= ' + str(target)) if target else '':>7}")
    print(f"\n{'search (in-process, one run each)':44} {'layouts':>10} {'evaluated':>10} {'ms':>7} {'layouts/s':>12} "
          f"{'evaluated/s':>12}")
    for label, space, evaluated, seconds in search_rates():
        print(f"{label:44} {space:10,} {evaluated:10,} {seconds * 1000:7.1f} {space / seconds:12,.0f} "
              f"{evaluated / seconds:12,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
