"""Llama 2 / 3 / 3.1 and Mistral <-> core transformer: configs, state dicts, parameter names.

Quirks handled here:
- RoPE as transformers-5 ``rope_parameters`` or as the older ``rope_theta`` / ``rope_scaling``
  keys (read by ``rlcore.models.hf_layout``); scaling types default, linear and llama3.
- Llama's ``attention_bias`` covers q/k/v *and* o_proj; ``mlp_bias``; explicit ``head_dim``;
  tied embeddings (Llama 3.2 small models).
- Mistral: no biases, and one sliding window on every layer.
"""

from __future__ import annotations

from typing import Any

from rlcore.errors import ModelLoadError
from rlcore.models.config import TransformerConfig
from rlcore.models.family import ModelFamily
from rlcore.models.hf_layout import DecoderKeys, rope_from_hf, rope_to_hf

_KEYS = DecoderKeys(
    block={
        "input_layernorm.weight": "attn_norm.weight",
        "post_attention_layernorm.weight": "mlp_norm.weight",
        **{f"self_attn.{p}_proj.{t}": f"attn.{p}_proj.{t}" for p in "qkvo" for t in ("weight", "bias")},
        **{f"mlp.{p}_proj.{t}": f"mlp.{p}_proj.{t}" for p in ("gate", "up", "down")
           for t in ("weight", "bias")},
    },
)
_ACTIVATIONS = {"silu": "silu", "gelu": "gelu", "gelu_new": "gelu_new", "gelu_pytorch_tanh": "gelu_new"}


class LlamaFamily(ModelFamily):
    """Llama 2, 3, 3.1 and 3.2 (``model_type: llama``)."""

    name = "llama"
    model_type = "llama"
    architecture = "LlamaForCausalLM"
    sliding = False  # Mistral sets a window on every layer

    def config_from_hf(self, hf: dict[str, Any]) -> TransformerConfig:
        where = f"{self.model_type} config.json"
        if hf.get("model_type", self.model_type) != self.model_type:
            raise ModelLoadError(f"{where}: model_type is {hf.get('model_type')!r}, "
                                 f"expected {self.model_type!r}")
        act = hf.get("hidden_act", "silu")
        if act not in _ACTIVATIONS:
            raise ModelLoadError(f"{where}: hidden_act {act!r} is not supported "
                                 f"(supported: {', '.join(_ACTIVATIONS)})")
        n_q = int(hf["num_attention_heads"])
        theta, scaling = rope_from_hf(hf, where)
        bias = bool(hf.get("attention_bias", False))
        return TransformerConfig(
            vocab_size=int(hf["vocab_size"]),
            hidden_size=int(hf["hidden_size"]),
            intermediate_size=int(hf["intermediate_size"]),
            n_layers=int(hf["num_hidden_layers"]),
            n_q_heads=n_q,
            n_kv_heads=int(hf.get("num_key_value_heads") or n_q),
            head_dim=int(hf.get("head_dim") or hf["hidden_size"] // n_q),
            norm_type="rmsnorm",
            norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            activation=_ACTIVATIONS[act],
            gated_mlp=True,
            position="rotary",
            rope_theta=theta,
            rope_scaling=scaling,
            attn_bias=bias,
            attn_out_bias=bias,
            mlp_bias=bool(hf.get("mlp_bias", False)),
            tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
            sliding_window=int(hf["sliding_window"]) if self.sliding and hf.get("sliding_window") else None,
            max_positions=int(hf.get("max_position_embeddings", 2048)),
        )

    def config_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        self.check_config(cfg)
        hf: dict[str, Any] = {
            "architectures": [self.architecture],
            "model_type": self.model_type,
            "vocab_size": cfg.vocab_size,
            "hidden_size": cfg.hidden_size,
            "intermediate_size": cfg.intermediate_size,
            "num_hidden_layers": cfg.n_layers,
            "num_attention_heads": cfg.n_q_heads,
            "num_key_value_heads": cfg.n_kv_heads,
            "head_dim": cfg.head_dim,
            "hidden_act": cfg.activation,
            "max_position_embeddings": cfg.max_positions,
            "rms_norm_eps": cfg.norm_eps,
            "rope_parameters": rope_to_hf(cfg),
            "tie_word_embeddings": cfg.tie_embeddings,
        }
        if self.sliding:
            hf["sliding_window"] = cfg.sliding_window
        else:
            hf.update(attention_bias=cfg.attn_bias, mlp_bias=cfg.mlp_bias)
        return hf

    def check_config(self, cfg: TransformerConfig) -> None:
        """Refuse a core config that this HF architecture cannot express."""
        want: dict[str, Any] = dict(norm_type="rmsnorm", norm_unit_offset=False, gated_mlp=True,
                                    position="rotary", qk_norm=False, attn_out_bias=cfg.attn_bias)
        if self.sliding:
            want.update(attn_bias=False, attn_out_bias=False, mlp_bias=False, activation="silu")
        else:
            want["sliding_window"] = None
        bad = {k: getattr(cfg, k) for k, v in want.items() if getattr(cfg, k) != v}
        if bad:
            raise ModelLoadError(f"core config cannot be saved as {self.model_type}: {bad}; "
                                 f"{self.architecture} needs {({k: want[k] for k in bad})}")

    def state_dict_from_hf(self, sd: dict[str, Any], cfg: TransformerConfig) -> dict[str, Any]:
        return _KEYS.to_core(sd, cfg, self.model_type)

    def state_dict_to_hf(self, sd: dict[str, Any], cfg: TransformerConfig) -> dict[str, Any]:
        return _KEYS.to_hf(sd, cfg, self.model_type)

    def embedding_param_names(self, cfg: TransformerConfig) -> list[str]:
        return ["model.embed_tokens.weight"]

    def block_param_names(self, cfg: TransformerConfig, i: int) -> list[str]:
        p = f"model.layers.{i}."
        names = [p + "input_layernorm.weight"]
        for proj in "qkvo":
            names.append(f"{p}self_attn.{proj}_proj.weight")
            if cfg.attn_bias:
                names.append(f"{p}self_attn.{proj}_proj.bias")
        names.append(p + "post_attention_layernorm.weight")
        for proj in ("gate", "up", "down"):
            names.append(f"{p}mlp.{proj}_proj.weight")
            if cfg.mlp_bias:
                names.append(f"{p}mlp.{proj}_proj.bias")
        return names

    def head_param_names(self, cfg: TransformerConfig) -> list[str]:
        if cfg.value_head:
            return ["model.norm.weight", "score.weight"]
        return ["model.norm.weight"] + ([] if cfg.tie_embeddings else ["lm_head.weight"])

    def tiny_config(self) -> TransformerConfig:
        """GQA plus Llama 3.1 RoPE scaling that bites within 64 tokens."""
        return self.config_from_hf({
            "model_type": self.model_type, "vocab_size": 128, "hidden_size": 64,
            "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "max_position_embeddings": 256,
            "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 16},
        })


class MistralFamily(LlamaFamily):
    """Mistral (``model_type: mistral``): the Llama layout with a sliding window."""

    name = "mistral"
    model_type = "mistral"
    architecture = "MistralForCausalLM"
    sliding = True

    def tiny_config(self) -> TransformerConfig:
        """GQA and a window of 8, so test sequences (up to ~30 tokens) slide."""
        return self.config_from_hf({
            "model_type": "mistral", "vocab_size": 128, "hidden_size": 64, "intermediate_size": 96,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1,
            "rms_norm_eps": 1e-5, "max_position_embeddings": 256, "sliding_window": 8,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
        })


LLAMA = LlamaFamily()
MISTRAL = MistralFamily()
