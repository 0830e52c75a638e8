"""Rollout: engines that turn prompts into sampled responses, tagged with the weight version
that produced each token. An engine is a plugin kind (``rlcore_rollout_engines``); ``local``
samples with the trainer's own module."""

ROLLOUT_ENV = "RLCORE_ROLLOUT"  # HOST:PORT:WORKERS of the rollout group's store (the launcher sets it)
RANK_ENV = "RLCORE_ROLLOUT_RANK"  # a worker's rank in that group (trainer rank 0 is rank 0)
