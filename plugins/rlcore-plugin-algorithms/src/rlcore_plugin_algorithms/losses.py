"""Loss functions of the supervised experiments over packed sequences: SFT, Bradley-Terry, DPO
and its relatives (IPO, KTO, ORPO, SimPO).

Formulas follow the papers and TRL's implementations; tests check them on the same tensors.
"""

from __future__ import annotations

from collections.abc import Callable

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
        raise ValueError(f"unknown DPO loss_type {loss_type!r}; use 'sigmoid' or 'ipo' (kto, "
                         "orpo and simpo have their own functions)")
    chosen_rewards = beta * (policy_chosen - ref_chosen).detach()
    rejected_rewards = beta * (policy_rejected - ref_rejected).detach()
    return losses, chosen_rewards, rejected_rewards


def kto_reference_point(policy_kl: torch.Tensor, ref_kl: torch.Tensor,
                        all_reduce: Callable[[list[float]], list[float]] | None = None) -> torch.Tensor:
    """KTO's z0: the mean log-ratio of mismatched prompt/completion pairs (over every rank
    through ``all_reduce``, a sum), clamped at 0, detached."""
    diff = (policy_kl - ref_kl).detach()
    total, count = diff.sum(), diff.numel()
    if all_reduce is not None:
        total, count = all_reduce([float(total), float(count)])
        total = torch.tensor(total, dtype=diff.dtype, device=diff.device)
    return (total / count).clamp(min=0)


def kto_loss(
    policy: torch.Tensor,
    ref: torch.Tensor,
    desirable: torch.Tensor,
    z0: torch.Tensor,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """KTO (Ethayarajh et al. 2024) per completion, and the rewards ``beta * (log pi - log ref)``.

    Desirable: ``w_d (1 - s(beta (r - z0)))``; undesirable: ``w_u (1 - s(beta (z0 - r)))``.
    """
    logratio = policy - ref
    gain = desirable_weight * (1 - torch.sigmoid(beta * (logratio - z0)))
    loss = undesirable_weight * (1 - torch.sigmoid(beta * (z0 - logratio)))
    return torch.where(desirable.bool(), gain, loss), beta * logratio.detach()


def orpo_loss(
    chosen_sum: torch.Tensor,
    rejected_sum: torch.Tensor,
    chosen_len: torch.Tensor,
    rejected_len: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """ORPO (Hong et al. 2024): ``NLL(chosen) - beta * mean log s(log odds_c - log odds_r)``.

    Odds use the mean per-token log-probs ``m``: ``log odds = m - log(1 - exp m)``; the NLL
    is the token mean over every chosen answer. Returns the loss, the odds-ratio term per
    pair, and the rewards ``beta * m`` of chosen and rejected.
    """
    chosen, rejected = chosen_sum / chosen_len, rejected_sum / rejected_len
    log_odds = (chosen - rejected) - (torch.log(-torch.expm1(chosen))
                                      - torch.log(-torch.expm1(rejected)))
    ratio_term = -beta * F.logsigmoid(log_odds)
    nll = -chosen_sum.sum() / chosen_len.sum()
    return nll + ratio_term.mean(), ratio_term, beta * chosen.detach(), beta * rejected.detach()


def simpo_loss(
    chosen_mean: torch.Tensor,
    rejected_mean: torch.Tensor,
    beta: float,
    gamma: float,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SimPO (Meng et al. 2024) per pair on mean per-token log-probs: with ``h = beta (m_c -
    m_r) - gamma``, ``-(1-eps) log s(h) - eps log s(-h)``; and the rewards ``beta * m``."""
    h = beta * (chosen_mean - rejected_mean) - gamma
    losses = -F.logsigmoid(h) * (1 - label_smoothing) - F.logsigmoid(-h) * label_smoothing
    return losses, beta * chosen_mean.detach(), beta * rejected_mean.detach()


__getattr__ = forwarder(__name__, {n: f"rlcore_plugin_algorithms.packed:{n}" for n in (
    "next_token_query", "scatter_positions", "next_token_valid", "target_mask",
    "per_sequence_sum")})
