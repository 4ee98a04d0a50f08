"""What every model-file reader returns (``LoadedModel``) and the small helpers they share.

Model files are untrusted input: a downloaded folder, a file from a stranger. Every reader is bounded in the
bytes it reads and the work it does *before* it allocates or loops (the limits below, each checked against the
file's size first), opens only regular files (a FIFO or a device would block or never end), reads only files
inside the model's folder (``confined``), and fails with one line naming the file that never quotes the file's
bytes beyond a short, escaped ``short_repr`` of a JSON value.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from llmsizer.specs.architecture import count_params
from llmsizer.errors import ModelFileError, printable
from llmsizer.explain import Message, message
from llmsizer.specs import ModelSpec
from llmsizer.data.validation import message as validation_text
from llmsizer.data.validation import validate, validation_error

#: A config.json larger than this is refused unread: real ones are a few kB (the largest, quantized checkpoints
#: listing their modules, some 100 kB); a dense 2 MB of JSON already parses into ~50 MB of Python objects.
MAX_CONFIG_BYTES = 2_000_000
#: A ``model.safetensors.index.json`` larger than this is refused unread (DeepSeek-V3's, 91k tensors: ~9 MB;
#: Kimi K2's, ~140k tensors: ~14 MB).
MAX_INDEX_BYTES = 20_000_000
#: JSON nested deeper than this is refused (real configs nest 3 or 4 levels: quantization_config.config_groups).
MAX_JSON_DEPTH = 64
#: The safetensors format allows a 100 MB JSON header (huggingface/safetensors ``MAX_HEADER_SIZE``), and dense
#: JSON parses into some 12 times its size in Python objects. Real LLM headers are far smaller (~125 bytes per
#: tensor: DeepSeek-V3's shards ~70 kB, a GPTQ MoE shard of 18k tensors ~2.5 MB), so llmsizer reads at most this
#: much of any one header (~100 MB parsed, at worst).
MAX_SAFETENSORS_HEADER_BYTES = 8_000_000
#: Header bytes read over all the shards of one checkpoint (an index may name the same big shard many times over).
MAX_HEADER_BYTES_TOTAL = 64_000_000
#: Tensors over all the shards of one checkpoint (DeepSeek-V3: 91k; Kimi K2: ~140k).
MAX_TENSORS = 250_000
#: Shards of one checkpoint (Llama 3.1 405B in bf16: 191).
MAX_SHARDS = 10_000
#: GGUF metadata keys (real files: 30 to 60), tensors (real files: a few thousand; llama.cpp merges experts into
#: one tensor per layer) and items over all the metadata's string arrays (tokens plus merges: under 1M).
MAX_GGUF_KEYS = 65_536
MAX_GGUF_TENSORS = 100_000
MAX_GGUF_STRING_ITEMS = 4_000_000
#: Characters of any text from a model file that is printed or becomes a name: a model_type, an architecture,
#: a model name, a quantization method (real ones: under 60).
MAX_NAME_CHARS = 200
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


def clip(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters (with "..."), control characters escaped: a name safe to print."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return printable(text)


def fail(where: str, field_name: str | None, problem: str) -> ModelFileError:
    """A one-line ``ModelFileError``: ``where: field: problem`` (whitespace folded, control characters escaped,
    a field name from the file cut to 80 characters)."""
    text = f"{where}: {clip(field_name)}: {problem}" if field_name else f"{where}: {problem}"
    return ModelFileError(printable(" ".join(text.split())))


def short_repr(value: Any, limit: int = 40) -> str:
    """A JSON value as a short ``repr`` (at most ``limit`` characters), in bounded work: a 10 MB string or a list
    of a million items is never turned into text whole."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother, r.maxlist, r.maxdict = 2, limit, limit, 4, 4
    text = r.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_text(where: str, key: str, value: Any, limit: int = MAX_NAME_CHARS) -> str:
    """``value``, a string of at most ``limit`` characters that will be printed or become a name; else one line."""
    if not isinstance(value, str):
        raise fail(where, key, f"expected a string, got {short_repr(value)}")
    if len(value) > limit:
        raise fail(where, key, f"a string of {len(value):,} characters; at most {limit} are allowed here")
    return value


def check_depth(data: Any, where: str, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON nested deeper than ``limit`` (iteratively: no recursion, however deep the input)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise fail(where, None, f"JSON nested more than {limit} levels deep: not a model file")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))


def open_regular(path: Path, where: str | None = None) -> tuple[BinaryIO, int]:
    """``path`` opened for reading, and its size; one line when it is not a regular file (a FIFO would block,
    a device never end: the open does not wait, and the check is on the opened file)."""
    where = where or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except (OSError, ValueError) as e:
        raise fail(where, None, f"cannot read: {os_reason(e)}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise fail(where, None, "not a regular file")
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


def os_reason(e: BaseException) -> str:
    """What went wrong with a path, in the OS's words (never the path again: the message already names it)."""
    if isinstance(e, OSError):
        return e.strerror or type(e).__name__
    return "invalid path (a NUL byte)" if "null" in str(e) else str(e)


def is_file(path: Path) -> bool:
    """``path.is_file()`` that is False, not an exception, for a name too long, a NUL byte or a symlink loop."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _blobs_of(folder: Path) -> Path | None:
    """The ``blobs/`` folder of a Hugging Face cache repo when ``folder`` is one of its ``snapshots/<rev>``."""
    if folder.parent.name == "snapshots" and folder.parent.parent.name.startswith("models--"):
        return folder.parent.parent / "blobs"
    return None


def confined(folder: Path, name: str, where: str, field_name: str) -> Path:
    """``folder / name`` for a file name read from a model file (an index's ``weight_map``), refused unless it
    stays inside ``folder``: relative, no ``..``, and, once symlinks are resolved, still inside ``folder`` (or,
    for a Hugging Face cache snapshot, whose files are links to ``../../blobs/``, inside that repo's blobs)."""
    shown = short_repr(name)
    if not name or "\x00" in name or "\\" in name or len(name) > 1024:
        raise fail(where, field_name, f"{shown} is not a file name")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or re.match(r"^[A-Za-z]:", name):
        raise fail(where, field_name, f"{shown} is outside the model's folder (absolute, or with '..')")
    path = folder / name
    try:
        base = folder.resolve()
        target = path.resolve()
    except (OSError, RuntimeError, ValueError) as e:
        raise fail(where, field_name, f"{shown}: cannot resolve ({os_reason(e)})") from None
    roots = [base] + [b for b in (_blobs_of(base),) if b is not None]
    if not any(target.is_relative_to(r) for r in roots):
        raise fail(where, field_name, f"{shown} leads outside the model's folder (through a symbolic link)")
    return path


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
