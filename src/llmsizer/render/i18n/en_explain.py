"""English words of every ``plan --explain`` step, by step key (see ``en.py`` for the variant rules)."""

# ruff: noqa: E501 - one entry per line reads best

EXPLAIN = {
    # ------------------------------------------------------------------------------------------------ memory
    "memory.weights": {
        "quantity": "weights per GPU",
        "formula": "(stage params / tp [experts / (tp x ep)]) x bytes_per_weight / (dp if ZeRO-3)",
        "formula+adapter": " + LoRA adapters x bytes",
        "assumption": "embedding on the first stage, lm_head + final norm on the last; norms replicated over tp",
    },
    "memory.gradients": {
        "quantity": "gradients per GPU",
        "formula": "trainable params on stage x grad_bytes / (dp if ZeRO >= 2)",
        "assumption": "gradients in the training precision (bf16), as in the ZeRO paper and Megatron-LM; DeepSpeed's fp32 gradient accumulation would add 2-4 bytes/param",
    },
    "memory.optimizer": {
        "quantity": "optimizer states per GPU",
        "formula": "trainable params x (master + moments [+ factored]) / (dp if ZeRO >= 1)",
        "assumption": "",
        "assumption:offload": "offloaded states are reported as host/NVMe bytes, not GPU bytes",
    },
    "memory.activations_per_layer": {
        "quantity": "activations per layer",
        "formula": "s b (R/t_sp + T/t + S keys/t)",
        "formula:selective": "s b (R/t_sp + T/t)",
        "formula:full": "s b h x act_bytes / t_sp",
        "assumption": "Korthikanti's 34 + 5as/h specialised to the architecture (GQA K/V widths, gated MLP 3f, RMSNorm, dropout masks only when dropout > 0, FlashAttention's log-sum-exp instead of s^2 scores, MoE top-k copies and expert intermediates, MLA latents); MoE tokens evenly balanced across experts, no capacity-factor padding; K/V heads split by t even when kv_heads < t; LoRA keeps every frozen-linear input (needed for the adapter's backward)",
    },
    "memory.activations": {
        "quantity": "activations per GPU",
        "formula": "in_flight x (layers_on_stage x per_layer + emb_dropout) + last_stage(2 s b h x act_bytes / t_sp + s b V x (4 + 2) / t) + full_recompute_working_layer; interleaved (v > 1): in_flight = (2 (p - 1 - rank) + (v - 1) p + 1) / v stages' worth, emb_dropout x min(p, micro-batches)",
        "assumption": "the first 1F1B stage holds p micro-batches (at most the micro-batches per step), the last one; under full recomputation backward recomputes one layer at a time, so one layer's full activations are live again",
    },
    "memory.stack": {
        "quantity": "what the training stack holds",
        "formula": "activations per GPU as this stack keeps them: saved tensors (fused kernels | eager modules), loss (fused vocab-parallel | fp32 upcast 12 B/logit | chunked | log-sum-exp only)",
        "formula:freed": "peak = weights + optimizer + max(activations, gradients + working layer): gradients are set to None between steps and allocated while backward frees the activations",
        "formula+amp": "; + autocast's bf16 copy of every matrix (2 B/weight), kept for backward",
        "formula+offloaded": "; - checkpointed layer inputs, kept in host RAM",
        "assumption": "the stack's own code (data/frameworks.yaml, memory/stacks.py): eager modules save fp32 RMSNorm copies, unfused SwiGLU intermediates, a contiguous copy of the attention output, and under PEFT an fp32 copy of each adapted projection's input",
    },
    "memory.overhead": {
        "quantity": "overhead per GPU",
        "formula": "context + NCCL x communicators + fragmentation x (activations + gradients) + ZeRO-3 gathered units + reduce bucket + QLoRA dequantization buffer",
        "assumption": "named constants from data/memory.yaml",
    },
    "memory.offloaded": {
        "quantity": "offloaded states per GPU",
        "formula": "optimizer states (+ fp32 gradients if ZeRO >= 2, + weights if ZeRO-3) off the GPU",
        "assumption": "",
    },
    "memory.total": {
        "quantity": "memory per GPU",
        "formula": "weights + gradients + optimizer + activations + KV cache + overhead",
        "assumption": "",
        "assumption:pipeline": "the worse of the first and last pipeline stage",
    },
    "memory.weights_inference": {
        "quantity": "weights per GPU",
        "formula": "sum over tensors of params x stored bits / 8, matrices / tp [experts / (tp x ep)], layers / pp",
        "formula+attention_dp": "; attention matrices whole on every GPU (attention data parallelism)",
        "assumption": "norms and biases unquantized; embeddings/lm_head as the quantization toolchain leaves them",
    },
    "memory.activations_inference": {
        "quantity": "activations per GPU (inference transient)",
        "formula": "tokens x act_bytes x (2h + max(attention, MLP intermediates)/t) + rows x V/t x 4",
        "formula+noflash": " + tokens x keys x heads/t x (act_bytes + 4)",
        "assumption": "one layer's intermediates live at a time; the engine's profiling pass sets the peak",
    },
    "memory.kv": {
        "quantity": "KV cache per GPU",
        "formula": "layers_on_stage x 2 x max(1, ceil(kv_heads / tp)) x head_dim x kv_bytes x context x concurrency",
        "formula:mla": "layers_on_stage x (kv_lora_rank + qk_rope_head_dim) x kv_bytes x context x concurrency (the latent is replicated over tp)",
        "formula:attention_dp": "layers_on_stage x KV elements of every head (MLA: the latent) / tp x kv_bytes x context x concurrency (attention data parallelism: each GPU its own sequences, nothing replicated)",
        "assumption": "sliding-window layers hold min(context, window) tokens; no block rounding",
    },
    "memory.overhead_inference": {
        "quantity": "overhead per GPU",
        "formula": "context (outside the engine's reservation) + engine non-torch memory + NCCL x communicators",
        "formula+fragmentation": " + fragmentation x (activations + KV)",
        "assumption": "",
        "assumption:in_reserve": "the CUDA context and CUDA graphs live in the memory the engine leaves unreserved",
    },
    # ------------------------------------------------------------------------------------------------ training
    "compute.model_flops": {
        "quantity": "model FLOPs per token",
        "formula": "6 N + 6 s sum_l H (d_qk + d_v)  (= 6N + 12 l s h for standard attention)",
        "formula:adapter": "4 N + 6 N_adapter + 6 s sum_l H (d_qk + d_v)",
        "assumption": "N = weights a token multiplies (MoE: active experts; LM head in, embedding lookup out); attention counted over the full s x s matrix as PaLM/Megatron do",
        "assumption:adapter": "frozen base: no weight-gradient matmuls; attention counted over the full s x s matrix",
    },
    "compute.hardware_flops": {
        "quantity": "hardware FLOPs per token",
        "formula": "model",
        "formula:selective": "model + forward attention",
        "formula:full": "model + 2N + forward attention",
        "assumption": "recomputation re-executes the forward pass it saved memory on",
    },
    "compute.efficiency": {
        "quantity": "compute efficiency",
        "formula": "MAMF fraction x step efficiency x h / (h + k x ridge)",
        "formula+moe": " x MoE efficiency",
        "assumption": "",
    },
    "compute.achieved_rate": {
        "quantity": "achieved FLOP/s per GPU",
        "formula": "peak x efficiency",
        "formula:fp8": "bf16 peak x efficiency x fp8 speedup",
        "assumption": "",
        "assumption:fp8": "FP8 speeds up GEMMs by 1.3-1.5x, not 2x",
    },
    "compute.micro_batch_compute": {
        "quantity": "compute time per micro-batch",
        "formula": "hardware FLOPs x b x s / (tp x pp) / achieved FLOP/s",
        "assumption": "",
    },
    "compute.dequant": {
        "quantity": "dequantization time per micro-batch",
        "formula": "passes x weights / (tp x pp) x (stored bytes + 2 B bf16 written) / (bandwidth x efficiency); passes = 2 (forward, backward) or 3 with full recompute",
        "assumption": "one dequantization per weight per pass, not per token (bitsandbytes dequantizes a layer's weight before its matmul); independent of the micro-batch size",
    },
    "compute.micro_batches": {
        "quantity": "micro-batches per step (grad accumulation)",
        "formula": "ceil(global batch tokens / (s x b x dp))",
        "assumption": "",
        "assumption:assumed": "the default global batch (none was given): 4M tokens for pretraining, 128 sequences otherwise",
    },
    "compute.tp": {
        "quantity": "exposed tensor-parallel all-reduce time per micro-batch",
        "formula": "(4 or 6) x layers/pp x (latency + 2 (tp-1)/tp x b s h x 2 B / bandwidth)",
        "assumption": "tensor-parallel all-reduces sit on the critical path (no TP-communication overlap)",
    },
    "compute.a2a": {
        "quantity": "exposed MoE all-to-all time per micro-batch",
        "formula": "4 x MoE layers/pp x (ep-1)/ep x b s k h x 2 B / bandwidth x (1 - overlap)",
        "assumption": "part of the all-to-all hides behind compute (data/compute.yaml moe_all_to_all_overlap)",
    },
    "compute.p2p": {
        "quantity": "pipeline point-to-point time per micro-batch",
        "formula": "2 x v x (latency + b s h x 2 B / tp / bandwidth): activations forward, gradients back, once per chunk",
        "assumption": "not overlapped with compute (an upper bound; Megatron-LM can overlap it)",
    },
    "compute.dp": {
        "quantity": "exposed data-parallel communication per step",
        "formula": "all-reduce 2 (n-1)/n x grad bytes / bandwidth; ZeRO-3: 3 (n-1)/n x weight bytes per micro-batch; exposed = max(comm x (1 - overlap), comm - overlappable compute)",
        "assumption": "gradient reduction overlaps the backward pass (data/compute.yaml dp_overlap)",
    },
    "compute.bubble": {
        "quantity": "pipeline bubble",
        "formula": "(pp - 1) / (v x m)",
        "assumption": "v = 1 is plain 1F1B (DeepSpeed's schedule); v > 1 is Megatron-LM's interleaved schedule, which needs the micro-batches per step to be a multiple of pp",
    },
    "compute.offload": {
        "quantity": "offload time per step",
        "formula": "2 x shard x 2 B / PCIe + shard x CPU-Adam time (+ NVMe state traffic)",
        "assumption": "PCIe, NVMe and CPU-Adam rates are priors (data/compute.yaml)",
    },
    "compute.step": {
        "quantity": "step time",
        "formula": "(m + (pp - 1) / v) x t_micro-batch + exposed DP + offload",
        "assumption": "",
    },
    "compute.throughput": {"quantity": "training throughput", "formula": "dp x m x b x s / step time", "assumption": ""},
    "compute.mfu": {"quantity": "MFU", "formula": "tokens/s x model FLOPs per token / (GPUs x peak)", "assumption": ""},
    "compute.hfu": {"quantity": "HFU", "formula": "tokens/s x hardware FLOPs per token / (GPUs x peak)", "assumption": ""},
    "compute.goodput": {
        "quantity": "goodput",
        "formula": "1 / (1 + GPUs x interruptions per GPU-hour x hours lost per interruption)",
        "assumption": "synchronous training restarts from the last checkpoint on any failure",
    },
    "compute.training_time": {"quantity": "training time", "formula": "tokens / (tokens per second x goodput)", "assumption": ""},
    "compute.gpu_hours": {"quantity": "GPU-hours", "formula": "seconds x GPUs / 3600", "assumption": ""},
    "compute.energy": {
        "quantity": "GPU energy",
        "formula": "GPUs x TDP x power fraction x seconds",
        "assumption": "GPU boards only: no host, no cooling (PUE)",
    },
    "compute.facility_energy": {"quantity": "facility energy", "formula": "GPU energy x PUE", "assumption": ""},
    # ------------------------------------------------------------------------------------------------ inference
    "inference.batch": {
        "quantity": "sequences per pipeline-stage step",
        "formula": "ceil(concurrency / pp) (concurrency if pp = 1)",
        "assumption": "concurrency is per replica of tp x pp GPUs",
    },
    "inference.weight_read": {
        "quantity": "weight bytes read per decode step (per GPU)",
        "formula": "weights x (1 - embedding share - expert share + expert share x experts touched / E)",
        "assumption": "embedding rows are gathered, not streamed; MoE: E (1 - (1 - k/E)^B) experts touched, uniform routing",
    },
    "inference.kv_read": {
        "quantity": "KV-cache bytes read per decode step (per GPU)",
        "formula": "batch x (prompt + output/2) x KV bytes per token per GPU",
        "assumption": "mean context over the generation",
    },
    "inference.bandwidth": {
        "quantity": "effective memory bandwidth",
        "formula": "bandwidth x engine bandwidth efficiency",
        "formula+quantized": " x quantized-kernel efficiency",
        "assumption": "",
    },
    "inference.expert_bandwidth": {"quantity": "effective bandwidth of the routed experts", "formula": "bandwidth x MoE expert efficiency (capped by the engine's)", "assumption": "grouped GEMMs over a few tokens per expert stream below a dense matmul's rate"},
    "inference.rate": {
        "quantity": "effective FLOP/s per GPU",
        "formula": "peak(dtype) x engine FLOP efficiency",
        "formula+quantized": " x quantized-kernel efficiency",
        "assumption": "",
        "assumption:fp8": "FP8 GEMMs at 1.65x the BF16 rate (DeepGEMM FP8 vs measured BF16 GEMM ceiling)",
    },
    "inference.decode_memory": {"quantity": "decode memory time per step", "formula": "(weight bytes + KV bytes) / effective bandwidth", "assumption": ""},
    "inference.decode_compute": {
        "quantity": "decode compute time per step",
        "formula": "batch x (2 N + 2 attention(context)) / (tp x pp) / effective FLOP/s",
        "assumption": "",
    },
    "inference.tp": {
        "quantity": "tensor-parallel all-reduces per step",
        "formula": "2 x layers/pp x (latency + 2 (tp-1)/tp x batch x h x 2 B / bandwidth)",
        "assumption": "small-batch all-reduces are latency-bound",
    },
    "inference.overhead": {
        "quantity": "engine overhead per step",
        "formula": "step overhead + layer overhead x layers on the GPU",
        "assumption": "scheduler and sampling per step; kernel boundaries (launch, ramp-up, tail) in every layer",
    },
    "inference.decode_step": {"quantity": "decode step", "formula": "max(weight bytes, matmul FLOPs) + max(KV bytes, attention FLOPs) + all-reduces + overhead", "assumption": "weight matmuls and attention are separate kernels, each on its own roofline"},
    "inference.prefill_share": {
        "quantity": "prefill mixed into the decode rounds (mean per round)",
        "formula": "share f of rounds carrying prompts x (mixed round - decode round); f = max(1 - e^-a, a x prompt / token budget), a = requests/s x round",
        "assumption": "continuous batching with chunked prefill: waiting prompts fill each step's token budget after the running decodes (vLLM V1 scheduler, Sarathi-Serve)",
    },
    "inference.tpot": {"quantity": "time per output token", "formula": "mean round = (1 - f) decode round + f mixed round (the first token excluded)", "assumption": ""},
    "inference.prefill": {
        "quantity": "prefill of one prompt",
        "formula": "max(prompt x (2N + 2 attention(prompt/2)) / tp / FLOP/s, weights / bandwidth) + all-reduces + overhead",
        "assumption": "compute-bound for prompts longer than a few hundred tokens",
    },
    "inference.ttft": {
        "quantity": "time to first token",
        "formula": "own prefill round(s) + rho s / (2 (1 - rho)) behind other prompts (M/D/1) + rest of the round in flight + wait for a KV slot",
        "assumption": "steady state; rho = share of time spent on prompts; past the KV slots a closed loop waits (N / slots - 1) request lifetimes (Little's law)",
    },
    "inference.throughput": {"quantity": "output throughput", "formula": "replicas x requests/s per replica x output tokens; requests/s = running / (prefill + (output - 1) x TPOT)", "assumption": "Little's law"},
    "inference.max_concurrency": {
        "quantity": "max concurrency (per replica)",
        "formula": "floor((usable - non-KV memory per GPU) / (KV bytes per token per GPU x context))",
        "assumption": "",
    },
    "inference.saturation": {
        "quantity": "saturation concurrency",
        "formula": "B where B x compute per sequence = weight time + B x KV time (0 = never compute-bound)",
        "assumption": "",
    },
    # ------------------------------------------------------------------------------------------------ cost
    "cost.price": {
        "quantity": "price per GPU-hour",
        "formula": "catalog price",
        "formula:override": "the price given",
        "formula:instance": "the cheapest cloud instance, per GPU",
        "formula:amortized": "purchase / (years x 8760 x utilization) + power",
        "formula:unknown": "no price known",
        "assumption": "",
        "assumption:rental": "on-demand list price",
        "assumption:instance": "on-demand list price",
        "assumption:amortized": "owning the GPU: the server, host RAM, power infrastructure and staff are not included",
    },
    "cost.per_hour": {"quantity": "cost per hour", "formula": "GPUs x price per GPU-hour", "assumption": ""},
    "cost.total": {
        "quantity": "total cost",
        "formula": "cost per hour x seconds / 3600",
        "assumption": "GPU rental only: no storage, network egress or idle time",
    },
    "cost.per_mtok": {
        "quantity": "cost per million output tokens",
        "formula": "cost per hour / (tokens/s x 3600) x 1e6",
        "assumption": "at full, steady load",
    },
    "cost.energy": {"quantity": "GPU energy", "formula": "GPUs x TDP x power fraction x seconds", "assumption": "no PUE, no host"},
    # ------------------------------------------------------------------------------------------------ server
    "server.cpu_cores": {"quantity": "CPU cores per node", "formula:machine": "the machine's CPU cores (data/server.yaml machines)", "formula": "GPUs x cores per GPU, rounded up to a multiple of 4", "assumption": ""},
    "server.ram": {
        "quantity": "system RAM per node",
        "formula:machine": "the machine's memory (the catalog entry: RAM, or a Mac's unified memory)", "formula": "max(minimum, ratio x GPU memory + offloaded state), rounded up to 64 GiB",
        "assumption": "",
    },
    "server.storage": {
        "quantity": "local NVMe per node",
        "formula": "(bf16 weights + kept checkpoints / nodes + tokenised dataset) x headroom",
        "assumption": "",
    },
    "server.power": {"quantity": "wall power per node", "formula:machine": "the machine's maximum draw (data/server.yaml machines)", "formula": "GPUs x TDP x (1 + system overhead)", "assumption": ""},
}
