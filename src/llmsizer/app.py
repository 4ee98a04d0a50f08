"""Use cases behind the CLI: resolve the model, build the Workload and Constraints, plan, render.

``cli.py`` parses options into ``PlanArgs`` and prints what these functions return; nothing here knows about
Typer, and every user error is raised as an ``LlmsizerError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

from llmsizer.catalog import Catalog, load_catalog
from llmsizer.errors import EXIT_NO_FIT, EXIT_OK, InvalidInputError
from llmsizer.specs import ModelSpec
from llmsizer.units import parse_count, parse_duration_s
from llmsizer.workload import Mode, Precision, Quant, Recompute, Workload

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bBmM])\s*$")
_KV_DTYPES = ("fp32", "bf16", "fp16", "fp8", "int8")


@dataclass
class PlanArgs:
    """Every ``plan`` option, as parsed by the CLI (strings where a unit suffix is allowed)."""

    model: str | None = None
    params: str | None = None
    mode: Any = Mode.inference
    precision: Any = Precision.bf16
    quant: Any = Quant.none
    optimizer: Any = None
    seq_len: int | None = None
    batch: int | None = None
    global_batch: str | None = None
    recompute: Any = None
    lora_rank: int = 16
    lora_targets: Any = None
    tokens: str | None = None
    dataset_tokens: str | None = None
    epochs: float = 1.0
    prompt_tokens: int = 1024
    output_tokens: int = 512
    context: int | None = None
    concurrency: int = 16
    engine: Any = None
    kv_dtype: str | None = None
    gpu: list[str] | None = None
    gpus: int | None = None
    tp: int | None = None
    pp: int | None = None
    dp: int | None = None
    ep: int | None = None
    zero: int | None = None
    offload: Any = None
    max_gpus: int | None = None
    gpus_per_node: int | None = None
    deadline: str | None = None
    budget: float | None = None
    price_per_gpu_hour: float | None = None
    sort: Any = "cost"
    top: int = 5
    all_: bool = False
    explain: bool = False
    export: str | None = None
    fmt: Any = "table"
    output: Path | None = None
    lang: Any = "en"
    catalog: list[Path] | None = None

    def __init__(self, **kw: Any) -> None:
        names = {f.name for f in fields(self)}
        for f in fields(self):
            setattr(self, f.name, kw.get(f.name, f.default))
        unknown = set(kw) - names
        if unknown:
            raise TypeError(f"unknown plan arguments: {sorted(unknown)}")


def _val(x: Any) -> Any:
    return getattr(x, "value", x)


def parse_positive(text: str | None, what: str) -> float | None:
    """A count option (``7B``, ``1T``, ``2e12``) as a positive number, or one-line ``InvalidInputError``."""
    if text is None:
        return None
    try:
        v = parse_count(text, what)
    except ValueError as e:
        raise InvalidInputError(str(e)) from None
    if not v > 0:
        raise InvalidInputError(f"{what} must be positive, got {text!r}")
    if v > 1e18:
        raise InvalidInputError(f"{what} {text!r} is absurdly large (limit 1e18)")
    return v


def resolve_model(cat: Catalog, model: str | None, params: str | None) -> tuple[ModelSpec, list[str]]:
    """``--model`` (catalog name, size shorthand, file, Hub id) or ``--params`` -> a ModelSpec and how it was found."""
    spec, notes, _ = resolve_model_file(cat, model, params)
    return spec, notes


def resolve_model_file(cat: Catalog, model: str | None, params: str | None) -> tuple[ModelSpec, list[str], Any]:
    """Like ``resolve_model``, plus the ``LoadedModel`` when the model came from a file or the Hub (else None)."""
    if model is not None and params is not None:
        raise InvalidInputError("give either --model or --params, not both")
    if model is None and params is None:
        raise InvalidInputError("missing --model (e.g. --model llama-3.1-8b, --model 70b) or --params (e.g. 7e9)")
    if params is not None:
        from llmsizer.derive import derive_from_params

        n = parse_positive(params, "--params")
        m, note = derive_from_params(n)  # type: ignore[arg-type]
        return m, [note], None
    assert model is not None
    if not model.strip():
        raise InvalidInputError("empty --model; run 'llmsizer models' to see the catalog")
    if cat.has_model(model):
        return cat.model(model), [], None
    size = _SIZE.match(model)
    if size:
        n = float(size.group(1)) * (1e9 if size.group(2).lower() == "b" else 1e6)
        m, note = cat.reference_for_size(n)
        return m, [note], None
    path = Path(model).expanduser()
    if path.exists() or model.endswith((".json", ".gguf", ".safetensors")) or model.startswith((".", "/", "~")):
        from llmsizer.modelfiles import load_model_file

        loaded = load_model_file(path)
        return loaded.spec, list(loaded.notes), loaded
    from llmsizer.hub import is_repo_id

    if is_repo_id(model):
        from llmsizer.hub import load_hub_model

        loaded = load_hub_model(model)
        return loaded.spec, list(loaded.notes), loaded
    return cat.model(model), [], None  # raises UnknownNameError with suggestions


def build_workload(a: PlanArgs) -> tuple[Workload, list[str]]:
    mode = Mode(_val(a.mode))
    notes: list[str] = []
    quant = Quant(_val(a.quant))
    if mode is Mode.qlora and quant is Quant.none:
        quant = Quant.nf4
    if a.kv_dtype is not None and a.kv_dtype not in _KV_DTYPES:
        raise InvalidInputError(f"unknown --kv-dtype '{a.kv_dtype}'; use one of {', '.join(_KV_DTYPES)}")
    tokens = parse_positive(a.tokens, "--tokens")
    dataset = parse_positive(a.dataset_tokens, "--dataset-tokens")
    if dataset is not None:
        if tokens is not None:
            raise InvalidInputError("give --tokens or --dataset-tokens with --epochs, not both")
        tokens = dataset * a.epochs
    seq_len = a.seq_len or (4096 if mode is Mode.pretrain else 2048)
    gb = parse_positive(a.global_batch, "--global-batch")
    kw: dict[str, Any] = dict(
        mode=mode, precision=Precision(_val(a.precision)), quant=quant, seq_len=seq_len, micro_batch=a.batch,
        global_batch_tokens=int(gb) if gb else None,
        recompute=Recompute(_val(a.recompute)) if a.recompute is not None else None, lora_rank=a.lora_rank,
        tokens=tokens, prompt_tokens=a.prompt_tokens, output_tokens=a.output_tokens, context=a.context,
        concurrency=a.concurrency, kv_dtype=a.kv_dtype,
    )
    for name in ("optimizer", "lora_targets", "engine"):
        if getattr(a, name) is not None:
            kw[name] = getattr(a, name)
    w = Workload(**kw)
    if not mode.is_training:
        ignored = [o for o, v in (("--optimizer", a.optimizer and _val(a.optimizer) != "adamw"), ("--batch", a.batch),
                                  ("--recompute", a.recompute), ("--zero", a.zero), ("--offload", a.offload),
                                  ("--tokens", a.tokens)) if v]
        if ignored:
            notes.append(f"ignored for inference: {', '.join(ignored)}")
    else:
        ignored = [o for o, v in (("--context", a.context), ("--engine", a.engine and _val(a.engine) != "vllm"))
                   if v]
        if ignored:
            notes.append(f"ignored for training: {', '.join(ignored)}")
        if mode in (Mode.finetune, Mode.pretrain) and quant is not Quant.none:
            notes.append("--quant ignored: full training keeps trainable weights in the training precision")
    return w, notes


def run_plan(a: PlanArgs, *, note: Callable[[str], None], verbose: bool = False,
             color: bool | None = None) -> tuple[str, int]:
    """The ``plan`` use case: returns the rendered text and the exit code (0 fits, 1 nothing fits)."""
    from llmsizer.planner import Constraints, SortKey, plan
    from llmsizer.render import render_plan

    cat = load_catalog(tuple(a.catalog or ()))
    model, notes, loaded = resolve_model_file(cat, a.model, a.params)
    if loaded is not None and loaded.quant and _val(a.quant) == "none" and _val(a.mode) == "inference":
        a.quant = loaded.quant
        notes.append(f"weights are stored as {loaded.quant} in the file: sizing with --quant {loaded.quant}")
    workload, wnotes = build_workload(a)
    notes += wnotes
    workload, cnotes = _fit_context(model, workload, seq_len_given=a.seq_len is not None)
    notes += cnotes
    if workload.mode is Mode.pretrain and workload.tokens is None:
        from llmsizer.architecture import count_params

        n = count_params(model).total
        workload = workload.with_(tokens=20.0 * n)
        notes.append(f"--tokens not given: assuming the Chinchilla-optimal 20 tokens per parameter = "
                     f"{20 * n / 1e9:,.0f}B tokens (Hoffmann et al. 2022, Table 3)")
    gpu_ids: list[str] = []
    for g in a.gpu or []:
        gpu_ids += [x.strip() for x in g.split(",") if x.strip()]
    for g in gpu_ids:
        cat.gpu(g)  # unknown names fail early with suggestions
    c = Constraints(
        gpus=tuple(gpu_ids), gpu_count=a.gpus, tp=a.tp, pp=a.pp, dp=a.dp, ep=a.ep, zero=a.zero,
        offload=a.offload, max_gpus=a.max_gpus, gpus_per_node=a.gpus_per_node,
        deadline_s=_deadline(a.deadline, workload, notes), budget_usd=a.budget, price_usd_per_gpu_hour=a.price_per_gpu_hour,
        sort=SortKey(_val(a.sort)), top=a.top, include_unfit=a.all_,
    )
    result = plan(cat, model, workload, c, explain=a.explain)
    top = next((p for p in result.plans if p.fits), None)
    prec = workload.precision.value
    if top is not None and prec not in top.gpu.dense_tflops and prec != "fp32":
        notes.append(f"{top.gpu.id} has no {prec} tensor cores: its compute is rated at the nearest type it has "
                     f"({', '.join(sorted(top.gpu.dense_tflops))})")
    result.notes = notes + result.notes
    for n in notes:
        note(f"note: {n}")
    if verbose:
        note(f"searched {result.evaluated:,} configurations in {result.search_seconds * 1000:.0f} ms")
    code = EXIT_OK if result.any_fit else EXIT_NO_FIT
    if a.export:
        from llmsizer.export import export_notes, export_plan

        text = export_plan(result, a.export)
        for n in export_notes(result, a.export.lower()):
            note(f"note: {n}")
        return text, code
    return render_plan(result, _val(a.fmt), lang=_val(a.lang), explain=a.explain, color=color), code


def _fit_context(model: ModelSpec, w: Workload, *, seq_len_given: bool) -> tuple[Workload, list[str]]:
    """Keep default sequence lengths within the model's context; say so when the user's exceed it."""
    notes = []
    if w.mode.is_training and w.seq_len > model.max_context:
        if seq_len_given:
            notes.append(f"--seq-len {w.seq_len:,} exceeds {model.id}'s context of {model.max_context:,} tokens "
                         "(sized as asked; the model needs context extension to train on it)")
        else:
            w = w.with_(seq_len=model.max_context)
            notes.append(f"sequence length set to {model.id}'s context of {model.max_context:,} tokens")
    if not w.mode.is_training and w.context_tokens > model.max_context:
        notes.append(f"context of {w.context_tokens:,} tokens exceeds {model.id}'s {model.max_context:,}; sized as "
                     "asked (serving engines refuse sequences past the model's context unless it is extended)")
    return w, notes


DEFAULT_PRETRAIN_DEADLINE = "365d"


def _deadline(text: str | None, w: Workload, notes: list[str]) -> float | None:
    """``--deadline``; for pretraining without one, a year: a run that takes decades is not a plan worth ranking
    first just because it is cheapest per token. ``--deadline none`` lifts it."""
    if text is not None and text.strip().lower() in ("none", "no", "off"):
        return None
    if text is None and w.mode is Mode.pretrain:
        notes.append(f"--deadline not given: pretraining plans must finish within {DEFAULT_PRETRAIN_DEADLINE} "
                     "(--deadline none lifts it)")
        text = DEFAULT_PRETRAIN_DEADLINE
    return _duration(text)


def _duration(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_duration_s(text)
    except ValueError as e:
        raise InvalidInputError(f"--deadline: {e}") from None


def list_models(model_id: str | None, family: str | None, lo: float | None, hi: float | None, fmt: str,
                lang: str, catalog: list[Path]) -> str:
    from llmsizer.architecture import count_params
    from llmsizer.render import render_model, render_models

    cat = load_catalog(tuple(catalog))
    if model_id is not None:
        return render_model(cat.model(model_id), fmt, lang)
    ms = list(cat.models.values())
    if family:
        ms = [m for m in ms if m.family.lower() == family.lower()]
        if not ms:
            fams = sorted({m.family for m in cat.models.values()})
            raise InvalidInputError(f"no model of family '{family}'; families: {', '.join(fams)}")
    if lo is not None:
        ms = [m for m in ms if count_params(m).total >= lo]
    if hi is not None:
        ms = [m for m in ms if count_params(m).total <= hi]
    ms.sort(key=lambda m: (m.family, count_params(m).total))
    return render_models(ms, fmt, lang)


def list_gpus(gpu_id: str | None, vendor: str | None, min_memory_gb: float | None, fmt: str, lang: str,
              catalog: list[Path]) -> str:
    from llmsizer.render import render_gpu, render_gpus

    cat = load_catalog(tuple(catalog))
    if gpu_id is not None:
        g = cat.gpu(gpu_id)
        return render_gpu(g, cat.instances_for(g.id), fmt, lang)
    gs = list(cat.gpus.values())
    if vendor:
        gs = [g for g in gs if g.vendor == vendor.lower()]
        if not gs:
            raise InvalidInputError(f"no GPU from vendor '{vendor}'; vendors: "
                                    f"{', '.join(sorted({g.vendor for g in cat.gpus.values()}))}")
    if min_memory_gb is not None:
        gs = [g for g in gs if g.memory_bytes >= min_memory_gb * 1e9]
    gs.sort(key=lambda g: (g.vendor, g.memory_bytes, g.id))
    return render_gpus(gs, fmt, lang)


def run_fit(gpu_id: str, gpus: int, mode: str, context: int | None, concurrency: int, model_id: str | None,
            family: str | None, fmt: str, lang: str, catalog: list[Path],
            color: bool | None = None) -> tuple[str, int]:
    """The ``fit`` use case: which catalog models run on ``gpus`` x ``gpu_id`` (CONTRACT ``fit --format json``)."""
    from llmsizer.architecture import count_params
    from llmsizer.fit import fit
    from llmsizer.render import render_fit

    cat = load_catalog(tuple(catalog))
    gpu = cat.gpu(gpu_id)
    m = Mode(mode)
    if model_id is not None:
        models = [resolve_model(cat, model_id, None)[0]]
    else:
        models = list(cat.models.values())
        if family:
            models = [x for x in models if x.family.lower() == family.lower()]
            if not models:
                fams = sorted({x.family for x in cat.models.values()})
                raise InvalidInputError(f"no model of family '{family}'; families: {', '.join(fams)}")
    base = Workload(mode=m, quant=Quant.nf4 if m is Mode.qlora else Quant.none, context=context,
                    concurrency=concurrency, tokens=None)
    rows = fit(cat, gpu, gpus, base, models)
    doc = {
        "schema_version": 1,
        "gpu": {"id": gpu.id, "name": gpu.name, "memory_bytes": gpu.memory_bytes},
        "gpu_count": gpus,
        "mode": m.value,
        "models": [{
            "id": r.model.id, "name": r.model.name, "params": count_params(r.model).total, "fits": r.fits,
            "precision": r.precision or None, "quant": r.quant or None, "max_context": r.max_context,
            "max_concurrency": r.max_concurrency, "tokens_per_second": r.tokens_per_second,
            "memory_per_gpu_bytes": int(r.plan.memory.total_bytes) if r.plan else None,
            "layout": (f"tp{r.plan.layout.tp} pp{r.plan.layout.pp} dp{r.plan.layout.dp}" if r.plan else None),
        } for r in rows],
    }
    code = EXIT_OK if any(r.fits for r in rows) else EXIT_NO_FIT
    return render_fit(doc, fmt, lang, color=color), code


def run_validate(category: str | None, fmt: str, lang: str, catalog: list[Path],
                 color: bool | None = None) -> str:
    """The ``validate`` use case: every reference case, published vs predicted (CONTRACT ``validate``)."""
    from llmsizer.render import render_validate
    from llmsizer.validate import run_all, summarize

    cat = load_catalog(tuple(catalog))
    results = run_all(cat, category)
    doc = {
        "schema_version": 1,
        "cases": [{
            "id": r.id, "category": r.category, "quantity": r.quantity, "source": r.source, "url": r.url,
            "unit": r.unit, "published": r.published, "predicted": r.predicted, "error": r.error,
            "comparison": r.comparison, "within_bound": r.within_bound, "skipped": r.skipped,
        } for r in results],
        "summary": summarize(results),
    }
    return render_validate(doc, fmt, lang, color=color)
