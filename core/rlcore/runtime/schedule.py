"""Learning-rate schedule shapes (torch-free): warmup, then constant, linear or cosine."""

from __future__ import annotations

import math

from rlcore.runtime.options import SchedulerOptions


def warmup_steps(opts: SchedulerOptions, total_steps: int) -> int:
    """Warmup length in optimizer steps: ``warmup_steps`` or ``warmup_ratio * total``."""
    if opts.warmup_steps > 0:
        return opts.warmup_steps
    return int(opts.warmup_ratio * total_steps)


def lr_factor(opts: SchedulerOptions, step: int, total_steps: int) -> float:
    """Multiplier of the base lr for optimizer step ``step`` (0-based) out of ``total_steps``.

    Warmup ramps linearly so that the first update uses ``lr / warmup`` and step
    ``warmup - 1`` the full lr; decay then reaches ``min_lr_ratio`` at the last step.
    """
    warm = warmup_steps(opts, total_steps)
    if step < warm:
        return (step + 1) / warm
    if opts.kind == "constant":
        return 1.0
    span = max(1, total_steps - warm - 1)
    progress = min(1.0, max(0.0, (step - warm) / span))
    floor = opts.min_lr_ratio
    if opts.kind == "linear":
        return floor + (1.0 - floor) * (1.0 - progress)
    if opts.kind == "cosine":
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule kind {opts.kind!r}")
