"""Weights & Biases logger: a ``run.loggers`` entry (``--set run.loggers=[tensorboard,wandb]``)."""

from __future__ import annotations

import rlcore
from rlcore.plugins.records import LoggerRecord


@rlcore.hookimpl
def rlcore_loggers() -> list[LoggerRecord]:
    """Register the ``wandb`` logger."""
    return [LoggerRecord("wandb", impl="rlcore_plugin_wandb.logger:WandbLogger",
                         doc="Weights & Biases: the config, every metric and the summary; a "
                             "resumed run continues its W&B run (WANDB_PROJECT, WANDB_MODE, ...)")]
