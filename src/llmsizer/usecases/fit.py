"""The reverse question: on hardware the user already has, which catalog models run, how, and how fast.

For each model this tries the best precision first (bf16, then fp8, int8, 4-bit; QLoRA: nf4) on exactly the
given GPUs, through the same planner as ``plan`` (so the layout is searched the same way), and reports the first
that fits with the longest context it allows. Apple SoCs and CPU sockets serve with llama.cpp (vLLM, SGLang and
TensorRT-LLM need a CUDA or ROCm GPU), so there inference is sized with its profile and its GGUF formats (16-bit,
then Q8_0, Q4_K_M, Q3_K_M), as ``plan`` does for them.
"""

from __future__ import annotations

from llmsizer.catalog import Catalog, load_catalog
from llmsizer.errors import InvalidInputError
from llmsizer.record import record
from llmsizer.search import Plan, plan
from llmsizer.specs import GpuSpec, ModelSpec
from llmsizer.specs.architecture import count_params
from llmsizer.workload import (
    Constraints,
    Engine,
    Mode,
    Precision,
    Quant,
    SortKey,
    Workload,
)
from llmsizer.workload.defaults import serves_with_llama_cpp

_INFERENCE_TRIES = ((Precision.bf16, Quant.none), (Precision.bf16, Quant.fp8), (Precision.bf16, Quant.int8),
                    (Precision.bf16, Quant.int4), (Precision.bf16, Quant.q4_k_m), (Precision.bf16, Quant.q3_k_m))
#: llama.cpp's GGUF ladder (the formats people download for Macs and CPUs)
_GGUF_TRIES = ((Precision.bf16, Quant.none), (Precision.bf16, Quant.q8_0), (Precision.bf16, Quant.q4_k_m),
               (Precision.bf16, Quant.q3_k_m))
_TRAIN_SEQ = (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)


@record
class FitRow:
    model: ModelSpec
    fits: bool
    precision: str
    quant: str
    max_context: int  # tokens per sequence: KV capacity at concurrency 1 (inference) or longest seq_len (training)
    max_concurrency: int  # inference: sequences of --context that fit at once; training: 0
    tokens_per_second: float  # inference: output tokens/s at --concurrency; training: tokens/s
    plan: Plan | None
    # a model that does not fit, at the lightest precision fit tries (``needs_quant``): how many of these GPUs it
    # takes (None: more than the mode's --max-gpus default) and the memory per GPU it needs on the given count
    needs_gpus: int | None = None
    needs_bytes: float | None = None
    needs_quant: str = ""


def _tries(gpu: GpuSpec, mode: Mode) -> tuple[tuple[Precision, Quant], ...]:
    if mode is Mode.inference and serves_with_llama_cpp(gpu):
        return _GGUF_TRIES
    if mode is Mode.inference:
        return tuple(t for t in _INFERENCE_TRIES if t[1] is not Quant.fp8 or "fp8" in gpu.dense_tflops)
    if mode is Mode.qlora:
        return ((Precision.bf16, Quant.nf4),)
    return ((Precision.bf16, Quant.none),)


def fit_model(cat: Catalog, model: ModelSpec, gpu: GpuSpec, gpus: int, base: Workload) -> FitRow:
    """The best precision/quantization of ``model`` that fits on ``gpus`` x ``gpu``, and its longest context."""
    c = Constraints(gpu_ids=(gpu.id,), gpu_count=gpus, sort=SortKey.time, top=1)
    for precision, quant in _tries(gpu, base.mode):
        w = base.with_(precision=precision, quant=quant)
        if base.mode is Mode.inference:
            w = w.with_(context=min(base.context_tokens, model.max_context))
            r = plan(cat, model, w, c)
            best = next((p for p in r.plans if p.fits), None)
            if best is None or best.inference is None:
                continue
            capacity = best.inference.max_concurrency * w.context_tokens
            return FitRow(model, True, precision.value, quant.value, min(model.max_context, capacity),
                          best.inference.max_concurrency, best.inference.tokens_per_second, best)
        longest, best = 0, None
        for s in _TRAIN_SEQ:
            if s > model.max_context:
                break
            r = plan(cat, model, w.with_(seq_len=s, micro_batch=1), c)
            p = next((p for p in r.plans if p.fits), None)
            if p is None:
                break
            longest, best = s, p
        if best is not None and best.training is not None:
            return FitRow(model, True, precision.value, quant.value, longest, 0, best.training.tokens_per_second,
                          best)
    return misfit(cat, model, gpu, gpus, base)


def misfit(cat: Catalog, model: ModelSpec, gpu: GpuSpec, gpus: int, base: Workload) -> FitRow:
    """What a model that fits no way on ``gpus`` x ``gpu`` would need, at the lightest precision fit tries (and the
    shortest sequence, micro-batch 1, for training): the fewest of these GPUs that hold it (the planner, sorted by
    GPU count, up to the mode's default --max-gpus) and the memory per GPU of the closest layout on ``gpus``."""
    precision, quant = _tries(gpu, base.mode)[-1]
    w = base.with_(precision=precision, quant=quant)
    if base.mode is Mode.inference:
        w = w.with_(context=min(base.context_tokens, model.max_context))
    else:
        w = w.with_(seq_len=min(_TRAIN_SEQ[0], model.max_context), micro_batch=1)
    here = plan(cat, model, w, Constraints(gpu_ids=(gpu.id,), gpu_count=gpus, sort=SortKey.gpus, top=1,
                                           include_unfit=True))
    need = min((p.memory.total_bytes for p in here.plans), default=None)
    more = plan(cat, model, w, Constraints(gpu_ids=(gpu.id,), sort=SortKey.gpus, top=1))
    fewest = next((p.gpu_count for p in more.plans if p.fits), None)
    return FitRow(model, False, "", "", 0, 0, 0.0, None, needs_gpus=fewest, needs_bytes=need, needs_quant=quant.value)


def fit(cat: Catalog, gpu: GpuSpec, gpus: int, base: Workload, models: list[ModelSpec]) -> list[FitRow]:
    """One row per model, sorted by size."""
    rows = [fit_model(cat, m, gpu, gpus, base) for m in models]
    rows.sort(key=lambda r: (count_params(r.model).total, r.model.id))
    return rows


@record
class FitResult:
    """``llmsizer fit``'s answer: the hardware asked about and one row per model, smallest first."""

    gpu: GpuSpec
    gpu_count: int
    mode: Mode
    rows: list[FitRow]
    engine: Engine | None = None  # inference: the engine the rows are sized for

    @property
    def any_fit(self) -> bool:
        return any(r.fits for r in self.rows)


def fit_request(gpu_id: str, gpus: int, mode: Mode, context: int | None, concurrency: int, model_id: str | None,
                family: str | None, catalog_files: tuple[str, ...] = ()) -> FitResult:
    """The ``fit`` use case: which catalog models (or ``model_id``) run on ``gpus`` x ``gpu_id``."""
    from llmsizer.usecases.plan import resolve_model

    if mode is Mode.pretrain:
        raise InvalidInputError("{mode}: fit answers inference, lora, qlora or finetune; for pretraining use 'plan'",
                                fields=("mode",))
    cat = load_catalog(tuple(catalog_files))
    gpu = cat.gpu(gpu_id)
    if model_id is not None:
        models = [resolve_model(cat, model_id, None)[0]]
    else:
        models = models_of_family(cat, family)
    base = Workload(mode=mode, context=context, concurrency=concurrency)
    if mode is Mode.inference and serves_with_llama_cpp(gpu):
        base = base.with_(engine=Engine.llama_cpp)
    return FitResult(gpu, gpus, mode, fit(cat, gpu, gpus, base, models),
                     engine=base.engine if mode is Mode.inference else None)


def models_of_family(cat: Catalog, family: str | None) -> list[ModelSpec]:
    """Every catalog model, or those of ``family`` (an ``InvalidInputError`` listing the families if none)."""
    models = list(cat.models.values())
    if not family:
        return models
    models = [x for x in models if x.family.lower() == family.lower()]
    if not models:
        fams = sorted({x.family for x in cat.models.values()})
        raise InvalidInputError(f"no model of family '{family}'; families: {', '.join(fams)}")
    return models
