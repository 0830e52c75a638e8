"""Per-token log-probs and entropy of chosen positions, without full-vocabulary logits.

The LM head runs over a chunk of positions at a time and keeps only ``[N]``-sized results;
the backward recomputes each chunk's logits instead of storing them. Peak memory thus holds
one ``[chunk, vocab]`` block rather than ``[T, vocab]`` logits, their log-softmax and grad;
sampling's cuts (:class:`~rlcore.models.kept_tokens.KeptTokens`) become dense one chunk at a time.
Values and gradients equal the full computation (log_softmax of ``F.linear``) up to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rlcore.models.kept_tokens import KeptTokens
from rlcore.models.loss_kernel import liger_logprobs, use_liger

# Logit elements per chunk (fp32: 128 MiB); 220 positions of a 152k vocabulary.
CHUNK_ELEMENTS = 2**25


@dataclass
class TokenQuery:
    """What to score: hidden ``positions`` ``[N]`` of a packed batch, each predicting ``targets`` ``[N]``.

    ``temperature`` divides the logits and ``kept`` (the tokens allowed at each of the ``N``
    positions) cuts the others, as sampling did; ``entropy`` asks for the entropy of each position's distribution.
    ``chunk_tokens`` overrides how many positions share one head matmul.
    """

    positions: torch.Tensor
    targets: torch.Tensor
    temperature: float = 1.0
    kept: KeptTokens | None = None
    entropy: bool = False
    chunk_tokens: int | None = None


def score_tokens(hidden: torch.Tensor, weight: torch.Tensor, query: TokenQuery, kernel: str = "chunked",
                 softcap: float | None = None):
    """``(logprobs [N], entropy [N] or None)`` in fp32 of ``query``'s positions of ``hidden [T, C]``.

    ``kernel``: ``chunked``, ``liger`` or ``auto`` (see :mod:`rlcore.models.loss_kernel`);
    ``softcap`` caps the logits to ``cap * tanh(z / cap)`` before temperature (Gemma 2).
    """
    n = query.positions.numel()
    chunk = query.chunk_tokens or max(1, CHUNK_ELEMENTS // weight.shape[0])
    h = hidden.index_select(0, query.positions.to(hidden.device).long())
    targets = query.targets.to(hidden.device).long()
    kept = query.kept
    if (kernel != "chunked" and use_liger(kernel, hidden.device) and kept is None
            and not query.entropy and softcap is None):
        return liger_logprobs(h, weight, targets, float(query.temperature)), None
    if kept is not None and len(kept) != n:
        raise ValueError(f"kept tokens cover {len(kept)} positions; expected {n} "
                         "(one entry per scored position)")
    kept = None if kept is None else kept.to(hidden.device)
    logp, entropy = _ChunkedHead.apply(h, weight, targets, kept, float(query.temperature),
                                       bool(query.entropy), int(chunk), softcap)
    return logp, (entropy if query.entropy else None)


def _chunk_logits(h, weight, temperature, kept, start, softcap=None):
    """fp32 logits of the chunk at ``start`` as sampling saw them: head, soft cap, temperature, cuts."""
    z = F.linear(h, weight).float()  # a fresh tensor: edited in place below
    if softcap is not None:
        z = z.div_(softcap).tanh_().mul_(softcap)
    if temperature != 1.0:
        z.div_(temperature)
    if kept is not None:
        z.masked_fill_(~kept.to_mask(z.shape[1], start, start + z.shape[0]), float("-inf"))
    return z


def entropy_from_logprobs(logp_all: torch.Tensor) -> torch.Tensor:
    """Entropy from log-probs ``[n, V]``; ``-inf`` entries (cut tokens) contribute 0, not NaN."""
    return -(logp_all.exp() * torch.where(torch.isneginf(logp_all), 0.0, logp_all)).sum(-1)


class _ChunkedHead(torch.autograd.Function):
    """Head + log-softmax + gather (+ entropy) per chunk; the backward recomputes each chunk."""

    @staticmethod
    def forward(ctx, h, weight, targets, kept, temperature, with_entropy, chunk, softcap):
        n = h.shape[0]
        logp = torch.empty(n, dtype=torch.float32, device=h.device)
        entropy = torch.zeros(n if with_entropy else 0, dtype=torch.float32, device=h.device)
        lse = torch.empty(n, dtype=torch.float32, device=h.device)
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            z = _chunk_logits(h[s:e], weight, temperature, kept, s, softcap)
            lse[s:e] = torch.logsumexp(z, dim=-1)
            logp[s:e] = z.gather(-1, targets[s:e, None]).squeeze(-1) - lse[s:e]
            if with_entropy:
                entropy[s:e] = entropy_from_logprobs(z.sub_(lse[s:e, None]))
        ctx.save_for_backward(h, weight, targets, lse, entropy)
        ctx.kept, ctx.temperature, ctx.with_entropy, ctx.chunk = kept, temperature, with_entropy, chunk
        ctx.softcap = softcap
        return logp, entropy

    @staticmethod
    def backward(ctx, g_logp, g_entropy):
        h, weight, targets, lse, entropy = ctx.saved_tensors
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_h = torch.empty_like(h) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        use_entropy = ctx.with_entropy and g_entropy is not None
        n = h.shape[0]
        for s in range(0, n, ctx.chunk):
            e = min(n, s + ctx.chunk)
            z = _chunk_logits(h[s:e], weight, ctx.temperature, ctx.kept, s, ctx.softcap)
            capped = None  # tanh(raw / cap), 0 at cut tokens, for the soft cap's derivative
            if ctx.softcap is not None:
                capped = z * (ctx.temperature / ctx.softcap)
                capped.masked_fill_(capped.isinf(), 0.0)
            logp_all = z.sub_(lse[s:e, None])
            g = g_logp[s:e, None].float()
            if use_entropy:
                # d H / dz = -p * (log p + H); cut tokens (p = 0, log p = -inf) get 0
                p = logp_all.exp()
                safe = torch.where(torch.isneginf(logp_all), 0.0, logp_all)
                gz = g_entropy[s:e, None].float() * p * (safe + entropy[s:e, None])
                gz.addcmul_(p, g).neg_()
            else:  # one [chunk, vocab] buffer, edited in place
                gz = logp_all.exp_().mul_(-g)
            # d logp[target] / dz = onehot(target) - p
            gz.scatter_add_(1, targets[s:e, None], g)
            if ctx.temperature != 1.0:
                gz /= ctx.temperature
            if capped is not None:  # d cap * tanh(raw / cap) / d raw = 1 - tanh^2
                gz *= 1 - capped.square_()
            if need_h:
                grad_h[s:e] = (gz.to(weight.dtype) @ weight).to(h.dtype)
            if need_w:
                grad_w.addmm_(gz.t(), h[s:e].float())
        if need_w:
            grad_w = grad_w.to(weight.dtype)
        return grad_h, grad_w, None, None, None, None, None, None
