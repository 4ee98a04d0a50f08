"""English words of the notes the model-file readers make (``catalog/modelfiles``, ``catalog/hub.py``); same
conventions as ``en.MESSAGES``: each entry is a function of (params, name, fmt)."""

# ruff: noqa: E501 - one entry per line reads best


def human_count(x: float) -> str:
    """``7615616512`` -> ``7.62B``: the short count the readers' notes give beside the exact one."""
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}" if abs(x) / div < 10 else f"{x / div:.4g}{suffix}"
    return str(int(x))


def shares(p, sep=", "):
    """``BF16 97%, F32 3%``: each storage type of ``p['dtypes']`` ((name, parameters) pairs) as a share of ``p['params']``."""
    return sep.join(f"{k} {v / max(p['params'], 1):.0%}" for k, v in p["dtypes"])


def pairs(p, key="defaults", sep=", "):
    """``head_dim=256, vocab_size=262208``: the (key, value) pairs of ``p[key]``."""
    return sep.join(f"{k}={v}" for k, v in p[key])


def _moe(p):
    text = f"mixture of experts: {p['experts']} experts, {p['experts_per_token']} per token, expert FFN {p['expert_ffn']}"
    if p["shared_experts"]:
        text += f", {p['shared_experts']} shared expert(s) of FFN {p['shared_ffn']}"
    if p["dense_layers"]:
        text += f", {p['dense_layers']} dense layers"
    return text


MESSAGES: dict = {
    # what was read (catalog/modelfiles/__init__.py, catalog/hub.py)
    "file.architecture_read": lambda p, n, f: f"architecture read from {p['where']} (model_type '{p['model_type']}')",
    "file.headers_read": lambda p, n, f: f"read the headers of {p['files']} safetensors file(s): {p['weight_bytes']:,} bytes of tensors, {shares(p)}",
    "file.quant_config": lambda p, n, f: f"quantization_config: {p['method']} -> {p['quant']}",
    "file.weights_on_disk": lambda p, n, f: f"weights on disk: {p['weight_bytes']:,} bytes (from the safetensors index)",
    "file.shards_missing": lambda p, n, f: f"{p['missing']} shard(s) listed in {p['index']} are not present: no exact parameter count",
    "file.no_config_inferred": lambda p, n, f: (
        "warning: no config.json beside the weights: the architecture was inferred from tensor names and shapes "
        f"(head_dim {p['head_dim']} assumed; context length unknown); add config.json for exact figures"),
    "file.hub_fetched": lambda p, n, f: f"fetched {p['repo_id']}/config.json from {p['endpoint']} (revision {p['revision']})",
    "file.hub_headers_failed": lambda p, n, f: f"warning: safetensors headers not read ({p['error']}); the count is computed from the config",
    "file.hub_no_safetensors": lambda p, n, f: "no safetensors weights in the repo: the count is computed from the config",
    # parameter counts (_common.finish_spec)
    "file.params_exact": lambda p, n, f: (
        f"parameters: {p['exact_params']:,} ({human_count(p['exact_params'])}), exact, counted from the tensor headers; "
        f"the architecture gives {p['computed_params']:,} ({p['diff']:+.2%})"),
    "file.params_disagree": lambda p, n, f: (
        f"warning: the tensor headers and the architecture disagree by more than {p['threshold']:.0%} (a vision tower, "
        "extra prediction heads or buffers in the checkpoint?); memory is sized from the headers"),
    "file.params_computed": lambda p, n, f: (
        f"parameters: {p['computed_params']:,} ({human_count(p['computed_params'])}), computed from the architecture "
        "(no tensor header was read)"),
    "file.active_params": lambda p, n, f: f"active parameters per token: {p['active_params']:,} ({human_count(p['active_params'])}), computed from the architecture",
    # safetensors headers (safetensors_header.summarize)
    "file.quant_aux_skipped": lambda p, n, f: f"quantization scales / zero points ({p['values']:,} values) are not counted as parameters",
    "file.buffers_skipped": lambda p, n, f: f"saved buffers (causal masks, rotary tables: {p['values']:,} values) are not parameters",
    "file.packed_bits_assumed": lambda p, n, f: f"packed int32 weights with no bit width in a config: assumed {p['bits']}-bit",
    # GGUF (gguf_file.py)
    "file.gguf_arch": lambda p, n, f: f"GGUF architecture '{p['arch']}'" + (f", {p['files']} split files" if p["files"] > 1 else ""),
    "file.gguf_no_context": lambda p, n, f: f"no context_length in the GGUF metadata: assumed {p['tokens']} tokens",
    "file.gguf_moe": lambda p, n, f: (
        f"mixture of experts: {p['experts']} experts, {p['experts_per_token']} per token"
        + (f", {p['dense_layers']} dense layers" if p["dense_layers"] else "")),
    "file.storage_types": lambda p, n, f: f"storage types: {shares(p)}",
    "file.gguf_quantized": lambda p, n, f: f"quantized GGUF ({p['quant']}): {p['bits']:.2f} bits per parameter on average",
    # config.json: which reader, and what it assumed (hfconfig.derive)
    "file.model_type_from_architectures": lambda p, n, f: f"no model_type in the config: read as '{p['model_type']}' from architectures ({p['architecture']})",
    "file.nested_text": lambda p, n, f: (
        f"read the language model from {p['key']} ({p['inner_type'] or 'unknown type'}); "
        f"the rest of the '{p['model_type']}' model (vision tower, projector) is not in the architecture count"),
    "file.no_model_type": lambda p, n, f: "warning: no model_type in the config; read it as a Llama-style decoder",
    "file.family_defaults": lambda p, n, f: f"fields not in the config, taken from the {p['model_type']} config defaults: {pairs(p)}",
    "file.unknown_model_type": lambda p, n, f: (
        f"warning: model_type '{p['model_type']}' is not one llmsizer knows; read it as a Llama-style decoder "
        f"({', '.join(p['keys'])}): check the count"),
    "file.untied_assumed": lambda p, n, f: "tie_word_embeddings not given: assumed a separate LM head",
    "file.context_assumed": lambda p, n, f: f"context length: no {p['key']} in the config; assumed {p['tokens']} tokens",
    # config.json: attention and MoE (shared by the family readers)
    "file.sliding_window": lambda p, n, f: f"sliding-window attention ({p['window']} tokens) on {p['layers_windowed']} of {p['layers']} layers",
    "file.sliding_full": lambda p, n, f: f"sliding window of {p['window']} tokens is no shorter than the context: treated as full attention",
    "file.moe": lambda p, n, f: _moe(p),
    "file.dense_interleaved": lambda p, n, f: f"{p['dense_layers']} dense (non-MoE) layers are interleaved, not leading; the counts are the same",
    # config.json: one family each
    "file.q_lora_null": lambda p, n, f: "q_lora_rank is null: queries are not low-rank compressed (as in DeepSeek-V2-Lite)",
    "file.mtp_layers": lambda p, n, f: (
        f"{p['mtp_layers']} multi-token-prediction layer(s) ship in the checkpoint but are not part of the model proper; "
        "they are not counted from the config (safetensors headers include them)"),
    "file.qk_layernorm": lambda p, n, f: "qk_layernorm: per-head LayerNorms on q and k are not counted (a few thousand parameters)",
    "file.falcon_new_arch": lambda p, n, f: f"Falcon new decoder architecture: {p['kv_heads']} KV heads, {p['norms']} parallel LayerNorm(s) per layer",
    "file.falcon_parallel": lambda p, n, f: f"Falcon (7B-style): {'multi-query' if p['kv_heads'] == 1 else 'multi-head'} attention, parallel block",
    "file.n_inner_null": lambda p, n, f: f"n_inner is null: feed-forward width 4 x {p['hidden']} = {p['ffn']}",
    "file.opt_positions": lambda p, n, f: f"OPT learned positions: {p['positions']} + {p['offset']} (OPTLearnedPositionalEmbedding offset)",
    "file.opt_projections": lambda p, n, f: f"word_embed_proj_dim {p['proj']} != hidden_size {p['hidden']}: embeddings of width {p['proj']} plus projections",
    "file.opt_post_layernorm": lambda p, n, f: "post-LayerNorm OPT (do_layer_norm_before false): no final LayerNorm",
    "file.chatglm_no_final_norm": lambda p, n, f: "post_layer_norm false: no final norm",
    "file.baichuan_alibi": lambda p, n, f: "Baichuan without max_position_embeddings: the 13B (ALiBi) variant",
    "file.olmo_norms": lambda p, n, f: "OLMo 1 LayerNorms have no learnable parameters: their gains are taken out of the count",
    "file.dbrx_clip_qkv": lambda p, n, f: "clip_qkv clamps activations only; it has no parameters",
}
