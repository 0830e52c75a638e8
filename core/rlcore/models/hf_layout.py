"""Shared pieces of HF decoder conversions: RoPE config keys and per-layer key renaming."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rlcore.errors import ModelLoadError
from rlcore.models.config import TransformerConfig

_LLAMA3_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
_CORE_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")
# Top-level keys of Llama-style checkpoints; ``score`` is *ForSequenceClassification's head.
LLAMA_STYLE_TOP = {
    "model.embed_tokens.weight": "embed.weight",
    "model.norm.weight": "final_norm.weight",
    "lm_head.weight": "lm_head.weight",
    "score.weight": "value_head.weight",
}
# Recomputable RoPE buffers that old checkpoints store; they hold no weights.
ROTARY_BUFFERS = re.compile(r"^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$")


def rope_from_hf(hf: dict[str, Any], where: str) -> tuple[float, dict[str, Any] | None]:
    """(rope_theta, core rope_scaling) from transformers-5 ``rope_parameters`` or v4 keys."""
    params = dict(hf.get("rope_parameters") or {})
    theta = params.pop("rope_theta", hf.get("rope_theta", 10000.0))
    scaling = params or dict(hf.get("rope_scaling") or {})
    kind = scaling.get("rope_type") or scaling.get("type") or "default"
    if kind == "default":
        return float(theta), None
    if kind == "linear":
        if "factor" not in scaling:
            raise ModelLoadError(f"{where}: linear RoPE scaling has no 'factor'")
        return float(theta), {"rope_type": "linear", "factor": float(scaling["factor"])}
    if kind == "llama3":
        missing = [k for k in _LLAMA3_KEYS if k not in scaling]
        if missing:
            raise ModelLoadError(f"{where}: llama3 RoPE scaling is missing {', '.join(missing)}")
        return float(theta), {"rope_type": "llama3", **{k: scaling[k] for k in _LLAMA3_KEYS}}
    raise ModelLoadError(f"{where}: RoPE scaling type {kind!r} is not supported (supported: default, "
                         "linear, llama3); remove it from config.json to run at the native context")


def rope_to_hf(cfg: TransformerConfig) -> dict[str, Any]:
    """The transformers-5 ``rope_parameters`` dict of a core config."""
    return {"rope_theta": float(cfg.rope_theta), "rope_type": "default", **(cfg.rope_scaling or {})}


@dataclass(frozen=True)
class DecoderKeys:
    """Renames a Llama-style HF state dict (``model.layers.{i}.*``) to core names and back.

    ``block`` maps HF suffixes inside a layer to core suffixes inside a block; ``top`` maps
    whole non-layer keys; HF keys matching ``ignored`` (recomputable buffers) are dropped.
    """

    block: dict[str, str]
    top: dict[str, str] = field(default_factory=lambda: dict(LLAMA_STYLE_TOP))
    ignored: re.Pattern[str] = ROTARY_BUFFERS
    layer_prefix: str = "model.layers."

    def to_core(self, sd: dict[str, Any], cfg: TransformerConfig, family: str) -> dict[str, Any]:
        """Core state dict; a tied or unused ``lm_head.weight`` is dropped."""
        layer = re.compile(rf"^{re.escape(self.layer_prefix)}(\d+)\.(.+)$")
        out: dict[str, Any] = {}
        for key, t in sd.items():
            if self.ignored.match(key):
                continue
            m = layer.match(key)
            if m and m.group(2) in self.block:
                out[f"blocks.{m.group(1)}.{self.block[m.group(2)]}"] = t
            elif key in self.top:
                if key == "lm_head.weight" and (cfg.tie_embeddings or cfg.value_head):
                    continue  # tied: same tensor as the embedding; value models have no LM head
                out[self.top[key]] = t
            else:
                raise ModelLoadError(f"unexpected parameter {key!r} in a {family} state dict; "
                                     "is this a plain checkpoint of that architecture?")
        return out

    def to_hf(self, sd: dict[str, Any], cfg: TransformerConfig, family: str) -> dict[str, Any]:
        """HF state dict; a tied LM head is listed as its own key, as HF's ``state_dict()`` does."""
        block_inv = {v: k for k, v in self.block.items()}
        top_inv = {v: k for k, v in self.top.items()}
        out: dict[str, Any] = {}
        for key, t in sd.items():
            m = _CORE_BLOCK.match(key)
            if m and m.group(2) in block_inv:
                out[f"{self.layer_prefix}{m.group(1)}.{block_inv[m.group(2)]}"] = t
            elif key in top_inv:
                out[top_inv[key]] = t
            else:
                raise ModelLoadError(f"core parameter {key!r} has no {family} counterpart")
        if cfg.tie_embeddings and not cfg.value_head and "embed.weight" in sd:
            out["lm_head.weight"] = sd["embed.weight"]
        return out
