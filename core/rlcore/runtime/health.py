"""Run health: a step whose metrics hold a non-finite value stops the run before anything is saved."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

from rlcore.errors import RlcoreError


class NonFiniteError(RlcoreError):
    """A step produced NaN or infinity in a loss, gradient norm, reward or other metric."""


def check_finite(step: int, metrics: Mapping[str, float],
                 last_checkpoint: Callable[[], Path | None]) -> None:
    """Raise NonFiniteError naming the step and every non-finite metric of it."""
    bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
    if not bad:
        return
    shown = ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
    latest = last_checkpoint()
    kept = f"the last good checkpoint is {latest}" if latest else "no checkpoint was written"
    raise NonFiniteError(
        f"step {step}: non-finite {shown}. The run stopped without saving these weights; {kept}. "
        "Lower the learning rate (train.optimizer.lr), keep gradient clipping on "
        "(train.grad_clip), or check the data and rewards.")
