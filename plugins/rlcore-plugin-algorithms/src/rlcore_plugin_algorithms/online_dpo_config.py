"""The online_dpo experiment's config: sampling and reward sections of the RL experiment, and
the ``dpo`` section of offline DPO (sigmoid or ipo). Importing this never imports torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from rlcore.sdk import ConfigError, DeepSpeedOptions, InferenceOptions, RunOptions
from rlcore_plugin_algorithms.config import DPOOptions, EvalOptions, ModelOptions, _train
from rlcore_plugin_algorithms.profiles import profiles
from rlcore_plugin_algorithms.rl_config import GenerationOptions, RewardOptions, WarmStartOptions
from rlcore_plugin_datasets.config import PromptConfig

ONLINE_LOSSES = ("sigmoid", "ipo")


@dataclass
class OnlineDPOConfig:
    """Online DPO (Guo et al. 2024): the actor samples ``gen.n_samples`` responses per prompt,
    the reward ranks them, the best and the worst make a pair for the DPO loss."""

    profiles: ClassVar[dict[str, dict[str, Any]]] = profiles("online_dpo")

    actor: ModelOptions = field(default_factory=lambda: ModelOptions(hidden_size=128))
    ref: InferenceOptions = field(default_factory=InferenceOptions)
    reward: RewardOptions = field(default_factory=RewardOptions)
    dataset: PromptConfig = field(default_factory=PromptConfig)
    gen: GenerationOptions = field(default_factory=lambda: GenerationOptions(n_samples=4))
    dpo: DPOOptions = field(default_factory=DPOOptions)
    train: DeepSpeedOptions = field(default_factory=lambda: _train(2e-4))
    warm_start: WarmStartOptions = field(default_factory=WarmStartOptions)
    run: RunOptions = field(default_factory=lambda: RunOptions(epochs=100, max_steps=300,
                                                               batch_size=32, eval_every=25))
    eval: EvalOptions = field(default_factory=lambda: EvalOptions(size=256))

    def validate(self) -> None:
        """A pair needs two responses; the loss must compare a pair against the reference."""
        self.reward.validate()
        self.eval.validate()
        self.dpo.validate()
        if self.dpo.loss_type not in ONLINE_LOSSES:
            raise ConfigError(f"dpo.loss_type={self.dpo.loss_type}: online_dpo trains on the "
                              f"best and worst sampled response against the reference; use "
                              f"dpo.loss_type={' or '.join(ONLINE_LOSSES)}")
        if self.gen.n_samples < 2:
            raise ConfigError(f"gen.n_samples={self.gen.n_samples}: online_dpo pairs the best and "
                              "the worst response to each prompt; set gen.n_samples >= 2")
