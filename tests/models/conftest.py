"""Tiny core configs covering every option, and a minimal Llama-layout family for HF I/O tests."""

from __future__ import annotations

import pytest

from rlcore.models.config import TransformerConfig
from rlcore.models.decoder_family import DecoderFamily

CONFIGS = {
    "llama-gqa-rope3": TransformerConfig(
        vocab_size=97, hidden_size=32, intermediate_size=64, n_layers=2, n_q_heads=4, n_kv_heads=2,
        rope_theta=500000.0, max_positions=256,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 16}),
    "gpt2-like": TransformerConfig(
        vocab_size=97, hidden_size=32, intermediate_size=64, n_layers=2, n_q_heads=4,
        norm_type="layernorm", norm_eps=1e-5, activation="gelu_new", gated_mlp=False,
        position="learned", attn_bias=True, attn_out_bias=True, mlp_bias=True,
        tie_embeddings=True, max_positions=128),
    "qwen3-gemma-window": TransformerConfig(
        vocab_size=97, hidden_size=32, intermediate_size=48, n_layers=2, n_q_heads=4, n_kv_heads=1,
        head_dim=16, qk_norm=True, attn_bias=True, norm_unit_offset=True, activation="gelu",
        sliding_window=5, rope_scaling={"rope_type": "linear", "factor": 2.0}),
}


@pytest.fixture(params=list(CONFIGS), ids=list(CONFIGS))
def config(request) -> TransformerConfig:
    """Each tiny config in turn (a fresh copy)."""
    return TransformerConfig.from_dict(CONFIGS[request.param].to_dict())


class TinyLlamaFamily(DecoderFamily):
    """The Llama layout as the base declares it: enough to test rlcore.models.hf_io without plugins."""

    name = model_type = "llama"
    architecture = "LlamaForCausalLM"
    tiny = {"vocab_size": 97, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128}


@pytest.fixture
def tiny_family() -> TinyLlamaFamily:
    return TinyLlamaFamily()
