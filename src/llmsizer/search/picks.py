"""The default answer, shaped like "what servers do I need": the best plan per GPU type (``Search.per_type``), and
the picks a reader looks for first, each labelled in ``Plan.picked_as`` and shown even when it is not among the
rows:

- ``cheapest``: the lowest cost per token (``--sort cost``'s first plan);
- ``quickest``: the shortest time per token (``--sort time``'s first plan);
- ``smallest``: the least hardware that fits: fewest GPUs, fewest nodes, then the lowest price per hour (rented
  before owned, as under ``--sort cost``), the least GPU memory, then cost per token.

The search's own order gives its first row; each other pick is kept while the search walks (the best timed layout
under that order) and, for training, searched again under its own order (top 1, branch and bound seeded with what
the first walk found), so it is the best in the whole space, not only among the layouts the first walk timed.
Inference walks every cell, so what it kept is already the best.
"""

from __future__ import annotations

from llmsizer.catalog import Catalog
from llmsizer.search.engine import Search
from llmsizer.search.ranking import SMALLEST, Ranker
from llmsizer.search.result import Plan
from llmsizer.specs.gpu import GpuSpec
from llmsizer.specs.model import ModelSpec
from llmsizer.workload.choices import SortKey
from llmsizer.workload.job import Constraints, Workload

#: each pick and the order it is the first plan of
PICKS: dict[str, SortKey | str] = {"cheapest": SortKey.cost, "quickest": SortKey.time, "smallest": SMALLEST}


def own_pick(sort: SortKey) -> str | None:
    """The pick that is the first plan under ``--sort`` itself (none for ``gpus``)."""
    return next((name for name, order in PICKS.items() if order is sort), None)


def attach(search: Search) -> None:
    """Have ``search`` keep the best layout under every pick order but its own."""
    for name, order in PICKS.items():
        if order is not search.c.sort:
            search.pick_rankers[name] = Ranker(order, search.w.output_tokens)


def rows(search: Search, top: int) -> list[tuple]:
    """The answer's rows: the best entry per GPU type (per (GPU type, GPU count) without ``per_type``), best first,
    equal keys in enumeration order (GPU list order, then GPU count)."""
    out, seen = [], set()
    for entry in sorted(search.best.values(), key=lambda v: (v[0], v[1][:2])):
        group = entry[2].id if search.per_type else (entry[2].id, entry[3].gpu_count)
        if group not in seen:
            seen.add(group)
            out.append(entry)
            if len(out) == top:
                break
    return out


def find(catalog: Catalog, model: ModelSpec, w: Workload, c: Constraints, gpus: list[GpuSpec],
         search: Search) -> dict[str, tuple]:
    """Pick name -> the search entry (rank key, order, gpu, layout, usable) that is first under its order."""
    out: dict[str, tuple] = {}
    for name, ranker in search.pick_rankers.items():
        seed = search.pick_best.get(name)
        if seed is None:
            continue
        if search.training:
            again = Search(catalog, model, w, c.with_(top=1, include_unfit=False), order=ranker.sort)
            again.memory_near_misses = False
            again._kth = seed[0]  # only what beats the seed can change the pick
            again._groups_cache = search._groups_cache  # the same cells (they do not depend on the order)
            again.run(gpus, runs=search.runs)
            search.evaluated += again.evaluated
            found = min(again.best.values(), key=lambda v: (v[0], v[1]), default=None)
            if found is not None and found[0] < seed[0]:
                seed = found
        out[name] = seed
    return out


def same(plan: Plan, gpu: GpuSpec, layout) -> bool:
    return plan.gpu.id == gpu.id and plan.layout == layout


def label(plans: list[Plan], sort: SortKey, picked: dict[str, tuple[GpuSpec, object]]) -> list[Plan]:
    """``plans`` (best first) with ``picked_as`` set: the search's own pick on the first fitting plan, the others
    on the plan each was found as."""
    from llmsizer.record import replace

    names: dict[int, list[str]] = {}
    own = own_pick(sort)
    first = next((i for i, p in enumerate(plans) if p.fits), None)
    if first is None:
        return plans
    for name in PICKS:
        if name == own:
            names.setdefault(first, []).append(name)
        elif name in picked:
            gpu, layout = picked[name]
            i = next((i for i, p in enumerate(plans) if p.fits and same(p, gpu, layout)), None)
            if i is not None:
                names.setdefault(i, []).append(name)
    return [replace(p, picked_as=tuple(names[i])) if i in names else p for i, p in enumerate(plans)]
