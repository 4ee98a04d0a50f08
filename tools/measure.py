#!/usr/bin/env python3
"""Measure the memory of one real training step (and a KV cache) on small, randomly initialised models.

Calibration data for llmsizer (issue 8). Builds tiny Hugging Face ``transformers`` models *from config objects*
(nothing is downloaded), runs forward + loss + backward + AdamW step on random token ids and records what each
memory bucket actually held:

* ``param_bytes``, ``grad_bytes``: sum of ``nbytes`` over the (deduplicated: tied weights count once) parameters and
  their ``.grad`` after backward;
* ``optimizer_bytes``: sum of ``nbytes`` over every tensor in ``torch.optim.AdamW(...).state`` after one step
  (``exp_avg``, ``exp_avg_sq`` and the per-tensor ``step`` counter);
* ``saved_activation_bytes``: bytes of the distinct storages autograd saved for backward, collected with
  ``torch.autograd.graph.saved_tensors_hooks``, still held at the end of the forward pass (loss included). Storages
  that belong to a parameter or a buffer are excluded (``F.linear`` saves its weight: that is not an activation);
  several views of one storage count once, at the storage's full size, since a view keeps all of it alive.
  Split by where the save happened: ``saved_embedding_bytes`` (token/position embeddings),
  ``saved_head_bytes`` (final norm, LM head and the loss), ``saved_layers_bytes`` (the decoder stack, the rest);
* ``saved_activation_peak_bytes``: the most saved bytes alive at any moment of forward + backward (with gradient
  checkpointing this is where the recompute of one layer lands on top of the checkpointed layer inputs);
* ``kv_cache_bytes``: after a ``use_cache=True`` forward of the same batch in eval mode, the ``nbytes`` of every key and
  value tensor in ``past_key_values``; ``kv_cache_bytes_per_token = kv_cache_bytes / (batch * seq_len)``.

CPU path (default): all of the above; ``--gpu``: on a CUDA device, the allocator's peak for a whole training step
(``torch.cuda.max_memory_allocated``) and the training tokens/s, written to a separate file.

Usage::

    pip install torch transformers pyyaml
    python tools/measure.py --out data/measurements/cpu-saved-tensors.yaml
    python tools/measure.py --gpu --out data/measurements/gpu-peak.yaml        # needs CUDA
    python tools/measure.py --only llama,mixtral --dtypes bf16 --quick        # a subset

See docs/measurements.md for what the figures mean and what they do not.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import os
import platform
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

# --------------------------------------------------------------------------------------------- architectures

# Token/position shapes every model is run at: (seq_len, micro_batch).
SHAPES: tuple[tuple[int, int], ...] = ((128, 2), (512, 1))
QUICK_SHAPES: tuple[tuple[int, int], ...] = ((64, 2),)
DTYPES = ("fp32", "bf16")
OPTIMIZER = "torch.optim.AdamW(lr=1e-4), other arguments default"
ATTN = ("eager", "sdpa")


@dataclass(frozen=True)
class Arch:
    """One model family at one size: how to build its ``transformers`` config and read it back as a ModelSpec."""

    key: str  # record id prefix, e.g. "llama-s1"
    model_type: str
    config: Callable[[], Any]  # zero-argument: builds the transformers config object
    extra: dict[str, Any] = field(default_factory=dict)  # ModelSpec fields a config does not say (norm, biases...)
    dtypes: tuple[str, ...] | None = None  # None: every dtype asked for; else only these (unless --all-dtypes)


def _no_dropout() -> dict[str, float]:
    return {"attention_dropout": 0.0}


# bf16 matmuls (their backward above all) run ~40x slower than fp32 on a CPU without AVX512-BF16/AMX, so by default
# the larger sizes run in bf16 only for one dense and one MoE family; --all-dtypes runs every size in every dtype.
BF16_LARGE = ("llama-s2", "mixtral-s2")


def _archs() -> list[Arch]:
    import transformers as tf

    common = dict(max_position_embeddings=1024, rope_theta=10000.0)
    out: list[Arch] = []

    # Llama: gated SiLU MLP, RMSNorm, GQA, untied.
    for key, h, L, H, K, f, V in (("llama-s1", 128, 2, 4, 2, 344, 1000), ("llama-s2", 256, 4, 8, 2, 688, 8000)):
        out.append(Arch(key, "llama", lambda h=h, L=L, H=H, K=K, f=f, V=V: tf.LlamaConfig(
            hidden_size=h, num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=K, intermediate_size=f,
            vocab_size=V, tie_word_embeddings=False, **common, **_no_dropout())))

    # GPT-2: plain GELU MLP, LayerNorm with bias, biases everywhere, learned positions, tied embeddings.
    for key, h, L, H, V, p in (("gpt2-s1", 128, 2, 4, 1000, 0.0), ("gpt2-s2", 256, 4, 8, 8000, 0.0),
                               ("gpt2-s2-dropout", 256, 4, 8, 8000, 0.1)):
        out.append(Arch(key, "gpt2", lambda h=h, L=L, H=H, V=V, p=p: tf.GPT2Config(
            n_embd=h, n_layer=L, n_head=H, n_inner=None, vocab_size=V, n_positions=1024, tie_word_embeddings=True,
            resid_pdrop=p, embd_pdrop=p, attn_pdrop=p),
            extra=dict(norm="layernorm", qkv_bias=True, attn_out_bias=True, mlp_bias=True,
                       position_embedding="learned", dropout=p)))

    # Mistral: Llama + sliding-window attention (s1: MQA, window larger than any run; s2: window 128 < seq 512).
    for key, h, L, H, K, f, V, w in (("mistral-s1", 128, 2, 4, 1, 352, 1000, 4096),
                                     ("mistral-s2", 256, 3, 8, 2, 704, 8000, 128)):
        out.append(Arch(key, "mistral", lambda h=h, L=L, H=H, K=K, f=f, V=V, w=w: tf.MistralConfig(
            hidden_size=h, num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=K, intermediate_size=f,
            vocab_size=V, sliding_window=w, tie_word_embeddings=False, **common, **_no_dropout())))

    # Qwen2: q/k/v biases; s1 tied (like Qwen2-0.5B), s2 untied with a 32k vocabulary.
    for key, h, L, H, K, f, V, tied in (("qwen2-s1", 128, 2, 4, 2, 352, 1000, True),
                                        ("qwen2-s2", 384, 3, 6, 2, 1024, 32000, False)):
        out.append(Arch(key, "qwen2", lambda h=h, L=L, H=H, K=K, f=f, V=V, tied=tied: tf.Qwen2Config(
            hidden_size=h, num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=K, intermediate_size=f,
            vocab_size=V, tie_word_embeddings=tied, use_sliding_window=False, **common, **_no_dropout()),
            extra=dict(qkv_bias=True)))

    # Qwen3: per-head q/k RMSNorm, head_dim set explicitly (not hidden/heads).
    for key, h, L, H, K, d, f, V in (("qwen3-s1", 128, 2, 4, 2, 64, 384, 1000),
                                     ("qwen3-s2", 256, 3, 8, 4, 64, 768, 8000)):
        out.append(Arch(key, "qwen3", lambda h=h, L=L, H=H, K=K, d=d, f=f, V=V: tf.Qwen3Config(
            hidden_size=h, num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=K, head_dim=d,
            intermediate_size=f, vocab_size=V, tie_word_embeddings=False, use_sliding_window=False,
            **common, **_no_dropout()),
            extra=dict(qk_norm="head")))

    # Gemma: GeGLU (tanh GELU) gated MLP, tied, MQA, head_dim 64 x heads != hidden.
    for key, h, L, H, K, d, f, V in (("gemma-s1", 128, 2, 4, 1, 64, 512, 1000),
                                     ("gemma-s2", 256, 3, 4, 1, 128, 1024, 16000)):
        out.append(Arch(key, "gemma", lambda h=h, L=L, H=H, K=K, d=d, f=f, V=V: tf.GemmaConfig(
            hidden_size=h, num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=K, head_dim=d,
            intermediate_size=f, vocab_size=V, tie_word_embeddings=True, **common, **_no_dropout()),
            extra=dict(activation="gelu_pytorch_tanh")))

    # Mixtral: MoE, every layer routed, top-2.
    for key, h, L, H, K, f, V, E, k in (("mixtral-s1", 128, 2, 4, 2, 256, 1000, 4, 2),
                                        ("mixtral-s2", 256, 2, 8, 2, 512, 8000, 8, 2)):
        out.append(Arch(key, "mixtral", lambda h=h, L=L, H=H, K=K, f=f, V=V, E=E, k=k: tf.MixtralConfig(
            hidden_size=h, num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=K, intermediate_size=f,
            vocab_size=V, num_local_experts=E, num_experts_per_tok=k, sliding_window=None,
            tie_word_embeddings=False, router_aux_loss_coef=0.0, output_router_logits=False,
            **common, **_no_dropout())))

    # Qwen2-MoE: routed experts + one gated shared expert, q/k/v biases.
    for key, h, L, H, K, fe, fs, V, E, k in (("qwen2-moe-s1", 128, 2, 4, 2, 128, 256, 1000, 8, 2),
                                            ("qwen2-moe-s2", 256, 2, 8, 4, 192, 512, 8000, 16, 4)):
        out.append(Arch(key, "qwen2_moe", lambda h=h, L=L, H=H, K=K, fe=fe, fs=fs, V=V, E=E, k=k: tf.Qwen2MoeConfig(
            hidden_size=h, num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=K, intermediate_size=fs,
            moe_intermediate_size=fe, shared_expert_intermediate_size=fs, vocab_size=V, num_experts=E,
            num_experts_per_tok=k, decoder_sparse_step=1, mlp_only_layers=[], norm_topk_prob=False,
            tie_word_embeddings=False, use_sliding_window=False, router_aux_loss_coef=0.0,
            output_router_logits=False, **common, **_no_dropout()),
            extra=dict(qkv_bias=True)))
    return [a if a.key.endswith("-s1") or a.key in BF16_LARGE else
            Arch(a.key, a.model_type, a.config, a.extra, dtypes=("fp32",)) for a in out]


def _cfg(cfg: Any, *names: str, default: Any = None) -> Any:
    for n in names:
        v = getattr(cfg, n, None)
        if v is not None:
            return v
    return default


def architecture_block(arch: Arch, cfg: Any) -> dict[str, Any]:
    """The instantiated config, read back with llmsizer ``ModelSpec`` field names (plus ``model_type``).

    Only ``model_type`` is not a ModelSpec field; ``id``, ``name``, ``family``, ``published_params``,
    ``max_context`` and ``source`` are left for the reader to fill.
    """
    h = _cfg(cfg, "hidden_size", "n_embd")
    L = _cfg(cfg, "num_hidden_layers", "n_layer")
    H = _cfg(cfg, "num_attention_heads", "n_head")
    K = _cfg(cfg, "num_key_value_heads", default=H)
    d = _cfg(cfg, "head_dim", default=h // H)
    V = cfg.vocab_size
    out: dict[str, Any] = {"model_type": arch.model_type, "layers": L, "hidden_size": h, "heads": H, "kv_heads": K,
                           "head_dim": d}
    if arch.model_type == "gpt2":
        out["ffn_size"] = cfg.n_inner or 4 * h
        out["ffn_kind"] = "plain"
        out["activation"] = cfg.activation_function
        out["learned_positions"] = cfg.n_positions
    elif arch.model_type == "qwen2_moe":
        out["ffn_size"] = cfg.intermediate_size
        out["ffn_kind"] = "gated"
        out["activation"] = cfg.hidden_act
    else:
        out["ffn_size"] = cfg.intermediate_size
        out["ffn_kind"] = "gated"
        out["activation"] = _cfg(cfg, "hidden_activation", "hidden_act")
    out["vocab_size"] = V
    out["tied_embeddings"] = bool(getattr(cfg, "tie_word_embeddings", False))
    out["attention"] = "mha" if K == H else ("mqa" if K == 1 else "gqa")
    sw = getattr(cfg, "sliding_window", None)
    if arch.model_type in ("qwen2", "qwen3", "qwen2_moe") and not getattr(cfg, "use_sliding_window", False):
        sw = None
    if sw is not None:
        out["sliding_window"] = sw
        out["sliding_window_layers"] = L
    if arch.model_type == "mixtral":
        out["moe"] = {"experts": cfg.num_local_experts, "experts_per_token": cfg.num_experts_per_tok,
                      "expert_ffn_size": cfg.intermediate_size}
    if arch.model_type == "qwen2_moe":
        out["moe"] = {"experts": cfg.num_experts, "experts_per_token": cfg.num_experts_per_tok,
                      "expert_ffn_size": cfg.moe_intermediate_size, "shared_experts": 1,
                      "shared_expert_ffn_size": cfg.shared_expert_intermediate_size, "shared_expert_gate": True}
    out.update(arch.extra)
    return out


# ------------------------------------------------------------------------------------------ saved tensors


class _Held:
    """What the pack hook hands autograd: a detached alias of the saved tensor; its death means autograd let go."""

    __slots__ = ("t", "key", "tracker")

    def __init__(self, t: Any, key: int | None, tracker: "SavedTracker") -> None:
        self.t, self.key, self.tracker = t, key, tracker

    def __del__(self) -> None:
        if self.key is not None:
            self.tracker._release(self.key)


class SavedTracker:
    """Counts the distinct non-parameter storages autograd saves for backward, and how long they live."""

    def __init__(self, model: Any) -> None:
        import torch

        self.torch = torch
        self.param_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.buffer_ptrs = {b.untyped_storage().data_ptr() for b in model.buffers()}
        self.region = "layers"
        self.live: dict[int, list] = {}  # storage ptr -> [refs, nbytes, region]
        self.live_bytes = 0
        self.peak_bytes = 0
        self.saved_count = 0
        self.param_saves = 0
        self.buffer_saves = 0
        self.at_forward_end: dict[str, int] | None = None
        self._hooks = None

    def _pack(self, t: Any) -> _Held:
        self.saved_count += 1
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if ptr in self.param_ptrs:
            self.param_saves += 1
            return _Held(t.detach(), None, self)
        if ptr in self.buffer_ptrs:
            self.buffer_saves += 1
            return _Held(t.detach(), None, self)
        if ptr == 0 or st.nbytes() == 0:
            return _Held(t.detach(), None, self)
        entry = self.live.get(ptr)
        if entry is None:
            entry = self.live[ptr] = [0, st.nbytes(), self.region]
            self.live_bytes += entry[1]
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        entry[0] += 1
        return _Held(t.detach(), ptr, self)

    @staticmethod
    def _unpack(held: _Held) -> Any:
        return held.t

    def _release(self, ptr: int) -> None:
        entry = self.live.get(ptr)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self.live_bytes -= entry[1]
            del self.live[ptr]

    def mark_forward_end(self) -> None:
        by_region: dict[str, int] = {"embedding": 0, "layers": 0, "head": 0}
        for _, n, region in self.live.values():
            by_region[region] += n
        by_region["total"] = sum(by_region.values())
        by_region["storages"] = len(self.live)
        self.at_forward_end = by_region

    def __enter__(self) -> "SavedTracker":
        self._hooks = self.torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._hooks.__exit__(*exc)


def _region_hooks(model: Any, tracker: SavedTracker) -> list[Any]:
    """Tag saves: embeddings -> 'embedding'; from the final norm's entry to the end of the loss -> 'head'."""
    handles = []
    base = model.base_model
    embeds = [model.get_input_embeddings()]
    if hasattr(base, "wpe"):
        embeds.append(base.wpe)
    final_norm = getattr(base, "norm", None) or getattr(base, "ln_f", None)
    if final_norm is None:
        raise RuntimeError(f"no final norm found on {type(base).__name__}")

    def enter(region: str) -> Callable:
        def hook(*_: Any, **__: Any) -> None:
            tracker.region = region
        return hook

    for e in embeds:
        handles.append(e.register_forward_pre_hook(enter("embedding")))
        handles.append(e.register_forward_hook(enter("layers")))
    handles.append(final_norm.register_forward_pre_hook(enter("head")))
    return handles


# --------------------------------------------------------------------------------------------- one record


def _torch_dtype(name: str) -> Any:
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def build_model(arch: Arch, dtype: str, attn: str, device: str = "cpu") -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    cfg = arch.config()
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation=attn, dtype=_torch_dtype(dtype))
    return model.to(device), cfg


def _inputs(vocab: int, seq: int, batch: int, device: str = "cpu") -> Any:
    import torch

    g = torch.Generator().manual_seed(1234)
    return torch.randint(0, vocab, (batch, seq), generator=g).to(device)


def _kv_tensors(pkv: Any) -> list[Any]:
    """Every key/value tensor of a ``past_key_values`` (a transformers Cache, or the legacy tuple of tuples)."""
    import torch

    if pkv is None:
        return []
    if hasattr(pkv, "layers"):  # transformers >= 4.56 Cache with per-layer objects
        out = []
        for layer in pkv.layers:
            for name in ("keys", "values"):
                t = getattr(layer, name, None)
                if isinstance(t, torch.Tensor):
                    out.append(t)
        return out
    if hasattr(pkv, "key_cache"):  # older DynamicCache
        return [t for t in (*pkv.key_cache, *pkv.value_cache) if isinstance(t, torch.Tensor)]
    out = []
    for item in pkv:
        if isinstance(item, torch.Tensor):
            out.append(item)
        else:
            out.extend(_kv_tensors(item))
    return out


def measure_kv(model: Any, ids: Any) -> dict[str, Any]:
    import torch

    model.eval()
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
    ts = _kv_tensors(out.past_key_values)
    seen: set[tuple[int, int]] = set()
    total = 0
    for t in ts:
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        if key not in seen:
            seen.add(key)
            total += t.nbytes
    positions = max((t.shape[-2] for t in ts), default=0)
    b, s = ids.shape
    return {"kv_cache_bytes": total, "kv_cache_positions": int(positions),
            "kv_cache_bytes_per_token": total / (b * s)}


def _checkpointing(model: Any, on: bool, reentrant: bool = True) -> None:
    """Turn activation (gradient) checkpointing of every decoder layer on or off, across transformers versions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if on:
            enable = getattr(model, "activation_checkpointing_enable", None)
            if enable is not None:
                enable(activation_checkpointing_kwargs={"use_reentrant": reentrant})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": reentrant})
        else:
            disable = getattr(model, "activation_checkpointing_disable", None) or model.gradient_checkpointing_disable
            disable()


def train_step_cpu(arch: Arch, dtype: str, seq: int, batch: int, attn: str, ckpt: bool) -> dict[str, Any]:
    import torch

    model, cfg = build_model(arch, dtype, attn)
    model.train()
    if ckpt:
        # Reentrant checkpointing saves each layer's inputs through ctx.save_for_backward, where the hooks see them;
        # the non-reentrant flavour (transformers' default) holds the same inputs in a closure the hooks cannot see.
        _checkpointing(model, True, reentrant=True)
    params = list(model.parameters())
    ids = _inputs(cfg.vocab_size, seq, batch)
    opt = torch.optim.AdamW(params, lr=1e-4)  # = OPTIMIZER

    tracker = SavedTracker(model)
    handles = _region_hooks(model, tracker)
    t0 = time.perf_counter()
    with tracker:
        out = model(input_ids=ids, labels=ids, use_cache=False)
        loss = out.loss
        tracker.mark_forward_end()
        del out
        loss.backward()
    opt.step()
    step_s = time.perf_counter() - t0
    for hd in handles:
        hd.remove()
    if not torch.isfinite(loss):
        raise RuntimeError(f"{arch.key}: non-finite loss {loss.item()}")

    param_bytes = sum(p.nbytes for p in params)
    grad_bytes = sum(p.grad.nbytes for p in params if p.grad is not None)
    opt_bytes = 0
    opt_tensors = 0
    for st in opt.state.values():
        for v in st.values():
            if isinstance(v, torch.Tensor):
                opt_bytes += v.nbytes
                opt_tensors += 1
    fe = tracker.at_forward_end or {}
    measured: dict[str, Any] = {
        "param_count": sum(p.numel() for p in params),
        "param_tensors": len(params),
        "param_bytes": param_bytes,
        "grad_bytes": grad_bytes,
        "optimizer_bytes": opt_bytes,
        "optimizer_state_tensors": opt_tensors,
        "saved_activation_bytes": fe.get("total", 0),
        "saved_layers_bytes": fe.get("layers", 0),
        "saved_embedding_bytes": fe.get("embedding", 0),
        "saved_head_bytes": fe.get("head", 0),
        "saved_storages": fe.get("storages", 0),
        "saved_activation_peak_bytes": tracker.peak_bytes,
        "saved_tensor_calls": tracker.saved_count,
        "saved_param_calls": tracker.param_saves,
        "saved_buffer_calls": tracker.buffer_saves,
        "loss": round(float(loss.item()), 4),
        "step_seconds": round(step_s, 3),
    }
    if ckpt:
        _checkpointing(model, False)
    measured.update(measure_kv(model, ids))
    del model, opt, params, loss
    gc.collect()
    return measured


# --------------------------------------------------------------------------------------------- GPU path


def train_step_gpu(arch: Arch, dtype: str, seq: int, batch: int, attn: str, ckpt: bool,
                   steps: int = 5) -> dict[str, Any]:
    """Allocator peak of a whole training step on CUDA, and training throughput (only with ``--gpu``)."""
    import torch

    dev = "cuda"
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    model, cfg = build_model(arch, dtype, attn, device=dev)
    model.train()
    if ckpt:
        _checkpointing(model, True, reentrant=False)
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4)
    ids = _inputs(cfg.vocab_size, seq, batch, dev)
    after_model = torch.cuda.memory_allocated() - base

    def step() -> None:
        out = model(input_ids=ids, labels=ids, use_cache=False)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # first step allocates the optimizer state
    torch.cuda.synchronize()
    after_first = torch.cuda.memory_allocated() - base
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    measured = {
        "param_count": sum(p.numel() for p in params),
        "param_bytes": sum(p.nbytes for p in params),
        "allocated_after_model_bytes": after_model,
        "allocated_between_steps_bytes": after_first,
        "peak_step_bytes": peak,
        "peak_minus_steady_bytes": peak - after_first,
        "train_tokens_per_s": round(steps * seq * batch / dt, 1),
    }
    del model, opt, params
    gc.collect()
    torch.cuda.empty_cache()
    return measured


# --------------------------------------------------------------------------------------------- provenance


def machine_info(gpu: bool = False) -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(), "cpu": cpu,
                            "cpu_count": os.cpu_count()}
    try:
        info["ram_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    if gpu:
        import torch

        p = torch.cuda.get_device_properties(0)
        info["gpu"] = p.name
        info["gpu_memory_gib"] = round(p.total_memory / 2**30, 1)
    return info


def versions() -> dict[str, str]:
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": str(torch.__version__),
            "transformers": str(transformers.__version__)}


def _command() -> str:
    argv = list(sys.argv)
    if argv and os.path.isabs(argv[0]):
        try:
            argv[0] = os.path.relpath(argv[0])
        except ValueError:
            pass
    return "python " + " ".join(shlex.quote(a) for a in argv)


# --------------------------------------------------------------------------------------------------- main


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None, help="YAML file to write (default: data/measurements/cpu-saved-tensors.yaml,"
                                                 " or gpu-peak.yaml with --gpu)")
    ap.add_argument("--gpu", action="store_true", help="measure allocator peak and tokens/s on CUDA instead")
    ap.add_argument("--only", default="", help="comma-separated arch keys or model types (e.g. llama,mixtral-s2)")
    ap.add_argument("--dtypes", default=",".join(DTYPES), help="comma-separated: fp32,bf16[,fp16]")
    ap.add_argument("--attn", default=",".join(ATTN), help="comma-separated attn_implementation values")
    ap.add_argument("--all-dtypes", action="store_true", help="run every size in every --dtypes (slow on CPU in bf16)")
    ap.add_argument("--shapes", default="", help="comma-separated SEQxBATCH, e.g. 128x2,512x1")
    ap.add_argument("--no-checkpointing", action="store_true", help="skip the gradient-checkpointing runs")
    ap.add_argument("--quick", action="store_true", help="one tiny shape (64x2): a smoke test")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave the default)")
    ap.add_argument("--list", action="store_true", help="print the architecture keys and exit")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    import torch
    import yaml

    import transformers

    transformers.logging.set_verbosity_error()  # random tiny configs: bos/eos ids outside the vocabulary etc.
    if args.threads:
        torch.set_num_threads(args.threads)
    archs = _archs()
    if args.list:
        for a in archs:
            print(a.key, a.model_type)
        return 0
    if args.only:
        want = {w.strip() for w in args.only.split(",") if w.strip()}
        archs = [a for a in archs if a.key in want or a.model_type in want or a.key.rsplit("-", 1)[0] in want]
    if args.gpu and not torch.cuda.is_available():
        print("--gpu: no CUDA device visible to torch; nothing measured", file=sys.stderr)
        return 2
    if args.shapes:
        shapes = tuple(tuple(int(x) for x in s.lower().split("x")) for s in args.shapes.split(","))
    else:
        shapes = QUICK_SHAPES if args.quick else SHAPES
    dtypes = [d for d in args.dtypes.split(",") if d]
    attns = [a for a in args.attn.split(",") if a]
    ckpts = (False,) if args.no_checkpointing else (False, True)
    default_out = "data/measurements/gpu-peak.yaml" if args.gpu else "data/measurements/cpu-saved-tensors.yaml"
    out_path = args.out or default_out

    meta = {"command": _command(), "versions": versions(), "machine": machine_info(args.gpu),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")}
    records: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    for arch in archs:
        for dtype in dtypes:
            if arch.dtypes is not None and dtype not in arch.dtypes and not args.all_dtypes and not args.gpu:
                continue
            for seq, batch in shapes:
                for attn in attns:
                    for ckpt in ckpts:
                        rid = f"{arch.key}-{dtype}-s{seq}-b{batch}-{attn}-{'ckpt' if ckpt else 'nockpt'}"
                        fn = train_step_gpu if args.gpu else train_step_cpu
                        measured = fn(arch, dtype, seq, batch, attn, ckpt)
                        cfg = arch.config()
                        rec = {"id": rid, "architecture": architecture_block(arch, cfg), "dtype": dtype,
                               "seq_len": seq, "micro_batch": batch, "attn_implementation": attn,
                               "gradient_checkpointing": ckpt, "optimizer": OPTIMIZER,
                               "measured": measured, **meta}
                        records.append(rec)
                        m = measured
                        L, h = rec["architecture"]["layers"], rec["architecture"]["hidden_size"]
                        per = m.get("saved_layers_bytes", 0) / (L * seq * batch * h)
                        saved = m.get("saved_activation_bytes", 0)
                        print(f"{rid:52s} params {m['param_count']:>10,}  saved {saved:>12,}"
                              f"  layers/(L s b h) {per:6.2f}", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)

    class _NoAlias(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # noqa: D401 - write every record out in full
            return True

    header = (f"# Generated by tools/measure.py ({len(records)} records, {time.perf_counter() - t_all:.0f} s).\n"
              "# Do not edit by hand; see docs/measurements.md for what each figure is.\n")
    with open(out_path, "w") as fh:
        fh.write(header)
        yaml.dump(records, fh, Dumper=_NoAlias, sort_keys=False, default_flow_style=None, width=118)
    print(f"wrote {len(records)} records to {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
