"""``llmsizer models`` and ``llmsizer gpus``: the catalogs, filtered and sorted (render/ lays them out)."""

from __future__ import annotations

from llmsizer.catalog import load_catalog
from llmsizer.errors import InvalidInputError
from llmsizer.specs import CloudInstance, GpuSpec, ModelSpec
from llmsizer.specs.architecture import count_params
from llmsizer.usecases.fit import models_of_family


def list_models(family: str | None = None, min_params: float | None = None, max_params: float | None = None,
                catalog_files: tuple[str, ...] = ()) -> list[ModelSpec]:
    """Catalog models (of ``family``, within the parameter range), by family then size."""
    cat = load_catalog(tuple(catalog_files))
    ms = models_of_family(cat, family)
    if min_params is not None:
        ms = [m for m in ms if count_params(m).total >= min_params]
    if max_params is not None:
        ms = [m for m in ms if count_params(m).total <= max_params]
    return sorted(ms, key=lambda m: (m.family, count_params(m).total))


def show_model(model_id: str, catalog_files: tuple[str, ...] = ()) -> ModelSpec:
    return load_catalog(tuple(catalog_files)).model(model_id)


def list_gpus(vendor: str | None = None, min_memory_bytes: float | None = None,
              catalog_files: tuple[str, ...] = ()) -> list[GpuSpec]:
    """Catalog accelerators (of ``vendor``, with at least ``min_memory_bytes``), by vendor, memory and id."""
    cat = load_catalog(tuple(catalog_files))
    gs = list(cat.gpus.values())
    if vendor:
        gs = [g for g in gs if g.vendor == vendor.lower()]
        if not gs:
            raise InvalidInputError(f"no GPU from vendor '{vendor}'; vendors: "
                                    f"{', '.join(sorted({g.vendor for g in cat.gpus.values()}))}")
    if min_memory_bytes is not None:
        gs = [g for g in gs if g.memory_bytes >= min_memory_bytes]
    return sorted(gs, key=lambda g: (g.vendor, g.memory_bytes, g.id))


def show_gpu(gpu_id: str, catalog_files: tuple[str, ...] = ()) -> tuple[GpuSpec, list[CloudInstance]]:
    cat = load_catalog(tuple(catalog_files))
    g = cat.gpu(gpu_id)
    return g, cat.instances_for(g.id)
