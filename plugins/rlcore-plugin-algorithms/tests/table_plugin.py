"""A third-party plugin for the tests: an advantage estimator and a policy loss, registered
through the hooks a separately installed package would use."""

from __future__ import annotations

import torch

import rlcore
from rlcore.plugins.records import AdvantageEstimatorRecord, PolicyLossRecord

CALLS = {"median_baseline": 0, "cispo": 0}


def median_baseline(x):
    """Each response's reward minus its group's median reward, on every action."""
    CALLS["median_baseline"] += 1
    out = torch.empty_like(x.rewards)
    for g in range(len(x.groups) - 1):
        s, e = int(x.groups[g]), int(x.groups[g + 1])
        out[s:e] = x.rewards[s:e] - x.rewards[s:e].median()
    adv = x.per_token(out)
    return adv, adv


def cispo(x):
    """CISPO (MiniMax-M1): the clipped importance weight, held constant, times the log-prob."""
    CALLS["cispo"] += 1
    p = x.options
    weight = torch.exp(x.log_ratio.detach()).clamp(1 - p.clip_low, 1 + p.clip_high)
    return {"loss": -weight * x.advantages * x.logp, "ratio": torch.exp(x.log_ratio.detach())}


@rlcore.hookimpl
def rlcore_advantage_estimators():
    return [AdvantageEstimatorRecord("median_baseline", impl=f"{__name__}:median_baseline",
                                     grouped=True, min_samples=2, doc="reward minus group median")]


@rlcore.hookimpl
def rlcore_policy_losses():
    return [PolicyLossRecord("cispo", impl=f"{__name__}:cispo", doc="clipped IS-weight policy loss")]
