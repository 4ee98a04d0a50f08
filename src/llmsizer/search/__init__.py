"""Search hardware x parallelism exhaustively, keep what fits, rank -> ``PlanResult``.

- ``space.py``: the search space (GPU counts, tp, pp, dp, ep, interleaving, ZeRO, offload, recompute,
  micro-batches) and which degrees a model allows;
- ``bounds.py``: throughput bounds for branch and bound, built from the step model's own terms;
- ``ranking.py``: prices and rank keys; ``evaluate.py``: one layout -> a ``Plan``;
- ``engine.py``: the walk (staircase over ZeRO x recompute, near misses); ``bestfirst.py``: its training order,
  best bound first over (GPU, N) entries, groups of cells and cells;
- ``advice.py``: what would make a job fit; ``result.py``: ``Plan``, ``PlanResult``, cloud offers.
Only the best layout per (GPU type, GPU count) is kept, so the top plans show different hardware choices.
"""

from __future__ import annotations

import math
import time

from llmsizer.catalog import Catalog
from llmsizer.compute.server import size_server
from llmsizer.data.frameworks import check_mode, frameworks_for, layout_problem
from llmsizer.errors import InvalidInputError, literal
from llmsizer.explain import message
from llmsizer.record import replace
from llmsizer.search import picks
from llmsizer.search.advice import advise
from llmsizer.search.engine import Search
from llmsizer.search.ranking import Ranker
from llmsizer.search.result import CloudOffer, Plan, PlanResult, cloud_offers
from llmsizer.search.space import gpu_counts, pipeline_split
from llmsizer.specs.gpu import GpuSpec
from llmsizer.specs.model import ModelSpec
from llmsizer.workload.choices import Engine, Framework, Offload, SortKey
from llmsizer.workload.defaults import (
    batch_scales_with_gpus,
    resolve_defaults,
    serves_with_llama_cpp,
)
from llmsizer.workload.job import NO_DEADLINE, Constraints, Workload


def check_pins(model: ModelSpec, c: Constraints, training: bool = False) -> None:
    """Pinned degrees that cannot work together or with the model, as field-named errors."""
    if c.gpu_count is not None:
        pinned = [x for x in (c.tp, c.pp, c.dp) if x is not None]
        if math.prod(pinned) and c.gpu_count % math.prod(pinned):
            raise InvalidInputError(f"{{gpu_count}} {c.gpu_count} is not divisible by the pinned tp x pp x dp = "
                                    f"{math.prod(pinned)}", fields=("gpu_count",))
        if c.tp and c.pp and c.dp and c.tp * c.pp * c.dp != c.gpu_count:
            raise InvalidInputError(f"{{tp}} {c.tp} x {{pp}} {c.pp} x {{dp}} {c.dp} = {c.tp * c.pp * c.dp}, not "
                                    f"{{gpu_count}} {c.gpu_count}", fields=("tp", "pp", "dp", "gpu_count"))
    if c.tp is not None and model.kv_heads % c.tp and c.tp % model.kv_heads:
        raise InvalidInputError(
            f"{{tp}} {c.tp} and the model's {model.kv_heads} KV heads do not divide one another; engines shard KV "
            f"heads over tensor-parallel ranks (or replicate them), so use a tp that divides {model.kv_heads} "
            "or a multiple of it", fields=("tp",))
    if c.tp is not None and model.heads % c.tp:
        raise InvalidInputError(f"{{tp}} {c.tp} does not divide the model's {model.heads} attention heads",
                                fields=("tp",))
    if c.pp is not None and c.pp > model.layers:
        raise InvalidInputError(f"{{pp}} {c.pp} exceeds the model's {model.layers} layers", fields=("pp",))
    if training and c.pp is not None and pipeline_split(model.layers, c.pp) is None:
        k = -(-model.layers // c.pp)
        even = ", ".join(str(p) for p in range(2, min(model.layers, 64) + 1) if model.layers % p == 0)
        raise InvalidInputError(
            f"{{pp}} {c.pp} cannot split the model's {model.layers} layers: {c.pp - 2} middle stages of {k} layers "
            f"leave none for the first and last stage (Megatron-LM's uneven split keeps the middle stages equal); "
            f"use a pp that divides {model.layers} ({even})", fields=("pp",))


def check_framework_pins(w: Workload, c: Constraints) -> None:
    """Pinned degrees the training stack cannot run, as errors naming the framework and the pinned field."""
    if not w.mode.is_training or w.framework in (None, Framework.any):
        return
    p = check_mode(w.framework, w.mode)
    pins = (("tp", c.tp, dict(tp=c.tp or 1)), ("pp", c.pp, dict(pp=c.pp or 1)), ("ep", c.ep, dict(ep=c.ep or 1)),
            ("zero", c.zero, dict(zero=c.zero or 0)), ("offload", c.offload, dict(offload=c.offload)),
            ("gpu_count", c.gpu_count, dict(gpus=c.gpu_count or 1)))
    for name, value, kw in pins:
        if value is None:
            continue
        args = dict(tp=1, pp=1, dp=1, ep=1, zero=p.layouts.zero[0], offload=Offload.none, v=1, gpus=1) | kw
        problem = layout_problem(p, **args)
        if problem is not None:
            raise InvalidInputError(f"{{{name}}} {literal(str(getattr(value, 'value', value)))}: "
                                    + literal(f"{problem}; ") + "change {framework} or drop the pin",
                                    fields=(name, "framework"))


def plan(catalog: Catalog, model: ModelSpec, workload: Workload, constraints: Constraints | None = None, *,
         explain: bool = False) -> PlanResult:
    """Every configuration that fits, best first (``constraints.top`` of them), with the server and cloud offers.
    The workload's and constraints' defaults are resolved first; their notes are the result's notes. A training
    workload with ``framework=any`` is searched once per stack that runs its mode, each plan labelled."""
    t0 = time.perf_counter()
    job = resolve_defaults(model, workload, constraints)
    w, c = job.workload, job.constraints
    if w.mode.is_training and w.framework is Framework.any:
        return _plan_any(catalog, model, w, c, list(job.notes), explain, t0)
    gpus = [catalog.gpu(g) for g in c.gpu_ids] if c.gpu_ids else list(catalog.gpus.values())
    check_pins(model, c, w.mode.is_training)
    check_framework_pins(w, c)

    search = Search(catalog, model, w, c)
    search.memory_near_misses = not search.limits
    search.per_type = len(gpus) > 1  # one row per GPU type; with one type, one per GPU count
    picks.attach(search)
    search.run(gpus)
    limit_misses: list[Plan] = []
    if not search.best and search.limits and not c.include_unfit:
        # nothing meets the deadline/budget: show the quickest (cheapest) layouts that fit in memory; only if
        # none does are the memory near misses searched for
        limit_misses = _closest_to_limits(catalog, model, w, c, gpus, search)
        if not limit_misses:
            evaluated = search.evaluated
            search = Search(catalog, model, w, c)
            search.run(gpus)
            search.evaluated += evaluated

    fitting = picks.rows(search, c.top)
    picked = picks.find(catalog, model, w, c, gpus, search) if fitting else {}
    fitting += [e for e in picked.values() if not any(e[2].id == f[2].id and e[3] == f[3] for f in fitting)]
    evaluated = search.evaluated  # what the search looked at (the winners' full evaluations below not counted)
    final = [_finish(search, catalog, search.evaluate(gpu, layout, usable), explain=False)
             for _, _, gpu, layout, usable in fitting]
    final.sort(key=search.rank_key)  # the picks among the rows, by the same key (stable: rows first)
    if explain and final:
        final[0] = _finish(search, catalog, final[0], explain=True)
    final = picks.label(final, c.sort, {name: (e[2], e[3]) for name, e in picked.items()})
    winners = list(final)
    near: list[Plan] = []
    if c.include_unfit or not final:
        near = [p for _, _, p in sorted(search.unfit.values(),
                                        key=lambda v: (v[2].memory.total_bytes / v[2].usable_memory_bytes, v[1][:2]))]
        shown = limit_misses or near[: c.top if c.include_unfit else 3]
        final += [_finish(search, catalog, p, explain=False) for p in shown]
    result = PlanResult(model, w, c, final, notes=list(job.notes) + batch_notes(w, winners), evaluated=evaluated)
    if not winners:
        result.suggestions = advise(w, c, [p for p in final if not p.fits])
    result.search_seconds = time.perf_counter() - t0
    return result


def batch_notes(w: Workload, plans: list[Plan]) -> list:
    """What the global batch does to the top plan: the default that grew with its GPU count, and a batch too small
    for its pipelines (fewer micro-batches per step than stages: the bubble idles much of each step)."""
    top = next((p for p in plans if p.fits and p.training is not None), None)
    if top is None:
        return []
    notes = []
    t, lay = top.training, top.layout
    if batch_scales_with_gpus(w) and t.global_batch_tokens > w.global_batch_tokens:
        notes.append(message("global_batch_scaled", tokens=t.global_batch_tokens, gpus=top.gpu_count,
                             default_tokens=w.global_batch_tokens))
    if lay.pp > 1 and t.grad_accumulation < lay.pp:
        bubble = (lay.pp - 1) / lay.virtual_stages
        notes.append(message("batch_limits_dp", tokens=t.global_batch_tokens, dp=lay.dp, pp=lay.pp,
                             micro_batches=t.grad_accumulation, bubble=bubble / (t.grad_accumulation + bubble)))
    return notes


def _plan_any(catalog: Catalog, model: ModelSpec, w: Workload, c: Constraints, notes: list, explain: bool,
              t0: float) -> PlanResult:
    """``framework=any``: one search per stack that runs the mode and can take the pins; per (GPU, GPU count) the
    best plan of any stack, ranked together (every stack's plans are ranked by the same key)."""
    parts: list[tuple[PlanResult, Search]] = []
    for f in frameworks_for(w.mode):
        wf = w.with_(framework=f)
        try:
            check_framework_pins(wf, c)
        except InvalidInputError:
            continue
        parts.append((plan(catalog, model, wf, c), Search(catalog, model, wf, c)))
    notes = notes + [message("framework_any", frameworks=tuple(f.value for f in frameworks_for(w.mode)))]
    return _merged(catalog, model, w, c, parts, notes, explain, t0, per_type=len(c.gpu_ids) != 1)


def plan_by_engine(catalog: Catalog, model: ModelSpec, workload: Workload, constraints: Constraints | None = None,
                   *, explain: bool = False) -> PlanResult:
    """Inference with no engine named, over GPUs of both kinds: the CUDA/ROCm GPUs with the workload's engine (vLLM
    by default) and the Apple SoCs and CPU sockets with llama.cpp (vLLM, SGLang and TensorRT-LLM need a CUDA or ROCm
    GPU; people serve on Macs and CPUs with llama.cpp or the apps built on it), ranked together, each plan naming
    its engine. With only one kind in the list this is ``plan``."""
    t0 = time.perf_counter()
    c = constraints or Constraints()
    gpus = [catalog.gpu(g) for g in c.gpu_ids] if c.gpu_ids else list(catalog.gpus.values())
    accelerators = tuple(g.id for g in gpus if not serves_with_llama_cpp(g))
    others = tuple(g.id for g in gpus if serves_with_llama_cpp(g))
    if workload.mode.is_training or not accelerators or not others:
        return plan(catalog, model, workload, c, explain=explain)
    parts = []
    for ids, w in ((accelerators, workload), (others, workload.with_(engine=Engine.llama_cpp))):
        cp = c.with_(gpu_ids=ids)
        parts.append((plan(catalog, model, w, cp), Search(catalog, model, w, cp)))
    first = parts[0][0]
    notes = list(first.notes) + [message("engine_by_kind", engine=first.workload.engine.value)]
    return _merged(catalog, model, first.workload, c, parts, notes, explain, t0, per_type=len(gpus) != 1)


def _merged(catalog: Catalog, model: ModelSpec, w: Workload, c: Constraints, parts: list[tuple[PlanResult, Search]],
            notes: list, explain: bool, t0: float, *, per_type: bool) -> PlanResult:
    """Several searches' answers as one: per GPU type (per (GPU, GPU count) without ``per_type``) the best plan of
    any, ranked together by each search's own key (they share the sort order), and the picks across them."""
    evaluated = sum(r.evaluated for r, _ in parts)
    best: dict[object, tuple] = {}
    unfit: list[Plan] = []
    chosen: dict[str, tuple] = {}  # pick name -> (its order's key, plan)
    for order, (r, ranker) in enumerate(parts):
        for p in r.plans:
            if not p.fits:
                unfit.append(p)
                continue
            key = p.gpu.id if per_type else (p.gpu.id, p.gpu_count)
            k = (ranker.rank_key(p), order)
            if key not in best or k < best[key][0]:
                best[key] = (k, p, ranker)
            for name in p.picked_as:
                pk = (ranker.rank_key(p, Ranker(picks.PICKS[name], w.output_tokens)), order)
                if name not in chosen or pk < chosen[name][0]:
                    chosen[name] = (pk, p, ranker)
    ranked = sorted(best.values(), key=lambda v: v[0])[: c.top]
    ranked += [v for v in chosen.values() if not any(v[1] is x[1] for x in ranked)]
    ranked.sort(key=lambda v: (v[2].rank_key(v[1]), v[0][1:]))
    final = [_finish(ranker, catalog, p, explain=True) if explain and i == 0 else p
             for i, (_, p, ranker) in enumerate(ranked)]
    final = picks.label([replace(p, picked_as=()) for p in final], c.sort,
                        {name: (v[1].gpu, v[1].layout) for name, v in chosen.items()})
    if not final:
        final = sorted(unfit, key=lambda p: p.memory.total_bytes / p.usable_memory_bytes)[:3]
    notes = notes + batch_notes(w, final)
    result = PlanResult(model, w, c, final, notes=notes, evaluated=evaluated)
    if not any(p.fits for p in final):
        result.suggestions = advise(w, c, final)
    result.search_seconds = time.perf_counter() - t0
    return result


def _closest_to_limits(catalog: Catalog, model: ModelSpec, w: Workload, c: Constraints, gpus: list[GpuSpec],
                       search: Search) -> list[Plan]:
    """When layouts fit in memory but every one misses the deadline or the budget, the near misses worth showing
    are the quickest (deadline) or the cheapest (budget) of them, not the smallest: the same search without the
    limit they miss, its plans evaluated against the limits (so they say by how much they miss)."""
    # a deadline the user gave (or the pretraining default when it is the only limit) is relaxed and the quickest
    # shown; a budget alone is relaxed within the default deadline, and the cheapest shown
    relax_deadline = ("deadline_s" not in c.assumed) or c.budget_usd is None
    relaxed = replace(c, deadline_s=NO_DEADLINE if relax_deadline else c.deadline_s, budget_usd=None,
                      include_unfit=False, sort=SortKey.time if relax_deadline else SortKey.cost)
    rs = Search(catalog, model, w, relaxed)
    rs.run(gpus)
    search.evaluated += rs.evaluated
    best = sorted(rs.best.values(), key=lambda v: (v[0], v[1][:2]))[: min(c.top, 3)]
    return [search.evaluate(gpu, layout, usable) for _, _, gpu, layout, usable in best]


def _finish(search: Search, catalog: Catalog, p: Plan, *, explain: bool) -> Plan:
    """Re-evaluate a plan with explanations, then add the server and the cloud offers."""
    q = search.evaluate(p.gpu, p.layout, p.usable_memory_bytes, explain=explain)
    q = replace(q, fits=p.fits, reasons=p.reasons) if q.fits != p.fits else q
    server = size_server(search.model, q.gpu, search.w, q.layout, q.memory)
    return replace(q, server=server, cloud=cloud_offers(q.gpu, q.layout, catalog))


def search_space_size(catalog: Catalog, model: ModelSpec, workload: Workload,
                      constraints: Constraints | None = None) -> int:
    """How many layouts ``plan`` answers for: every (GPU, N, tp, pp, dp, ep, v, zero, offload, recompute,
    micro-batch) in the search space, whether evaluated, pruned by a rule or bounded away (for benchmarks)."""
    job = resolve_defaults(model, workload, constraints)
    s = Search(catalog, model, job.workload, job.constraints)
    c = job.constraints
    gpus = [catalog.gpu(g) for g in c.gpu_ids] if c.gpu_ids else list(catalog.gpus.values())
    total = 0
    for gi, gpu in enumerate(gpus):
        r = s.setup(gi, gpu)
        per_cell = len(r.zeros) * len(r.offloads) * len(r.recomputes) * len(r.micros)
        total += per_cell * sum(len(s.attention_dp_options(cell[0])) for n in r.counts for cell in s.cells(r, n))
    return total


__all__ = ["CloudOffer", "Constraints", "Plan", "PlanResult", "Search", "SortKey", "check_framework_pins",
           "check_pins", "gpu_counts",
           "plan", "plan_by_engine", "search_space_size"]
