"""The packaged model catalog (data/models.yaml) against its schema and against published parameter counts.

Every entry's architecture, run through ``llmsizer.architecture.count_params``, must reproduce the parameter count
its card, paper or Hugging Face safetensors metadata states (``published_params``), and for mixture-of-experts
models the activated count (``published_active_params``), within 1 %. A handful of pins below check exact or
stated-precision figures and name their source.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from llmsizer.data.validation import validate
from llmsizer.specs import ModelSpec
from llmsizer.specs.architecture import count_params

DATA = Path(__file__).resolve().parents[1] / "data"
TOLERANCE = 0.01  # relative; published counts are given to at least 3 significant figures


def _raw() -> dict:
    with (DATA / "models.yaml").open(encoding="utf-8") as f:
        return yaml.safe_load(f)


RAW = _raw()
ENTRIES = RAW["models"]


def _norm(name: str) -> str:
    """How the catalog matches names: case-insensitive, spaces and underscores read as hyphens."""
    return re.sub(r"[\s_]+", "-", name.strip().lower())


@pytest.fixture(scope="module")
def models() -> dict[str, ModelSpec]:
    return {m.id: m for m in (validate(ModelSpec, e) for e in ENTRIES)}


# ---------------------------------------------------------------------------------------------- schema


def test_every_entry_validates():
    problems = []
    for i, e in enumerate(ENTRIES):
        try:
            validate(ModelSpec, e)
        except ValidationError as exc:  # collect every problem, not just the first
            problems.append(f"models[{i}] {e.get('id', '?')}: {exc}")
    assert not problems, "\n".join(problems)


def test_catalog_is_broad():
    assert len(ENTRIES) >= 45


def test_top_level_keys():
    assert set(RAW) == {"models", "size_references"}


def test_ids_and_aliases_are_unique(models):
    seen: dict[str, str] = {}
    clashes = []
    for m in models.values():
        names = {_norm(n) for n in (m.id, *m.aliases)}
        for n in names:
            if n in seen:
                clashes.append(f"'{n}' names both {seen[n]} and {m.id}")
            seen[n] = m.id
    assert len(models) == len(ENTRIES), "duplicate ids"
    assert not clashes, "\n".join(clashes)


def test_sources_are_links(models):
    assert all(m.source.startswith("https://") for m in models.values())


def test_size_references_point_at_catalog_models(models):
    refs = RAW["size_references"]
    for key, model_id in refs.items():
        assert re.fullmatch(r"\d+(\.\d)?b", key), key
        assert model_id in models, f"{key} -> unknown model {model_id}"
    # the shorthands users type most
    for key in ("0.5b", "1b", "1.5b", "3b", "7b", "8b", "13b", "14b", "32b", "34b", "70b", "72b", "175b", "405b",
                "671b"):
        assert key in refs, key


def test_moe_entries_state_their_active_count(models):
    """An MoE entry carries published_active_params, or its notes quote the developer's (too coarse) figure."""
    for m in models.values():
        if m.is_moe and m.published_active_params is None:
            assert m.notes and "activ" in m.notes, m.id
        if not m.is_moe:
            assert m.published_active_params is None, m.id


# ------------------------------------------------------------------------------------- published counts


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_total_matches_published(entry):
    m = validate(ModelSpec, entry)
    total = count_params(m).total
    assert abs(total / m.published_params - 1) < TOLERANCE, (total, m.published_params)


MOE_WITH_ACTIVE = [e for e in ENTRIES if e.get("published_active_params")]


@pytest.mark.parametrize("entry", MOE_WITH_ACTIVE, ids=[e["id"] for e in MOE_WITH_ACTIVE])
def test_active_matches_published(entry):
    m = validate(ModelSpec, entry)
    active = count_params(m).active
    assert abs(active / m.published_active_params - 1) < TOLERANCE, (active, m.published_active_params)


def test_dense_models_are_fully_active(models):
    for m in models.values():
        if not m.is_moe:
            c = count_params(m)
            assert c.active == c.total, m.id


# ----------------------------------------------------------------------------------------------- pins


def test_llama_3_1_8b_exact(models):
    # Hugging Face safetensors metadata of meta-llama/Llama-3.1-8B: 8,030,261,248 parameters.
    assert count_params(models["llama-3.1-8b"]).total == 8_030_261_248


def test_gpt2_small_exact(models):
    # OpenAI GPT-2 124M: 50257 x 768 token + 1024 x 768 position embeddings, 12 layers, LM head tied.
    # 124,439,808 (the 137M on its Hugging Face page adds the 12 stored 1024 x 1024 attention-mask buffers).
    c = count_params(models["gpt2"])
    assert c.total == 124_439_808
    assert c.lm_head == 0
    assert c.embedding == 50257 * 768 + 1024 * 768


def test_mixtral_8x7b_blog_figures(models):
    # Mistral AI, "Mixtral of experts" (2023-12-11): "46.7B total parameters but only uses 12.9B parameters per
    # token". Both are given to 0.1B; the architecture must round to them.
    c = count_params(models["mixtral-8x7b"])
    assert round(c.total / 1e8) == 467
    assert round(c.active / 1e8) == 129


def test_deepseek_v3_report_figures(models):
    # DeepSeek-V3 Technical Report (arXiv 2412.19437): 671B total parameters, 37B activated per token, the
    # multi-token-prediction module excluded. README_WEIGHTS.md: activated 36.6B "including 0.9B for the output
    # Head", i.e. without the input embedding, which llmsizer's `active` counts.
    m = models["deepseek-v3"]
    c = count_params(m)
    assert round(c.total / 1e9) == 671
    without_input_embedding = c.active - m.vocab_size * m.hidden_size
    assert round(without_input_embedding / 1e9) == 37
    assert round(without_input_embedding / 1e8) == 366


def test_gpt3_175b_table_d1(models):
    # Brown et al. 2020, Table D.1: GPT-3 175B has 174,600M parameters.
    assert round(count_params(models["gpt3-175b"]).total / 1e8) == 1746


def test_parts_sum_to_total(models):
    for m in models.values():
        c = count_params(m)
        parts = (c.embedding, c.lm_head, c.attention, c.dense_mlp, c.routed_experts, c.shared_experts, c.router,
                 c.norms, c.biases)
        assert sum(parts) == c.total, m.id
        assert all(p >= 0 for p in parts), m.id
