"""Qwen2 / Qwen2.5 and Qwen3 <-> core transformer: configs, state dicts, parameter names.

Quirks handled here:
- Qwen2: bias on q/k/v but not on o_proj; optional tied embeddings; a sliding
  window that HF applies only to layers ``i >= max_window_layers`` and only when
  ``use_sliding_window`` is set.
- Qwen3: RMSNorm over each head of q and k (``q_norm``/``k_norm``) before RoPE;
  an explicit ``head_dim`` that need not equal hidden/heads; ``attention_bias``
  covers q/k/v *and* o_proj.
- Both: RoPE parameters as ``rope_parameters`` (transformers 5) or as the older
  ``rope_theta`` / ``rope_scaling`` keys (read by ``rlcore.models.hf_layout``).
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
        "self_attn.q_norm.weight": "attn.q_norm.weight",
        "self_attn.k_norm.weight": "attn.k_norm.weight",
        **{f"mlp.{p}_proj.weight": f"mlp.{p}_proj.weight" for p in ("gate", "up", "down")},
    },
)


class QwenFamily(ModelFamily):
    """Shared Qwen2/Qwen3 conversion; the subclasses set the quirks."""

    name = "qwen2"
    model_type = "qwen2"
    architecture = "Qwen2ForCausalLM"
    qk_norm = False

    # ---------------------------------------------------------------- configs
    def config_from_hf(self, hf: dict[str, Any]) -> TransformerConfig:
        where = f"{self.model_type} config.json"
        if hf.get("model_type", self.model_type) != self.model_type:
            raise ModelLoadError(
                f"{where}: model_type is {hf.get('model_type')!r}, expected {self.model_type!r}"
            )
        act = hf.get("hidden_act", "silu")
        if act != "silu":
            raise ModelLoadError(f"{where}: hidden_act {act!r} is not supported (expected 'silu')")
        n_layers = int(hf["num_hidden_layers"])
        n_q = int(hf["num_attention_heads"])
        n_kv = int(hf.get("num_key_value_heads") or n_q)
        head_dim = int(hf.get("head_dim") or hf["hidden_size"] // n_q)
        theta, scaling = rope_from_hf(hf, where)
        if self.qk_norm:
            attn_bias = out_bias = bool(hf.get("attention_bias", False))
        else:
            attn_bias, out_bias = True, False
        return TransformerConfig(
            vocab_size=int(hf["vocab_size"]),
            hidden_size=int(hf["hidden_size"]),
            intermediate_size=int(hf["intermediate_size"]),
            n_layers=n_layers,
            n_q_heads=n_q,
            n_kv_heads=n_kv,
            head_dim=head_dim,
            norm_type="rmsnorm",
            norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            norm_unit_offset=False,
            activation="silu",
            gated_mlp=True,
            position="rotary",
            rope_theta=theta,
            rope_scaling=scaling,
            attn_bias=attn_bias,
            attn_out_bias=out_bias,
            mlp_bias=False,
            qk_norm=self.qk_norm,
            tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
            sliding_window=self._sliding_window_from_hf(hf, n_layers, where),
            max_positions=int(hf.get("max_position_embeddings", 32768)),
        )

    @staticmethod
    def _sliding_window_from_hf(hf: dict[str, Any], n_layers: int, where: str) -> int | None:
        """HF slides only layers marked 'sliding_attention'; the core slides all or none."""
        if not hf.get("use_sliding_window", False) or hf.get("sliding_window") is None:
            return None
        layer_types = hf.get("layer_types") or [
            "sliding_attention" if i >= int(hf.get("max_window_layers", 28)) else "full_attention"
            for i in range(n_layers)
        ]
        sliding = [t == "sliding_attention" for t in layer_types[:n_layers]]
        if not any(sliding):
            return None
        if not all(sliding):
            raise ModelLoadError(
                f"{where}: use_sliding_window is set for only some layers "
                f"(max_window_layers={hf.get('max_window_layers')}, {sum(sliding)}/{n_layers} "
                "sliding); the core transformer applies one window to every layer. Set "
                "max_window_layers to 0 (all layers slide) or use_sliding_window to false."
            )
        return int(hf["sliding_window"])

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
            "hidden_act": "silu",
            "max_position_embeddings": cfg.max_positions,
            "rms_norm_eps": cfg.norm_eps,
            "rope_parameters": rope_to_hf(cfg),
            "tie_word_embeddings": cfg.tie_embeddings,
            "use_sliding_window": cfg.sliding_window is not None,
            "sliding_window": cfg.sliding_window,
            "max_window_layers": 0 if cfg.sliding_window is not None else cfg.n_layers,
            "attention_dropout": 0.0,
        }
        if self.qk_norm:
            hf["attention_bias"] = cfg.attn_bias
        return hf

    def check_config(self, cfg: TransformerConfig) -> None:
        """Refuse a core config that this HF architecture cannot express."""
        want = dict(
            norm_type="rmsnorm", activation="silu", gated_mlp=True, position="rotary",
            mlp_bias=False, qk_norm=self.qk_norm, norm_unit_offset=False,
        )
        if self.qk_norm:
            want["attn_out_bias"] = cfg.attn_bias
        else:
            want.update(attn_bias=True, attn_out_bias=False)
        bad = {k: getattr(cfg, k) for k, v in want.items() if getattr(cfg, k) != v}
        if bad:
            raise ModelLoadError(
                f"core config cannot be saved as {self.model_type}: {bad} "
                f"(the {self.architecture} layout needs {({k: want[k] for k in bad})})"
            )

    # ----------------------------------------------------------- state dicts
    def state_dict_from_hf(self, sd: dict[str, Any], cfg: TransformerConfig) -> dict[str, Any]:
        return _KEYS.to_core(sd, cfg, self.model_type)

    def state_dict_to_hf(self, sd: dict[str, Any], cfg: TransformerConfig) -> dict[str, Any]:
        return _KEYS.to_hf(sd, cfg, self.model_type)

    # -------------------------------------------------------- parameter names
    def embedding_param_names(self, cfg: TransformerConfig) -> list[str]:
        return ["model.embed_tokens.weight"]

    def block_param_names(self, cfg: TransformerConfig, i: int) -> list[str]:
        p = f"model.layers.{i}."
        names = [p + "input_layernorm.weight"]
        for proj in "qkv":
            names.append(p + f"self_attn.{proj}_proj.weight")
            if cfg.attn_bias:
                names.append(p + f"self_attn.{proj}_proj.bias")
        names.append(p + "self_attn.o_proj.weight")
        if cfg.attn_out_bias:
            names.append(p + "self_attn.o_proj.bias")
        if cfg.qk_norm:
            names += [p + "self_attn.q_norm.weight", p + "self_attn.k_norm.weight"]
        names.append(p + "post_attention_layernorm.weight")
        names += [p + f"mlp.{proj}_proj.weight" for proj in ("gate", "up", "down")]
        return names

    def head_param_names(self, cfg: TransformerConfig) -> list[str]:
        names = ["model.norm.weight"]
        if cfg.value_head:
            names.append("score.weight")
        elif not cfg.tie_embeddings:
            names.append("lm_head.weight")
        return names

    # ------------------------------------------------------------- test config
    def tiny_config(self) -> TransformerConfig:
        return self.config_from_hf(
            {
                "model_type": self.model_type,
                "vocab_size": 128,
                "hidden_size": 64,
                "intermediate_size": 96,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,  # GQA
                "rms_norm_eps": 1e-6,
                "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"},
                "tie_word_embeddings": True,
                "max_position_embeddings": 256,
            }
        )


class Qwen2Family(QwenFamily):
    """Qwen2 and Qwen2.5 (``model_type: qwen2``)."""


class Qwen3Family(QwenFamily):
    """Qwen3 dense models (``model_type: qwen3``)."""

    name = "qwen3"
    model_type = "qwen3"
    architecture = "Qwen3ForCausalLM"
    qk_norm = True

    def tiny_config(self) -> TransformerConfig:
        return self.config_from_hf(
            {
                "model_type": "qwen3",
                "vocab_size": 128,
                "hidden_size": 64,
                "intermediate_size": 96,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "head_dim": 32,  # != hidden/heads, as in real Qwen3 configs
                "rms_norm_eps": 1e-6,
                "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"},
                "tie_word_embeddings": False,
                "attention_bias": False,
                "max_position_embeddings": 256,
            }
        )


QWEN2 = Qwen2Family()
QWEN3 = Qwen3Family()
