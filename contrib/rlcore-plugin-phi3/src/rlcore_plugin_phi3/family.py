"""Phi-3 on rlcore's ``DecoderFamily``: Llama's shape with fused projections.

What differs from Llama, and all this module declares:
- ``self_attn.qkv_proj`` holds q, k and v stacked along the output dimension, and
  ``mlp.gate_up_proj`` holds gate then up; ``DecoderKeys.fused`` splits them for the core
  and fuses them back;
- no biases; a sliding window when ``sliding_window`` is set;
- ``partial_rotary_factor`` (Phi-4-mini): RoPE on the first part of each head only;
- ``longrope`` scaling (the 128k models) is read by the base; its
  ``original_max_position_embeddings`` is also written at the top level, where Phi3Config has it.
"""

from __future__ import annotations

from typing import Any

from rlcore.sdk import DecoderFamily, DecoderKeys, TransformerConfig

# --8<-- [start:family]
_PHI3_DEFAULT_IDS = 32000  # Phi3Config's default pad/eos id, which must lie inside the vocabulary


class Phi3Family(DecoderFamily):
    """Phi-3 (``model_type: phi3``)."""

    name = model_type = "phi3"
    architecture = "Phi3ForCausalLM"
    keys = DecoderKeys(fused={
        "self_attn.qkv_proj.weight": ("attn.q_proj.weight", "attn.k_proj.weight", "attn.v_proj.weight"),
        "mlp.gate_up_proj.weight": ("mlp.gate_proj.weight", "mlp.up_proj.weight"),
    })
    options = {"sliding_window": "sliding_window"}
    # GQA (4 query heads, 2 kv heads), so the qkv split is uneven; tests add the window.
    tiny = {"vocab_size": 128, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
            "max_position_embeddings": 256,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}}

    def quirks_from_hf(self, hf: dict[str, Any], where: str) -> dict[str, Any]:
        """RoPE on the first ``partial_rotary_factor`` of each head."""
        rope = hf.get("rope_parameters") or {}
        return {"rope_fraction": float(rope.get("partial_rotary_factor",
                                                 hf.get("partial_rotary_factor", 1.0)))}

    def quirks_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        native = (cfg.rope_scaling or {}).get("original_max_position_embeddings", cfg.max_positions)
        hf: dict[str, Any] = {"original_max_position_embeddings": native}
        if cfg.vocab_size <= _PHI3_DEFAULT_IDS:
            hf.update(pad_token_id=None, bos_token_id=None, eos_token_id=None)
        return hf


PHI3 = Phi3Family()
# --8<-- [end:family]
