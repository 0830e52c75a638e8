"""TensorBoard logger: rlcore's lifecycle hooks, written as scalars on rank 0."""

from __future__ import annotations

from typing import Any

import rlcore

_writer: Any = None


@rlcore.hookimpl
def rlcore_run_start(run_dir: str, config: dict[str, Any], rank: int, start_step: int) -> None:
    """Open a writer in ``run_dir/tensorboard``, record the config as text and, on resume,
    hide the steps after ``start_step`` that the cut-short run wrote."""
    global _writer
    if rank != 0:
        return
    from rlcore_plugin_tensorboard.writer import open_writer

    _writer = open_writer(run_dir, config, start_step)


@rlcore.hookimpl
def rlcore_step_end(step: int, metrics: dict[str, float], rank: int) -> None:
    """Write each numeric metric as a scalar at ``step``."""
    if rank == 0 and _writer is not None:
        _writer.write_scalars(step, metrics)


@rlcore.hookimpl
def rlcore_run_end(run_dir: str, summary: dict[str, Any], rank: int) -> None:
    """Flush and close the writer."""
    global _writer
    if rank == 0 and _writer is not None:
        _writer.close()
        _writer = None
