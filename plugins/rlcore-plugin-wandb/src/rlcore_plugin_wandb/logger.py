"""One rlcore run as one W&B run; the run id is kept in ``RUN_DIR/loggers/wandb.json`` so that a
resumed run continues it.

W&B's own environment variables apply (``WANDB_PROJECT``, default ``rlcore``; ``WANDB_ENTITY``;
``WANDB_MODE=offline``; ``WANDB_DIR``, default the run dir; ``WANDB_API_KEY``). Metrics are
plotted against ``step``, the training step: after a resume, the steps between the last
checkpoint and the cut appear twice (``metrics.jsonl`` keeps only the resumed ones).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

STATE = Path("loggers") / "wandb.json"


class WandbLogger:
    """The ``wandb`` logger of ``run.loggers``."""

    def __init__(self, run_dir: str, config: dict[str, Any], start_step: int = 0) -> None:
        import wandb

        state = Path(run_dir) / STATE
        run_id = None
        if start_step > 0 and state.is_file():  # resumed: the same W&B run
            run_id = json.loads(state.read_text()).get("run_id")
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "rlcore"),
            name=Path(run_dir).resolve().name,
            dir=os.environ.get("WANDB_DIR", run_dir),
            config=config,
            id=run_id,
            resume="allow" if run_id else None,
        )
        self.run.define_metric("step")
        self.run.define_metric("*", step_metric="step")
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps({"run_id": self.run.id, "project": self.run.project}) + "\n")

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """The step's finite numeric metrics, against ``step``."""
        values = {k: v for k, v in metrics.items()
                  if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
        self.run.log({"step": step, **values})

    def close(self, summary: dict[str, Any]) -> None:
        """The run's status, step counts, time, warnings and error into the W&B summary, then
        finish the W&B run (exit code 1 unless it completed)."""
        for key in ("status", "steps", "total_steps", "elapsed_s", "error", "warnings"):
            if key in summary:
                self.run.summary[f"rlcore/{key}"] = summary[key]
        self.run.finish(exit_code=0 if summary.get("status") == "completed" else 1)
