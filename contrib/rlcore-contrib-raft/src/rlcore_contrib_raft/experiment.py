"""The raft experiment: generate -> reward -> SFT on the best, as a three-MFC graph.

It reuses what the standard sampling experiments own (the actor's sampler node, the reward
node, the SFT warm start, the eval) and adds one interface of its own.
"""

from __future__ import annotations

from rlcore.sdk import INPUT_IDS as IDS
from rlcore.sdk import MFC, NO_EOS, PROMPT_MASK, REWARDS, RoleSpec
from rlcore_plugin_algorithms.rl_experiments import SamplingExperiment


class RAFT(SamplingExperiment):
    """Reward-ranked fine-tuning: no reference, no critic, no importance ratio."""

    name = "raft"

    def roles(self) -> list[RoleSpec]:
        return [self.actor_spec(), self.reward_role()]

    def mfcs(self) -> list[MFC]:
        r = self.config.raft
        sampler = self.sampler_mfc(outputs={k: k for k in (IDS, PROMPT_MASK, NO_EOS)})
        return [
            sampler,
            self.reward_mfc(),
            MFC("actor_sft", "actor", "train_step", "raft_sft",
                input_keys=(IDS, PROMPT_MASK, REWARDS),
                interface_args={"top_k": r.top_k, "min_reward": r.min_reward,
                                "epochs": r.epochs, "n_minibatches": r.n_minibatches}),
        ]
