"""The one map between command-line options and the core's fields, used both ways:

- ``plan_request(options)``: ``plan``'s parsed options (Typer's parameter names, from either parser) -> a typed
  ``PlanRequest`` and the ``OutputOptions``;
- ``flag(field)``: what the CLI calls a field, for every error and message that names one (``micro_batch`` ->
  ``--batch``). The core never writes a flag; this is the only place that knows them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmsizer.record import fields, record

#: Typer parameter name -> the core field it sets, where the two differ
PARAM_FIELDS = {
    "batch": "micro_batch", "global_batch": "global_batch_tokens", "gpu": "gpu_ids", "gpus": "gpu_count",
    "deadline": "deadline_s", "budget": "budget_usd", "price_per_gpu_hour": "price_usd_per_gpu_hour",
    "all_": "include_unfit", "catalog": "catalog_files", "min_memory": "min_memory_bytes",
    "ttft_target": "ttft_target_s", "tpot_target": "tpot_target_s", "percentile": "sla_percentile",
}
#: a parameter whose flag is not ``--`` + its name with dashes
PARAM_FLAGS = {"all_": "--all", "fmt": "--format"}
_FIELD_PARAMS = {f: p for p, f in PARAM_FIELDS.items()}


def flag(field: str) -> str:
    """The command-line spelling of a core field: ``micro_batch`` -> ``--batch``, ``seq_len`` -> ``--seq-len``."""
    param = _FIELD_PARAMS.get(field, field)
    return PARAM_FLAGS.get(param) or "--" + param.rstrip("_").replace("_", "-")


@record
class OutputOptions:
    """How ``plan`` shows its answer: a format, a label language, a file, or a launch config instead."""

    fmt: str = "table"
    lang: str = "en"
    output: Path | None = None
    export: str | None = None
    explain_all: bool = False  # the full derivation; --explain alone shows the key figures


def _value(x: Any) -> Any:
    return getattr(x, "value", x)


def plan_request(options: dict[str, Any]) -> tuple[Any, OutputOptions]:
    """``plan``'s options by Typer parameter name -> (``PlanRequest``, output options); an unknown name is a bug.
    (The use case is imported here, not at the top, so that ``--help`` does not load the core.)"""
    from llmsizer.usecases.plan import PlanRequest

    known = {f.name for f in fields(PlanRequest)}
    request: dict[str, Any] = {}
    output: dict[str, Any] = {}
    for param, value in options.items():
        if param in ("fmt", "lang", "output", "export", "explain_all"):
            output[param] = _value(value) if param in ("fmt", "lang") else value
            continue
        name = PARAM_FIELDS.get(param, param)
        if name not in known:
            raise TypeError(f"plan option {param!r} has no PlanRequest field")
        if name in ("gpu_ids", "catalog_files"):
            value = tuple(value or ())
        request[name] = value
    if output.get("explain_all"):
        request["explain"] = True  # the search keeps the steps either way; how many to show is the renderer's
    return PlanRequest(**request), OutputOptions(**output)
