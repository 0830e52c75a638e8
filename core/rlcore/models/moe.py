"""Mixture-of-experts feed-forward (Mixtral, Qwen-MoE, OLMoE): a router sends each token to k experts.

Expert weights are stacked ``[E, ...]`` tensors, so :func:`expert_ffn` (a per-expert loop here) can
be replaced by a grouped-matmul kernel taking the same arguments. Routing can be replayed: set
``forced`` on each :class:`MoE` (see :func:`replay_routing`) to reuse the experts recorded earlier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rlcore.models.config import TransformerConfig

EXPERT_WEIGHTS = ("gate_up", "down")  # the stacked weights <w>_proj [E, out, in] of each MoE


def route(logits, k: int, score: str, norm_topk: bool, forced=None):
    """(weights ``[T, k]``, expert ids ``[T, k]``, natural top-k ids ``[T, k]``): the top-k of
    softmax or sigmoid scores, or the ``forced`` ids' scores (gradients reach the router through
    them; a row of -1 keeps its natural top-k); renormalised if asked."""
    scores = logits.float().softmax(-1) if score == "softmax" else logits.float().sigmoid()
    weights, natural = scores.topk(k, dim=-1)
    idx = natural
    if forced is not None:
        if forced.shape != (logits.shape[0], k):
            raise ValueError(f"replayed routing has shape {tuple(forced.shape)}, this forward needs "
                             f"({logits.shape[0]}, {k}); replay_routing(model, None) to route freely")
        forced = forced.to(logits.device, torch.long)
        idx = torch.where(forced < 0, natural, forced)
        weights = scores.gather(-1, idx)
    if norm_topk:
        weights = weights / weights.sum(-1, keepdim=True)
    return weights, idx, natural


def expert_ffn(x, idx, weights, gate_up, down, act, adapters=None):
    """``sum_j weights[t, j] * expert[idx[t, j]](x[t])`` for tokens ``x [T, C]``, with experts
    ``down[e] @ (act(gate) * up)`` and ``gate | up = gate_up[e] @ x``; a loop over the experts hit.
    ``adapters`` maps ``gate_up``/``down`` to LoRA ``(A [E, r, in], B [E, out, r], scale)``."""
    adapters = adapters or {}

    def project(h, name, w, e):  # w[e] h, plus the expert's low-rank update
        y = F.linear(h, w[e])
        if name in adapters:
            a, b, scale = adapters[name]
            y = y + scale * F.linear(F.linear(h, a[e]), b[e])
        return y

    out = torch.zeros_like(x)
    k = idx.shape[-1]
    order = idx.reshape(-1).argsort(stable=True)  # assignments grouped by expert
    counts = torch.bincount(idx.reshape(-1), minlength=gate_up.shape[0]).tolist()
    flat_weights = weights.reshape(-1)
    for e, rows in enumerate(order.split(counts)):
        if rows.numel() == 0:
            continue
        tokens = rows // k
        gate, up = project(x[tokens], "gate_up", gate_up, e).chunk(2, dim=-1)
        y = project(act(gate) * up, "down", down, e) * flat_weights[rows, None].to(x.dtype)
        out.index_add_(0, tokens, y)
    return out


class MoE(nn.Module):
    """Router + ``n_experts`` gated experts (stacked) + an optional, optionally gated, shared expert."""

    def __init__(self, cfg: TransformerConfig, act, shared: nn.Module | None = None):
        super().__init__()
        e, c, i = cfg.n_experts, cfg.hidden_size, cfg.moe_intermediate_size or cfg.intermediate_size
        self.router = nn.Linear(c, e, bias=False)
        self.gate_up_proj = nn.Parameter(torch.empty(e, 2 * i, c).normal_(std=0.02))
        self.down_proj = nn.Parameter(torch.empty(e, c, i).normal_(std=0.02))
        self.shared = shared
        if shared is not None and cfg.shared_expert_gate:
            self.shared_gate = nn.Linear(c, 1, bias=False)
        self.act, self.top_k = act, cfg.n_experts_per_token
        self.score, self.norm_topk = cfg.router_score, cfg.router_norm_topk
        self.forced: torch.Tensor | None = None  # routing replay: expert ids [T, k] to use
        self.chosen: torch.Tensor | None = None  # the expert ids of the last forward
        self.natural: torch.Tensor | None = None  # its own top-k, even where forced
        self.balance: tuple[torch.Tensor, torch.Tensor, int] | None = None  # see aux_loss
        # LoRA on the stacked experts: parameters lora_A_<w> [E, r, in], lora_B_<w> [E, out, r]
        # for w in gate_up, down, added by rlcore.models.lora.add_adapters.
        self.lora_scale: float | None = None
        self.lora_on = True

    def expert_adapters(self) -> dict[str, tuple[torch.Tensor, torch.Tensor, float]]:
        """``{"gate_up" | "down": (A, B, scale)}`` of the adapted expert weights (none when off)."""
        if not self.lora_on or self.lora_scale is None:
            return {}
        return {w: (getattr(self, f"lora_A_{w}"), getattr(self, f"lora_B_{w}"), self.lora_scale)
                for w in EXPERT_WEIGHTS if hasattr(self, f"lora_A_{w}")}

    def forward(self, x):
        logits = self.router(x)
        weights, idx, natural = route(logits, self.top_k, self.score, self.norm_topk, self.forced)
        self.chosen, self.natural = idx.detach(), natural.detach()
        # What the load-balancing loss needs, O(E): tokens sent to each expert, softmax mass.
        counts = torch.zeros(logits.shape[-1], device=x.device).index_add_(
            0, idx.reshape(-1), torch.ones(idx.numel(), device=x.device))
        self.balance = (counts, logits.float().softmax(-1).sum(0), x.shape[0])
        out = expert_ffn(x, idx, weights, self.gate_up_proj, self.down_proj, self.act,
                         self.expert_adapters())
        if self.shared is not None:
            s = self.shared(x)
            out = out + (torch.sigmoid(self.shared_gate(x)) * s if hasattr(self, "shared_gate") else s)
        return out


def moe_layers(model: nn.Module) -> list[MoE]:
    """The model's MoE blocks, in layer order."""
    return [m for m in model.modules() if isinstance(m, MoE)]


def aux_loss(model: nn.Module, clear: bool = False) -> torch.Tensor | None:
    """The router load-balancing loss of the model's last forward, as transformers computes it
    (Switch Transformer eq. 4-6 over all MoE layers' tokens together); None for a dense model.
    ``clear`` forgets that forward, so a later call cannot count it again."""
    layers = [m for m in moe_layers(model) if m.balance is not None]
    if not layers:
        return None
    stats = [m.balance for m in layers]
    if clear:
        for m in layers:
            m.balance = None
    rows = sum(s[2] for s in stats)
    tokens = torch.stack([s[0] for s in stats]).sum(0) / rows
    probs = torch.stack([s[1] for s in stats]).sum(0) / rows
    return (tokens * probs).sum() * tokens.numel()


def recorded_routing(model: nn.Module) -> list[torch.Tensor]:
    """The expert ids ``[T, k]`` each MoE layer chose in the last forward (for a later replay)."""
    return [m.chosen for m in moe_layers(model)]


def replay_routing(model: nn.Module, routing: list[torch.Tensor] | None) -> None:
    """Make the next forwards use these expert ids per MoE layer (None: route freely again)."""
    layers = moe_layers(model)
    if routing is not None and len(routing) != len(layers):
        raise ValueError(f"routing has {len(routing)} layers, the model has {len(layers)} MoE layers")
    for i, m in enumerate(layers):
        m.forced = None if routing is None else routing[i]


def natural_routing(model: nn.Module) -> list[torch.Tensor]:
    """The top-k each MoE layer's router gave in the last forward, whether or not it was replayed."""
    return [m.natural for m in moe_layers(model)]


def router_agreement(recorded: list[torch.Tensor], current: list[torch.Tensor]) -> float:
    """Fraction of (layer, token) pairs whose top-k expert set is the same in both routings;
    tokens recorded as -1 (no routing known) are left out (1.0 when none is left)."""
    same, known = [], []
    for a, b in zip(recorded, current, strict=True):
        same.append((a.sort(-1).values == b.to(a.device).sort(-1).values).all(-1))
        known.append((a >= 0).all(-1))
    known_all = torch.cat(known)
    if not bool(known_all.any()):
        return 1.0
    return torch.cat(same)[known_all].float().mean().item()
