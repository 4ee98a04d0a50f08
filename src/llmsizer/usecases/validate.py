"""``llmsizer validate``: every shipped reference case (a published figure) against llmsizer's prediction.

Each case in ``data/reference_cases.yaml`` gives a full setting in llmsizer's vocabulary; it runs through the same
path as ``plan`` (catalog -> workload -> planner with the published layout pinned) and the requested quantity is
read off the top plan. ``error = predicted / published - 1``. No case has a correction factor of its own: when an
estimate is off, the model is what gets fixed.
"""

from __future__ import annotations

import statistics
from typing import Any

from llmsizer.catalog import Catalog, load_catalog
from llmsizer.data import load_data_yaml
from llmsizer.errors import LlmsizerError
from llmsizer.record import record
from llmsizer.search import Plan, plan
from llmsizer.specs import ModelSpec
from llmsizer.units import DAY_S
from llmsizer.workload import (
    NO_DEADLINE,
    Constraints,
    Engine,
    Framework,
    Mode,
    Offload,
    Optimizer,
    Precision,
    Quant,
    Recompute,
    SortKey,
    Workload,
)
from llmsizer.workload.defaults import PRETRAIN_SEQ_LEN, SEQ_LEN

DEFAULT_GPU = "h100-sxm"  # for memory-only cases that name no GPU: model states do not depend on it


@record
class CaseResult:
    id: str
    category: str
    quantity: str
    source: str
    url: str
    published: float
    unit: str
    predicted: float | None
    comparison: str  # approx | at_least | at_most
    skipped: str | None = None  # why the case could not run (hardware not in the catalog...)

    @property
    def error(self) -> float | None:
        if self.predicted is None or not self.published:
            return None
        return self.predicted / self.published - 1

    @property
    def within_bound(self) -> bool | None:
        """For ``at_least``/``at_most`` cases, whether the prediction is on the published side of the bound."""
        if self.predicted is None or self.comparison == "approx":
            return None
        return self.predicted >= self.published if self.comparison == "at_least" else self.predicted <= self.published


def _model(cat: Catalog, s: dict) -> ModelSpec:
    if s.get("model") and cat.has_model(s["model"]):
        return cat.model(s["model"])
    if s.get("params") and s.get("layers") and s.get("hidden"):
        h, heads = int(s["hidden"]), int(s.get("heads") or max(1, int(s["hidden"]) // 128))
        return ModelSpec(
            id="case-model", name=f"GPT-style {float(s['params']) / 1e9:.3g}B", family="gpt3",
            published_params=float(s["params"]), layers=int(s["layers"]), hidden_size=h, heads=heads,
            kv_heads=int(s.get("kv_heads") or heads), ffn_size=4 * h, ffn_kind="plain", activation="gelu",
            vocab_size=int(s.get("vocab") or 51200), max_context=max(2048, int(s.get("seq_len") or 2048)),
            norm="layernorm", qkv_bias=True, attn_out_bias=True, mlp_bias=True, tied_embeddings=True,
            position_embedding="learned", learned_positions=max(2048, int(s.get("seq_len") or 2048)),
            attention="mha" if int(s.get("kv_heads") or heads) == heads else "gqa",
            source="architecture given by the reference case", )
    if s.get("params"):
        from llmsizer.catalog.derive import derive_from_params

        return derive_from_params(float(s["params"]))[0]
    return cat.model(str(s.get("model")))  # raises UnknownNameError


def _workload(s: dict) -> Workload:
    mode = Mode(s.get("mode", "inference"))
    kw: dict[str, Any] = {"mode": mode}
    if s.get("precision"):
        kw["precision"] = Precision(s["precision"])
    if s.get("quant"):
        kw["quant"] = Quant(s["quant"])
    if s.get("optimizer"):
        kw["optimizer"] = Optimizer(s["optimizer"])
    if s.get("engine"):
        kw["engine"] = Engine(s["engine"])
    if s.get("recompute"):
        kw["recompute"] = Recompute(s["recompute"])
    if s.get("framework"):
        kw["framework"] = Framework(s["framework"])
    # the default sequence length, given explicitly: a published setting is sized as stated, even past the
    # model's own context (resolve_defaults would cap a default at it)
    seq = int(s.get("seq_len") or (PRETRAIN_SEQ_LEN if mode is Mode.pretrain else SEQ_LEN))
    kw["seq_len"] = seq
    for key, name in (("micro_batch", "micro_batch"), ("lora_rank", "lora_rank"), ("prompt_tokens", "prompt_tokens"),
                      ("output_tokens", "output_tokens"), ("concurrency", "concurrency"), ("context", "context")):
        if s.get(key) is not None:
            kw[name] = int(s[key])
    if s.get("tokens") is not None:
        kw["tokens"] = float(s["tokens"])
    for key in ("kv_dtype", "batching"):
        if s.get(key) is not None:
            kw[key] = str(s[key])
    for key in ("request_rate", "prefix_cache_hit"):
        if s.get(key) is not None:
            kw[key] = float(s[key])
    if s.get("global_batch") is not None:
        kw["global_batch_tokens"] = int(s["global_batch"]) * seq
    return Workload(**kw)


def _constraints(s: dict) -> Constraints:
    def opt(k: str) -> int | None:
        return int(s[k]) if s.get(k) is not None else None

    # A published run that names no GPU count was laid out to use its GPUs well: rank by GPU-hours (cost at a
    # flat $1/GPU-hour), not by wall time, which would pick the largest, least efficient cluster.
    # Offload is off unless the case says otherwise: published runs name it when they use it.
    return Constraints(
        gpu_ids=(s.get("gpu") or DEFAULT_GPU,), gpu_count=opt("gpus"), tp=opt("tp"), pp=opt("pp"), dp=opt("dp"),
        ep=opt("ep"), zero=opt("zero"), offload=Offload(s.get("offload") or "none"),
        sort=SortKey.time if opt("gpus") else SortKey.cost, price_usd_per_gpu_hour=1.0, top=1, include_unfit=True,
        deadline_s=NO_DEADLINE,  # a published run took as long as it took
        attention_dp=s.get("attention_dp"),  # absent: searched both ways for MoE models, as plan does
    )


def quantity(p: Plan, name: str) -> float | None:
    """Read one published quantity off a plan, in base units."""
    m = p.memory
    t, i = p.training, p.inference
    table = {
        "model_states_bytes_per_gpu": lambda: m.weights_bytes + m.gradients_bytes + m.optimizer_bytes,
        "activations_bytes_per_gpu": lambda: m.activations_bytes,
        "kv_cache_bytes": lambda: m.kv_cache_bytes * p.layout.tp * p.layout.pp,
        "total_memory_bytes_per_gpu": lambda: m.total_bytes,
        "weights_bytes": lambda: m.weights_bytes * p.layout.tp * p.layout.pp,
        "training_gpu_hours": lambda: t.gpu_hours if t else None,
        "training_days": lambda: t.seconds / DAY_S if t and t.seconds else None,
        "tokens_per_second_per_gpu": lambda: (t.tokens_per_second if t else i.tokens_per_second if i else 0.0)
        / p.gpu_count,
        "mfu": lambda: t.mfu if t else None,
        "hfu": lambda: t.hfu if t else None,  # recomputation counted (Korthikanti et al. 2022 sec. 6.2)
        "decode_tokens_per_second": lambda: i.tokens_per_second if i else None,
        "ttft_seconds": lambda: i.ttft_seconds if i else None,
        "tpot_seconds": lambda: i.tpot_seconds if i else None,
    }
    if name not in table:
        raise LlmsizerError(f"unknown reference quantity '{name}'")
    return table[name]()


def run_case(cat: Catalog, case: dict) -> CaseResult:
    s = case.get("setting") or {}
    base = dict(id=case["id"], category=case["category"], quantity=case["quantity"], source=case["source"],
                url=case.get("url", ""), published=float(case["published"]), unit=case.get("unit", ""),
                comparison=case.get("comparison", "approx"))
    gpu = s.get("gpu") or DEFAULT_GPU
    try:
        cat.gpu(gpu)
        model = _model(cat, s)
    except LlmsizerError as e:
        return CaseResult(**base, predicted=None, skipped=str(e))
    r = plan(cat, model, _workload(s), _constraints(s))
    if not r.plans:
        return CaseResult(**base, predicted=None, skipped="no layout matches the published setting")
    top = next((p for p in r.plans if p.fits), r.plans[0])
    return CaseResult(**base, predicted=quantity(top, case["quantity"]))


def load_cases() -> list[dict]:
    return list((load_data_yaml("reference_cases.yaml") or {}).get("cases", []))


def run_all(cat: Catalog, category: str | None = None) -> list[CaseResult]:
    cases = [c for c in load_cases() if category is None or c["category"] == category]
    return [run_case(cat, c) for c in cases]


def summarize(results: list[CaseResult]) -> dict[str, dict[str, float | int]]:
    """Per category: cases run, skipped, median and worst absolute error and the signed median (the bias: are
    the predictions low or high?) over the approx cases, bounds satisfied."""
    out: dict[str, dict[str, float | int]] = {}
    for cat in sorted({r.category for r in results}):
        rs = [r for r in results if r.category == cat]
        signed = [r.error for r in rs if r.error is not None and r.comparison == "approx"]
        errs = [abs(e) for e in signed]
        bounds = [r.within_bound for r in rs if r.within_bound is not None]
        out[cat] = {
            "cases": len(rs),
            "skipped": sum(1 for r in rs if r.skipped),
            "median_abs_error": statistics.median(errs) if errs else 0.0,
            "median_error": statistics.median(signed) if signed else 0.0,
            "worst_abs_error": max(errs) if errs else 0.0,
            "within_25_percent": sum(1 for e in errs if e <= 0.25),
            "bounds_held": sum(1 for b in bounds if b),
            "bounds": len(bounds),
        }
    return out


def validate_request(category: str | None = None, catalog_files: tuple[str, ...] = ()) -> list[CaseResult]:
    """The ``validate`` use case: every reference case (of ``category``), published vs predicted."""
    from llmsizer.errors import InvalidInputError

    if category is not None and category not in ("memory", "training", "inference"):
        raise InvalidInputError(f"unknown {{category}} '{category}'; use memory, training or inference",
                                fields=("category",))
    return run_all(load_catalog(tuple(catalog_files)), category)
