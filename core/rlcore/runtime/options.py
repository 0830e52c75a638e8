"""Plain, torch-free option dataclasses of the runtime, embeddable in experiment configs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Dtype = Literal["fp32", "bf16", "fp16"]

BETA2_HELP = ("AdamW beta2; 0.95 (the GPT-3/Llama recipes), where HF Trainer, TRL and torch "
              "default to 0.999: set 0.999 to match them")
BATCH_SIZE_HELP = ("samples per step: sequences (sft), chosen/rejected pairs (rm, dpo), prompts "
                   "(ppo, grpo, remax: each sampled gen.n_samples times); or use max_tokens")


@dataclass
class OptimizerOptions:
    """AdamW settings (the only optimizer the DeepSpeed backend builds)."""

    lr: float = field(default=1e-5, metadata={"help": "peak learning rate", "range": "(0, inf)"})
    weight_decay: float = field(default=0.0, metadata={
        "help": "AdamW decoupled weight decay", "range": "[0, inf)"})
    beta1: float = field(default=0.9, metadata={"help": "AdamW beta1", "range": "[0, 1)"})
    beta2: float = field(default=0.95, metadata={"help": BETA2_HELP, "range": "[0, 1)"})
    eps: float = field(default=1e-8, metadata={"help": "AdamW epsilon", "range": "(0, inf)"})


@dataclass
class SchedulerOptions:
    """Learning-rate schedule: linear warmup from 0, then constant, linear or cosine decay.

    ``warmup_steps`` wins over ``warmup_ratio`` (a fraction of the total optimizer
    steps) when both are set. Decay ends at ``min_lr_ratio * lr``.
    """

    kind: Literal["constant", "linear", "cosine"] = field(
        default="constant", metadata={"help": "decay after warmup"})
    warmup_steps: int = field(default=0, metadata={
        "help": "linear warmup from 0 (optimizer steps)", "range": "[0, inf)"})
    warmup_ratio: float = field(default=0.0, metadata={
        "help": "warmup as a fraction of all steps", "range": "[0, 1)"})
    min_lr_ratio: float = field(default=0.0, metadata={
        "help": "lr at the end of decay, times lr", "range": "[0, 1]"})


@dataclass
class DeepSpeedOptions:
    """A trainable role: a DeepSpeed engine.

    ``grad_accum_steps`` micro steps (backward calls) make one optimizer step.
    ``grad_clip`` is the max global gradient norm (0 disables). ``offload_optimizer``
    keeps optimizer state and the update on the CPU (ZeRO stage >= 1).
    ``ds_config`` is merged last into the generated DeepSpeed config, for knobs
    this dataclass does not name.
    """

    zero_stage: int = field(default=0, metadata={"help": "ZeRO stage 0, 1, 2 or 3", "range": "[0, 3]"})
    dtype: Dtype = field(default="fp32", metadata={"help": "training precision"})
    grad_accum_steps: int = field(default=1, metadata={
        "help": "micro steps per optimizer step", "range": "[1, inf)"})
    grad_clip: float = field(default=1.0, metadata={
        "help": "max global gradient norm; 0: off", "range": "[0, inf)"})
    offload_optimizer: bool = field(
        default=False, metadata={"help": "optimizer state and update on the CPU (ZeRO >= 1)"})
    cpu_optimizer: Literal["deepspeed", "torch"] = field(default="deepspeed", metadata={
        "help": "with offload: DeepSpeedCPUAdam (compiled on first use) or torch AdamW"})
    optimizer: OptimizerOptions = field(default_factory=OptimizerOptions)
    scheduler: SchedulerOptions = field(default_factory=SchedulerOptions)
    moe_aux_loss_coef: float = field(default=0.0, metadata={
        "help": "weight of the router load-balancing loss added to a mixture-of-experts model's "
                "loss (logged as moe/aux_loss either way); transformers' router_aux_loss_coef",
        "range": "[0, inf)"})
    ds_config: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "merged last into the generated DeepSpeed config"})


@dataclass
class InferenceOptions:
    """A frozen role: eval mode, no gradients, optionally parked on the CPU while idle."""

    dtype: Dtype = field(default="fp32", metadata={"help": "inference precision"})
    offload_when_idle: bool = field(
        default=False, metadata={"help": "park the weights on the CPU between its calls"})


LORA_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")


@dataclass
class LoraOptions:
    """LoRA adapters (through peft) on a role's block projections; ``r`` 0 trains every weight.

    Only the adapters train (and a value head); a frozen role that starts from this one is the
    same base with its adapters switched off, so no second copy is held.
    """

    r: int = field(default=0, metadata={"help": "adapter rank; 0: LoRA off (full fine-tuning)",
                                        "range": "[0, inf)"})
    alpha: float = field(default=32.0, metadata={
        "help": "scale numerator: the update is (alpha / r) * B A", "range": "(0, inf)"})
    dropout: float = field(default=0.0, metadata={"help": "dropout on the adapters' input",
                                                  "range": "[0, 1)"})
    targets: list[str] = field(default_factory=lambda: ["all"], metadata={
        "help": "block projections that get adapters: all, or some of q, k, v, o, gate, up, down"})

    @property
    def enabled(self) -> bool:
        return self.r > 0

    def validate(self, where: str = "lora") -> None:
        """Unknown projection names fail when the config is resolved, naming the key."""
        from rlcore.errors import ConfigError

        known = ("all", *LORA_TARGETS)
        bad = [t for t in self.targets if t not in known]
        if bad or not self.targets:
            raise ConfigError(f"{where}.targets: {bad or 'empty'} is not a block projection; "
                              f"choose all, or some of {', '.join(LORA_TARGETS)}")


@dataclass
class RunOptions:
    """How a run iterates, logs and checkpoints (what every experiment config embeds).

    ``max_steps`` (when > 0) caps the steps that ``epochs`` would give. Give either
    ``batch_size`` (samples per step: a sample is a sequence, a pair or a prompt) or
    ``max_tokens`` (tokens per step). ``seed`` also orders the batches.
    A checkpoint is saved every ``save_every`` steps and every ``save_every_s`` seconds of
    wall time (rank 0's clock decides, so every rank saves at the same step), and at the
    end; both 0 save only at the end. ``keep_last`` 0 keeps every checkpoint.
    ``collective_timeout_s`` bounds every collective, so a lost rank ends the run.
    """

    seed: int = field(default=1, metadata={
        "help": "seeds torch, numpy and python on every rank, and the batch order", "range": "[0, inf)"})
    epochs: int = field(default=1, metadata={"help": "passes over the dataset", "range": "[1, inf)"})
    max_steps: int = field(default=0, metadata={"help": "cap on steps; 0: epochs decide", "range": "[0, inf)"})
    batch_size: int | None = field(default=8, metadata={"help": BATCH_SIZE_HELP, "range": "[1, inf)"})
    max_tokens: int | None = field(default=None, metadata={
        "help": "tokens per step, instead of batch_size (a pair counts both sequences)", "range": "[1, inf)"})
    save_every: int = field(default=0, metadata={
        "help": "checkpoint every N steps (and at the end); 0: steps do not decide", "range": "[0, inf)"})
    save_every_s: float = field(default=600.0, metadata={
        "help": "checkpoint when this many seconds of wall time have passed since the last "
                "save, so a crash or kill loses at most that; 0: time does not decide",
        "range": "[0, inf)"})
    keep_last: int = field(default=2, metadata={"help": "checkpoints kept; 0: all", "range": "[0, inf)"})
    eval_every: int = field(default=0, metadata={"help": "evaluate every N steps; 0: never", "range": "[0, inf)"})
    eval_at_start: bool = field(default=True, metadata={
        "help": "with eval_every: also evaluate before training, logged as step 0"})
    progress: bool = field(default=True, metadata={
        "help": "progress on rank 0: a rich bar on a terminal, else plain lines"})
    log_every_s: float = field(default=30.0, metadata={
        "help": "without a terminal (Slurm, nohup, CI): a progress line every N seconds, and at "
                "the first and last step; 0: every step", "range": "[0, inf)"})
    loggers: list[str] | None = field(default=None, metadata={
        "help": "logger plugins that get the config, metrics and summary (rlcore list "
                "loggers), e.g. [tensorboard, wandb]; unset: [tensorboard] when installed"})
    flat_loss_steps: int = field(default=50, metadata={
        "help": "warn when a loss has not moved (within 0.1%) for this many steps; 0: never",
        "range": "[0, inf)"})
    collective_timeout_s: float = field(
        default=300.0, metadata={"help": "bound on every collective, so a lost rank ends the run",
                                 "range": "(0, inf)"})


def validate_deepspeed(opts: DeepSpeedOptions, where: str = "backend") -> None:
    """Raise ConfigError for values DeepSpeed would reject later and less clearly.

    A resolved config has passed these checks already (under its own keys); this
    catches options built or changed in code.
    """
    from rlcore.config.ranges import check_ranges
    from rlcore.errors import ConfigError

    check_ranges(opts, f"{where}.", default_source="the backend options")
    if opts.dtype not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"{where}.dtype: expected fp32, bf16 or fp16, got {opts.dtype!r}")
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
