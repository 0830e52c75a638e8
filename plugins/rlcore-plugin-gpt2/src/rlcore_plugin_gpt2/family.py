"""GPT-2 on rlcore's ``DecoderFamily``: its own names, Conv1D weights and config keys.

Quirks handled here:
- Conv1D layout: HF stores ``[in, out]`` weights; the core uses ``nn.Linear``'s
  ``[out, in]``, so every projection is transposed (``DecoderKeys.transposed``).
- One fused ``c_attn`` projection (q|k|v along the output dim) split into the
  core's ``q_proj``/``k_proj``/``v_proj`` and fused back on the way out.
- Learned absolute positions (``wpe``), LayerNorm with bias, biases on every
  projection, a plain (ungated) ``gelu_new`` MLP, tied input/output embeddings.
- Checkpoints written by ``GPT2Model`` have no ``transformer.`` prefix, and old
  ones carry the ``attn.bias``/``attn.masked_bias`` mask buffers: both read fine.
"""

from __future__ import annotations

import re
from typing import Any

from rlcore.sdk import DecoderFamily, DecoderKeys, ModelLoadError, StateDict, TransformerConfig

_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
KEYS = DecoderKeys(
    layer_prefix="transformer.h.",
    block={
        **{f"ln_{n}.{t}": f"{core}_norm.{t}" for n, core in (("1", "attn"), ("2", "mlp"))
           for t in ("weight", "bias")},
        **{f"attn.c_proj.{t}": f"attn.o_proj.{t}" for t in ("weight", "bias")},
        **{f"mlp.c_fc.{t}": f"mlp.up_proj.{t}" for t in ("weight", "bias")},
        **{f"mlp.c_proj.{t}": f"mlp.down_proj.{t}" for t in ("weight", "bias")},
    },
    fused={f"attn.c_attn.{t}": tuple(f"attn.{p}_proj.{t}" for p in "qkv") for t in ("weight", "bias")},
    transposed=frozenset(_CONV1D),
    top={"transformer.wte.weight": "embed.weight", "transformer.wpe.weight": "pos_embed.weight",
         "transformer.ln_f.weight": "final_norm.weight", "transformer.ln_f.bias": "final_norm.bias",
         "lm_head.weight": "lm_head.weight", "score.weight": "value_head.weight"},
    # Causal-mask buffers that old checkpoints store; they hold no weights.
    ignored=re.compile(r"^transformer\.h\.\d+\.(attn|crossattention)\.(bias|masked_bias)$"),
)
# Options of GPT2Config the core does not compute, with the only value it supports.
_REQUIRED = {"scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
             "add_cross_attention": False}


class GPT2Family(DecoderFamily):
    """GPT-2 (``model_type: gpt2``)."""

    name = model_type = "gpt2"
    architecture = "GPT2LMHeadModel"
    keys = KEYS
    fixed = {"norm_type": "layernorm", "gated_mlp": False, "position": "learned",
             "attn_bias": True, "attn_out_bias": True, "mlp_bias": True}
    hf_defaults = {"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12,
                   "n_head": 12, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
                   "tie_word_embeddings": True, **_REQUIRED}
    tiny = {"vocab_size": 128, "n_positions": 256, "n_embd": 64, "n_layer": 2, "n_head": 4,
            "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
            "tie_word_embeddings": True}

    def shape_from_hf(self, hf: dict[str, Any], where: str) -> dict[str, Any]:
        hidden, n_head = int(hf["n_embd"]), int(hf["n_head"])
        if hidden % n_head:
            raise ModelLoadError(f"{where}: n_embd={hidden} is not a multiple of n_head={n_head}")
        return dict(vocab_size=int(hf["vocab_size"]), hidden_size=hidden,
                    intermediate_size=int(hf.get("n_inner") or 4 * hidden), n_layers=int(hf["n_layer"]),
                    n_q_heads=n_head, n_kv_heads=n_head, head_dim=hidden // n_head,
                    norm_eps=float(hf["layer_norm_epsilon"]),
                    activation=self.activation(hf, "activation_function", where),
                    tie_embeddings=bool(hf["tie_word_embeddings"]), max_positions=int(hf["n_positions"]))

    def shape_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        return {"vocab_size": cfg.vocab_size, "n_positions": cfg.max_positions,
                "n_embd": cfg.hidden_size, "n_layer": cfg.n_layers, "n_head": cfg.n_q_heads,
                "n_inner": None if cfg.intermediate_size == 4 * cfg.hidden_size else cfg.intermediate_size,
                "activation_function": cfg.activation, "layer_norm_epsilon": cfg.norm_eps,
                "tie_word_embeddings": cfg.tie_embeddings}

    def quirks_from_hf(self, hf: dict[str, Any], where: str) -> dict[str, Any]:
        """Refuse attention options the core lacks (reorder_and_upcast_attn only changes
        mixed-precision numerics; fp32 math is identical)."""
        for key, needed in _REQUIRED.items():
            if bool(hf[key]) != needed:
                raise ModelLoadError(f"{where}: {key}={hf[key]!r} is not supported by the core "
                                     f"transformer (it needs {key}={needed})")
        return {}

    def quirks_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        # The core model has no dropout; say so rather than invent one.
        hf = {**_REQUIRED, "reorder_and_upcast_attn": False, "resid_pdrop": 0.0, "embd_pdrop": 0.0,
              "attn_pdrop": 0.0}
        if cfg.vocab_size <= 50256:
            # GPT2Config defaults bos/eos to 50256, which a smaller vocabulary cannot hold.
            hf["bos_token_id"] = hf["eos_token_id"] = None
        return hf

    def state_dict_from_hf(self, sd: StateDict, cfg: TransformerConfig) -> StateDict:
        """``GPT2Model`` checkpoints lack the ``transformer.`` prefix of ``GPT2LMHeadModel``."""
        top = ("transformer.", "lm_head.", "score.")
        return super().state_dict_from_hf(
            {k if k.startswith(top) else "transformer." + k: t for k, t in sd.items()}, cfg)


GPT2 = GPT2Family()
