"""Model files read offline: config.json families against published counts, safetensors headers, GGUF, the Hub.

Fixtures in tests/fixtures/configs/ were written from each model's published architecture (model card / paper);
every safetensors and GGUF file is generated here, and the Hub tests talk to a server on 127.0.0.1 only.
"""

from __future__ import annotations

import http.server
import json
import math
import re
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmsizer.specs.architecture import count_params
from llmsizer.errors import EXIT_USAGE, LlmsizerError, ModelFileError
from llmsizer.catalog.hub import HubError, fetch_config, is_repo_id, load_hub_model
from llmsizer.catalog.modelfiles import MAX_CONFIG_BYTES, LoadedModel, load_model_file
from llmsizer.render.i18n import say

FIXTURES = Path(__file__).parent / "fixtures" / "configs"

# ------------------------------------------------------------------------------------- published counts

# (fixture, published total, published active or None, relative tolerance, citation)
PUBLISHED = [
    ("llama-3.1-8b", 8.03e9, None, 0.01, "HF meta-llama/Llama-3.1-8B, 8.03B params"),
    ("mistral-7b-v0.1", 7.24e9, None, 0.01, "HF mistralai/Mistral-7B-v0.1, 7.24B params"),
    ("mixtral-8x7b", 46.7e9, 12.9e9, 0.01, "Mistral AI 'Mixtral of experts' (2023): 46.7B total, 12.9B per token"),
    ("qwen2.5-7b", 7.61e9, None, 0.01, "Qwen2.5-7B model card: Number of Parameters 7.61B"),
    ("qwen1.5-moe-a2.7b", 14.3e9, 2.7e9, 0.01, "Qwen1.5-MoE-A2.7B card: 14.3B total, 2.7B activated"),
    ("qwen3-8b", 8.2e9, None, 0.01, "Qwen3-8B model card: Number of Parameters 8.2B"),
    # "3.3B activated" is rounded to 0.1B: 3.353B sits just past it, hence 2%
    ("qwen3-30b-a3b", 30.5e9, 3.3e9, 0.02, "Qwen3-30B-A3B model card: 30.5B total, 3.3B activated"),
    ("deepseek-v3", 671e9, 37e9, 0.015, "DeepSeek-V3 technical report (arXiv 2412.19437), abstract: 671B / 37B"),
    ("deepseek-v2-lite", 15.7e9, None, 0.01, "DeepSeek-V2 paper (arXiv 2405.04434) appendix B: V2-Lite 15.7B"),
    ("gemma-2-9b", 9.24e9, None, 0.01, "HF google/gemma-2-9b, 9.24B params"),
    ("gemma-3-1b", 302e6 + 698e6, None, 0.01, "Gemma 3 technical report, Table 1: 302M embedding + 698M other"),
    ("gemma-3-4b", 675e6 + 3209e6, None, 0.01, "Gemma 3 technical report, Table 1: 675M emb + 3,209M (text only)"),
    ("phi-3-mini-4k", 3.82e9, None, 0.01, "HF microsoft/Phi-3-mini-4k-instruct, 3.82B params"),
    ("falcon-7b", 6.92e9, None, 0.01, "tiiuae/falcon-7b: 6.92B (HF safetensors listing)"),
    ("gpt2", 124_439_808, None, 0.0, "GPT-2 small: 124,439,808 (nanoGPT README, 'gpt2 124M')"),
    ("gpt-j-6b", 6_053_381_344, None, 0.001, "EleutherAI/gpt-j-6b model card: n_parameters 6,053,381,344"),
    ("phi-2", 2.78e9, None, 0.01, "HF microsoft/phi-2, 2.78B params"),
    ("pythia-1.4b", 1_414_647_808, None, 0.0, "Pythia model card table: 1,414,647,808 total params"),
    ("opt-13b", 12.9e9, None, 0.01, "Zhang et al. 2022, OPT Table 1: 13B; HF facebook/opt-13b 12.9B"),
    ("opt-350m", 331e6, None, 0.01, "HF facebook/opt-350m, 331M params"),
    ("bloom-560m", 559_214_592, None, 0.0, "bigscience/bloom-560m model card: 559,214,592 parameters"),
    ("mpt-7b", 6.7e9, None, 0.01, "MosaicML MPT-7B model card: 6.7B parameters"),
    ("chatglm3-6b", 6.24e9, None, 0.01, "HF THUDM/chatglm3-6b, 6.24B params"),
    ("dbrx", 132e9, 36e9, 0.015, "Databricks 'Introducing DBRX' (2024): 132B total, 36B active"),
    ("command-r", 34.98e9, None, 0.01, "HF CohereForAI/c4ai-command-r-v01, 35B (34.98B) params"),
    ("starcoder2-15b", 15.96e9, None, 0.01, "HF bigcode/starcoder2-15b, 16B (15.96B) params"),
    ("olmo-2-13b", 13.7e9, None, 0.01, "HF allenai/OLMo-2-1124-13B, 13.7B params"),
    ("internlm2-20b", 19.9e9, None, 0.01, "HF internlm/internlm2-20b, 19.9B params"),
]


@pytest.mark.parametrize(("fixture", "total", "active", "tol", "source"), PUBLISHED, ids=[p[0] for p in PUBLISHED])
def test_config_matches_published_count(fixture: str, total: float, active: float | None, tol: float, source: str):
    m = load_model_file(FIXTURES / f"{fixture}.json")
    assert m.spec.published_params == pytest.approx(total, rel=tol, abs=0), source
    assert m.exact_params is None and m.weight_bytes is None
    if active is not None:
        assert m.spec.published_active_params == pytest.approx(active, rel=tol), source
    assert any("computed from the architecture" in say(n) for n in m.notes)


def test_at_least_eight_families_have_fixtures():
    families = {load_model_file(p).spec.family for p in FIXTURES.glob("*.json")}
    assert len(families) >= 8


def test_fixture_count_is_count_params_of_the_spec_plus_noted_extras():
    plain = load_model_file(FIXTURES / "llama-3.1-8b.json").spec
    assert plain.published_params == count_params(plain).total
    opt = load_model_file(FIXTURES / "opt-350m.json")  # projections that ModelSpec cannot express
    assert opt.spec.published_params != count_params(opt.spec).total
    assert any("word_embed_proj_dim" in say(n) for n in opt.notes)


# ------------------------------------------------------------------------------------- family quirks


def load(name: str) -> LoadedModel:
    return load_model_file(FIXTURES / f"{name}.json")


def test_llama_fields():
    s = load("llama-3.1-8b").spec
    assert (s.layers, s.hidden_size, s.heads, s.kv_heads, s.ffn_size, s.vocab_size) == (32, 4096, 32, 8, 14336, 128256)
    assert s.max_context == 131072 and not s.tied_embeddings and s.attention == "gqa"
    assert s.id == "llama-3.1-8b" and s.family == "llama"


def test_mistral_and_gemma2_sliding_windows():
    assert (load("mistral-7b-v0.1").spec.sliding_window, load("mistral-7b-v0.1").spec.sliding_window_layers) == (4096, 32)
    g = load("gemma-2-9b").spec
    assert (g.sliding_window, g.sliding_window_layers, g.extra_norms_per_layer) == (4096, 21, 2)
    assert g.tied_embeddings and g.head_dim == 256
    assert load("qwen2.5-7b").spec.sliding_window is None  # use_sliding_window false


def test_gemma3_text_config_nesting_and_defaults():
    m = load("gemma-3-4b")
    s = m.spec
    assert (s.heads, s.kv_heads, s.head_dim, s.vocab_size, s.qk_norm) == (8, 4, 256, 262208, "head")
    assert s.sliding_window == 1024 and s.sliding_window_layers == 34 - 34 // 6
    assert any("text_config" in say(n) and "vision" in say(n) for n in m.notes)
    assert any("config defaults" in say(n) and "num_attention_heads=8" in say(n) for n in m.notes)


def test_qwen_bias_and_moe_shapes():
    q = load("qwen2.5-7b").spec
    assert q.qkv_bias and not q.attn_out_bias
    moe = load("qwen1.5-moe-a2.7b").spec.moe
    assert moe is not None
    assert (moe.experts, moe.experts_per_token, moe.expert_ffn_size, moe.shared_experts) == (60, 4, 1408, 1)
    assert moe.shared_expert_ffn_size == 5632 and moe.shared_expert_gate
    q3 = load("qwen3-30b-a3b").spec
    assert q3.qk_norm == "head" and q3.moe is not None and q3.moe.dense_layers == 0


def test_qwen_moe_interleaved_dense_layers(tmp_path: Path):
    cfg = json.loads((FIXTURES / "qwen3-30b-a3b.json").read_text())
    cfg.update(decoder_sparse_step=2, mlp_only_layers=[1])
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    m = load_model_file(p)
    # sparse where (i + 1) % 2 == 0: i = 1, 3, ..., 47 (24 layers), less layer 1 in mlp_only_layers -> 23 sparse
    assert m.spec.moe is not None and m.spec.moe.dense_layers == 48 - 23
    assert any("interleaved" in say(n) for n in m.notes)


def test_deepseek_mla_and_moe():
    v3 = load("deepseek-v3")
    s = v3.spec
    assert s.attention == "mla" and s.mla is not None and s.mla.q_lora_rank == 1536 and s.mla.kv_lora_rank == 512
    assert s.moe is not None and s.moe.dense_layers == 3 and s.moe.shared_experts == 1 and s.moe.router_bias
    assert v3.quant == "fp8" and v3.weights_dtype == "fp8"  # quantization_config beats torch_dtype
    assert any("multi-token-prediction" in say(n) for n in v3.notes)
    lite = load("deepseek-v2-lite").spec
    assert lite.mla is not None and lite.mla.q_lora_rank == 0 and lite.moe is not None
    assert lite.moe.shared_experts == 2 and not lite.moe.router_bias


def test_falcon_old_and_new_formats():
    old = load("falcon-7b").spec
    assert old.family == "falcon"  # model_type RefinedWebModel, Falcon's first format
    assert (old.heads, old.kv_heads, old.attention, old.parallel_block, old.ffn_kind) == (71, 1, "mqa", True, "plain")
    assert old.tied_embeddings and old.norm == "layernorm" and old.max_context == 2048
    new = load("falcon-40b").spec
    assert (new.kv_heads, new.parallel_block, new.extra_norms_per_layer) == (8, True, 1)


def test_gpt2_opt_bloom_mpt_quirks():
    g = load("gpt2")
    assert g.spec.ffn_size == 4 * 768 and g.spec.learned_positions == 1024 and g.spec.tied_embeddings
    assert any("n_inner is null" in say(n) for n in g.notes)
    assert load("opt-13b").spec.learned_positions == 2050
    b = load("bloom-560m").spec
    assert b.position_embedding == "alibi" and b.embedding_norm
    mpt = load("mpt-7b").spec
    assert mpt.ffn_size == 4 * 4096 and mpt.norm == "layernorm_nobias" and not mpt.qkv_bias
    assert mpt.position_embedding == "alibi"


def test_chatglm_dbrx_cohere_starcoder_olmo_quirks():
    c = load("chatglm3-6b").spec
    assert (c.kv_heads, c.head_dim, c.vocab_size, c.max_context, c.qkv_bias) == (2, None, 65024, 8192, True)
    d = load("dbrx").spec
    assert d.kv_heads == 8 and d.norm == "layernorm_nobias" and d.moe is not None and d.moe.experts_per_token == 4
    r = load("command-r").spec
    assert r.parallel_block and r.norm == "layernorm_nobias" and r.tied_embeddings
    sc = load("starcoder2-15b").spec
    assert sc.ffn_kind == "plain" and sc.mlp_bias and sc.norm == "layernorm" and sc.sliding_window == 4096
    assert load("olmo-2-13b").spec.qk_norm == "full"


def test_weights_dtype_from_torch_dtype():
    assert load("llama-3.1-8b").weights_dtype == "bf16"
    assert load("olmo-2-13b").weights_dtype == "fp32"
    assert load("opt-13b").weights_dtype == "fp16"


def test_unknown_model_type_is_best_effort_with_a_warning(tmp_path: Path):
    cfg = json.loads((FIXTURES / "llama-3.1-8b.json").read_text())
    cfg["model_type"] = "brand_new_arch"
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    m = load_model_file(p)
    assert m.spec.published_params == pytest.approx(8.03e9, rel=0.01)
    assert m.notes and any(say(n).startswith("warning") and "brand_new_arch" in say(n) for n in m.notes)


def test_model_type_from_architectures(tmp_path: Path):
    cfg = json.loads((FIXTURES / "gpt2.json").read_text())
    del cfg["model_type"]
    p = write(tmp_path, "config.json", json.dumps(cfg))
    m = load_model_file(p)
    assert m.spec.published_params == 124_439_808 and any("architectures" in say(n) for n in m.notes)


# ------------------------------------------------------------------------------------- mistakes


def assert_one_line(err: pytest.ExceptionInfo[ModelFileError], *parts: str) -> None:
    text = str(err.value)
    assert "\n" not in text and text
    for part in parts:
        assert part in text, text
    assert err.value.exit_code == EXIT_USAGE


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return p


@pytest.mark.parametrize("field", ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                                   "vocab_size"])
def test_missing_required_field_names_file_and_field(tmp_path: Path, field: str):
    cfg = json.loads((FIXTURES / "llama-3.1-8b.json").read_text())
    del cfg[field]
    p = write(tmp_path, "config.json", json.dumps(cfg))
    with pytest.raises(ModelFileError) as err:
        load_model_file(p)
    assert_one_line(err, str(p), field, "missing")


def test_unknown_type_missing_standard_field(tmp_path: Path):
    p = write(tmp_path, "config.json", json.dumps({"model_type": "mystery", "hidden_size": 1024}))
    with pytest.raises(ModelFileError) as err:
        load_model_file(p)
    assert_one_line(err, str(p), "num_hidden_layers")


def test_family_specific_field_missing(tmp_path: Path):
    cfg = json.loads((FIXTURES / "dbrx.json").read_text())
    del cfg["ffn_config"]["moe_top_k"]
    p = write(tmp_path, "config.json", json.dumps(cfg))
    with pytest.raises(ModelFileError) as err:
        load_model_file(p)
    assert_one_line(err, "ffn_config.moe_top_k", "dbrx")


@pytest.mark.parametrize(("value", "words"), [("big", "expected an integer"), (-4, ">= 1"), (True, "integer"),
                                              (40.5, "expected an integer")])
def test_wrong_field_type(tmp_path: Path, value: Any, words: str):
    cfg = json.loads((FIXTURES / "llama-3.1-8b.json").read_text())
    cfg["num_hidden_layers"] = value
    p = write(tmp_path, "config.json", json.dumps(cfg))
    with pytest.raises(ModelFileError) as err:
        load_model_file(p)
    assert_one_line(err, "num_hidden_layers", words)


def test_heads_not_divisible_by_kv_heads(tmp_path: Path):
    cfg = json.loads((FIXTURES / "llama-3.1-8b.json").read_text())
    cfg["num_key_value_heads"] = 5
    p = write(tmp_path, "config.json", json.dumps(cfg))
    with pytest.raises(ModelFileError) as err:
        load_model_file(p)
    assert_one_line(err, "num_key_value_heads", "not divisible")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{\"model_type\": \"llama\", ", "invalid JSON at line 1"),
        ("[1, 2, 3]", "expected a JSON object"),
        ("   \n", "empty"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00", "binary data"),
        (b"\xff\xfe{\x00}\x00", "binary data"),
        (b"\xc3\x28 not utf8", "not UTF-8"),
    ],
    ids=["broken-json", "json-array", "whitespace", "elf-binary", "utf16", "latin1"],
)
def test_broken_config_files(tmp_path: Path, content: str | bytes, words: str):
    p = write(tmp_path, "config.json", content)
    with pytest.raises(ModelFileError) as err:
        load_model_file(p)
    assert_one_line(err, str(p), words)


def test_empty_file(tmp_path: Path):
    p = write(tmp_path, "model.bin", b"")
    with pytest.raises(ModelFileError) as err:
        load_model_file(p)
    assert_one_line(err, str(p), "empty file")


def test_missing_path_and_empty_directory(tmp_path: Path):
    with pytest.raises(ModelFileError) as err:
        load_model_file(tmp_path / "nope.json")
    assert_one_line(err, "nope.json", "no such file")
    with pytest.raises(ModelFileError) as err:
        load_model_file(tmp_path)
    assert_one_line(err, str(tmp_path), "no config.json")


def test_huge_config_is_refused_unread(tmp_path: Path):
    p = tmp_path / "config.json"
    with open(p, "wb") as f:
        f.truncate(MAX_CONFIG_BYTES + 1)  # sparse: nothing to read, and nothing should be
    with pytest.raises(ModelFileError) as err:
        load_model_file(p)
    assert_one_line(err, str(p), "too large")


def test_directory_with_config(tmp_path: Path):
    (tmp_path / "config.json").write_text((FIXTURES / "qwen2.5-7b.json").read_text())
    m = load_model_file(tmp_path)
    assert m.spec.published_params == pytest.approx(7.61e9, rel=0.01)
    assert m.spec.id == tmp_path.name.lower() or m.spec.id


def test_model_file_error_is_an_llmsizer_error():
    assert issubclass(ModelFileError, LlmsizerError)


# ------------------------------------------------------------------------------------- safetensors

TINY = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 100,
        "max_position_embeddings": 512, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
_BITS = {"BF16": 16, "F16": 16, "F32": 32, "I32": 32, "U8": 8, "F8_E4M3": 8, "I8": 8}


def tiny_llama_tensors(tied: bool = False, layers: int = 2, h: int = 64, f: int = 128, v: int = 100,
                       q: int = 64, kv: int = 32) -> dict[str, tuple[str, list[int]]]:
    t: dict[str, tuple[str, list[int]]] = {"model.embed_tokens.weight": ("BF16", [v, h]),
                                           "model.norm.weight": ("BF16", [h])}
    for i in range(layers):
        p = f"model.layers.{i}."
        t.update({
            p + "input_layernorm.weight": ("BF16", [h]), p + "post_attention_layernorm.weight": ("BF16", [h]),
            p + "self_attn.q_proj.weight": ("BF16", [q, h]), p + "self_attn.k_proj.weight": ("BF16", [kv, h]),
            p + "self_attn.v_proj.weight": ("BF16", [kv, h]), p + "self_attn.o_proj.weight": ("BF16", [h, q]),
            p + "mlp.gate_proj.weight": ("BF16", [f, h]), p + "mlp.up_proj.weight": ("BF16", [f, h]),
            p + "mlp.down_proj.weight": ("BF16", [h, f]),
        })
    if not tied:
        t["lm_head.weight"] = ("BF16", [v, h])
    return t


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]], *, sparse: bool = False,
                      metadata: dict[str, str] | None = None) -> int:
    """A safetensors file written by hand (8-byte LE length, JSON header, zeroed data). Returns the element count."""
    header: dict[str, Any] = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = math.ceil(math.prod(shape) * _BITS[dtype] / 8)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        if sparse:
            fh.truncate(8 + len(raw) + offset)
        else:
            fh.write(b"\0" * offset)
    return sum(math.prod(s) for _, s in tensors.values())


def test_config_folder_with_safetensors_gives_exact_count(tmp_path: Path):
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    n = write_safetensors(tmp_path / "model.safetensors", tiny_llama_tensors())
    m = load_model_file(tmp_path)
    assert m.exact_params == n and m.spec.published_params == n
    assert m.spec.published_params == count_params(m.spec).total  # the architecture agrees with the header
    assert m.weight_bytes == 2 * n and m.dtypes == {"BF16": n} and m.weights_dtype == "bf16" and m.quant is None
    assert m.bytes_per_param == 2.0
    assert any("exact, counted from the tensor headers" in say(x) for x in m.notes)
    # pointing at the config.json itself reads the weights beside it too
    assert load_model_file(tmp_path / "config.json").exact_params == n


def test_safetensors_file_alone_infers_a_llama(tmp_path: Path):
    p = tmp_path / "tiny.safetensors"
    n = write_safetensors(p, tiny_llama_tensors(tied=True))
    m = load_model_file(p)
    s = m.spec
    assert m.exact_params == n
    assert (s.layers, s.hidden_size, s.ffn_size, s.vocab_size, s.tied_embeddings) == (2, 64, 128, 100, True)
    assert s.heads * s.head_dim_ == 64 and s.kv_heads * s.head_dim_ == 32  # q and k widths are exact
    assert any(say(x).startswith("warning: no config.json") for x in m.notes)


def test_safetensors_shards_with_index(tmp_path: Path):
    tensors = tiny_llama_tensors()
    names = list(tensors)
    half = len(names) // 2
    n1 = write_safetensors(tmp_path / "model-00001-of-00002.safetensors", {k: tensors[k] for k in names[:half]})
    n2 = write_safetensors(tmp_path / "model-00002-of-00002.safetensors", {k: tensors[k] for k in names[half:]})
    wm = {k: f"model-0000{1 if i < half else 2}-of-00002.safetensors" for i, k in enumerate(names)}
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 2 * (n1 + n2)}, "weight_map": wm}))
    # the index alone (no config): all shards read, architecture from names
    m = load_model_file(tmp_path / "model.safetensors.index.json")
    assert m.exact_params == n1 + n2 and m.weight_bytes == 2 * (n1 + n2)
    # one shard named: the whole set is read
    assert load_model_file(tmp_path / "model-00002-of-00002.safetensors").exact_params == n1 + n2
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    assert load_model_file(tmp_path).exact_params == n1 + n2


def test_index_with_missing_shards(tmp_path: Path):
    wm = {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
          "lm_head.weight": "model-00002-of-00002.safetensors"}
    idx = tmp_path / "model.safetensors.index.json"
    idx.write_text(json.dumps({"metadata": {"total_size": 123456}, "weight_map": wm}))
    with pytest.raises(ModelFileError) as err:
        load_model_file(idx)
    assert_one_line(err, str(idx), "weight_map", "config.json")
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    m = load_model_file(idx)
    assert m.exact_params is None and m.weight_bytes == 123456
    assert any("not present" in say(x) for x in m.notes)
    with pytest.raises(ModelFileError) as err:
        load_model_file(write(tmp_path, "bad.index.json", json.dumps({"weight_map": []})))
    assert_one_line(err, "weight_map")


def test_missing_shard_of_a_set(tmp_path: Path):
    p = tmp_path / "model-00001-of-00003.safetensors"
    write_safetensors(p, {"model.norm.weight": ("BF16", [8])})
    with pytest.raises(ModelFileError) as err:
        load_model_file(p)
    assert_one_line(err, str(p), "shards missing", "model-00002-of-00003.safetensors")


def test_safetensors_header_only_is_read(tmp_path: Path):
    """A 'model' whose tensor data is a 2 GiB sparse hole: only the header may be read, or this would crawl."""
    (tmp_path / "config.json").write_text(json.dumps({**TINY, "vocab_size": 2**29 // 64}))
    t = tiny_llama_tensors(v=2**29 // 64)
    n = write_safetensors(tmp_path / "model.safetensors", t, sparse=True)
    m = load_model_file(tmp_path)
    assert m.exact_params == n and m.weight_bytes > 2**30


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"\x01\x02", "too short"),
        (struct.pack("<Q", 10**12) + b"{}", "outside 1..100 MB"),
        (struct.pack("<Q", 500) + b"{}", "truncated"),
        (struct.pack("<Q", 4) + b"nope", "not JSON"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    ],
    ids=["short", "huge-header", "header-past-end", "not-json", "json-array"],
)
def test_broken_safetensors(tmp_path: Path, raw: bytes, words: str):
    p = write(tmp_path, "model.safetensors", raw)
    with pytest.raises(ModelFileError) as err:
        load_model_file(p)
    assert_one_line(err, str(p), words)


def test_safetensors_with_bad_entries(tmp_path: Path):
    def header(entry: dict[str, Any], data: int = 16) -> bytes:
        raw = json.dumps({"w": entry}).encode()
        return struct.pack("<Q", len(raw)) + raw + b"\0" * data

    cases = [
        ({"dtype": "Q9", "shape": [2], "data_offsets": [0, 4]}, "w.dtype"),
        ({"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}, "w.shape"),
        ({"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}, "w.data_offsets"),
        ({"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}, "needs 12"),
        ({"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}, "truncated"),
    ]
    for entry, words in cases:
        p = write(tmp_path, "x.safetensors", header(entry))
        with pytest.raises(ModelFileError) as err:
            load_model_file(p)
        assert_one_line(err, words)


def test_safetensors_unreadable_layout_asks_for_config(tmp_path: Path):
    p = tmp_path / "gpt2.safetensors"
    write_safetensors(p, {"h.0.attn.c_attn.weight": ("F32", [8, 24]), "wte.weight": ("F32", [10, 8])})
    with pytest.raises(ModelFileError) as err:
        load_model_file(p)
    assert_one_line(err, str(p), "config.json")
    moe = tiny_llama_tensors()
    moe["model.layers.0.block_sparse_moe.experts.0.w1.weight"] = ("BF16", [128, 64])
    write_safetensors(p, moe)
    with pytest.raises(ModelFileError) as err:
        load_model_file(p)
    assert_one_line(err, "experts per token", "config.json")


def test_fp8_checkpoint_leaves_scales_out(tmp_path: Path):
    t = tiny_llama_tensors()
    fp8 = {k: (("F8_E4M3", s) if "proj" in k else (d, s)) for k, (d, s) in t.items()}
    scales = {k.replace(".weight", ".weight_scale_inv"): ("F32", [1, 1]) for k in t if "proj" in k}
    n = write_safetensors(tmp_path / "model.safetensors", {**fp8, **scales})
    (tmp_path / "config.json").write_text(json.dumps(
        {**TINY, "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}}))
    m = load_model_file(tmp_path)
    assert m.exact_params == n - len(scales)
    assert m.quant == "fp8" and m.weights_dtype == "fp8" and "F8_E4M3" in m.dtypes
    assert any("scales" in say(x) for x in m.notes)


def test_gptq_packed_weights_are_unpacked(tmp_path: Path):
    t = tiny_llama_tensors()
    packed: dict[str, tuple[str, list[int]]] = {}
    for k, (d, (rows, cols)) in ((k, v) for k, v in t.items() if "proj" in k):
        base = k.removesuffix(".weight")
        packed[base + ".qweight"] = ("I32", [cols // 8, rows])  # GPTQ: in/8 x out, 8 int4 per int32
        packed[base + ".scales"] = ("F16", [1, rows])
        packed[base + ".qzeros"] = ("I32", [1, rows // 8])
        packed[base + ".g_idx"] = ("I32", [cols])
    rest = {k: v for k, v in t.items() if "proj" not in k}
    write_safetensors(tmp_path / "model.safetensors", {**rest, **packed})
    (tmp_path / "config.json").write_text(json.dumps(
        {**TINY, "torch_dtype": "float16", "quantization_config": {"quant_method": "gptq", "bits": 4}}))
    m = load_model_file(tmp_path)
    assert m.exact_params == sum(math.prod(s) for _, s in t.values())
    assert m.quant == "int4" and m.weights_dtype == "int4"


def test_saved_buffers_are_not_parameters(tmp_path: Path):
    t = tiny_llama_tensors()
    t["model.layers.0.self_attn.rotary_emb.inv_freq"] = ("F32", [8])
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    n = write_safetensors(tmp_path / "model.safetensors", t)
    m = load_model_file(tmp_path)
    assert m.exact_params == n - 8


def test_with_the_safetensors_package(tmp_path: Path):
    np = pytest.importorskip("numpy")
    st = pytest.importorskip("safetensors.numpy")
    arrays = {k: np.zeros(s, dtype=np.float16) for k, (_, s) in tiny_llama_tensors().items()}
    st.save_file(arrays, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({**TINY, "torch_dtype": "float16"}))
    m = load_model_file(tmp_path)
    assert m.exact_params == sum(a.size for a in arrays.values())
    assert m.dtypes == {"F16": m.exact_params} and m.weights_dtype == "fp16"


# ------------------------------------------------------------------------------------- GGUF


def write_gguf(path: Path, *, moe: bool = False, tied: bool = True, quant: bool = True) -> int:
    gguf = pytest.importorskip("gguf")
    np = pytest.importorskip("numpy")
    w = gguf.GGUFWriter(str(path), "qwen2moe" if moe else "llama")
    h, f, v, layers = 64, 128, 100, 2
    w.add_name("Tiny Test Model")
    w.add_block_count(layers)
    w.add_context_length(4096)
    w.add_embedding_length(h)
    w.add_feed_forward_length(f)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if quant else gguf.LlamaFileType.MOSTLY_F16)
    w.add_token_list([f"t{i}" for i in range(v)])
    total = 0

    def t(name: str, *shape: int) -> None:
        nonlocal total
        w.add_tensor(name, np.zeros(shape, dtype=np.float32))
        total += math.prod(shape)

    t("token_embd.weight", v, h)
    t("output_norm.weight", h)
    if not tied:
        t("output.weight", v, h)
    if moe:
        w.add_expert_count(4)
        w.add_expert_used_count(2)
        w.add_expert_feed_forward_length(32)
    for i in range(layers):
        t(f"blk.{i}.attn_norm.weight", h)
        t(f"blk.{i}.ffn_norm.weight", h)
        if quant:  # Q8_0: 34 bytes per 32 values; a 64 x 64 matrix is 64 rows of 2 blocks
            w.add_tensor(f"blk.{i}.attn_q.weight", np.zeros((64, 68), dtype=np.uint8),
                         raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            total += 64 * 64
        else:
            t(f"blk.{i}.attn_q.weight", 64, h)
        t(f"blk.{i}.attn_k.weight", 32, h)
        t(f"blk.{i}.attn_v.weight", 32, h)
        t(f"blk.{i}.attn_output.weight", h, 64)
        if moe:
            t(f"blk.{i}.ffn_gate_inp.weight", 4, h)
            t(f"blk.{i}.ffn_gate_exps.weight", 4, 32, h)
            t(f"blk.{i}.ffn_up_exps.weight", 4, 32, h)
            t(f"blk.{i}.ffn_down_exps.weight", 4, h, 32)
        else:
            t(f"blk.{i}.ffn_gate.weight", f, h)
            t(f"blk.{i}.ffn_up.weight", f, h)
            t(f"blk.{i}.ffn_down.weight", h, f)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return total


def test_gguf_dense_quantized(tmp_path: Path):
    p = tmp_path / "tiny-q8_0.gguf"
    n = write_gguf(p)
    m = load_model_file(p)
    s = m.spec
    assert m.exact_params == n and s.published_params == n == count_params(s).total
    assert (s.layers, s.hidden_size, s.heads, s.kv_heads, s.ffn_size, s.vocab_size) == (2, 64, 4, 2, 128, 100)
    assert s.tied_embeddings and s.max_context == 4096 and s.ffn_kind == "gated" and s.family == "llama"
    assert m.quant == "q8_0" and m.dtypes["Q8_0"] == 2 * 64 * 64 and m.dtypes["F32"] == n - 2 * 64 * 64
    assert m.weight_bytes == 4 * (n - 2 * 64 * 64) + 2 * 64 * 68
    assert s.id == "tiny-test-model"


def test_gguf_untied_float_and_moe(tmp_path: Path):
    p = tmp_path / "f16.gguf"
    write_gguf(p, tied=False, quant=False)
    m = load_model_file(p)
    assert not m.spec.tied_embeddings and m.quant is None and m.weights_dtype == "fp32"
    p = tmp_path / "moe.gguf"
    n = write_gguf(p, moe=True, quant=False)
    m = load_model_file(p)
    moe = m.spec.moe
    assert m.exact_params == n == count_params(m.spec).total
    assert moe is not None and (moe.experts, moe.experts_per_token, moe.expert_ffn_size) == (4, 2, 32)
    assert m.spec.published_active_params is not None and m.spec.published_active_params < n


def test_gguf_found_in_a_directory(tmp_path: Path):
    write_gguf(tmp_path / "only.gguf")
    assert load_model_file(tmp_path).exact_params
    write_gguf(tmp_path / "second.gguf")
    with pytest.raises(ModelFileError) as err:
        load_model_file(tmp_path)
    assert_one_line(err, "2 GGUF models")


def test_gguf_without_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    p = write(tmp_path, "model.gguf", b"GGUF\x03\x00\x00\x00" + b"\0" * 32)
    monkeypatch.setitem(sys.modules, "gguf", None)  # import gguf -> ImportError
    with pytest.raises(ModelFileError) as err:
        load_model_file(p)
    assert_one_line(err, str(p), "pip install", "gguf")


def test_broken_gguf(tmp_path: Path):
    pytest.importorskip("gguf")
    p = write(tmp_path, "model.gguf", b"GGUF\x03\x00\x00\x00" + b"\xff" * 40)
    with pytest.raises(ModelFileError) as err:
        load_model_file(p)
    assert_one_line(err, str(p), "not a readable GGUF file")
    p = write(tmp_path, "fake.gguf", b"not gguf at all")
    with pytest.raises(ModelFileError) as err:
        load_model_file(p)
    assert_one_line(err, str(p), "magic")


def test_gguf_without_architecture(tmp_path: Path):
    gguf = pytest.importorskip("gguf")
    np = pytest.importorskip("numpy")
    p = tmp_path / "noarch.gguf"
    w = gguf.GGUFWriter(str(p), "llama")
    w.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ModelFileError) as err:
        load_model_file(p)
    assert_one_line(err, str(p), "llama.block_count", "missing")


# ------------------------------------------------------------------------------------- the Hub, faked locally


class FakeHub:
    """Files under ``root/{org}/{name}/`` served as ``/{org}/{name}/resolve/main/{file}``, with Range support."""

    def __init__(self, root: Path, *, honour_range: bool = True, deny: tuple[str, ...] = ()):
        self.root, self.honour_range, self.deny = root, honour_range, deny
        self.cdn: str | None = None  # when set, .safetensors requests are redirected there (as the Hub does)
        self.requests: list[tuple[str, str | None, str | None]] = []  # (path, Range, Authorization)
        self.bytes_sent: dict[str, int] = {}


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[FakeHub, str]]:
    fake = FakeHub(tmp_path / "hub")

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            fake.requests.append((self.path, self.headers.get("Range"), self.headers.get("Authorization")))
            parts = self.path.lstrip("/").split("/")
            if parts[0] == "cdn":  # /cdn/{org}/{name}/{file}: what a redirect points at
                parts = [*parts[1:3], "resolve", "main", *parts[3:]]
            elif fake.cdn and self.path.endswith(".safetensors"):
                self.send_response(302)
                self.send_header("Location", f"{fake.cdn}/cdn/{'/'.join(parts[:2])}/{'/'.join(parts[4:])}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if len(parts) < 5 or parts[2] != "resolve":
                self.send_error(400)
                return
            repo = "/".join(parts[:2])
            if repo in fake.deny:
                self.send_error(401)
                return
            f = fake.root / repo / "/".join(parts[4:])
            if not f.is_file():
                self.send_error(404)
                return
            data = f.read_bytes()
            rng = self.headers.get("Range")
            if rng and fake.honour_range:
                a, b = (int(x) for x in rng.removeprefix("bytes=").split("-"))
                body = data[a:b + 1]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {a}-{a + len(body) - 1}/{len(data)}")
            else:
                body = data
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
                fake.bytes_sent[f.name] = fake.bytes_sent.get(f.name, 0) + len(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def publish(fake: FakeHub, repo: str, *, config: dict[str, Any] | None = None, sharded: bool = False,
            weights: bool = True) -> int:
    d = fake.root / repo
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(config or TINY))
    if not weights:
        return 0
    tensors = tiny_llama_tensors()
    if not sharded:
        return write_safetensors(d / "model.safetensors", tensors)
    names = list(tensors)
    half = len(names) // 2
    n = write_safetensors(d / "model-00001-of-00002.safetensors", {k: tensors[k] for k in names[:half]})
    n += write_safetensors(d / "model-00002-of-00002.safetensors", {k: tensors[k] for k in names[half:]})
    wm = {k: f"model-0000{1 if i < half else 2}-of-00002.safetensors" for i, k in enumerate(names)}
    (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": 2 * n}, "weight_map": wm}))
    return n


def test_hub_config_and_single_file_headers(hub: tuple[FakeHub, str]):
    fake, endpoint = hub
    n = publish(fake, "acme/tiny")
    assert fetch_config("acme/tiny", endpoint=endpoint)["hidden_size"] == 64
    fake.requests.clear()
    m = load_hub_model("acme/tiny", endpoint=endpoint, token="secret")
    assert m.exact_params == n and m.spec.published_params == n and m.weights_dtype == "bf16"
    assert m.source == "acme/tiny" and m.spec.id == "tiny"
    st = [(path, rng) for path, rng, _ in fake.requests if path.endswith(".safetensors")]
    assert st and all(rng is not None for _, rng in st)  # every weight request was a Range request
    header_len = struct.unpack("<Q", (fake.root / "acme/tiny/model.safetensors").read_bytes()[:8])[0]
    assert fake.bytes_sent["model.safetensors"] == 8 + header_len  # never a byte of tensor data
    assert all(auth == "Bearer secret" for _, _, auth in fake.requests)


def test_hub_redirect_keeps_range_and_drops_the_token_across_hosts(hub: tuple[FakeHub, str]):
    fake, endpoint = hub
    fake.cdn = endpoint.replace("127.0.0.1", "localhost")  # another host name for the same loopback server
    n = publish(fake, "acme/cdn")
    m = load_hub_model("acme/cdn", endpoint=endpoint, token="secret")
    assert m.exact_params == n
    cdn = [(rng, auth) for path, rng, auth in fake.requests if path.startswith("/cdn/")]
    assert cdn and all(rng is not None and auth is None for rng, auth in cdn)
    assert all(auth == "Bearer secret" for path, _, auth in fake.requests if not path.startswith("/cdn/"))


def test_hub_sharded_index(hub: tuple[FakeHub, str]):
    fake, endpoint = hub
    n = publish(fake, "acme/sharded", sharded=True)
    m = load_hub_model("acme/sharded", endpoint=endpoint)
    assert m.exact_params == n and m.weight_bytes == 2 * n


def test_hub_server_ignoring_range(hub: tuple[FakeHub, str]):
    fake, endpoint = hub
    fake.honour_range = False
    n = publish(fake, "acme/norange")
    assert load_hub_model("acme/norange", endpoint=endpoint).exact_params == n


def test_hub_endpoint_from_env_and_no_weights(hub: tuple[FakeHub, str], monkeypatch: pytest.MonkeyPatch):
    fake, endpoint = hub
    publish(fake, "acme/configonly", config=json.loads((FIXTURES / "qwen2.5-7b.json").read_text()), weights=False)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    m = load_hub_model("acme/configonly")
    assert m.exact_params is None and m.spec.published_params == pytest.approx(7.61e9, rel=0.01)
    assert any("no safetensors" in say(x) for x in m.notes)


def test_hub_errors_are_one_line(hub: tuple[FakeHub, str]):
    fake, endpoint = hub
    fake.deny = ("acme/gated",)
    with pytest.raises(HubError) as err:
        fetch_config("acme/missing", endpoint=endpoint)
    assert "\n" not in str(err.value) and "not found" in str(err.value) and "acme/missing" in str(err.value)
    with pytest.raises(HubError) as err:
        fetch_config("acme/gated", endpoint=endpoint)
    assert "HF_TOKEN" in str(err.value) and err.value.exit_code == EXIT_USAGE
    with pytest.raises(HubError) as err:
        fetch_config("not a repo", endpoint=endpoint)
    assert "org/name" in str(err.value)
    d = fake.root / "acme/broken"
    d.mkdir(parents=True)
    (d / "config.json").write_text("{oops")
    with pytest.raises(ModelFileError) as err2:
        fetch_config("acme/broken", endpoint=endpoint)
    assert "acme/broken/config.json" in str(err2.value) and "invalid JSON" in str(err2.value)


def test_hub_offline(monkeypatch: pytest.MonkeyPatch):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(HubError) as err:
        fetch_config("acme/tiny", endpoint=f"http://127.0.0.1:{port}", timeout=2)
    assert "\n" not in str(err.value) and "cannot reach" in str(err.value)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError) as err:
        fetch_config("acme/tiny", endpoint=f"http://127.0.0.1:{port}")
    assert "HF_HUB_OFFLINE" in str(err.value)


def test_repo_id_shape():
    assert is_repo_id("meta-llama/Llama-3.1-8B") and is_repo_id("Qwen/Qwen2.5-7B-Instruct")
    assert not is_repo_id("llama-3.1-8b") and not is_repo_id("./config.json") and not is_repo_id("a/b/c")
    assert not is_repo_id("../x")


# ------------------------------------------------------------------------------------- notes, in words

SRC = Path(__file__).parent.parent / "src" / "llmsizer"
READER_SOURCES = [*sorted((SRC / "catalog" / "modelfiles").glob("*.py")), SRC / "catalog" / "hub.py"]
NOTE_CODE = re.compile(r"""message\(\s*["'](file\.[a-z0-9_]+)["']""")

#: one params dict that covers every parameter a ``file.*`` note reads
FILE_PARAMS: dict[str, Any] = {
    "where": "models/config.json", "model_type": "qwen3_moe", "files": 2, "weight_bytes": 16_060_522_496,
    "dtypes": (("BF16", 8_000_000_000), ("F32", 30_000_000)), "params": 8_030_000_000, "method": "fp8",
    "quant": "fp8", "missing": 3, "index": "model.safetensors.index.json", "head_dim": 128,
    "repo_id": "acme/tiny", "endpoint": "https://huggingface.co", "revision": "main", "error": "acme/tiny: timed out",
    "exact_params": 8_030_261_248, "computed_params": 8_030_000_000, "diff": 3.25e-05, "threshold": 0.02,
    "active_params": 3_300_000_000, "values": 12_345, "bits": 4.5, "arch": "llama", "tokens": 2048, "experts": 128,
    "experts_per_token": 8, "dense_layers": 3, "architecture": "LlamaForCausalLM", "key": "text_config",
    "inner_type": "gemma3_text", "defaults": (("head_dim", 256), ("vocab_size", 262208)),
    "keys": ("hidden_size", "vocab_size"), "window": 4096, "layers_windowed": 21, "layers": 42, "expert_ffn": 768,
    "shared_experts": 1, "shared_ffn": 2048, "mtp_layers": 1, "kv_heads": 8, "norms": 2, "hidden": 768, "ffn": 3072,
    "positions": 2048, "offset": 2, "proj": 512,
}
CJK = re.compile(r"[\u4e00-\u9fff]")


def reader_codes() -> set[str]:
    return {c for p in READER_SOURCES for c in NOTE_CODE.findall(p.read_text(encoding="utf-8"))}


def test_every_reader_note_code_has_english_and_chinese_words():
    from llmsizer.render.i18n import en_files, zh_files

    used = reader_codes()
    assert len(used) >= 40  # the regex still finds the readers' message(...) calls
    assert used <= set(en_files.MESSAGES), sorted(used - set(en_files.MESSAGES))
    assert used <= set(zh_files.MESSAGES), sorted(used - set(zh_files.MESSAGES))
    assert set(en_files.MESSAGES) == used, sorted(set(en_files.MESSAGES) - used)  # no words left for a gone note
    assert set(zh_files.MESSAGES) == set(en_files.MESSAGES)


@pytest.mark.parametrize("code", sorted(reader_codes()))
def test_reader_note_renders_in_both_languages(code: str):
    from llmsizer.explain import Message

    for p in (FILE_PARAMS, {**FILE_PARAMS, "files": 1, "dense_layers": 0, "shared_experts": 0, "shared_ffn": None,
                            "inner_type": "", "kv_heads": 1}):
        en_text, zh_text = say(Message(code, p), "en"), say(Message(code, p), "zh")
        assert en_text and "\n" not in en_text and not CJK.search(en_text)
        assert zh_text != en_text and CJK.search(zh_text) and "\n" not in zh_text


def test_reader_notes_are_messages_with_file_codes():
    from llmsizer.explain import Message

    for path in sorted(FIXTURES.glob("*.json")):
        m = load_model_file(path)
        assert m.notes and all(isinstance(n, Message) and n.code.startswith("file.") for n in m.notes), path.name
        assert all(CJK.search(say(n, "zh")) for n in m.notes), path.name
