"""GGUF files (llama.cpp): architecture from the metadata, exact counts and quant types from the tensor table.

Read with the ``gguf`` package (the optional extra ``files``), which memory-maps the file and parses only the
header: key/value metadata (``{arch}.block_count``, ``{arch}.embedding_length``, ``{arch}.attention.head_count``,
``..head_count_kv``, ``{arch}.feed_forward_length``, ``{arch}.context_length``, ``{arch}.expert_count``...) and
the tensor table (name, shape, GGML type, byte size). No tensor data is read.
Key names: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md ("Standardized key-value pairs").
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

from llmsizer.catalog.modelfiles._common import LoadedModel, fail, finish_spec, slug
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


def _reader(path: Path) -> Any:
    try:
        import gguf
    except ImportError:
        raise fail(str(path), None, _HINT) from None
    try:
        return gguf.GGUFReader(path, "r")
    except Exception as e:  # noqa: BLE001 - the gguf package raises bare ValueError/IndexError on bad files
        raise fail(str(path), None, f"not a readable GGUF file ({type(e).__name__}: {e})") from None


def _value(field: Any) -> Any:
    """A metadata value as Python (str, int, float, bool or list), for any gguf package version."""
    if hasattr(field, "contents"):
        return field.contents()
    from gguf import GGUFValueType

    def one(i: int, t: Any) -> Any:
        part = field.parts[i]
        return bytes(part).decode("utf-8", "replace") if t == GGUFValueType.STRING else part.tolist()[0]

    if field.types[0] == GGUFValueType.ARRAY:
        return [one(i, field.types[-1]) for i in field.data]
    return one(field.data[0], field.types[0])


class _Meta:
    def __init__(self, reader: Any, where: str):
        self.fields = reader.fields
        self.where = where
        arch = self.get("general.architecture")
        if not isinstance(arch, str) or not arch:
            raise fail(where, "general.architecture", "missing from the GGUF metadata")
        self.arch = arch

    def get(self, key: str, default: Any = None) -> Any:
        f = self.fields.get(key)
        return default if f is None else _value(f)

    def count(self, key: str) -> int | None:
        """Length of an array field without decoding it (tokenizer.ggml.tokens holds 100k+ strings)."""
        f = self.fields.get(key)
        return None if f is None else len(f.data)

    def integer(self, key: str, default: Any = ...) -> Any:
        full = f"{self.arch}.{key}"
        v = self.get(full)
        if isinstance(v, list):  # per-layer values (OpenELM, Gemma 3n...): the widest layer sizes memory
            v = max(v) if v else None
        if v is None:
            if default is ...:
                raise fail(self.where, full, "missing from the GGUF metadata")
            return default
        if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v or v < 0:
            raise fail(self.where, full, f"expected a non-negative integer, got {v!r}")
        return int(v)


def _split_files(path: Path) -> list[Path]:
    """All parts of a split GGUF (``name-00001-of-00003.gguf``), the given file first; just ``[path]`` otherwise."""
    m = _SPLIT.match(path.name)
    if not m:
        return [path]
    n = int(m["n"])
    parts = [path.with_name(f"{m['stem']}-{i:05d}-of-{n:05d}.gguf") for i in range(1, n + 1)]
    missing = [p.name for p in parts if not p.exists()]
    if missing:
        raise fail(str(path), None, f"split GGUF: parts missing beside it: {', '.join(missing[:3])}")
    return parts


def load_gguf(path: Path) -> LoadedModel:
    """Architecture, exact parameter count, bytes and quant types of a (possibly split) GGUF model."""
    where = str(path)
    parts = _split_files(path)
    readers = [_reader(p) for p in parts]
    meta = _Meta(readers[0], where)  # split parts are in order: the first holds the metadata
    tensors = [t for r in readers for t in r.tensors]
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
    fields: dict[str, Any] = {
        "id": slug(str(meta.get("general.name") or path.stem)),
        "name": str(meta.get("general.name") or path.stem),
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
        dense = sum(1 for i in range(layers) if not has(f"blk.{i}.ffn_up_exps.weight"))
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
