"""rlcore's standard experiments (sft, rm, dpo, ppo, grpo, remax) and their model interfaces."""

import rlcore
from rlcore.plugins.records import ExperimentRecord, InterfaceRecord

_PKG = "rlcore_plugin_algorithms"


@rlcore.hookimpl
def rlcore_experiments():
    """SFT, reward modelling, DPO, PPO, GRPO and ReMax."""
    return [
        ExperimentRecord(
            "sft", impl=f"{_PKG}.experiments:SFT", config=f"{_PKG}.config:SFTConfig",
            doc="Supervised fine-tuning on prompt_answer data: next-token loss on the answer.",
        ),
        ExperimentRecord(
            "rm", impl=f"{_PKG}.experiments:RewardModeling", config=f"{_PKG}.config:RMConfig",
            doc="Reward modelling on paired data: Bradley-Terry loss, pairwise accuracy.",
        ),
        ExperimentRecord(
            "dpo", impl=f"{_PKG}.experiments:DPO", config=f"{_PKG}.config:DPOConfig",
            doc="Direct preference optimisation against a frozen reference (sigmoid or IPO loss).",
        ),
        ExperimentRecord(
            "ppo", impl=f"{_PKG}.ppo_experiment:PPO", config=f"{_PKG}.config:PPOConfig",
            doc="PPO: the actor samples, reward/ref/critic score, actor and critic train (GAE).",
        ),
        ExperimentRecord(
            "grpo", impl=f"{_PKG}.ppo_experiment:GRPO", config=f"{_PKG}.config:GRPOConfig",
            doc="GRPO, RLOO, REINFORCE++ (and DAPO, GSPO, Dr. GRPO options): no critic.",
        ),
        ExperimentRecord(
            "remax", impl=f"{_PKG}.ppo_experiment:ReMax", config=f"{_PKG}.config:RemaxConfig",
            doc="ReMax: each prompt's greedy response reward is the baseline of its samples.",
        ),
    ]


@rlcore.hookimpl
def rlcore_interfaces():
    """The model interfaces the experiments' MFCs call."""
    return [
        InterfaceRecord("sft", impl=f"{_PKG}.interfaces:SFTInterface",
                        doc="train_step: masked next-token loss; inference: per-token log-probs."),
        InterfaceRecord("reward", impl=f"{_PKG}.interfaces:RewardInterface",
                        doc="train_step: Bradley-Terry loss on pairs; inference: sequence scores."),
        InterfaceRecord("dpo", impl=f"{_PKG}.interfaces:DPOInterface",
                        doc="inference: answer log-prob sums; train_step: DPO loss vs reference."),
        InterfaceRecord("ppo_actor", impl=f"{_PKG}.ppo:PPOActorInterface",
                        doc="generate: sample responses; inference: their log-probs; "
                            "train_step: clipped PPO."),
        InterfaceRecord("ppo_critic", impl=f"{_PKG}.ppo:PPOCriticInterface",
                        doc="inference: per-token values; train_step: clipped value loss on GAE returns."),
        InterfaceRecord("reward_functions", impl=f"{_PKG}.rewards:RewardFunctionInterface",
                        doc="inference: weighted sum of registered reward functions per response."),
        InterfaceRecord("remote_reward", impl=f"{_PKG}.remote_reward:RemoteRewardInterface",
                        doc="inference: per-response scores from an HTTP reward service (reward.url)."),
    ]
