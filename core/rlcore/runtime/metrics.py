"""Per-step metrics: ``metrics.jsonl``, a rich progress bar and a summary table."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from rlcore.errors import DiskFullError
from rlcore.runtime.diskspace import writing
from rlcore.runtime.hooks import call_hook

METRICS_FILE = "metrics.jsonl"


# Strict JSON has no NaN or infinity: such values are written as these strings.
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``run_dir/metrics.jsonl`` in order (``"NaN"`` etc. read back as floats)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    return [{k: NON_FINITE.get(v, v) if isinstance(v, str) else v for k, v in json.loads(line).items()}
            for line in path.read_text().splitlines() if line.strip()]


def strict_json(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that writes non-finite floats as ``"NaN"``, ``"Infinity"``, ``"-Infinity"``."""
    return json.dumps(_finite(obj), allow_nan=False, **kwargs)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _fmt(v: float) -> str:
    if v == 0 or (1e-3 <= abs(v) < 1e4):
        return f"{v:.4f}"
    return f"{v:.3e}"


class MetricsLogger:
    """Rank 0 writes and displays; every rank calls the hooks with its rank.

    On resume from step ``start_step`` records after that step (from the run that
    was cut short) are dropped, so the file holds one record per step.
    """

    def __init__(
        self,
        run_dir: str | Path,
        rank: int,
        total_steps: int,
        start_step: int = 0,
        progress: bool = True,
        live_keys: int = 3,
        flat_loss_steps: int = 0,
        loggers: list[str] | None = None,
    ):
        from rlcore.runtime.health import FlatLossWatch

        self.run_dir = Path(run_dir)
        self.rank = rank
        self.total_steps = total_steps
        self.start_step = start_step
        self.show_progress = progress and rank == 0
        self.live_keys = live_keys
        self.path = self.run_dir / METRICS_FILE
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.steps_done = start_step
        self._progress: Any = None
        self._task: Any = None
        self._t0 = time.time()
        self.flat = FlatLossWatch(flat_loss_steps)
        self.logger_names = loggers
        self._loggers: Any = None
        self.warnings: list[str] = []

    def start(self, config: dict[str, Any]) -> None:
        from rlcore.runtime.loggers import Loggers, selected

        names = selected(self.logger_names)  # every rank: a bad name fails everywhere
        if self.rank == 0:
            self._loggers = Loggers(names, str(self.run_dir), config, self.start_step)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            kept = [r for r in read_metrics(self.run_dir) if r.get("step", 0) <= self.start_step]
            with writing(self.path), open(self.path, "w") as f:
                for r in kept:
                    f.write(strict_json(r) + "\n")
            for r in kept:
                for k, v in r.items():
                    if k not in ("step", "time"):
                        self.first.setdefault(k, v)
                        self.last[k] = v
        if self.show_progress:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.table import Column

            self._progress = Progress(
                BarColumn(bar_width=16),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                # The metrics take the room left and are cut, so the bar and ETA stay whole.
                TextColumn("{task.fields[live]}",
                           table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
                transient=False,
                expand=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                "train", total=self.total_steps, completed=self.start_step, live=""
            )
        call_hook("rlcore_run_start", run_dir=str(self.run_dir), config=config, rank=self.rank,
                  start_step=self.start_step)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Record step ``step``'s (rank-averaged) metrics."""
        metrics = {k: float(v) for k, v in metrics.items()}
        self.steps_done = step
        for k, v in metrics.items():
            self.first.setdefault(k, v)
            self.last[k] = v
        if self.rank == 0:
            with writing(self.path), open(self.path, "a") as f:
                f.write(strict_json({"step": step, "time": time.time(), **metrics}) + "\n")
        if self._progress is not None:
            shown = [k for k in metrics if not k.startswith("time/")][: self.live_keys]
            live = " ".join(f"{k}={metrics[k]:.4g}" for k in shown)
            self._progress.update(self._task, completed=step, live=live)
        if self._loggers is not None:
            self._loggers.log(step, metrics)
        for warning in self.flat.update(step, metrics):
            self.warnings.append(warning)
            if self.rank == 0:
                _warn(warning)
        call_hook("rlcore_step_end", step=step, metrics=metrics, rank=self.rank)

    def finish(self, status: str = "completed", error: str | None = None) -> dict[str, Any]:
        """Stop the display, print the summary table (rank 0), call ``rlcore_run_end``."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        summary: dict[str, Any] = {
            "status": status,
            "steps": self.steps_done,
            "total_steps": self.total_steps,
            "elapsed_s": round(time.time() - self._t0, 3),
            "first": dict(self.first),
            "last": dict(self.last),
        }
        if error:
            summary["error"] = error
        if self.warnings:
            summary["warnings"] = list(self.warnings)
        if self.rank == 0:
            try:
                _write_json(self.run_dir / "summary.json", summary)
            except DiskFullError as err:
                if status == "completed":
                    raise
                print(f"rlcore: {err}; the run's own error follows", flush=True)
            if self.show_progress:
                from rich.console import Console

                Console().print(summary_table(summary))
            for warning in self.warnings:  # again under the table: "completed" is not all
                _warn(warning)
        if self._loggers is not None:
            self._loggers.close(summary)
            self._loggers = None
        call_hook("rlcore_run_end", run_dir=str(self.run_dir), summary=summary, rank=self.rank)
        return summary


def summary_table(summary: dict[str, Any]) -> Any:
    """A rich table: each metric's first and last value."""
    from rich.table import Table

    warned = len(summary.get("warnings", []))
    table = Table(
        title=f"{summary['status']}: {summary['steps']}/{summary['total_steps']} steps "
        f"in {summary['elapsed_s']:.1f}s" + (f" ({warned} warning{'s' * (warned > 1)})"
                                             if warned else "")
    )
    table.add_column("metric")
    table.add_column("first", justify="right")
    table.add_column("last", justify="right")
    for k in sorted(summary["last"]):
        if k.startswith("time/"):
            continue
        first, last = summary["first"].get(k, math.nan), summary["last"][k]
        table.add_row(k, _fmt(first), _fmt(last))
    return table


def _warn(text: str) -> None:
    """One warning line on stderr (rank 0)."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[yellow]warning:[/] {escape(text)}", highlight=False,
                               soft_wrap=True)


def _write_json(path: Path, obj: Any) -> None:
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(strict_json(obj, indent=1) + "\n")
