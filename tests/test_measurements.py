"""The CPU measurements in data/measurements/cpu-saved-tensors.yaml: well-formed, self-consistent, physical.

The file is written by ``tools/measure.py`` from real PyTorch models (see docs/measurements.md). These tests do not
need torch. They check the file against physics (bytes = elements x element size, AdamW keeps two moments per
parameter, a gradient is the shape of its parameter, checkpointing keeps one input per layer) and cross-check
llmsizer's parameter counter against the parameters PyTorch actually instantiated. Activation *estimates* are
compared elsewhere, against llmsizer.memory.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmsizer.data.validation import validate
from llmsizer.specs import ModelSpec
from llmsizer.specs.architecture import count_params

PATH = Path(__file__).resolve().parents[1] / "data" / "measurements" / "cpu-saved-tensors.yaml"
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
NON_SPEC_KEYS = {"model_type"}  # the one architecture key that is not a ModelSpec field

MEASURED_INT_KEYS = (
    "param_count", "param_tensors", "param_bytes", "grad_bytes", "optimizer_bytes", "optimizer_state_tensors",
    "saved_activation_bytes", "saved_layers_bytes", "saved_embedding_bytes", "saved_head_bytes", "saved_storages",
    "saved_activation_peak_bytes", "kv_cache_bytes", "kv_cache_positions",
)


def _load() -> list[dict[str, Any]]:
    with PATH.open() as fh:
        return yaml.safe_load(fh)


RECORDS = _load()


def _ids(recs: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in recs]


def spec_of(rec: dict[str, Any]) -> ModelSpec:
    arch = {k: v for k, v in rec["architecture"].items() if k not in NON_SPEC_KEYS}
    return validate(ModelSpec, dict(
        id=rec["id"], name=rec["id"], family=rec["architecture"]["model_type"], published_params=1.0,
        max_context=max(rec["seq_len"], arch.get("learned_positions", 0) or 1), source="tools/measure.py (random init)",
        **arch,
    ))


# ------------------------------------------------------------------------------------------------ well-formed


def test_file_is_a_nonempty_list_of_records() -> None:
    assert isinstance(RECORDS, list) and len(RECORDS) >= 40


def test_ids_unique() -> None:
    ids = _ids(RECORDS)
    assert len(ids) == len(set(ids))


def test_coverage() -> None:
    """At least five architectures, one of them MoE; eager and SDPA; with and without checkpointing; two dtypes."""
    types = {r["architecture"]["model_type"] for r in RECORDS}
    assert len(types) >= 5, types
    assert any(r["architecture"].get("moe") for r in RECORDS)
    assert {r["attn_implementation"] for r in RECORDS} >= {"eager", "sdpa"}
    assert {r["gradient_checkpointing"] for r in RECORDS} == {False, True}
    assert {r["dtype"] for r in RECORDS} >= {"fp32", "bf16"}
    assert len({(r["seq_len"], r["micro_batch"]) for r in RECORDS}) >= 2


@pytest.mark.parametrize("rec", RECORDS, ids=_ids(RECORDS))
def test_record_shape(rec: dict[str, Any]) -> None:
    for key in ("id", "architecture", "dtype", "seq_len", "micro_batch", "attn_implementation",
                "gradient_checkpointing", "measured", "command", "versions", "machine", "date"):
        assert key in rec, key
    assert rec["dtype"] in DTYPE_BYTES
    assert rec["command"].startswith("python tools/measure.py")
    assert {"torch", "transformers", "python"} <= set(rec["versions"])
    assert {"platform", "cpu"} <= set(rec["machine"])
    assert len(str(rec["date"])) == 10
    m = rec["measured"]
    for key in MEASURED_INT_KEYS:
        assert isinstance(m[key], int) and m[key] >= 0, key
    assert m["param_count"] > 0 and m["saved_activation_bytes"] > 0 and m["kv_cache_bytes"] > 0


@pytest.mark.parametrize("rec", RECORDS, ids=_ids(RECORDS))
def test_architecture_builds_a_model_spec(rec: dict[str, Any]) -> None:
    spec = spec_of(rec)
    assert spec.layers == rec["architecture"]["layers"]


# ------------------------------------------------------------------------------------------------ physics


@pytest.mark.parametrize("rec", RECORDS, ids=_ids(RECORDS))
def test_param_count_matches_llmsizer(rec: dict[str, Any]) -> None:
    """PyTorch's instantiated parameter count equals llmsizer's count for the same architecture, exactly."""
    m = rec["measured"]
    assert m["param_bytes"] == m["param_count"] * DTYPE_BYTES[rec["dtype"]]
    assert count_params(spec_of(rec)).total == m["param_count"]


@pytest.mark.parametrize("rec", RECORDS, ids=_ids(RECORDS))
def test_gradients_are_the_size_of_the_parameters(rec: dict[str, Any]) -> None:
    m = rec["measured"]
    assert m["grad_bytes"] == m["param_bytes"]


@pytest.mark.parametrize("rec", RECORDS, ids=_ids(RECORDS))
def test_adamw_state(rec: dict[str, Any]) -> None:
    """torch AdamW: exp_avg and exp_avg_sq in the parameter's dtype, plus one fp32 ``step`` scalar per tensor."""
    m = rec["measured"]
    assert m["optimizer_state_tensors"] == 3 * m["param_tensors"]
    assert m["optimizer_bytes"] == 2 * m["param_bytes"] + 4 * m["param_tensors"]
    if rec["dtype"] == "fp32":
        assert m["optimizer_bytes"] == 2 * m["param_count"] * 4 + 4 * m["param_tensors"]


@pytest.mark.parametrize("rec", RECORDS, ids=_ids(RECORDS))
def test_saved_bytes_add_up(rec: dict[str, Any]) -> None:
    m = rec["measured"]
    parts = m["saved_layers_bytes"] + m["saved_embedding_bytes"] + m["saved_head_bytes"]
    assert parts == m["saved_activation_bytes"]
    assert m["saved_activation_peak_bytes"] >= m["saved_activation_bytes"]
    # A training step's saved activations can never be smaller than one copy of the layer stack's inputs
    a = rec["architecture"]
    tokens = rec["seq_len"] * rec["micro_batch"]
    assert m["saved_layers_bytes"] >= a["layers"] * tokens * a["hidden_size"] * DTYPE_BYTES[rec["dtype"]]


CKPT = [r for r in RECORDS if r["gradient_checkpointing"]]


@pytest.mark.parametrize("rec", CKPT, ids=_ids(CKPT))
def test_checkpointing_keeps_one_input_per_layer(rec: dict[str, Any]) -> None:
    """With every layer checkpointed, the stack holds each layer's input hidden state (L x s x b x h), plus at most:

    - one b x s x s attention mask in the model's dtype, shared by all layers, when the model hands the mask to the
      layer positionally (GPT-2 eager) so that the checkpoint saves it;
    - with dropout, one s x b x h dropout mask of the embedding dropout, in the model's dtype (CPU dropout multiplies
      by a mask of the input's dtype rather than a 1-byte boolean one).
    """
    a, m = rec["architecture"], rec["measured"]
    s, b, e = rec["seq_len"], rec["micro_batch"], DTYPE_BYTES[rec["dtype"]]
    extra = m["saved_layers_bytes"] - a["layers"] * s * b * a["hidden_size"] * e
    if a.get("dropout", 0) > 0:
        extra -= s * b * a["hidden_size"] * e
    assert extra in (0, b * s * s * e), extra


def test_checkpointing_saves_less_and_leaves_the_rest_alone() -> None:
    by_run: dict[tuple, dict[bool, dict[str, Any]]] = defaultdict(dict)
    for r in RECORDS:
        key = (r["id"].rsplit("-", 1)[0])
        by_run[key][r["gradient_checkpointing"]] = r["measured"]
    pairs = [v for v in by_run.values() if len(v) == 2]
    assert pairs
    for v in pairs:
        off, on = v[False], v[True]
        assert on["saved_activation_bytes"] < off["saved_activation_bytes"]
        assert on["saved_activation_peak_bytes"] < off["saved_activation_peak_bytes"]
        assert on["saved_head_bytes"] == off["saved_head_bytes"]
        assert on["saved_embedding_bytes"] == off["saved_embedding_bytes"]
        assert on["param_bytes"] == off["param_bytes"] and on["optimizer_bytes"] == off["optimizer_bytes"]


def test_same_model_same_static_memory() -> None:
    """Parameters, gradients, optimizer state and KV cache do not depend on attention kernel or checkpointing."""
    groups: dict[tuple, set] = defaultdict(set)
    for r in RECORDS:
        m = r["measured"]
        key = (r["id"].split("-fp32")[0].split("-bf16")[0], r["dtype"], r["seq_len"], r["micro_batch"])
        groups[key].add((m["param_bytes"], m["grad_bytes"], m["optimizer_bytes"], m["kv_cache_bytes"]))
    for key, vals in groups.items():
        assert len(vals) == 1, (key, vals)


@pytest.mark.parametrize("rec", RECORDS, ids=_ids(RECORDS))
def test_kv_cache_is_keys_and_values(rec: dict[str, Any]) -> None:
    """2 (K and V) x layers x kv_heads x head_dim x cached positions x batch x element size, exactly."""
    a, m = rec["architecture"], rec["measured"]
    per_position = 2 * a["layers"] * a["kv_heads"] * a["head_dim"] * DTYPE_BYTES[rec["dtype"]]
    assert m["kv_cache_bytes"] == per_position * m["kv_cache_positions"] * rec["micro_batch"]
    assert m["kv_cache_positions"] <= rec["seq_len"]
    window = a.get("sliding_window")
    if window is None or window > rec["seq_len"]:
        assert m["kv_cache_positions"] == rec["seq_len"]
        assert m["kv_cache_bytes_per_token"] == per_position
    else:  # transformers' sliding-window cache keeps the last window - 1 positions (the next token makes it window)
        assert m["kv_cache_positions"] == window - 1
