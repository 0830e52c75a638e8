"""Qwen2 / Qwen2.5 and Qwen3 on rlcore's ``DecoderFamily``: names and config differences only.

Quirks handled here:
- Qwen2: bias on q/k/v but not on o_proj; optional tied embeddings; a sliding
  window that HF applies only to layers ``i >= max_window_layers`` (or as ``layer_types``
  says) and only when ``use_sliding_window`` is set.
- Qwen3: RMSNorm over each head of q and k (``q_norm``/``k_norm``) before RoPE;
  an explicit ``head_dim`` that need not equal hidden/heads; ``attention_bias``
  covers q/k/v *and* o_proj.
- Both: RoPE parameters as ``rope_parameters`` (transformers 5) or as the older
  ``rope_theta`` / ``rope_scaling`` keys (read by ``rlcore.models.hf_layout``).
"""

from __future__ import annotations

from typing import Any

from rlcore.sdk import LLAMA_DEFAULTS, DecoderFamily, TransformerConfig


class Qwen2Family(DecoderFamily):
    """Qwen2 and Qwen2.5 (``model_type: qwen2``)."""

    name = model_type = "qwen2"
    architecture = "Qwen2ForCausalLM"
    fixed = {"attn_bias": True, "attn_out_bias": False}
    activations = {"silu": "silu"}
    hf_defaults = {**LLAMA_DEFAULTS, "max_position_embeddings": 32768}
    # GQA (4 query / 2 kv heads), qkv bias, tied embeddings (Qwen2.5-0.5B style).
    tiny = {"vocab_size": 128, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-6,
            "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
            "tie_word_embeddings": True, "max_position_embeddings": 256}

    def quirks_from_hf(self, hf: dict[str, Any], where: str) -> dict[str, Any]:
        """HF slides only layers marked 'sliding_attention' (by default ``i >= max_window_layers``)."""
        if not hf.get("use_sliding_window", False) or hf.get("sliding_window") is None:
            return {"sliding_window": None}
        n_layers = int(hf["num_hidden_layers"])
        layer_types = hf.get("layer_types") or [
            "sliding_attention" if i >= int(hf.get("max_window_layers", 28)) else "full_attention"
            for i in range(n_layers)]
        sliding = [t == "sliding_attention" for t in layer_types[:n_layers]]
        if not any(sliding):
            return {"sliding_window": None}
        return {"sliding_window": int(hf["sliding_window"]),
                "sliding_layers": None if all(sliding) else sliding}

    def quirks_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        window = cfg.sliding_window
        kinds = ["sliding_attention" if cfg.layer_slides(i) else "full_attention"
                 for i in range(cfg.n_layers)]
        return {"use_sliding_window": window is not None, "sliding_window": window,
                "max_window_layers": kinds.index("sliding_attention") if window else cfg.n_layers,
                "layer_types": kinds, "attention_dropout": 0.0}


class Qwen3Family(Qwen2Family):
    """Qwen3 dense models (``model_type: qwen3``): q/k norm, and ``attention_bias`` on all four."""

    name = model_type = "qwen3"
    architecture = "Qwen3ForCausalLM"
    fixed = {"qk_norm": True}
    options = {"attn_bias": "attention_bias", "attn_out_bias": "attention_bias"}
    # q/k norm, head_dim 32 != hidden 64 / 4 heads (as in real Qwen3 configs), GQA, untied.
    tiny = {**Qwen2Family.tiny, "head_dim": 32, "tie_word_embeddings": False,
            "attention_bias": False,
            "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}}


QWEN2 = Qwen2Family()
QWEN3 = Qwen3Family()
