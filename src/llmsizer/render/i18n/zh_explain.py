"""Chinese words of every ``plan --explain`` step (see ``en_explain.py``)."""

# ruff: noqa: E501 - one entry per line reads best

EXPLAIN = {
    # ------------------------------------------------------------------------------------------------ 显存
    "memory.weights": {
        "quantity": "每卡权重",
        "formula": "(本级参数 / tp [专家参数 / (tp x ep)]) x bytes_per_weight / dp（ZeRO-3 时）",
        "formula+adapter": " + LoRA 适配器参数 x 字节数",
        "assumption": "嵌入层在流水线首级，lm_head 与最终归一化层在末级；归一化层在 tp 组内复制",
    },
    "memory.gradients": {
        "quantity": "每卡梯度",
        "formula": "本级可训练参数 x grad_bytes / dp（ZeRO >= 2 时）",
        "assumption": "梯度采用训练精度（bf16），与 ZeRO 论文及 Megatron-LM 一致；DeepSpeed 的 fp32 梯度累积会每参数再多 2-4 字节",
    },
    "memory.optimizer": {
        "quantity": "每卡优化器状态",
        "formula": "可训练参数 x (主权重 + 动量 [+ 因子化状态]) / dp（ZeRO >= 1 时）",
        "assumption": "",
        "assumption:offload": "卸载的状态计为主机内存/NVMe 字节，不计入 GPU 显存",
    },
    "memory.activations_per_layer": {
        "quantity": "每层激活值",
        "formula": "s b (R/t_sp + T/t + S 键数/t)",
        "formula:selective": "s b (R/t_sp + T/t)",
        "formula:full": "s b h x act_bytes / t_sp",
        "assumption": "将 Korthikanti 的 34 + 5as/h 按具体架构展开（GQA 的 K/V 宽度、门控 MLP 的 3f、RMSNorm、仅在 dropout > 0 时计入 dropout 掩码、FlashAttention 以 log-sum-exp 代替 s^2 的注意力分数、MoE 的 top-k 副本与专家中间结果、MLA 的潜向量）；MoE 的 token 在专家间均匀分配，不计容量因子填充；即使 kv_heads < t，K/V 头也按 t 切分；LoRA 保留每个冻结线性层的输入（适配器的反向传播需要）",
    },
    "memory.activations": {
        "quantity": "每卡激活值",
        "formula": "in_flight x (layers_on_stage x per_layer + emb_dropout) + last_stage(2 s b h x act_bytes / t_sp + s b V x (4 + 2) / t) + full_recompute_working_layer；交错调度（v > 1）：in_flight = (2 (p - 1 - rank) + (v - 1) p + 1) / v 个流水线级的量，emb_dropout x min(p, 微批次数)",
        "assumption": "1F1B 的首级保存 p 个微批次的激活值（至多为每步的微批次数），末级保存 1 个；完整重计算时反向传播逐层重算，因此仍有一层的完整激活值同时驻留",
    },
    "memory.stack": {
        "quantity": "训练框架实际保留的显存",
        "formula": "按该框架的实现计算的单卡激活值：保存的张量（融合算子 | 逐模块的 PyTorch 算子）、损失（融合的词表并行 | 整体转为 fp32，每个 logit 12 字节 | 分块 | 仅保留 log-sum-exp）",
        "formula:freed": "峰值 = 权重 + 优化器状态 + max(激活值, 梯度 + 正在重算的一层)：梯度在两步之间被置为 None，反向传播释放激活值的同时才分配梯度",
        "formula+amp": "；+ autocast 为每个矩阵生成的 bf16 副本（每个权重 2 字节），保留到反向传播",
        "formula+offloaded": "；- 检查点保存的各层输入，放在主机内存中",
        "assumption": "依据框架自身的代码（data/frameworks.yaml、memory/stacks.py）：逐模块实现会保存 RMSNorm 的 fp32 副本、未融合的 SwiGLU 中间结果、注意力输出的连续副本；PEFT 下每个带适配器的投影还会保存其输入的 fp32 副本",
    },
    "memory.overhead": {
        "quantity": "每卡额外开销",
        "formula": "CUDA 上下文 + NCCL x 通信组数 + 碎片率 x (激活值 + 梯度) + ZeRO-3 聚合单元 + 归约桶 + QLoRA 反量化缓冲区",
        "assumption": "各常量取自 data/memory.yaml",
    },
    "memory.offloaded": {
        "quantity": "每卡卸载的状态",
        "formula": "移出 GPU 的优化器状态（ZeRO >= 2 时另加 fp32 梯度，ZeRO-3 时另加权重）",
        "assumption": "",
    },
    "memory.total": {
        "quantity": "每卡显存",
        "formula": "权重 + 梯度 + 优化器状态 + 激活值 + KV 缓存 + 额外开销",
        "assumption": "",
        "assumption:pipeline": "取流水线首级与末级中较大者",
    },
    "memory.weights_inference": {
        "quantity": "每卡权重",
        "formula": "对各张量求和：参数量 x 存储位数 / 8，矩阵 / tp [专家 / (tp x ep)]，层 / pp",
        "formula+attention_dp": "；注意力矩阵在每张卡上完整保存（注意力数据并行）",
        "assumption": "归一化层与偏置不量化；嵌入层/lm_head 保持量化工具链处理后的格式",
    },
    "memory.activations_inference": {
        "quantity": "每卡激活值（推理时的临时显存）",
        "formula": "token 数 x act_bytes x (2h + max(注意力, MLP 中间结果)/t) + 行数 x V/t x 4",
        "formula+noflash": " + token 数 x 键数 x 头数/t x (act_bytes + 4)",
        "assumption": "同一时刻只有一层的中间结果驻留；峰值由推理引擎的显存探测过程决定",
    },
    "memory.kv": {
        "quantity": "每卡 KV 缓存",
        "formula": "layers_on_stage x 2 x max(1, ceil(kv_heads / tp)) x head_dim x kv_bytes x 上下文 x 并发",
        "formula:mla": "layers_on_stage x (kv_lora_rank + qk_rope_head_dim) x kv_bytes x 上下文 x 并发（潜向量在 tp 组内复制）",
        "formula:attention_dp": "layers_on_stage x 全部 KV 头（MLA：潜向量）的元素数 / tp x kv_bytes x 上下文 x 并发（注意力数据并行：每张卡只存自己的序列，不复制）",
        "assumption": "滑动窗口层保存 min(上下文, 窗口) 个 token；不按块取整",
    },
    "memory.overhead_inference": {
        "quantity": "每卡额外开销",
        "formula": "CUDA 上下文（引擎预留之外）+ 引擎的非 torch 显存 + NCCL x 通信组数",
        "formula+fragmentation": " + 碎片率 x (激活值 + KV)",
        "assumption": "",
        "assumption:in_reserve": "CUDA 上下文与 CUDA 图位于引擎未预留的显存中",
    },
    # ------------------------------------------------------------------------------------------------ 训练
    "compute.model_flops": {
        "quantity": "每 token 模型 FLOPs",
        "formula": "6 N + 6 s sum_l H (d_qk + d_v)（标准注意力时 = 6N + 12 l s h）",
        "formula:adapter": "4 N + 6 N_adapter + 6 s sum_l H (d_qk + d_v)",
        "assumption": "N = 每个 token 参与相乘的权重数（MoE 只计激活的专家；计入输出层，不计嵌入查表）；注意力按完整的 s x s 矩阵计，与 PaLM/Megatron 的做法一致",
        "assumption:adapter": "基座冻结：没有求权重梯度的矩阵乘；注意力按完整的 s x s 矩阵计",
    },
    "compute.hardware_flops": {
        "quantity": "每 token 硬件 FLOPs",
        "formula": "模型 FLOPs",
        "formula:selective": "模型 FLOPs + 前向注意力",
        "formula:full": "模型 FLOPs + 2N + 前向注意力",
        "assumption": "重计算会重新执行为节省显存而未保存结果的前向计算",
    },
    "compute.efficiency": {
        "quantity": "计算效率",
        "formula": "MAMF 比例 x 单步效率 x h / (h + k x 屋脊点)",
        "formula+moe": " x MoE 效率",
        "assumption": "",
    },
    "compute.achieved_rate": {
        "quantity": "每卡实际 FLOP/s",
        "formula": "峰值 x 效率",
        "formula:fp8": "bf16 峰值 x 效率 x fp8 加速比",
        "assumption": "",
        "assumption:fp8": "FP8 使 GEMM 提速 1.3-1.5 倍，而不是 2 倍",
    },
    "compute.micro_batch_compute": {
        "quantity": "每个微批次的计算时间",
        "formula": "硬件 FLOPs x b x s / (tp x pp) / 实际 FLOP/s",
        "assumption": "",
    },
    "compute.dequant": {
        "quantity": "每个微批次的反量化时间",
        "formula": "遍数 x 权重 / (tp x pp) x (存储字节 + 写出的 2 B bf16) / (带宽 x 效率)；遍数 = 2（前向、反向），完整重计算时为 3",
        "assumption": "每遍对每个权重反量化一次，而不是每个 token 一次（bitsandbytes 在矩阵乘之前反量化整层权重）；与微批次大小无关",
    },
    "compute.micro_batches": {
        "quantity": "每步微批次数（梯度累积）",
        "formula": "ceil(全局批次 token 数 / (s x b x dp))",
        "assumption": "",
        "assumption:assumed": "默认的全局批次（未指定）：预训练为 4M token，其他为 128 条序列",
    },
    "compute.tp": {
        "quantity": "每个微批次未被重叠的张量并行 all-reduce 时间",
        "formula": "(4 或 6) x 层数/pp x (延迟 + 2 (tp-1)/tp x b s h x 2 B / 带宽)",
        "assumption": "张量并行的 all-reduce 位于关键路径上（TP 通信不与计算重叠）",
    },
    "compute.a2a": {
        "quantity": "每个微批次未被重叠的 MoE all-to-all 时间",
        "formula": "4 x MoE 层数/pp x (ep-1)/ep x b s k h x 2 B / 带宽 x (1 - 重叠比例)",
        "assumption": "部分 all-to-all 被计算掩盖（data/compute.yaml moe_all_to_all_overlap）",
    },
    "compute.p2p": {
        "quantity": "每个微批次的流水线点对点通信时间",
        "formula": "2 x v x (延迟 + b s h x 2 B / tp / 带宽)：前向传激活值、反向传梯度，每个模型块各一次",
        "assumption": "不与计算重叠（上界；Megatron-LM 可以将其重叠）",
    },
    "compute.dp": {
        "quantity": "每步未被重叠的数据并行通信",
        "formula": "all-reduce 2 (n-1)/n x 梯度字节 / 带宽；ZeRO-3：每个微批次 3 (n-1)/n x 权重字节；未重叠部分 = max(通信 x (1 - 重叠比例), 通信 - 可重叠的计算)",
        "assumption": "梯度归约与反向传播重叠（data/compute.yaml dp_overlap）",
    },
    "compute.bubble": {
        "quantity": "流水线气泡",
        "formula": "(pp - 1) / (v x m)",
        "assumption": "v = 1 为普通 1F1B（DeepSpeed 的调度）；v > 1 为 Megatron-LM 的交错调度，要求每步微批次数是 pp 的整数倍",
    },
    "compute.offload": {
        "quantity": "每步卸载时间",
        "formula": "2 x 分片 x 2 B / PCIe + 分片 x CPU-Adam 时间（+ NVMe 状态读写）",
        "assumption": "PCIe、NVMe 与 CPU-Adam 的速率为先验值（data/compute.yaml）",
    },
    "compute.step": {
        "quantity": "单步时间",
        "formula": "(m + (pp - 1) / v) x 单个微批次时间 + 未重叠的 DP 通信 + 卸载时间",
        "assumption": "",
    },
    "compute.throughput": {"quantity": "训练吞吐", "formula": "dp x m x b x s / 单步时间", "assumption": ""},
    "compute.mfu": {"quantity": "MFU", "formula": "token/s x 每 token 模型 FLOPs / (GPU 数 x 峰值)", "assumption": ""},
    "compute.hfu": {"quantity": "HFU", "formula": "token/s x 每 token 硬件 FLOPs / (GPU 数 x 峰值)", "assumption": ""},
    "compute.goodput": {
        "quantity": "有效训练比例",
        "formula": "1 / (1 + GPU 数 x 每 GPU 小时的中断次数 x 每次中断损失的小时数)",
        "assumption": "同步训练在任何故障后都从最近的检查点重启",
    },
    "compute.training_time": {"quantity": "训练时间", "formula": "token 数 / (每秒 token 数 x 有效训练比例)", "assumption": ""},
    "compute.gpu_hours": {"quantity": "GPU 小时", "formula": "秒数 x GPU 数 / 3600", "assumption": ""},
    "compute.energy": {
        "quantity": "GPU 能耗",
        "formula": "GPU 数 x TDP x 功率系数 x 秒数",
        "assumption": "只计 GPU 板卡：不含主机与散热（PUE）",
    },
    "compute.facility_energy": {"quantity": "数据中心能耗", "formula": "GPU 能耗 x PUE", "assumption": ""},
    # ------------------------------------------------------------------------------------------------ 推理
    "inference.batch": {
        "quantity": "每个流水线级每步的序列数",
        "formula": "ceil(并发 / pp)（pp = 1 时即为并发）",
        "assumption": "并发按每个副本（tp x pp 个 GPU）计",
    },
    "inference.weight_read": {
        "quantity": "每个解码步读取的权重字节（每卡）",
        "formula": "权重 x (1 - 嵌入占比 - 专家占比 + 专家占比 x 被访问的专家数 / E)",
        "assumption": "嵌入层只读取用到的行，不整表读取；MoE：被访问的专家数为 E (1 - (1 - k/E)^B)，路由均匀",
    },
    "inference.kv_read": {
        "quantity": "每个解码步读取的 KV 缓存字节（每卡）",
        "formula": "批大小 x (输入 + 输出/2) x 每卡每 token 的 KV 字节",
        "assumption": "按生成过程中的平均上下文长度计",
    },
    "inference.bandwidth": {
        "quantity": "有效显存带宽",
        "formula": "带宽 x 引擎带宽效率",
        "formula+quantized": " x 量化算子效率",
        "assumption": "",
    },
    "inference.expert_bandwidth": {"quantity": "路由专家的有效带宽", "formula": "带宽 x MoE 专家效率（不超过引擎的带宽效率）", "assumption": "每个专家只处理少量 token 的分组 GEMM，读权重的速率低于单个稠密矩阵乘"},
    "inference.rate": {
        "quantity": "每卡有效 FLOP/s",
        "formula": "峰值(数据类型) x 引擎 FLOP 效率",
        "formula+quantized": " x 量化算子效率",
        "assumption": "",
        "assumption:fp8": "FP8 GEMM 速率为 BF16 的 1.65 倍（DeepGEMM FP8 对比实测 BF16 GEMM 上限）",
    },
    "inference.decode_memory": {"quantity": "每步解码的访存时间", "formula": "(权重字节 + KV 字节) / 有效带宽", "assumption": ""},
    "inference.decode_compute": {
        "quantity": "每步解码的计算时间",
        "formula": "批大小 x (2 N + 2 注意力(上下文)) / (tp x pp) / 有效 FLOP/s",
        "assumption": "",
    },
    "inference.tp": {
        "quantity": "每步的张量并行 all-reduce",
        "formula": "2 x 层数/pp x (延迟 + 2 (tp-1)/tp x 批大小 x h x 2 B / 带宽)",
        "assumption": "小批量的 all-reduce 受延迟限制",
    },
    "inference.overhead": {
        "quantity": "每步的引擎开销",
        "formula": "单步开销 + 每层开销 x 本卡层数",
        "assumption": "每步的调度与采样；每层的核函数边界（启动、爬升、收尾）",
    },
    "inference.decode_step": {"quantity": "解码步", "formula": "max(权重字节, 矩阵乘计算) + max(KV 字节, 注意力计算) + all-reduce + 开销", "assumption": "权重矩阵乘与注意力是不同的核函数，各自受自身的屋顶线限制"},
    "inference.prefill_share": {
        "quantity": "混入解码轮的预填充（每轮平均）",
        "formula": "含提示词的轮次占比 f x (混合轮 - 解码轮)；f = max(1 - e^-a, a x 提示词 / 词元预算)，a = 请求/秒 x 轮时长",
        "assumption": "连续批处理加分块预填充：运行中的解码之后，等待的提示词填满每步的词元预算（vLLM V1 调度器，Sarathi-Serve）",
    },
    "inference.tpot": {"quantity": "每个输出 token 的时间", "formula": "平均轮时长 = (1 - f) 解码轮 + f 混合轮（不含首 token）", "assumption": ""},
    "inference.prefill": {
        "quantity": "单条输入的预填充",
        "formula": "max(输入 x (2N + 2 注意力(输入/2)) / tp / FLOP/s, 权重 / 带宽) + all-reduce + 开销",
        "assumption": "输入超过几百个 token 时受计算限制",
    },
    "inference.ttft": {
        "quantity": "首 token 延迟",
        "formula": "自身预填充轮 + 排在其他提示词之后 rho s / (2 (1 - rho))（M/D/1）+ 正在进行的一轮的剩余 + 等待 KV 槽位",
        "assumption": "稳态；rho = 用于提示词的时间占比；超过 KV 槽位时闭环需等待 (N / 槽位 - 1) 个请求寿命（Little 定律）",
    },
    "inference.throughput": {"quantity": "输出吞吐", "formula": "副本数 x 每副本请求/秒 x 输出 token；请求/秒 = 运行中序列 / (预填充 + (输出 - 1) x TPOT)", "assumption": "Little 定律"},
    "inference.max_concurrency": {
        "quantity": "最大并发（每副本）",
        "formula": "floor((可用显存 - 每卡非 KV 显存) / (每卡每 token 的 KV 字节 x 上下文))",
        "assumption": "",
    },
    "inference.saturation": {
        "quantity": "饱和并发",
        "formula": "使 B x 每条序列的计算时间 = 权重读取时间 + B x KV 读取时间 成立的 B（0 = 始终不受计算限制）",
        "assumption": "",
    },
    # ------------------------------------------------------------------------------------------------ 费用
    "cost.price": {
        "quantity": "每 GPU 小时价格",
        "formula": "目录价格",
        "formula:override": "指定的价格",
        "formula:instance": "最便宜云实例的单卡价格",
        "formula:amortized": "购买价格 / (年数 x 8760 x 利用率) + 电费",
        "formula:unknown": "价格未知",
        "assumption": "",
        "assumption:rental": "按需标价",
        "assumption:instance": "按需标价",
        "assumption:amortized": "自购 GPU：不含服务器、主机内存、供电设施与人员成本",
    },
    "cost.per_hour": {"quantity": "每小时费用", "formula": "GPU 数 x 每 GPU 小时价格", "assumption": ""},
    "cost.total": {
        "quantity": "总费用",
        "formula": "每小时费用 x 秒数 / 3600",
        "assumption": "只计 GPU 租用费：不含存储、网络出口流量与空闲时间",
    },
    "cost.per_mtok": {
        "quantity": "每百万输出 token 的费用",
        "formula": "每小时费用 / (token/s x 3600) x 1e6",
        "assumption": "按满载稳态计",
    },
    "cost.energy": {"quantity": "GPU 能耗", "formula": "GPU 数 x TDP x 功率系数 x 秒数", "assumption": "不含 PUE，不含主机"},
    # ------------------------------------------------------------------------------------------------ 服务器
    "server.cpu_cores": {"quantity": "每节点 CPU 核心数", "formula:machine": "整机 CPU 核数（data/server.yaml machines）", "formula": "GPU 数 x 每 GPU 核心数，向上取整到 4 的倍数", "assumption": ""},
    "server.ram": {
        "quantity": "每节点系统内存",
        "formula:machine": "整机内存（目录条目：服务器内存或 Mac 的统一内存）", "formula": "max(最小值, 比例 x GPU 显存 + 卸载的状态)，向上取整到 64 GiB 的倍数",
        "assumption": "",
    },
    "server.storage": {
        "quantity": "每节点本地 NVMe",
        "formula": "(bf16 权重 + 保留的检查点 / 节点数 + 分词后的数据集) x 余量系数",
        "assumption": "",
    },
    "server.power": {"quantity": "每节点整机功耗", "formula:machine": "整机最大功耗（data/server.yaml machines）", "formula": "GPU 数 x TDP x (1 + 系统开销)", "assumption": ""},
}
