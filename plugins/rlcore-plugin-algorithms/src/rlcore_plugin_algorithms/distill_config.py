"""The distill experiment's config: the RL sections (grpo's defaults) plus ``teacher`` (who
scores the student's tokens) and ``distill`` (how the signal mixes with a task reward)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from rlcore.sdk import ConfigError, DeepSpeedOptions, InferenceOptions, RunOptions
from rlcore_plugin_algorithms.config import ModelOptions, _train
from rlcore_plugin_algorithms.profiles import profiles
from rlcore_plugin_algorithms.rl_config import (
    AdvantageOptions,
    GenerationOptions,
    GRPOConfig,
    PolicyOptions,
    WarmStartOptions,
)
from rlcore_plugin_datasets.config import PromptConfig


@dataclass
class TeacherOptions:
    """The frozen teacher: a model directory or run, else an SFT run of the tiny built-in
    model, trained once and cached by its config (docs/distill.md)."""

    section: ClassVar[str] = "teacher"

    path: str | None = field(default=None, metadata={
        "help": "HF model directory of a registered family, an rlcore run dir or checkpoint "
                "dir (its actor); null: the SFT-trained tiny teacher below"})
    inference: InferenceOptions = field(default_factory=InferenceOptions)
    hidden_size: int = field(default=128, metadata={
        "help": "tiny teacher (path null): its width", "range": "[1, inf)"})
    sft_steps: int = field(default=300, metadata={
        "help": "tiny teacher: SFT steps on the dataset's prompt/answer rows", "range": "[1, inf)"})
    lr: float = field(default=1e-3, metadata={"help": "tiny teacher: SFT learning rate", "range": "(0, inf)"})
    batch_size: int = field(default=32, metadata={"help": "tiny teacher: SFT sequences per step", "range": "[1, inf)"})
    cache_dir: str | None = field(default=None, metadata={
        "help": "tiny teacher: trained once into CACHE/<hash of its config>; null: "
                "$RLCORE_CACHE/teachers, else ~/.cache/rlcore/teachers"})


@dataclass
class DistillOptions:
    """The per-token reverse KL to the teacher on the sampled tokens, and a task reward."""

    section: ClassVar[str] = "distill"

    task_weight: float = field(default=0.0, metadata={
        "help": "weight of the task reward's advantage (adv.estimator on the reward node's "
                "scores) added to each token's distillation advantage; 0: pure distillation",
        "range": "[0, inf)"})


def _run() -> RunOptions:
    return RunOptions(epochs=100, max_steps=300, batch_size=32, eval_every=20)


@dataclass
class DistillConfig(GRPOConfig):
    """On-policy distillation (Agarwal et al. 2024, GKD with lambda=1; Thinking Machines
    2025): the student samples, the teacher scores each sampled token, and the per-token
    advantage is ``-(log p_student - log p_teacher)``, optimised by the policy loss."""

    renamed_keys: ClassVar[dict[str, str]] = {}
    profiles: ClassVar[dict[str, dict[str, Any]]] = profiles("distill")

    actor: ModelOptions = field(default_factory=lambda: ModelOptions(hidden_size=64))
    teacher: TeacherOptions = field(default_factory=TeacherOptions)
    distill: DistillOptions = field(default_factory=DistillOptions)
    # single-digit sums: the tiny teacher learns them in a few hundred SFT steps
    dataset: PromptConfig = field(default_factory=lambda: PromptConfig(embedded_max_operand=9))
    gen: GenerationOptions = field(default_factory=GenerationOptions)
    policy: PolicyOptions = field(default_factory=lambda: PolicyOptions(minibatches=4))
    # whitened: a baseline for the per-token advantages, which start near -8 for every token
    adv: AdvantageOptions = field(default_factory=lambda: AdvantageOptions(estimator="grpo"))
    train: DeepSpeedOptions = field(default_factory=lambda: _train(1e-3))  # a fresh student
    warm_start: WarmStartOptions = field(default_factory=lambda: WarmStartOptions(sft_steps=0))
    run: RunOptions = field(default_factory=_run)

    def validate(self) -> None:
        """The RL rules; single-turn only."""
        super().validate()
        if self.env.name:
            raise ConfigError(f"env.name={self.env.name}: distill scores single responses; "
                              "multi-turn distillation is not supported, set env.name=null")
