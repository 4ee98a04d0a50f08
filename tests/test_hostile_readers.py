"""Hostile input for every reader (issue 19): YAML catalogs, config.json, safetensors, GGUF.

Each case is generated here (nothing big is committed: large files are sparse) and run through the real command
line in a subprocess, with a 1 GiB address-space limit as a safety net and a generous wall-clock limit so that a
slow machine cannot make it flake. Each must end within the issue's budget (5 s, 200 MB peak resident memory,
the child's own ``VmHWM`` where Linux has it) with exit code 2 and one line on stderr naming the input: no traceback, no "internal error",
and never a byte of a file it was tricked into reading. A seeded fuzz run mutates valid files of each format
and feeds them to the CLI's entry point (in one subprocess, so it stays a few seconds).
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

resource = pytest.importorskip("resource")  # POSIX: the limits below need it

FIXTURES = Path(__file__).parent / "fixtures" / "configs"
SECONDS = 5.0  # the budget per case
PEAK_BYTES = 200 * 2**20
_WALL_LIMIT = 20  # kill a runaway child long after the budget: the budget is asserted, the limit only stops it
_AS_LIMIT = 2**30


# ------------------------------------------------------------------------------------------- running the CLI


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_bytes: int | None  # None where /proc/self/status is not there to read


_PRELUDE = f"""
import atexit, os, resource, runpy, sys
resource.setrlimit(resource.RLIMIT_AS, ({_AS_LIMIT}, {_AS_LIMIT}))
def _peak():  # this process's own high-water mark (wait4's ru_maxrss counts the parent's size at fork)
    try:
        with open("/proc/self/status") as f, open(os.environ["_LLMSIZER_TEST_PEAK"], "w") as out:
            out.write(next(line.split()[1] for line in f if line.startswith("VmHWM:")))
    except Exception:
        pass
if os.environ.get("_LLMSIZER_TEST_PEAK"):
    atexit.register(_peak)
"""


def _limited(*argv: str) -> list[str]:
    """``python -m llmsizer ARGV`` (or ``python -c CODE ARGV`` with ``-c``), under the address-space limit: set in
    the child itself (no ``preexec_fn``, which is unsafe with threads), then what ``-m`` does."""
    if argv[0] == "-c":
        run = f"sys.argv = ['-c', *sys.argv[1:]]; exec({argv[1]!r})"
        argv = argv[2:]
    else:
        run = "sys.argv = ['llmsizer', *sys.argv[1:]]; runpy.run_module('llmsizer', run_name='__main__', alter_sys=True)"
    return [sys.executable, "-c", _PRELUDE + run, *argv]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "LLMSIZER_CACHE_DIR": str(tmp / "cache"), "LLMSIZER_CONFIG_DIR": str(tmp / "no-config"),
           "HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env.update(extra)
    return env


def run_cli(tmp: Path, *args: str, **env: str) -> Run:
    """``python -m llmsizer ARGS`` with the limits above; stdout and stderr go to files (no pipe to fill)."""
    out, err, peak = tmp / "_stdout", tmp / "_stderr", tmp / "_peak"
    peak.unlink(missing_ok=True)
    with open(out, "wb") as o, open(err, "wb") as e:
        start = time.monotonic()
        proc = subprocess.Popen(_limited(*args), stdin=subprocess.DEVNULL, stdout=o, stderr=e, cwd=tmp,
                                env=_env(tmp, _LLMSIZER_TEST_PEAK=str(peak), **env))
        try:
            proc.wait(timeout=_WALL_LIMIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        seconds = time.monotonic() - start
    peak_bytes = int(peak.read_text()) * 1024 if peak.exists() else None  # VmHWM is in kB; Linux only
    return Run(proc.returncode, out.read_text(errors="replace"), err.read_text(errors="replace"), seconds, peak_bytes)


def assert_refused(r: Run, *names: str, secret: tuple[str, ...] = ()) -> str:
    """Exit 2, one line on stderr naming ``names``, within the budget, quoting none of ``secret``."""
    text = r.stderr.strip()
    assert r.code == 2, (r.code, text[:500])
    assert len(text.splitlines()) == 1, text[:2000]
    assert "internal error" not in text and "Traceback" not in text, text[:2000]
    assert text.startswith("llmsizer: error: "), text[:500]
    for n in names:
        assert n in text, (n, text[:500])
    for s in secret:
        assert s not in text, (s, text[:500])
    assert r.seconds < SECONDS, (r.seconds, text[:300])
    assert r.peak_bytes is None or r.peak_bytes < PEAK_BYTES, (r.peak_bytes / 2**20, text[:300])
    assert len(text) < 2000, len(text)  # one readable line, not a value from the file
    return text


def plan(tmp: Path, model: Path | str, *extra: str) -> Run:
    return run_cli(tmp, "plan", "--model", str(model), "--format", "json", *extra)


# ------------------------------------------------------------------------------------------- YAML catalogs

BOMB = "".join(
    f"{x}: &{x} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['lol'] * 9)}]\n"
    for p, x in zip(["", *"abcdefgh"], "abcdefghi")
)  # 9 levels of 9 aliases: ~600 bytes standing for 9^9 = 387 million strings


def test_the_bomb_is_small():
    assert len(BOMB) < 700


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        (BOMB + "models:\n  - id: *i\n    name: x\n", "YAML nodes"),
        (BOMB + "instances:\n  - provider: p\n    instance: *i\n    gpu: h100-sxm\n", "YAML nodes"),
        (BOMB + "size_references:\n  7b: *i\n", "YAML nodes"),
        ("models: &a [*a]\n", "alias refers to a node that contains it"),
        ("models:\n  - id: " + "x" * 300_000 + "\n    name: n\n", "too long"),
        ("models:\n  - id: ok\n    name: " + "n" * 5_000 + "\n", "too long"),
        ("size_references:\n  7b: " + "m" * 5_000 + "\n", "size_references"),
        ("models: " + "[" * 20_000 + "]" * 20_000 + "\n", "invalid YAML"),
        ("x" * 50 + ": 1\n? " + ("k" * 300_000) + "\n: 1\n", "unknown top-level key"),
    ],
    ids=["bomb-id", "bomb-instance", "bomb-size-references", "recursive", "long-id", "long-name", "long-ref",
         "deep", "long-key"],
)
def test_hostile_catalog(tmp_path: Path, doc: str, words: str):
    p = tmp_path / "hostile.yaml"
    p.write_text(doc)
    assert_refused(plan(tmp_path, "7b", "--catalog", str(p)), str(p), words)


def test_catalog_bomb_in_the_user_folder_breaks_nothing_silently(tmp_path: Path):
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "mine.yaml").write_text(BOMB + "models:\n  - id: *i\n")
    r = run_cli(tmp_path, "gpus", LLMSIZER_CONFIG_DIR=str(folder))
    assert_refused(r, "mine.yaml", "YAML nodes")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"models:\n  - id: \xff\xfe\n", "not UTF-8"),
        (b"\x00\x01binary", "binary"),
        (None, "too large"),  # sparse, over the size cap
    ],
    ids=["bad-utf8", "binary", "oversized"],
)
def test_unreadable_catalog(tmp_path: Path, content: bytes | None, words: str):
    p = tmp_path / "c.yaml"
    if content is None:
        with open(p, "wb") as f:
            f.truncate(50_000_000)
    else:
        p.write_bytes(content)
    assert_refused(plan(tmp_path, "7b", "--catalog", str(p)), str(p), words)


def test_catalog_that_is_a_fifo_never_blocks(tmp_path: Path):
    p = tmp_path / "fifo.yaml"
    os.mkfifo(p)
    assert_refused(plan(tmp_path, "7b", "--catalog", str(p)), str(p))


# ------------------------------------------------------------------------------------------- config.json

TINY: dict[str, Any] = {
    "model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 100,
    "max_position_embeddings": 512, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
}


def _config(tmp: Path, raw: bytes | str, name: str = "config.json") -> Path:
    folder = tmp / "model"
    folder.mkdir(exist_ok=True)
    p = folder / name
    p.write_bytes(raw if isinstance(raw, bytes) else raw.encode())
    return p


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (json.dumps({**TINY, "model_type": "m" * 1_900_000}), "model_type"),
        (json.dumps({**TINY, "model_type": "m" * 9_900_000}), "too large"),
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested"),
        ('{"a": ' + "[" * 200 + "]" * 200 + "}", "nested more than"),
        ('{"hidden_size": 1' + "0" * 5000 + "}", "too many digits"),
        (json.dumps({**TINY, "hidden_size": 10**300}), "hidden_size"),
        (json.dumps({**TINY, "model_type": "mpt", "d_model": 64, "n_heads": 4, "n_layers": 2, "max_seq_len": 64,
                     "expansion_ratio": 1e308}), "expansion_ratio"),
        (json.dumps({**TINY, "model_type": "deepseek_v3", "num_hidden_layers": 2**62, "q_lora_rank": 8,
                     "kv_lora_rank": 8, "qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 8,
                     "n_routed_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 8,
                     "architectures": [["unhashable"]], "quantization_config": {"quant_method": ["x"] * 10**5}}),
         "quant_method"),
        (b'{"model_type": "llama\xff"}', "not UTF-8"),
    ],
    ids=["long-model-type", "9.9MB-model-type", "deep-100k", "deep-200", "4300-digits", "huge-int", "inf-ratio",
         "loop-layers", "bad-utf8"],
)
def test_hostile_config(tmp_path: Path, raw: str | bytes, words: str):
    p = _config(tmp_path, raw)
    assert_refused(plan(tmp_path, p), str(p), words)


def test_unhashable_architecture_is_no_crash(tmp_path: Path):
    p = _config(tmp_path, json.dumps({**TINY, "architectures": [{"a": 1}], "model_type": None}))
    r = plan(tmp_path, p)
    assert r.code in (0, 1, 2) and "internal error" not in r.stderr, r.stderr[:500]


def test_config_that_is_a_fifo_or_a_device(tmp_path: Path):
    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    assert_refused(plan(tmp_path, fifo), str(fifo), "not a regular file")
    if os.path.exists("/dev/zero"):
        assert_refused(plan(tmp_path, "/dev/zero"), "/dev/zero", "not a regular file")


def _loop(tmp: Path) -> None:
    (tmp / "sp").mkdir()
    os.symlink("loop2", tmp / "sp" / "loop1")
    os.symlink("loop1", tmp / "sp" / "loop2")


def test_symlink_loop_is_an_error_about_that_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from llmsizer.catalog.modelfiles import load_model_file
    from llmsizer.errors import ModelFileError

    _loop(tmp_path)
    monkeypatch.chdir(tmp_path)
    for name in ("sp/loop1", "sp/loop1/config.json"):
        with pytest.raises(ModelFileError) as err:
            load_model_file(name)
        assert str(err.value).startswith(f"{name}: ") and "symbolic link" in str(err.value), str(err.value)


def test_symlink_loop_is_a_local_error_not_a_hub_id(tmp_path: Path):
    """``sp/loop1`` looks like ``org/name``; it is a local symlink loop, and the error must say so (no Hub)."""
    _loop(tmp_path)
    text = assert_refused(plan(tmp_path, "sp/loop1"), "sp/loop1", "symbolic link")
    assert "HF_HUB_OFFLINE" not in text and "Hub" not in text


# ------------------------------------------------------------------------------------------- safetensors


def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]] | None = None, *, raw_header: bytes | None = None,
                      length: int | None = None) -> bytes:
    bits = {"BF16": 16, "F32": 32}
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in (tensors or {}).items():
        n = math.prod(shape) * bits[dtype] // 8
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + b"\0" * offset


def tiny_tensors(h: int = 16, f: int = 32, v: int = 20, layers: int = 2) -> dict[str, tuple[str, list[int]]]:
    t: dict[str, tuple[str, list[int]]] = {"model.embed_tokens.weight": ("BF16", [v, h]),
                                           "model.norm.weight": ("BF16", [h]), "lm_head.weight": ("BF16", [v, h])}
    for i in range(layers):
        p = f"model.layers.{i}."
        t.update({p + "input_layernorm.weight": ("BF16", [h]), p + "post_attention_layernorm.weight": ("BF16", [h]),
                  p + "self_attn.q_proj.weight": ("BF16", [h, h]), p + "self_attn.k_proj.weight": ("BF16", [8, h]),
                  p + "self_attn.v_proj.weight": ("BF16", [8, h]), p + "self_attn.o_proj.weight": ("BF16", [h, h]),
                  p + "mlp.gate_proj.weight": ("BF16", [f, h]), p + "mlp.up_proj.weight": ("BF16", [f, h]),
                  p + "mlp.down_proj.weight": ("BF16", [h, f])})
    return t


def _secret(tmp: Path) -> tuple[Path, tuple[str, ...]]:
    """A file outside the model's folder whose first 8 bytes, read as a header length, would be 1234567890123."""
    p = tmp / "secret"
    p.write_bytes(struct.pack("<Q", 1234567890123) + b"TOP-SECRET-CONTENT" * 10)
    return p, ("1234567890123", "1,234,567,890,123", "TOP-SECRET")


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink", "nested-dotdot"])
def test_index_cannot_leave_the_model_folder(tmp_path: Path, how: str):
    secret, leaks = _secret(tmp_path)
    folder = tmp_path / "model"
    folder.mkdir()
    target = {"absolute": str(secret), "dotdot": "../secret", "symlink": "link.safetensors",
              "nested-dotdot": "sub/../../secret"}[how]
    if how == "symlink":
        os.symlink(secret, folder / "link.safetensors")
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"model.embed_tokens.weight": target}}))
    text = assert_refused(plan(tmp_path, index), str(index), "weight_map", "outside the model's folder",
                          secret=leaks)
    assert "is not beside" not in text
    # the same index found through the folder, with a config.json beside it
    (folder / "config.json").write_text(json.dumps(TINY))
    assert_refused(plan(tmp_path, folder), "weight_map", "outside the model's folder", secret=leaks)


def test_shard_symlinked_out_of_the_folder(tmp_path: Path):
    secret, leaks = _secret(tmp_path)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY))
    os.symlink(secret, folder / "model.safetensors")
    assert_refused(plan(tmp_path, folder), "model.safetensors", "outside the model's folder", secret=leaks)


def test_hugging_face_cache_snapshot_links_are_followed(tmp_path: Path):
    """The Hub cache keeps files in ``blobs/`` and links them from ``snapshots/<rev>/``: that is not an escape."""
    repo = tmp_path / "hub" / "models--org--tiny"
    (repo / "blobs").mkdir(parents=True)
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (repo / "blobs" / "c0ffee").write_text(json.dumps({**TINY, "hidden_size": 16, "intermediate_size": 32,
                                                        "num_key_value_heads": 2, "head_dim": 4, "vocab_size": 20}))
    (repo / "blobs" / "beef").write_bytes(safetensors_bytes(tiny_tensors()))
    os.symlink("../../blobs/c0ffee", snap / "config.json")
    os.symlink("../../blobs/beef", snap / "model.safetensors")
    r = plan(tmp_path, snap)
    assert r.code in (0, 1), r.stderr
    assert json.loads(r.stdout)["model"]


def test_error_never_prints_the_bytes_of_a_file(tmp_path: Path):
    """Even a file the user named: its 8-byte prefix is not echoed as a 'header length'."""
    p = tmp_path / "x.safetensors"
    p.write_bytes(struct.pack("<Q", 1234567890123) + b"{" + b"TOP-SECRET" * 5)
    assert_refused(plan(tmp_path, p), str(p), "header length", secret=("1234567890123", "1,234,567,890,123",
                                                                         "TOP-SECRET"))


@pytest.mark.parametrize(
    "case", ["over-cap", "past-end", "bad-utf8", "deep", "huge-dims", "huge-offsets", "many-tensors"])
def test_hostile_safetensors(tmp_path: Path, case: str):
    p = tmp_path / "model.safetensors"
    if case == "over-cap":  # a 20 MB header in a sparse 30 MB file: within the format's 100 MB, over llmsizer's
        with open(p, "wb") as f:
            f.write(struct.pack("<Q", 20_000_000) + b"{")
            f.truncate(30_000_000)
        words = "more than llmsizer reads"
    elif case == "past-end":
        p.write_bytes(struct.pack("<Q", 5_000_000) + b"{}")
        words = "truncated"
    elif case == "bad-utf8":
        p.write_bytes(safetensors_bytes(raw_header=b'{"w\xff": 1}'))
        words = "not UTF-8"
    elif case == "deep":
        p.write_bytes(safetensors_bytes(raw_header=b'{"__metadata__": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"))
        words = "not JSON"
    elif case == "huge-dims":
        p.write_bytes(safetensors_bytes(raw_header=json.dumps(
            {"w": {"dtype": "F32", "shape": [10**30, 10**30], "data_offsets": [0, 4]}}).encode()))
        words = "w.shape"
    elif case == "huge-offsets":
        p.write_bytes(safetensors_bytes(raw_header=json.dumps(
            {"w": {"dtype": "F32", "shape": [1], "data_offsets": [10**400, 10**400 + 4]}}).encode()))
        words = "w.data_offsets"
    else:  # 2 shards of 130k one-element tensors: over MAX_TENSORS, the second refused before it is parsed
        header = {f"t{i}": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]} for i in range(130_000)}
        raw = json.dumps(header, separators=(",", ":")).encode()
        p = tmp_path / "model-00001-of-00002.safetensors"
        p.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 2)
        os.link(p, tmp_path / "model-00002-of-00002.safetensors")
        words = "too many tensors"
    assert_refused(plan(tmp_path, p), str(p.parent), words)


def test_index_naming_too_many_shards(tmp_path: Path):
    folder = tmp_path / "model"
    folder.mkdir()
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {f"t{i}": f"s{i}.safetensors" for i in range(20_000)}}))
    assert_refused(plan(tmp_path, index), str(index), "shard")


def test_big_dense_index_is_refused_unparsed(tmp_path: Path):
    """18 MB of empty lists is under the index size cap, but would parse into ~400 MB of objects."""
    folder = tmp_path / "model"
    folder.mkdir()
    index = folder / "model.safetensors.index.json"
    index.write_text('{"weight_map": {"a": "b.safetensors"}, "x": [' + ",".join(["[]"] * 6_000_000) + "]}")
    assert_refused(plan(tmp_path, index), str(index), "too dense")


def test_headers_over_all_shards_are_bounded(tmp_path: Path):
    """One shard with a 7 MB header, hard-linked under ten names: each is fine, together they are too much."""
    folder = tmp_path / "model"
    folder.mkdir()
    pad = "p" * 7_000_000
    first = folder / "model-00001-of-00010.safetensors"
    first.write_bytes(safetensors_bytes(raw_header=json.dumps({"__metadata__": {"pad": pad}}).encode()))
    for i in range(2, 11):
        os.link(first, folder / f"model-{i:05d}-of-00010.safetensors")
    assert_refused(plan(tmp_path, first), "safetensors", "more than llmsizer reads")


# ------------------------------------------------------------------------------------------- GGUF


def _s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def _kv(key: str | bytes, value: Any) -> bytes:
    if isinstance(value, str):
        return _s(key) + struct.pack("<I", 8) + _s(value)
    if isinstance(value, list):  # an array of strings
        return _s(key) + struct.pack("<IIQ", 9, 8, len(value)) + b"".join(_s(v) for v in value)
    return _s(key) + struct.pack("<I", 4) + struct.pack("<I", value)  # uint32


def gguf_bytes(kv: list[bytes], tensors: list[tuple[str, list[int]]], *, n_kv: int | None = None,
               n_tensors: int | None = None, data: bool = True) -> bytes:
    """A GGUF v3 file by hand: F32 tensors (dims innermost first), data aligned to 32 bytes."""
    infos, offset = [], 0
    for name, dims in tensors:
        infos.append(_s(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
                     + struct.pack("<IQ", 0, offset))
        offset += -(-math.prod(dims) * 4 // 32) * 32
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors) if n_tensors is None else n_tensors,
                                 len(kv) if n_kv is None else n_kv)
    body = head + b"".join(kv) + b"".join(infos)
    body += b"\0" * (-len(body) % 32)
    return body + (b"\0" * offset if data else b"")


def tiny_gguf(layers: int = 2, h: int = 16, f: int = 32, v: int = 20, name: str = "Tiny") -> bytes:
    kv = [_kv("general.architecture", "llama"), _kv("general.name", name), _kv("llama.block_count", layers),
          _kv("llama.context_length", 4096), _kv("llama.embedding_length", h),
          _kv("llama.feed_forward_length", f), _kv("llama.attention.head_count", 4),
          _kv("llama.attention.head_count_kv", 2), _kv("general.file_type", 0),
          _kv("tokenizer.ggml.tokens", [f"t{i}" for i in range(v)])]
    tensors = [("token_embd.weight", [h, v]), ("output_norm.weight", [h])]
    for i in range(layers):
        tensors += [(f"blk.{i}.attn_norm.weight", [h]), (f"blk.{i}.ffn_norm.weight", [h]),
                    (f"blk.{i}.attn_q.weight", [h, h]), (f"blk.{i}.attn_k.weight", [h, 8]),
                    (f"blk.{i}.attn_v.weight", [h, 8]), (f"blk.{i}.attn_output.weight", [h, h]),
                    (f"blk.{i}.ffn_gate.weight", [h, f]), (f"blk.{i}.ffn_up.weight", [h, f]),
                    (f"blk.{i}.ffn_down.weight", [f, h])]
    return gguf_bytes(kv, tensors)


def test_tiny_gguf_reads(tmp_path: Path):
    pytest.importorskip("gguf")
    p = tmp_path / "tiny.gguf"
    p.write_bytes(tiny_gguf())
    r = plan(tmp_path, p)
    assert r.code in (0, 1), r.stderr
    assert json.loads(r.stdout)["model"]["id"] == "tiny"


def test_split_gguf_any_part_named_and_parts_confined(tmp_path: Path):
    pytest.importorskip("gguf")
    folder = tmp_path / "model"
    folder.mkdir()
    first, second = folder / "m-00001-of-00002.gguf", folder / "m-00002-of-00002.gguf"
    first.write_bytes(tiny_gguf())
    second.write_bytes(gguf_bytes([_kv("split.no", 1)], [("blk.1.x.weight", [4])]))
    r = plan(tmp_path, second)  # naming the second part reads the metadata of the first
    assert r.code in (0, 1), r.stderr
    assert json.loads(r.stdout)["model"]["id"] == "tiny"
    secret, leaks = _secret(tmp_path)
    second.unlink()
    os.symlink(secret, second)
    assert_refused(plan(tmp_path, first), second.name, "outside the model's folder", secret=leaks)


def _write_hostile_gguf(p: Path, case: str) -> str:
    """Write the GGUF case ``case`` to ``p``; return words its error must contain."""
    arch = [_kv("general.architecture", "llama")]
    if case == "array-2^60":  # the 178 bytes: one array claiming 2^60 items
        p.write_bytes(gguf_bytes([_s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2**60)], [], data=False)
                      + b"\0" * 100)
        return "runs past the end"
    if case == "u8-array-2^60":
        p.write_bytes(gguf_bytes([_s("x") + struct.pack("<IIQ", 9, 0, 2**60)], []))
        return "runs past the end"
    if case == "2M-keys":  # declared, in a sparse 40 MB file
        with open(p, "wb") as f:
            f.write(gguf_bytes(arch, [], n_kv=2_000_000, data=False))
            f.truncate(40_000_000)
        return "metadata keys"
    if case == "1M-tensors":
        with open(p, "wb") as f:
            f.write(gguf_bytes(arch, [], n_tensors=1_000_000, data=False))
            f.truncate(40_000_000)
        return "tensors declared"
    if case == "65k-keys":  # within the cap, all real: must still be quick
        p.write_bytes(gguf_bytes(arch + [_kv(f"k.{i}", i) for i in range(65_000)], []))
        return "tensors"
    if case == "100k-tensors":  # within the cap, all real, then no block_count
        p.write_bytes(gguf_bytes(arch, [(f"t{i}", [1]) for i in range(100_000)]))
        return "block_count"
    if case == "string-items":  # 5M empty strings: over MAX_GGUF_STRING_ITEMS, in a sparse file
        with open(p, "wb") as f:
            f.write(gguf_bytes(arch + [_s("tokenizer.ggml.merges") + struct.pack("<IIQ", 9, 8, 5_000_000)], [],
                               data=False))
            f.truncate(60_000_000)
        return "strings"
    if case == "long-key":
        p.write_bytes(gguf_bytes([_s("k" * 10_000) + struct.pack("<II", 4, 1)], []))
        return "at most"
    if case == "bad-utf8-key":
        p.write_bytes(gguf_bytes([_kv(b"general.\xff", 1)] + arch, []))
        return "not UTF-8"
    if case == "bad-utf8-name":
        p.write_bytes(tiny_gguf(name="bad").replace(_s("bad"), _s(b"ba\xff")))
        return "not UTF-8"
    if case == "long-name":
        p.write_bytes(tiny_gguf(name="n" * 10_000))
        return "general.name"
    if case == "huge-dims":
        p.write_bytes(gguf_bytes(arch, [("w", [2**62, 2**62, 2**62, 2**62])], data=False) + b"\0" * 64)
        return "past the end"
    if case == "many-dims":
        p.write_bytes(gguf_bytes(arch, [("w", [1] * 9)]))
        return "dimensions"
    if case == "nested-array":
        p.write_bytes(gguf_bytes(arch + [_s("x") + struct.pack("<IIQ", 9, 9, 1) + struct.pack("<IQ", 0, 1)], []))
        return "array of arrays"
    if case == "huge-layers":  # an untrusted layer count with experts: nothing may loop over it
        raw = tiny_gguf().replace(_kv("llama.block_count", 2), _s("llama.block_count") + struct.pack("<IQ", 10, 2**62))
        raw = raw.replace(_kv("general.file_type", 0), _kv("llama.expert_count", 4) + _kv("llama.expert_used_count", 2),
                          1)
        p.write_bytes(gguf_fix_counts(raw, extra_kv=1))
        return ""
    if case == "truncated-data":
        p.write_bytes(tiny_gguf()[:-64])
        return "truncated"
    raise AssertionError(case)


def gguf_fix_counts(raw: bytes, extra_kv: int) -> bytes:
    """``raw`` with its metadata count raised by ``extra_kv`` (after one key was replaced by two)."""
    version, n_t, n_kv = struct.unpack_from("<IQQ", raw, 4)
    return raw[:4] + struct.pack("<IQQ", version, n_t, n_kv + extra_kv) + raw[24:]


GGUF_CASES = ["array-2^60", "u8-array-2^60", "2M-keys", "1M-tensors", "65k-keys", "100k-tensors", "string-items",
              "long-key", "bad-utf8-key", "bad-utf8-name", "long-name", "huge-dims", "many-dims", "nested-array",
              "huge-layers", "truncated-data"]


@pytest.mark.parametrize("case", GGUF_CASES)
def test_hostile_gguf(tmp_path: Path, case: str):
    pytest.importorskip("gguf")
    p = tmp_path / "model.gguf"
    words = _write_hostile_gguf(p, case)
    r = plan(tmp_path, p)
    if case == "huge-layers":  # 2^62 layers: a valid (absurd) model, so it may size it; it must not hang
        assert r.code in (0, 1, 2) and "internal error" not in r.stderr, r.stderr[:500]
        assert r.seconds < SECONDS and (r.peak_bytes is None or r.peak_bytes < PEAK_BYTES)
        return
    assert_refused(r, str(p), words)


def test_array_bomb_is_178_bytes(tmp_path: Path):
    p = tmp_path / "m.gguf"
    _write_hostile_gguf(p, "array-2^60")
    assert p.stat().st_size < 200


# ------------------------------------------------------------------------------------------- bounded fuzz

_DRIVER = r"""
import contextlib, io, json, sys
from llmsizer.cli import main
results = []
for path in json.load(open(sys.argv[1])):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(["--quiet", "plan", "--model", path, "--format", "json"])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 2
    results.append([path, code, err.getvalue()[-2000:]])
json.dump(results, open(sys.argv[2], "w"))
"""

_HOSTILE_VALUES: list[Any] = [0, -1, 1.5, 2**63, 2**64, 10**30, 1e308, float("inf"), float("nan"), None, True, "",
                              "x" * 300, "\x1b[2J", [], [1, 2], {}, {"a": [1]}, [[[[[]]]]]]


def _position(b: bytearray, rng: random.Random) -> int:
    """Where to mutate: mostly in the first 2 kB (headers, counts and lengths live there), else anywhere."""
    return rng.randrange(min(len(b), 2048) if rng.random() < 0.8 else len(b))


def _mutate_bytes(raw: bytes, rng: random.Random) -> bytes:
    b = bytearray(raw)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(4)
        i = _position(b, rng) if b else 0
        if op == 0 and b:
            b[i] = rng.randrange(256)
        elif op == 1 and b:
            b[i:i + 8] = struct.pack("<Q", rng.choice([0, 1, 2**31, 2**32 - 1, 2**60, 2**64 - 1, rng.randrange(2**16)]))
        elif op == 2:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif b:
            del b[rng.randrange(len(b)):]
    return bytes(b)


def _mutate_json(doc: Any, rng: random.Random) -> Any:
    doc = json.loads(json.dumps(doc))
    for _ in range(rng.randint(1, 4)):
        node = doc
        for _ in range(3):  # walk to a random container
            inner = [v for v in (node.values() if isinstance(node, dict) else node) if isinstance(v, (dict, list))]
            if not inner or rng.random() < 0.5:
                break
            node = rng.choice(inner)
        if isinstance(node, dict) and node:
            node[rng.choice(list(node))] = copy.deepcopy(rng.choice(_HOSTILE_VALUES))
        elif isinstance(node, list) and node:
            node[rng.randrange(len(node))] = copy.deepcopy(rng.choice(_HOSTILE_VALUES))
    return doc


def test_bounded_fuzz_never_reaches_internal_error(tmp_path: Path, seed: int = 19, n: int = 200):
    """200 seeded mutations of a valid config.json (two families), safetensors file and GGUF file, through the
    CLI's entry point: every one ends in exit code 0, 1 or 2, and never in "internal error"."""
    pytest.importorskip("gguf")
    rng = random.Random(seed)
    configs = [TINY, json.loads((FIXTURES / "deepseek-v3.json").read_text()),
               json.loads((FIXTURES / "qwen3-30b-a3b.json").read_text())]
    st_header = json.loads(safetensors_bytes(tiny_tensors())[8:].split(b"\0", 1)[0].rstrip())
    paths: list[str] = []
    for i in range(n):
        kind = i % 4
        d = tmp_path / f"case{i:03d}"
        d.mkdir()
        if kind == 0:
            p = d / "config.json"
            p.write_text(json.dumps(_mutate_json(rng.choice(configs), rng)))
        elif kind == 1:
            p = d / "config.json"
            p.write_bytes(_mutate_bytes(json.dumps(rng.choice(configs)).encode(), rng))
        elif kind == 2:
            p = d / "model.safetensors"
            if rng.random() < 0.5:
                p.write_bytes(_mutate_bytes(safetensors_bytes(tiny_tensors()), rng))
            else:
                raw = json.dumps(_mutate_json(st_header, rng)).encode()
                p.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4096)
        else:
            p = d / "model.gguf"
            p.write_bytes(_mutate_bytes(tiny_gguf(), rng))
        paths.append(str(p))
    listing, results = tmp_path / "paths.json", tmp_path / "results.json"
    listing.write_text(json.dumps(paths))
    start = time.monotonic()
    proc = subprocess.run(_limited("-c", _DRIVER, str(listing), str(results)), env=_env(tmp_path), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.monotonic() - start < 60
    outcomes = json.loads(results.read_text())
    assert len(outcomes) == n
    bad = [(p, c, e) for p, c, e in outcomes if c not in (0, 1, 2) or "internal error" in e or "Traceback" in e]
    assert not bad, bad[:3]
    errors = [e for _, c, e in outcomes if c == 2]
    assert all(len(e.strip().splitlines()) == 1 for e in errors), [e for e in errors if len(e.splitlines()) != 1][:3]
    codes = {c for _, c, _ in outcomes}
    assert 2 in codes and codes & {0, 1}  # the mutations reach the error paths, and some still read as models
