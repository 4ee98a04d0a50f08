"""Read a model's own files, offline: Hugging Face ``config.json``, safetensors headers, GGUF.

``load_model_file(path) -> LoadedModel`` accepts
- a ``config.json`` (any name: the content decides), or a folder holding one; safetensors beside it (an index
  and its shards, or single files) are then read for the exact parameter count, bytes and dtypes (headers only);
- a ``.safetensors`` file or a ``model.safetensors.index.json``: exact counts, and the architecture from the
  ``config.json`` beside it, else inferred from Llama-style tensor names (else a clear error asking for it);
- a ``.gguf`` file (or the first of a split set), through the optional ``gguf`` package.

Every problem is a one-line ``ModelFileError`` (exit code 2) naming the file and, where there is one, the field.
Nothing here touches the network; ``llmsizer.hub`` fetches the same files from a Hugging Face endpoint.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llmsizer.catalog.modelfiles._common import MAX_CONFIG_BYTES, LoadedModel, fail, finish_spec, slug
from llmsizer.catalog.modelfiles.hfconfig import CANONICAL_FAMILY, READERS, derive
from llmsizer.catalog.modelfiles.safetensors_header import (
    SafetensorsHeader,
    config_from_tensors,
    read_header,
    summarize,
)
from llmsizer.explain import Message, message

__all__ = ["MAX_CONFIG_BYTES", "READERS", "LoadedModel", "load_model_file", "model_from_config", "parse_config_bytes"]

_TORCH_DTYPES = {"float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16",
                 "float8_e4m3fn": "fp8"}
_SHARD = re.compile(r"^(?P<stem>.*)-(?P<i>\d{5})-of-(?P<n>\d{5})\.safetensors$")
_ORG_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def load_model_file(path: str | os.PathLike[str]) -> LoadedModel:
    """Read a config.json, a folder, a safetensors file or index, or a GGUF file; see the module docstring."""
    p = Path(path)
    where = str(path)
    try:
        if p.is_dir():
            return _load_dir(p)
        if not p.exists():
            raise fail(where, None, "no such file or directory")
        if not p.is_file():
            raise fail(where, None, "not a regular file")
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(9)
    except OSError as e:
        raise fail(where, None, f"cannot read: {e.strerror or e}") from None
    if size == 0:
        raise fail(where, None, "empty file: expected a config.json, a .safetensors or a .gguf file")
    if head[:4] == b"GGUF":
        from llmsizer.catalog.modelfiles.gguf_file import load_gguf

        return load_gguf(p)
    if p.name.endswith(".gguf"):
        raise fail(where, None, "not a GGUF file (it does not start with the GGUF magic bytes)")
    if p.name.endswith(".safetensors") or _looks_like_safetensors(head, size):
        return _load_safetensors_file(p)
    data = _read_json(p, size)
    if "weight_map" in data:
        return _load_index(p, data)
    return model_from_config(data, where, name=_name_for(data, p), source=where,
                             headers=_headers_beside(p) if p.name == "config.json" else None)


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    """An 8-byte little-endian length that fits the file, then a JSON object (text files fail the length)."""
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") <= size - 8


# ---------------------------------------------------------------------------------------------- JSON


def parse_config_bytes(raw: bytes, where: str) -> dict[str, Any]:
    """Parse a config.json's bytes into a dict; binary data, bad JSON or a non-object is one clear line."""
    if len(raw) > MAX_CONFIG_BYTES:
        raise fail(where, None, f"over {MAX_CONFIG_BYTES // 1_000_000} MB: too large for a config.json")
    if not raw.strip():
        raise fail(where, None, "empty file: expected a JSON config")
    if b"\x00" in raw[:4096]:
        raise fail(where, None, "binary data, not a JSON config (expected config.json, .safetensors or .gguf)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise fail(where, None, "not UTF-8 text, so not a JSON config") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise fail(where, None, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(data, dict):
        raise fail(where, None, f"expected a JSON object, got a JSON {type(data).__name__}")
    return data


def _read_json(p: Path, size: int) -> dict[str, Any]:
    if size > MAX_CONFIG_BYTES:
        raise fail(str(p), None, f"{size:,} bytes: too large for a config.json (limit {MAX_CONFIG_BYTES:,}); "
                                 "is this the right file?")
    try:
        with open(p, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise fail(str(p), None, f"cannot read: {e.strerror or e}") from None
    return parse_config_bytes(raw, str(p))


# ---------------------------------------------------------------------------------------------- assembly


def model_from_config(
    data: Mapping[str, Any],
    where: str,
    *,
    name: str,
    source: str,
    headers: list[SafetensorsHeader] | None = None,
    weight_bytes: int | None = None,
    notes: list[Message] | None = None,
) -> LoadedModel:
    """A ``LoadedModel`` from a parsed config.json and, when given, the safetensors headers of its weights."""
    derived, model_type = derive(data, where)
    all_notes = list(notes or [])
    all_notes.append(message("file.architecture_read", where=where, model_type=model_type))
    all_notes += derived.notes
    fields = {
        **derived.fields,
        "id": slug(name),
        "name": name,
        "family": CANONICAL_FAMILY.get(model_type.lower(), model_type) or "unknown",
        "source": f"model file {source}",
    }
    qc = data.get("quantization_config")
    qc = qc if isinstance(qc, Mapping) else None
    weights_dtype = _TORCH_DTYPES.get(str(derived.torch_dtype).removeprefix("torch."))
    exact = quant = None
    dtypes: dict[str, int] = {}
    if headers:
        s = summarize(headers, qc)
        exact, weight_bytes, dtypes = s.params, s.weight_bytes, s.dtypes
        weights_dtype, quant = s.weights_dtype or weights_dtype, s.quant
        top = tuple(sorted(dtypes.items(), key=lambda kv: -kv[1])[:3])
        all_notes.append(message("file.headers_read", files=len(headers), weight_bytes=weight_bytes, dtypes=top,
                                 params=exact))
        all_notes += s.notes
    elif qc:
        from llmsizer.catalog.modelfiles.safetensors_header import _quant_bits, _quant_label

        quant = _quant_label(qc, _quant_bits(qc), None)
        all_notes.append(message("file.quant_config", method=str(qc.get("quant_method", "unknown")), quant=quant))
        if quant in ("fp8", "int8", "int4", "fp4"):
            weights_dtype = quant  # torch_dtype names the compute type; the weights are stored quantized
    if weight_bytes is not None and not headers:
        all_notes.append(message("file.weights_on_disk", weight_bytes=weight_bytes))
    spec = finish_spec(fields, where, all_notes, extra_params=derived.extra_params, exact_params=exact,
                       origin=derived.origin)
    return LoadedModel(spec=spec, notes=tuple(all_notes), source=source, exact_params=exact, weight_bytes=weight_bytes,
                       dtypes=dtypes, weights_dtype=weights_dtype, quant=quant)


def _name_for(data: Mapping[str, Any], p: Path) -> str:
    """A display name: ``org/name`` in _name_or_path, else the folder of a config.json, else the file stem."""
    nop = data.get("_name_or_path")
    if isinstance(nop, str) and _ORG_NAME.match(nop):
        return nop.split("/")[-1]
    if p.name == "config.json":
        return p.resolve().parent.name or "model"
    return p.name.removesuffix(".json").removesuffix(".safetensors.index").removesuffix(".safetensors")


# ---------------------------------------------------------------------------------------------- safetensors


def _shard_set(p: Path) -> list[Path]:
    """All shards of ``name-0000i-of-0000n.safetensors``, or just ``[p]``; missing shards are an error."""
    m = _SHARD.match(p.name)
    if not m:
        return [p]
    n = int(m["n"])
    shards = [p.with_name(f"{m['stem']}-{i:05d}-of-{n:05d}.safetensors") for i in range(1, n + 1)]
    missing = [s.name for s in shards if not s.exists()]
    if missing:
        raise fail(str(p), None, f"shards missing beside it: {', '.join(missing[:3])}"
                                 + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""))
    return shards


def _index_files(index: Path, data: Mapping[str, Any]) -> tuple[list[Path], int | None]:
    wm = data.get("weight_map")
    if not isinstance(wm, Mapping) or not wm or not all(isinstance(v, str) for v in wm.values()):
        raise fail(str(index), "weight_map", "expected an object of tensor name -> shard file")
    files = [index.parent / f for f in sorted(set(wm.values()))]
    total = (data.get("metadata") or {}).get("total_size") if isinstance(data.get("metadata"), Mapping) else None
    return files, total if isinstance(total, int) and not isinstance(total, bool) else None


def _headers_beside(config: Path) -> list[SafetensorsHeader] | None:
    """Headers of the weights in a config.json's folder: the index's shards, else its .safetensors files."""
    folder = config.parent
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files, _ = _index_files(index, _read_json(index, index.stat().st_size))
        if all(f.is_file() for f in files):
            return [read_header(f) for f in files]
        return None
    files = sorted(folder.glob("*.safetensors"))
    if any(f.name.startswith("model") for f in files):
        files = [f for f in files if f.name.startswith("model")]  # Mistral repos also hold consolidated.*
    if not files:
        return None
    shards = _SHARD.match(files[0].name)
    if shards and len(files) != int(shards["n"]):
        return None
    return [read_header(f) for f in files]


def _load_safetensors_file(p: Path) -> LoadedModel:
    files = _shard_set(p)
    headers = [read_header(f) for f in files]
    return _from_headers(p, headers, p.parent / "config.json")


def _load_index(p: Path, data: Mapping[str, Any]) -> LoadedModel:
    files, total = _index_files(p, data)
    missing = [f.name for f in files if not f.is_file()]
    config = p.parent / "config.json"
    if missing:
        if config.is_file():
            cfg = _read_json(config, config.stat().st_size)
            note = message("file.shards_missing", missing=len(missing), index=p.name)
            return model_from_config(cfg, str(config), name=_name_for(cfg, config), source=str(p),
                                     weight_bytes=total, notes=[note])
        raise fail(str(p), "weight_map", f"shard {missing[0]} is not beside the index, and there is no config.json; "
                                         "download the shards or the model's config.json")
    return _from_headers(p, [read_header(f) for f in files], config)


def _from_headers(p: Path, headers: list[SafetensorsHeader], config: Path) -> LoadedModel:
    """Exact counts from ``headers``; the architecture from ``config`` if it exists, else from tensor names."""
    if config.is_file():
        cfg = _read_json(config, config.stat().st_size)
        return model_from_config(cfg, str(config), name=_name_for(cfg, config), source=str(p), headers=headers)
    inferred = config_from_tensors((t for h in headers for t in h.tensors), str(p))
    notes = [message("file.no_config_inferred", head_dim=inferred["head_dim"])]
    name = p.parent.name if _SHARD.match(p.name) or p.name.startswith("model.") else p.name
    return model_from_config(inferred, str(p), name=name.removesuffix(".safetensors").removesuffix(".index.json"),
                             source=str(p), headers=headers, notes=notes)


# ---------------------------------------------------------------------------------------------- folders


def _load_dir(d: Path) -> LoadedModel:
    config = d / "config.json"
    if config.is_file():
        return load_model_file(config)
    index = d / "model.safetensors.index.json"
    if index.is_file():
        return load_model_file(index)
    st = sorted(d.glob("*.safetensors"))
    if st:
        return load_model_file(st[0])
    ggufs = sorted(d.glob("*.gguf"))
    firsts = [g for g in ggufs if not re.search(r"-\d{5}-of-\d{5}\.gguf$", g.name) or "-00001-of-" in g.name]
    if len(firsts) == 1:
        return load_model_file(firsts[0])
    if len(firsts) > 1:
        raise fail(str(d), None, f"holds {len(firsts)} GGUF models ({', '.join(g.name for g in firsts[:3])}): "
                                 "point --model at one of them")
    raise fail(str(d), None, "no config.json, *.safetensors or *.gguf in this directory")


