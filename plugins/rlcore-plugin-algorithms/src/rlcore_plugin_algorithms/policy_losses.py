"""The policy losses rlcore ships, as table entries (``rlcore list policy_losses``).

Each maps a :class:`~rlcore.data.trajectory.PolicyLossInputs` to ``{"loss": [N], ...}`` per
action. A plugin adds one with the ``rlcore_policy_losses`` hook; ``policy.loss=NAME``
selects it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlcore_plugin_algorithms import rl

if TYPE_CHECKING:
    import torch

    from rlcore.sdk import PolicyLossInputs


def ppo(x: PolicyLossInputs) -> dict[str, torch.Tensor]:
    """PPO's clipped surrogate (asymmetric clip, optional dual clip for negative advantages)."""
    p = x.options
    return rl.policy_loss(x.logp, x.old_logp, x.advantages, p.clip_low, p.clip_high,
                          p.dual_clip, x.log_ratio, p.early_stop_kl_estimator)

