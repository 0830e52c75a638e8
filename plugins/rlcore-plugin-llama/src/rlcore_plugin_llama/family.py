"""Llama 2 / 3 / 3.1 and Mistral on rlcore's ``DecoderFamily``: names and config differences only.

Quirks handled here:
- RoPE as transformers-5 ``rope_parameters`` or as the older ``rope_theta`` / ``rope_scaling``
  keys (read by ``rlcore.models.hf_layout``); scaling types default, linear and llama3.
- Llama's ``attention_bias`` covers q/k/v *and* o_proj; ``mlp_bias``; explicit ``head_dim``;
  tied embeddings (Llama 3.2 small models).
- Mistral: no biases, and one sliding window on every layer.
"""

from __future__ import annotations

from rlcore.sdk import DecoderFamily


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


LLAMA = LlamaFamily()
MISTRAL = MistralFamily()
