"""GGUF files (llama.cpp): architecture from the metadata, exact counts and quant types from the tensor table.

The header is parsed here (``_parse``), memory-mapped and never past the tensor table: key/value metadata
(``{arch}.block_count``, ``{arch}.embedding_length``, ``{arch}.attention.head_count``, ``..head_count_kv``,
``{arch}.feed_forward_length``, ``{arch}.context_length``, ``{arch}.expert_count``...) and the tensor table
(name, shape, GGML type, offset). No tensor data is read. The optional ``gguf`` package (extra ``files``)
supplies the GGML type table (block sizes, type names) and the file-type names, so new quant types need no
change here. Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md (and its "Standardized
key-value pairs").

A GGUF file is untrusted: every count and length is checked against the bytes left in the file *before*
anything is allocated or looped over (a string needs its length in bytes, an array item at least its item
size, a string item at least 8 bytes), and against caps that bound the work on sparse files too:
``MAX_GGUF_KEYS`` metadata keys, ``MAX_GGUF_TENSORS`` tensors, ``MAX_GGUF_STRING_ITEMS`` items over all the
string arrays (the tokenizer's tokens and merges), keys and tensor names of at most ``_MAX_KEY_BYTES``, at most
four dimensions, no nested arrays (llama.cpp refuses them too), every tensor's data inside the file. Every
failure is one line, "not a readable GGUF file (...)", naming the file; strings are decoded as strict UTF-8 and
only when they are used.
"""

from __future__ import annotations

import math
import mmap
import re
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmsizer.catalog.modelfiles._common import (
    MAX_GGUF_KEYS,
    MAX_GGUF_STRING_ITEMS,
    MAX_GGUF_TENSORS,
    MAX_NAME_CHARS,
    MAX_SHARDS,
    LoadedModel,
    check_text,
    confined,
    fail,
    finish_spec,
    is_file,
    open_regular,
    os_reason,
    short_repr,
    slug,
)
from llmsizer.explain import Message, message

#: The context length assumed when the GGUF metadata gives none.
_DEFAULT_CONTEXT = 2048
#: GGML tensor type -> the llmsizer precision of a parameter stored in it.
_PRECISION = {"F32": "fp32", "F16": "fp16", "BF16": "bf16", "F64": "fp32", "Q8_0": "int8", "MXFP4": "fp4"}
_GELU_ARCHES = ("gemma", "gemma2", "gemma3", "falcon", "gpt2", "bloom", "starcoder", "starcoder2", "phi2", "gptneox",
                "mpt", "gptj")
_ALIBI_ARCHES = ("bloom", "mpt", "baichuan")
_PARALLEL_ARCHES = ("falcon", "command-r", "cohere2", "phi2", "gptj", "gptneox")
_SPLIT = re.compile(r"^(?P<stem>.*)-(?P<i>\d{5})-of-(?P<n>\d{5})\.gguf$")
_HINT = "reading GGUF files needs the optional 'gguf' package: pip install 'llmsizer[files]' (or: pip install gguf)"

#: Metadata value types (GGUF ``gguf_metadata_value_type``): struct codes of the fixed-size ones.
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
#: Bytes of a key or a tensor name (llama.cpp: tensor names under 64 bytes; real keys under 80).
_MAX_KEY_BYTES = 256
#: Bytes of a metadata string, and items of a number array, decoded when a value is used (only short ones are).
_MAX_VALUE_BYTES = 65_536
_MAX_VALUE_ITEMS = 65_536
#: Dimensions of a tensor (ggml ``GGML_MAX_DIMS``).
_MAX_DIMS = 4
#: Integers from the metadata above this are no sizes (and would overflow a float in a product of a few).
_MAX_INT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class _Tensor:
    name: str
    shape: tuple[int, ...]  # as stored: innermost dimension first
    tensor_type: Any  # gguf.GGMLQuantizationType
    n_elements: int
    n_bytes: int


class _Bad(Exception):
    """A structural problem of the file; ``_parse`` turns it into "not a readable GGUF file (...)"."""


class _Header:
    """One GGUF file's metadata (decoded on use, from the memory map) and tensor table."""

    def __init__(self, buf: Any, size: int):
        self.buf, self.size = buf, size
        self.order = "<"
        self.pos = 0
        self.fields: dict[str, tuple[int, int, int, int]] = {}  # key -> (type, offset, item type, count)
        self.tensors: list[_Tensor] = []
        self.string_items = 0

    # -- reading, every length checked against what is left of the file first
    def need(self, n: int, what: str) -> None:
        if n > len(self.buf) - self.pos:
            raise _Bad(f"{what} runs past the end of the file: truncated, or not GGUF")

    def fixed(self, code: str, what: str) -> Any:
        n = struct.calcsize("<" + code)  # standard sizes, whichever the byte order
        self.need(n, what)
        (v,) = struct.unpack_from(self.order + code, self.buf, self.pos)
        self.pos += n
        return v

    def text(self, what: str, limit: int) -> str:
        n = self.fixed("Q", what)
        if n > limit:
            raise _Bad(f"{what} of {n:,} bytes (at most {limit:,})")
        self.need(n, what)
        raw = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Bad(f"{what} is not UTF-8 text") from None

    def skip_value(self, vtype: int, what: str) -> tuple[int, int, int, int]:
        """Skip one metadata value; (type, offset, item type, count) to decode it later."""
        at = self.pos
        if vtype in _SCALARS:
            width = struct.calcsize("<" + _SCALARS[vtype])
            self.need(width, what)
            self.pos += width
            return vtype, at, 0, 1
        if vtype == _STRING:
            n = self.fixed("Q", what)
            self.need(n, what)
            self.pos += n
            return vtype, at, 0, 1
        if vtype != _ARRAY:
            raise _Bad(f"{what}: unknown value type {vtype}")
        itype = self.fixed("I", what)
        count = self.fixed("Q", what)
        at = self.pos
        if itype in _SCALARS:
            width = struct.calcsize("<" + _SCALARS[itype])
            self.need(count * width, what)  # the whole array must fit what is left
            self.pos += count * width
        elif itype == _STRING:
            self.need(count * 8, what)  # each string item is at least its 8-byte length
            self.string_items += count
            if self.string_items > MAX_GGUF_STRING_ITEMS:
                raise _Bad(f"over {MAX_GGUF_STRING_ITEMS:,} strings in the metadata's arrays")
            buf, unpack, end, pos = self.buf, struct.Struct(self.order + "Q").unpack_from, len(self.buf), self.pos
            for _ in range(count):  # at most MAX_GGUF_STRING_ITEMS over the file
                if end - pos < 8:
                    raise _Bad(f"{what} runs past the end of the file: truncated, or not GGUF")
                (n,) = unpack(buf, pos)
                pos += 8
                if n > end - pos:
                    raise _Bad(f"{what} runs past the end of the file: truncated, or not GGUF")
                pos += n
            self.pos = pos
        elif itype == _ARRAY:
            raise _Bad(f"{what}: an array of arrays (not supported by llama.cpp either)")
        else:
            raise _Bad(f"{what}: unknown array item type {itype}")
        return _ARRAY, at, itype, count

    def value(self, key: str) -> Any:
        """The metadata value of ``key`` as Python (str, int, float, bool or list); None when absent."""
        entry = self.fields.get(key)
        if entry is None:
            return None
        vtype, at, itype, count = entry
        shown, saved = short_repr(key), self.pos
        self.pos = at
        try:
            if vtype in _SCALARS:
                return self.fixed(_SCALARS[vtype], shown)
            if vtype == _STRING:
                return self.text(shown, _MAX_VALUE_BYTES)
            if itype == _STRING:  # no key llmsizer reads is one (the tokens are only counted)
                raise _Bad(f"{shown}: an array of strings where a number or a string was expected")
            if count > _MAX_VALUE_ITEMS:
                raise _Bad(f"{shown}: an array of {count:,} items where a few were expected")
            return list(struct.unpack_from(f"{self.order}{count}{_SCALARS[itype]}", self.buf, at))
        finally:
            self.pos = saved


def _parse(path: Path, where: str, types: Any) -> _Header:
    """The metadata and tensor table of one GGUF file (see the module docstring for what is checked)."""
    f, size = open_regular(path, where)
    with f:
        try:
            buf: Any = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        except (OSError, ValueError):  # a file system without mmap: the header is read instead (bounded)
            try:
                f.seek(0)
                buf = f.read(64_000_000)
            except OSError as e:
                raise fail(where, None, f"cannot read: {os_reason(e)}") from None
    h = _Header(buf, size)
    try:
        _parse_into(h, types)
    except _Bad as e:
        _close(h)
        raise fail(where, None, f"not a readable GGUF file ({e})") from None
    except BaseException:
        _close(h)
        raise
    return h


def _close(h: _Header) -> None:
    if isinstance(h.buf, mmap.mmap):
        h.buf.close()


def _parse_into(h: _Header, types: Any) -> None:
    h.need(8, "the header")
    if bytes(h.buf[:4]) != b"GGUF":
        raise _Bad("it does not start with the GGUF magic bytes")
    h.pos = 4
    version = h.fixed("I", "the version")
    if version & 0xFFFF == 0:  # written on a big-endian machine
        h.order, h.pos = ">", 4
        version = h.fixed("I", "the version")
    if version not in (2, 3):
        raise _Bad(f"GGUF version {version}; llmsizer reads versions 2 and 3 (convert it with a recent llama.cpp)")
    n_tensors = h.fixed("Q", "the tensor count")
    n_keys = h.fixed("Q", "the metadata count")
    if n_keys > MAX_GGUF_KEYS:
        raise _Bad(f"{n_keys:,} metadata keys declared; llmsizer reads at most {MAX_GGUF_KEYS:,}")
    if n_tensors > MAX_GGUF_TENSORS:
        raise _Bad(f"{n_tensors:,} tensors declared; llmsizer reads at most {MAX_GGUF_TENSORS:,}")
    # each key needs at least 8 (length) + 4 (type) + 1 bytes, each tensor 8 + 4 + 4 + 8
    h.need(n_keys * 13 + n_tensors * 24, "the declared metadata and tensor table")
    for i in range(n_keys):
        key = h.text(f"metadata key #{i + 1}", _MAX_KEY_BYTES)
        if key in h.fields:
            raise _Bad(f"the metadata key {short_repr(key)} appears twice")
        h.fields[key] = h.skip_value(h.fixed("I", short_repr(key)), short_repr(key))
    sizes, names, offsets = types.sizes, set(), []
    for i in range(n_tensors):
        name = h.text(f"the name of tensor #{i + 1}", _MAX_KEY_BYTES)
        shown = short_repr(name)
        if name in names:
            raise _Bad(f"tensor {shown} is listed twice")
        names.add(name)
        n_dims = h.fixed("I", shown)
        if n_dims > _MAX_DIMS:
            raise _Bad(f"tensor {shown} has {n_dims:,} dimensions (at most {_MAX_DIMS})")
        h.need(8 * n_dims, shown)
        dims = struct.unpack_from(f"{h.order}{n_dims}Q", h.buf, h.pos)
        h.pos += 8 * n_dims
        code = h.fixed("I", shown)
        try:
            ggml_type = types.qtype(code)
        except ValueError:
            raise _Bad(f"tensor {shown} has an unknown GGML type {code}") from None
        offsets.append(h.fixed("Q", shown))
        if ggml_type not in sizes:
            raise _Bad(f"tensor {shown} has a GGML type of unknown size ({ggml_type.name})")
        block, type_size = sizes[ggml_type]
        n = math.prod(dims)
        h.tensors.append(_Tensor(name, tuple(dims), ggml_type, n, n * type_size // block))
    alignment = h.value("general.alignment") if "general.alignment" in h.fields else 32
    if isinstance(alignment, bool) or not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise _Bad(f"general.alignment {short_repr(alignment)} is not a power of two")
    data_start = -(-h.pos // alignment) * alignment
    room = h.size - data_start
    for t, offset in zip(h.tensors, offsets):
        if offset + t.n_bytes > room:
            raise _Bad(f"the data of tensor {short_repr(t.name)} runs past the end of the file: truncated")


class _Types:
    """The gguf package's GGML type table (imported only when a GGUF file is read)."""

    def __init__(self, where: str):
        try:
            from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
        except ImportError:
            raise fail(where, None, _HINT) from None
        self.sizes, self.qtype = GGML_QUANT_SIZES, GGMLQuantizationType


class _Meta:
    def __init__(self, header: _Header, where: str):
        self.header = header
        self.where = where
        arch = self.get("general.architecture")
        if not isinstance(arch, str) or not arch:
            raise fail(where, "general.architecture", "missing from the GGUF metadata")
        self.arch = check_text(where, "general.architecture", arch, MAX_NAME_CHARS)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            v = self.header.value(key)
        except _Bad as e:
            raise fail(self.where, None, f"not a readable GGUF file ({e})") from None
        return default if v is None else v

    def count(self, key: str) -> int | None:
        """Length of an array field without decoding it (tokenizer.ggml.tokens holds 100k+ strings)."""
        entry = self.header.fields.get(key)
        return None if entry is None else entry[3]

    def integer(self, key: str, default: Any = ...) -> Any:
        full = f"{self.arch}.{key}"
        v = self.get(full)
        if isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            v = max(v) if v else None  # per-layer values (OpenELM, Gemma 3n...): the widest layer sizes memory
        if v is None:
            if default is ...:
                raise fail(self.where, full, "missing from the GGUF metadata")
            return default
        if (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or int(v) != v
                or not 0 <= v <= _MAX_INT):
            raise fail(self.where, full, f"expected a non-negative integer, got {short_repr(v)}")
        return int(v)


def _split_files(path: Path) -> list[Path]:
    """All parts of a split GGUF (``name-00001-of-00003.gguf``), in order, each but ``path`` confined to its folder;
    just ``[path]`` otherwise."""
    m = _SPLIT.match(path.name)
    if not m:
        return [path]
    n = int(m["n"])
    if n > MAX_SHARDS:
        raise fail(str(path), None, f"a split GGUF of {n:,} parts: llmsizer reads at most {MAX_SHARDS:,}")
    parts = [path.with_name(f"{m['stem']}-{i:05d}-of-{n:05d}.gguf") for i in range(1, n + 1)]
    missing = [p.name for p in parts if not is_file(p)]
    if missing:
        raise fail(str(path), None, f"split GGUF: parts missing beside it: {', '.join(missing[:3])}")
    return [p if p == path else confined(path.parent, p.name, str(path), "split part") for p in parts]


def load_gguf(path: Path) -> LoadedModel:
    """Architecture, exact parameter count, bytes and quant types of a (possibly split) GGUF model."""
    where = str(path)
    types = _Types(where)
    parts = _split_files(path)
    first = _parse(parts[0], str(parts[0]), types)  # split parts are in order: the first holds the metadata
    try:
        return _load(path, parts, first, types)
    finally:
        _close(first)


def _load(path: Path, parts: list[Path], first: _Header, types: _Types) -> LoadedModel:
    where = str(path)
    tensors = list(first.tensors)
    for p in parts[1:]:
        part = _parse(p, str(p), types)
        _close(part)
        tensors += part.tensors
        if len(tensors) > MAX_GGUF_TENSORS:
            raise fail(str(p), None, f"the parts list over {MAX_GGUF_TENSORS:,} tensors: more than llmsizer reads")
    meta = _Meta(first, where)
    if not tensors:
        raise fail(where, None, "the GGUF file lists no tensors")
    notes: list[Message] = [message("file.gguf_arch", arch=meta.arch, files=len(parts))]
    shapes = {t.name: [int(x) for x in t.shape] for t in tensors}

    def has(name: str) -> bool:
        return name in shapes

    arch = meta.arch
    layers = meta.integer("block_count")
    hidden = meta.integer("embedding_length")
    heads = meta.integer("attention.head_count")
    kv = meta.integer("attention.head_count_kv", heads) or heads
    if heads == 0 or layers == 0 or hidden == 0:
        raise fail(where, f"{arch}.block_count", "zero layers, heads or width")
    if heads % kv:
        raise fail(where, f"{arch}.attention.head_count_kv", f"{heads} heads are not divisible by {kv} KV heads")

    embd = shapes.get("token_embd.weight")
    vocab = meta.integer("vocab_size", None) or meta.count("tokenizer.ggml.tokens")
    if embd is not None:
        vocab = embd[1] if len(embd) > 1 and embd[0] == hidden else embd[0]
    if not vocab:
        raise fail(where, "tokenizer.ggml.tokens", "no vocabulary size (no tokens, no token_embd tensor)")

    ffn = meta.integer("feed_forward_length", 0)
    up = shapes.get("blk.0.ffn_up.weight")
    gated = has("blk.0.ffn_gate.weight") or has("blk.0.ffn_gate_exps.weight")
    if up is not None and not gated and ffn and len(up) > 1 and up[1] == 2 * ffn:
        gated = True  # Phi-3: gate and up fused into one ffn_up of width 2 x ffn
    key_length = meta.integer("attention.key_length_mla", None) or meta.integer("attention.key_length", None)
    head_dim = key_length if key_length and key_length * heads != hidden else None

    per_layer_norms = [n for n in ("attn_norm", "attn_norm_2", "ffn_norm", "post_attention_norm", "post_ffw_norm",
                                   "attn_post_norm", "ffn_post_norm") if has(f"blk.0.{n}.weight")]
    parallel = len(per_layer_norms) == 1 and (arch in _PARALLEL_ARCHES or not has("blk.0.ffn_norm.weight"))
    name = meta.get("general.name") or path.stem
    name = check_text(where, "general.name", name if isinstance(name, str) else path.stem, MAX_NAME_CHARS)
    fields: dict[str, Any] = {
        "id": slug(name),
        "name": name,
        "family": arch,
        "layers": layers,
        "hidden_size": hidden,
        "heads": heads,
        "kv_heads": kv,
        "head_dim": head_dim,
        "attention": "mha" if kv == heads else "mqa" if kv == 1 else "gqa",
        "ffn_kind": "gated" if gated else "plain",
        "activation": "gelu" if arch in _GELU_ARCHES else "silu",
        "vocab_size": vocab,
        "tied_embeddings": not has("output.weight"),
        "max_context": meta.integer("context_length", 0) or _DEFAULT_CONTEXT,
        "norm": "layernorm" if has("blk.0.attn_norm.bias") or has("output_norm.bias") else "rmsnorm",
        "qkv_bias": has("blk.0.attn_q.bias") or has("blk.0.attn_qkv.bias"),
        "attn_out_bias": has("blk.0.attn_output.bias"),
        "mlp_bias": has("blk.0.ffn_up.bias") or has("blk.0.ffn_down.bias"),
        "lm_head_bias": has("output.bias"),
        "parallel_block": parallel,
        "extra_norms_per_layer": max(0, len(per_layer_norms) - 2) if not parallel else 0,
        "embedding_norm": has("token_embd_norm.weight"),
        "position_embedding": "alibi" if arch in _ALIBI_ARCHES else "rope",
        "source": f"GGUF file {path}",
    }
    if not meta.integer("context_length", 0):
        notes.append(message("file.gguf_no_context", tokens=_DEFAULT_CONTEXT))
    pos = shapes.get("position_embd.weight")
    if pos is not None:
        fields.update(position_embedding="learned", learned_positions=pos[-1] if pos[0] == hidden else pos[0])
    q_norm = shapes.get("blk.0.attn_q_norm.weight")
    if q_norm is not None:
        d = head_dim or hidden // heads
        fields["qk_norm"] = "head" if q_norm[0] == d else "full"

    experts = meta.integer("expert_count", 0)
    expert_ffn = meta.integer("expert_feed_forward_length", 0)
    if experts:
        exps = shapes.get("blk.0.ffn_up_exps.weight") or next(
            (s for n, s in shapes.items() if n.endswith("ffn_up_exps.weight")), None)
        if not expert_ffn and exps is not None:
            expert_ffn = exps[1]
        # layers without experts, counted off the tensor table (never a loop over an untrusted layer count)
        sparse = {n.split(".")[1] for n in shapes if n.startswith("blk.") and n.endswith(".ffn_up_exps.weight")}
        dense = layers - sum(1 for i in sparse if i.isdigit() and int(i) < layers)
        shared = meta.integer("expert_shared_count", 0)
        shared_ffn = meta.integer("expert_shared_feed_forward_length", 0)
        shexp = shapes.get(next((n for n in shapes if n.endswith("ffn_up_shexp.weight")), ""), None)
        if shexp is not None and not shared:
            shared = 1
            shared_ffn = shared_ffn or shexp[1]
        if shared and not shared_ffn:
            shared_ffn = expert_ffn * shared if arch.startswith("deepseek") else expert_ffn
            # DeepSeek stores its shared experts as one MLP of n_shared x expert width
        fields["moe"] = {
            "experts": experts,
            "experts_per_token": meta.integer("expert_used_count"),
            "expert_ffn_size": expert_ffn or ffn,
            "shared_experts": 1 if shared and arch.startswith("deepseek") else shared,
            "shared_expert_ffn_size": shared_ffn or None,
            "shared_expert_gate": any(n.endswith("ffn_gate_inp_shexp.weight") for n in shapes),
            "dense_layers": dense,
            "router_bias": any(n.endswith(("exp_probs_b.bias", "exp_probs_b")) for n in shapes),
        }
        notes.append(message("file.gguf_moe", experts=experts, experts_per_token=fields["moe"]["experts_per_token"],
                             dense_layers=dense))
    fields["ffn_size"] = ffn or expert_ffn or 4 * hidden

    kv_lora = meta.integer("attention.kv_lora_rank", 0)
    if kv_lora:
        rope = meta.integer("rope.dimension_count")
        k_len = meta.integer("attention.key_length_mla", None) or meta.integer("attention.key_length")
        v_len = meta.integer("attention.value_length_mla", None) or meta.integer("attention.value_length")
        fields.update(attention="mla", kv_heads=heads, head_dim=None, mla={
            "q_lora_rank": meta.integer("attention.q_lora_rank", 0),
            "kv_lora_rank": kv_lora,
            "qk_nope_head_dim": k_len - rope,
            "qk_rope_head_dim": rope,
            "v_head_dim": v_len,
        })

    window = meta.integer("attention.sliding_window", 0)
    if window and window < fields["max_context"]:
        pattern = {"gemma2": 2, "gemma3": 6, "cohere2": 4}.get(arch)
        n = layers if pattern is None else (math.ceil(layers / 2) if pattern == 2 else layers - layers // pattern)
        fields.update(sliding_window=window, sliding_window_layers=n)
        notes.append(message("file.sliding_window", window=window, layers_windowed=n, layers=layers))

    # exact figures from the tensor table
    params = sum(int(t.n_elements) for t in tensors)
    weight_bytes = sum(int(t.n_bytes) for t in tensors)
    dtypes: Counter[str] = Counter()
    for t in tensors:
        dtypes[getattr(t.tensor_type, "name", str(t.tensor_type))] += int(t.n_elements)
    quant = _file_type(meta, dtypes)
    dominant = max(dtypes, key=dtypes.__getitem__)
    bits = weight_bytes * 8 / params
    notes.append(message("file.storage_types", dtypes=tuple(dtypes.most_common(4)), params=params))
    if dominant in _PRECISION:
        weights_dtype: str | None = _PRECISION[dominant]
    else:  # block-quantized: the narrowest llmsizer precision that holds the average bits per parameter
        weights_dtype = "int4" if bits <= 5 else "int8" if bits <= 9 else None
    if quant:
        notes.append(message("file.gguf_quantized", quant=quant, bits=bits))
    spec = finish_spec(fields, where, notes, exact_params=params)
    return LoadedModel(spec=spec, notes=tuple(notes), source=where, exact_params=params, weight_bytes=weight_bytes,
                       dtypes=dict(dtypes), weights_dtype=weights_dtype, quant=quant)


def _file_type(meta: _Meta, dtypes: Counter[str]) -> str | None:
    """``general.file_type`` as a --quant name (MOSTLY_Q4_K_M -> q4_k_m); None for plain F32/F16/BF16 files."""
    ft = meta.get("general.file_type")
    name: str | None = None
    if isinstance(ft, int):
        try:
            from gguf import LlamaFileType

            name = LlamaFileType(ft).name
        except (ImportError, ValueError):
            name = None
    if name is None:  # no or unknown file_type: the most common type of the big tensors
        name = max(dtypes, key=dtypes.__getitem__)
    name = name.removeprefix("MOSTLY_").removeprefix("ALL_").lower()
    return None if name in ("f32", "f16", "bf16", "guessed") else name
