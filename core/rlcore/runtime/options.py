"""Plain, torch-free option dataclasses of the runtime, embeddable in experiment configs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Dtype = Literal["fp32", "bf16", "fp16"]


@dataclass
class OptimizerOptions:
    """AdamW settings (the only optimizer the DeepSpeed backend builds)."""

    lr: float = 1e-5
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8


@dataclass
class SchedulerOptions:
    """Learning-rate schedule: linear warmup from 0, then constant, linear or cosine decay.

    ``warmup_steps`` wins over ``warmup_ratio`` (a fraction of the total optimizer
    steps) when both are set. Decay ends at ``min_lr_ratio * lr``.
    """

    kind: Literal["constant", "linear", "cosine"] = "constant"
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    min_lr_ratio: float = 0.0


@dataclass
class DeepSpeedOptions:
    """A trainable role: a DeepSpeed engine.

    ``grad_accum_steps`` micro steps (backward calls) make one optimizer step.
    ``grad_clip`` is the max global gradient norm (0 disables). ``offload_optimizer``
    keeps optimizer state and the update on the CPU (ZeRO stage >= 1).
    ``ds_config`` is merged last into the generated DeepSpeed config, for knobs
    this dataclass does not name.
    """

    zero_stage: int = 0
    dtype: Dtype = "fp32"
    grad_accum_steps: int = 1
    grad_clip: float = 1.0
    offload_optimizer: bool = False
    # With offload: "deepspeed" uses DeepSpeedCPUAdam (fast; compiled on first use),
    # "torch" keeps torch's AdamW running on the CPU (no compiler needed).
    cpu_optimizer: Literal["deepspeed", "torch"] = "deepspeed"
    optimizer: OptimizerOptions = field(default_factory=OptimizerOptions)
    scheduler: SchedulerOptions = field(default_factory=SchedulerOptions)
    ds_config: dict[str, Any] = field(default_factory=dict)


@dataclass
class InferenceOptions:
    """A frozen role: eval mode, no gradients, optionally parked on the CPU while idle."""

    dtype: Dtype = "fp32"
    offload_when_idle: bool = False


@dataclass
class RunOptions:
    """How a run iterates, logs and checkpoints (what every experiment config embeds).

    ``max_steps`` (when > 0) caps the steps that ``epochs`` would give. Give either
    ``batch_size`` (sequences per step) or ``max_tokens`` (tokens per step).
    ``save_every`` 0 saves only at the end; ``keep_last`` 0 keeps every checkpoint.
    ``collective_timeout_s`` bounds every collective, so a lost rank ends the run.
    """

    seed: int = 1
    epochs: int = 1
    max_steps: int = 0
    batch_size: int | None = 8
    max_tokens: int | None = None
    save_every: int = 0
    keep_last: int = 2
    eval_every: int = 0
    progress: bool = True
    collective_timeout_s: float = 300.0


def validate_deepspeed(opts: DeepSpeedOptions, where: str = "backend") -> None:
    """Raise ConfigError for values DeepSpeed would reject later and less clearly."""
    from rlcore.errors import ConfigError

    if opts.zero_stage not in (0, 1, 2, 3):
        raise ConfigError(f"{where}.zero_stage: expected 0, 1, 2 or 3, got {opts.zero_stage!r}")
    if opts.dtype not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"{where}.dtype: expected fp32, bf16 or fp16, got {opts.dtype!r}")
    if opts.grad_accum_steps < 1:
        raise ConfigError(f"{where}.grad_accum_steps: expected >= 1, got {opts.grad_accum_steps}")
    if opts.grad_clip < 0:
        raise ConfigError(f"{where}.grad_clip: expected >= 0, got {opts.grad_clip}")
    if opts.offload_optimizer and opts.zero_stage == 0:
        raise ConfigError(
            f"{where}.offload_optimizer needs ZeRO stage 1, 2 or 3 (zero_stage is 0); "
            "raise zero_stage or turn offload off"
        )
    if opts.scheduler.kind not in ("constant", "linear", "cosine"):
        raise ConfigError(
            f"{where}.scheduler.kind: expected constant, linear or cosine, "
            f"got {opts.scheduler.kind!r}"
        )
    if not 0.0 <= opts.scheduler.warmup_ratio < 1.0:
        raise ConfigError(f"{where}.scheduler.warmup_ratio: expected [0, 1), got "
                          f"{opts.scheduler.warmup_ratio}")
