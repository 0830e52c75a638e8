"""TransformerConfig: the one shape description every family maps onto (no torch import)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rlcore.errors import ConfigError

NORM_TYPES = ("layernorm", "rmsnorm")
ACTIVATIONS = ("gelu", "gelu_new", "silu", "relu", "quick_gelu")
POSITIONS = ("learned", "rotary")
# Per RoPE scaling type (HF's names): the keys it needs, and the optional keys it may carry.
ROPE_SCALING = {
    "linear": (("factor",), ()),
    "llama3": (("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"),
               ()),
    "yarn": (("factor", "original_max_position_embeddings"),
             ("attention_factor", "beta_fast", "beta_slow", "mscale", "mscale_all_dim", "truncate")),
    # These two depend on the longest sequence of each forward (HF's dynamic_rope_update).
    "dynamic": (("factor",), ()),
    "longrope": (("short_factor", "long_factor", "original_max_position_embeddings"),
                 ("factor", "attention_factor")),
}
ROPE_SCALING_TYPES = tuple(ROPE_SCALING)
ROUTER_SCORES = ("softmax", "sigmoid")


@dataclass
class TransformerConfig:
    """Sizes and options of the core decoder-only transformer (see docs/models.md)."""

    vocab_size: int = 256
    hidden_size: int = 64
    intermediate_size: int = 128
    n_layers: int = 2
    n_q_heads: int = 4
    n_kv_heads: int | None = None  # None: same as n_q_heads (MHA); 1: MQA
    head_dim: int | None = None  # None: hidden_size // n_q_heads
    norm_type: str = "rmsnorm"
    norm_eps: float = 1e-6
    norm_unit_offset: bool = False  # Gemma-style: scale by (1 + weight)
    activation: str = "silu"
    gated_mlp: bool = True
    position: str = "rotary"
    rope_theta: float = 10000.0
    # {"rope_type": kind, ...its keys in ROPE_SCALING}; None for plain RoPE.
    rope_scaling: dict[str, Any] | None = field(default=None)
    # The share of each head's dims that RoPE rotates; the rest pass through (Phi-4-mini, GPT-NeoX).
    rope_fraction: float = 1.0
    attn_bias: bool = False  # bias on q/k/v projections
    attn_out_bias: bool = False  # bias on o_proj
    mlp_bias: bool = False
    qk_norm: bool = False  # per-head RMSNorm on q and k before RoPE (Qwen3)
    qk_norm_all_heads: bool = False  # OLMoE: the q/k norm spans all heads (the projection's width)
    qkv_clip: float | None = None  # OLMoE, OLMo: clamp q, k and v to [-qkv_clip, qkv_clip]
    tie_embeddings: bool = False
    sliding_window: int | None = None  # attend to at most this many latest tokens (self included)
    max_positions: int = 2048
    value_head: bool = False  # scalar head [hidden -> 1] instead of the LM head
    # Mixture of experts (models/moe.py); n_experts 0 is a dense model.
    n_experts: int = 0
    n_experts_per_token: int = 2  # top-k
    moe_intermediate_size: int | None = None  # each expert's; None: intermediate_size
    router_score: str = "softmax"  # "softmax" | "sigmoid" of the router logits
    router_norm_topk: bool = True  # rescale the top-k weights to sum to 1
    shared_expert_size: int = 0  # a shared expert this wide on every MoE layer (0: none)
    shared_expert_gate: bool = False  # Qwen2-MoE: the shared expert scaled by sigmoid(gate(x))
    dense_layers: list[int] = field(default_factory=list)  # layers with the dense MLP instead
    # Per-layer and Gemma-style quirks (docs/families.md); the defaults keep the plain decoder.
    sliding_layers: list[bool] | None = None  # per layer: uses sliding_window; None: every layer
    rope_layers: list[bool] | None = None  # per layer: applies RoPE (SmolLM3 NoPE); None: every layer
    rope_local_theta: float | None = None  # plain RoPE of sliding layers with this theta (Gemma 3)
    attn_scale_base: float | None = None  # scores scale by its **-0.5; None: head_dim (Gemma 2/3)
    attn_softcap: float | None = None  # attention scores -> cap * tanh(scores / cap) (Gemma 2)
    final_softcap: float | None = None  # the same on the LM logits (Gemma 2)
    sandwich_norms: bool = False  # norms on the attention and MLP outputs too (Gemma 2/3, GLM-4)
    embed_scale: bool = False  # embeddings times sqrt(hidden_size) in their dtype (Gemma)
    rope_interleaved: bool = False  # RoPE turns dim pairs (0, 1), (2, 3)... not halves (GLM-4)

    def __post_init__(self) -> None:
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_q_heads
        if self.head_dim is None and self.n_q_heads:
            self.head_dim = self.hidden_size // self.n_q_heads

    def validate(self) -> TransformerConfig:
        """Raise ConfigError naming the first inconsistent field; return self when valid."""
        for name in ("vocab_size", "hidden_size", "intermediate_size", "n_layers", "n_q_heads",
                     "n_kv_heads", "head_dim", "max_positions"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"TransformerConfig.{name} must be a positive int, got {value!r}")
        for name, allowed in (("norm_type", NORM_TYPES), ("activation", ACTIVATIONS),
                              ("position", POSITIONS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"TransformerConfig.{name}={getattr(self, name)!r} is not one of "
                                  f"{', '.join(allowed)}")
        if self.n_q_heads % self.n_kv_heads:
            raise ConfigError(f"TransformerConfig.n_q_heads={self.n_q_heads} must be a multiple of "
                              f"n_kv_heads={self.n_kv_heads} (GQA groups query heads per kv head)")
        if self.norm_eps <= 0:
            raise ConfigError(f"TransformerConfig.norm_eps must be > 0, got {self.norm_eps}")
        if self.position == "rotary":
            if self.head_dim % 2:
                raise ConfigError(f"TransformerConfig.head_dim={self.head_dim} must be even for rotary")
            if self.rope_theta <= 0:
                raise ConfigError(f"TransformerConfig.rope_theta must be > 0, got {self.rope_theta}")
            if not 0 < self.rope_fraction <= 1 or self.rotary_dim < 2 or self.rotary_dim % 2:
                raise ConfigError(f"TransformerConfig.rope_fraction={self.rope_fraction} must be in "
                                  f"(0, 1] and rotate an even number of dims (head_dim * fraction "
                                  f"= {self.head_dim * self.rope_fraction:g})")
            self._validate_rope_scaling()
        elif self.rope_scaling:
            raise ConfigError("TransformerConfig.rope_scaling is set but position='learned'; "
                              "drop rope_scaling or use position='rotary'")
        if self.sliding_window is not None and (
                not isinstance(self.sliding_window, int) or self.sliding_window <= 0):
            raise ConfigError(f"TransformerConfig.sliding_window must be a positive int or None, "
                              f"got {self.sliding_window!r}")
        if self.n_experts:
            self._validate_moe()
        if self.qk_norm_all_heads and not self.qk_norm:
            raise ConfigError("TransformerConfig.qk_norm_all_heads needs qk_norm=True")
        if self.qkv_clip is not None and not self.qkv_clip > 0:
            raise ConfigError(f"TransformerConfig.qkv_clip must be > 0 or None, got {self.qkv_clip}")
        if self.norm_unit_offset and self.norm_type != "rmsnorm":
            raise ConfigError("TransformerConfig.norm_unit_offset (Gemma 1+w) needs norm_type='rmsnorm'")
        self._validate_layer_quirks()
        return self

    def _validate_moe(self) -> None:
        if not 0 < self.n_experts_per_token <= self.n_experts:
            raise ConfigError(f"TransformerConfig.n_experts_per_token={self.n_experts_per_token} must "
                              f"be in 1..n_experts={self.n_experts}")
        if self.router_score not in ROUTER_SCORES:
            raise ConfigError(f"TransformerConfig.router_score={self.router_score!r} is not one of "
                              f"{', '.join(ROUTER_SCORES)}")
        if not self.gated_mlp or self.mlp_bias:
            raise ConfigError("TransformerConfig.n_experts needs gated_mlp=True and mlp_bias=False "
                              "(experts are gated and have no bias)")
        if any(not 0 <= i < self.n_layers for i in self.dense_layers):
            raise ConfigError(f"TransformerConfig.dense_layers={self.dense_layers} must be layer "
                              f"indices below n_layers={self.n_layers}")

    def is_moe_layer(self, i: int) -> bool:
        """Whether block ``i`` has the mixture of experts instead of the dense MLP."""
        return self.n_experts > 0 and i not in self.dense_layers
    def _validate_layer_quirks(self) -> None:
        """One flag per layer in the per-layer lists; positive scales, caps and thetas."""
        for name in ("sliding_layers", "rope_layers"):
            flags = getattr(self, name)
            if flags is not None and (len(flags) != self.n_layers
                                      or not all(isinstance(f, bool) for f in flags)):
                raise ConfigError(f"TransformerConfig.{name} must be None or {self.n_layers} bools "
                                  f"(one per layer), got {flags!r}")
        for name in ("rope_local_theta", "attn_scale_base", "attn_softcap", "final_softcap"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"TransformerConfig.{name} must be > 0 or None, got {value!r}")

    def layer_slides(self, i: int) -> bool:
        """Whether layer ``i`` attends through ``sliding_window`` (when one is set)."""
        return self.sliding_window is not None and (self.sliding_layers is None or self.sliding_layers[i])

    def layer_rope(self, i: int) -> str | None:
        """Layer ``i``'s RoPE: ``"global"``, ``"local"`` (``rope_local_theta``) or None (NoPE)."""
        if self.position != "rotary" or (self.rope_layers is not None and not self.rope_layers[i]):
            return None
        return "local" if self.rope_local_theta is not None and self.layer_slides(i) else "global"

    def _validate_rope_scaling(self) -> None:
        rs = self.rope_scaling
        if rs is None:
            return
        kind = rope_scaling_type(rs)
        if kind not in ROPE_SCALING_TYPES:
            raise ConfigError(f"TransformerConfig.rope_scaling type {kind!r} is not supported; use one "
                              f"of {', '.join(ROPE_SCALING_TYPES)} or None")
        needed, _ = ROPE_SCALING[kind]
        missing = [k for k in needed if rs.get(k) is None]
        if missing:
            raise ConfigError(f"TransformerConfig.rope_scaling ({kind}) is missing {', '.join(missing)}")
        if rs.get("factor") is not None and float(rs["factor"]) <= 0:
            raise ConfigError(f"TransformerConfig.rope_scaling factor must be > 0, got {rs['factor']}")
        for key in ("short_factor", "long_factor"):
            if kind == "longrope" and len(rs[key]) != self.rotary_dim // 2:
                raise ConfigError(f"TransformerConfig.rope_scaling (longrope) {key} has {len(rs[key])} "
                                  f"values; it needs one per rotary frequency ({self.rotary_dim // 2})")

    @property
    def rotary_dim(self) -> int:
        """How many leading dims of each head RoPE rotates."""
        return int(self.head_dim * self.rope_fraction)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransformerConfig:
        """Build from a dict; unknown keys raise ConfigError naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown TransformerConfig keys: {', '.join(unknown)}; "
                              f"valid keys are {', '.join(sorted(names))}")
        return cls(**data)


def rope_scaling_type(rope_scaling: dict[str, Any]) -> str:
    """The scaling kind of a rope_scaling dict (HF writes it as 'rope_type' or legacy 'type')."""
    return str(rope_scaling.get("rope_type", rope_scaling.get("type", "")))
