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


# A loss within this fraction of one value for ``run.flat_loss_steps`` steps has not moved.
FLAT_TOLERANCE = 1e-3


class FlatLossWatch:
    """Notices a loss (a metric ``loss`` or ``<mfc>/loss``) that has not moved for ``steps``
    steps: a run that diverged to a constant, or gets no learning signal, still "completes"."""

    def __init__(self, steps: int):
        self.steps = steps
        self.since: dict[str, tuple[int, float]] = {}  # loss -> (first step of its stretch, value)
        self.warned: set[str] = set()

    def update(self, step: int, metrics: Mapping[str, float]) -> list[str]:
        """The warnings that step ``step`` raises (each loss warns once per run)."""
        if self.steps <= 0:
            return []
        found = []
        for key, value in metrics.items():
            if key.rsplit("/", 1)[-1] != "loss" or not math.isfinite(value):
                continue
            start, ref = self.since.get(key, (step, value))
            if abs(value - ref) > FLAT_TOLERANCE * abs(ref) or (abs(ref) == 0 and value != 0):
                start, ref = step, value
            self.since[key] = (start, ref)
            if step - start + 1 >= self.steps and key not in self.warned:
                self.warned.add(key)
                found.append(
                    f"{key} has stayed at {ref:.4g} for {step - start + 1} steps (since step "
                    f"{start}): the model is not learning. A learning rate far too high "
                    "(train.optimizer.lr) or a reward that never varies often does this; "
                    "run.flat_loss_steps sets how many steps warn (0: never)")
        return found
