"""TensorBoard logger: a ``run.loggers`` entry (the default) that writes scalars on rank 0."""

from __future__ import annotations

import rlcore
from rlcore.plugins.records import LoggerRecord


@rlcore.hookimpl
def rlcore_loggers() -> list[LoggerRecord]:
    """Register the ``tensorboard`` logger."""
    return [LoggerRecord("tensorboard", impl="rlcore_plugin_tensorboard.writer:TensorBoardLogger",
                         doc="TensorBoard event files in RUN_DIR/tensorboard: the config and "
                             "summary as text, every metric as a scalar")]
