"""Hugging Face ``config.json`` -> ``ModelSpec`` fields, one reader per architecture family.

Each reader follows the modelling code that instantiates the config (``transformers/models/<family>/``, or the
``modeling_*.py`` a repo ships for ``trust_remote_code`` families), so the shapes it describes are the ones the
checkpoint holds. Field defaults are the config class's own defaults (``LlamaConfig``, ``Gemma3TextConfig``...):
a missing field that a real checkpoint relies on the default for is filled from them and said so in the notes.

What ``ModelSpec`` cannot express is added to (or taken from) the count as ``extra_params`` with a note: OPT's
embedding projections, OLMo-1's parameter-free LayerNorms, ChatGLM without a final norm.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmsizer.catalog.modelfiles._common import (
    MAX_NAME_CHARS,
    check_text,
    fail,
    short_repr,
)
from llmsizer.explain import Message, message

_MISSING = object()

#: The largest integer a config field may hold (int64, as in transformers' configs): bigger ones are no sizes,
#: and products of a few of them would overflow a float.
MAX_CONFIG_INT = 2**63 - 1

#: Keys under which multimodal wrappers nest their language model's config.
_NESTED_TEXT_KEYS = ("text_config", "llm_config", "language_config")

#: transformers ``Gemma3TextConfig`` defaults: gemma-3-4b/12b configs leave heads, head_dim and vocab to them.
_GEMMA3_TEXT_DEFAULTS: dict[str, Any] = {
    "vocab_size": 262_208,
    "hidden_size": 2304,
    "intermediate_size": 9216,
    "num_hidden_layers": 26,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "max_position_embeddings": 131_072,
    "sliding_window": 4096,
    "sliding_window_pattern": 6,
}


@dataclass
class Derived:
    """What a family reader produces: ``ModelSpec`` fields, notes, and parameters the spec cannot express."""

    fields: dict[str, Any]
    notes: list[Message] = field(default_factory=list)
    extra_params: int = 0
    origin: dict[str, str] = field(default_factory=dict)  # spec field -> config key it came from
    torch_dtype: str | None = None  # the config's torch_dtype ("bfloat16"), when it gives one


class ConfigReader:
    """Typed access to a config dict; every failure is one line naming the file and the field."""

    def __init__(self, data: Mapping[str, Any], where: str, model_type: str, defaults: Mapping[str, Any] | None = None):
        self.data = data
        self.where = where
        self.model_type = model_type
        self.defaults = dict(defaults or {})
        self.defaulted: list[tuple[str, Any]] = []  # (config key, family default) of each default used
        self.origin: dict[str, str] = {}

    def _lookup(self, name: str) -> tuple[bool, Any]:
        node: Any = self.data
        for part in name.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return False, None
            node = node[part]
        return True, node

    def has(self, name: str) -> bool:
        found, value = self._lookup(name)
        return found and value is not None

    def raw(self, *names: str, default: Any = _MISSING) -> tuple[str, Any]:
        """(key, value) of the first of ``names`` present and not null; then family defaults; then ``default``."""
        key, value, _ = self._resolve(names, default)
        return key, value

    def _resolve(self, names: tuple[str, ...], default: Any) -> tuple[str, Any, str]:
        for n in names:
            found, value = self._lookup(n)
            if found and value is not None:
                return n, value, "config"
        for n in names:
            if n in self.defaults:
                if (n, self.defaults[n]) not in self.defaulted:
                    self.defaulted.append((n, self.defaults[n]))
                return n, self.defaults[n], "family"
        if default is _MISSING:
            also = f" (nor {', '.join(names[1:])})" if len(names) > 1 else ""
            raise fail(self.where, names[0], f"missing{also}; a '{self.model_type}' config needs it")
        return names[0], default, "default"

    def integer(self, *names: str, default: Any = _MISSING, spec_field: str | None = None, minimum: int = 1) -> Any:
        """An integer >= ``minimum``; ``default`` (returned as is, unchecked) when none of ``names`` is set."""
        key, value, source = self._resolve(names, default)
        if source == "default":
            return value
        if spec_field:
            self.origin[spec_field] = key
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail(self.where, key, f"expected an integer, got {short_repr(value)}")
        if isinstance(value, float):
            if not value.is_integer():
                raise fail(self.where, key, f"expected an integer, got {short_repr(value)}")
            value = int(value)
        if value < minimum:
            raise fail(self.where, key, f"expected an integer >= {minimum}, got {value}")
        if value > MAX_CONFIG_INT:
            raise fail(self.where, key, f"expected an integer below 2^63, got {short_repr(value)}")
        return value

    def opt_integer(self, *names: str, minimum: int = 1) -> int | None:
        return self.integer(*names, default=None, minimum=minimum)

    def flag(self, *names: str, default: bool) -> bool:
        key, value = self.raw(*names, default=default)
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise fail(self.where, key, f"expected true or false, got {short_repr(value)}")

    def text(self, *names: str, default: str | None = None) -> str | None:
        """A short string (an activation's name, a routing method): at most ``MAX_NAME_CHARS`` characters."""
        key, value = self.raw(*names, default=default)
        if value is None:
            return value
        return check_text(self.where, key, value, MAX_NAME_CHARS)

    def int_list(self, name: str) -> list[int]:
        found, value = self._lookup(name)
        if not found or value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in value):
            raise fail(self.where, name, f"expected a list of integers, got {short_repr(value)}")
        return value


# ----------------------------------------------------------------------------------------------- shared pieces


def _attention_kind(heads: int, kv_heads: int) -> str:
    return "mha" if kv_heads == heads else "mqa" if kv_heads == 1 else "gqa"


def _head_dim(r: ConfigReader, hidden: int, heads: int, *names: str) -> int | None:
    """An explicit head_dim, or None when it is hidden / heads; a clear error when neither works."""
    explicit = r.opt_integer(*names) if names else None
    if explicit is not None:
        if explicit * heads == hidden:
            return None
        r.origin["head_dim"] = r.raw(*names)[0]
        return explicit
    if hidden % heads:
        raise fail(
            r.where, "head_dim",
            f"missing, and hidden size {hidden} is not divisible by {heads} attention heads",
        )
    return None


def _check_kv(r: ConfigReader, heads: int, kv_heads: int, heads_key: str, kv_key: str) -> None:
    if heads % kv_heads:
        raise fail(r.where, kv_key, f"{heads} attention heads ({heads_key}) are not divisible by {kv_heads} KV heads")


def _context(r: ConfigReader, d: Derived, *names: str, default: int = 2048) -> int:
    value = r.opt_integer(*names)
    if value is None:
        d.notes.append(message("file.context_assumed", key=names[0], tokens=default))
        return default
    r.origin["max_context"] = r.raw(*names)[0]
    return value


def _sliding(d: Derived, r: ConfigReader, layers: int, max_context: int, how: str, pattern_default: int = 0) -> None:
    """Set ``sliding_window`` / ``sliding_window_layers``.

    ``how``: ``all`` (Mistral v0.1, StarCoder2, Phi-3), ``alternate`` (Gemma 2: even layers slide), ``pattern``
    (Gemma 3, Cohere 2: every ``sliding_window_pattern``-th layer is global), ``qwen`` (only when
    ``use_sliding_window``, for layers from ``max_window_layers`` on). An explicit ``layer_types`` list wins.
    """
    window = r.opt_integer("sliding_window")
    if window is None:
        return
    layer_types = r.data.get("layer_types")
    if isinstance(layer_types, list) and len(layer_types) == layers:
        n = sum(1 for t in layer_types if t == "sliding_attention")
    elif how == "all":
        n = layers
    elif how == "alternate":
        n = math.ceil(layers / 2)
    elif how == "pattern":
        p = r.integer("sliding_window_pattern", default=pattern_default)
        n = layers - layers // p if p > 1 else layers
    elif how == "qwen":
        if not r.flag("use_sliding_window", default=False):
            return
        n = max(0, layers - r.integer("max_window_layers", default=layers, minimum=0))
    else:  # pragma: no cover - programming error
        raise ValueError(how)
    if n == 0:
        return
    if window >= max_context:
        d.notes.append(message("file.sliding_full", window=window))
        return
    d.fields["sliding_window"] = window
    d.fields["sliding_window_layers"] = n
    d.notes.append(message("file.sliding_window", window=window, layers_windowed=n, layers=layers))


def _dense_layers_note(d: Derived, dense: int, leading: bool) -> None:
    if dense and not leading:
        d.notes.append(message("file.dense_interleaved", dense_layers=dense))


def _standard(
    r: ConfigReader,
    *,
    tied_default: bool,
    qkv_bias: bool = False,
    attn_out_bias: bool = False,
    mlp_bias: bool = False,
    ffn_key: str = "intermediate_size",
    activation_default: str = "silu",
) -> Derived:
    """The Llama layout most decoder configs share: hidden_size, num_hidden_layers, num_attention_heads,
    num_key_value_heads (absent: MHA), head_dim (absent: hidden / heads), intermediate_size, vocab_size,
    max_position_embeddings, tie_word_embeddings, attention_bias, mlp_bias."""
    h = r.integer("hidden_size", spec_field="hidden_size")
    layers = r.integer("num_hidden_layers", spec_field="layers")
    heads = r.integer("num_attention_heads", spec_field="heads")
    kv = r.integer("num_key_value_heads", default=heads, spec_field="kv_heads")
    _check_kv(r, heads, kv, "num_attention_heads", "num_key_value_heads")
    d = Derived({})
    attention_bias = r.flag("attention_bias", default=qkv_bias)
    d.fields.update(
        layers=layers,
        hidden_size=h,
        heads=heads,
        kv_heads=kv,
        head_dim=_head_dim(r, h, heads, "head_dim"),
        attention=_attention_kind(heads, kv),
        ffn_size=r.integer(ffn_key, spec_field="ffn_size"),
        ffn_kind="gated",
        activation=r.text("hidden_act", "hidden_activation", default=activation_default) or activation_default,
        vocab_size=r.integer("vocab_size", spec_field="vocab_size"),
        tied_embeddings=r.flag("tie_word_embeddings", default=tied_default),
        qkv_bias=attention_bias or qkv_bias,
        attn_out_bias=attention_bias if r.has("attention_bias") else attn_out_bias,
        mlp_bias=r.flag("mlp_bias", default=mlp_bias),
        norm="rmsnorm",
    )
    d.fields["max_context"] = _context(r, d, "max_position_embeddings")
    return d


def _moe(
    d: Derived,
    *,
    experts: int,
    per_token: int,
    expert_ffn: int,
    dense_layers: int = 0,
    shared: int = 0,
    shared_ffn: int | None = None,
    shared_gate: bool = False,
    router_bias: bool = False,
) -> None:
    d.fields["moe"] = {
        "experts": experts,
        "experts_per_token": per_token,
        "expert_ffn_size": expert_ffn,
        "shared_experts": shared,
        "shared_expert_ffn_size": shared_ffn,
        "shared_expert_gate": shared_gate,
        "dense_layers": dense_layers,
        "router_bias": router_bias,
    }
    d.notes.append(message(
        "file.moe", experts=experts, experts_per_token=per_token, expert_ffn=expert_ffn, shared_experts=shared,
        shared_ffn=(shared_ffn or expert_ffn) if shared else None, dense_layers=dense_layers,
    ))


def _qwen_sparse_layers(r: ConfigReader, layers: int, experts: int) -> int:
    """Qwen2-MoE / Qwen3-MoE: layer i is sparse unless in ``mlp_only_layers`` or ``(i+1) % decoder_sparse_step``."""
    step = r.integer("decoder_sparse_step", default=1)
    only = set(r.int_list("mlp_only_layers"))
    if experts <= 0:
        return 0
    # layers i < layers with (i + 1) % step == 0, less those in mlp_only_layers (counted, not looped over)
    return layers // step - sum(1 for i in only if 0 <= i < layers and (i + 1) % step == 0)


# ----------------------------------------------------------------------------------------------- families


def _llama(r: ConfigReader) -> Derived:
    return _standard(r, tied_default=False)


def _mistral(r: ConfigReader) -> Derived:
    d = _standard(r, tied_default=False)
    _sliding(d, r, d.fields["layers"], d.fields["max_context"], "all")
    return d


def _mixtral(r: ConfigReader) -> Derived:
    d = _standard(r, tied_default=False)
    _moe(
        d,
        experts=r.integer("num_local_experts"),
        per_token=r.integer("num_experts_per_tok"),
        expert_ffn=d.fields["ffn_size"],
    )
    _sliding(d, r, d.fields["layers"], d.fields["max_context"], "all")
    return d


def _qwen2(r: ConfigReader) -> Derived:
    # Qwen2Attention: q/k/v carry biases, o_proj does not (Qwen2 has no attention_bias field).
    d = _standard(r, tied_default=False, qkv_bias=True)
    d.fields.update(qkv_bias=True, attn_out_bias=False)
    _sliding(d, r, d.fields["layers"], d.fields["max_context"], "qwen")
    return d


def _qwen2_moe(r: ConfigReader) -> Derived:
    d = _qwen2(r)
    layers = d.fields["layers"]
    experts = r.integer("num_experts")
    sparse = _qwen_sparse_layers(r, layers, experts)
    shared_ffn = r.integer("shared_expert_intermediate_size", default=0, minimum=0)
    _moe(
        d,
        experts=experts,
        per_token=r.integer("num_experts_per_tok"),
        expert_ffn=r.integer("moe_intermediate_size"),
        dense_layers=layers - sparse,
        shared=1 if shared_ffn else 0,
        shared_ffn=shared_ffn or None,
        shared_gate=bool(shared_ffn),  # Qwen2MoeSparseMoeBlock.shared_expert_gate: Linear(hidden, 1)
    )
    _dense_layers_note(d, layers - sparse, leading=False)
    return d


def _qwen3(r: ConfigReader) -> Derived:
    # Qwen3Config: head_dim defaults to 128; q_norm / k_norm RMSNorms over head_dim; attention_bias default False.
    r.defaults.setdefault("head_dim", 128)
    d = _standard(r, tied_default=False)
    d.fields["qk_norm"] = "head"
    _sliding(d, r, d.fields["layers"], d.fields["max_context"], "qwen")
    return d


def _qwen3_moe(r: ConfigReader) -> Derived:
    d = _qwen3(r)
    layers = d.fields["layers"]
    experts = r.integer("num_experts")
    sparse = _qwen_sparse_layers(r, layers, experts)
    _moe(
        d,
        experts=experts,
        per_token=r.integer("num_experts_per_tok"),
        expert_ffn=r.integer("moe_intermediate_size"),
        dense_layers=layers - sparse,
    )
    _dense_layers_note(d, layers - sparse, leading=False)
    return d


def _deepseek(r: ConfigReader) -> Derived:
    """DeepSeek-V2/V3 (and Kimi K2): MLA attention, DeepSeekMoE with shared experts and leading dense layers."""
    d = _standard(r, tied_default=False)
    heads = d.fields["heads"]
    d.fields.update(kv_heads=heads, attention="mla", head_dim=None, qkv_bias=False, attn_out_bias=False)
    d.fields["mla"] = {
        "q_lora_rank": r.integer("q_lora_rank", default=0, minimum=0),  # null: queries not compressed (V2-Lite)
        "kv_lora_rank": r.integer("kv_lora_rank"),
        "qk_nope_head_dim": r.integer("qk_nope_head_dim"),
        "qk_rope_head_dim": r.integer("qk_rope_head_dim"),
        "v_head_dim": r.integer("v_head_dim"),
    }
    if not d.fields["mla"]["q_lora_rank"]:
        d.notes.append(message("file.q_lora_null"))
    layers = d.fields["layers"]
    experts = r.integer("n_routed_experts", default=0, minimum=0)
    if experts:
        first_dense = r.integer("first_k_dense_replace", default=0, minimum=0)
        freq = r.integer("moe_layer_freq", default=1)
        # multiples of freq in [first_dense, layers), counted rather than looped over (layers is untrusted)
        sparse = max(0, (layers - 1) // freq - (first_dense - 1) // freq)
        shared = r.integer("n_shared_experts", default=0, minimum=0)
        expert_ffn = r.integer("moe_intermediate_size")
        # V3's noaux_tc routing adds a per-expert score-correction bias to the gate (e_score_correction_bias).
        router_bias = r.text("topk_method", default="greedy") == "noaux_tc"
        _moe(
            d,
            experts=experts,
            per_token=r.integer("num_experts_per_tok"),
            expert_ffn=expert_ffn,
            dense_layers=layers - sparse,
            shared=shared,
            shared_ffn=expert_ffn if shared else None,
            router_bias=router_bias,
        )
        _dense_layers_note(d, layers - sparse, leading=sparse == layers - first_dense)
    mtp = r.integer("num_nextn_predict_layers", default=0, minimum=0)
    if mtp:
        d.notes.append(message("file.mtp_layers", mtp_layers=mtp))
    return d


def _gemma(r: ConfigReader) -> Derived:
    # GemmaConfig: tie_word_embeddings True, head_dim explicit (256), GeGLU.
    d = _standard(r, tied_default=True, activation_default="gelu_pytorch_tanh")
    return d


def _gemma2(r: ConfigReader) -> Derived:
    d = _gemma(r)
    d.fields["extra_norms_per_layer"] = 2  # pre/post feed-forward norms beside input and post-attention norms
    _sliding(d, r, d.fields["layers"], d.fields["max_context"], "alternate")
    return d


def _gemma3_text(r: ConfigReader) -> Derived:
    r.defaults = {**_GEMMA3_TEXT_DEFAULTS, **r.defaults}
    d = _gemma(r)
    d.fields["extra_norms_per_layer"] = 2
    d.fields["qk_norm"] = "head"
    _sliding(d, r, d.fields["layers"], d.fields["max_context"], "pattern", pattern_default=6)
    return d


def _phi3(r: ConfigReader) -> Derived:
    # Phi3: fused qkv_proj and gate_up_proj, the same parameters as Llama's separate matrices.
    d = _standard(r, tied_default=False)
    _sliding(d, r, d.fields["layers"], d.fields["max_context"], "all")
    return d


def _phi(r: ConfigReader) -> Derived:
    # Phi-1.5 / Phi-2: parallel block with one LayerNorm, biases everywhere, plain GELU MLP, LM head with bias.
    d = _standard(r, tied_default=False, activation_default="gelu_new")
    d.fields.update(
        ffn_kind="plain", norm="layernorm", parallel_block=True,
        qkv_bias=True, attn_out_bias=True, mlp_bias=True, lm_head_bias=True,
    )
    if r.flag("qk_layernorm", default=False):
        d.notes.append(message("file.qk_layernorm"))
    return d


def _falcon(r: ConfigReader) -> Derived:
    """Falcon, in both formats: RefinedWebModel/RefinedWeb (n_head, n_layer, multi_query, n_head_kv) and
    transformers' ``falcon`` (num_attention_heads, num_kv_heads, new_decoder_architecture)."""
    mt = r.model_type
    h = r.integer("hidden_size", "n_embed", spec_field="hidden_size")
    layers = r.integer("num_hidden_layers", "n_layer", spec_field="layers")
    heads = r.integer("num_attention_heads", "n_head", spec_field="heads")
    new_arch = r.flag("new_decoder_architecture", default=mt == "refinedweb")
    if new_arch:
        kv = r.integer("num_kv_heads", "n_head_kv", default=heads, spec_field="kv_heads")
    elif r.flag("multi_query", default=True):
        kv = 1
    else:
        kv = heads
    _check_kv(r, heads, kv, "num_attention_heads", "num_kv_heads")
    bias = r.flag("bias", default=False)
    parallel = r.flag("parallel_attn", default=True)
    d = Derived({})
    alibi = r.flag("alibi", default=False)
    d.fields.update(
        layers=layers, hidden_size=h, heads=heads, kv_heads=kv,
        head_dim=_head_dim(r, h, heads, "head_dim"),
        attention=_attention_kind(heads, kv),
        ffn_size=r.integer("ffn_hidden_size", default=4 * h, spec_field="ffn_size"),
        ffn_kind="plain", activation=r.text("activation", default="gelu") or "gelu",
        vocab_size=r.integer("vocab_size", spec_field="vocab_size"),
        tied_embeddings=r.flag("tie_word_embeddings", default=True),
        norm="layernorm", qkv_bias=bias, attn_out_bias=bias, mlp_bias=bias,
        position_embedding="alibi" if alibi else "rope",
    )
    d.fields["max_context"] = _context(r, d, "max_position_embeddings")
    if new_arch:
        # ln_attn and ln_mlp (num_ln_in_parallel_attn = 2), both reading the block's input in parallel.
        n_ln = r.integer("num_ln_in_parallel_attn", default=2)
        d.fields.update(parallel_block=True, extra_norms_per_layer=n_ln - 1)
        d.notes.append(message("file.falcon_new_arch", kv_heads=kv, norms=n_ln))
    elif parallel:
        d.fields["parallel_block"] = True
        d.notes.append(message("file.falcon_parallel", kv_heads=kv))
    return d


def _gpt2(r: ConfigReader) -> Derived:
    """GPT-2 (and GPTBigCode, its multi-query descendant): learned positions, fused c_attn with biases, n_inner
    null = 4 x n_embd, LayerNorm, tied LM head."""
    h = r.integer("n_embd", "hidden_size", spec_field="hidden_size")
    layers = r.integer("n_layer", "num_hidden_layers", spec_field="layers")
    heads = r.integer("n_head", "num_attention_heads", spec_field="heads")
    kv = 1 if r.flag("multi_query", default=False) else heads
    positions = r.integer("n_positions", "max_position_embeddings", spec_field="learned_positions")
    d = Derived({})
    d.fields.update(
        layers=layers, hidden_size=h, heads=heads, kv_heads=kv, head_dim=_head_dim(r, h, heads),
        attention=_attention_kind(heads, kv),
        ffn_size=r.integer("n_inner", default=4 * h, spec_field="ffn_size"), ffn_kind="plain",
        activation=r.text("activation_function", default="gelu_new") or "gelu_new",
        vocab_size=r.integer("vocab_size", spec_field="vocab_size"),
        tied_embeddings=r.flag("tie_word_embeddings", default=True),
        max_context=positions, norm="layernorm",
        qkv_bias=True, attn_out_bias=True, mlp_bias=True,
        position_embedding="learned", learned_positions=positions,
    )
    if r.opt_integer("n_inner") is None:
        d.notes.append(message("file.n_inner_null", hidden=h, ffn=4 * h))
    return d


def _gptj(r: ConfigReader) -> Derived:
    # GPT-J: q/k/v/out without bias, fc_in/fc_out with bias, one LayerNorm (parallel block), LM head with bias.
    h = r.integer("n_embd", spec_field="hidden_size")
    heads = r.integer("n_head", spec_field="heads")
    d = Derived({})
    d.fields.update(
        layers=r.integer("n_layer", spec_field="layers"), hidden_size=h, heads=heads, kv_heads=heads,
        attention="mha", ffn_size=r.integer("n_inner", default=4 * h, spec_field="ffn_size"), ffn_kind="plain",
        activation=r.text("activation_function", default="gelu_new") or "gelu_new",
        vocab_size=r.integer("vocab_size", spec_field="vocab_size"),
        tied_embeddings=r.flag("tie_word_embeddings", default=False),
        max_context=r.integer("n_positions", default=2048), norm="layernorm",
        mlp_bias=True, lm_head_bias=True, parallel_block=True,
    )
    return d


def _gpt_neox(r: ConfigReader) -> Derived:
    # GPT-NeoX / Pythia: biases everywhere, two LayerNorms per layer, parallel residual (default), rotary.
    d = _standard(r, tied_default=False, activation_default="gelu")
    bias = r.flag("attention_bias", default=True)
    d.fields.update(ffn_kind="plain", norm="layernorm", qkv_bias=bias, attn_out_bias=bias, mlp_bias=True)
    if r.flag("use_parallel_residual", default=True):
        # attention and MLP both read the block input, each through its own LayerNorm
        d.fields.update(parallel_block=True, extra_norms_per_layer=1)
    return d


def _opt(r: ConfigReader) -> Derived:
    """OPT: learned positions with an offset of 2, ffn_dim, biases everywhere, LayerNorm, tied LM head;
    word_embed_proj_dim != hidden_size (OPT-350m) adds project_in / project_out."""
    d = Derived({})
    h = r.integer("hidden_size", spec_field="hidden_size")
    heads = r.integer("num_attention_heads", spec_field="heads")
    positions = r.integer("max_position_embeddings", spec_field="max_context")
    vocab = r.integer("vocab_size", spec_field="vocab_size")
    bias = r.flag("enable_bias", default=True)
    d.fields.update(
        layers=r.integer("num_hidden_layers", spec_field="layers"), hidden_size=h, heads=heads, kv_heads=heads,
        head_dim=_head_dim(r, h, heads), attention="mha",
        ffn_size=r.integer("ffn_dim", spec_field="ffn_size"), ffn_kind="plain",
        activation=r.text("activation_function", default="relu") or "relu",
        vocab_size=vocab, tied_embeddings=r.flag("tie_word_embeddings", default=True),
        max_context=positions, norm="layernorm", qkv_bias=bias, attn_out_bias=bias, mlp_bias=bias,
        position_embedding="learned", learned_positions=positions + 2,
    )
    d.notes.append(message("file.opt_positions", positions=positions, offset=2))
    proj = r.integer("word_embed_proj_dim", default=h)
    if proj != h:
        # embedding table is vocab x proj (not vocab x hidden), plus project_in and project_out (no bias)
        d.extra_params += vocab * (proj - h) + 2 * proj * h
        d.notes.append(message("file.opt_projections", proj=proj, hidden=h))
    if not r.flag("do_layer_norm_before", default=True) or r.flag("_remove_final_layer_norm", default=False):
        d.extra_params -= 2 * h
        d.notes.append(message("file.opt_post_layernorm"))
    return d


def _bloom(r: ConfigReader) -> Derived:
    # BLOOM: ALiBi, LayerNorm after the embedding, biases everywhere, 4h GELU MLP, tied LM head.
    h = r.integer("hidden_size", "n_embed", spec_field="hidden_size")
    heads = r.integer("n_head", "num_attention_heads", spec_field="heads")
    d = Derived({})
    d.fields.update(
        layers=r.integer("n_layer", "num_hidden_layers", spec_field="layers"), hidden_size=h, heads=heads,
        kv_heads=heads, head_dim=_head_dim(r, h, heads), attention="mha", ffn_size=4 * h, ffn_kind="plain",
        activation="gelu", vocab_size=r.integer("vocab_size", spec_field="vocab_size"),
        tied_embeddings=r.flag("tie_word_embeddings", default=True), norm="layernorm",
        qkv_bias=True, attn_out_bias=True, mlp_bias=True, position_embedding="alibi", embedding_norm=True,
    )
    d.fields["max_context"] = _context(r, d, "seq_length", "max_position_embeddings")
    return d


def _mpt(r: ConfigReader) -> Derived:
    # MPT: d_model, n_heads, n_layers, expansion_ratio; no_bias drops every bias (LayerNorms too); ALiBi.
    h = r.integer("d_model", spec_field="hidden_size")
    heads = r.integer("n_heads", spec_field="heads")
    kv = r.integer("attn_config.kv_n_heads", default=heads, spec_field="kv_heads")
    _check_kv(r, heads, kv, "n_heads", "attn_config.kv_n_heads")
    no_bias = r.flag("no_bias", default=True)
    alibi = r.flag("attn_config.alibi", default=False)
    ctx = r.integer("max_seq_len", spec_field="max_context")
    ffn = r.opt_integer("ffn_config.ffn_hidden_size")
    if ffn is None:
        ratio = r.raw("expansion_ratio", default=4)[1]
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1e6:
            raise fail(r.where, "expansion_ratio", f"expected a positive number, got {short_repr(ratio)}")
        ffn = int(ratio * h)
    d = Derived({})
    learned = not alibi and r.flag("learned_pos_emb", default=True)
    d.fields.update(
        layers=r.integer("n_layers", spec_field="layers"), hidden_size=h, heads=heads, kv_heads=kv,
        head_dim=_head_dim(r, h, heads), attention=_attention_kind(heads, kv), ffn_size=ffn, ffn_kind="plain",
        activation="gelu", vocab_size=r.integer("vocab_size", spec_field="vocab_size"), tied_embeddings=True,
        max_context=ctx, norm="layernorm_nobias" if no_bias else "layernorm",
        qkv_bias=not no_bias, attn_out_bias=not no_bias, mlp_bias=not no_bias,
        position_embedding="alibi" if alibi else "learned" if learned else "rope",
        learned_positions=ctx if learned else 0,
    )
    return d


def _chatglm(r: ConfigReader) -> Derived:
    """ChatGLM2/3 and GLM-4 (THUDM remote code): num_layers, padded_vocab_size, ffn_hidden_size (SwiGLU: the
    up projection is 2 x ffn), multi_query_group_num KV groups, kv_channels = head_dim, add_qkv_bias."""
    h = r.integer("hidden_size", spec_field="hidden_size")
    heads = r.integer("num_attention_heads", spec_field="heads")
    kv = r.integer("multi_query_group_num", default=heads, spec_field="kv_heads") if r.flag(
        "multi_query_attention", default=False) else heads
    _check_kv(r, heads, kv, "num_attention_heads", "multi_query_group_num")
    linear_bias = r.flag("add_bias_linear", default=False)
    d = Derived({})
    d.fields.update(
        layers=r.integer("num_layers", "num_hidden_layers", spec_field="layers"), hidden_size=h, heads=heads,
        kv_heads=kv, head_dim=_head_dim(r, h, heads, "kv_channels"), attention=_attention_kind(heads, kv),
        ffn_size=r.integer("ffn_hidden_size", spec_field="ffn_size"), ffn_kind="gated", activation="swiglu",
        vocab_size=r.integer("padded_vocab_size", "vocab_size", spec_field="vocab_size"),
        tied_embeddings=r.flag("tie_word_embeddings", default=False),
        norm="rmsnorm" if r.flag("rmsnorm", default=True) else "layernorm",
        qkv_bias=r.flag("add_qkv_bias", default=False) or linear_bias, attn_out_bias=linear_bias,
        mlp_bias=linear_bias,
    )
    d.fields["max_context"] = _context(r, d, "seq_length", "max_position_embeddings")
    if not r.flag("post_layer_norm", default=True):
        d.extra_params -= h if d.fields["norm"] == "rmsnorm" else 2 * h
        d.notes.append(message("file.chatglm_no_final_norm"))
    return d


def _glm(r: ConfigReader) -> Derived:
    # transformers Glm / Glm4: q/k/v biases (attention_bias, default True), o_proj without; Glm4 adds two post-norms.
    d = _standard(r, tied_default=False)
    bias = r.flag("attention_bias", default=True)
    d.fields.update(qkv_bias=bias, attn_out_bias=False)
    if r.model_type == "glm4":
        d.fields["extra_norms_per_layer"] = 2
    return d


def _baichuan(r: ConfigReader) -> Derived:
    # Baichuan 1/2: Llama shapes with a fused W_pack; the 13B models use ALiBi and give only model_max_length.
    h = r.integer("hidden_size", spec_field="hidden_size")
    layers = r.integer("num_hidden_layers", spec_field="layers")
    heads = r.integer("num_attention_heads", spec_field="heads")
    d = Derived({})
    alibi = not r.has("max_position_embeddings")
    d.fields.update(
        layers=layers, hidden_size=h, heads=heads, kv_heads=heads, head_dim=_head_dim(r, h, heads),
        attention="mha", ffn_size=r.integer("intermediate_size", spec_field="ffn_size"),
        activation=r.text("hidden_act", default="silu") or "silu",
        vocab_size=r.integer("vocab_size", spec_field="vocab_size"),
        tied_embeddings=r.flag("tie_word_embeddings", default=False),
        position_embedding="alibi" if alibi else "rope",
    )
    d.fields["max_context"] = _context(r, d, "max_position_embeddings", "model_max_length", default=4096)
    if alibi:
        d.notes.append(message("file.baichuan_alibi"))
    return d


def _internlm(r: ConfigReader) -> Derived:
    # InternLM2: ``bias`` on wqkv and wo (False in released models); InternLM 1: same flag, default True.
    d = _standard(r, tied_default=False)
    bias = r.flag("bias", default=r.model_type == "internlm")
    d.fields.update(qkv_bias=bias, attn_out_bias=bias)
    return d


def _starcoder2(r: ConfigReader) -> Derived:
    # StarCoder2: use_bias on every linear, plain GELU MLP (c_fc, c_proj), LayerNorm with bias, sliding window.
    d = _standard(r, tied_default=True, activation_default="gelu_pytorch_tanh")
    bias = r.flag("use_bias", default=True)
    d.fields.update(ffn_kind="plain", norm="layernorm", qkv_bias=bias, attn_out_bias=bias, mlp_bias=bias)
    _sliding(d, r, d.fields["layers"], d.fields["max_context"], "all")
    return d


def _olmo(r: ConfigReader) -> Derived:
    # OLMo 1 (hf): LayerNorm without any learnable parameter.
    d = _standard(r, tied_default=False)
    d.fields["norm"] = "layernorm_nobias"
    layers, h = d.fields["layers"], d.fields["hidden_size"]
    d.extra_params -= (2 * layers + 1) * h
    d.notes.append(message("file.olmo_norms"))
    return d


def _olmo2(r: ConfigReader) -> Derived:
    # OLMo 2: post-norms (after attention and after MLP), RMSNorm over the full q and k projections.
    d = _standard(r, tied_default=False)
    d.fields["qk_norm"] = "full"
    return d


def _olmoe(r: ConfigReader) -> Derived:
    d = _olmo2(r)
    d.fields["ffn_size"] = r.integer("intermediate_size")
    _moe(d, experts=r.integer("num_experts"), per_token=r.integer("num_experts_per_tok"), expert_ffn=d.fields["ffn_size"])
    return d


def _cohere(r: ConfigReader) -> Derived:
    # Command-R: one LayerNorm without bias per layer (parallel block), tied embeddings; use_qk_norm: per-head
    # LayerNorms over (heads, head_dim) on q and (kv_heads, head_dim) on k, the same count as a full-width norm.
    d = _standard(r, tied_default=True)
    d.fields.update(norm="layernorm_nobias", parallel_block=True)
    if r.flag("use_qk_norm", default=False):
        d.fields["qk_norm"] = "full"
    if r.model_type == "cohere2":
        _sliding(d, r, d.fields["layers"], d.fields["max_context"], "pattern", pattern_default=4)
    return d


def _dbrx(r: ConfigReader) -> Derived:
    """DBRX: d_model, n_heads, n_layers, attn_config.kv_n_heads, ffn_config.{ffn_hidden_size, moe_num_experts,
    moe_top_k}; GLU experts (w1, v1, w2), LayerNorm without bias, untied LM head."""
    h = r.integer("d_model", spec_field="hidden_size")
    heads = r.integer("n_heads", spec_field="heads")
    kv = r.integer("attn_config.kv_n_heads", default=heads, spec_field="kv_heads")
    _check_kv(r, heads, kv, "n_heads", "attn_config.kv_n_heads")
    ffn = r.integer("ffn_config.ffn_hidden_size", spec_field="ffn_size")
    d = Derived({})
    d.fields.update(
        layers=r.integer("n_layers", spec_field="layers"), hidden_size=h, heads=heads, kv_heads=kv,
        head_dim=_head_dim(r, h, heads), attention=_attention_kind(heads, kv), ffn_size=ffn, ffn_kind="gated",
        activation="silu", vocab_size=r.integer("vocab_size", spec_field="vocab_size"),
        tied_embeddings=r.flag("tie_word_embeddings", default=False),
        max_context=r.integer("max_seq_len", spec_field="max_context"), norm="layernorm_nobias",
    )
    _moe(d, experts=r.integer("ffn_config.moe_num_experts"), per_token=r.integer("ffn_config.moe_top_k"), expert_ffn=ffn)
    if r.has("attn_config.clip_qkv"):
        d.notes.append(message("file.dbrx_clip_qkv"))
    return d


#: The config keys the generic reader needs (``_standard``'s Llama layout).
_GENERIC_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")


def _generic(r: ConfigReader) -> Derived:
    """Best effort for a model_type llmsizer does not know: the Llama layout, MoE if the usual keys are there."""
    d = _standard(r, tied_default=False)
    d.notes.insert(0, message("file.unknown_model_type", model_type=r.model_type, keys=_GENERIC_KEYS))
    if not r.has("tie_word_embeddings"):
        d.notes.append(message("file.untied_assumed"))
    experts = r.opt_integer("num_local_experts", "num_experts", "n_routed_experts")
    if experts:
        expert_ffn = r.integer("moe_intermediate_size", "intermediate_size")
        shared = r.integer("n_shared_experts", default=0, minimum=0)
        _moe(
            d, experts=experts, per_token=r.integer("num_experts_per_tok"), expert_ffn=expert_ffn,
            shared=shared, shared_ffn=expert_ffn if shared else None,
        )
    if r.has("sliding_window"):
        _sliding(d, r, d.fields["layers"], d.fields["max_context"], "all")
    return d


READERS: dict[str, Callable[[ConfigReader], Derived]] = {
    "llama": _llama,
    "mistral": _mistral,
    "mixtral": _mixtral,
    "qwen2": _qwen2,
    "qwen2_moe": _qwen2_moe,
    "qwen3": _qwen3,
    "qwen3_moe": _qwen3_moe,
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    "kimi_k2": _deepseek,
    "gemma": _gemma,
    "gemma2": _gemma2,
    "gemma3_text": _gemma3_text,
    "phi3": _phi3,
    "phi": _phi,
    "falcon": _falcon,
    "refinedwebmodel": _falcon,
    "refinedweb": _falcon,
    "gpt2": _gpt2,
    "gpt_bigcode": _gpt2,
    "gptj": _gptj,
    "gpt_neox": _gpt_neox,
    "opt": _opt,
    "bloom": _bloom,
    "mpt": _mpt,
    "chatglm": _chatglm,
    "glm": _glm,
    "glm4": _glm,
    "baichuan": _baichuan,
    "internlm": _internlm,
    "internlm2": _internlm,
    "starcoder2": _starcoder2,
    "olmo": _olmo,
    "olmo2": _olmo2,
    "olmoe": _olmoe,
    "cohere": _cohere,
    "cohere2": _cohere,
    "dbrx": _dbrx,
}

#: model_type spellings that are another family's old name.
CANONICAL_FAMILY = {"refinedwebmodel": "falcon", "refinedweb": "falcon", "kimi_k2": "deepseek_v3"}

#: ``architectures[0]`` -> model_type, for old configs that give no model_type.
_ARCHITECTURE_TYPES = {
    "LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral", "MixtralForCausalLM": "mixtral",
    "Qwen2ForCausalLM": "qwen2", "GPT2LMHeadModel": "gpt2", "GPTNeoXForCausalLM": "gpt_neox",
    "OPTForCausalLM": "opt", "BloomForCausalLM": "bloom", "FalconForCausalLM": "falcon",
    "RWForCausalLM": "RefinedWebModel", "GPTJForCausalLM": "gptj", "MPTForCausalLM": "mpt",
    "BaichuanForCausalLM": "baichuan", "InternLM2ForCausalLM": "internlm2", "ChatGLMModel": "chatglm",
}

#: Wrappers whose language model sits under text_config, and the text model_type when the nested dict omits it.
_WRAPPED_TEXT_TYPES = {"gemma3": "gemma3_text", "mistral3": "mistral", "llava": "llama", "llava_next": "llama"}


def derive(data: Mapping[str, Any], where: str) -> tuple[Derived, str]:
    """Pick the family reader for ``data`` (a parsed config.json) and run it. Returns (derived, model_type)."""
    raw_type = data.get("model_type")
    if raw_type is not None:
        check_text(where, "model_type", raw_type, MAX_NAME_CHARS)  # printed, and the family's name
    model_type = (raw_type or "").strip()
    notes: list[Message] = []
    archs = data.get("architectures")
    if (not model_type and isinstance(archs, list) and archs and isinstance(archs[0], str)
            and archs[0] in _ARCHITECTURE_TYPES):
        model_type = _ARCHITECTURE_TYPES[archs[0]]
        notes.append(message("file.model_type_from_architectures", model_type=model_type, architecture=archs[0]))
    key = model_type.lower()
    if key not in READERS:
        nested = next((k for k in _NESTED_TEXT_KEYS if isinstance(data.get(k), Mapping)), None)
        if nested is not None and (key in _WRAPPED_TEXT_TYPES or "hidden_size" not in data):
            inner = data[nested]
            inner_type = inner.get("model_type") or _WRAPPED_TEXT_TYPES.get(key, "")
            notes.append(message("file.nested_text", key=nested, inner_type=inner_type, model_type=model_type))
            d, inner_type = derive(inner, f"{where} ({nested})")
            d.notes[:0] = notes
            outer_dtype = data.get("torch_dtype") or data.get("dtype")
            if d.torch_dtype is None and isinstance(outer_dtype, str):
                d.torch_dtype = outer_dtype
            return d, inner_type
    if not model_type:
        notes.append(message("file.no_model_type"))
    reader = ConfigReader(data, where, model_type or "unknown")
    d = READERS.get(key, _generic)(reader)
    if reader.defaulted:
        d.notes.append(message("file.family_defaults", model_type=model_type, defaults=tuple(reader.defaulted)))
    d.notes[:0] = notes
    d.origin.update(reader.origin)
    dtype = data.get("torch_dtype") or data.get("dtype")
    if isinstance(dtype, str):
        d.torch_dtype = dtype
    return d, model_type or "unknown"
