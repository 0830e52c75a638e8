"""Mixtral on rlcore's ``MoEFamily``: Mistral's attention, a mixture of experts on every layer.

Quirks handled here:
- the router's top-k softmax weights are always renormalised (no ``norm_topk_prob`` key);
- experts are as wide as ``intermediate_size``; files name them ``block_sparse_moe.experts.{j}.w1``
  (gate), ``w3`` (up), ``w2`` (down), read and stacked by ``rlcore.models.moe_family``;
- one sliding window on every layer, as Mistral;
- ``router_jitter_noise`` (multiplicative noise on the router input while training) is refused.
"""

from __future__ import annotations

from typing import Any

from rlcore.sdk import ModelLoadError, MoEFamily


class MixtralFamily(MoEFamily):
    """Mixtral 8x7B, 8x22B (``model_type: mixtral``)."""

    name = model_type = "mixtral"
    architecture = "MixtralForCausalLM"
    fixed = {"router_norm_topk": True}
    options = {"sliding_window": "sliding_window"}
    expert_names = ("w1", "w3", "w2")
    files_block = "block_sparse_moe"
    moe_config = {"n_experts": ("num_local_experts", "num_experts"),
                  "n_experts_per_token": ("num_experts_per_tok",)}
    # 4 experts, top-2, GQA; small but every expert is hit by the test sequences.
    tiny = {"vocab_size": 128, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
            "max_position_embeddings": 256, "num_local_experts": 4, "num_experts_per_tok": 2,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6}}

    def quirks_from_hf(self, hf: dict[str, Any], where: str) -> dict[str, Any]:
        if hf.get("router_jitter_noise"):
            raise ModelLoadError(f"{where}: router_jitter_noise={hf['router_jitter_noise']} is not "
                                 "supported (the core router adds no noise); set it to 0.0")
        return super().quirks_from_hf(hf, where)


MIXTRAL = MixtralFamily()
