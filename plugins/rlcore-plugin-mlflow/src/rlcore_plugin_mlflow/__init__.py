"""MLflow logger: a ``run.loggers`` entry (``--set run.loggers=[tensorboard,mlflow]``)."""

from __future__ import annotations

import rlcore
from rlcore.plugins.records import LoggerRecord


@rlcore.hookimpl
def rlcore_loggers() -> list[LoggerRecord]:
    """Register the ``mlflow`` logger."""
    return [LoggerRecord("mlflow", impl="rlcore_plugin_mlflow.logger:MlflowLogger",
                         doc="MLflow: the config (params and config.json), every metric and "
                             "the summary; a resumed run continues its MLflow run "
                             "(MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME)")]
