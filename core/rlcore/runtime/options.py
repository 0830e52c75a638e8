"""Plain, torch-free option dataclasses of the runtime, embeddable in experiment configs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Dtype = Literal["fp32", "bf16", "fp16"]


@dataclass
class OptimizerOptions:
    """AdamW settings (the only optimizer the DeepSpeed backend builds)."""

    lr: float = field(default=1e-5, metadata={"help": "peak learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW decoupled weight decay"})
    beta1: float = field(default=0.9, metadata={"help": "AdamW beta1"})
    beta2: float = field(default=0.95, metadata={"help": "AdamW beta2"})
    eps: float = field(default=1e-8, metadata={"help": "AdamW epsilon"})


@dataclass
class SchedulerOptions:
    """Learning-rate schedule: linear warmup from 0, then constant, linear or cosine decay.

    ``warmup_steps`` wins over ``warmup_ratio`` (a fraction of the total optimizer
    steps) when both are set. Decay ends at ``min_lr_ratio * lr``.
    """

    kind: Literal["constant", "linear", "cosine"] = field(
        default="constant", metadata={"help": "decay after warmup"})
    warmup_steps: int = field(default=0, metadata={"help": "linear warmup from 0 (optimizer steps)"})
    warmup_ratio: float = field(default=0.0, metadata={"help": "warmup as a fraction of all steps"})
    min_lr_ratio: float = field(default=0.0, metadata={"help": "lr at the end of decay, times lr"})


@dataclass
class DeepSpeedOptions:
    """A trainable role: a DeepSpeed engine.

    ``grad_accum_steps`` micro steps (backward calls) make one optimizer step.
    ``grad_clip`` is the max global gradient norm (0 disables). ``offload_optimizer``
    keeps optimizer state and the update on the CPU (ZeRO stage >= 1).
    ``ds_config`` is merged last into the generated DeepSpeed config, for knobs
    this dataclass does not name.
    """

    zero_stage: int = field(default=0, metadata={"help": "ZeRO stage 0, 1, 2 or 3"})
    dtype: Dtype = field(default="fp32", metadata={"help": "training precision"})
    grad_accum_steps: int = field(default=1, metadata={"help": "micro steps per optimizer step"})
    grad_clip: float = field(default=1.0, metadata={"help": "max global gradient norm; 0: off"})
    offload_optimizer: bool = field(
        default=False, metadata={"help": "optimizer state and update on the CPU (ZeRO >= 1)"})
    cpu_optimizer: Literal["deepspeed", "torch"] = field(default="deepspeed", metadata={
        "help": "with offload: DeepSpeedCPUAdam (compiled on first use) or torch AdamW"})
    optimizer: OptimizerOptions = field(default_factory=OptimizerOptions)
    scheduler: SchedulerOptions = field(default_factory=SchedulerOptions)
    ds_config: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "merged last into the generated DeepSpeed config"})


@dataclass
class InferenceOptions:
    """A frozen role: eval mode, no gradients, optionally parked on the CPU while idle."""

    dtype: Dtype = field(default="fp32", metadata={"help": "inference precision"})
    offload_when_idle: bool = field(
        default=False, metadata={"help": "park the weights on the CPU between its calls"})


@dataclass
class RunOptions:
    """How a run iterates, logs and checkpoints (what every experiment config embeds).

    ``max_steps`` (when > 0) caps the steps that ``epochs`` would give. Give either
    ``batch_size`` (sequences per step) or ``max_tokens`` (tokens per step).
    ``save_every`` 0 saves only at the end; ``keep_last`` 0 keeps every checkpoint.
    ``collective_timeout_s`` bounds every collective, so a lost rank ends the run.
    """

    seed: int = field(default=1, metadata={"help": "seeds torch, numpy and python on every rank"})
    epochs: int = field(default=1, metadata={"help": "passes over the dataset"})
    max_steps: int = field(default=0, metadata={"help": "cap on steps; 0: epochs decide"})
    batch_size: int | None = field(default=8, metadata={"help": "sequences per step (or max_tokens)"})
    max_tokens: int | None = field(default=None, metadata={"help": "tokens per step, instead of batch_size"})
    save_every: int = field(default=0, metadata={"help": "checkpoint every N steps; 0: only at the end"})
    keep_last: int = field(default=2, metadata={"help": "checkpoints kept; 0: all"})
    eval_every: int = field(default=0, metadata={"help": "evaluate every N steps; 0: never"})
    eval_at_start: bool = field(default=True, metadata={
        "help": "with eval_every: also evaluate before training, logged as step 0"})
    progress: bool = field(default=True, metadata={"help": "rich progress bar on rank 0"})
    collective_timeout_s: float = field(
        default=300.0, metadata={"help": "bound on every collective, so a lost rank ends the run"})


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
