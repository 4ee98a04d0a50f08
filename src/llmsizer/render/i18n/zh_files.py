"""Chinese words of the model-file readers' notes (see ``en_files.py``)."""

# ruff: noqa: E501 - one entry per line reads best

from llmsizer.render.i18n.en_files import human_count, pairs, shares


def _moe(p):
    text = f"混合专家（MoE）：{p['experts']} 个专家，每个 token 激活 {p['experts_per_token']} 个，专家 FFN 维度 {p['expert_ffn']}"
    if p["shared_experts"]:
        text += f"，{p['shared_experts']} 个共享专家（FFN 维度 {p['shared_ffn']}）"
    if p["dense_layers"]:
        text += f"，{p['dense_layers']} 个稠密层"
    return text


MESSAGES: dict = {
    # 读取了什么（catalog/modelfiles/__init__.py、catalog/hub.py）
    "file.architecture_read": lambda p, n, f: f"架构读取自 {p['where']}（model_type '{p['model_type']}'）",
    "file.headers_read": lambda p, n, f: f"已读取 {p['files']} 个 safetensors 文件的文件头：张量共 {p['weight_bytes']:,} 字节，其中 {shares(p, '、')}",
    "file.quant_config": lambda p, n, f: f"量化配置 quantization_config：{p['method']} -> {p['quant']}",
    "file.weights_on_disk": lambda p, n, f: f"磁盘上的权重：{p['weight_bytes']:,} 字节（来自 safetensors 索引）",
    "file.shards_missing": lambda p, n, f: f"{p['index']} 中列出的 {p['missing']} 个分片文件不存在：无法得到精确的参数量",
    "file.no_config_inferred": lambda p, n, f: (
        "警告：权重旁没有 config.json：架构是根据张量名称和形状推断的"
        f"（假定 head_dim 为 {p['head_dim']}；上下文长度未知）；补上 config.json 可得到精确数据"),
    "file.hub_fetched": lambda p, n, f: f"已从 {p['endpoint']} 获取 {p['repo_id']}/config.json（修订版本 {p['revision']}）",
    "file.hub_headers_failed": lambda p, n, f: f"警告：未能读取 safetensors 文件头（{p['error']}）；参数量按配置计算",
    "file.hub_no_safetensors": lambda p, n, f: "仓库中没有 safetensors 权重：参数量按配置计算",
    # 参数量（_common.finish_spec）
    "file.params_exact": lambda p, n, f: (
        f"参数量：{p['exact_params']:,}（{human_count(p['exact_params'])}），精确值，由张量文件头统计；"
        f"按架构计算为 {p['computed_params']:,}（{p['diff']:+.2%}）"),
    "file.params_disagree": lambda p, n, f: (
        f"警告：张量文件头与架构算出的参数量相差超过 {p['threshold']:.0%}（检查点中可能含有视觉塔、额外的预测头或缓冲区？）；"
        "显存按文件头的数据估算"),
    "file.params_computed": lambda p, n, f: (
        f"参数量：{p['computed_params']:,}（{human_count(p['computed_params'])}），由架构计算（未读取张量文件头）"),
    "file.active_params": lambda p, n, f: f"每个 token 的激活参数量：{p['active_params']:,}（{human_count(p['active_params'])}），由架构计算",
    # safetensors 文件头（safetensors_header.summarize）
    "file.quant_aux_skipped": lambda p, n, f: f"量化缩放因子 / 零点（{p['values']:,} 个数值）不计入参数量",
    "file.buffers_skipped": lambda p, n, f: f"检查点中保存的缓冲区（因果掩码、旋转位置编码表：{p['values']:,} 个数值）不是参数",
    "file.packed_bits_assumed": lambda p, n, f: f"打包在 int32 中的权重，配置中没有给出位宽：假定为 {p['bits']} 比特",
    # GGUF（gguf_file.py）
    "file.gguf_arch": lambda p, n, f: f"GGUF 架构 '{p['arch']}'" + (f"，共 {p['files']} 个分卷文件" if p["files"] > 1 else ""),
    "file.gguf_no_context": lambda p, n, f: f"GGUF 元数据中没有 context_length：假定为 {p['tokens']} token",
    "file.gguf_moe": lambda p, n, f: (
        f"混合专家（MoE）：{p['experts']} 个专家，每个 token 激活 {p['experts_per_token']} 个"
        + (f"，{p['dense_layers']} 个稠密层" if p["dense_layers"] else "")),
    "file.storage_types": lambda p, n, f: f"存储类型：{shares(p, '、')}",
    "file.gguf_quantized": lambda p, n, f: f"量化的 GGUF（{p['quant']}）：平均每个参数 {p['bits']:.2f} 比特",
    # config.json：用哪个读取器，作了哪些假设（hfconfig.derive）
    "file.model_type_from_architectures": lambda p, n, f: f"配置中没有 model_type：根据 architectures（{p['architecture']}）按 '{p['model_type']}' 读取",
    "file.nested_text": lambda p, n, f: (
        f"语言模型读取自 {p['key']}（{p['inner_type'] or '类型未知'}）；"
        f"'{p['model_type']}' 模型的其余部分（视觉塔、投影层）不计入架构参数量"),
    "file.no_model_type": lambda p, n, f: "警告：配置中没有 model_type；按 Llama 式解码器读取",
    "file.family_defaults": lambda p, n, f: f"以下字段配置中没有，取自 {p['model_type']} 配置类的默认值：{pairs(p, sep='、')}",
    "file.unknown_model_type": lambda p, n, f: (
        f"警告：llmsizer 不认识 model_type '{p['model_type']}'；按 Llama 式解码器读取"
        f"（{'、'.join(p['keys'])}）：请核对参数量"),
    "file.untied_assumed": lambda p, n, f: "未给出 tie_word_embeddings：假定 LM 头与词嵌入不共享权重",
    "file.context_assumed": lambda p, n, f: f"上下文长度：配置中没有 {p['key']}；假定为 {p['tokens']} token",
    # config.json：注意力与 MoE（各模型族共用）
    "file.sliding_window": lambda p, n, f: f"滑动窗口注意力（{p['window']} token），作用于 {p['layers']} 层中的 {p['layers_windowed']} 层",
    "file.sliding_full": lambda p, n, f: f"滑动窗口 {p['window']} token 不短于上下文长度：按全注意力处理",
    "file.moe": lambda p, n, f: _moe(p),
    "file.dense_interleaved": lambda p, n, f: f"{p['dense_layers']} 个稠密（非 MoE）层交错分布，而非集中在最前面；参数量不受影响",
    # config.json：各模型族特有
    "file.q_lora_null": lambda p, n, f: "q_lora_rank 为 null：查询未做低秩压缩（与 DeepSeek-V2-Lite 相同）",
    "file.mtp_layers": lambda p, n, f: (
        f"检查点中带有 {p['mtp_layers']} 个多 token 预测（MTP）层，但它们不属于模型本体；"
        "按配置计算时不计入（safetensors 文件头的统计包含它们）"),
    "file.qk_layernorm": lambda p, n, f: "qk_layernorm：q 和 k 上的逐头 LayerNorm 未计入（只有几千个参数）",
    "file.falcon_new_arch": lambda p, n, f: f"Falcon 新解码器架构：{p['kv_heads']} 个 KV 头，每层 {p['norms']} 个并行 LayerNorm",
    "file.falcon_parallel": lambda p, n, f: f"Falcon（7B 式）：{'多查询' if p['kv_heads'] == 1 else '多头'}注意力，并行块（注意力与 MLP 并行）",
    "file.n_inner_null": lambda p, n, f: f"n_inner 为 null：前馈层宽度取 4 x {p['hidden']} = {p['ffn']}",
    "file.opt_positions": lambda p, n, f: f"OPT 可学习位置编码：{p['positions']} + {p['offset']}（OPTLearnedPositionalEmbedding 的偏移量）",
    "file.opt_projections": lambda p, n, f: f"word_embed_proj_dim {p['proj']} != hidden_size {p['hidden']}：词嵌入宽度为 {p['proj']}，另加输入 / 输出投影层",
    "file.opt_post_layernorm": lambda p, n, f: "后置 LayerNorm 的 OPT（do_layer_norm_before 为 false）：没有最终的 LayerNorm",
    "file.chatglm_no_final_norm": lambda p, n, f: "post_layer_norm 为 false：没有最终的归一化层",
    "file.baichuan_alibi": lambda p, n, f: "Baichuan 配置中没有 max_position_embeddings：按 13B（ALiBi）版本处理",
    "file.olmo_norms": lambda p, n, f: "OLMo 1 的 LayerNorm 没有可学习参数：其增益已从参数量中扣除",
    "file.dbrx_clip_qkv": lambda p, n, f: "clip_qkv 只对激活值做截断，不带参数",
}
