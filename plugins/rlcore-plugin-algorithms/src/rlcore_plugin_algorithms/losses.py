"""Loss functions over packed sequences: next-token log-probs, SFT, Bradley-Terry and DPO.

Formulas follow the papers and TRL's implementations; tests check them on the same tensors.
Training and inference score only the positions they need, through a
:class:`~rlcore.models.token_logprobs.TokenQuery` (chunked, no full-vocabulary logits).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlcore.models.token_logprobs import TokenQuery


def next_token_query(input_ids: torch.Tensor, which: torch.Tensor, **kwargs) -> TokenQuery:
    """A query scoring, at each position where ``which`` (bool ``[T]``) is set, the next token."""
    positions = which.nonzero().squeeze(-1)
    return TokenQuery(positions, torch.roll(input_ids, shifts=-1)[positions], **kwargs)


def scatter_positions(values: torch.Tensor, positions: torch.Tensor, total: int) -> torch.Tensor:
    """``values [N]`` placed at ``positions`` of a zero ``[total]`` tensor (differentiable)."""
    return values.new_zeros(total).index_add(0, positions, values)


def next_token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
    """``out[t] = log p(input_ids[t+1] | ..t)`` within each packed sequence; 0 at each sequence's last token."""
    targets = torch.roll(input_ids, shifts=-1)
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return logp * next_token_valid(cu_seqlens, input_ids.numel()).to(logp.dtype)


def next_token_valid(cu_seqlens: torch.Tensor, total: int) -> torch.Tensor:
    """Bool ``[T]``: True where position t has a next token in the same sequence."""
    valid = torch.ones(total, dtype=torch.bool, device=cu_seqlens.device)
    valid[cu_seqlens[1:].long() - 1] = False
    return valid


def target_mask(loss_mask: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
    """Bool ``[T]``: position t predicts a token whose ``loss_mask`` is set."""
    return torch.roll(loss_mask.bool(), shifts=-1) & next_token_valid(cu_seqlens, loss_mask.numel())


def per_sequence_sum(values: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
    """Sum ``values[T]`` over each packed sequence: ``[B]``."""
    seqlens = (cu_seqlens[1:] - cu_seqlens[:-1]).long()
    index = torch.repeat_interleave(torch.arange(seqlens.numel(), device=values.device), seqlens)
    return torch.zeros(seqlens.numel(), dtype=values.dtype, device=values.device).index_add_(0, index, values)


def sft_loss(answer_logprobs: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Mean negative log-likelihood of the answer tokens' log-probs ``[N]``, and N."""
    n_tokens = answer_logprobs.numel()
    return -answer_logprobs.sum() / max(n_tokens, 1), n_tokens


def last_token_scores(values: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
    """The value head's output at each sequence's last token: ``[B]``."""
    return values[cu_seqlens[1:].long() - 1]


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``-log sigmoid(r_chosen - r_rejected)`` averaged, and the pairwise accuracy."""
    loss = -F.logsigmoid(chosen.float() - rejected.float()).mean()
    accuracy = (chosen > rejected).float().mean()
    return loss, accuracy


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPO loss per pair and the implicit rewards ``beta * (log pi - log ref)`` of chosen and rejected.

    ``sigmoid``: Rafailov et al. 2023, with conservative label smoothing (cDPO).
    ``ipo``: Azar et al. 2023, ``(h - 1/(2 beta))^2`` on the unscaled log-ratio difference.
    """
    logits = (policy_chosen - policy_rejected) - (ref_chosen - ref_rejected)
    if loss_type == "sigmoid":
        losses = (
            -F.logsigmoid(beta * logits) * (1 - label_smoothing)
            - F.logsigmoid(-beta * logits) * label_smoothing
        )
    elif loss_type == "ipo":
        losses = (logits - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"unknown DPO loss_type {loss_type!r}; use 'sigmoid' or 'ipo'")
    chosen_rewards = beta * (policy_chosen - ref_chosen).detach()
    rejected_rewards = beta * (policy_rejected - ref_rejected).detach()
    return losses, chosen_rewards, rejected_rewards
