"""rlcore's standard experiments (sft, rm, dpo, the RL presets ppo, grpo, remax, online_dpo,
distill), their model interfaces, advantage estimators, policy losses and environments."""

import rlcore
from rlcore.plugins.records import (
    AdvantageEstimatorRecord,
    EnvironmentRecord,
    ExperimentRecord,
    InterfaceRecord,
    PolicyLossRecord,
)

_PKG = "rlcore_plugin_algorithms"


@rlcore.hookimpl
def rlcore_experiments():
    """SFT, reward modelling, DPO, PPO, GRPO, ReMax, online DPO and on-policy distillation."""
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
            "ppo", impl=f"{_PKG}.rl_experiments:RL", config=f"{_PKG}.rl_config:PPOConfig",
            doc="RL, preset PPO: the actor samples, reward/ref/critic score, GAE, actor and "
                "critic train.",
        ),
        ExperimentRecord(
            "grpo", impl=f"{_PKG}.rl_experiments:RL", config=f"{_PKG}.rl_config:GRPOConfig",
            doc="RL, preset GRPO: group-relative advantages, no critic (RLOO, REINFORCE++, "
                "DAPO, GSPO, Dr. GRPO by options).",
        ),
        ExperimentRecord(
            "remax", impl=f"{_PKG}.rl_experiments:RL", config=f"{_PKG}.rl_config:RemaxConfig",
            doc="RL, preset ReMax: each prompt's greedy response reward is its samples' baseline.",
        ),
        ExperimentRecord(
            "online_dpo", impl=f"{_PKG}.online_dpo:OnlineDPO",
            config=f"{_PKG}.online_dpo_config:OnlineDPOConfig",
            doc="Online DPO: the actor samples, the reward ranks; best vs worst response as a "
                "DPO pair against the reference (sigmoid or ipo).",
        ),
        ExperimentRecord(
            "distill", impl=f"{_PKG}.distill:Distill", config=f"{_PKG}.distill_config:DistillConfig",
            doc="On-policy distillation: the student samples, a frozen teacher scores its tokens; "
                "per-token reverse KL as the advantage (plus a task reward by weight).",
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
        InterfaceRecord("sampler", impl=f"{_PKG}.sampling:SamplerInterface",
                        doc="generate: sample responses; inference: their log-probs as sampled."),
        InterfaceRecord("advantages", impl=f"{_PKG}.advantages:AdvantageInterface",
                        doc="inference: advantages and returns by adv.estimator; owns the KL "
                            "controller."),
        InterfaceRecord("preference_pairs", impl=f"{_PKG}.online_dpo:PreferencePairsInterface",
                        doc="inference: each prompt's best and worst response as a DPO pair "
                            "(weight 0 when all tie)."),
        InterfaceRecord("distill_advantages", impl=f"{_PKG}.distill:DistillAdvantageInterface",
                        doc="inference: -(log p_student - log p_teacher) per sampled token, plus "
                            "distill.task_weight times the task advantages."),
        InterfaceRecord("policy", impl=f"{_PKG}.rl_interfaces:PolicyInterface",
                        doc="train_step: the policy.loss entry on the advantages, KL, entropy."),
        InterfaceRecord("critic", impl=f"{_PKG}.rl_interfaces:CriticInterface",
                        doc="inference: per-token values; train_step: clipped value loss on returns."),
        InterfaceRecord("reward_functions", impl=f"{_PKG}.rewards:RewardFunctionInterface",
                        doc="inference: weighted sum of registered reward functions per response."),
        InterfaceRecord("env_rewards", impl=f"{_PKG}.multi_turn:EnvRewardInterface",
                        doc="the environment's rewards of each episode, as the reward node"),
        InterfaceRecord("remote_reward", impl=f"{_PKG}.remote_reward:RemoteRewardInterface",
                        doc="inference: per-response scores from an HTTP reward service (reward.url)."),
    ]


@rlcore.hookimpl
def rlcore_advantage_estimators():
    """GAE, REINFORCE++, GRPO, RLOO and ReMax (rlcore_plugin_algorithms.estimators)."""
    here = f"{_PKG}.estimators"
    return [
        AdvantageEstimatorRecord("gae", impl=f"{here}:gae", needs_critic=True, kl_in_reward=True,
                                 doc="GAE over a critic's values (PPO)"),
        AdvantageEstimatorRecord("reinforce_pp", impl=f"{here}:reinforce_pp", kl_in_reward=True,
                                 whiten=True, doc="REINFORCE++: batch-whitened reward-to-go"),
        AdvantageEstimatorRecord("grpo", impl=f"{here}:grpo", grouped=True, min_samples=2,
                                 doc="GRPO: group-normalised rewards (adv.std_norm=false: Dr. GRPO)"),
        AdvantageEstimatorRecord("rloo", impl=f"{here}:rloo", grouped=True, min_samples=2,
                                 doc="RLOO: leave-one-out group baseline"),
        AdvantageEstimatorRecord("remax", impl=f"{here}:remax", grouped=True, needs_baseline=True,
                                 doc="ReMax: the greedy response's reward as the baseline"),
    ]


@rlcore.hookimpl
def rlcore_policy_losses():
    """PPO's clipped surrogate (rlcore_plugin_algorithms.policy_losses)."""
    return [PolicyLossRecord("ppo", impl=f"{_PKG}.policy_losses:ppo",
                             doc="clipped surrogate; policy.eps_clip_low/high, dual_clip, "
                                 "ratio_level")]


@rlcore.hookimpl
def rlcore_environments():
    return [
        EnvironmentRecord("calculator", impl=f"{_PKG}.calculator:Calculator",
                          doc="3-digit x 1-digit products with a calculator tool (embedded task)"),
        EnvironmentRecord("python", impl=f"{_PKG}.python_env:PythonEnvironment",
                          doc="questions with exact answers and a python tool that runs the "
                              "model's code in the sandbox (embedded task)"),
    ]
