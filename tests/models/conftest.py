"""Tiny core configs covering every option, and a minimal Llama-layout family for HF I/O tests."""

from __future__ import annotations

import pytest

from rlcore.models.config import TransformerConfig
from rlcore.models.family import ModelFamily

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


class TinyLlamaFamily(ModelFamily):
    """Just enough of the Llama layout to test rlcore.models.hf_io without installed plugins."""

    name = model_type = "llama"
    architecture = "LlamaForCausalLM"
    _renames = [(".model.embed_tokens.", ".embed."), (".model.layers.", ".blocks."),
                (".self_attn.", ".attn."), (".input_layernorm.", ".attn_norm."),
                (".post_attention_layernorm.", ".mlp_norm."), (".model.norm.", ".final_norm."),
                (".score.", ".value_head.")]

    def config_from_hf(self, hf):
        return TransformerConfig(
            vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"],
            intermediate_size=hf["intermediate_size"], n_layers=hf["num_hidden_layers"],
            n_q_heads=hf["num_attention_heads"], n_kv_heads=hf["num_key_value_heads"],
            head_dim=hf["head_dim"], norm_eps=hf["rms_norm_eps"],
            rope_theta=hf["rope_parameters"]["rope_theta"],
            tie_embeddings=hf["tie_word_embeddings"], max_positions=hf["max_position_embeddings"])

    def config_to_hf(self, cfg):
        return {"architectures": [self.architecture], "model_type": "llama",
                "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size,
                "intermediate_size": cfg.intermediate_size, "num_hidden_layers": cfg.n_layers,
                "num_attention_heads": cfg.n_q_heads, "num_key_value_heads": cfg.n_kv_heads,
                "head_dim": cfg.head_dim, "rms_norm_eps": cfg.norm_eps,
                "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
                "tie_word_embeddings": cfg.tie_embeddings,
                "max_position_embeddings": cfg.max_positions}

    def _rename(self, key: str, forward: bool) -> str:
        key = "." + key
        for hf, core in self._renames:
            key = key.replace(hf, core) if forward else key.replace(core, hf)
        return key[1:]

    def state_dict_from_hf(self, sd, cfg):
        skip_head = cfg.tie_embeddings or cfg.value_head
        return {self._rename(k, True): t for k, t in sd.items()
                if not (k == "lm_head.weight" and skip_head)}

    def state_dict_to_hf(self, sd, cfg):
        out = {self._rename(k, False): t for k, t in sd.items()}
        if cfg.tie_embeddings and not cfg.value_head:
            out["lm_head.weight"] = sd["embed.weight"]
        return out

    def embedding_param_names(self, cfg):
        return ["model.embed_tokens.weight"]

    def block_param_names(self, cfg, i):
        p = f"model.layers.{i}."
        return [p + n for n in ("input_layernorm.weight", "post_attention_layernorm.weight",
                                *(f"self_attn.{x}_proj.weight" for x in "qkvo"),
                                *(f"mlp.{x}_proj.weight" for x in ("gate", "up", "down")))]

    def head_param_names(self, cfg):
        return ["model.norm.weight"] + ([] if cfg.tie_embeddings else ["lm_head.weight"])

    def tiny_config(self):
        return TransformerConfig(vocab_size=97, hidden_size=32, intermediate_size=64, n_layers=2,
                                 n_q_heads=4, n_kv_heads=2, max_positions=128)


@pytest.fixture
def tiny_family() -> TinyLlamaFamily:
    return TinyLlamaFamily()
