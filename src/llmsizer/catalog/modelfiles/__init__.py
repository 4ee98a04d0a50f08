"""Read a model's own files, offline: Hugging Face ``config.json``, safetensors headers, GGUF.

``load_model_file(path) -> LoadedModel`` accepts
- a ``config.json`` (any name: the content decides), or a folder holding one; safetensors beside it (an index
  and its shards, or single files) are then read for the exact parameter count, bytes and dtypes (headers only);
- a ``.safetensors`` file or a ``model.safetensors.index.json``: exact counts, and the architecture from the
  ``config.json`` beside it, else inferred from Llama-style tensor names (else a clear error asking for it);
- a ``.gguf`` file (or the first of a split set), through the optional ``gguf`` package.

Every problem is a one-line ``ModelFileError`` (exit code 2) naming the file and, where there is one, the field.
Nothing here touches the network; ``llmsizer.hub`` fetches the same files from a Hugging Face endpoint.

The files are untrusted (``_common`` has the limits): JSON is read only up to ``MAX_CONFIG_BYTES`` (an index up
to ``MAX_INDEX_BYTES``) and ``MAX_JSON_DEPTH`` levels; a shard named by an index, or found beside a config, is
read only from inside the model's folder (``confined``: no absolute paths, no ``..``, no symbolic link out of
it, except a Hugging Face cache snapshot's links into its repo's ``blobs/``); a path that is a broken or looping
symbolic link is an error about that path.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llmsizer.catalog.modelfiles._common import (
    MAX_CONFIG_BYTES,
    MAX_INDEX_BYTES,
    MAX_NAME_CHARS,
    MAX_SHARDS,
    LoadedModel,
    check_depth,
    clip,
    check_text,
    confined,
    fail,
    finish_spec,
    is_file,
    open_regular,
    os_reason,
    slug,
)
from llmsizer.catalog.modelfiles.hfconfig import CANONICAL_FAMILY, READERS, derive
from llmsizer.catalog.modelfiles.safetensors_header import (
    SafetensorsHeader,
    config_from_tensors,
    read_headers,
    summarize,
)
from llmsizer.explain import Message, message

__all__ = ["MAX_CONFIG_BYTES", "READERS", "LoadedModel", "load_model_file", "model_from_config", "parse_config_bytes"]

_TORCH_DTYPES = {"float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16",
                 "float8_e4m3fn": "fp8"}
#: A JSON file over MAX_CONFIG_BYTES (an index) may hold one value per this many bytes, and this many objects and
#: arrays (a real index: ~100 bytes an entry, three objects).
_BYTES_PER_ITEM = 30
_MAX_CONTAINERS = 10_000
_SHARD = re.compile(r"^(?P<stem>.*)-(?P<i>\d{5})-of-(?P<n>\d{5})\.safetensors$")
_ORG_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def load_model_file(path: str | os.PathLike[str]) -> LoadedModel:
    """Read a config.json, a folder, a safetensors file or index, or a GGUF file; see the module docstring."""
    p = Path(path)
    where = str(path)
    try:
        os.stat(p)
    except OSError as e:
        if os.path.lexists(p):  # a symbolic link to nothing, or a loop of them
            raise fail(where, None, f"a symbolic link that leads nowhere ({os_reason(e)})") from None
        if e.errno == errno.ENOENT:
            raise fail(where, None, "no such file or directory") from None
        raise fail(where, None, f"cannot read: {os_reason(e)}") from None
    except ValueError as e:
        raise fail(where, None, f"cannot read: {os_reason(e)}") from None
    if p.is_dir():
        return _load_dir(p)
    f, size = open_regular(p, where)
    try:
        with f:
            head = f.read(9)
    except OSError as e:
        raise fail(where, None, f"cannot read: {os_reason(e)}") from None
    if size == 0:
        raise fail(where, None, "empty file: expected a config.json, a .safetensors or a .gguf file")
    if head[:4] == b"GGUF":
        from llmsizer.catalog.modelfiles.gguf_file import load_gguf

        return load_gguf(p)
    if p.name.endswith(".gguf"):
        raise fail(where, None, "not a GGUF file (it does not start with the GGUF magic bytes)")
    if p.name.endswith(".safetensors") or _looks_like_safetensors(head, size):
        return _load_safetensors_file(p)
    data = _read_json(p, MAX_INDEX_BYTES if p.name.endswith(".index.json") else MAX_CONFIG_BYTES)
    if "weight_map" in data:
        return _load_index(p, data)
    return model_from_config(data, where, name=_name_for(data, p), source=where,
                             headers=_headers_beside(p) if p.name == "config.json" else None)


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    """An 8-byte little-endian length that fits the file, then a JSON object (text files fail the length)."""
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") <= size - 8


# ---------------------------------------------------------------------------------------------- JSON


def parse_config_bytes(raw: bytes, where: str, limit: int = MAX_CONFIG_BYTES) -> dict[str, Any]:
    """Parse a config.json's bytes into a dict; binary data, bad UTF-8, bad JSON, JSON over ``limit`` bytes or
    nested deeper than ``MAX_JSON_DEPTH``, or a non-object is one clear line (that never quotes the bytes)."""
    if len(raw) > limit:
        raise fail(where, None, f"over {limit:,} bytes: too large for a {_kind(where)}")
    if not raw.strip():
        raise fail(where, None, "empty file: expected a JSON config")
    if b"\x00" in raw[:4096]:
        raise fail(where, None, "binary data, not a JSON config (expected config.json, .safetensors or .gguf)")
    if len(raw) > MAX_CONFIG_BYTES and (raw.count(b",") + raw.count(b":") > len(raw) // _BYTES_PER_ITEM
                                        or raw.count(b"[") + raw.count(b"{") > _MAX_CONTAINERS):
        # only an index may be this large, and an index is a few objects of long names (~100 bytes an entry):
        # dense JSON of that size would parse into hundreds of MB
        raise fail(where, None, "too large and too dense for a safetensors index (is this the right file?)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise fail(where, None, f"not UTF-8 text (at byte {e.start:,}), so not a JSON config") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise fail(where, None, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise fail(where, None, "JSON nested too deeply: not a model file") from None
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise fail(where, None, "invalid JSON: a number with too many digits") from None
    if not isinstance(data, dict):
        raise fail(where, None, f"expected a JSON object, got a JSON {type(data).__name__}")
    check_depth(data, where)
    return data


def _kind(where: str) -> str:
    return "safetensors index" if where.endswith(".index.json") else "config.json"


def _read_json(p: Path, limit: int = MAX_CONFIG_BYTES) -> dict[str, Any]:
    f, size = open_regular(p)
    with f:
        if size > limit:
            raise fail(str(p), None, f"{size:,} bytes: too large for a {_kind(str(p))} (limit {limit:,}); "
                                     "is this the right file?")
        try:
            raw = f.read(limit + 1)
        except OSError as e:
            raise fail(str(p), None, f"cannot read: {os_reason(e)}") from None
    return parse_config_bytes(raw, str(p), limit)


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
    for key in ("quant_method", "bnb_4bit_quant_type", "quant_algo"):  # printed, or a --quant name
        if qc and qc.get(key) is not None:
            check_text(where, f"quantization_config.{key}", qc[key], MAX_NAME_CHARS)
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
    if isinstance(nop, str) and len(nop) <= MAX_NAME_CHARS and _ORG_NAME.match(nop):
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
    if not 1 <= n <= MAX_SHARDS:
        raise fail(str(p), None, f"a set of {n:,} shards: llmsizer reads at most {MAX_SHARDS:,}")
    shards = [p.with_name(f"{m['stem']}-{i:05d}-of-{n:05d}.safetensors") for i in range(1, n + 1)]
    missing = [s.name for s in shards if not is_file(s)]
    if missing:
        raise fail(str(p), None, f"shards missing beside it: {', '.join(missing[:3])}"
                                 + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""))
    return [s if s == p else confined(p.parent, s.name, str(p), "shard") for s in shards]


def _index_files(index: Path, data: Mapping[str, Any]) -> tuple[list[Path], int | None]:
    """The shards an index names, each confined to the index's folder, and its ``metadata.total_size``."""
    wm = data.get("weight_map")
    if not isinstance(wm, Mapping) or not wm or not all(isinstance(v, str) for v in wm.values()):
        raise fail(str(index), "weight_map", "expected an object of tensor name -> shard file")
    names = sorted(set(wm.values()))
    if len(names) > MAX_SHARDS:
        raise fail(str(index), "weight_map", f"names {len(names):,} shard files; llmsizer reads at most {MAX_SHARDS:,}")
    files = [confined(index.parent, f, str(index), "weight_map") for f in names]
    total = (data.get("metadata") or {}).get("total_size") if isinstance(data.get("metadata"), Mapping) else None
    return files, total if isinstance(total, int) and not isinstance(total, bool) else None


def _beside(folder: Path, name: str, where: str) -> Path | None:
    """``folder / name`` when it is a file (inside the folder, as ``confined`` checks), else None."""
    p = folder / name
    return confined(folder, name, where, name) if is_file(p) else None


def _headers_beside(config: Path) -> list[SafetensorsHeader] | None:
    """Headers of the weights in a config.json's folder: the index's shards, else its .safetensors files."""
    folder = config.parent
    index = _beside(folder, "model.safetensors.index.json", str(config))
    if index is not None:
        files, _ = _index_files(index, _read_json(index, MAX_INDEX_BYTES))
        if all(is_file(f) for f in files):
            return read_headers(files)
        return None
    files = sorted(f for f in folder.glob("*.safetensors"))
    if any(f.name.startswith("model") for f in files):
        files = [f for f in files if f.name.startswith("model")]  # Mistral repos also hold consolidated.*
    if not files:
        return None
    if len(files) > MAX_SHARDS:
        raise fail(str(folder), None, f"holds {len(files):,} .safetensors files; llmsizer reads at most {MAX_SHARDS:,}")
    shards = _SHARD.match(files[0].name)
    if shards and len(files) != int(shards["n"]):
        return None
    return read_headers([confined(folder, f.name, str(config), "safetensors file") for f in files])


def _load_safetensors_file(p: Path) -> LoadedModel:
    files = _shard_set(p)
    return _from_headers(p, read_headers(files), p.parent / "config.json")


def _load_index(p: Path, data: Mapping[str, Any]) -> LoadedModel:
    files, total = _index_files(p, data)
    missing = [f.name for f in files if not is_file(f)]
    config = _beside(p.parent, "config.json", str(p))
    if missing:
        if config is not None:
            cfg = _read_json(config)
            note = message("file.shards_missing", missing=len(missing), index=p.name)
            return model_from_config(cfg, str(config), name=_name_for(cfg, config), source=str(p),
                                     weight_bytes=total, notes=[note])
        raise fail(str(p), "weight_map", f"shard {clip(missing[0])} is not beside the index, and there is no "
                                         "config.json; download the shards or the model's config.json")
    return _from_headers(p, read_headers(files), p.parent / "config.json")


def _from_headers(p: Path, headers: list[SafetensorsHeader], config: Path) -> LoadedModel:
    """Exact counts from ``headers``; the architecture from ``config`` if it exists, else from tensor names."""
    if is_file(config):
        config = confined(config.parent, config.name, str(p), "config.json")
        cfg = _read_json(config)
        return model_from_config(cfg, str(config), name=_name_for(cfg, config), source=str(p), headers=headers)
    inferred = config_from_tensors((t for h in headers for t in h.tensors), str(p))
    notes = [message("file.no_config_inferred", head_dim=inferred["head_dim"])]
    name = p.parent.name if _SHARD.match(p.name) or p.name.startswith("model.") else p.name
    return model_from_config(inferred, str(p), name=name.removesuffix(".safetensors").removesuffix(".index.json"),
                             source=str(p), headers=headers, notes=notes)


# ---------------------------------------------------------------------------------------------- folders


def _load_dir(d: Path) -> LoadedModel:
    config = d / "config.json"
    if is_file(config):
        return load_model_file(confined(d, config.name, str(d), "config.json"))
    index = d / "model.safetensors.index.json"
    if is_file(index):
        return load_model_file(confined(d, index.name, str(d), index.name))
    st = sorted(d.glob("*.safetensors"))
    if st:
        return load_model_file(confined(d, st[0].name, str(d), "safetensors file"))
    ggufs = sorted(d.glob("*.gguf"))
    firsts = [g for g in ggufs if not re.search(r"-\d{5}-of-\d{5}\.gguf$", g.name) or "-00001-of-" in g.name]
    if len(firsts) == 1:
        return load_model_file(confined(d, firsts[0].name, str(d), "GGUF file"))
    if len(firsts) > 1:
        raise fail(str(d), None, f"holds {len(firsts)} GGUF models ({', '.join(g.name for g in firsts[:3])}): "
                                 "point --model at one of them")
    raise fail(str(d), None, "no config.json, *.safetensors or *.gguf in this directory")


