"""Llama 2 / 3 / 3.1 and Mistral on rlcore's ``DecoderFamily``: names and config differences only.

Quirks handled here:
- RoPE as transformers-5 ``rope_parameters`` or as the older ``rope_theta`` / ``rope_scaling``
  keys (read by ``rlcore.models.hf_layout``); scaling types default, linear and llama3.
- Llama's ``attention_bias`` covers q/k/v *and* o_proj; ``mlp_bias``; explicit ``head_dim``;
  tied embeddings (Llama 3.2 small models).
- Mistral: no biases, and one sliding window on every layer.
- SmolLM3: the Llama layout with RoPE left out of some layers (``no_rope_layers``, NoPE), and
  an optional window on those layers only.
"""

from __future__ import annotations

from typing import Any

from rlcore.sdk import LLAMA_DEFAULTS, DecoderFamily, TransformerConfig


class LlamaFamily(DecoderFamily):
    """Llama 2, 3, 3.1 and 3.2 (``model_type: llama``)."""

    name = model_type = "llama"
    architecture = "LlamaForCausalLM"
    options = {"attn_bias": "attention_bias", "attn_out_bias": "attention_bias",
               "mlp_bias": "mlp_bias"}
    # GQA plus Llama 3.1 RoPE scaling that bites within 64 tokens.
    tiny = {"vocab_size": 128, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
            "max_position_embeddings": 256,
            "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 16}}


class MistralFamily(DecoderFamily):
    """Mistral (``model_type: mistral``): the Llama layout without biases, with a sliding window."""

    name = model_type = "mistral"
    architecture = "MistralForCausalLM"
    options = {"sliding_window": "sliding_window"}
    # GQA and a window of 8, so test sequences (up to ~30 tokens) slide.
    tiny = {"vocab_size": 128, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 1, "rms_norm_eps": 1e-5,
            "max_position_embeddings": 256, "sliding_window": 8,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}}


class SmolLM3Family(LlamaFamily):
    """SmolLM3 (``model_type: smollm3``): Llama with NoPE layers (by default every 4th)."""

    name = model_type = "smollm3"
    architecture = "SmolLM3ForCausalLM"
    hf_defaults = {**LLAMA_DEFAULTS, "tie_word_embeddings": True, "max_position_embeddings": 32768,
                   "rope_theta": 2000000.0}
    # 4 layers, the 4th without RoPE (HF's default interval), GQA, tied.
    tiny = {"vocab_size": 128, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 4,
            "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-6,
            "max_position_embeddings": 256, "no_rope_layers": [1, 1, 1, 0],
            "rope_parameters": {"rope_type": "default", "rope_theta": 2000000.0}}

    def quirks_from_hf(self, hf: dict[str, Any], where: str) -> dict[str, Any]:
        """``no_rope_layers`` (1: RoPE) or its interval; HF slides only NoPE layers, if at all."""
        n = int(hf["num_hidden_layers"])
        ropes = [bool(f) for f in hf.get("no_rope_layers") or [
            (i + 1) % int(hf.get("no_rope_layer_interval", 4)) != 0 for i in range(n)]][:n]
        window = hf.get("sliding_window") if hf.get("use_sliding_window") else None
        kinds = hf.get("layer_types") or ["sliding_attention" if not r else "full_attention"
                                          for r in ropes]
        slides = [k == "sliding_attention" for k in kinds[:n]]
        window = window if any(slides) else None
        return {"rope_layers": None if all(ropes) else ropes, "sliding_window": window,
                "sliding_layers": None if window is None or all(slides) else slides}

    def quirks_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        kinds = ["sliding_attention" if cfg.layer_slides(i) else "full_attention"
                 for i in range(cfg.n_layers)]
        hf = {"no_rope_layers": [int(cfg.layer_rope(i) is not None) for i in range(cfg.n_layers)],
              "use_sliding_window": cfg.sliding_window is not None,
              "sliding_window": cfg.sliding_window, "layer_types": kinds}
        if cfg.vocab_size <= 128004:  # HF's default special ids (128000-128004) would not fit
            hf.update(pad_token_id=None, bos_token_id=None, eos_token_id=None)
        return hf


LLAMA = LlamaFamily()
MISTRAL = MistralFamily()
SMOLLM3 = SmolLM3Family()
