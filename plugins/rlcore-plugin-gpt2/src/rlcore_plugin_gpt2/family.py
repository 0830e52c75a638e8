"""GPT-2 <-> core transformer: configs, state dicts, parameter names.

Quirks handled here:
- Conv1D layout: HF stores ``[in, out]`` weights; the core uses ``nn.Linear``'s
  ``[out, in]``, so every projection is transposed.
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

import torch

from rlcore.errors import ModelLoadError
from rlcore.models.config import TransformerConfig
from rlcore.models.family import ModelFamily

# Causal-mask buffers that old checkpoints store; they hold no weights.
_IGNORED = re.compile(r"^transformer\.h\.\d+\.(attn|crossattention)\.(bias|masked_bias)$")
_HF_LAYER = re.compile(r"^transformer\.h\.(\d+)\.(.+)$")
_CORE_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")

# Plain renames (no layout change), HF suffix inside a block -> core suffix.
_BLOCK_RENAME = {
    "ln_1.weight": "attn_norm.weight",
    "ln_1.bias": "attn_norm.bias",
    "ln_2.weight": "mlp_norm.weight",
    "ln_2.bias": "mlp_norm.bias",
    "attn.c_proj.bias": "attn.o_proj.bias",
    "mlp.c_fc.bias": "mlp.up_proj.bias",
    "mlp.c_proj.bias": "mlp.down_proj.bias",
}
# Conv1D weights: transposed on the way in and out.
_BLOCK_TRANSPOSE = {
    "attn.c_proj.weight": "attn.o_proj.weight",
    "mlp.c_fc.weight": "mlp.up_proj.weight",
    "mlp.c_proj.weight": "mlp.down_proj.weight",
}
_TOP = {
    "transformer.wte.weight": "embed.weight",
    "transformer.wpe.weight": "pos_embed.weight",
    "transformer.ln_f.weight": "final_norm.weight",
    "transformer.ln_f.bias": "final_norm.bias",
    "lm_head.weight": "lm_head.weight",
    # GPT2ForSequenceClassification's head (no bias) holds the core value head.
    "score.weight": "value_head.weight",
}
_TOP_INV = {v: k for k, v in _TOP.items()}
_INV = {v: k for k, v in {**_BLOCK_RENAME, **_BLOCK_TRANSPOSE}.items()}

# HF activation names the core computes exactly (gelu_pytorch_tanh is the same tanh formula).
_ACTIVATIONS = {"gelu_new": "gelu_new", "gelu_pytorch_tanh": "gelu_new", "gelu": "gelu"}


def _with_prefix(key: str) -> str:
    """``GPT2Model`` checkpoints lack the ``transformer.`` prefix of ``GPT2LMHeadModel``."""
    if key.startswith(("transformer.", "lm_head.", "score.")):
        return key
    return "transformer." + key


class GPT2Family(ModelFamily):
    """GPT-2 (``model_type: gpt2``)."""

    name = "gpt2"
    model_type = "gpt2"
    architecture = "GPT2LMHeadModel"

    # ---------------------------------------------------------------- configs
    def config_from_hf(self, hf: dict[str, Any]) -> TransformerConfig:
        where = "gpt2 config.json"
        if hf.get("model_type", "gpt2") != "gpt2":
            raise ModelLoadError(f"{where}: model_type is {hf.get('model_type')!r}, expected 'gpt2'")
        act = hf.get("activation_function", "gelu_new")
        if act not in _ACTIVATIONS:
            raise ModelLoadError(
                f"{where}: activation_function {act!r} is not supported; "
                f"use one of {', '.join(_ACTIVATIONS)}"
            )
        unsupported = {
            "scale_attn_weights": (hf.get("scale_attn_weights", True), True),
            "scale_attn_by_inverse_layer_idx": (hf.get("scale_attn_by_inverse_layer_idx", False), False),
            "add_cross_attention": (hf.get("add_cross_attention", False), False),
        }
        for key, (value, needed) in unsupported.items():
            if bool(value) != needed:
                raise ModelLoadError(
                    f"{where}: {key}={value!r} is not supported by the core transformer "
                    f"(it needs {key}={needed})"
                )
        hidden = int(hf.get("n_embd", hf.get("hidden_size", 768)))
        n_head = int(hf.get("n_head", hf.get("num_attention_heads", 12)))
        if hidden % n_head:
            raise ModelLoadError(f"{where}: n_embd={hidden} is not a multiple of n_head={n_head}")
        # reorder_and_upcast_attn only changes mixed-precision numerics; fp32 math is identical.
        return TransformerConfig(
            vocab_size=int(hf.get("vocab_size", 50257)),
            hidden_size=hidden,
            intermediate_size=int(hf.get("n_inner") or 4 * hidden),
            n_layers=int(hf.get("n_layer", hf.get("num_hidden_layers", 12))),
            n_q_heads=n_head,
            n_kv_heads=n_head,
            head_dim=hidden // n_head,
            norm_type="layernorm",
            norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)),
            norm_unit_offset=False,
            activation=_ACTIVATIONS[act],
            gated_mlp=False,
            position="learned",
            rope_scaling=None,
            attn_bias=True,
            attn_out_bias=True,
            mlp_bias=True,
            qk_norm=False,
            tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
            sliding_window=None,
            max_positions=int(hf.get("n_positions", hf.get("max_position_embeddings", 1024))),
        )

    def config_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        self.check_config(cfg)
        hf: dict[str, Any] = {
            "architectures": [self.architecture],
            "model_type": "gpt2",
            "vocab_size": cfg.vocab_size,
            "n_positions": cfg.max_positions,
            "n_embd": cfg.hidden_size,
            "n_layer": cfg.n_layers,
            "n_head": cfg.n_q_heads,
            "n_inner": None if cfg.intermediate_size == 4 * cfg.hidden_size else cfg.intermediate_size,
            "activation_function": cfg.activation,
            "layer_norm_epsilon": cfg.norm_eps,
            "tie_word_embeddings": cfg.tie_embeddings,
            "scale_attn_weights": True,
            "scale_attn_by_inverse_layer_idx": False,
            "reorder_and_upcast_attn": False,
            # The core model has no dropout; say so rather than invent one.
            "resid_pdrop": 0.0,
            "embd_pdrop": 0.0,
            "attn_pdrop": 0.0,
        }
        if cfg.vocab_size <= 50256:
            # GPT2Config defaults bos/eos to 50256, which a smaller vocabulary cannot hold.
            hf["bos_token_id"] = hf["eos_token_id"] = None
        return hf

    def check_config(self, cfg: TransformerConfig) -> None:
        """Refuse a core config that GPT-2's layout cannot express."""
        want = dict(
            norm_type="layernorm", gated_mlp=False, position="learned", attn_bias=True,
            attn_out_bias=True, mlp_bias=True, qk_norm=False, sliding_window=None,
            n_kv_heads=cfg.n_q_heads, head_dim=cfg.hidden_size // cfg.n_q_heads,
        )
        bad = {k: getattr(cfg, k) for k, v in want.items() if getattr(cfg, k) != v}
        if cfg.activation not in ("gelu", "gelu_new"):
            bad["activation"] = cfg.activation
        if bad:
            raise ModelLoadError(f"core config cannot be saved as gpt2: {bad}")

    # ----------------------------------------------------------- state dicts
    def state_dict_from_hf(self, sd: dict[str, Any], cfg: TransformerConfig) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for raw_key, t in sd.items():
            key = _with_prefix(raw_key)
            if _IGNORED.match(key):
                continue
            m = _HF_LAYER.match(key)
            if m:
                i, sub = m.groups()
                p = f"blocks.{i}."
                if sub == "attn.c_attn.weight":  # [hidden, 3 * hidden], Conv1D
                    for name, w in zip("qkv", t.chunk(3, dim=1), strict=True):
                        out[p + f"attn.{name}_proj.weight"] = w.t().contiguous()
                    continue
                if sub == "attn.c_attn.bias":
                    for name, b in zip("qkv", t.chunk(3, dim=0), strict=True):
                        out[p + f"attn.{name}_proj.bias"] = b.contiguous()
                    continue
                if sub in _BLOCK_TRANSPOSE:
                    out[p + _BLOCK_TRANSPOSE[sub]] = t.t().contiguous()
                    continue
                if sub in _BLOCK_RENAME:
                    out[p + _BLOCK_RENAME[sub]] = t
                    continue
            elif key in _TOP:
                if key == "lm_head.weight" and (cfg.tie_embeddings or cfg.value_head):
                    continue  # tied: the same tensor as wte; value models have no LM head
                out[_TOP[key]] = t
                continue
            raise ModelLoadError(
                f"unexpected parameter {raw_key!r} in a gpt2 state dict; is this checkpoint "
                "really a GPT2LMHeadModel / GPT2Model?"
            )
        return out

    def state_dict_to_hf(self, sd: dict[str, Any], cfg: TransformerConfig) -> dict[str, Any]:
        out: dict[str, Any] = {}
        fused: dict[tuple[str, str, str], Any] = {}  # (block, weight|bias, q|k|v) -> tensor
        for key, t in sd.items():
            m = _CORE_BLOCK.match(key)
            if m:
                i, sub = m.groups()
                p = f"transformer.h.{i}."
                qkv = re.fullmatch(r"attn\.([qkv])_proj\.(weight|bias)", sub)
                if qkv:
                    fused[(i, qkv.group(2), qkv.group(1))] = t
                elif sub in _INV and sub.endswith("weight") and _INV[sub] in _BLOCK_TRANSPOSE:
                    out[p + _INV[sub]] = t.t().contiguous()
                elif sub in _INV:
                    out[p + _INV[sub]] = t
                else:
                    raise ModelLoadError(f"core parameter {key!r} has no gpt2 counterpart")
            elif key in _TOP_INV:
                out[_TOP_INV[key]] = t
            elif key == "value_head.bias":
                if bool((t != 0).any()):
                    raise ModelLoadError(
                        "value_head.bias is non-zero but GPT2ForSequenceClassification has no "
                        "score bias; it cannot be saved in HF layout without changing outputs."
                    )
            else:
                raise ModelLoadError(f"core parameter {key!r} has no gpt2 counterpart")
        for i in sorted({k[0] for k in fused}, key=int):
            p = f"transformer.h.{i}.attn.c_attn."
            try:
                w = [fused[(i, "weight", n)] for n in "qkv"]
                out[p + "weight"] = torch.cat([x.t() for x in w], dim=1)
                if (i, "bias", "q") in fused:
                    out[p + "bias"] = torch.cat([fused[(i, "bias", n)] for n in "qkv"], dim=0)
            except KeyError as e:
                raise ModelLoadError(f"block {i} is missing {e.args[0][2]}_proj.{e.args[0][1]}") from e
        if cfg.tie_embeddings and not cfg.value_head and "embed.weight" in sd:
            # HF's state_dict() lists the tied head as its own key (same tensor).
            out["lm_head.weight"] = sd["embed.weight"]
        return out

    # -------------------------------------------------------- parameter names
    def embedding_param_names(self, cfg: TransformerConfig) -> list[str]:
        return ["transformer.wte.weight", "transformer.wpe.weight"]

    def block_param_names(self, cfg: TransformerConfig, i: int) -> list[str]:
        p = f"transformer.h.{i}."
        return [p + s for s in (
            "ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
            "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
            "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias",
        )]

    def head_param_names(self, cfg: TransformerConfig) -> list[str]:
        names = ["transformer.ln_f.weight", "transformer.ln_f.bias"]
        if cfg.value_head:
            names.append("score.weight")
        elif not cfg.tie_embeddings:
            names.append("lm_head.weight")
        return names

    # ------------------------------------------------------------- test config
    def tiny_config(self) -> TransformerConfig:
        return self.config_from_hf(
            {
                "model_type": "gpt2",
                "vocab_size": 128,
                "n_positions": 256,
                "n_embd": 64,
                "n_layer": 2,
                "n_head": 4,
                "activation_function": "gelu_new",
                "layer_norm_epsilon": 1e-5,
                "tie_word_embeddings": True,
            }
        )


GPT2 = GPT2Family()
