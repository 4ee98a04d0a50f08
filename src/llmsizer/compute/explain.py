"""``plan --explain`` for compute and cost: the derivation steps (imported only when asked for); their words are in
``render/i18n`` under each step's key."""

from __future__ import annotations

from typing import Any

from llmsizer.compute.hardware import GpuFacts, compute_data
from llmsizer.compute.training import StepCell, StepTimes
from llmsizer.explain import Step
from llmsizer.memory.weights import stored_bytes_per_weight
from llmsizer.specs.architecture import ledger, lora_adapters
from llmsizer.specs.gpu import GpuSpec
from llmsizer.specs.model import ModelSpec
from llmsizer.workload.defaults import GLOBAL_BATCH_SOURCE
from llmsizer.workload.job import Layout, Workload

FLOPS = ("Narayanan et al. 2021 (Megatron-LM, SC21) eq. 3; Chowdhery et al. 2022 (PaLM) app. B; "
         "LoRA: Hu et al. 2021 sec. 4.2")
ROOF = "Pope et al. 2022 (Efficiently Scaling Transformer Inference) sec. 2; Williams et al. 2009 (roofline)"
PALM = "Chowdhery et al. 2022 (PaLM) app. B"


def training_steps(model: ModelSpec, w: Workload, lay: Layout, cell: StepCell, st: StepTimes,
                   e: Any) -> tuple[Step, ...]:
    """The steps behind ``estimate_training``'s result ``e`` for step ``st`` of ``cell``."""
    led, j = ledger(model), cell.j
    g, p = j.g, j.p
    adapter = w.mode.is_adapter
    inputs: dict[str, Any] = {"N": float(led.matmul_params_active), "s": w.seq_len, "layers": led.layers}
    if adapter:
        inputs = {"N": inputs["N"], "N_adapter": float(lora_adapters(model, w.lora_rank, w.lora_targets).active_params),
                  "s": w.seq_len, "layers": led.layers}
    fp8 = w.precision.value == "fp8"
    out = [
        Step("compute.model_flops", st.model_flops_per_token, "FLOP", inputs, FLOPS, "adapter" if adapter else ""),
        Step("compute.hardware_flops", st.hardware_flops_per_token, "FLOP",
             {"recompute": lay.recompute.value, "model_flops_per_token": st.model_flops_per_token},
             "Korthikanti et al. 2022 (Reducing Activation Recomputation) sec. 5", lay.recompute.value),
        Step("compute.efficiency", j.eff, "fraction",
             {"class": g.class_id, "mamf_fraction": g.mamf_fraction, "step_efficiency": p.step_efficiency,
              "h": model.hidden_size, "ridge_flop_per_byte": round(g.ridge, 1), "k": p.size_factor_k,
              "size_factor": j.size_f},
             f"{g.class_source} {p.step_efficiency_source} {p.size_factor_source}", "moe" if model.moe else ""),
        Step("compute.achieved_rate", j.rate, "FLOP/s",
             {"precision": w.precision.value, "peak_flops": j.peak, "efficiency": j.eff},
             p.fp8_source if fp8 else "GPU datasheet dense peak", "fp8" if fp8 else ""),
        Step("compute.micro_batch_compute", st.compute_s, "s",
             {"b": lay.micro_batch, "s": w.seq_len, "tp": lay.tp, "pp": lay.pp}),
    ]
    if st.dequant_s:
        out.append(Step("compute.dequant", st.dequant_s, "s",
                        {"stored_bytes_per_weight": stored_bytes_per_weight(model, w),
                         "bandwidth_bytes_per_s": g.bandwidth, "efficiency": p.streaming_bandwidth_efficiency},
                        p.qlora_source))
    out.append(Step("compute.micro_batches", st.micro_batches, "count",
                    {"global_batch_tokens": st.global_batch_tokens, "s": w.seq_len, "b": lay.micro_batch,
                     "dp": lay.dp}, GLOBAL_BATCH_SOURCE, "assumed" if "global_batch_tokens" in w.assumed else ""))
    if lay.tp > 1:
        out.append(Step("compute.tp", st.tp_s, "s", {"tp": lay.tp, "layers_per_gpu": led.layers / lay.pp},
                        "Narayanan et al. 2021 sec. 3.2; Korthikanti et al. 2022 sec. 4.2.2; " + p.overlap_source))
    if st.a2a_s:
        out.append(Step("compute.a2a", st.a2a_s, "s", {"ep": lay.ep, "k": model.moe.experts_per_token},
                        "Lepikhin et al. 2020 (GShard) sec. 3; " + p.overlap_source))
    if st.p2p_s:
        out.append(Step("compute.p2p", st.p2p_s, "s", {"pp": lay.pp, "v": lay.virtual_stages, "tp": lay.tp},
                        "Narayanan et al. 2021 sec. 2.2.2 and 4.1 (scatter/gather)"))
    if lay.dp > 1:
        out.append(Step("compute.dp", st.dp_step_s + st.micro_batches * st.dp_micro_batch_s, "s",
                        {"dp": lay.dp, "zero": lay.zero},
                        "Rajbhandari et al. 2020 (ZeRO) sec. 7; Li et al. 2020 (PyTorch DDP); " + p.overlap_source))
    if lay.pp > 1:
        v = lay.virtual_stages
        out.append(Step("compute.bubble", (lay.pp - 1) / (v * st.micro_batches), "fraction",
                        {"pp": lay.pp, "m": st.micro_batches, "v": v},
                        "Narayanan et al. 2021 sec. 2.2.1 (1F1B) and 2.2.2 (interleaved, v chunks per GPU)"))
    if st.offload_step_s:
        out.append(Step("compute.offload", st.offload_step_s, "s", {"offload": lay.offload.value},
                        "Ren et al. 2021 (ZeRO-Offload) sec. 4; " + p.offload_source))
    out += [
        Step("compute.step", st.step_s, "s", {"m": st.micro_batches, "pp": lay.pp}, "Narayanan et al. 2021 sec. 2.2"),
        Step("compute.throughput", st.tokens_per_second, "tokens/s",
             {"dp": lay.dp, "m": st.micro_batches, "b": lay.micro_batch, "s": w.seq_len}),
        Step("compute.mfu", e.mfu, "fraction", {"gpus": lay.gpu_count, "peak_flops": j.peak}, PALM),
        Step("compute.hfu", e.hfu, "fraction", {"gpus": lay.gpu_count, "peak_flops": j.peak}, PALM),
    ]
    if e.seconds is not None:
        c = compute_data().cost
        out += [
            Step("compute.goodput", e.goodput, "fraction",
                 {"gpus": lay.gpu_count, "interruptions_per_gpu_hour": p.interruptions_per_gpu_hour,
                  "hours_lost_per_interruption": p.hours_lost_per_interruption}, p.goodput_source),
            Step("compute.training_time", e.seconds, "s", {"tokens": w.tokens}),
            Step("compute.gpu_hours", e.gpu_hours, "GPU-h", {"gpus": lay.gpu_count}),
            Step("compute.energy", e.energy_kwh * 3.6e6, "J", {"tdp_w": g.tdp_w, "power_fraction": p.power_fraction},
                 p.power_source),
            Step("compute.facility_energy", e.facility_energy_kwh * 3.6e6, "J", {"pue": c.pue}, c.pue_source),
        ]
    return tuple(out)


def inference_steps(w: Workload, lay: Layout, eng: Any, g: GpuFacts, v: dict[str, Any]) -> tuple[Step, ...]:
    """The steps behind ``estimate_inference`` (``v``: its intermediate figures by name)."""
    q = "quantized" if v["quantized"] else ""
    ld = v["load"]
    out = [
        Step("inference.batch", v["b_stage"], "count", {"concurrency": w.concurrency, "pp": lay.pp}),
        Step("inference.weight_read", v["w_read"], "bytes", {"weights_bytes": v["w_gpu"], "batch": v["b_stage"]}),
        Step("inference.kv_read", v["kv_read"], "bytes", {"batch": v["b_stage"], "kv_bytes_per_token": v["kv_tok"]}),
        Step("inference.bandwidth", v["bw"], "bytes/s",
             {"engine": w.engine.value, "bandwidth_efficiency": eng.bandwidth_efficiency}, eng.source, q),
    ]
    if v["bw_expert"] is not None:
        out.append(Step("inference.expert_bandwidth", v["bw_expert"], "bytes/s",
                        {"moe_expert_bandwidth_efficiency": compute_data().inference.moe_expert_bandwidth_efficiency},
                        compute_data().inference.moe_expert_source))
    out += [
        Step("inference.rate", v["rate"], "FLOP/s", {"dtype": v["dtype"], "flop_efficiency": eng.flop_efficiency},
             compute_data().inference.fp8_gemm_source if v["dtype"] == "fp8" else eng.source,
             " ".join(t for t in (q, "fp8" if v["dtype"] == "fp8" else "") if t)),
        Step("inference.decode_memory", v["t_mem"], "s", {}, ROOF),
        Step("inference.decode_compute", v["t_comp"], "s",
             {"flops_per_token": v["fpt_decode"], "tp": lay.tp, "pp": lay.pp}, ROOF),
    ]
    if lay.tp > 1:
        out.append(Step("inference.tp", v["t_ar"], "s", {"tp": lay.tp, "latency_s": eng.allreduce_latency_s},
                        "Shoeybi et al. 2019 (Megatron-LM) sec. 3"))
    out += [
        Step("inference.overhead", v["t_over"], "s",
             {"engine": w.engine.value, "step_overhead_s": eng.step_overhead_s_by_kind.get(g.kind, eng.step_overhead_s),
              "layer_overhead_s": eng.layer_overhead_s, "layers": v["layers_here"]}, eng.source),
        Step("inference.decode_step", v["t_step"], "s", {}, ROOF),
        Step("inference.prefill_share", v["prefill_share"], "s",
             {"prompt": w.prompt_tokens, "output": w.output_tokens, "mixed_share": ld.mixed_share,
              "running": ld.running},
             "Agrawal et al. 2024 (Sarathi-Serve) sec. 3-4; vLLM V1 scheduler (vllm/v1/core/sched/scheduler.py)"),
        Step("inference.tpot", v["tpot"], "s", {"pp": lay.pp, "decode_round_s": ld.decode_round_seconds}),
        Step("inference.prefill", v["t_prefill"], "s", {"prompt": w.prompt_tokens}, ROOF),
        Step("inference.ttft", v["ttft"], "s",
             {"load": "open" if w.request_rate is not None else "closed",
              "concurrency": None if w.request_rate is not None else w.concurrency,
              "request_rate_per_replica": ld.request_rate, "own_prefill_s": ld.own_prefill_seconds,
              "prefill_wait_s": ld.prefill_wait_seconds, "rho": ld.prefill_utilization,
              "slot_wait_s": ld.slot_wait_seconds},
             "Kleinrock 1975 (Pollaczek-Khinchine mean wait); Little 1961"),
        Step("inference.throughput", v["tps"], "tokens/s", {"requests_per_s_per_replica": ld.request_rate,
                                                            "replicas": lay.dp}, "Little 1961"),
        Step("inference.max_concurrency", v["max_conc"], "count",
             {"usable_bytes": v["usable"], "free_bytes": v["free"], "context": w.context_tokens}),
        Step("inference.saturation", v["sat"], "count", {}, ROOF),
    ]
    return tuple(out)


def cost_steps(gpu: GpuSpec, gpu_count: int, basis: str, price_source: str | None, price: float, per_hour: float,
               total: float | None, per_m: float | None, energy: float | None, seconds: float | None,
               output_tokens_per_second: float | None) -> tuple[Step, ...]:
    """The steps behind ``estimate_cost``; ``basis``: override, rental, instance, amortized or unknown."""
    d = compute_data()
    inputs: dict[str, Any] = {"gpu": gpu.id}
    if basis == "amortized":  # the purchase price and the ownership assumptions it is spread over
        c = d.cost
        inputs.update({"purchase_usd": gpu.purchase_usd, "years": c.amortization_years,
                       "utilization": c.amortization_utilization, "usd_per_kwh": c.electricity_usd_per_kwh,
                       "tdp_w": gpu.tdp_watts})
        source = f"{c.amortization_source} Purchase price: {gpu.purchase_source or '-'}"
    else:
        source = price_source or (gpu.price_source or "" if basis == "rental" else "")
    out = [Step("cost.price", price, "USD", inputs, source, basis),
           Step("cost.per_hour", per_hour, "USD", {"gpus": gpu_count})]
    if total is not None:
        out.append(Step("cost.total", total, "USD", {"seconds": seconds}))
    if per_m is not None:
        out.append(Step("cost.per_mtok", per_m, "USD", {"tokens_per_second": output_tokens_per_second}))
    if energy is not None:
        out.append(Step("cost.energy", energy * 3.6e6, "J",
                        {"tdp_w": gpu.tdp_watts, "power_fraction": d.training.power_fraction},
                        d.training.power_source))
    return tuple(out)
