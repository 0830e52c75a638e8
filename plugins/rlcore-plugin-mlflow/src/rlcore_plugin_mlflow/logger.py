"""One rlcore run as one MLflow run; the run id is kept in ``RUN_DIR/loggers/mlflow.json`` so
that a resumed run continues it.

MLflow's own environment variables apply: ``MLFLOW_TRACKING_URI`` (a server, ``sqlite:///…``,
or a ``file://`` store, which MLflow 3 accepts only with ``MLFLOW_ALLOW_FILE_STORE=true``) and
``MLFLOW_EXPERIMENT_NAME`` (default ``rlcore``).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

STATE = Path("loggers") / "mlflow.json"
BATCH = 100  # MLflow takes at most 100 params per call
END_STATUS = {"completed": "FINISHED", "interrupted": "KILLED"}  # anything else: FAILED


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"run": {"seed": 1}}`` as ``{"run.seed": "1"}``: MLflow params are flat strings."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = json.dumps(value) if not isinstance(value, str) else value
    return flat


class MlflowLogger:
    """The ``mlflow`` logger of ``run.loggers``."""

    def __init__(self, run_dir: str, config: dict[str, Any], start_step: int = 0) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient()
        state = Path(run_dir) / STATE
        run_id = None
        if start_step > 0 and state.is_file():  # resumed: the same MLflow run
            run_id = json.loads(state.read_text()).get("run_id")
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
        else:
            run_id = self._new_run(Path(run_dir).resolve(), config)
        self.run_id = run_id
        self.client.log_dict(run_id, config, "config.json")  # the config this part ran with
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps({"run_id": run_id,
                                     "tracking_uri": self.client.tracking_uri}) + "\n")

    def _new_run(self, run_dir: Path, config: dict[str, Any]) -> str:
        from mlflow.entities import Param

        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "rlcore")
        found = self.client.get_experiment_by_name(name)
        experiment = found.experiment_id if found else self.client.create_experiment(name)
        run = self.client.create_run(experiment, run_name=run_dir.name,
                                     tags={"rlcore.run_dir": str(run_dir)})
        params = [Param(k, v[:6000]) for k, v in flatten(config).items()]
        for i in range(0, len(params), BATCH):
            self.client.log_batch(run.info.run_id, params=params[i:i + BATCH])
        return run.info.run_id

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """The step's finite numeric metrics at ``step``."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        found = [Metric(k, float(v), now, step) for k, v in metrics.items()
                 if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)]
        if found:
            self.client.log_batch(self.run_id, metrics=found)

    def close(self, summary: dict[str, Any]) -> None:
        """``summary.json`` as an artifact, the status as tag ``rlcore.status``, then end the
        run: FINISHED, KILLED (interrupted) or FAILED."""
        status = str(summary.get("status", "failed"))
        self.client.log_dict(self.run_id, summary, "summary.json")
        self.client.set_tag(self.run_id, "rlcore.status", status)
        self.client.set_terminated(self.run_id, END_STATUS.get(status, "FAILED"))
