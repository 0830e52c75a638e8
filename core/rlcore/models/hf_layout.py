"""HF decoder checkpoints <-> core names: RoPE config keys, state-dict keys and parameter names.

``DecoderKeys`` owns the mapping of one architecture's HF parameter names onto the core names
of docs/internals.md: plain renames, fused matrices (Phi-3's ``qkv_proj``, GPT-2's ``c_attn``)
and Conv1D ``[in, out]`` weights, in both directions, plus the HF names of each model part.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from rlcore.errors import ModelLoadError
from rlcore.models.config import ROPE_SCALING, TransformerConfig

_CORE_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")
# Inside ``model.layers.{i}.`` of Llama-style checkpoints (Llama, Mistral, Qwen2/3, Phi-3, ...):
# HF suffix -> core suffix. Biases and q/k norms exist only when the core config has them.
LLAMA_BLOCK = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "mlp_norm.weight",
    **{f"self_attn.{p}_proj.{t}": f"attn.{p}_proj.{t}" for p in "qkvo" for t in ("weight", "bias")},
    "self_attn.q_norm.weight": "attn.q_norm.weight",
    "self_attn.k_norm.weight": "attn.k_norm.weight",
    **{f"mlp.{p}_proj.{t}": f"mlp.{p}_proj.{t}" for p in ("gate", "up", "down")
       for t in ("weight", "bias")},
}
# Top-level keys of Llama-style checkpoints; ``score`` is *ForSequenceClassification's head.
LLAMA_STYLE_TOP = {
    "model.embed_tokens.weight": "embed.weight",
    "model.norm.weight": "final_norm.weight",
    "lm_head.weight": "lm_head.weight",
    "score.weight": "value_head.weight",
}
# Recomputable RoPE buffers that old checkpoints store; they hold no weights.
ROTARY_BUFFERS = re.compile(r"^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$")
_EMBEDDING = ("embed.", "pos_embed.")


def rope_from_hf(hf: dict[str, Any], where: str) -> tuple[float, dict[str, Any] | None]:
    """(rope_theta, core rope_scaling) from transformers-5 ``rope_parameters`` or v4 keys."""
    params = dict(hf.get("rope_parameters") or {})
    theta = params.pop("rope_theta", hf.get("rope_theta", 10000.0))
    params.pop("partial_rotary_factor", None)  # a family that cannot run it refuses it itself
    scaling = params or dict(hf.get("rope_scaling") or {})
    kind = scaling.get("rope_type") or scaling.get("type") or "default"
    if kind == "default":
        return float(theta), None
    if kind not in ROPE_SCALING:
        raise ModelLoadError(f"{where}: RoPE scaling type {kind!r} is not supported (supported: "
                             f"default, {', '.join(ROPE_SCALING)}); remove it from config.json to "
                             "run at the native context")
    needed, optional = ROPE_SCALING[kind]
    missing = [k for k in needed if scaling.get(k) is None]
    if missing:
        raise ModelLoadError(f"{where}: {kind} RoPE scaling is missing {', '.join(missing)}")
    kept = {k: scaling[k] for k in (*needed, *optional) if scaling.get(k) is not None}
    if "factor" in kept:
        kept["factor"] = float(kept["factor"])
    return float(theta), {"rope_type": kind, **kept}


def rope_to_hf(cfg: TransformerConfig) -> dict[str, Any]:
    """The transformers-5 ``rope_parameters`` dict of a core config."""
    partial = {"partial_rotary_factor": cfg.rope_fraction} if cfg.rope_fraction != 1.0 else {}
    return {"rope_theta": float(cfg.rope_theta), "rope_type": "default", **(cfg.rope_scaling or {}),
            **partial}


def core_shapes(cfg: TransformerConfig) -> dict[str, tuple[int, ...]]:
    """Every core parameter name of ``cfg`` and its shape, in model order (no memory used)."""
    return dict(_core_shapes(json.dumps(cfg.to_dict(), sort_keys=True)))


@functools.lru_cache(maxsize=16)
def _core_shapes(cfg_json: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    import torch

    from rlcore.models.transformer import Transformer

    with torch.device("meta"):
        model = Transformer(TransformerConfig.from_dict(json.loads(cfg_json)))
    return tuple((k, tuple(t.shape)) for k, t in model.state_dict().items())


@dataclass(frozen=True)
class DecoderKeys:
    """Renames an HF decoder state dict (``<layer_prefix>{i}.*`` plus top-level keys) to core names.

    ``block`` maps HF suffixes inside a layer to core suffixes inside a block; ``fused`` maps an
    HF suffix to the core suffixes stacked in it along the output dimension (it replaces their
    plain names in ``block``); HF suffixes in ``transposed`` are Conv1D ``[in, out]`` weights;
    ``top`` maps whole non-layer keys; HF keys matching ``ignored`` (buffers) are dropped.
    """

    block: dict[str, str] = field(default_factory=lambda: dict(LLAMA_BLOCK))
    top: dict[str, str] = field(default_factory=lambda: dict(LLAMA_STYLE_TOP))
    ignored: re.Pattern[str] = ROTARY_BUFFERS
    layer_prefix: str = "model.layers."
    fused: dict[str, tuple[str, ...]] = field(default_factory=dict)
    transposed: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        parts = {p for ps in self.fused.values() for p in ps}
        object.__setattr__(self, "block", {k: v for k, v in self.block.items() if v not in parts})

    @functools.cached_property
    def _to_hf_block(self) -> dict[str, str]:
        inv = {v: k for k, v in self.block.items()}
        return inv | {p: hf for hf, ps in self.fused.items() for p in ps}

    def to_core(self, sd: dict[str, Any], cfg: TransformerConfig, family: str) -> dict[str, Any]:
        """Core state dict; a tied or unused ``lm_head.weight`` is dropped, fused tensors split."""
        layer = re.compile(rf"^{re.escape(self.layer_prefix)}(\d+)\.(.+)$")
        shapes = core_shapes(cfg) if self.fused else {}
        out: dict[str, Any] = {}
        for key, t in sd.items():
            if self.ignored.match(key):
                continue
            m = layer.match(key)
            sub = m.group(2) if m else ""
            if m and (sub in self.block or sub in self.fused):
                if sub in self.transposed:
                    t = t.t().contiguous()
                p = f"blocks.{m.group(1)}."
                if sub in self.block:
                    out[p + self.block[sub]] = t
                    continue
                sizes = [shapes.get(p + part, (0,))[0] for part in self.fused[sub]]
                if t.shape[0] != sum(sizes):
                    raise ModelLoadError(
                        f"{key}: {t.shape[0]} rows, but the config implies {sum(sizes)} "
                        f"({' + '.join(f'{n} {s}' for n, s in zip(self.fused[sub], sizes, strict=True))})")
                for part, piece in zip(self.fused[sub], t.split(sizes), strict=True):
                    out[p + part] = piece
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
        top_inv = {v: k for k, v in self.top.items()}
        out: dict[str, Any] = {}
        stacks: dict[tuple[str, str], dict[str, Any]] = {}  # (layer, fused suffix) -> {part: tensor}
        for key, t in sd.items():
            m = _CORE_BLOCK.match(key)
            hf_sub = self._to_hf_block.get(m.group(2)) if m else None
            if hf_sub in self.fused:
                stacks.setdefault((m.group(1), hf_sub), {})[m.group(2)] = t
            elif hf_sub is not None:
                out[f"{self.layer_prefix}{m.group(1)}.{hf_sub}"] = (
                    t.t().contiguous() if hf_sub in self.transposed else t)
            elif key in top_inv:
                out[top_inv[key]] = t
            else:
                raise ModelLoadError(f"core parameter {key!r} has no {family} counterpart")
        for (i, hf_sub), parts in stacks.items():
            out[f"{self.layer_prefix}{i}.{hf_sub}"] = self._fuse(f"block {i}", hf_sub, parts)
        if cfg.tie_embeddings and not cfg.value_head and "embed.weight" in sd:
            out["lm_head.weight"] = sd["embed.weight"]
        return out

    def _fuse(self, where: str, hf_sub: str, parts: dict[str, Any]) -> Any:
        import torch

        missing = [p for p in self.fused[hf_sub] if p not in parts]
        if missing:
            raise ModelLoadError(f"{where}: {hf_sub} stacks {', '.join(self.fused[hf_sub])}, but the "
                                 f"core state dict lacks {', '.join(missing)}")
        t = torch.cat([parts[p] for p in self.fused[hf_sub]])
        return t.t().contiguous() if hf_sub in self.transposed else t

    def hf_key(self, core_key: str) -> tuple[str, tuple[str, ...]]:
        """The HF name of the tensor holding core parameter ``core_key``, and the core suffixes
        stacked in it (one, unless it is fused); Conv1D ones are in ``transposed``."""
        m = _CORE_BLOCK.match(core_key)
        if not m:
            return {v: k for k, v in self.top.items()}[core_key], (core_key,)
        hf_sub = self._to_hf_block[m.group(2)]
        return f"{self.layer_prefix}{m.group(1)}.{hf_sub}", self.fused.get(hf_sub, (m.group(2),))

    def hf_names(self, cfg: TransformerConfig, part: str) -> list[str]:
        """HF names of one model part: ``"embedding"``, ``"head"`` or ``"block {i}"``."""
        names: list[str] = []
        for key in core_shapes(cfg):
            m = _CORE_BLOCK.match(key)
            if part == "embedding" and not key.startswith(_EMBEDDING):
                continue
            if part == "head" and (m or key.startswith(_EMBEDDING)):
                continue
            if part.startswith("block ") and not (m and m.group(1) == part[6:]):
                continue
            name = (f"{self.layer_prefix}{m.group(1)}.{self._to_hf_block[m.group(2)]}" if m
                    else {v: k for k, v in self.top.items()}[key])
            if name not in names:
                names.append(name)
        return names
