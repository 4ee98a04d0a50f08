"""The serving keys of ``plan --format json`` (additive within schema_version 1; docs/json-output.md): the load a
plan is sized for, its replicas, latency percentiles, whether it meets the SLA, and the concurrency sweep.
Plain dicts of floats; ``jsonout.clean`` rounds them."""

from __future__ import annotations

from typing import Any

from llmsizer.compute.serving_disagg import kv_transfer_s


def _pct(pairs: Any) -> dict[str, float]:
    return {f"p{p * 100:g}": v for p, v in pairs}


def serving_to_dict(plan: Any) -> dict[str, Any]:
    """The serving keys of one plan's ``inference`` object."""
    i, lay = plan.inference, plan.layout
    load = i.load
    out: dict[str, Any] = {
        "replicas": lay.dp,
        "prefill_replicas": lay.prefill_replicas,
        "decode_replicas": lay.dp - lay.prefill_replicas if lay.prefill_replicas else None,
        "kv_transfer_seconds": (float(kv_transfer_s(i.costs)) if lay.prefill_replicas and i.costs is not None
                                else None),
        "gpus_per_replica": lay.tp * lay.pp,
        "requests_per_second": float(i.requests_per_second),
        "replica_concurrency": int(i.replica_concurrency),
        "sla_met": i.sla_met,
    }
    if load is not None:
        out.update({
            "running_sequences_per_replica": float(load.running),
            "ttft_percentiles_seconds": _pct(load.ttft_percentiles),
            "tpot_percentiles_seconds": _pct(load.tpot_percentiles),
            "slot_wait_seconds": float(load.slot_wait_seconds),
            "prefill_utilization": float(load.prefill_utilization),
            "stable": bool(load.stable),
        })
    return out


def serving_workload(result: Any) -> dict[str, Any]:
    """The serving keys of ``workload``: the load (closed loop at a concurrency, or open loop at a request rate)
    and the latency targets."""
    w, c = result.workload, result.constraints
    if w.mode.is_training:
        return {}
    from llmsizer.compute.inference import sla_percentile

    return {
        "load": "open" if w.request_rate is not None else "closed",
        "request_rate": w.request_rate,
        "prefix_cache_hit": w.prefix_cache_hit,
        "ttft_target_seconds": c.ttft_target_s,
        "tpot_target_seconds": c.tpot_target_s,
        "sla_percentile": sla_percentile(c),
    }


def sweep_to_list(points: Any) -> list[dict[str, Any]]:
    return [{"concurrency": s.concurrency, "ttft_seconds": s.ttft_seconds, "ttft_p99_seconds": s.ttft_p99_seconds,
             "tpot_seconds": s.tpot_seconds, "tokens_per_second": s.tokens_per_second,
             "requests_per_second": s.requests_per_second} for s in points]
