"""The least recomputation that fits, per ZeRO stage, for one cell at one (offload, micro-batch): the memory walk
``search/engine.py`` times layouts from. Each function returns what it found and how many memory evaluations it
made (the search counts them)."""

from __future__ import annotations

from llmsizer.memory import TrainingCell
from llmsizer.workload.choices import Offload, Recompute


def staircase(mem: TrainingCell, usable: float, zs: list[int], offload: Offload, recomputes: list[Recompute],
              micro: int) -> tuple[list[tuple[Recompute, int]], int]:
    """For each ZeRO stage in ``zs``, the least recomputation that fits. Memory falls as the stage rises, so the
    least fitting recompute index never rises along ``zs``: at most len(zs) + len(recomputes) memory evaluations."""
    hits = []
    evaluated = 0
    ri = 0  # least recompute index that might fit at this stage
    for z in zs:
        ri = min(ri, len(recomputes) - 1)
        fit = None
        while True:  # walk down while a lighter recompute also fits, or up until one fits
            evaluated += 1
            if mem.total_bytes(z, offload, recomputes[ri], micro) <= usable:
                fit = ri
                if ri == 0:
                    break
                ri -= 1
                continue
            if fit is not None:
                ri = fit
                break
            if ri + 1 >= len(recomputes):
                break
            ri += 1
        if fit is not None:
            ri = fit
            hits.append((recomputes[fit], z))
        else:
            ri = 0  # nothing fits at this stage; a higher stage starts from the lightest again
    return hits, evaluated


def any_fits(mem: TrainingCell, usable: float, zs: list[int], offload: Offload, recomputes: list[Recompute],
             micro: int) -> tuple[bool, int]:
    """Whether ``staircase`` would find anything, i.e. any (recompute, stage) fits; the most frugal first."""
    evaluated = 0
    for rc in reversed(recomputes):
        for z in reversed(zs):
            evaluated += 1
            if mem.total_bytes(z, offload, rc, micro) <= usable:
                return True, evaluated
    return False, evaluated
