"""Deprecated: the RL interfaces are ``sampler`` (sampling.py), ``advantages``
(advantages.py), ``policy`` and ``critic`` (rl_interfaces.py); PPOActorInterface and
PPOCriticInterface are gone (their arguments changed), see CHANGELOG.md."""

from rlcore_plugin_algorithms._moved import forwarder

__getattr__ = forwarder(__name__, {
    "REF_LOGPROBS": "rlcore.data.trajectory:REF_LOGPROBS",
    "BASELINE_REWARDS": "rlcore.data.trajectory:BASELINE_REWARDS",
    "generation_config": "rlcore_plugin_algorithms.sampling:generation_config",
    "replays_mask": "rlcore_plugin_algorithms.sampling:replays_mask",
    "shaped_rewards": "rlcore_plugin_algorithms.advantages:shaped_rewards",
    "StaleRolloutError": "rlcore_plugin_algorithms.rl_interfaces:StaleRolloutError",
})
