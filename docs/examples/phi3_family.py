"""A model-family plugin for Phi-3: the Llama layout with fused ``qkv_proj`` and ``gate_up_proj``.

The guide docs/guides/new-family.md walks through it; ``test_phi3_family.py`` next to it runs
rlcore's ``FamilyConformance`` suite (logit parity with ``transformers``) on it.
"""

from __future__ import annotations

from typing import Any

import rlcore
from rlcore.errors import ModelLoadError
from rlcore.models.config import TransformerConfig
from rlcore.plugins.records import ModelFamilyRecord
from rlcore_plugin_llama.family import LlamaFamily

StateDict = dict[str, Any]


# --8<-- [start:family]
class Phi3Family(LlamaFamily):
    """Phi-3 (``model_type: phi3``): Llama's blocks, with q/k/v and gate/up each in one matrix."""

    name = "phi3"
    model_type = "phi3"
    architecture = "Phi3ForCausalLM"
    sliding = True  # like Mistral: no biases, an optional sliding window, written back on save

    def config_from_hf(self, hf: dict[str, Any]) -> TransformerConfig:
        if float(hf.get("partial_rotary_factor", 1.0)) != 1.0:
            raise ModelLoadError("phi3 config.json: partial_rotary_factor "
                                 f"{hf['partial_rotary_factor']} is not supported (only 1.0)")
        return super().config_from_hf(hf)  # refuses longrope scaling, as the core lacks it

    def config_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        # Phi3Config's default pad id (32000) would not fit a smaller vocabulary.
        return {**super().config_to_hf(cfg), "pad_token_id": None}

    def state_dict_from_hf(self, sd: StateDict, cfg: TransformerConfig) -> StateDict:
        """Split the fused matrices into Llama's names, then rename as Llama does."""
        q, kv = cfg.n_q_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
        out = {}
        for key, t in sd.items():
            if key.endswith("self_attn.qkv_proj.weight"):
                stem = key[: -len("qkv_proj.weight")]
                for proj, part in zip("qkv", t.split([q, kv, kv]), strict=True):
                    out[f"{stem}{proj}_proj.weight"] = part
            elif key.endswith("mlp.gate_up_proj.weight"):
                stem = key[: -len("gate_up_proj.weight")]
                out[stem + "gate_proj.weight"], out[stem + "up_proj.weight"] = t.chunk(2)
            else:
                out[key] = t
        return super().state_dict_from_hf(out, cfg)

    def state_dict_to_hf(self, sd: StateDict, cfg: TransformerConfig) -> StateDict:
        """The exact inverse: Llama's names, then fuse q/k/v and gate/up back."""
        import torch

        out = super().state_dict_to_hf(sd, cfg)
        for i in range(cfg.n_layers):
            attn, mlp = f"model.layers.{i}.self_attn.", f"model.layers.{i}.mlp."
            out[attn + "qkv_proj.weight"] = torch.cat(
                [out.pop(f"{attn}{p}_proj.weight") for p in "qkv"])
            out[mlp + "gate_up_proj.weight"] = torch.cat(
                [out.pop(f"{mlp}{p}_proj.weight") for p in ("gate", "up")])
        return out

    def block_param_names(self, cfg: TransformerConfig, i: int) -> list[str]:
        p = f"model.layers.{i}."
        return [p + "input_layernorm.weight", p + "self_attn.qkv_proj.weight",
                p + "self_attn.o_proj.weight", p + "post_attention_layernorm.weight",
                p + "mlp.gate_up_proj.weight", p + "mlp.down_proj.weight"]

    def tiny_config(self) -> TransformerConfig:
        """GQA (4 query heads, 2 key/value heads), so the qkv split is uneven."""
        return self.config_from_hf({
            "model_type": "phi3", "vocab_size": 128, "hidden_size": 64, "intermediate_size": 96,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "rms_norm_eps": 1e-5, "max_position_embeddings": 256, "hidden_act": "silu",
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
        })


PHI3 = Phi3Family()
# --8<-- [end:family]


# --8<-- [start:register]
@rlcore.hookimpl
def rlcore_model_families() -> list[ModelFamilyRecord]:
    """Register ``phi3``; ``load_pretrained`` then finds it from config.json's model_type."""
    return [ModelFamilyRecord("phi3", impl="phi3_family:PHI3", hf_model_types=("phi3",),
                              doc="Phi-3: Llama layout with fused qkv and gate_up projections.")]
# --8<-- [end:register]
