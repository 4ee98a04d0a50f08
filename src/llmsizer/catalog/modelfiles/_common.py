"""What every model-file reader returns (``LoadedModel``) and the small helpers they share."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmsizer.specs.architecture import count_params
from llmsizer.errors import ModelFileError
from llmsizer.explain import Message, message
from llmsizer.specs import ModelSpec
from llmsizer.data.validation import message as validation_text
from llmsizer.data.validation import validate, validation_error

#: A config.json larger than this is refused unread (real ones are a few kB; a 10 MB one is not a config).
MAX_CONFIG_BYTES = 10_000_000
#: The safetensors format caps its JSON header at 100 MB (huggingface/safetensors, ``MAX_HEADER_SIZE``).
MAX_SAFETENSORS_HEADER_BYTES = 100_000_000
#: Headers and architecture counts further apart than this get a warning (a vision tower, MTP heads, buffers).
_DISAGREE = 0.02


@dataclass(frozen=True)
class LoadedModel:
    """A model described by a file: its architecture, plus the exact sizes when a tensor header gave them.

    - ``spec``: the architecture. ``spec.published_params`` is ``exact_params`` when known, else the count computed
      from the architecture (``specs.architecture.count_params``) plus any part that ``ModelSpec`` cannot express.
    - ``notes``: how each figure was derived, and warnings: ``Message``s with ``file.*`` codes, which
      ``render.i18n.say`` puts into words (one line each, for stderr or ``--explain``).
    - ``source``: what was read (a path, or ``org/name`` on a hub).
    - ``exact_params``: parameters counted from safetensors or GGUF tensor headers (packed quantized tensors
      unpacked, quantization scales left out); ``None`` when only a config was read.
    - ``weight_bytes``: bytes of tensor data in the files (scales and all), ``None`` when unknown.
    - ``dtypes``: parameters per storage type, as the file names it (``"BF16"``, ``"F8_E4M3"``, ``"Q4_K"``).
    - ``weights_dtype``: the llmsizer precision most parameters are stored in (``"bf16"``, ``"fp8"``, ``"int4"``),
      from the headers, else from the config's ``torch_dtype``; ``None`` when unknown.
    - ``quant``: the quantization the file uses, spelled as ``plan --quant`` spells it where it can be
      (``"q4_k_m"``, ``"fp8"``, ``"int4"``, ``"nf4"``); ``None`` for plain bf16/fp16/fp32 weights.
    """

    spec: ModelSpec
    notes: tuple[Message, ...]
    source: str
    exact_params: int | None = None
    weight_bytes: int | None = None
    dtypes: Mapping[str, int] = field(default_factory=dict)
    weights_dtype: str | None = None
    quant: str | None = None

    @property
    def bytes_per_param(self) -> float | None:
        """Average stored bytes per parameter (weight_bytes / exact_params), when both are known."""
        if self.weight_bytes is None or not self.exact_params:
            return None
        return self.weight_bytes / self.exact_params


def fail(where: str, field_name: str | None, problem: str) -> ModelFileError:
    """A one-line ``ModelFileError``: ``where: field: problem`` (newlines folded, long reprs cut)."""
    text = f"{where}: {field_name}: {problem}" if field_name else f"{where}: {problem}"
    return ModelFileError(" ".join(text.split()))


def short_repr(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def slug(text: str) -> str:
    """A catalog-style id (``^[a-z0-9][a-z0-9.-]*$``) from a model or file name."""
    s = re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.")
    s = re.sub(r"^[^a-z0-9]+", "", s)
    return s or "model"


def build_spec(fields: dict[str, Any], where: str, origin: Mapping[str, str] | None = None) -> ModelSpec:
    """``fields`` validated into a ``ModelSpec``, a validation failure turned into one line naming the config field."""
    try:
        return validate(ModelSpec, fields)
    except validation_error() as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ()))
        top = str(err.get("loc", ("",))[0]) if err.get("loc") else ""
        name = (origin or {}).get(top, loc) or None
        raise fail(where, name, validation_text(err)) from None


def finish_spec(
    fields: dict[str, Any],
    where: str,
    notes: list[Message],
    *,
    extra_params: int = 0,
    exact_params: int | None = None,
    origin: Mapping[str, str] | None = None,
) -> ModelSpec:
    """Build the spec twice: first to count its parameters, then with ``published_params`` filled in.

    ``extra_params`` is what the architecture has beyond what ``ModelSpec`` can express (OPT's projections,
    OLMo's parameter-free norms as a negative number); ``exact_params`` a header's count, which wins.
    """
    draft = build_spec({**fields, "published_params": 1.0}, where, origin)
    counted = count_params(draft)
    computed = counted.total + extra_params
    if exact_params is not None:
        published = exact_params
        diff = exact_params / computed - 1 if computed else 0.0
        notes.append(message("file.params_exact", exact_params=exact_params, computed_params=computed, diff=diff))
        if abs(diff) > _DISAGREE:
            notes.append(message("file.params_disagree", threshold=_DISAGREE))
    else:
        published = computed
        notes.append(message("file.params_computed", computed_params=computed))
    active: float | None = None
    if draft.moe is not None:
        active = counted.active + extra_params
        notes.append(message("file.active_params", active_params=active))
    return build_spec({**fields, "published_params": float(published), "published_active_params": active}, where, origin)
