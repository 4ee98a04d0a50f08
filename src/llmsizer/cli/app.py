"""The Typer CLI: every command's options, declared once (``Annotated[...]``); the bodies are in ``run.py``.

Exit codes (CONTRACT.md): 0 a plan fits, 1 valid input but nothing fits, 2 usage/catalog/data error. ``plan`` is
usually parsed without Typer (``fast.py``), from the table read off this module's ``plan`` signature.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from llmsizer import __version__
from llmsizer.cli import run
from llmsizer.cli.choices import Format, Lang, ListFormat
from llmsizer.cli.edge import Root, error, run_guarded, stdout_closed
from llmsizer.errors import EXIT_USAGE
from llmsizer.workload import (
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


class _StdoutClosed(Exception):
    """stdout's reader went away while Typer was running (click would exit 1 for it: not our contract)."""


class _Interrupted(Exception):
    """Ctrl-C while Typer was running (click would exit 130 silently: we say "aborted", as ``plan`` does)."""


class _Group(TyperGroup):
    """The root command group: applies the error -> exit-code mapping for the console script and CliRunner alike."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        argv = list(args) if args is not None else sys.argv[1:]
        sys.exit(_guarded(lambda: super(_Group, self).main(
            args=argv, prog_name=prog_name or "llmsizer", standalone_mode=False, **extra), debug="--debug" in argv))

    # parsing (``--help`` prints there) and running: the two places click's own EPIPE and Ctrl-C handling wraps
    def make_context(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with _outcomes():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        with _outcomes():
            return super().invoke(ctx)


@contextlib.contextmanager
def _outcomes() -> Iterator[None]:
    """A closed stdout and Ctrl-C leave click as exceptions it does not translate (see ``_guarded``)."""
    try:
        yield
    except BrokenPipeError:
        raise _StdoutClosed() from None
    except KeyboardInterrupt:
        raise _Interrupted() from None


def _usage_errors() -> tuple[type[Exception], ...]:
    """Typer's usage-error base class: ``typer.TyperException`` since Typer vendors click, click's before."""
    if hasattr(typer, "TyperException"):
        return (typer.TyperException,)
    import click

    return (click.ClickException,)


_USAGE_ERRORS = _usage_errors()


def _guarded(call, *, debug: bool) -> int:
    """``entry.run_guarded`` plus Typer's own outcomes: exits, usage errors (bad option or value), aborts."""

    def typer_call():
        try:
            return call()
        except typer.Exit as e:
            return e.exit_code
        except _USAGE_ERRORS as e:  # click usage errors: bad option, bad value, missing argument
            msg = e.format_message() if hasattr(e, "format_message") else str(e)
            msg = re.sub(r"\s+", " ", msg).strip()
            error(f"{msg}{_allowed(e, msg)} (see 'llmsizer --help')")
            return getattr(e, "exit_code", EXIT_USAGE) or EXIT_USAGE
        except (typer.Abort, _Interrupted):
            raise KeyboardInterrupt from None
        except _StdoutClosed:
            return stdout_closed()

    return run_guarded(typer_call, debug=debug)


def _allowed(e: Exception, msg: str) -> str:
    """"; allowed: a whole number from 1 to 1000000" for a number option whose message does not say its range (a
    value of thousands of digits is "unable to parse" before it is out of range)."""
    param = getattr(e, "param", None)
    lo, hi = getattr(param, "min", None), getattr(param, "max", None)
    if (lo is None and hi is None) or any(w in msg for w in ("range", "less than", "greater than")):
        return ""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    kind = "a whole number" if annotation is int else "a number"
    if lo is not None and hi is not None:
        return f"; allowed: {kind} from {_num(lo)} to {_num(hi)}"
    return f"; allowed: {kind} of at least {_num(lo)}" if lo is not None else f"; allowed: {kind} of at most {_num(hi)}"


def _num(v: float) -> str:
    return f"{int(v):,}" if float(v).is_integer() else f"{v:g}"


app = typer.Typer(
    name="llmsizer",
    cls=_Group,
    help="What servers do I need to serve, fine-tune or pretrain an LLM, how long will it take, what will it cost?"
    "\n\nEvery figure is derived from a cited formula; add --explain to see how (--explain-all for every step).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)


CatalogOpt = Annotated[
    Optional[list[Path]],
    typer.Option("--catalog", help="Extra GPU/model/instance catalog, same schema as data/*.yaml (repeatable)."),
]


def _version(value: bool) -> None:
    if value:
        print(f"llmsizer {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback for unexpected errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the result (no notes on stderr).")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print search statistics on stderr.")] = False,
) -> None:
    """Size LLM inference, fine-tuning (full, LoRA, QLoRA) and pretraining on real hardware."""
    ctx.obj = Root(debug=debug, quiet=quiet, verbose=verbose)


# ---------------------------------------------------------------------------------------------------- plan


@app.command(no_args_is_help=False)
def plan(
    ctx: typer.Context,
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help="Catalog id or alias (llama-3.1-70b), a size (7b, 70B, 1.5b), a config.json / "
        "safetensors / GGUF path, or org/name on the Hugging Face Hub.")] = None,
    params: Annotated[Optional[str], typer.Option(
        help="A bare parameter count (7e9, 7B) instead of --model; a Llama-style architecture is derived.")] = None,
    mode: Annotated[Mode, typer.Option(help="What to do with the model.")] = Mode.inference,
    framework: Annotated[Optional[Framework], typer.Option(
        help="Training stack: what layouts it runs, what it keeps in memory, how fast its kernels are; default "
        "transformers (fine-tuning, LoRA, QLoRA) or megatron (pretrain); any compares them all.")] = None,
    precision: Annotated[Precision, typer.Option(
        help="Weights and compute: bf16/fp16/fp8 (16-bit weights), fp32, or fp32-amp (fp32 weights under bf16 "
        "autocast).")] = Precision.bf16,
    quant: Annotated[Optional[Quant], typer.Option(help="Weight quantization (inference; QLoRA uses nf4). Default: what a model file stores, else the app's default download (ollama: q4_k_m), else none (16-bit).")] = None,
    optimizer: Annotated[Optimizer, typer.Option(help="Optimizer; adamw keeps fp32 master weights.")] = Optimizer.adamw,
    seq_len: Annotated[Optional[int], typer.Option(min=1, max=10_000_000, help="Training sequence length [tokens]; default 2048 (4096 for pretrain).")] = None,
    batch: Annotated[Optional[int], typer.Option(min=1, max=65536, help="Training micro-batch per GPU [sequences]; searched if not given.")] = None,
    global_batch: Annotated[Optional[str], typer.Option(help="Per optimizer step over all GPUs, in tokens (4M, 4Mtok) or sequences (64seq); default 4M tokens for pretraining, 128 sequences otherwise.")] = None,
    recompute: Annotated[Optional[Recompute], typer.Option(help="Activation checkpointing; searched if not given.")] = None,
    lora_rank: Annotated[int, typer.Option(min=1, max=65536, help="LoRA/QLoRA rank.")] = 16,
    lora_targets: Annotated[LoraTargets, typer.Option(help="LoRA target modules: all linear layers, or q and v only.")] = LoraTargets.all_linear,
    tokens: Annotated[Optional[str], typer.Option(help="Training tokens (300B, 1T, 2e12). Pretrain default: 20 per parameter (Chinchilla).")] = None,
    dataset_tokens: Annotated[Optional[str], typer.Option(help="Fine-tuning dataset size [tokens]; with --epochs gives --tokens.")] = None,
    epochs: Annotated[float, typer.Option(min=0.01, max=1000, help="Passes over --dataset-tokens.")] = 1.0,
    prompt_tokens: Annotated[int, typer.Option(min=1, max=10_000_000, help="Inference: input tokens per request.")] = 1024,
    output_tokens: Annotated[int, typer.Option(min=1, max=10_000_000, help="Inference: generated tokens per request.")] = 512,
    context: Annotated[Optional[int], typer.Option(min=1, max=100_000_000, help="Inference: KV-cache tokens per sequence (default prompt + output).")] = None,
    concurrency: Annotated[Optional[int], typer.Option(min=1, max=1_000_000, help="Inference: requests in flight per replica, each client sending its next when the last ends (closed loop, as serving benchmarks measure); default 1 (one user with a full context), and the plan says how many fit.")] = None,
    request_rate: Annotated[Optional[str], typer.Option(help="Inference: requests arriving at the deployment (Poisson), per second (50, 50/s, 3000/min); with --ttft-target / --tpot-target, the replicas are sized to meet them.")] = None,
    ttft_target: Annotated[Optional[str], typer.Option(help="Inference SLA: time to first token at --percentile (500ms, 1.5s).")] = None,
    tpot_target: Annotated[Optional[str], typer.Option(help="Inference SLA: time per output token after the first, at --percentile (50ms).")] = None,
    percentile: Annotated[Optional[str], typer.Option(help="Percentile of the latency targets (p50, p90, p95, p99); default p95.")] = None,
    prefix_cache_hit: Annotated[Optional[float], typer.Option(min=0.0, max=0.99, help="Inference: share of prompt tokens served from the engine's prefix cache (0-0.99).")] = None,
    sweep: Annotated[bool, typer.Option(help="Inference: show the top plan's latency and throughput over a range of concurrencies.")] = False,
    speculative_tokens: Annotated[Optional[int], typer.Option(min=0, max=64, help="Inference: speculative decoding, draft tokens verified per step (EAGLE/MTP-style drafts; their own cost is not counted).")] = None,
    speculative_acceptance: Annotated[Optional[float], typer.Option(min=0.01, max=0.99, help="Inference: the drafts' token acceptance rate (default 0.7).")] = None,
    disaggregate: Annotated[bool, typer.Option(help="Inference with --request-rate: separate prefill and decode replicas (DistServe, Dynamo, SGLang PD), each pool sized for its own target.")] = False,
    engine: Annotated[Optional[Engine], typer.Option(help="Inference runtime whose measured efficiency and scheduling to assume (ollama and lmstudio run llama.cpp with their own defaults); default vllm, llama.cpp on Apple silicon and CPUs.")] = None,
    kv_dtype: Annotated[Optional[str], typer.Option(help="KV-cache dtype: bf16, fp16, fp8, int8 (default: the precision).")] = None,
    gpu: Annotated[Optional[list[str]], typer.Option("--gpu", "-g", help="Only these GPU types (repeatable or comma-separated).")] = None,
    gpus: Annotated[Optional[int], typer.Option(min=1, max=1_000_000, help="Exactly this many GPUs in total.")] = None,
    tp: Annotated[Optional[int], typer.Option(min=1, max=1024, help="Tensor-parallel degree.")] = None,
    pp: Annotated[Optional[int], typer.Option(min=1, max=1024, help="Pipeline-parallel degree.")] = None,
    dp: Annotated[Optional[int], typer.Option(min=1, max=1_000_000, help="Data-parallel degree.")] = None,
    ep: Annotated[Optional[int], typer.Option(min=1, max=1024, help="Expert-parallel degree (MoE).")] = None,
    attention_dp: Annotated[Optional[bool], typer.Option("--attention-dp/--no-attention-dp", help="Inference: run attention data-parallel over each replica's --tp GPUs (each its own sequences, every KV head, whole attention weights) and the MLPs/experts over all of them, as SGLang --enable-dp-attention and TensorRT-LLM enable_attention_dp do, so the KV cache is not replicated (MLA, few KV heads); or only tensor-parallel attention. Default: both are searched for MoE models, tensor parallelism for dense ones.")] = None,
    zero: Annotated[Optional[int], typer.Option(min=0, max=3, help="ZeRO stage (FSDP full-shard = 3, shard-grad-op = 2).")] = None,
    offload: Annotated[Optional[Offload], typer.Option(help="Optimizer/parameter offload.")] = None,
    max_gpus: Annotated[Optional[int], typer.Option(min=1, max=1_000_000, help="Search up to this many GPUs (default 64 inference, LoRA and QLoRA; 512 finetune; 16384 pretrain).")] = None,
    gpus_per_node: Annotated[Optional[int], typer.Option(min=1, max=1024, help="GPUs per server (default: the GPU's usual server).")] = None,
    deadline: Annotated[Optional[str], typer.Option(help="Finish training within this time (30d, 12h); pretraining defaults to 365d, 'none' lifts it.")] = None,
    budget: Annotated[Optional[float], typer.Option(min=0.01, help="Spend at most this many USD on the training run.")] = None,
    price_per_gpu_hour: Annotated[Optional[float], typer.Option(min=0.0001, help="Override the catalog's USD per GPU-hour.")] = None,
    sort: Annotated[SortKey, typer.Option(help="Rank by total cost (default), time, or fewest GPUs.")] = SortKey.cost,
    top: Annotated[int, typer.Option(min=1, max=1000, help="How many plans to show.")] = 5,
    all_: Annotated[bool, typer.Option("--all", help="Also show configurations that do not fit.")] = False,
    explain: Annotated[bool, typer.Option(help="Show how the key figures of the top plan were derived: formula and source of each (JSON: every step).")] = False,
    explain_all: Annotated[bool, typer.Option(help="Show how every figure of the top plan was derived: every step, its inputs and assumptions.")] = False,
    export: Annotated[Optional[str], typer.Option(help="Print the top plan as a launch config: deepspeed, accelerate, megatron, vllm, sglang, llama.cpp, slurm, k8s.")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
    lang: Annotated[Lang, typer.Option(help="Label language for table, markdown and html.")] = Lang.en,
    catalog: CatalogOpt = None,
) -> None:
    """Size one workload: ranked server configurations, best first.

    Examples:\n
      llmsizer plan --model llama-3.1-70b --mode finetune\n
      llmsizer plan --model 7b --mode qlora --gpu rtx-4090\n
      llmsizer plan --model 405b --mode pretrain --tokens 15T --format json
    """
    options = dict(locals())
    del options["ctx"]
    raise typer.Exit(run_plan_command(options, ctx.obj or Root()))


# -------------------------------------------------------------------------------------------- models, gpus


@app.command()
def models(
    model_id: Annotated[Optional[str], typer.Argument(metavar="[ID]", help="Show one model in full.")] = None,
    family: Annotated[Optional[str], typer.Option(help="Only this family (llama, qwen2, mixtral...).")] = None,
    min_params: Annotated[Optional[str], typer.Option(help="Only models with at least this many parameters (7B).")] = None,
    max_params: Annotated[Optional[str], typer.Option(help="Only models with at most this many parameters (70B).")] = None,
    fmt: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = ListFormat.table,
    lang: Annotated[Lang, typer.Option(help="Label language.")] = Lang.en,
    catalog: CatalogOpt = None,
) -> None:
    """List the model catalog, or show one model's architecture and parameter count."""
    raise typer.Exit(run.run_models(model_id, family, min_params, max_params, fmt.value, lang.value, catalog or []))


@app.command()
def gpus(
    gpu_id: Annotated[Optional[str], typer.Argument(metavar="[ID]", help="Show one GPU in full.")] = None,
    vendor: Annotated[Optional[str], typer.Option(help="Only this vendor (nvidia, amd, intel, huawei, apple, cpu).")] = None,
    min_memory: Annotated[Optional[float], typer.Option(min=0, help="Only GPUs with at least this much memory [GB].")] = None,
    fmt: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = ListFormat.table,
    lang: Annotated[Lang, typer.Option(help="Label language.")] = Lang.en,
    catalog: CatalogOpt = None,
) -> None:
    """List the accelerator catalog (dense FLOP/s, memory, bandwidth, price), or show one GPU."""
    raise typer.Exit(run.run_gpus(gpu_id, vendor, min_memory, fmt.value, lang.value, catalog or []))


@app.command("fit")
def fit_cmd(
    gpu: Annotated[str, typer.Option("--gpu", "-g", help="The GPU you have (catalog id or alias).")],
    gpus: Annotated[int, typer.Option(min=1, max=4096, help="How many of them.")] = 1,
    mode: Annotated[Mode, typer.Option(help="inference, lora, qlora or finetune.")] = Mode.inference,
    context: Annotated[Optional[int], typer.Option(min=1, max=100_000_000, help="Inference: tokens per sequence to size for (default 1,536).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=1_000_000, help="Inference: sequences served at once.")] = 1,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Only this model: its longest context and largest batch.")] = None,
    family: Annotated[Optional[str], typer.Option(help="Only this model family.")] = None,
    fmt: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = ListFormat.table,
    lang: Annotated[Lang, typer.Option(help="Label language.")] = Lang.en,
    catalog: CatalogOpt = None,
) -> None:
    """What runs on hardware you already have: each catalog model's best precision, longest context, speed.

    Examples:\n
      llmsizer fit --gpu rtx-4090\n
      llmsizer fit --gpu rtx-3090 --gpus 2 --mode qlora\n
      llmsizer fit --gpu m2-ultra --model llama-3.1-70b
    """
    raise typer.Exit(run.run_fit(gpu, gpus, mode, context, concurrency, model, family, fmt.value, lang.value,
                                 catalog or []))


@app.command()
def validate(
    category: Annotated[Optional[str], typer.Option(help="Only memory, training or inference cases.")] = None,
    fmt: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = ListFormat.table,
    lang: Annotated[Lang, typer.Option(help="Label language.")] = Lang.en,
    catalog: CatalogOpt = None,
) -> None:
    """Every shipped reference case (a published figure) against llmsizer's prediction, with the error."""
    raise typer.Exit(run.run_validate(category, fmt.value, lang.value, catalog or []))


def run_plan_command(options: dict, root: Root) -> int:
    """``plan``'s body (a module attribute, so tests can watch what Typer hands it)."""
    return run.run_plan(options, root)


__all__ = ["app", "root", "plan", "run_plan_command"]
