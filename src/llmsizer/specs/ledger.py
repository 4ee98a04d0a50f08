"""The records of the architecture ledger: weight matrices, norm vectors, saved tensors, parameter counts.

``specs/architecture.py`` builds a ``Ledger`` from a ``ModelSpec`` (once per model); memory and compute read it.

- ``Matrix``: ``count`` copies of an ``in x out`` weight matrix, ``active_count`` of which one token multiplies.
  Its parameters, forward FLOPs (2 per multiply-add) and backward FLOPs (input gradient 2x, weight gradient 2x
  more when trained) are properties; ``memory/weights.py`` prices its stored bytes per storage format.
- ``Vector``: norm gains (and LayerNorm biases), never split by tensor parallelism.
- ``Saved``: a tensor one layer keeps for the backward pass, per token, in element counts of a dtype class
  (``act``: the activation precision, ``mask``: dropout masks, ``lse``: FlashAttention's log-sum-exp, ``router``:
  router probabilities, ``logits``: the loss's logits); ``memory/activations.py`` turns them into bytes.
"""

from __future__ import annotations

from llmsizer.record import record
from llmsizer.specs.model import ModelSpec


@record
class Matrix:
    """``count`` copies of an ``in_features x out_features`` weight matrix; ``active_count`` of them per token.

    ``kind``: attn | mlp | expert | shared_expert | router | lm_head. ``bias``: an ``out_features`` bias each.
    """

    name: str
    in_features: int
    out_features: int
    count: int
    active_count: int
    kind: str
    bias: bool = False

    @property
    def params(self) -> int:
        return self.count * self.in_features * self.out_features

    @property
    def active_params(self) -> int:
        return self.active_count * self.in_features * self.out_features

    @property
    def bias_params(self) -> int:
        return self.count * self.out_features if self.bias else 0

    @property
    def forward_flops_per_token(self) -> int:
        """2 FLOPs per multiply-add over the copies a token passes through."""
        return 2 * self.active_params

    def backward_flops_per_token(self, trained: bool) -> int:
        """The input gradient (2 per multiply-add) always; the weight gradient (2 more) only when trained."""
        return (4 if trained else 2) * self.active_params


@record
class Vector:
    """Norm parameters: ``count`` copies of ``elements`` (gain, + bias for LayerNorm); ``final``: outside the layers."""

    name: str
    elements: int
    count: int
    final: bool = False

    @property
    def params(self) -> int:
        return self.elements * self.count


@record
class Saved:
    """``elements`` per token of a ``dtype`` class kept for backward, in each of ``layers`` layers.

    ``split``: ``sp`` whole on every tensor-parallel rank unless sequence parallelism splits it, ``tp`` split by
    tensor parallelism, ``key`` per token *and attended key* (the attention scores), split by tensor parallelism.
    ``flash``: kept only with FlashAttention (True), only without it (False), or either way (None).
    ``stage``: ``layer`` in every layer, ``first``/``last`` once, on the first/last pipeline stage.
    """

    name: str
    elements: int
    dtype: str
    split: str
    layers: int = 1
    flash: bool | None = None
    stage: str = "layer"


@record
class ParamCount:
    """Parameters by part; ``total`` is their sum and ``active`` what one token uses."""

    embedding: int
    lm_head: int
    attention: int
    dense_mlp: int
    routed_experts: int
    shared_experts: int
    router: int
    norms: int
    biases: int
    active: int

    @property
    def total(self) -> int:
        return (
            self.embedding + self.lm_head + self.attention + self.dense_mlp + self.routed_experts
            + self.shared_experts + self.router + self.norms + self.biases
        )


@record
class Ledger:
    """Everything memory and compute need to know about a model's shape, counted once (``ledger(model)``).

    Parameter groups are split the way parallelism splits them: ``embedding`` (vocab-parallel over tp, first
    stage), ``head`` (untied lm_head + bias: vocab-parallel, last stage), ``layer`` (attention, dense MLP, router,
    shared experts + biases: split by tp), ``expert`` (routed experts + biases: split by tp x ep), ``vector``
    (per-layer norms: replicated over tp), ``final`` (final norm + embedding norm: last stage, replicated).
    """

    model: ModelSpec
    matrices: tuple[Matrix, ...]
    vectors: tuple[Vector, ...]
    saved: tuple[Saved, ...]
    params: ParamCount
    embedding_params: int
    head_params: int
    layer_params: int
    expert_params: int
    vector_params: int
    final_params: int
    matmul_params_active: int  # N: weights one token multiplies (LM head in, tied or not; input embedding out)
    matmul_params_total: int
    attention_flops_per_key: int  # 2 H (d_qk + d_v): forward QK^T and AV FLOPs per token per attended key, per layer
    full_attention_layers: int
    window_layers: int
    window: int  # sliding window in tokens (0: none)
    largest_matrix: int  # elements of the largest quantizable matrix (a dequantization buffer holds one)
    factored_elements: int  # Adafactor's factored second moment: rows + cols of every matrix, every vector
    attention_block_elements: int  # intermediate activations of one attention block per token (Q, K, V, output)
    mlp_block_elements: int  # ... of the larger MLP/MoE block per token (inference transient)

    @property
    def layers(self) -> int:
        return self.model.layers

    @property
    def total_params(self) -> int:
        return self.params.total

    @property
    def layer_unit_params(self) -> float:
        """Non-expert parameters of one layer: what ZeRO-3 gathers at a time (before tp)."""
        return self.layer_params / self.model.layers

    @property
    def expert_unit_params(self) -> float:
        """Routed-expert parameters of one MoE layer (before tp x ep)."""
        return self.expert_params / max(1, self.model.moe_layers)

    def attended_keys(self, context: float) -> float:
        """Keys one query attends to, averaged over layers (sliding-window layers see at most the window)."""
        if not self.window_layers:
            return float(context)
        return (self.full_attention_layers * context + self.window_layers * min(context, self.window)) / self.layers

    def attention_flops_per_token(self, context: float) -> float:
        """Forward attention-core FLOPs of one token attending to ``context`` tokens, over all layers:
        ``sum_l 2 H (d_qk + d_v) c_l``, ``c_l = min(context, window)`` on sliding-window layers (Vaswani et al.
        2017; Mistral/Gemma-2 windows). Ignores softmax and masking FLOPs (a few per score)."""
        per = self.attention_flops_per_key
        window = min(context, self.window) if self.window else context
        return per * self.full_attention_layers * context + per * self.window_layers * window
