"""Speed benchmarks (issue 10): start-up and search time as ratios to the import floor on this machine.

    python benchmarks/run.py            # 5 runs each, prints a table and the ratios
    python benchmarks/run.py --runs 1   # what CI does: proves the benchmarks work, never fails on timing

The import floor is the wall time of ``python -c "import typer, rich, pydantic, yaml"``: what any Typer + Rich +
pydantic CLI pays before doing anything. Targets: --help <= 1.3x, a JSON plan <= 1.5x, the 405B pretraining search
over the whole catalog <= 3x. Timings are medians of wall-clock runs in fresh processes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PY = sys.executable
BIN = str(Path(PY).with_name("llmsizer"))

CASES = [
    ("import floor", [PY, "-c", "import typer, rich, pydantic, yaml"], None),
    ("llmsizer --help", [BIN, "--help"], 1.3),
    ("plan 70b finetune --format json", [BIN, "plan", "--model", "70b", "--mode", "finetune", "--format", "json"], 1.5),
    ("plan 405b pretrain, whole catalog, <=16k GPUs, json",
     [BIN, "plan", "--model", "llama-3.1-405b", "--mode", "pretrain", "--max-gpus", "16384", "--format", "json"], 3.0),
    ("plan 405b pretrain, table", [BIN, "plan", "--model", "llama-3.1-405b", "--mode", "pretrain"], None),
]


def wall(cmd: list[str], runs: int) -> float:
    times = []
    env = dict(os.environ, NO_COLOR="1")
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def search_rate() -> tuple[int, float]:
    """Configurations evaluated per second by the 405B pretraining search, in-process (catalog already loaded)."""
    from llmsizer.catalog import load_catalog
    from llmsizer.planner import Constraints, plan
    from llmsizer.workload import Mode, Workload

    cat = load_catalog(user_dir=False)
    model = cat.model("llama-3.1-405b")
    w = Workload(mode=Mode.pretrain, seq_len=4096, tokens=15e12)
    plan(cat, model, w, Constraints(max_gpus=64))  # warm caches
    t0 = time.perf_counter()
    r = plan(cat, model, w, Constraints(max_gpus=16384))
    return r.evaluated, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    floor = None
    print(f"{'benchmark':58} {'median s':>9} {'x floor':>8} {'target':>7}")
    for name, cmd, target in CASES:
        t = wall(cmd, args.runs)
        floor = floor or t
        ratio = t / floor
        print(f"{name:58} {t:9.3f} {ratio:8.2f} {('<= ' + str(target)) if target else '':>7}")
    n, s = search_rate()
    print(f"\n405B pretraining search, in-process: {n:,} configurations in {s:.3f} s = {n / s:,.0f} configurations/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
