"""Every default of a job, in one place: ``resolve_defaults(model, workload, constraints)`` fills in what was not
given and says so (``Message`` notes), so that the CLI, ``llmsizer.plan`` and ``estimate_memory`` size the same job
the same way.

The defaults are policies with a source, not hardware or model numbers:
- sequence length: 2,048 tokens (the Alpaca / QLoRA fine-tuning setting, Dettmers et al. 2023 sec. 4), 4,096 for
  pretraining (Llama 2's context, Touvron et al. 2023 sec. 2.2); never past the model's own context unless given;
- global batch: 4M tokens for pretraining (Llama 2, Touvron et al. 2023 sec. 2.2), doubled as the run grows to keep
  at least 1,024 tokens per GPU per step, up to 16M (``pretrain_global_batch_tokens``: Llama 3 405B trained at 16M
  tokens on 16,384 H100, Dubey et al. 2024 sec. 3.4.1 and Table 4); 128 sequences otherwise (Stanford Alpaca's
  train.py; Llama 2 SFT used 64 x 4096 tokens, sec. 3.1);
- QLoRA's frozen base in NF4 with double quantization (Dettmers et al. 2023 sec. 3);
- the training stack: Hugging Face Transformers (Trainer + PEFT) for fine-tuning, LoRA and QLoRA -- the stack the
  QLoRA paper released and that Axolotl, LLaMA-Factory and TRL build on -- and Megatron-LM for pretraining (the
  stack of the published large runs: Megatron-Turing NLG, BLOOM via Megatron-DeepSpeed, NeMo);
- pretraining tokens: the Chinchilla-optimal 20 per parameter (Hoffmann et al. 2022, Table 3);
- pretraining deadline: a year (a run that takes decades is not a plan worth ranking first because it is cheapest
  per token; ``NO_DEADLINE`` lifts it); GPUs searched: up to 64 (inference, LoRA, QLoRA), 512 (full fine-tuning),
  16,384 (pretraining: Llama 3 405B's cluster, Dubey et al. 2024 sec. 3.3).
"""

from __future__ import annotations

from llmsizer.explain import Message, message
from llmsizer.record import record
from llmsizer.specs.architecture import count_params
from llmsizer.specs.gpu import GpuSpec
from llmsizer.specs.model import ModelSpec
from llmsizer.units import DAY_S
from llmsizer.workload.choices import Framework, Mode, Quant
from llmsizer.workload.job import NO_DEADLINE, Constraints, Workload

SEQ_LEN = 2048
PRETRAIN_SEQ_LEN = 4096
PRETRAIN_GLOBAL_BATCH_TOKENS = 4 * 2**20
#: published large runs keep a step's batch at >= ~1k tokens per GPU as they scale: Llama 3 405B 16M tokens on
#: 16,384 H100 (1,024 per GPU) and 8,192 (2,048), Dubey et al. 2024 Table 4; PaLM 540B 4M on 6,144 TPU v4 chips (683;
#: Chowdhery et al. 2022 sec. 5); MT-NLG 530B 1,920 x 2,048 tokens on 2,240 A100 (1,755; Smith et al. 2022 sec. 3);
#: BLOOM 176B 2,048 x 2,048 on 384 A100 (10,923; BigScience 2022 sec. 3.4)
PRETRAIN_MIN_TOKENS_PER_GPU = 1024
#: Llama 3's largest batch, reached as its 405B run scaled (4M -> 8M -> 16M tokens, Dubey et al. 2024 sec. 3.4.1)
PRETRAIN_MAX_GLOBAL_BATCH_TOKENS = 16 * 2**20
FINETUNE_GLOBAL_BATCH_SEQUENCES = 128
GLOBAL_BATCH_SOURCE = ("Pretraining: Llama 2 used a global batch of 4M tokens (Touvron et al. 2023, sec. 2.2); Llama 3 "
                       "doubled it to 8M and 16M tokens as its 405B run scaled to 16,384 H100 (Dubey et al. 2024, sec. "
                       "3.4.1 and Table 4): the default doubles 4M while below 1,024 tokens per GPU, up to 16M. "
                       "Fine-tuning: Stanford Alpaca used 128 sequences per step (github.com/tatsu-lab/stanford_alpaca,"
                       " train.py hyperparameters); Llama 2 SFT used 64 x 4096 tokens (Touvron et al. 2023, sec. 3.1).")
QLORA_QUANT = Quant.nf4
CHINCHILLA_TOKENS_PER_PARAM = 20.0
PRETRAIN_DEADLINE_S = 365 * DAY_S
DEFAULT_FRAMEWORK = {Mode.finetune: Framework.transformers, Mode.lora: Framework.transformers,
                     Mode.qlora: Framework.transformers, Mode.pretrain: Framework.megatron}
#: serving a request rate: replicas of up to MAX_GPUS[inference] GPUs each, this many GPUs in all
SERVING_FLEET_MAX_GPUS = 4096
MAX_GPUS = {Mode.inference: 64, Mode.lora: 64, Mode.qlora: 64, Mode.finetune: 512, Mode.pretrain: 16384}


@record
class Job:
    """A job with every default filled in, and the notes that say which."""

    workload: Workload
    constraints: Constraints
    notes: tuple[Message, ...]


def default_global_batch_tokens(mode: Mode, seq_len: int) -> int:
    """Tokens per optimizer step when none is given: 4M tokens for pretraining, 128 sequences otherwise."""
    if mode is Mode.pretrain:
        return PRETRAIN_GLOBAL_BATCH_TOKENS
    return FINETUNE_GLOBAL_BATCH_SEQUENCES * seq_len


def pretrain_global_batch_tokens(n_gpus: int) -> int:
    """The default pretraining batch on ``n_gpus``: 4M tokens, doubled while below ``PRETRAIN_MIN_TOKENS_PER_GPU``
    per GPU, at most 16M (4M up to 4,096 GPUs, 8M to 8,192, 16M beyond)."""
    tokens = PRETRAIN_GLOBAL_BATCH_TOKENS
    while tokens < n_gpus * PRETRAIN_MIN_TOKENS_PER_GPU and tokens < PRETRAIN_MAX_GLOBAL_BATCH_TOKENS:
        tokens *= 2
    return tokens



def serves_with_llama_cpp(gpu: GpuSpec) -> bool:
    """Whether inference on ``gpu`` runs on llama.cpp (or the apps built on it) when no engine is named: Apple SoCs
    and CPU sockets, where vLLM, SGLang and TensorRT-LLM do not run (they need a CUDA or ROCm GPU)."""
    return gpu.kind != "gpu"

def batch_scales_with_gpus(w: Workload) -> bool:
    """Whether a resolved workload's global batch is the pretraining default, which grows with the GPU count."""
    return w.mode is Mode.pretrain and "global_batch_tokens" in w.assumed


def resolve_workload(model: ModelSpec, w: Workload) -> tuple[Workload, tuple[Message, ...]]:
    """``w`` with its defaults filled in for ``model`` (idempotent), and the notes that say what was assumed."""
    changes: dict[str, object] = {}
    notes: list[Message] = []
    if w.mode is Mode.qlora and w.quant is Quant.none:
        changes["quant"] = QLORA_QUANT
    if w.mode.is_training and w.framework is None:
        changes["framework"] = DEFAULT_FRAMEWORK[w.mode]
        notes.append(message("framework_default", framework=DEFAULT_FRAMEWORK[w.mode].value, mode=w.mode.value))
    seq_len = w.seq_len
    if seq_len is None:
        seq_len = PRETRAIN_SEQ_LEN if w.mode is Mode.pretrain else SEQ_LEN
        if w.mode.is_training and seq_len > model.max_context:
            seq_len = model.max_context
            notes.append(message("seq_len_capped", model_id=model.id, max_context=model.max_context))
        changes["seq_len"] = seq_len
    elif w.mode.is_training and seq_len > model.max_context and "seq_len" not in w.assumed:
        notes.append(message("seq_len_exceeds_context", seq_len=seq_len, model_id=model.id,
                             max_context=model.max_context))
    if w.mode.is_training and w.global_batch_tokens is None:
        changes["global_batch_tokens"] = default_global_batch_tokens(w.mode, seq_len)
    if w.mode is Mode.pretrain and w.tokens is None:
        tokens = CHINCHILLA_TOKENS_PER_PARAM * count_params(model).total
        changes["tokens"] = tokens
        notes.append(message("tokens_chinchilla", tokens=tokens, tokens_per_param=CHINCHILLA_TOKENS_PER_PARAM))
    if not w.mode.is_training and w.context_tokens > model.max_context:
        notes.append(message("context_exceeds", context=w.context_tokens, model_id=model.id,
                             max_context=model.max_context))
    if not changes:
        return w, tuple(notes)
    return w.with_(**changes, assumed=tuple(sorted(set(w.assumed) | set(changes)))), tuple(notes)


def resolve_constraints(w: Workload, c: Constraints) -> tuple[Constraints, tuple[Message, ...]]:
    """``c`` with the mode's GPU limit and (pretraining) deadline filled in; ``NO_DEADLINE`` becomes no limit
    (idempotent: a field in ``c.assumed`` is already resolved)."""
    changes: dict[str, object] = {}
    notes: list[Message] = []
    if c.max_gpus is None:
        changes["max_gpus"] = SERVING_FLEET_MAX_GPUS if w.request_rate is not None else MAX_GPUS[w.mode]
    if c.deadline_s == NO_DEADLINE:
        changes["deadline_s"] = None  # and "deadline_s" is marked resolved: no default is applied again
    elif c.deadline_s is None and w.mode is Mode.pretrain and "deadline_s" not in c.assumed:
        changes["deadline_s"] = PRETRAIN_DEADLINE_S
        notes.append(message("deadline_default", deadline_s=PRETRAIN_DEADLINE_S))
    if not changes:
        return c, tuple(notes)
    return c.with_(**changes, assumed=tuple(sorted(set(c.assumed) | set(changes)))), tuple(notes)


def resolve_defaults(model: ModelSpec, w: Workload, c: Constraints | None = None) -> Job:
    """The job as llmsizer sizes it: every default filled in, with a note for each assumption a user should see."""
    workload, notes = resolve_workload(model, w)
    constraints, cnotes = resolve_constraints(workload, c or Constraints())
    return Job(workload, constraints, notes + cnotes)


_RESOLVED: dict[tuple[int, int], tuple[ModelSpec, Workload, Workload]] = {}


def resolved(model: ModelSpec, w: Workload) -> Workload:
    """``resolve_workload(model, w)[0]``, memoized by identity (the estimators call this on every evaluation)."""
    key = (id(model), id(w))
    hit = _RESOLVED.get(key)
    if hit is not None and hit[0] is model and hit[1] is w:
        return hit[2]
    if len(_RESOLVED) > 4096:
        _RESOLVED.clear()
    r = resolve_workload(model, w)[0]
    _RESOLVED[key] = (model, w, r)
    _RESOLVED[(id(model), id(r))] = (model, r, r)
    return r
