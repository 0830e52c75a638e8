"""RAFT's config: the RL sections it shares with grpo, plus ``raft``. No torch import here."""

from __future__ import annotations

from dataclasses import dataclass, field

from rlcore.sdk import DeepSpeedOptions, OptimizerOptions, RunOptions
from rlcore_plugin_algorithms.config import EvalOptions, ModelOptions
from rlcore_plugin_algorithms.rl_config import GenerationOptions, RewardOptions, WarmStartOptions
from rlcore_plugin_datasets.config import PromptConfig


@dataclass
class RAFTOptions:
    """Which sampled responses the actor is fine-tuned on, and how."""

    top_k: int = field(default=1, metadata={"help": "responses kept per prompt (highest reward)"})
    min_reward: float | None = field(default=None, metadata={
        "help": "keep only responses scoring at least this; null: keep the top_k whatever they scored"})
    epochs: int = field(default=1, metadata={"help": "passes over the kept responses per step"})
    n_minibatches: int = field(default=1, metadata={"help": "optimizer steps per pass"})

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.epochs < 1 or self.n_minibatches < 1:
            raise ValueError("raft.top_k, raft.epochs and raft.n_minibatches must be >= 1")


def _train() -> DeepSpeedOptions:
    return DeepSpeedOptions(optimizer=OptimizerOptions(lr=2e-4, weight_decay=0.0))


@dataclass
class RAFTConfig:
    """RAFT: the actor samples, the reward scores, the actor fine-tunes on the best responses."""

    actor: ModelOptions = field(default_factory=lambda: ModelOptions(hidden_size=128))
    reward: RewardOptions = field(default_factory=RewardOptions)
    dataset: PromptConfig = field(default_factory=PromptConfig)
    gen: GenerationOptions = field(default_factory=GenerationOptions)
    raft: RAFTOptions = field(default_factory=RAFTOptions)
    train: DeepSpeedOptions = field(default_factory=_train)
    warm_start: WarmStartOptions = field(default_factory=WarmStartOptions)
    run: RunOptions = field(default_factory=lambda: RunOptions(epochs=100, max_steps=300,
                                                               batch_size=32, eval_every=25))
    eval: EvalOptions = field(default_factory=lambda: EvalOptions(size=256))

    def validate(self) -> None:
        """The reward settings, checked when the config is resolved."""
        self.reward.validate()
