"""English words of the notes ``--export`` prints on stderr (``render/export.py`` ``export_messages``): what only
the training script can set, and what must run before a server that spans nodes. Same conventions as
``en.MESSAGES``: each entry is a function of (params, name, fmt)."""

# ruff: noqa: E501 - one entry per line reads best

_TARGETS = {"qv": "q_proj and v_proj", "all": "every linear layer (all-linear)"}

MESSAGES = {
    "export.seq_len": lambda p, n, f: f"train.py feeds sequences of {p['seq_len']:,} tokens (the config does not carry the length)",
    "export.adapters": lambda p, n, f: f"train.py sets the adapters: LoRA rank {p['rank']} on {_TARGETS.get(p['targets'], p['targets'])} " + ("over the 4-bit NF4 base (bitsandbytes)" if p["mode"] == "qlora" else "(PEFT)"),
    "export.recompute": lambda p, n, f: f"train.py switches on activation checkpointing ({p['recompute']}): the Trainer's gradient_checkpointing=True, or model.gradient_checkpointing_enable()",
    "export.optimizer": lambda p, n, f: f"train.py builds the {p['optimizer']} optimizer (the Trainer's optim=...)",
    "export.accumulation": lambda p, n, f: f"train.py sets gradient accumulation: Accelerator(gradient_accumulation_steps={p['steps']})",
    "export.ds_config": lambda p, n, f: f"the launch runs train.py with ds_config.json: write that with {n('export')} deepspeed",
    "export.script_layout": lambda p, n, f: f"train.py sets the layout of the plan on {p['framework']}: ZeRO-{p['zero']} sharding, offload {p['offload']}, micro-batch {p['micro_batch']}, accumulation {p['steps']}",
    "export.megatron_checkout": lambda p, n, f: "pretrain_gpt.py is Megatron-LM's (github.com/NVIDIA/Megatron-LM): run from a checkout of it in the container, with --data-path and --tokenizer-type for your data",
    "export.megatron_finetune": lambda p, n, f: "pretrain_gpt.py fine-tunes a Megatron checkpoint: add --load <dir> --finetune",
    "export.uneven_pipeline": lambda p, n, f: f"{p['layers']} layers over pp={p['pp']}: the middle stages hold {p['per_stage']} layers each, as the plan sized them, and the first and last stages the rest",
    "export.vllm_nodes": lambda p, n, f: f"one copy spans {p['nodes']} nodes: start a Ray cluster over them and run the command on its head node (vLLM docs, parallelism and scaling: multi-node)",
    "export.sglang_nodes": lambda p, n, f: f"one copy spans {p['nodes']} nodes: run the command on each with --nnodes {p['nodes']} --node-rank <i> --dist-init-addr <node 0>:5000 (SGLang server arguments)",
}
