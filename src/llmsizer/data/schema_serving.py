"""The record schema of ``data/serving.yaml`` (``data/schema.py`` has the other files')."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from llmsizer.data.schema import _Strict
from llmsizer.workload.choices import LLAMA_CPP_APPS, Engine, Quant

if TYPE_CHECKING:  # the annotation vocabulary, resolved by data/validation.py
    from typing import Annotated

    from pydantic import Field, PositiveInt

    from llmsizer.data.validation import Source


@dataclass(frozen=True, kw_only=True)
class EngineScheduling(_Strict):
    scheduler: Literal["continuous", "static"]
    max_num_seqs: PositiveInt
    max_num_seqs_small_gpu: PositiveInt | None = None
    step_tokens: PositiveInt | None = None  # None: memory.yaml prefill_tokens (the same engine setting)
    runs_on: str | None = None  # the runtime whose compute.yaml / memory.yaml profile applies
    kv_cache_fraction: Annotated[float, Field(gt=0, le=1)] = 1.0  # of the memory left after the engine loads
    # "reserved": a sequence's whole context is set aside when it starts (TRT-LLM GUARANTEED_NO_EVICT, llama.cpp
    # slots); "on_demand": KV blocks as it grows (vLLM PagedAttention, SGLang's token pool)
    kv_allocation: Literal["reserved", "on_demand"] = "reserved"
    # the weights an app downloads when no quantization is named (Ollama's library tags): a --quant value
    default_quant: str | None = None
    # under attention data parallelism (--attention-dp): "per_rank": every attention rank schedules its own
    # max_num_seqs and step token budget (vLLM: each DP rank is its own engine core), so a replica of tp ranks holds
    # tp times them; "global": the limits are the replica's, divided among the ranks (SGLang)
    attention_dp_limits: Literal["per_rank", "global"] = "global"
    source: Source


@dataclass(frozen=True, kw_only=True)
class SlaDefaults(_Strict):
    percentile: Annotated[float, Field(gt=0, lt=1)]
    source: Source


@dataclass(frozen=True, kw_only=True)
class SpeculativeDefaults(_Strict):
    acceptance: Annotated[float, Field(gt=0, lt=1)]
    source: Source


@dataclass(frozen=True, kw_only=True)
class ServingData(_Strict):
    """The validated content of ``data/serving.yaml``."""

    schema_version: Literal[1]
    engines: dict[str, EngineScheduling]
    sla: SlaDefaults
    speculative: SpeculativeDefaults

    def __post_init__(self) -> None:
        problems = [f"engines lacks {e.value!r}" for e in Engine if e.value not in self.engines]
        problems += [f"engines.{k}.runs_on {v.runs_on!r} is not an engine with its own profile"
                     for k, v in self.engines.items()
                     if v.runs_on is not None and (v.runs_on not in self.engines or self.engines[v.runs_on].runs_on)]
        quants = {q.value for q in Quant}
        problems += [f"engines.{k}.default_quant {v.default_quant!r} is not a --quant value"
                     for k, v in self.engines.items() if v.default_quant is not None and v.default_quant not in quants]
        problems += [f"engines.{e.value} needs runs_on: llama.cpp" for e in LLAMA_CPP_APPS
                     if e.value in self.engines and self.engines[e.value].runs_on != "llama.cpp"]
        if problems:
            raise ValueError("; ".join(problems))
