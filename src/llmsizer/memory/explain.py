"""``plan --explain`` for memory: the derivation steps of one stage's breakdown (imported only when asked for).

Each ``Step`` carries the numbers and the citation; its words (quantity, formula, assumption) are in
``render/i18n`` under the step's key.
"""

from __future__ import annotations

from llmsizer.explain import Step
from llmsizer.memory.constants import constants, source_of_storage
from llmsizer.memory.inference import InferenceParts
from llmsizer.memory.training import TrainingCell, overhead_parts
from llmsizer.memory.weights import group_bytes, layers_on_stage, storage
from llmsizer.specs.architecture import kv_elements_per_token, ledger
from llmsizer.specs.model import ModelSpec
from llmsizer.workload.choices import Offload
from llmsizer.workload.job import Layout, Workload

KORTHIKANTI = "Korthikanti et al. 2022, arXiv:2205.05198, sec. 4"
ZERO = "Rajbhandari et al. 2020, ZeRO (arXiv:1910.02054), sec. 5 / Table 1"
KV = ("Kwon et al. 2023 (vLLM/PagedAttention) sec. 2.2; Ainslie et al. 2023 (GQA); DeepSeek-V2 (arXiv:2405.04434) "
      "sec. 2.1.2 (MLA latent cache)")


def _total(parts: tuple, stage: str, pp: int) -> Step:
    w, g, o, a, kv, over = parts[:6]
    return Step("memory.total", w + g + o + a + kv + over, "bytes",
                {"weights_bytes": w, "gradients_bytes": g, "optimizer_bytes": o, "activations_bytes": a,
                 "kv_cache_bytes": kv, "overhead_bytes": over, "pipeline_stage": stage},
                "llmsizer memory model (docs/methodology.md)", "pipeline" if pp > 1 else "")


def training_steps(cell: TrainingCell, i: int, lay: Layout, parts: tuple) -> tuple[Step, ...]:
    """The steps behind stage ``i`` of ``cell`` at ``lay``'s ZeRO stage, offload, recompute and micro-batch."""
    j, st = cell.job, cell.stages[i]
    w, d = j.w, j.k.data
    weights, grads, optim, act, _, overhead, host, nvme = parts
    total_act, per_layer, in_flight, emb, head, working, ckpt_host = cell.activations(i, lay.recompute,
                                                                                        lay.micro_batch)
    R, T, S = j.coeffs
    ctx, nccl, frag, zero3, bucket, dequant = overhead_parts(j, st, lay.zero, act, grads)
    ls = -(-j.model.layers // lay.pp)
    mem = j.prof.memory
    freed = j.freed and st.dp == 1 and lay.zero == 0
    out = [
        Step("memory.weights", weights, "bytes",
             {"storage": j.storage, "base_stage_bytes": st.base_dense + st.base_expert, "adapter_bytes": st.adapters,
              "tp": lay.tp, "pp": lay.pp, "dp": lay.dp, "ep": lay.ep, "zero": lay.zero, "offload": lay.offload.value},
             d.precision_bytes.source + (" " + source_of_storage(j.storage) if j.storage != "dense" else ""),
             "adapter" if j.adapter else ""),
        Step("memory.gradients", grads, "bytes",
             {"trainable_params_on_gpu": st.train_dense + st.train_expert, "grad_bytes": j.gb, "zero": lay.zero,
              "dp": lay.dp}, ZERO),
        Step("memory.optimizer", optim, "bytes",
             {"optimizer": w.optimizer.value, "master_bytes": j.master, "state_bytes": j.opt.state_bytes,
              "factored_bytes_per_param": j.opt.factored_bytes * j.fact_ratio, "zero": lay.zero, "dp": lay.dp},
             j.opt.source + (" " + d.lora.source if j.adapter else ""),
             "offload" if lay.offload is not Offload.none else ""),
        Step("memory.activations_per_layer", per_layer, "bytes",
             {"s": w.seq_len, "b": lay.micro_batch, "R_bytes_per_token": R, "T_bytes_per_token": T,
              "S_bytes_per_token_key": S, "t": st.tp, "t_sp": st.r_div, "recompute": lay.recompute.value,
              "flash_attention": str(w.flash_attention)}, KORTHIKANTI, lay.recompute.value),
        Step("memory.activations", total_act, "bytes",
             {"in_flight_microbatches": in_flight, "layers_on_stage": ls, "virtual_stages": st.v,
              "per_layer_bytes": per_layer, "embedding_dropout_bytes": emb, "output_layer_and_logits_bytes": head,
              "recompute_working_bytes": working},
             f"{d.activations.pipeline_source} {d.activations.source} {d.activations.full_recompute_source}"),
        Step("memory.stack", total_act, "bytes",
             {"framework": (w.framework.value if w.framework else "megatron"), "saved_tensors": mem.saved_tensors,
              "loss": mem.loss, "gradients": mem.gradients, "adapter_dtype": mem.adapter_dtype,
              "autocast_weight_copies_bytes": st.amp, "checkpoints_on_host_bytes": ckpt_host,
              "gradients_at_peak_bytes": grads},
             j.prof.source, " ".join(t for t, on in (("freed", freed), ("amp", st.amp > 0),
                                                     ("offloaded", ckpt_host > 0)) if on)),
        Step("memory.overhead", overhead, "bytes",
             {"context_bytes": ctx, "nccl_bytes": nccl, "fragmentation_bytes": frag, "zero3_buffer_bytes": zero3,
              "reduce_bucket_bytes": bucket, "dequant_buffer_bytes": dequant},
             f"{d.runtime.context_source} {d.runtime.nccl_source} {d.runtime.fragmentation_source} {d.zero.source}"),
    ]
    if host or nvme:
        out.append(Step("memory.offloaded", host + nvme, "bytes", {"host_bytes": host, "nvme_bytes": nvme},
                        d.offload.source))
    out.append(_total(parts, cell.stage_name(i), lay.pp))
    return tuple(out)


def inference_steps(model: ModelSpec, w: Workload, lay: Layout, p: InferenceParts, stage: str) -> tuple[Step, ...]:
    """The steps behind one inference stage's breakdown ``p``."""
    d = constants().data
    eng = p.engine
    led = ledger(model)
    bits = 8 * group_bytes(model, *storage(w)).total / led.total_params
    overhead_tags = " ".join(t for t, on in (("fragmentation", eng.fragmentation), ("in_reserve", eng.in_reserve))
                             if on)
    return (
        Step("memory.weights_inference", p.weights, "bytes",
             {"storage": p.storage, "effective_bits_per_weight": bits, "tp": lay.tp, "pp": lay.pp, "ep": lay.ep,
              **({"attention_dp": True} if lay.attention_dp else {})},
             source_of_storage(p.storage) if p.storage != "dense" else d.precision_bytes.source,
             "attention_dp" if lay.attention_dp else ""),
        Step("memory.activations_inference", p.activations, "bytes",
             {"tokens": p.tokens, "bytes_per_token": p.per_token, "logit_rows": p.logit_rows,
              "vocab": model.vocab_size, "t": lay.tp, "engine": w.engine.value},
             eng.source, "" if w.flash_attention else "noflash"),
        Step("memory.kv", p.kv, "bytes",
             {"layers_on_stage": layers_on_stage(model.layers, lay.pp),
              "elements_per_token_per_layer": float(kv_elements_per_token(model, lay.tp, lay.attention_dp)),
              "kv_dtype": w.kv_cache_dtype, "context_tokens": w.context_tokens, "concurrency": w.concurrency,
              "bytes_per_sequence": p.kv_per_sequence}, KV,
             " ".join(t for t, on in (("attention_dp", lay.attention_dp), ("mla", model.attention == "mla")) if on)),
        Step("memory.overhead_inference", p.overhead, "bytes",
             {"context_bytes": p.ctx, "engine_non_torch_bytes": p.non_torch, "nccl_bytes": p.nccl,
              "fragmentation_bytes": p.frag},
             d.runtime.context_source + " " + eng.source + " " + d.runtime.nccl_source, overhead_tags),
        _total(p.parts, stage, lay.pp),
    )
