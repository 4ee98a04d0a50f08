"""The ``plan`` use case: a ``PlanRequest`` (the question in the user's terms) -> the model, the ``Workload`` and
``Constraints``, the search, and every note on what was assumed or ignored.

A request names everything by field (``micro_batch``, ``gpu_count``, ``deadline_s``); counts may be text with a
unit suffix (``"7B"``, ``"1T"``, ``"2e12"``) and the deadline a duration (``"30d"``, ``"none"``). Every bad value is
an ``InvalidInputError`` naming its field. Nothing here knows about Typer or prints anything.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Any

from llmsizer.catalog import Catalog, load_catalog
from llmsizer.errors import InvalidInputError, invalid, literal
from llmsizer.explain import Message, message
from llmsizer.record import field, record, replace
from llmsizer.search import PlanResult, plan, plan_by_engine
from llmsizer.specs.model import ModelSpec
from llmsizer.units import parse_count, parse_duration_s, parse_latency_s
from llmsizer.workload.choices import (
    Engine,
    Framework,
    LoraTargets,
    Mode,
    Offload,
    Optimizer,
    Precision,
    Quant,
    Recompute,
    SortKey,
)
from llmsizer.workload.defaults import PRETRAIN_SEQ_LEN, SEQ_LEN, serves_with_llama_cpp
from llmsizer.workload.job import NO_DEADLINE, Constraints, Workload

_CHOICES = (("mode", Mode), ("framework", Framework), ("precision", Precision), ("quant", Quant),
            ("optimizer", Optimizer), ("recompute", Recompute), ("lora_targets", LoraTargets), ("engine", Engine),
            ("offload", Offload), ("sort", SortKey))
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bBmM])\s*$")
KV_DTYPES = ("fp32", "bf16", "fp16", "fp8", "int8")


@record
class PlanRequest:
    """``plan``'s question. ``None``: not given (a default, or searched)."""

    # the model: a catalog id, size shorthand, file or Hub id; or a bare parameter count
    model: str | None = None
    params: str | float | None = None
    # the job
    mode: Mode = Mode.inference
    precision: Precision = Precision.bf16
    quant: Quant | None = None  # None: what the model file stores, else the app's default download, else none
    optimizer: Optimizer | None = None
    seq_len: int | None = None
    micro_batch: int | None = None
    global_batch_tokens: str | float | None = None
    recompute: Recompute | None = None
    framework: Framework | None = None
    lora_rank: int = 16
    lora_targets: LoraTargets | None = None
    tokens: str | float | None = None
    dataset_tokens: str | float | None = None
    epochs: float = 1.0
    prompt_tokens: int = 1024
    output_tokens: int = 512
    context: int | None = None
    concurrency: int | None = None  # None: one sequence (the note says how many fit)
    engine: Engine | None = None
    kv_dtype: str | None = None
    request_rate: str | float | None = None  # requests/s at the whole deployment (open loop)
    ttft_target_s: str | float | None = None  # latency targets: 500ms, 1.5s, 0.2
    tpot_target_s: str | float | None = None
    sla_percentile: str | float | None = None  # of the targets: p95, 95, 0.95
    prefix_cache_hit: float | None = None  # share of prompt tokens the prefix cache serves
    sweep: bool = False  # show the top serving plan's latency-throughput curve
    disaggregate: bool = False  # separate prefill and decode replicas (needs request_rate)
    attention_dp: bool | None = None  # attention data-parallel over each replica's tp GPUs (None: both, for MoE)
    speculative_tokens: int | None = None  # draft tokens per decode step
    speculative_acceptance: float | None = None
    # the hardware and its limits
    gpu_ids: tuple[str, ...] = ()
    gpu_count: int | None = None
    tp: int | None = None
    pp: int | None = None
    dp: int | None = None
    ep: int | None = None
    zero: int | None = None
    offload: Offload | None = None
    max_gpus: int | None = None
    gpus_per_node: int | None = None
    deadline_s: str | float | None = None
    budget_usd: float | None = None
    price_usd_per_gpu_hour: float | None = None
    # the answer
    sort: SortKey = SortKey.cost
    top: int = 5
    include_unfit: bool = False
    explain: bool = False
    catalog_files: tuple[str | Path, ...] = field(default=())

    def __post_init__(self) -> None:
        # closed choices may come as plain strings (library callers); a bad one is an error naming the field
        for name, enum in _CHOICES:
            value = getattr(self, name)
            if value is not None and not isinstance(value, enum):
                try:
                    object.__setattr__(self, name, enum(value))
                except ValueError:
                    choices = ", ".join(e.value for e in enum)
                    raise InvalidInputError(f"invalid {{{name}}} {literal(repr(value))}; use one of {choices}",
                                            fields=(name,)) from None
        if isinstance(self.gpu_ids, str):
            object.__setattr__(self, "gpu_ids", (self.gpu_ids,))


@record(mutable=True)
class PlanOutcome:
    """The answer to a ``PlanRequest``: the result (its notes include every assumption) and the catalog used."""

    result: PlanResult
    catalog: Catalog
    loaded: Any = None  # the LoadedModel when the model came from a file or the Hub


def positive_count(field_name: str, text: str | float | None) -> float | None:
    """A count (``7B``, ``1T``, ``2e12``) as a positive number; ``InvalidInputError`` naming the field."""
    if text is None:
        return None
    try:
        v = parse_count(text)
    except ValueError as e:
        raise InvalidInputError("invalid {" + field_name + "} " + literal(str(e)), fields=(field_name,)) from None
    if not v > 0:
        raise invalid(field_name, f"must be positive, got {text!r}")
    if v > 1e18:
        raise invalid(field_name, f"{text!r} is absurdly large (limit 1e18)")
    return v



def resolve_model(cat: Catalog, model: str | None, params: str | float | None) -> tuple[ModelSpec, list[Message], Any]:
    """``model`` (catalog name, size shorthand, file, Hub id) or ``params`` -> a ModelSpec, how it was found, and
    the ``LoadedModel`` when it came from a file or the Hub (else None)."""
    if model is not None and params is not None:
        raise InvalidInputError("give either {model} or {params}, not both", fields=("model", "params"))
    if model is None and params is None:
        raise InvalidInputError("missing {model} (e.g. llama-3.1-8b, 70b) or {params} (e.g. 7e9)",
                                fields=("model", "params"))
    if params is not None:
        from llmsizer.catalog.derive import derive_from_params

        m, note = derive_from_params(positive_count("params", params))  # type: ignore[arg-type]
        return m, [note], None
    assert model is not None
    if not model.strip():
        raise InvalidInputError("empty {model}; run 'llmsizer models' to see the catalog", fields=("model",))
    if cat.has_model(model):
        return cat.model(model), [], None
    size = _SIZE.match(model)
    if size:
        m, note = cat.reference_for_size(float(size.group(1)) * (1e9 if size.group(2).lower() == "b" else 1e6))
        return m, [note], None
    path = _expanded(model)
    if _is_local(path, model) or model.endswith((".json", ".gguf", ".safetensors")) or model.startswith((".", "/", "~")):
        from llmsizer.catalog.modelfiles import load_model_file

        loaded = load_model_file(path)
        return loaded.spec, list(loaded.notes), loaded
    from llmsizer.catalog.hub import is_repo_id

    if is_repo_id(model):
        from llmsizer.catalog.hub import load_hub_model

        loaded = load_hub_model(model)
        return loaded.spec, list(loaded.notes), loaded
    return cat.model(model), [], None  # raises UnknownNameError with suggestions


def _expanded(model: str) -> Path:
    """``~/x`` and ``~user/x`` expanded; an unknown user (or no home folder) leaves the path as given."""
    try:
        return Path(model).expanduser()
    except RuntimeError:
        return Path(model)


def _is_local(path: Path, model: str) -> bool:
    """Whether ``model`` names something on disk (a dangling symlink or a symlink loop too: the file reader
    then says what is wrong with it, rather than the name being taken for a Hub id and sent over the network).
    A name too long for the file system is an error naming ``model``."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except ValueError:  # an embedded NUL byte
        raise InvalidInputError("{model} contains a NUL character; give a catalog id, a size (7b), a file path or "
                                "org/name", fields=("model",)) from None
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise InvalidInputError(f"{{model}} is too long for a file name ({len(model):,} characters) and is no "
                                    "catalog id; give a catalog id, a size (7b), a file path or org/name",
                                    fields=("model",)) from None
        return True  # permission denied on a folder of the path, a loop: the reader names the problem
    return True


_SEQUENCES = re.compile(r"^\s*(.+?)\s*(?:seq|seqs|sequences?)\s*$", re.IGNORECASE)
_TOKENS = re.compile(r"^\s*(.+?)\s*(?:tok|toks|tokens?)\s*$", re.IGNORECASE)


def global_batch_tokens(r: PlanRequest) -> float | None:
    """The global batch in tokens: ``64seq`` (sequences of the request's, or the mode's default, length),
    ``4M`` or ``4Mtok`` (tokens). A bare number shorter than one sequence is refused: it is almost always a count
    of sequences (DeepSpeed's ``train_batch_size``, the Trainer's effective batch) misread as tokens."""
    text = r.global_batch_tokens
    if text is None:
        return None
    seq = r.seq_len or (PRETRAIN_SEQ_LEN if r.mode is Mode.pretrain else SEQ_LEN)
    if isinstance(text, str):
        if m := _SEQUENCES.match(text):
            return positive_count("global_batch_tokens", m.group(1)) * seq
        if m := _TOKENS.match(text):
            return positive_count("global_batch_tokens", m.group(1))
    tokens = positive_count("global_batch_tokens", text)
    if tokens is not None and tokens < seq:
        raise InvalidInputError(
            f"{{global_batch_tokens}} {literal(str(text))} would be {tokens:g} tokens, less than one {seq:,}-token "
            f"sequence; write {literal(str(text))}seq for sequences, or a token count with tok (4Mtok)",
            fields=("global_batch_tokens",))
    return tokens


def build_workload(r: PlanRequest) -> tuple[Workload, list[Message]]:
    """The ``Workload`` of a request, and notes on the options it ignores."""
    notes: list[Message] = []
    if r.kv_dtype is not None and r.kv_dtype not in KV_DTYPES:
        raise InvalidInputError(f"unknown {{kv_dtype}} '{r.kv_dtype}'; use one of {', '.join(KV_DTYPES)}",
                                fields=("kv_dtype",))
    tokens = positive_count("tokens", r.tokens)
    dataset = positive_count("dataset_tokens", r.dataset_tokens)
    if dataset is not None:
        if tokens is not None:
            raise InvalidInputError("give {tokens} or {dataset_tokens} with {epochs}, not both",
                                    fields=("tokens", "dataset_tokens", "epochs"))
        tokens = dataset * r.epochs
    gb = global_batch_tokens(r)
    kw: dict[str, Any] = dict(
        mode=r.mode, precision=r.precision, quant=r.quant, seq_len=r.seq_len, micro_batch=r.micro_batch,
        global_batch_tokens=int(gb) if gb else None, recompute=r.recompute, lora_rank=r.lora_rank, tokens=tokens,
        prompt_tokens=r.prompt_tokens, output_tokens=r.output_tokens, context=r.context,
        concurrency=r.concurrency or 1, kv_dtype=r.kv_dtype, request_rate=request_rate(r),
        prefix_cache_hit=r.prefix_cache_hit or 0.0, speculative_tokens=r.speculative_tokens or 0,
        speculative_acceptance=r.speculative_acceptance)
    for name in ("optimizer", "lora_targets", "engine"):
        if getattr(r, name) is not None:
            kw[name] = getattr(r, name)
    if r.framework is not None and r.mode.is_training:
        kw["framework"] = r.framework
    if r.concurrency is None:
        kw["assumed"] = ("concurrency",)
    w = Workload(**kw)
    if not w.mode.is_training:
        if w.request_rate is not None and r.concurrency is not None:
            notes.append(message("concurrency_with_rate"))
        ignored = [f for f, given in (("framework", r.framework),
                                      ("optimizer", r.optimizer not in (None, Optimizer.adamw)),
                                      ("micro_batch", r.micro_batch), ("recompute", r.recompute),
                                      ("zero", r.zero is not None), ("offload", r.offload), ("tokens", r.tokens))
                   if given]
        if ignored:
            notes.append(message("ignored_for_inference", fields=tuple(ignored)))
    else:
        ignored = [f for f, given in (("context", r.context), ("engine", r.engine not in (None, Engine.vllm)),
                                      ("concurrency", r.concurrency), ("request_rate", r.request_rate),
                                      ("ttft_target_s", r.ttft_target_s), ("tpot_target_s", r.tpot_target_s),
                                      ("speculative_tokens", r.speculative_tokens))
                   if given]
        if ignored:
            notes.append(message("ignored_for_training", fields=tuple(ignored)))
        if w.mode in (Mode.finetune, Mode.pretrain) and w.quant is not Quant.none:
            notes.append(message("quant_ignored_full_training"))
    return w, notes


def deadline_seconds(text: str | float | None) -> float | None:
    """The deadline in seconds: ``None`` (the mode's default), ``NO_DEADLINE`` for "none"/"no"/"off"."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text)
    if text.strip().lower() in ("none", "no", "off"):
        return NO_DEADLINE
    try:
        return parse_duration_s(text)
    except ValueError as e:
        raise InvalidInputError("{deadline_s}: " + literal(str(e)), fields=("deadline_s",)) from None


def request_rate(r: PlanRequest) -> float | None:
    """Requests per second: a number, or ``N/s``, ``N/min``, ``N/h``."""
    text = r.request_rate
    if text is None:
        return None
    per = 1.0
    if isinstance(text, str):
        t = text.strip().lower().replace(" ", "")
        for suffix, div in (("/s", 1.0), ("/sec", 1.0), ("/min", 60.0), ("/m", 60.0), ("/h", 3600.0), ("/hr", 3600.0)):
            if t.endswith(suffix):
                text, per = t[: -len(suffix)], div
                break
    try:
        rate = positive_count("request_rate", text)
    except InvalidInputError:
        raise InvalidInputError(f"invalid {{request_rate}} {literal(repr(r.request_rate))}: give requests per second "
                                "(20, 0.5), or per minute or hour (1200/min, 72000/h)",
                                fields=("request_rate",)) from None
    return None if rate is None else rate / per


def attention_dp(r: PlanRequest) -> bool | None:
    if r.attention_dp and r.mode is not Mode.inference:
        raise InvalidInputError("{attention_dp} is a serving layout; use it with {mode} inference, or drop it "
                                "(training splits attention by tensor parallelism)",
                                fields=("attention_dp", "mode"))
    return r.attention_dp


def disaggregate(r: PlanRequest) -> bool:
    if r.disaggregate and (r.mode is not Mode.inference or r.request_rate is None):
        raise InvalidInputError("{disaggregate} sizes separate prefill and decode replicas for a {request_rate}; "
                                "give one (e.g. 20 requests/s) with an inference job",
                                fields=("disaggregate", "request_rate"))
    return bool(r.disaggregate)


def latency_target(name: str, text: str | float | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_latency_s(text)
    except ValueError as e:
        raise InvalidInputError("{" + name + "}: " + literal(str(e)), fields=(name,)) from None


def percentile_of(text: str | float | None) -> float | None:
    """``p95``, ``95``, ``99.9`` or ``0.95`` -> 0.95; outside (0, 100) is an error naming the field."""
    if text is None:
        return None
    t = str(text).strip().lower().removeprefix("p")
    try:
        v = float(t)
    except ValueError:
        raise InvalidInputError(f"invalid {{sla_percentile}} {literal(repr(text))}; use e.g. p95, 99 or 0.9",
                                fields=("sla_percentile",)) from None
    v = v / 100.0 if v >= 1 else v
    if not 0 < v < 1:
        raise invalid("sla_percentile", f"must be between 0 and 100 (exclusive), got {text!r}")
    return v


def build_constraints(r: PlanRequest, cat: Catalog) -> Constraints:
    gpu_ids: list[str] = []
    for g in r.gpu_ids:
        gpu_ids += [x.strip() for x in g.split(",") if x.strip()]
    for g in gpu_ids:
        cat.gpu(g)  # unknown names fail early with suggestions
    return Constraints(
        gpu_ids=tuple(gpu_ids), gpu_count=r.gpu_count, tp=r.tp, pp=r.pp, dp=r.dp, ep=r.ep, zero=r.zero,
        offload=r.offload, max_gpus=r.max_gpus, gpus_per_node=r.gpus_per_node, deadline_s=deadline_seconds(r.deadline_s),
        budget_usd=r.budget_usd, price_usd_per_gpu_hour=r.price_usd_per_gpu_hour, sort=r.sort, top=r.top,
        include_unfit=r.include_unfit, ttft_target_s=latency_target("ttft_target_s", r.ttft_target_s),
        tpot_target_s=latency_target("tpot_target_s", r.tpot_target_s), sla_percentile=percentile_of(r.sla_percentile),
        disaggregate=disaggregate(r), attention_dp=attention_dp(r))


def plan_request(r: PlanRequest) -> PlanOutcome:
    """Answer ``r``: resolve the model, build the job, search; the result's notes say every assumption, in order."""
    cat = load_catalog(tuple(r.catalog_files))
    model, notes, loaded = resolve_model(cat, r.model, r.params)
    if loaded is not None and loaded.quant and r.quant is None and r.mode is Mode.inference:
        r = replace(r, quant=Quant(loaded.quant))
        notes.append(message("file_quant", quant=loaded.quant))
    if r.engine is None and r.mode is Mode.inference and r.gpu_ids and all(
            serves_with_llama_cpp(cat.gpu(g.strip())) for ids in r.gpu_ids for g in ids.split(",") if g.strip()):
        # vLLM, SGLang and TensorRT-LLM need CUDA or ROCm: on Apple silicon and CPUs people serve with llama.cpp
        r = replace(r, engine=Engine.llama_cpp)
        notes.append(message("engine_for_hardware", engine=Engine.llama_cpp.value))
    if r.mode is Mode.inference and r.quant is None and r.engine is not None and (
            loaded is None or not loaded.quant):
        # an app that downloads quantized weights by default (Ollama's library tags): size what it runs
        from llmsizer.data.serving import engine_serving

        app_quant = engine_serving(r.engine.value).default_quant
        if app_quant is not None:
            r = replace(r, quant=Quant(app_quant))
            notes.append(message("app_quant", engine=r.engine.value, quant=app_quant))
    if r.quant is None:  # not given and nothing implies one: the stored 16-bit weights (QLoRA's nf4 comes later)
        r = replace(r, quant=Quant.none)
    workload, ignored = build_workload(r)
    if r.engine is None:  # Macs and CPU sockets among the GPUs: sized with llama.cpp, the rest with vLLM
        result = plan_by_engine(cat, model, workload, build_constraints(r, cat), explain=r.explain)
    else:
        result = plan(cat, model, workload, build_constraints(r, cat), explain=r.explain)
    hardware: list[Message] = []
    top = next((p for p in result.plans if p.fits), None)
    prec = result.workload.precision.value
    if top is not None and prec not in top.gpu.dense_tflops and prec != "fp32":
        hardware.append(message("no_tensor_cores", gpu_id=top.gpu.id, precision=prec,
                                dtypes=", ".join(sorted(top.gpu.dense_tflops))))
    if top is not None and top.inference is not None and top.inference.costs is not None and (
            r.sweep or r.request_rate is not None):
        from llmsizer.search.serving import concurrency_sweep

        result.sweep = concurrency_sweep(top.inference.costs, top.layout.dp)
    if (top is not None and top.inference is not None and r.concurrency is None and r.request_rate is None):
        hardware.append(message("concurrency_default", context=result.workload.context_tokens,
                                fits=top.inference.replica_concurrency, gpu_id=top.gpu.id))
    # how the model was found, the options ignored, what the defaults assumed (the search's), the hardware's
    result.notes = notes + ignored + result.notes + hardware
    return PlanOutcome(result, cat, loaded)
