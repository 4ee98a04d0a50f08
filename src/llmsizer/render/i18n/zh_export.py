"""``--export`` 在 stderr 上给出的提示的中文（见 ``en_export.py``）。"""

# ruff: noqa: E501 - one entry per line reads best

_TARGETS = {"qv": "q_proj 和 v_proj", "all": "所有线性层（all-linear）"}

MESSAGES = {
    "export.seq_len": lambda p, n, f: f"train.py 需按每条 {p['seq_len']:,} 个 token 的序列喂数据（配置文件不含序列长度）",
    "export.adapters": lambda p, n, f: f"train.py 需设置适配器：LoRA 秩 {p['rank']}，作用于{_TARGETS.get(p['targets'], p['targets'])}" + ("，基座为 4 位 NF4（bitsandbytes）" if p["mode"] == "qlora" else "（PEFT）"),
    "export.recompute": lambda p, n, f: f"train.py 需开启激活重计算（{p['recompute']}）：Trainer 的 gradient_checkpointing=True，或 model.gradient_checkpointing_enable()",
    "export.optimizer": lambda p, n, f: f"train.py 需构建 {p['optimizer']} 优化器（Trainer 的 optim=...）",
    "export.accumulation": lambda p, n, f: f"train.py 需设置梯度累积：Accelerator(gradient_accumulation_steps={p['steps']})",
    "export.ds_config": lambda p, n, f: f"启动命令以 ds_config.json 运行 train.py：用 {n('export')} deepspeed 生成该文件",
    "export.script_layout": lambda p, n, f: f"train.py 需在 {p['framework']} 上设置方案的并行布局：ZeRO-{p['zero']} 切分、卸载 {p['offload']}、微批 {p['micro_batch']}、梯度累积 {p['steps']}",
    "export.megatron_checkout": lambda p, n, f: "pretrain_gpt.py 属于 Megatron-LM（github.com/NVIDIA/Megatron-LM）：需在容器内其代码目录中运行，并为你的数据给出 --data-path 与 --tokenizer-type",
    "export.megatron_finetune": lambda p, n, f: "用 pretrain_gpt.py 微调 Megatron 检查点：加上 --load <目录> --finetune",
    "export.uneven_pipeline": lambda p, n, f: f"{p['layers']} 层分到 pp={p['pp']} 个流水线阶段：中间各阶段按方案的估算各放 {p['per_stage']} 层，首末两个阶段放其余的层",
    "export.vllm_nodes": lambda p, n, f: f"一份模型副本跨 {p['nodes']} 个节点：先在这些节点上启动 Ray 集群，再在其头节点上运行该命令（vLLM 文档，并行与扩展：多节点）",
    "export.sglang_nodes": lambda p, n, f: f"一份模型副本跨 {p['nodes']} 个节点：在每个节点上运行该命令并加上 --nnodes {p['nodes']} --node-rank <序号> --dist-init-addr <0 号节点>:5000（SGLang 服务器参数）",
}
