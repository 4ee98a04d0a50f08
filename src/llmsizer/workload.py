"""What the user wants to do (``Workload``) and how one candidate lays it out on GPUs (``Layout``).

Both are plain frozen dataclasses: the CLI builds a ``Workload`` from options, the planner enumerates ``Layout``s,
and ``memory`` / ``compute`` are pure functions of (model, gpu, workload, layout).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum

from llmsizer.errors import InvalidInputError


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
        return self in (Mode.lora, Mode.qlora)


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"
    fp8 = "fp8"


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


class LoraTargets(str, Enum):
    all_linear = "all"  # q, k, v, o, gate, up, down (QLoRA paper default)
    qv = "qv"  # q and v projections only (the original LoRA paper)


@dataclass(frozen=True)
class Workload:
    """The job, independent of hardware. ``None`` means "not given": resolved by defaults or searched."""

    mode: Mode
    precision: Precision = Precision.bf16
    quant: Quant = Quant.none
    optimizer: Optimizer = Optimizer.adamw
    # training
    seq_len: int = 2048
    micro_batch: int | None = None  # None: searched by the planner
    global_batch_tokens: int | None = None  # tokens per optimizer step across all replicas
    recompute: Recompute | None = None  # None: searched
    lora_rank: int = 16
    lora_targets: LoraTargets = LoraTargets.all_linear
    tokens: float | None = None  # training tokens (pretrain) or tokens seen (finetune: dataset x epochs)
    flash_attention: bool = True
    # inference
    prompt_tokens: int = 1024
    output_tokens: int = 512
    context: int | None = None  # KV tokens per sequence; default prompt + output
    concurrency: int = 16
    engine: Engine = Engine.vllm
    kv_dtype: str | None = None  # None: the compute precision

    def __post_init__(self) -> None:
        # accept plain strings for the closed choices ("lora", "nf4"...): library users and YAML cases pass them
        for name, enum in (("mode", Mode), ("precision", Precision), ("quant", Quant), ("optimizer", Optimizer),
                           ("engine", Engine), ("lora_targets", LoraTargets)):
            value = getattr(self, name)
            if not isinstance(value, enum):
                try:
                    object.__setattr__(self, name, enum(value))
                except ValueError:
                    choices = ", ".join(e.value for e in enum)
                    raise InvalidInputError(f"invalid {name.replace('_', ' ')} {value!r}; use one of {choices}") from None
        if self.recompute is not None and not isinstance(self.recompute, Recompute):
            object.__setattr__(self, "recompute", Recompute(self.recompute))
        for name in ("seq_len", "lora_rank", "prompt_tokens", "output_tokens", "concurrency"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.micro_batch is not None and self.micro_batch < 1:
            raise InvalidInputError(f"--batch must be at least 1, got {self.micro_batch}")
        if self.context is not None and self.context < 1:
            raise InvalidInputError(f"--context must be at least 1, got {self.context}")
        if self.tokens is not None and not self.tokens > 0:
            raise InvalidInputError(f"--tokens must be positive, got {self.tokens}")

    @property
    def context_tokens(self) -> int:
        """Tokens per sequence held in the KV cache."""
        return self.context if self.context is not None else self.prompt_tokens + self.output_tokens

    @property
    def kv_cache_dtype(self) -> str:
        return self.kv_dtype or ("bf16" if self.precision is Precision.fp8 else self.precision.value)

    def with_(self, **changes: object) -> "Workload":
        return replace(self, **changes)


@dataclass(frozen=True)
class Layout:
    """One way to lay a workload out on ``gpu_count = dp * tp * pp`` GPUs of one type.

    ``ep`` (expert parallelism) divides the data-parallel group for MoE experts and does not add GPUs.
    ``zero`` is the ZeRO stage (FSDP full-shard = 3, shard-grad-op = 2), sharding over ``dp``.
    ``virtual_stages`` (v) > 1 is the interleaved 1F1B pipeline schedule (Narayanan et al. 2021 sec. 2.2.2,
    Megatron-LM ``--num-layers-per-virtual-pipeline-stage``): each GPU holds v chunks of its stage's layers, which
    divides the bubble by v and multiplies the pipeline's point-to-point traffic by v.
    """

    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1
    zero: int = 0
    offload: Offload = Offload.none
    recompute: Recompute = Recompute.none
    micro_batch: int = 1
    gpus_per_node: int = 8
    sequence_parallel: bool = True  # Megatron SP whenever tp > 1
    virtual_stages: int = 1  # interleaved pipeline chunks per GPU; 1 = plain 1F1B (always when pp = 1)
    extras: dict = field(default_factory=dict, compare=False, hash=False)

    # No __post_init__ validation: the planner builds hundreds of thousands of these, and every degree it builds is
    # >= 1 by construction; user-pinned degrees are range-checked by the CLI (typer min=) and ``planner.plan``.

    @property
    def gpu_count(self) -> int:
        return self.dp * self.tp * self.pp

    @property
    def nodes(self) -> int:
        return -(-self.gpu_count // self.gpus_per_node)
