"""Chinese (简体中文): the same entries as ``en.py``; a missing entry falls back to English."""

# ruff: noqa: E501 - one entry per line reads best

LABELS = {
    'plan_title': 'llmsizer 配置方案',
    'models_title': '模型',
    'gpus_title': 'GPU',
    'fit_title': '可运行的模型',
    'fit_on': '{n} × {gpu} · {memory} · {mode}：可运行的模型',
    'needs': '需要',
    'needs_gpus': '{n} 张卡',
    'needs_memory': '每卡 {memory}',
    'validate_title': '与公开数据的对照验证',
    'workload': '任务',
    'model': '模型',
    'plans': '候选方案（按优先级排序）',
    'best_memory': '最佳方案的单卡显存',
    'memory_chart': '各方案的单卡显存',
    'server': '服务器（单节点）',
    'cloud': '云实例',
    'notes': '说明',
    'suggestions': '建议',
    'explain': '各项数据的推导过程',
    'explain_short': '关键数字的推导',
    'explain_more': '每一步及其输入与假设：{flag}',
    'no_plans': '未评估任何配置。',
    'no_fit': '没有可行的配置；下面列出最接近的配置。',
    'no_cloud': '目录中没有提供该节点的云实例。',
    'does_not_fit': '不可行',
    'evaluated': '个配置已评估',
    'generated_by': '由 llmsizer 生成',
    'mode': '模式',
    'precision': '精度',
    'quant': '量化',
    'optimizer': '优化器',
    'seq_len': '序列长度',
    'tokens': '训练 token 数',
    'lora_rank': 'LoRA 秩',
    'prompt_tokens': '输入',
    'output_tokens': '输出',
    'context': '上下文',
    'concurrency': '并发',
    'engine': '推理引擎',
    'micro_batch': '微批次',
    'recompute': '重计算',
    'searched': '自动搜索',
    'mode_inference': '推理',
    'mode_finetune': '全参数微调',
    'mode_lora': 'LoRA 微调',
    'mode_qlora': 'QLoRA 微调',
    'mode_pretrain': '预训练',
    'params': '参数量',
    'active': '激活',
    'layers': '层数',
    'hidden': '隐藏维度',
    'heads': '注意力头',
    'kv_heads': 'KV 头',
    'vocab': '词表',
    'max_context': '最大上下文',
    'attention': '注意力',
    'moe': 'MoE',
    'experts': '专家',
    'source': '来源',
    'rank': '#',
    'gpu': 'GPU',
    'gpus': 'GPU 数',
    'nodes': '节点',
    'node': '节点',
    'layout': '并行方式',
    'picks': '推荐',
    'pick_cheapest': '最便宜',
    'pick_quickest': '最快',
    'pick_smallest': '最小配置（GPU 最少）',
    'mem_used_usable': '单卡显存（已用 / 可用）',
    'mem_short': '单卡显存',
    'per_gpu': '每卡',
    'time': '时间',
    'latency': '延迟',
    'throughput': '吞吐',
    'owned': '自购',
    'gpus_idle': '块 GPU 闲置',
    'sold_as': '整机形态',
    'chassis_gb200-nvl72': 'GB200 NVL72 计算托盘（每机架 18 个托盘、72 块 GPU）',
    'chassis_mi250x-node': 'OAM 服务器',
    'chassis_hgx-8': 'NVIDIA HGX B200 基板服务器',
    'chassis_hgx': 'NVIDIA HGX 基板服务器',
    'chassis_oam-ubb': 'OAM 通用基板（UBB）服务器',
    'chassis_apple': 'Mac（单台整机）',
    'chassis_cpu-server': '双路服务器',
    'chassis_workstation': '工作站',
    'chassis_consumer': '台式机或工作站',
    'chassis_pcie-server': 'PCIe GPU 服务器',
    'to_buy': '购置价',
    'usd_per_hour': '美元/小时',
    'total_usd': '总费用',
    'usd_per_mtok': '美元/百万 token',
    'fits': '可行',
    'yes': '是',
    'no': '否',
    'unknown_time': '需指定 --tokens',
    'ttft': '首 token 延迟',
    'tpot': '每 token 延迟',
    'prefill': '预填充',
    'decode': '解码',
    'req_per_s': '请求/秒',
    'open_loop': '泊松到达',
    'at': '于',
    'prefix_cache': '前缀缓存命中',
    'concurrency_per_replica': '每副本并发',
    'sweep': '不同并发下的延迟与吞吐（闭环）',
    'max_concurrency': '最大并发',
    'mfu': 'MFU',
    'gpu_hours': 'GPU 小时',
    'energy': '能耗',
    'weights': '权重',
    'gradients': '梯度',
    'optimizer_state': '优化器状态',
    'activations': '激活值',
    'kv_cache': 'KV 缓存',
    'overhead': '额外开销',
    'free': '空闲',
    'total': '合计',
    'usable': '可用',
    'capacity': '容量',
    'part': '组成',
    'size': '大小',
    'share': '占可用显存',
    'host_offload': '卸载到内存',
    'nvme_offload': '卸载到 NVMe',
    'over_capacity': '超出可用显存',
    'cpu_cores': 'CPU 核心',
    'ram': '系统内存',
    'nvme': '本地 NVMe',
    'network': '网络',
    'power': '功耗',
    'psu': '电源',
    'ram_short': '内存',
    'local_storage': 'NVMe 存储',
    'note': '注',
    'rack_units': '机架单位',
    'item': '项目',
    'value': '数值',
    'provider': '云厂商',
    'instance': '实例',
    'instances': '实例数',
    'region': '区域',
    'price_date': '价格日期',
    'price_source': '价格来源',
    'stage': '阶段',
    'quantity': '数量',
    'formula': '公式',
    'inputs': '输入',
    'result': '结果',
    'assumption': '假设',
    'stage_memory': '显存',
    'stage_training': '训练',
    'stage_inference': '推理',
    'stage_cost': '费用',
    'stage_server': '服务器',
    'id': 'ID',
    'name': '名称',
    'vendor': '厂商',
    'memory': '显存',
    'usable_memory': '可用显存',
    'bandwidth': '显存带宽',
    'dense_flops': '稠密算力',
    'tdp': '功耗 (TDP)',
    'form_factor': '形态',
    'scaleup': '节点内互联',
    'scaleout': '节点间网络',
    'per_node': '每节点 GPU 数',
    'price': '价格',
    'purchase': '购买价格',
    'release_year': '发布年份',
    'aliases': '别名',
    'notes_field': '备注',
    'case': '案例',
    'published': '公开值',
    'predicted': '预测值',
    'error': '误差',
    'summary': '汇总',
    'minutes': '分钟',
    'hours': '小时',
    'days': '天',
    'years': '年',
    'layout_offload': '卸载',
    'attention_dp': '注意力数据并行',
    'layout_recompute': '重计算',
    'layout_micro_batch': '微批',
    'recompute_none': '无',
    'recompute_selective': '选择性',
    'recompute_full': '完整',
    'offload_cpu': 'CPU',
    'offload_nvme': 'NVMe',
    'gpu_hours_unit': 'GPU 小时',
}


def _fields(p, n):
    return "、".join(n(f) for f in p["fields"])


def _when(p, f):
    return f"，耗时 {f.days(p['seconds'], 'zh')}" if p.get("seconds") else ""


MESSAGES = {
    "owned_price": lambda p, n, f: (
        f"标注“自购”的价格不是租金：GPU 购置价按 {p['years']:g} 年、{p['utilization']:.0%} 利用率摊销，"
        f"加上每千瓦时 ${p['usd_per_kwh']:g} 的电费（不含服务器、供电设施与人员）"),
    "server_as_sold": lambda p, n, f: (
        f"一台 {p['chassis']} 卡 {p['sold_as']}" if p["gpus"] >= p["chassis"]
        else f"{p['chassis']} 卡 {p['sold_as']}，使用其中 {p['gpus']} 块"),
    "server_slice": lambda p, n, f: f"或租用其 {p['gpus']} 卡切片：{p['offer']}",
    "machine_memory": lambda p, n, f: (
        f"{f.ram(p['ram'])} 统一内存，GPU 可用 {f.gib(p['limit'])}（Metal 默认工作集上限）"
        if p["limit"] else f"{f.ram(p['ram'])} 内存"),
    # 模型是如何确定的
    "size_reference": lambda p, n, f: f"'{p['size']}' 解析为参考架构 {p['model_id']}（{p['model_name']}）",
    "size_nearest": lambda p, n, f: f"'{p['size']}' 解析为 {p['model_id']}（{p['model_name']}），即目录中参数量最接近的稠密模型",
    "derived_architecture": lambda p, n, f: (
        f"由 {n('params')} {p['params']:.4g} 推导出的架构：Llama 式结构，{p['layers']} 层 x 隐藏维度 "
        f"{p['hidden']}，{p['heads']} 个注意力头（{p['kv_heads']} 个 KV 头），SwiGLU FFN 中间维度 {p['ffn']}，词表 {p['vocab']}；"
        f"共 {p['total_params'] / 1e9:.3f}B 参数（相对请求值 {p['total_params'] / p['params'] - 1:+.1%}）"),
    "app_quant": lambda p, n, f: (
        f"未指定 {n('quant')}：{p['engine']} 默认下载 {p['quant']} 权重，因此按它估算；"
        f"{n('quant')} none 按 16 位权重估算"),
    "file_quant": lambda p, n, f: f"文件中的权重以 {p['quant']} 格式存储：按 {n('quant')} {p['quant']} 估算",
    "text": lambda p, n, f: p["text"],
    "searched": lambda p, n, f: f"共评估 {p['evaluated']:,} 种配置，耗时 {p['ms']:.0f} ms",
    # 被忽略的选项
    "ignored_for_inference": lambda p, n, f: f"推理时忽略：{_fields(p, n)}",
    "ignored_for_training": lambda p, n, f: f"训练时忽略：{_fields(p, n)}",
    "quant_ignored_full_training": lambda p, n, f: f"已忽略 {n('quant')}：全参数训练时可训练权重保持训练精度",
    # 默认值所作的假设
    "seq_len_capped": lambda p, n, f: f"序列长度设为 {p['model_id']} 的上下文长度 {p['max_context']:,} token",
    "seq_len_exceeds_context": lambda p, n, f: (
        f"{n('seq_len')} {p['seq_len']:,} 超过 {p['model_id']} 的上下文长度 {p['max_context']:,} token（按所给值估算；"
        "模型需先扩展上下文才能在该长度上训练）"),
    "context_exceeds": lambda p, n, f: (
        f"上下文 {p['context']:,} token 超过 {p['model_id']} 的 {p['max_context']:,}；按所给值估算（除非扩展了模型的上下文，"
        "推理引擎会拒绝超出模型上下文的序列）"),
    "framework_default": lambda p, n, f: (
        f"未指定训练框架：{LABELS['mode_' + p['mode']]}默认使用 {p['framework']}；可用 {n('framework')} 选择其他框架"
        f"（megatron、deepspeed、fsdp、torchtune、transformers、unsloth，或 any 比较全部）"),
    "framework_any": lambda p, n, f: (
        f"{n('framework')} any：已搜索所有支持该模式的训练框架（{'、'.join(p['frameworks'])}），每个方案标明所用框架"),
    "tokens_chinchilla": lambda p, n, f: (
        f"未指定 {n('tokens')}：按 Chinchilla 最优比例每个参数 {p['tokens_per_param']:g} 个 token 计算，共 "
        f"{p['tokens'] / 1e9:,.0f}B token（Hoffmann et al. 2022, Table 3）"),
    "global_batch_scaled": lambda p, n, f: (
        f"未指定 {n('global_batch_tokens')}：{p['gpus']:,} 张 GPU 上每步 {p['tokens'] / 2**20:g}M token（默认的 "
        f"{p['default_tokens'] / 2**20:g}M token 按每卡至少 1,024 token 翻倍；Llama 3 405B 扩展到 16,384 张 H100 时批量增至 16M "
        "token，见 Llama 3 技术报告第 3.4.1 节）"),
    "batch_limits_dp": lambda p, n, f: (
        f"该方案受批量限制：每步 {f.si(p['tokens'])} token 只给 {p['dp']:,} 条数据并行流水线各 {p['micro_batches']} 个"
        f"微批次，却有 {p['pp']} 个流水线阶段，流水线气泡占每步 {p['bubble'] * 100:.0f}% 的时间；"
        f"增大 {n('global_batch_tokens')} 或减少 GPU 可提高利用率"),
    "deadline_default": lambda p, n, f: (
        f"未指定 {n('deadline_s')}：预训练方案须在 {p['deadline_s'] / 86400:.0f} 天内完成"
        f"（{n('deadline_s')} none 可取消该限制）"),
    "no_tensor_cores": lambda p, n, f: (
        f"{p['gpu_id']} 没有 {p['precision']} 张量核心：其算力按它支持的最接近的类型计"
        f"（{p['dtypes']}）"),
    # 方案不可行的原因
    "engine_by_kind": lambda p, n, f: (
        f"未指定 {n('engine')}：CUDA 和 ROCm GPU 上用 {p['engine']}，苹果芯片和 CPU 上用 llama.cpp"
        f"（vLLM、SGLang 和 TensorRT-LLM 需要 CUDA 或 ROCm GPU）；每个方案注明其引擎"),
    "engine_for_hardware": lambda p, n, f: (
        f"未给出 {n('engine')}：此硬件上使用 {p['engine']}（vLLM、SGLang 和 TensorRT-LLM 需要 CUDA 或 ROCm 显卡）；"
        f"{n('engine')} ollama 或 lmstudio 可按这两个应用的默认设置"),
    "concurrency_default": lambda p, n, f: (
        f"未给出 {n('concurrency')}：按一个请求、完整 {p['context']:,} 词元上下文来配置；首选方案每个副本可同时容纳 "
        f"{p['fits']:,} 条这样的序列（给出 {n('concurrency')} 或 {n('request_rate')} 可按负载配置）"),
    "concurrency_with_rate": lambda p, n, f: (
        f"忽略 {n('concurrency')}：负载由 {n('request_rate')} 决定（请求自行到达，开环）"),
    "sla_overloaded": lambda p, n, f: (
        f"处理不过来：{p['rate']:.3g} 请求/秒分给 {p['replicas']} 个副本，每个副本最多 {p['max_rate']:.3g} 请求/秒"),
    "sla_missed": lambda p, n, f: (
        f"未达到 p{p['percentile'] * 100:g} 延迟目标：首词元延迟 {f.duration(p['ttft_s'], 'zh')}"
        + (f"（目标 {f.duration(p['ttft_target_s'])}）" if p['ttft_target_s'] else "")
        + f"，每词元时间 {f.duration(p['tpot_s'], 'zh')}" + (f"（目标 {f.duration(p['tpot_target_s'])}）" if p['tpot_target_s'] else "")),
    "needs_memory": lambda p, n, f: f"每卡需要 {p['need_bytes'] / 2**30:.1f} GiB，可用 {p['usable_bytes'] / 2**30:.1f} GiB",
    "no_kv_room": lambda p, n, f: "剩余显存放不下一条序列的 KV 缓存",
    "past_deadline": lambda p, n, f: f"耗时 {f.days(p['seconds'], 'zh')}，超过期限 {f.days(p['deadline_s'], 'zh')}",
    "over_budget": lambda p, n, f: f"费用 ${p['usd']:,.0f}，超出预算 ${p['budget_usd']:,.0f}",
    # 怎样才能可行
    "closest_in_memory": lambda p, n, f: f"最接近的方案：{p['gpu_count']}x {p['gpu_id']} 显存放得下，可以完成训练{_when(p, f)}",
    "relax_time_or_money": lambda p, n, f: (
        f"允许更多 GPU（{n('max_gpus')}，或去掉 {n('gpu_count')}）、换更快的 GPU、减少 {n('tokens')}，或放宽 "
        f"{n('deadline_s')} / {n('budget_usd')}（{n('deadline_s')} none 可取消预训练的默认期限）"),
    "closest_serving": lambda p, n, f: (
        f"最接近：{p['gpu_count']}x {p['gpu_id']} 的一个副本在目标内可承载 {p['rate']:.3g} 请求/秒"),
    "relax_sla": lambda p, n, f: (
        f"允许更多副本（{n('max_gpus')}），放宽 {n('ttft_target_s')} / {n('tpot_target_s')} 或 "
        f"{n('sla_percentile')}，降低 {n('request_rate')}，缩短 {n('prompt_tokens')}，或尝试 {n('disaggregate')}"),
    "closest_memory": lambda p, n, f: f"最接近的方案：{p['gpu_count']}x {p['gpu_id']} 所需显存为每卡可用显存的 {p['ratio']:.1f} 倍",
    "more_gpus": lambda p, n, f: f"允许更多 GPU（{n('max_gpus')}，或去掉 {n('gpu_count')}）",
    "offload": lambda p, n, f: f"将优化器状态卸载到 CPU（{n('offload')} cpu，配合 {n('zero')} 2 或 3）",
    "offload_nvme": lambda p, n, f: (
        f"将参数和优化器状态卸载到 NVMe（{n('offload')} nvme，配合 {n('zero')} 3，即 ZeRO-Infinity）："
        "速度更慢，但容量取决于硬盘而非主机内存"),
    "adapters": lambda p, n, f: f"改为训练适配器：{n('mode')} lora，或 {n('mode')} qlora（基座量化为 4 比特）",
    "qlora": lambda p, n, f: f"量化冻结的基座模型：{n('mode')} qlora",
    "quantize": lambda p, n, f: f"量化权重：{n('quant')} int8、int4 或 q4_k_m",
    "shorter_context": lambda p, n, f: f"缩短 {n('context')} 或降低 {n('concurrency')}（KV 缓存随两者增长）",
    "lower_batch": lambda p, n, f: f"降低 {n('micro_batch')}",
    "recompute_full": lambda p, n, f: f"对激活值做重计算：{n('recompute')} full",
    "other_gpus": lambda p, n, f: f"尝试其他 GPU 型号（去掉 {n('gpu_ids')}）",
    "relax_limits": lambda p, n, f: f"放宽 {n('deadline_s')} 或 {n('budget_usd')}",
}

NETWORK = {
    "machine": lambda p, n, f: f"单台整机；与其他机器之间 {p['scaleout_gbps']:g} Gb/s 连接（以太网或雷雳）",
    "machines": lambda p, n, f: f"机器之间 {p['scaleout_gbps']:g} Gb/s 以太网或雷雳（无 RDMA 网络）",
    "single": lambda p, n, f: "单卡；10-25 Gb/s 以太网上行链路",
    "node": lambda p, n, f: f"节点内 GPU 之间通过 {p['scaleup']} 互联；25 Gb/s 以太网上行链路",
    "rdma": lambda p, n, f: f"节点内 {p['scaleup']} 互联；节点间每卡 {p['scaleout_gbps']:g} Gb/s InfiniBand/RoCE",
    "ethernet": lambda p, n, f: f"节点内 {p['scaleup']} 互联；节点间 100+ Gb/s 以太网（常见服务器没有 RDMA 网络）",
}
