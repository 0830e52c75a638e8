"""Gemma 2 and Gemma 3 (text) on rlcore's ``DecoderFamily``: names, fixed options, config keys.

Quirks handled here (each a core option, see docs/families.md):
- RMSNorm scaling by ``(1 + weight)``; embeddings times sqrt(hidden); gated ``gelu_pytorch_tanh``.
- Sandwich norms: HF's ``post_attention_layernorm`` norms the attention *output*;
  ``pre_feedforward_layernorm`` is the MLP's input norm.
- ``query_pre_attn_scalar`` instead of head_dim in the score scale; Gemma 2 soft-caps attention
  scores and final logits (Gemma 3 only the logits: transformers ignores its attention cap).
- ``layer_types``: local (sliding-window) and global layers; Gemma 3's local layers use their
  own RoPE theta (``rope_parameters.sliding_attention``, or ``rope_local_base_freq``).
"""

from __future__ import annotations

from typing import Any

from rlcore.sdk import (
    LLAMA_BLOCK,
    LLAMA_DEFAULTS,
    DecoderFamily,
    DecoderKeys,
    ModelLoadError,
    TransformerConfig,
    rope_from_hf,
    rope_to_hf,
)

GEMMA_BLOCK = {**LLAMA_BLOCK,
               "post_attention_layernorm.weight": "attn_post_norm.weight",
               "pre_feedforward_layernorm.weight": "mlp_norm.weight",
               "post_feedforward_layernorm.weight": "mlp_post_norm.weight"}
SLIDING, FULL = "sliding_attention", "full_attention"


def _number(x: float) -> int | float:
    """An int when whole: HF's strict configs type some of these keys int."""
    return int(x) if float(x).is_integer() else float(x)


class Gemma2Family(DecoderFamily):
    """Gemma 2 (``model_type: gemma2``)."""

    name = model_type = "gemma2"
    architecture = "Gemma2ForCausalLM"
    keys = DecoderKeys(block=GEMMA_BLOCK)
    fixed = {"norm_unit_offset": True, "sandwich_norms": True, "embed_scale": True}
    options = {"attn_bias": "attention_bias", "attn_out_bias": "attention_bias"}
    renamed = {"hidden_act": "hidden_activation"}
    activations = {"gelu_pytorch_tanh": "gelu_new", "gelu_new": "gelu_new", "gelu": "gelu"}
    hf_defaults = {**LLAMA_DEFAULTS, "hidden_activation": "gelu_pytorch_tanh",
                   "tie_word_embeddings": True, "max_position_embeddings": 8192,
                   "query_pre_attn_scalar": 256}
    # HF's defaults for keys config.json leaves out; an explicit null turns the option off.
    nullable = {"sliding_window": 4096, "attn_logit_softcapping": 50.0,
                "final_logit_softcapping": 30.0}
    local_every = 2  # without layer_types: every local_every-th layer is global
    # GQA, head_dim 16 != query_pre_attn_scalar 24, window 6 (< the test sequences), soft caps
    # small enough to bend the tiny model's scores and logits.
    tiny = {"vocab_size": 128, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
            "query_pre_attn_scalar": 24, "sliding_window": 6, "attn_logit_softcapping": 5.0,
            "final_logit_softcapping": 3.0, "max_position_embeddings": 256,
            "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"}}

    def config_from_hf(self, hf: dict[str, Any]) -> TransformerConfig:
        return super().config_from_hf({**self.nullable, **hf})

    def shape_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        hf_act = {"gelu_new": "gelu_pytorch_tanh"}.get(cfg.activation, cfg.activation)
        return {**super().shape_to_hf(cfg), "hidden_act": hf_act}

    def quirks_from_hf(self, hf: dict[str, Any], where: str) -> dict[str, Any]:
        if hf.get("use_bidirectional_attention"):
            raise ModelLoadError(f"{where}: use_bidirectional_attention (an encoder-style Gemma) is "
                                 "not supported; rlcore's transformer is causal")
        n = int(hf["num_hidden_layers"])
        kinds = hf.get("layer_types") or [
            SLIDING if (i + 1) % int(hf.get("sliding_window_pattern", self.local_every)) else FULL
            for i in range(n)]
        unknown = sorted(set(kinds[:n]) - {SLIDING, FULL})
        if unknown:
            raise ModelLoadError(f"{where}: layer_types {unknown} are not supported "
                                 f"({SLIDING!r} and {FULL!r} are)")
        slides = [k == SLIDING for k in kinds[:n]]
        window = hf.get("sliding_window") if any(slides) else None
        caps = {k: None if hf.get(k) is None else float(hf[k])
                for k in ("attn_logit_softcapping", "final_logit_softcapping")}
        return {"sliding_window": None if window is None else int(window),
                "sliding_layers": None if window is None or all(slides) else slides,
                "attn_scale_base": float(hf["query_pre_attn_scalar"]),
                "attn_softcap": caps["attn_logit_softcapping"],
                "final_softcap": caps["final_logit_softcapping"]}

    def quirks_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        kinds = [SLIDING if cfg.layer_slides(i) else FULL for i in range(cfg.n_layers)]
        # HF builds the sliding mask even when no layer slides, so it needs some window there.
        window = self.nullable["sliding_window"] if cfg.sliding_window is None else cfg.sliding_window
        return {"layer_types": kinds, "sliding_window": window,
                "query_pre_attn_scalar": _number(cfg.attn_scale_base or cfg.head_dim),
                "attn_logit_softcapping": cfg.attn_softcap,
                "final_logit_softcapping": cfg.final_softcap,
                "use_bidirectional_attention": False, "attention_dropout": 0.0}


class Gemma3Family(Gemma2Family):
    """Gemma 3 text models (``model_type: gemma3_text``, Gemma3ForCausalLM): q/k norm, local RoPE."""

    name = "gemma3"
    model_type = "gemma3_text"
    architecture = "Gemma3ForCausalLM"
    fixed = {**Gemma2Family.fixed, "qk_norm": True}
    hf_defaults = {**Gemma2Family.hf_defaults, "max_position_embeddings": 131072,
                   "rope_theta": 1_000_000.0}
    nullable = {"sliding_window": 4096, "attn_logit_softcapping": None,
                "final_logit_softcapping": None}
    local_every = 6
    # 5 local : 1 global would need 6 layers; 3 layers with layer_types keep it tiny. The global
    # layer scales RoPE linearly (Gemma 3 4B+), the local ones use their own theta.
    tiny = {**{k: v for k, v in Gemma2Family.tiny.items()
               if k not in ("attn_logit_softcapping", "final_logit_softcapping")},
            "num_hidden_layers": 3, "layer_types": [SLIDING, SLIDING, FULL],
            "rope_parameters": {FULL: {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
                                SLIDING: {"rope_type": "default", "rope_theta": 10000.0}}}

    def shape_from_hf(self, hf: dict[str, Any], where: str) -> dict[str, Any]:
        """The global layers' RoPE from ``rope_parameters.full_attention`` (or the v4 keys)."""
        rope = hf.get("rope_parameters") or {}
        return super().shape_from_hf({**hf, "rope_parameters": rope.get(FULL)}, where)

    def shape_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        local = {"rope_type": "default", "rope_theta": cfg.rope_local_theta or cfg.rope_theta}
        return {**super().shape_to_hf(cfg), "rope_parameters": {FULL: rope_to_hf(cfg), SLIDING: local}}

    def quirks_from_hf(self, hf: dict[str, Any], where: str) -> dict[str, Any]:
        local = (hf.get("rope_parameters") or {}).get(SLIDING)
        if local is None:  # a transformers-4 config.json
            local = {"rope_type": "default", "rope_theta": hf.get("rope_local_base_freq", 10000.0)}
        theta, scaling = rope_from_hf({"rope_parameters": local}, where)
        if scaling is not None:
            raise ModelLoadError(f"{where}: rope_parameters.{SLIDING} has RoPE scaling "
                                 f"{scaling['rope_type']!r}; the core scales only the global "
                                 "layers' RoPE (local layers use plain RoPE with their own theta)")
        # transformers' Gemma 3 attention never applies attn_logit_softcapping: neither does rlcore.
        return {**super().quirks_from_hf(hf, where), "rope_local_theta": theta, "attn_softcap": None}


GEMMA2 = Gemma2Family()
GEMMA3 = Gemma3Family()
