"""Rollout: engines that turn prompts into sampled responses, tagged with the weight version
that produced each token. An engine is a plugin kind (``rlcore_rollout_engines``); ``local``
samples with the trainer's own module."""
