"""Loss functions of the supervised experiments over packed sequences: SFT, Bradley-Terry, DPO.

Formulas follow the papers and TRL's implementations; tests check them on the same tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlcore_plugin_algorithms._moved import forwarder


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


__getattr__ = forwarder(__name__, {n: f"rlcore_plugin_algorithms.packed:{n}" for n in (
    "next_token_query", "scatter_positions", "next_token_valid", "target_mask",
    "per_sequence_sum")})
