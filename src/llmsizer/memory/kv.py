"""The KV cache: bytes per token and per sequence on one GPU (Kwon et al. 2023, vLLM/PagedAttention, sec. 2.2).

Per layer and token: K and V of ``ceil(kv_heads / tp)`` heads (GQA/MQA-aware, Ainslie et al. 2023; each GPU keeps at
least one head, replicated when kv_heads < tp), or MLA's latent r_kv + d_rope (DeepSeek-V2, arXiv:2405.04434,
sec. 2.1.2), times the KV dtype's bytes; pp splits layers (the fullest stage counts); sliding-window layers hold
at most the window. Ignores the engine's block rounding (vLLM: 16-token blocks).
"""

from __future__ import annotations

from llmsizer.errors import InvalidInputError
from llmsizer.memory.weights import layers_on_stage
from llmsizer.specs.architecture import kv_elements_per_token, ledger
from llmsizer.specs.model import ModelSpec
from llmsizer.units import DTYPE_BYTES
from llmsizer.workload.job import Workload


def kv_dtype_bytes(w: Workload) -> float:
    dt = w.kv_cache_dtype
    b = DTYPE_BYTES.get(dt)
    if b is None:
        raise InvalidInputError(f"{{kv_dtype}}: unknown KV cache dtype {dt!r}; use one of {', '.join(DTYPE_BYTES)}",
                                fields=("kv_dtype",))
    return b


def kv_bytes_per_sequence(model: ModelSpec, w: Workload, tp: int, pp: int, context_tokens: int,
                          attention_dp: bool = False) -> float:
    """KV-cache bytes one sequence of ``context_tokens`` needs on one GPU of a tp x pp replica (fullest stage;
    with attention data parallelism, the replica's mean over its tp GPUs)."""
    led = ledger(model)
    return (layers_on_stage(model.layers, pp) * led.attended_keys(context_tokens)
            * kv_elements_per_token(model, tp, attention_dp) * kv_dtype_bytes(w))
