"""Deprecated: the sampler moved to sampling.py, the batch keys to rlcore.data.trajectory."""

from rlcore_plugin_algorithms._moved import forwarder

__getattr__ = forwarder(__name__, {
    **{n: f"rlcore_plugin_algorithms.sampling:{n}" for n in (
        "generation_seed", "sample_responses", "action_mask", "action_counts",
        "sampling_temperature", "action_query", "processed_logits", "token_logprobs")},
    "IDS": "rlcore.data.trajectory:INPUT_IDS", "ROLLOUT_KEYS": "rlcore.data.trajectory:ROLLOUT",
})
