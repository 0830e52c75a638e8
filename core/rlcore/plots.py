"""Curves of runs from their ``metrics.jsonl``: a PNG with matplotlib (``rlcore[plot]``),
or a plain-text chart per metric for the terminal. Torch-free."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rlcore.errors import ConfigError
from rlcore.runtime.metrics import METRICS_FILE, read_metrics

CURVES_FILE = "curves.png"
HEADLINE = ("reward/mean", "eval/accuracy")
BLOCKS = " ▁▂▃▄▅▆▇█"


def series(rows: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    """(step, value) of ``key`` in ``rows``, the finite values only."""
    return [(int(r["step"]), float(r[key])) for r in rows
            if isinstance(r.get(key), (int, float)) and math.isfinite(float(r[key]))]


def default_metrics(keys: set[str]) -> list[str]:
    """The run's losses, then reward/mean and eval/accuracy: those of them that are present."""
    losses = sorted(k for k in keys if k == "loss" or k.endswith("/loss"))
    return losses + [k for k in HEADLINE if k in keys]


def load_runs(run_dirs: list[Path], metrics: list[str] | None) -> tuple[dict[str, list], list[str]]:
    """Each run's records, and the metrics to draw; a dir without metrics.jsonl or an unknown
    metric is a ConfigError that names it and lists what is there."""
    runs: dict[str, list] = {}
    for run_dir in run_dirs:
        if not (Path(run_dir) / METRICS_FILE).is_file():
            there = ", ".join(sorted(p.name for p in Path(run_dir).iterdir())) \
                if Path(run_dir).is_dir() else "no such directory"
            raise ConfigError(f"{run_dir}: no {METRICS_FILE} (there: {there or 'nothing'}); "
                              "give a run directory that rlcore train wrote")
        runs[str(run_dir)] = read_metrics(run_dir)
    keys = {k for rows in runs.values() for r in rows for k in r} - {"step", "time"}
    if metrics:
        for m in metrics:
            if m not in keys:
                raise ConfigError(f"--metrics: no metric {m!r} in {', '.join(runs)}; "
                                  f"there: {', '.join(sorted(keys))}")
        return runs, metrics
    chosen = default_metrics(keys)
    if not chosen:
        raise ConfigError(f"{', '.join(runs)}: no loss, reward/mean or eval/accuracy to draw; "
                          f"give --metrics, from: {', '.join(sorted(keys)) or 'none logged'}")
    return runs, chosen


def sparkline(values: list[float], width: int = 60) -> str:
    """``values`` as one line of block characters, resampled to at most ``width``."""
    if len(values) > width:
        values = [values[int(i * len(values) / width)] for i in range(width - 1)] + [values[-1]]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return "".join(BLOCKS[1 + round((v - lo) / span * (len(BLOCKS) - 2))] for v in values)


def text_chart(runs: dict[str, list], metrics: list[str], width: int = 60) -> str:
    """A plain-text chart: per metric, per run, a sparkline with first, last, min and max."""
    lines = []
    for m in metrics:
        lines.append(m)
        for name, rows in runs.items():
            points = series(rows, m)
            if not points:
                lines.append(f"  {name}: not logged")
                continue
            values = [v for _, v in points]
            lines.append(f"  {name}  steps {points[0][0]}..{points[-1][0]}  "
                         f"first {values[0]:.4g}  last {values[-1]:.4g}  "
                         f"min {min(values):.4g}  max {max(values):.4g}")
            lines.append(f"  {sparkline(values, width)}")
    return "\n".join(lines)


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_png(runs: dict[str, list], metrics: list[str], out: Path) -> Path:
    """One panel per metric, one line per run, written to ``out`` (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(len(metrics), 3)
    rows_n = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.5 * cols, 3.2 * rows_n), squeeze=False)
    for ax, m in zip(axes.flat, metrics, strict=False):
        for name, rows in runs.items():
            points = series(rows, m)
            if points:
                ax.plot([s for s, _ in points], [v for _, v in points],
                        marker="." if len(points) < 30 else None, label=Path(name).name or name)
        ax.set_title(m)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(runs) > 1:
            ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def curves_at_end(run_dir: Path) -> str | None:
    """RUN_DIR/curves.png when matplotlib is installed; a warning's text if it cannot be
    written (never an exception: a finished run is not failed by its plot)."""
    if not have_matplotlib():
        return None
    try:
        runs, metrics = load_runs([run_dir], None)
        write_png(runs, metrics, run_dir / CURVES_FILE)
    except Exception as exc:  # noqa: BLE001 - the run is done; say why there is no plot
        return f"no {CURVES_FILE} in {run_dir}: {exc}"
    return None
