"""OLMoE on rlcore's ``MoEFamily``: config differences only.

Quirks handled here:
- ``q_norm`` / ``k_norm`` are RMSNorms over the whole q and k projections (all heads at once),
  not per head as Qwen3's;
- ``clip_qkv`` clamps q, k and v after the norm;
- ``attention_bias`` puts a bias on q/k/v *and* o_proj;
- experts are ``intermediate_size`` wide; top-k weights renormalised only with ``norm_topk_prob``;
- ``head_dim`` other than hidden / heads is refused (transformers sizes ``q_norm`` by hidden_size).
"""

from __future__ import annotations

from typing import Any

from rlcore.sdk import LLAMA_DEFAULTS, ModelLoadError, MoEFamily, TransformerConfig


class OlmoeFamily(MoEFamily):
    """OLMoE-1B-7B (``model_type: olmoe``)."""

    name = model_type = "olmoe"
    architecture = "OlmoeForCausalLM"
    fixed = {"qk_norm": True, "qk_norm_all_heads": True}
    options = {"attn_bias": "attention_bias", "attn_out_bias": "attention_bias"}
    activations = {"silu": "silu"}
    hf_defaults = {**LLAMA_DEFAULTS, "rms_norm_eps": 1e-5, "max_position_embeddings": 4096,
                   "num_experts_per_tok": 8, "norm_topk_prob": False}
    moe_config = {"n_experts": ("num_experts", "num_local_experts"),
                  "n_experts_per_token": ("num_experts_per_tok",),
                  "router_norm_topk": ("norm_topk_prob",)}
    # 4 experts, top-2, not renormalised; GQA; q/k norm over all heads.
    tiny = {"vocab_size": 128, "hidden_size": 32, "intermediate_size": 24, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
            "max_position_embeddings": 256, "tie_word_embeddings": False, "attention_bias": False,
            "num_experts": 4, "num_experts_per_tok": 2, "norm_topk_prob": False, "clip_qkv": None,
            "pad_token_id": None, "eos_token_id": None,
            "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"}}

    def quirks_from_hf(self, hf: dict[str, Any], where: str) -> dict[str, Any]:
        """The MoE fields and ``clip_qkv``; a head_dim transformers would not use is refused."""
        heads = int(hf["num_attention_heads"])
        if hf.get("head_dim") and int(hf["head_dim"]) != int(hf["hidden_size"]) // heads:
            raise ModelLoadError(f"{where}: head_dim {hf['head_dim']} != hidden_size / "
                                 f"num_attention_heads; OLMoE's q_norm spans hidden_size")
        clip = hf.get("clip_qkv")
        return {**super().quirks_from_hf(hf, where),
                "qkv_clip": None if clip is None else float(clip)}

    def quirks_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        return {**super().quirks_to_hf(cfg), "clip_qkv": cfg.qkv_clip}


OLMOE = OlmoeFamily()
