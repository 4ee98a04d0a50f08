"""What the user wants to do (``Workload``), within which limits (``Constraints``), and one way to lay it out on GPUs
(``Layout``). Plain frozen records (``llmsizer.record``): the CLI (or a library caller) builds the first two,
``resolve_defaults`` fills in what was not given, the search enumerates ``Layout``s, and ``memory`` / ``compute``
are pure functions of (model, gpu, workload, layout).

Errors name fields (``micro_batch``), never flags: ``cli/options.py`` says which flag each field is.
"""

from __future__ import annotations

from llmsizer.errors import InvalidInputError, invalid
from llmsizer.record import record, replace
from llmsizer.workload.choices import (
    Engine,
    Framework,
    LoraTargets,
    Mode,
    Offload,
    Optimizer,
    Precision,
    Quant,
    Recompute,
    SortKey,
)

_CHOICES = (("mode", Mode), ("precision", Precision), ("quant", Quant), ("optimizer", Optimizer), ("engine", Engine),
            ("lora_targets", LoraTargets))


@record
class Workload:
    """The job, independent of hardware. ``None`` means "not given": filled in by ``resolve_defaults`` (or, for
    ``micro_batch`` and ``recompute``, searched). ``assumed`` lists the fields ``resolve_defaults`` filled in."""

    mode: Mode
    precision: Precision = Precision.bf16
    quant: Quant = Quant.none  # QLoRA without one: nf4 (resolve_defaults)
    optimizer: Optimizer = Optimizer.adamw
    # training
    seq_len: int | None = None  # tokens per sequence; default by mode (resolve_defaults)
    micro_batch: int | None = None  # sequences per GPU per micro-batch; None: searched
    global_batch_tokens: int | None = None  # tokens per optimizer step across all replicas; default by mode
    recompute: Recompute | None = None  # None: searched
    lora_rank: int = 16
    lora_targets: LoraTargets = LoraTargets.all_linear
    tokens: float | None = None  # training tokens (pretrain) or tokens seen (finetune: dataset x epochs)
    flash_attention: bool = True
    framework: Framework | None = None  # the training stack; None: the mode's default (resolve_defaults)
    # inference
    prompt_tokens: int = 1024
    output_tokens: int = 512
    context: int | None = None  # KV tokens per sequence; default prompt + output
    concurrency: int = 1  # closed loop: requests in flight per replica (ignored when request_rate is given)
    engine: Engine = Engine.vllm
    kv_dtype: str | None = None  # None: the compute precision
    request_rate: float | None = None  # open loop: requests/s arriving at the whole deployment (Poisson)
    prefix_cache_hit: float = 0.0  # share of prompt tokens served from the engine's prefix cache
    batching: str | None = None  # "continuous" or "static"; None: the engine's own (data/serving.yaml)
    speculative_tokens: int = 0  # draft tokens verified per decode step (speculative decoding); 0: off
    speculative_acceptance: float | None = None  # the drafts' acceptance rate; None: compute/inference default
    assumed: tuple[str, ...] = ()  # fields filled in by resolve_defaults (so the output can say "assumed")

    def __post_init__(self) -> None:
        # accept plain strings for the closed choices ("lora", "nf4"...): library users and YAML cases pass them
        for name, enum in _CHOICES:
            value = getattr(self, name)
            if not isinstance(value, enum):
                try:
                    object.__setattr__(self, name, enum(value))
                except ValueError:
                    choices = ", ".join(e.value for e in enum)
                    raise InvalidInputError(f"invalid {{{name}}} {value!r}; use one of {choices}",
                                            fields=(name,)) from None
        if self.recompute is not None and not isinstance(self.recompute, Recompute):
            object.__setattr__(self, "recompute", Recompute(self.recompute))
        if self.framework is not None and not isinstance(self.framework, Framework):
            try:
                object.__setattr__(self, "framework", Framework(self.framework))
            except ValueError:
                choices = ", ".join(e.value for e in Framework)
                raise InvalidInputError(f"invalid {{framework}} {self.framework!r}; use one of {choices}",
                                        fields=("framework",)) from None
        for name in ("lora_rank", "prompt_tokens", "output_tokens", "concurrency"):
            if getattr(self, name) < 1:
                raise invalid(name, f"must be at least 1, got {getattr(self, name)}")
        for name in ("seq_len", "micro_batch", "context", "global_batch_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise invalid(name, f"must be at least 1, got {value}")
        if self.tokens is not None and not self.tokens > 0:
            raise invalid("tokens", f"must be positive, got {self.tokens}")
        if self.request_rate is not None and not 0 < self.request_rate < 1e9:
            raise invalid("request_rate", f"must be a positive number of requests/s, got {self.request_rate}")
        if self.batching not in (None, "continuous", "static"):
            raise InvalidInputError(f"invalid {{batching}} {self.batching!r}; use one of continuous, static",
                                    fields=("batching",))
        if not 0 <= self.speculative_tokens <= 64:
            raise invalid("speculative_tokens", f"must be 0-64 draft tokens, got {self.speculative_tokens}")
        if self.speculative_acceptance is not None and not 0 < self.speculative_acceptance < 1:
            raise invalid("speculative_acceptance", f"must be a rate in (0, 1), got {self.speculative_acceptance}")
        if not 0 <= self.prefix_cache_hit < 1:
            raise invalid("prefix_cache_hit", f"must be a share in [0, 1), got {self.prefix_cache_hit}")

    @property
    def context_tokens(self) -> int:
        """Tokens per sequence held in the KV cache."""
        return self.context if self.context is not None else self.prompt_tokens + self.output_tokens

    @property
    def kv_cache_dtype(self) -> str:
        return self.kv_dtype or ("bf16" if self.precision is Precision.fp8 else self.precision.value)

    def with_(self, **changes: object) -> Workload:
        return replace(self, **changes)


@record
class Constraints:
    """What the user pinned or bounded; ``None`` means searched (or, for ``max_gpus`` and ``deadline_s``, the
    mode's default: ``resolve_defaults``). ``deadline_s = NO_DEADLINE`` lifts the pretraining default."""

    gpu_ids: tuple[str, ...] = ()  # GPU types in scope; empty = the whole catalog
    gpu_count: int | None = None
    tp: int | None = None
    pp: int | None = None
    dp: int | None = None
    ep: int | None = None
    zero: int | None = None
    offload: Offload | None = None
    max_gpus: int | None = None
    gpus_per_node: int | None = None
    deadline_s: float | None = None
    budget_usd: float | None = None
    price_usd_per_gpu_hour: float | None = None
    ttft_target_s: float | None = None  # serving SLA: time to first token at ``sla_percentile``
    tpot_target_s: float | None = None  # serving SLA: time per output token at ``sla_percentile``
    sla_percentile: float | None = None  # None: data/serving.yaml sla.percentile
    disaggregate: bool = False  # serving: separate prefill and decode replicas (DistServe, Dynamo, SGLang PD)
    # serving: attention data-parallel over each replica's tp GPUs (Layout.attention_dp); None: both are searched
    # for MoE models (SGLang and TensorRT-LLM serve DeepSeek and Qwen3 MoE that way), tensor parallelism for dense
    attention_dp: bool | None = None
    sort: SortKey = SortKey.cost
    top: int = 5
    include_unfit: bool = False
    assumed: tuple[str, ...] = ()  # fields filled in by resolve_defaults

    def with_(self, **changes: object) -> Constraints:
        return replace(self, **changes)


NO_DEADLINE = float("inf")


@record
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
    prefill_replicas: int = 0  # serving, disaggregated: how many of the dp replicas only prefill (0: co-located)
    # serving: the tp GPUs of a replica run attention data-parallel (each GPU its own sequences with every KV head
    # and the whole attention weights) and the MLPs and experts tensor- or expert-parallel over all of them
    # (SGLang --enable-dp-attention, TensorRT-LLM enable_attention_dp, vLLM --data-parallel-size, its experts
    # expert-parallel with --enable-expert-parallel); the KV cache is then never replicated across ranks
    attention_dp: bool = False

    # No __post_init__ validation: the search builds many of these, and every degree it builds is >= 1 by
    # construction; pinned degrees are range-checked where they enter (the CLI's ranges, search.plan).

    @property
    def gpu_count(self) -> int:
        return self.dp * self.tp * self.pp

    @property
    def nodes(self) -> int:
        return -(-self.gpu_count // self.gpus_per_node)
