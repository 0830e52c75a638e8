"""GLM-4 dense models (``Glm4ForCausalLM``) on rlcore's ``DecoderFamily``.

What differs from Llama, and all this module declares:
- RoPE on the first ``partial_rotary_factor`` of each head (0.5 unless config.json says
  otherwise), turning neighbouring dims as pairs (``rope_interleaved``);
- ``mlp.gate_up_proj`` stacks gate then up (split for the core, fused back on save);
- sandwich norms: ``post_self_attn_layernorm`` and ``post_mlp_layernorm`` norm each output,
  ``post_attention_layernorm`` is the MLP's input norm;
- ``attention_bias`` puts a bias on q/k/v, never on o_proj.
"""

from __future__ import annotations

from typing import Any

from rlcore.sdk import LLAMA_BLOCK, LLAMA_DEFAULTS, DecoderFamily, DecoderKeys, TransformerConfig

GLM4_BLOCK = {**LLAMA_BLOCK,
              "post_self_attn_layernorm.weight": "attn_post_norm.weight",
              "post_mlp_layernorm.weight": "mlp_post_norm.weight"}
_GLM4_PAD_ID = 151329  # Glm4Config's default pad id, which must lie inside the vocabulary


class Glm4Family(DecoderFamily):
    """GLM-4 dense (``model_type: glm4``), e.g. GLM-4-9B-0414."""

    name = model_type = "glm4"
    architecture = "Glm4ForCausalLM"
    keys = DecoderKeys(block=GLM4_BLOCK, fused={
        "mlp.gate_up_proj.weight": ("mlp.gate_proj.weight", "mlp.up_proj.weight")})
    fixed = {"sandwich_norms": True, "rope_interleaved": True, "attn_out_bias": False}
    options = {"attn_bias": "attention_bias"}
    hf_defaults = {**LLAMA_DEFAULTS, "max_position_embeddings": 131072,
                   "rms_norm_eps": 1.5625e-07, "attention_bias": True}
    # GQA, qkv bias, half of each head rotated (GLM-4's default).
    tiny = {"vocab_size": 128, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
            "max_position_embeddings": 256, "attention_bias": True,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                "partial_rotary_factor": 0.5}}

    def quirks_from_hf(self, hf: dict[str, Any], where: str) -> dict[str, Any]:
        rope = hf.get("rope_parameters") or {}
        return {"rope_fraction": float(rope.get("partial_rotary_factor",
                                                 hf.get("partial_rotary_factor", 0.5)))}

    def quirks_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        hf: dict[str, Any] = {"partial_rotary_factor": cfg.rope_fraction}
        if cfg.vocab_size <= _GLM4_PAD_ID:
            hf.update(pad_token_id=None, bos_token_id=None, eos_token_id=None)
        return hf


GLM4 = Glm4Family()
