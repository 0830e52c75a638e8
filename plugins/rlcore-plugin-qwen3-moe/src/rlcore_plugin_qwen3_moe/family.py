"""Qwen3-MoE and Qwen2-MoE on rlcore's ``MoEFamily``: config differences only.

Quirks handled here:
- the top-k softmax weights are renormalised only when ``norm_topk_prob`` is set;
- experts are ``moe_intermediate_size`` wide; dense layers (``mlp_only_layers``, and layers that
  ``decoder_sparse_step`` skips) keep the dense MLP, ``intermediate_size`` wide;
- Qwen2-MoE: bias on q/k/v (``qkv_bias``), and a shared expert on every MoE layer, scaled by
  ``sigmoid(shared_expert_gate(x))``;
- Qwen3-MoE: q/k RMSNorm per head, explicit ``head_dim``, ``attention_bias`` on all four projections;
- ``use_sliding_window`` is refused (the released models leave it off).
"""

from __future__ import annotations

from typing import Any

from rlcore.sdk import LLAMA_DEFAULTS, ModelLoadError, MoEFamily, TransformerConfig

# transformers' Qwen3MoeConfig values for keys a config.json may leave out (the expert count,
# also written as num_local_experts, has none: a file without it is an error).
QWEN3_MOE_DEFAULTS = {**LLAMA_DEFAULTS, "max_position_embeddings": 32768, "num_experts_per_tok": 8, "moe_intermediate_size": 768,
                      "norm_topk_prob": False, "decoder_sparse_step": 1}


class Qwen3MoeFamily(MoEFamily):
    """Qwen3-30B-A3B, Qwen3-235B-A22B (``model_type: qwen3_moe``)."""

    name = model_type = "qwen3_moe"
    architecture = "Qwen3MoeForCausalLM"
    fixed = {"qk_norm": True}
    options = {"attn_bias": "attention_bias", "attn_out_bias": "attention_bias"}
    activations = {"silu": "silu"}
    hf_defaults = QWEN3_MOE_DEFAULTS
    # 4 experts, top-2, renormalised; q/k norm, head_dim 16 != 32 / 4 heads, GQA.
    tiny = {"vocab_size": 128, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
            "rms_norm_eps": 1e-6, "max_position_embeddings": 256, "tie_word_embeddings": False,
            "attention_bias": False, "num_experts": 4, "num_experts_per_tok": 2,
            "moe_intermediate_size": 24, "norm_topk_prob": True, "decoder_sparse_step": 1,
            "mlp_only_layers": [], "rope_parameters": {"rope_theta": 1e6, "rope_type": "default"}}

    def quirks_from_hf(self, hf: dict[str, Any], where: str) -> dict[str, Any]:
        """The MoE fields, and which layers stay dense; a sliding window is refused."""
        if hf.get("use_sliding_window"):
            raise ModelLoadError(f"{where}: use_sliding_window is not supported for "
                                 f"{self.architecture}; set it to false")
        n, step = int(hf["num_hidden_layers"]), int(hf["decoder_sparse_step"])
        if step < 1:
            raise ModelLoadError(f"{where}: decoder_sparse_step must be >= 1, got {step}")
        only = {int(i) for i in hf.get("mlp_only_layers") or []}
        dense = [i for i in range(n) if i in only or (i + 1) % step]
        return {**super().quirks_from_hf(hf, where), "dense_layers": dense}

    def quirks_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        return {**super().quirks_to_hf(cfg), "decoder_sparse_step": 1,
                "mlp_only_layers": list(cfg.dense_layers), "use_sliding_window": False}


class Qwen2MoeFamily(Qwen3MoeFamily):
    """Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B (``model_type: qwen2_moe``)."""

    name = model_type = "qwen2_moe"
    architecture = "Qwen2MoeForCausalLM"
    fixed = {"attn_out_bias": False, "shared_expert_gate": True}
    options = {"attn_bias": "qkv_bias"}
    hf_defaults = {**QWEN3_MOE_DEFAULTS, "num_experts_per_tok": 4,
                   "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632,
                   "qkv_bias": True}
    moe_config = {**MoEFamily.moe_config,
                  "shared_expert_size": ("shared_expert_intermediate_size",)}
    # 4 experts, top-2, not renormalised, a gated shared expert 40 wide; qkv bias, GQA.
    tiny = {**{k: v for k, v in Qwen3MoeFamily.tiny.items() if k not in ("head_dim", "attention_bias")},
            "norm_topk_prob": False, "shared_expert_intermediate_size": 40, "qkv_bias": True}


QWEN3_MOE = Qwen3MoeFamily()
QWEN2_MOE = Qwen2MoeFamily()
