"""Per-step metrics: ``metrics.jsonl``, progress (a rich bar on a terminal, plain lines
elsewhere) and a summary table, each led by the experiment's headline metrics."""

from __future__ import annotations

import json
import math
import sys
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
        headline: list[str] | None = None,
        log_every_s: float = 30.0,
        terminal: bool | None = None,
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
        self.last_step: dict[str, int] = {}  # the step each value of ``last`` is from
        self.headline = list(headline or [])
        self.log_every_s = log_every_s
        # A rich bar on a terminal; elsewhere (Slurm, nohup, CI) it would show only at the
        # end, so plain lines instead, every log_every_s.
        self.terminal = sys.stdout.isatty() if terminal is None else terminal
        self._line_at: float | None = None  # when the last plain line was printed
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
                        self.last_step[k] = r.get("step", 0)
        if self.show_progress and self.terminal:
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
            self.last_step[k] = step
        if self.rank == 0:
            with writing(self.path), open(self.path, "a") as f:
                f.write(strict_json({"step": step, "time": time.time(), **metrics}) + "\n")
        if self._progress is not None:
            live = " ".join(f"{k}={self.last[k]:.4g}" for k in self.shown_keys(metrics))
            self._progress.update(self._task, completed=step, live=live)
        elif self.show_progress and step > self.start_step and self._line_due(step):
            print(self.progress_line(step, metrics), flush=True)
        if self._loggers is not None:
            self._loggers.log(step, metrics)
        for warning in self.flat.update(step, metrics):
            self.warnings.append(warning)
            if self.rank == 0:
                _warn(warning)
        call_hook("rlcore_step_end", step=step, metrics=metrics, rank=self.rank)

    def shown_keys(self, metrics: dict[str, float]) -> list[str]:
        """The headline metrics logged so far; without any, this step's first ``live_keys``."""
        keys = [k for k in self.headline if k in self.last]
        return keys or [k for k in metrics if not k.startswith("time/")][: self.live_keys]

    def _line_due(self, step: int) -> bool:
        now = time.time()
        due = (self._line_at is None or step >= self.total_steps
               or now - self._line_at >= self.log_every_s)
        if due:
            self._line_at = now
        return due

    def progress_line(self, step: int, metrics: dict[str, float]) -> str:
        """``step 40/1280 (3%)  12.1 steps/s  eta 1m42s  loss=0.91 eval/accuracy=0.12 (step 32)``."""
        done, elapsed = step - self.start_step, max(time.time() - self._t0, 1e-9)
        rate = done / elapsed
        left = (self.total_steps - step) / rate if rate > 0 else math.inf
        parts = [f"step {step}/{self.total_steps} ({100 * step // max(self.total_steps, 1)}%)",
                 f"{rate:.3g} steps/s", f"eta {_duration(left)}"]
        shown = []
        for k in self.shown_keys(metrics):
            value = f"{k}={self.last[k]:.4g}"
            if self.last_step.get(k, step) != step:
                value += f" (step {self.last_step[k]})"
            shown.append(value)
        return "  ".join(parts + [" ".join(shown)] if shown else parts)

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
            "last_step": dict(self.last_step),
            "headline": [k for k in self.headline if k in self.last],
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

                # Off a terminal rich would cut the table at 80 columns: keep its natural width.
                console = Console() if self.terminal else Console(width=200)
                console.print(summary_table(summary))
            for warning in self.warnings:  # again under the table: "completed" is not all
                _warn(warning)
        if self._loggers is not None:
            self._loggers.close(summary)
            self._loggers = None
        call_hook("rlcore_run_end", run_dir=str(self.run_dir), summary=summary, rank=self.rank)
        return summary


def summary_table(summary: dict[str, Any]) -> Any:
    """A rich table: each metric's first and last value and the step of the last, the
    headline metrics first; a metric last logged before the last step says so."""
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
    table.add_column("at step", justify="right")
    steps, last_steps = summary["steps"], summary.get("last_step", {})
    headline = [k for k in summary.get("headline", []) if k in summary["last"]]
    rest = sorted(k for k in summary["last"] if k not in headline and not k.startswith("time/"))
    older = []
    for i, k in enumerate(headline + rest):
        first, last = summary["first"].get(k, math.nan), summary["last"][k]
        at = last_steps.get(k)
        if at is not None and at < steps:
            older.append(k)
        table.add_row(k, _fmt(first), _fmt(last), "" if at is None else f"{at}{'*' * (k in older)}",
                      end_section=i == len(headline) - 1 and bool(rest))
    if older:
        evals = all(k.startswith("eval/") for k in older)
        table.caption = (f"*: not {'evaluated' if evals else 'logged'} at the last step "
                         f"({steps})")
    return table


def _duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h14m``; ``?`` when unknown."""
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


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
