"""The closed choices of a job: what to do, in which precision, on which engine, ranked how (``str`` enums).

The CLI offers exactly these values; a library caller may pass the plain strings (``"lora"``, ``"nf4"``).
"""

from __future__ import annotations

from enum import Enum


class Mode(str, Enum):
    inference = "inference"
    finetune = "finetune"
    lora = "lora"
    qlora = "qlora"
    pretrain = "pretrain"

    @property
    def is_training(self) -> bool:
        return self is not Mode.inference

    @property
    def is_adapter(self) -> bool:
        return self is Mode.lora or self is Mode.qlora


class Precision(str, Enum):
    """Weights and compute: ``bf16`` / ``fp16`` / ``fp8`` compute with 16-bit weights (the optimizer decides whether
    an fp32 master copy exists: ``adamw`` keeps one, ``adamw-bf16`` does not); ``fp32`` everything in fp32;
    ``fp32-amp`` fp32 weights, gradients and optimizer states with matmuls under bf16 autocast (a model loaded in
    fp32 and trained with the Hugging Face Trainer's ``bf16=True``)."""

    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"
    fp8 = "fp8"
    fp32_amp = "fp32-amp"

    @property
    def compute(self) -> str:
        """The dtype the matmuls run in."""
        return "bf16" if self is Precision.fp32_amp else self.value


class Quant(str, Enum):
    """Weight storage formats. GGUF names follow llama.cpp (``q4_k_m``...)."""

    none = "none"
    int8 = "int8"
    int4 = "int4"  # GPTQ / AWQ, group size 128
    nf4 = "nf4"  # bitsandbytes NF4 with double quantization (QLoRA)
    fp8 = "fp8"
    q8_0 = "q8_0"
    q6_k = "q6_k"
    q5_k_m = "q5_k_m"
    q5_0 = "q5_0"
    q4_k_m = "q4_k_m"
    q4_k_s = "q4_k_s"
    q4_0 = "q4_0"
    q3_k_m = "q3_k_m"
    q2_k = "q2_k"


class Optimizer(str, Enum):
    adamw = "adamw"  # mixed precision: fp32 master weights + fp32 m and v
    adamw_bf16 = "adamw-bf16"  # pure bf16 weights and moments, no master copy
    adamw_8bit = "adamw-8bit"  # bitsandbytes 8-bit blockwise moments
    adafactor = "adafactor"
    sgd = "sgd"  # with momentum


class Recompute(str, Enum):
    none = "none"
    selective = "selective"
    full = "full"


class Offload(str, Enum):
    none = "none"
    cpu = "cpu"
    nvme = "nvme"


class Engine(str, Enum):
    vllm = "vllm"
    sglang = "sglang"
    trt_llm = "trt-llm"
    llama_cpp = "llama.cpp"
    transformers = "transformers"
    ollama = "ollama"  # llama.cpp runners with Ollama's defaults (data/serving.yaml)
    lmstudio = "lmstudio"  # LM Studio's llama.cpp engine


#: apps that serve with llama.cpp's kernels and memory rules (their own scheduling defaults: data/serving.yaml)
LLAMA_CPP_APPS = (Engine.ollama, Engine.lmstudio)
#: engines whose plans only a llama.cpp server runs (what Apple SoCs and CPU sockets are sized with)
LLAMA_CPP_ENGINES = (Engine.llama_cpp, *LLAMA_CPP_APPS)


class Framework(str, Enum):
    """The training stack: what layouts it can run, what it holds in memory and how fast its kernels are
    (``data/frameworks.yaml``). ``any`` searches every stack that runs the mode and labels each plan."""

    megatron = "megatron"  # Megatron-LM / NeMo
    deepspeed = "deepspeed"
    fsdp = "fsdp"  # PyTorch FSDP2 / torchtitan
    torchtune = "torchtune"
    transformers = "transformers"  # Hugging Face Trainer / TRL / PEFT (Axolotl, LLaMA-Factory)
    unsloth = "unsloth"
    any = "any"


class LoraTargets(str, Enum):
    all_linear = "all"  # q, k, v, o, gate, up, down (QLoRA paper default)
    qv = "qv"  # q and v projections only (the original LoRA paper)


class SortKey(str, Enum):
    """How plans are ranked: total cost (per token), total time, or fewest GPUs."""

    cost = "cost"
    time = "time"
    gpus = "gpus"
