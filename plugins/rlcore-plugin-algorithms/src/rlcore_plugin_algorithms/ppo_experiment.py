"""Deprecated: ppo, grpo and remax are presets of rl_experiments.RL."""

from rlcore_plugin_algorithms._moved import forwarder

__getattr__ = forwarder(__name__, {
    "PPO": "rlcore_plugin_algorithms.rl_experiments:RL", "GRPO": "rlcore_plugin_algorithms.rl_experiments:RL",
    "ReMax": "rlcore_plugin_algorithms.rl_experiments:RL", "WARM_START_DIR": "rlcore_plugin_algorithms.rl_experiments:WARM_START_DIR",
    "rewards_differ": "rlcore_plugin_algorithms.rl_experiments:rewards_differ",
})
