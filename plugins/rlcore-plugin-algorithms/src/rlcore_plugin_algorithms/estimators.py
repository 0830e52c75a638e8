"""The advantage estimators rlcore ships, as table entries (``rlcore list estimators``).

Each maps an :class:`~rlcore.data.trajectory.AdvantageInputs` to ``(advantages, returns)``
per action; its record says what it needs. A plugin adds one with the
``rlcore_advantage_estimators`` hook; ``adv.estimator=NAME`` selects it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlcore_plugin_algorithms import rl

if TYPE_CHECKING:
    import torch

    from rlcore.sdk import AdvantageInputs

def gae(x: AdvantageInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation over the critic's values (Schulman et al. 2016)."""
    o = x.options
    return rl.gae(x.token_rewards, x.values, x.cu, o.discount, o.gae_lambda, x.last_values)


def reinforce_pp(x: AdvantageInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """REINFORCE++ (Hu 2025): discounted reward-to-go, whitened over the batch."""
    returns = rl.reward_to_go(x.token_rewards, x.cu, x.options.discount)
    return returns, returns


def grpo(x: AdvantageInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """GRPO (Shao et al. 2024): reward minus its group's mean, over the group's std."""
    adv = x.per_token(rl.grpo_advantages(x.rewards, x.groups, x.options.std_norm))
    return adv, adv


def rloo(x: AdvantageInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """RLOO (Ahmadian et al. 2024): reward minus the mean of the group's other rewards."""
    adv = x.per_token(rl.rloo_advantages(x.rewards, x.groups))
    return adv, adv


def remax(x: AdvantageInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """ReMax (Li et al. 2023): reward minus the reward of its prompt's greedy response."""
    adv = x.per_token(rl.remax_advantages(x.rewards, x.baselines, x.groups))
    return adv, adv

