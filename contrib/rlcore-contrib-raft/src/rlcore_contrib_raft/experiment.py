"""The raft experiment: generate -> reward -> SFT on the best, as a three-MFC graph.

It reuses what the standard RL experiments own (the actor's sampling interface, the reward
node, the SFT warm start, the eval) and adds one interface of its own.
"""

from __future__ import annotations

from rlcore.dfg import MFC
from rlcore.runtime.options import InferenceOptions
from rlcore.runtime.roles import RoleSpec
from rlcore_plugin_algorithms.config import PPOOptions
from rlcore_plugin_algorithms.ppo_experiment import PPO
from rlcore_plugin_algorithms.rewards import check_reward_params

IDS = "packed_input_ids"


class RAFT(PPO):
    """Reward-ranked fine-tuning: no reference, no critic, no importance ratio."""

    name = "raft"

    @property
    def rl(self) -> PPOOptions:
        """The sampler's options: no KL, so no reference model."""
        return PPOOptions(kl_ctl=0.0)

    def roles(self) -> list[RoleSpec]:
        reward = self.config.reward
        if reward.path:
            scorer = RoleSpec("reward", model=reward.path, value_head=True,
                              options=InferenceOptions())
        else:
            scorer = RoleSpec("reward", backend="none")
        return [self.actor_spec(), scorer]

    def mfcs(self) -> list[MFC]:
        c = self.config
        if not (c.reward.path or c.reward.url or c.reward.interface):
            check_reward_params(list(c.reward.functions), c.reward.function_params)
        sampler = {"ppo": self.rl, "reward": c.reward, "gen": c.gen, "seed": c.run.seed}
        r = c.raft
        return [
            MFC("actor_gen", "actor", "generate", "ppo_actor", input_keys=("packed_prompts",),
                output_keys=(IDS, "prompt_mask", "seq_no_eos_mask"), interface_args=sampler),
            self.reward_mfc(),
            MFC("actor_sft", "actor", "train_step", "raft_sft",
                input_keys=(IDS, "prompt_mask", "rewards"),
                interface_args={"top_k": r.top_k, "min_reward": r.min_reward,
                                "epochs": r.epochs, "n_minibatches": r.n_minibatches}),
        ]

    def sample_filter(self) -> None:
        return None
