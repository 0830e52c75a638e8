"""Phi-3 <-> core transformer: Llama's shape with fused projections.

What differs from Llama, and all this module declares:
- ``self_attn.qkv_proj`` holds q, k and v stacked along the output dimension, and
  ``mlp.gate_up_proj`` holds gate then up; they are split for the core and fused back;
- no biases; a sliding window when ``sliding_window`` is set;
- refused with a clear error: partial rotary embeddings (Phi-4-mini) and ``longrope``
  scaling (the 128k models), which the core does not implement.
"""

from __future__ import annotations

from typing import Any

from rlcore.errors import ModelLoadError
from rlcore.models.config import TransformerConfig
from rlcore.models.hf_layout import DecoderKeys
from rlcore_plugin_llama.family import LlamaFamily

_UNFUSED = DecoderKeys(block={
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "mlp_norm.weight",
    **{f"self_attn.{p}_proj.weight": f"attn.{p}_proj.weight" for p in "qkvo"},
    **{f"mlp.{p}_proj.weight": f"mlp.{p}_proj.weight" for p in ("gate", "up", "down")},
})
_PHI3_DEFAULT_IDS = 32000  # Phi3Config's default pad/eos id, which must lie inside the vocabulary


class Phi3Family(LlamaFamily):
    """Phi-3 (``model_type: phi3``)."""

    name = "phi3"
    model_type = "phi3"
    architecture = "Phi3ForCausalLM"
    sliding = True

    def config_from_hf(self, hf: dict[str, Any]) -> TransformerConfig:
        where = f"{self.model_type} config.json"
        rope = dict(hf.get("rope_parameters") or {})
        partial = rope.pop("partial_rotary_factor", hf.get("partial_rotary_factor", 1.0))
        if float(partial) != 1.0:
            raise ModelLoadError(f"{where}: partial_rotary_factor={partial} (rotary embeddings on "
                                 "part of each head, as in Phi-4-mini) is not supported")
        return super().config_from_hf({**hf, "rope_parameters": rope or None})

    def config_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        hf = super().config_to_hf(cfg)
        hf["original_max_position_embeddings"] = cfg.max_positions
        if cfg.vocab_size <= _PHI3_DEFAULT_IDS:
            hf.update(pad_token_id=None, bos_token_id=None, eos_token_id=None)
        return hf

    def state_dict_from_hf(self, sd: dict[str, Any], cfg: TransformerConfig) -> dict[str, Any]:
        q, kv = cfg.n_q_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
        out = {}
        for key, t in sd.items():
            if key.endswith(".self_attn.qkv_proj.weight"):
                stem = key[: -len("qkv_proj.weight")]
                if t.shape[0] != q + 2 * kv:
                    raise ModelLoadError(f"{key}: {t.shape[0]} rows, expected {q + 2 * kv} "
                                         f"(q {q} + k {kv} + v {kv})")
                for name, part in zip("qkv", t.split([q, kv, kv]), strict=True):
                    out[f"{stem}{name}_proj.weight"] = part
            elif key.endswith(".mlp.gate_up_proj.weight"):
                stem = key[: -len("gate_up_proj.weight")]
                gate, up = t.chunk(2, dim=0)
                out[f"{stem}gate_proj.weight"], out[f"{stem}up_proj.weight"] = gate, up
            else:
                out[key] = t
        return _UNFUSED.to_core(out, cfg, self.model_type)

    def state_dict_to_hf(self, sd: dict[str, Any], cfg: TransformerConfig) -> dict[str, Any]:
        import torch

        unfused = _UNFUSED.to_hf(sd, cfg, self.model_type)
        out = {}
        for key, t in unfused.items():
            if key.endswith(".self_attn.q_proj.weight"):
                stem = key[: -len("q_proj.weight")]
                out[f"{stem}qkv_proj.weight"] = torch.cat(
                    [unfused[f"{stem}{p}_proj.weight"] for p in "qkv"])
            elif key.endswith(".mlp.gate_proj.weight"):
                stem = key[: -len("gate_proj.weight")]
                out[f"{stem}gate_up_proj.weight"] = torch.cat(
                    [t, unfused[f"{stem}up_proj.weight"]])
            elif not key.endswith((".self_attn.k_proj.weight", ".self_attn.v_proj.weight",
                                   ".mlp.up_proj.weight")):
                out[key] = t
        return out

    def block_param_names(self, cfg: TransformerConfig, i: int) -> list[str]:
        p = f"model.layers.{i}."
        return [p + "input_layernorm.weight", p + "self_attn.qkv_proj.weight",
                p + "self_attn.o_proj.weight", p + "post_attention_layernorm.weight",
                p + "mlp.gate_up_proj.weight", p + "mlp.down_proj.weight"]

    def tiny_config(self) -> TransformerConfig:
        """GQA (4 query heads, 2 kv heads) and no window; tests add the window as a variant."""
        return self.config_from_hf({
            "model_type": "phi3", "vocab_size": 128, "hidden_size": 64, "intermediate_size": 96,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "rms_norm_eps": 1e-5, "max_position_embeddings": 256,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
        })


PHI3 = Phi3Family()
