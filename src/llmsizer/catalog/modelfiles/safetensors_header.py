"""safetensors headers: exact parameter counts and dtypes without touching a single weight.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON
(``{"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}``), then the
tensor data (https://github.com/huggingface/safetensors, "Format"). Only the first 8 + N bytes are ever read.

The files are untrusted: N is checked against the file's size and ``MAX_SAFETENSORS_HEADER_BYTES`` before
anything is read, the headers of all the shards of one checkpoint against ``MAX_HEADER_BYTES_TOTAL`` and
``MAX_TENSORS``, every entry's numbers are integers below 2^63 whose span fits the file, and no message quotes a
byte of the file beyond a short, escaped repr of one JSON value.

Quantized checkpoints store some tensors packed (GPTQ/AWQ ``qweight``: 32/bits values per int32; bitsandbytes
4-bit, NVFP4, MXFP4: two values per byte) beside scales and zero points. The parameter count unpacks the former
and leaves the latter out; ``weight_bytes`` keeps every byte, since all of them sit in memory.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmsizer.catalog.modelfiles._common import (
    MAX_HEADER_BYTES_TOTAL,
    MAX_SAFETENSORS_HEADER_BYTES,
    MAX_TENSORS,
    check_depth,
    fail,
    open_regular,
    os_reason,
    short_repr,
)
from llmsizer.explain import Message, message

#: Bits per element of each safetensors dtype (safetensors ``Dtype``).
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}

#: safetensors dtype -> the llmsizer precision a parameter stored in it has.
_PRECISION = {"F32": "fp32", "F64": "fp32", "BF16": "bf16", "F16": "fp16", "F8_E4M3": "fp8", "F8_E5M2": "fp8",
              "I8": "int8", "F4": "fp4", "F6_E2M3": "fp6", "F6_E3M2": "fp6"}

#: Tensors a quantized checkpoint keeps beside its weights: scales, zero points, group indices, bnb state.
_AUX_SUFFIXES = (
    "weight_scale_inv", "weight_scale", "weight_scale_2", "input_scale", "output_scale", "k_scale", "v_scale",
    "qzeros", "scales", "g_idx", "weight_zero_point", "weight_g_idx", "weight_shape", ".absmax", ".quant_map",
    ".nested_absmax", ".nested_quant_map", "quant_state.bitsandbytes__nf4", "quant_state.bitsandbytes__fp4",
    ".SCB", ".weight_format", "_scales",
)
#: Bits per value of packed int32 weights (GPTQ/AWQ ``qweight``) when no config gives a width.
_PACKED_BITS_DEFAULT = 4
#: Buffers some checkpoints save that are no parameters (causal masks, rotary frequencies).
_BUFFER_SUFFIXES = ("masked_bias", "rotary_emb.inv_freq", "position_ids")


#: The format's own cap on the header (huggingface/safetensors ``MAX_HEADER_SIZE``): past it, not a safetensors file.
_FORMAT_MAX_HEADER = 100_000_000
#: Sizes and offsets are 64-bit in the format (and a float holds products of a few of them).
_MAX_INT = 2**63


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class SafetensorsHeader:
    """The tensor table of one safetensors file."""

    where: str
    tensors: tuple[TensorInfo, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)


def header_length(first8: bytes, where: str, file_size: int | None) -> int:
    """N from the 8-byte prefix, checked against the format's cap, llmsizer's and the file size (the messages
    never print N: the 8 bytes may belong to any file)."""
    if len(first8) < 8:
        raise fail(where, None, "too short to be a safetensors file (fewer than 8 bytes)")
    (n,) = struct.unpack("<Q", first8)
    if n == 0 or n > _FORMAT_MAX_HEADER:
        raise fail(where, None, "not a safetensors file (its header length is outside 1..100 MB)")
    if n > MAX_SAFETENSORS_HEADER_BYTES:
        raise fail(where, None, f"a safetensors header of over {MAX_SAFETENSORS_HEADER_BYTES // 1_000_000} MB: "
                                "more than llmsizer reads (real model headers are a few MB at most)")
    if file_size is not None and 8 + n > file_size:
        raise fail(where, None, "not a safetensors file, or truncated (its header runs past the end of the file)")
    return n


def _sizes(value: Any, *, count: int | None = None) -> bool:
    """A list of integers in [0, 2^63) (of ``count`` items when given)."""
    return (isinstance(value, list) and (count is None or len(value) == count) and len(value) <= 64
            and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < _MAX_INT for x in value))


def parse_header(raw: bytes, where: str, data_size: int | None = None,
                 max_tensors: int = MAX_TENSORS) -> SafetensorsHeader:
    """Parse the JSON header; every entry is checked (dtype known, shape x dtype = bytes, within the data).
    More than ``max_tensors`` entries are refused, counted in the bytes before they are parsed."""
    if raw.count(b'"data_offsets"') > max_tensors:
        raise _too_many(where)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise fail(where, None, f"not a safetensors file (its header is not UTF-8 text, at byte {8 + e.start:,})"
                   ) from None
    try:
        table = json.loads(text)
    except json.JSONDecodeError as e:
        raise fail(where, None, f"not a safetensors file (its header is not JSON: {e.msg} at byte {8 + e.pos:,})"
                   ) from None
    except (RecursionError, ValueError):  # nested too deeply, or a number of more than 4,300 digits
        raise fail(where, None, "not a safetensors file (its header is not JSON a reader can take)") from None
    if not isinstance(table, dict):
        raise fail(where, None, "not a safetensors file (its header is not a JSON object)")
    check_depth(table, where)
    if len(table) > max_tensors + 1:
        raise _too_many(where)
    tensors: list[TensorInfo] = []
    metadata = table.pop("__metadata__", None) or {}
    for name, entry in table.items():
        if not isinstance(entry, dict):
            raise fail(where, name, f"expected a tensor entry, got {short_repr(entry)}")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
            raise fail(where, f"{name}.dtype", f"unknown safetensors dtype {short_repr(dtype)}")
        if not _sizes(shape):
            raise fail(where, f"{name}.shape", f"expected a list of sizes, got {short_repr(shape)}")
        if not _sizes(offsets, count=2) or not offsets[0] <= offsets[1]:
            raise fail(where, f"{name}.data_offsets", f"expected [begin, end], got {short_repr(offsets)}")
        nbytes = offsets[1] - offsets[0]
        need = -(-math.prod(shape) * DTYPE_BITS[dtype] // 8)  # whole bytes, in integers (no float overflow)
        if nbytes != need:
            raise fail(where, f"{name}.data_offsets", f"span {nbytes} bytes but {dtype} {short_repr(shape)} needs "
                                                      f"{short_repr(need)}")
        if data_size is not None and offsets[1] > data_size:
            raise fail(where, name, f"data ends at byte {offsets[1]} past the file's {data_size}: truncated file")
        tensors.append(TensorInfo(name, dtype, tuple(shape), nbytes))
    return SafetensorsHeader(where, tuple(tensors), metadata if isinstance(metadata, dict) else {})


def _too_many(where: str) -> Exception:
    return fail(where, None, f"too many tensors: with the shards read before it, over {MAX_TENSORS:,}, more than "
                             "llmsizer reads for one model")


def read_header(path: Path) -> SafetensorsHeader:
    """Read only the header of a local safetensors file (8 + N bytes, never the tensors)."""
    return _read_header(path, MAX_SAFETENSORS_HEADER_BYTES, MAX_TENSORS)[0]


def _read_header(path: Path, budget: int, max_tensors: int) -> tuple[SafetensorsHeader, int]:
    """The header and its length N; a header longer than ``budget`` (what is left of a checkpoint's
    ``MAX_HEADER_BYTES_TOTAL``) is refused unread, one of more than ``max_tensors`` tensors unparsed."""
    where = str(path)
    f, size = open_regular(path, where)
    with f:
        try:
            n = header_length(f.read(8), where, size)
            if n > budget:
                raise fail(where, None, f"the shards' headers add up to over {MAX_HEADER_BYTES_TOTAL // 1_000_000} "
                                        "MB: more than llmsizer reads for one model")
            raw = f.read(n)
        except OSError as e:
            raise fail(where, None, f"cannot read: {os_reason(e)}") from None
    if len(raw) < n:
        raise fail(where, None, "truncated while it was read (the file shrank)")
    return parse_header(raw, where, data_size=size - 8 - n, max_tensors=max_tensors), n


def read_headers(paths: Iterable[Path]) -> list[SafetensorsHeader]:
    """The headers of all the shards of one checkpoint, within ``MAX_HEADER_BYTES_TOTAL`` and ``MAX_TENSORS``."""
    headers: list[SafetensorsHeader] = []
    left, tensors = MAX_HEADER_BYTES_TOTAL, 0
    for p in paths:
        h, n = _read_header(p, left, MAX_TENSORS - tensors)
        left -= n
        tensors += len(h.tensors)
        headers.append(h)
    return headers


# ------------------------------------------------------------------------------------------ counting


@dataclass
class TensorSummary:
    """Parameters, bytes and storage types over all the shards of one checkpoint."""

    params: int
    weight_bytes: int
    dtypes: dict[str, int]
    weights_dtype: str | None
    quant: str | None
    notes: list[Message]


def _quant_bits(quant_config: Mapping[str, Any] | None) -> int | None:
    if not quant_config:
        return None
    for key in ("bits", "num_bits", "w_bit"):
        v = quant_config.get(key)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    groups = quant_config.get("config_groups")
    if isinstance(groups, Mapping):
        for g in groups.values():
            w = g.get("weights") if isinstance(g, Mapping) else None
            if isinstance(w, Mapping) and isinstance(w.get("num_bits"), int):
                return int(w["num_bits"])
    return None


def _quant_label(quant_config: Mapping[str, Any] | None, bits: int | None, dominant: str | None) -> str | None:
    """The quantization in ``plan --quant`` spelling: int4, int8, nf4, fp8, fp4; None for plain float weights."""
    method = str((quant_config or {}).get("quant_method", "")).lower()
    qc = quant_config or {}
    if method == "bitsandbytes":
        if qc.get("load_in_4bit"):
            return str(qc.get("bnb_4bit_quant_type", "nf4")).lower()
        return "int8"
    if method in ("fp8", "fbgemm_fp8"):
        return "fp8"
    if method == "mxfp4":
        return "fp4"
    if method == "modelopt":
        algo = str(qc.get("quant_algo", "")).upper()
        return "fp4" if "FP4" in algo else "fp8" if "FP8" in algo else None
    if method in ("gptq", "awq", "compressed-tensors", "hqq", "aqlm", "eetq"):
        if dominant and dominant.startswith("F8"):
            return "fp8"
        return f"int{bits or 4}"
    if dominant and dominant.startswith("F8"):
        return "fp8"
    return None


def summarize(headers: Iterable[SafetensorsHeader], quant_config: Mapping[str, Any] | None = None) -> TensorSummary:
    """Count parameters over every tensor of every shard (packed values unpacked, scales and buffers left out)."""
    tensors = [t for h in headers for t in h.tensors]
    names = {t.name for t in tensors}
    notes: list[Message] = []
    quantized = bool(quant_config) or any(
        t.name.endswith(("qweight", "weight_packed", "weight_scale_inv", ".absmax", "_blocks")) for t in tensors
    )
    bits = _quant_bits(quant_config)
    dtypes: Counter[str] = Counter()
    precision: Counter[str] = Counter()
    params = weight_bytes = skipped_aux = skipped_buffers = 0
    packed_assumed = False
    for t in tensors:
        weight_bytes += t.nbytes
        n = t.elements
        if t.name.endswith(_BUFFER_SUFFIXES) or (t.name.endswith("attn.bias") and len(t.shape) == 4):
            skipped_buffers += n
            continue
        if quantized and t.name.endswith(_AUX_SUFFIXES):
            skipped_aux += n
            continue
        key, prec = t.dtype, _PRECISION.get(t.dtype)
        if quantized and t.dtype in ("I32", "U32") and t.name.endswith(("qweight", "weight_packed")):
            b = bits or _PACKED_BITS_DEFAULT
            packed_assumed |= bits is None
            n *= 32 // b
            key, prec = f"int{b} (packed in {t.dtype})", f"int{b}"
        elif quantized and t.dtype == "U8" and (
            t.name.endswith("_blocks") or f"{t.name}.absmax" in names or f"{t.name}_scale" in names
            or t.name.endswith("weight_packed")
        ):
            n *= 2
            key, prec = "4-bit (packed in U8)", "int4"
        params += n
        dtypes[key] += n
        if prec:
            precision[prec] += n
    if skipped_aux:
        notes.append(message("file.quant_aux_skipped", values=skipped_aux))
    if skipped_buffers:
        notes.append(message("file.buffers_skipped", values=skipped_buffers))
    if packed_assumed:
        notes.append(message("file.packed_bits_assumed", bits=_PACKED_BITS_DEFAULT))
    dominant_dtype = max(dtypes, key=dtypes.__getitem__) if dtypes else None
    weights_dtype = max(precision, key=precision.__getitem__) if precision else None
    method = str((quant_config or {}).get("quant_method", "")).lower()
    if weights_dtype == "int4" and method in ("mxfp4", "modelopt"):
        weights_dtype = "fp4"  # values packed two per byte are FP4 (E2M1) here, not integers
    quant = _quant_label(quant_config, bits, dominant_dtype) if quantized else None
    return TensorSummary(params, weight_bytes, dict(dtypes), weights_dtype, quant, notes)


# ------------------------------------------------------------------------------------------ architecture


_LAYER = re.compile(r"^(?:model\.)?layers\.(\d+)\.")


def config_from_tensors(tensors: Iterable[TensorInfo], where: str) -> dict[str, Any]:
    """A Llama-style config.json reconstructed from tensor names and shapes, for a safetensors file that came
    without one. Only the standard decoder layout (``model.layers.N.self_attn.q_proj``...) can be read this way;
    anything else, or an MoE (whose experts-per-token no tensor records), needs the model's config.json."""
    by_name = {t.name: t for t in tensors}
    ask = "put the model's config.json beside it (or point --model at the config)"

    def shape(name: str) -> tuple[int, ...] | None:
        t = by_name.get(name) or by_name.get(f"model.{name}")
        return t.shape if t else None

    embed = shape("embed_tokens.weight")
    q = shape("layers.0.self_attn.q_proj.weight")
    k = shape("layers.0.self_attn.k_proj.weight")
    if embed is None or q is None or k is None or len(embed) != 2:
        raise fail(where, None, f"cannot infer the architecture from these tensor names; {ask}")
    if any(".experts." in n or "block_sparse_moe" in n for n in by_name):
        raise fail(where, None, f"a mixture-of-experts checkpoint: experts per token are not in the tensors; {ask}")
    layers = 1 + max(int(m.group(1)) for n in by_name if (m := _LAYER.match(n)))
    vocab, hidden = embed
    up = shape("layers.0.mlp.up_proj.weight")
    if up is None or shape("layers.0.mlp.gate_proj.weight") is None:
        raise fail(where, None, f"no mlp.gate_proj / up_proj in layer 0: not a Llama-style layout; {ask}")
    q_norm = shape("layers.0.self_attn.q_norm.weight")
    # the widest common head size that divides both q and k (q x k shapes fix heads x head_dim, not each)
    head_dim = q_norm[0] if q_norm else next((d for d in (128, 64, 32, 16, 8) if q[0] % d == 0 and k[0] % d == 0), 1)
    config: dict[str, Any] = {
        "model_type": "qwen3" if q_norm else "llama",
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": q[0] // head_dim,
        "num_key_value_heads": max(1, k[0] // head_dim),
        "head_dim": head_dim,
        "intermediate_size": up[0],
        "vocab_size": vocab,
        "tie_word_embeddings": shape("lm_head.weight") is None and "lm_head.weight" not in by_name,
    }
    has_q_bias = shape("layers.0.self_attn.q_proj.bias") is not None
    has_o_bias = shape("layers.0.self_attn.o_proj.bias") is not None
    if has_q_bias and not has_o_bias:
        config["model_type"] = "qwen2"
    else:
        config["attention_bias"] = has_q_bias
    config["mlp_bias"] = shape("layers.0.mlp.up_proj.bias") is not None
    return config
