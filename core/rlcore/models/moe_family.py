"""MoEFamily: a DecoderFamily whose MLPs are mixtures of experts (Mixtral, Qwen-MoE, OLMoE).

transformers 5 holds each layer's experts stacked, ``mlp.experts.gate_up_proj [E, 2I, C]`` and
``mlp.experts.down_proj [E, C, I]`` (the core's layout), but its ``save_pretrained`` writes one
tensor per expert (``experts.{j}.gate_proj.weight``, Mixtral's ``block_sparse_moe.experts.{j}.w1``).
Both are read; files are written per expert, as transformers writes them.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from rlcore.errors import ModelLoadError
from rlcore.models.config import TransformerConfig
from rlcore.models.decoder_family import DecoderFamily
from rlcore.models.family import StateDict
from rlcore.models.hf_layout import LLAMA_BLOCK, DecoderKeys

# Inside ``model.layers.{i}.``: HF suffix -> core suffix of the router, experts and shared expert.
MOE_BLOCK = {
    "mlp.gate.weight": "mlp.router.weight",
    "mlp.experts.gate_up_proj": "mlp.gate_up_proj",
    "mlp.experts.down_proj": "mlp.down_proj",
    **{f"mlp.shared_expert.{p}_proj.weight": f"mlp.shared.{p}_proj.weight"
       for p in ("gate", "up", "down")},
    "mlp.shared_expert_gate.weight": "mlp.shared_gate.weight",
}
_PER_EXPERT = re.compile(r"^(.+)\.mlp\.experts\.(\d+)\.(\w+)\.weight$")


def stack_experts(sd: StateDict, names: tuple[str, str, str], where: str) -> StateDict:
    """Per-expert ``(gate, up, down)`` tensors named ``names`` stacked into transformers 5's
    ``experts.gate_up_proj`` / ``experts.down_proj``; Mixtral's ``block_sparse_moe`` read as ``mlp``."""
    import torch

    out: StateDict = {}
    experts: dict[str, dict[str, dict[int, Any]]] = {}  # layer prefix -> name -> expert -> tensor
    for key, t in sd.items():
        key = key.replace(".block_sparse_moe.", ".mlp.")
        m = _PER_EXPERT.match(key)
        if m and m.group(3) in names:
            experts.setdefault(m.group(1), {}).setdefault(m.group(3), {})[int(m.group(2))] = t
        else:
            out[key] = t
    for prefix, parts in experts.items():
        n = max(max(p) for p in parts.values()) + 1
        missing = [f"{prefix}.mlp.experts.{j}.{name}.weight" for name in names
                   for j in range(n) if j not in parts.get(name, {})]
        if missing:
            raise ModelLoadError(f"{where}: the checkpoint lacks {', '.join(missing[:3])}"
                                 f"{' ...' if len(missing) > 3 else ''} ({n} experts seen)")
        gate, up, down = (torch.stack([parts[name][j] for j in range(n)]) for name in names)
        out[f"{prefix}.mlp.experts.gate_up_proj"] = torch.cat([gate, up], dim=1)
        out[f"{prefix}.mlp.experts.down_proj"] = down
    return out


_STACKED = re.compile(r"^(.+)\.mlp\.experts\.(gate_up_proj|down_proj)$")


def unstack_experts(sd: StateDict, names: tuple[str, str, str], block: str = "mlp") -> StateDict:
    """The inverse of :func:`stack_experts`: one ``{block}.experts.{j}.{name}.weight`` per expert
    (copies: safetensors refuses tensors sharing storage); ``block`` also renames the router."""
    out: StateDict = {}
    for key, t in sd.items():
        m = _STACKED.match(key)
        if m is None:
            out[key.replace(".mlp.gate.", f".{block}.gate.")] = t
            continue
        parts = t.chunk(2, dim=1) if m[2] == "gate_up_proj" else (t,)
        for name, part in zip(names[:2] if m[2] == "gate_up_proj" else names[2:], parts, strict=True):
            for j in range(t.shape[0]):
                out[f"{m[1]}.{block}.experts.{j}.{name}.weight"] = part[j].clone()
    return out


class MoEFamily(DecoderFamily):
    """A DecoderFamily with experts: ``moe_config`` names the HF keys of the MoE fields (the first
    is written, any is read), ``expert_names`` the per-expert (gate, up, down) names in files."""

    keys: ClassVar[DecoderKeys] = DecoderKeys(block={**LLAMA_BLOCK, **MOE_BLOCK})
    expert_names: ClassVar[tuple[str, str, str]] = ("gate_proj", "up_proj", "down_proj")
    files_block: ClassVar[str] = "mlp"  # what files call the MoE block (Mixtral: block_sparse_moe)
    moe_config: ClassVar[dict[str, tuple[str, ...]]] = {
        "n_experts": ("num_experts", "num_local_experts"),
        "n_experts_per_token": ("num_experts_per_tok",),
        "moe_intermediate_size": ("moe_intermediate_size",),
        "router_norm_topk": ("norm_topk_prob",),
    }

    def quirks_from_hf(self, hf: dict[str, Any], where: str) -> dict[str, Any]:
        """The MoE fields of ``moe_config``; a key none of whose names is present keeps its default."""
        out = {}
        for field, names in self.moe_config.items():
            value = next((hf[n] for n in names if hf.get(n) is not None), None)
            if value is not None:
                out[field] = bool(value) if field == "router_norm_topk" else int(value)
        if not out.get("n_experts"):
            raise ModelLoadError(f"{where}: {self.moe_config['n_experts'][0]} must be > 0 for "
                                 f"{self.architecture}")
        return out

    def quirks_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        return {names[0]: getattr(cfg, field) for field, names in self.moe_config.items()}

    def state_dict_from_hf(self, sd: StateDict, cfg: TransformerConfig) -> StateDict:
        sd = stack_experts(sd, self.expert_names, f"{self.model_type} checkpoint")
        return self.keys.to_core(sd, cfg, self.model_type)

    def state_dict_to_files(self, sd: StateDict, cfg: TransformerConfig) -> StateDict:
        return unstack_experts(sd, self.expert_names, self.files_block)
