"""FLOPs per token, read off the architecture ledger (``specs/architecture.py``); a multiply-add counts 2.

``N`` is the number of weights one token multiplies (every matrix it passes through, the LM head included, the
input embedding excluded: it is a lookup; for MoE only the routed experts a token visits), ``A(c)`` the forward
attention-core FLOPs of a token attending to ``c`` tokens.

Training *model* FLOPs per token follow PaLM (Chowdhery et al. 2022, app. B) and Megatron-LM (Narayanan et al.
2021, eq. 3): forward 2N + A, backward 4N + 2A, i.e. ``6N + 3A(s)``: ``6N + 12 l s h`` for standard attention, the
attention term counted over the full ``s x s`` score matrix as those papers do (a causal kernel executes about half
of it; the calibrated efficiencies absorb that). A frozen base (LoRA, QLoRA) skips its weight gradients
(Hu et al. 2021 sec. 4.2): ``4N + 6 N_adapter + 3A``. *Hardware* FLOPs add what recomputation re-executes: a whole
forward (2N (+ 2 N_adapter) + A) for full recompute, the attention core (A) for selective (Korthikanti et al. 2022
sec. 5). Megatron's ``96 B s l h^2 (1 + s/6h + V/16lh)`` per iteration is the full-recompute hardware count.
"""

from __future__ import annotations

from llmsizer.specs.architecture import lora_adapters
from llmsizer.specs.ledger import Ledger
from llmsizer.workload.choices import Recompute
from llmsizer.workload.job import Workload


def training_flops(led: Ledger, w: Workload, recompute: Recompute) -> tuple[float, float]:
    """(model, hardware) training FLOPs per token of ``w`` (resolved) at its sequence length."""
    n = float(led.matmul_params_active)
    a = led.attention_flops_per_token(w.seq_len)
    if w.mode.is_adapter:
        n_ad = float(lora_adapters(led.model, w.lora_rank, w.lora_targets).active_params)
        model = 4.0 * n + 6.0 * n_ad + 3.0 * a
        forward = 2.0 * n + 2.0 * n_ad
    else:
        model = 6.0 * n + 3.0 * a
        forward = 2.0 * n
    if recompute is Recompute.full:
        return model, model + forward + a
    if recompute is Recompute.selective:
        return model, model + a
    return model, model


def forward_flops(led: Ledger, context: float) -> float:
    """Forward FLOPs of one token attending to ``context`` tokens: ``2N + 2 A(context)`` (decode and prefill)."""
    return 2.0 * led.matmul_params_active + 2.0 * led.attention_flops_per_token(context)
