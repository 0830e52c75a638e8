"""Configs of the standard experiments. Plain dataclasses: importing this never imports torch.

Defaults train a tiny model on the embedded addition task, on CPU, in minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from rlcore.sdk import (
    ConfigError,
    DeepSpeedOptions,
    InferenceOptions,
    LoraOptions,
    OptimizerOptions,
    RunOptions,
)
from rlcore_plugin_algorithms._moved import forwarder
from rlcore_plugin_algorithms.profiles import profiles
from rlcore_plugin_datasets.config import PairedConfig, PromptAnswerConfig


@dataclass
class MoEOptions:
    """Mixture-of-experts actors in the RL experiments: the sampler's routing, kept and replayed."""

    router_replay: bool = field(default=False, metadata={
        "help": "RL, MoE actor: record each token's experts when sampling and force them in the "
                "train and log-prob forwards (rollout routing replay, R3); logs "
                "moe/router_agreement"})
    record_routing: bool = field(default=False, metadata={
        "help": "RL, MoE actor: record the sampling's experts and log moe/router_agreement "
                "without replaying them (router_replay implies it)"})

    @property
    def records(self) -> bool:
        """Whether sampling records the routing (``routed_experts`` in the rollout batch)."""
        return self.router_replay or self.record_routing


def no_routing_replay(actor: ModelOptions, experiment: str) -> None:
    """actor.moe is for experiments that sample; elsewhere a set key is an error, not a no-op."""
    if actor.moe.records:
        key = "router_replay" if actor.moe.router_replay else "record_routing"
        raise ConfigError(f"actor.moe.{key}=true replays the sampler's routing, and {experiment} "
                          "does not sample; unset it (it is for ppo, grpo and the other RL "
                          "experiments)")


@dataclass
class ModelOptions:
    """Which weights a role starts from: an HF directory, or a tiny random model of ``preset``."""

    path: str | None = field(default=None, metadata={"help": "local HF model directory; null: tiny random model"})
    preset: str = field(default="llama", metadata={"help": "family of the tiny model when path is null"})
    hidden_size: int = field(default=64, metadata={"help": "tiny model only", "range": "[1, inf)"})
    n_layers: int = field(default=2, metadata={"help": "tiny model only", "range": "[1, inf)"})
    n_heads: int = field(default=4, metadata={"help": "tiny model only", "range": "[1, inf)"})
    tokenizer: str | None = field(default=None, metadata={"help": "tokenizer directory; null: path, else the embedded one"})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "recompute blocks in backward"})
    loss_kernel: Literal["chunked", "liger", "auto"] = field(default="chunked", metadata={
        "help": "token log-prob kernel: chunked (any device), liger (CUDA, rlcore[liger]), auto"})
    lora: LoraOptions = field(default_factory=LoraOptions)
    moe: MoEOptions = field(default_factory=MoEOptions)


def _train(lr: float) -> DeepSpeedOptions:
    return DeepSpeedOptions(optimizer=OptimizerOptions(lr=lr, weight_decay=0.0))


def _pairs() -> PairedConfig:
    """Single-digit sums: a model judging answers from scratch must first learn to add."""
    return PairedConfig(embedded_max_operand=9)


EVAL_PATH_HELP = ("held-out {}; null: the embedded eval split when dataset.path is null, "
                  "else no eval")


@dataclass
class EvalOptions:
    """Greedy-generation accuracy on held-out prompts every ``run.eval_every`` steps, scored
    by the run's reward functions (``metric`` decides what is correct)."""

    path: str | None = field(default=None, metadata={"help": EVAL_PATH_HELP.format("prompt file with answers")})
    name: str | None = field(default=None, metadata={
        "help": "registered dataset that reads eval.path; null: prompt"})
    format: str | None = field(default=None, metadata={
        "help": "file reader of eval.path (csv, hf_disk, ...); null: from the suffix or folder"})
    size: int = field(default=64, metadata={"help": "prompts evaluated each time", "range": "[1, inf)"})
    max_new_tokens: int = field(default=8, metadata={"help": "generation budget per prompt", "range": "[1, inf)"})
    metric: str | None = field(default=None, metadata={
        "help": "reward function whose score > 0 counts as correct (eval/accuracy); null: the "
                "first of reward.functions, else exact_match"})
    metric_args: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "keyword parameters of eval.metric, e.g. {pattern: '####'}; default: its "
                "reward.params"})

    def validate(self) -> None:
        """An unknown metric or a bad parameter fails at start, not at the first eval."""
        if self.metric is not None:
            from rlcore_plugin_algorithms.rewards import check_reward_params

            try:
                check_reward_params([self.metric], {self.metric: dict(self.metric_args)})
            except ConfigError as err:
                raise ConfigError(f"eval.metric={self.metric}: {err} For eval, set "
                                  "eval.metric_args.PARAM=VALUE.") from None
        elif self.metric_args:
            raise ConfigError("eval.metric_args is set but eval.metric is null; name the "
                              "reward function they are for")


@dataclass
class PairEvalOptions:
    """Pairwise accuracy on held-out preference pairs every ``run.eval_every`` steps."""

    path: str | None = field(default=None, metadata={"help": EVAL_PATH_HELP.format("pair file")})
    name: str | None = field(default=None, metadata={
        "help": "registered dataset that reads eval.path; null: dataset.name, else paired"})
    format: str | None = field(default=None, metadata={
        "help": "file reader of eval.path (csv, hf_disk, ...); null: from the suffix or folder"})
    size: int = field(default=256, metadata={"help": "pairs evaluated each time", "range": "[1, inf)"})


@dataclass
class SFTConfig:
    """Supervised fine-tuning."""

    profiles: ClassVar[dict[str, dict[str, Any]]] = profiles("sft")

    actor: ModelOptions = field(default_factory=lambda: ModelOptions(hidden_size=128))
    dataset: PromptAnswerConfig = field(default_factory=PromptAnswerConfig)
    train: DeepSpeedOptions = field(default_factory=lambda: _train(1e-3))
    run: RunOptions = field(default_factory=lambda: RunOptions(epochs=10, max_steps=1280, batch_size=32, eval_every=160))
    eval: EvalOptions = field(default_factory=EvalOptions)

    def validate(self) -> None:
        """Checked once when the config is resolved: the eval metric and its parameters."""
        self.eval.validate()
        no_routing_replay(self.actor, "sft")


@dataclass
class RMConfig:
    """Reward modelling: a value head scores sequences; chosen should outscore rejected."""

    profiles: ClassVar[dict[str, dict[str, Any]]] = profiles("rm")

    actor: ModelOptions = field(default_factory=ModelOptions)
    dataset: PairedConfig = field(default_factory=_pairs)
    train: DeepSpeedOptions = field(default_factory=lambda: _train(3e-3))
    run: RunOptions = field(default_factory=lambda: RunOptions(epochs=10, max_steps=200, batch_size=32, eval_every=50))
    eval: PairEvalOptions = field(default_factory=PairEvalOptions)

    def validate(self) -> None:
        """A reward model trains on pairs only."""
        no_routing_replay(self.actor, "rm")
        if self.dataset.unpaired:
            raise ConfigError("dataset.unpaired=true is for dpo.loss_type=kto; a reward model "
                              "needs pairs: set dataset.unpaired=false")


@dataclass
class DPOOptions:
    """The offline preference objective: DPO (Rafailov et al. 2023) or a relative (docs/experiments.md)."""

    beta: float = field(default=0.1, metadata={
        "help": "DPO/IPO/KTO: strength of the KL constraint to the reference; SimPO: reward "
                "scale; ORPO: weight (lambda) of the odds-ratio term", "range": "(0, inf)"})
    loss_type: Literal["sigmoid", "ipo", "kto", "orpo", "simpo"] = field(default="sigmoid", metadata={
        "help": "sigmoid (DPO), ipo, kto (unpaired labelled completions), orpo or simpo "
                "(these two: no reference model)"})
    label_smoothing: float = field(default=0.0, metadata={
        "help": "sigmoid, simpo: assumed fraction of flipped labels (cDPO)", "range": "[0, 0.5)"})
    gamma: float = field(default=0.5, metadata={
        "help": "simpo only: target reward margin (TRL's simpo_gamma)", "range": "[0, inf)"})
    desirable_weight: float = field(default=1.0, metadata={
        "help": "kto only: weight of the desirable completions' loss", "range": "(0, inf)"})
    undesirable_weight: float = field(default=1.0, metadata={
        "help": "kto only: weight of the undesirable completions' loss", "range": "(0, inf)"})

    @property
    def uses_reference(self) -> bool:
        """ORPO and SimPO need no frozen reference model; the others compare against one."""
        return self.loss_type not in ("orpo", "simpo")

    def validate(self) -> None:
        """Label smoothing is defined for the sigmoid-shaped losses only."""
        if self.label_smoothing and self.loss_type not in ("sigmoid", "simpo"):
            raise ConfigError(f"dpo.label_smoothing={self.label_smoothing} has no meaning for "
                              f"dpo.loss_type={self.loss_type}; set it to 0, or use "
                              "dpo.loss_type=sigmoid or simpo")


@dataclass
class DPOConfig:
    """DPO: the actor against a frozen reference that starts from the same weights."""

    profiles: ClassVar[dict[str, dict[str, Any]]] = profiles("dpo")

    actor: ModelOptions = field(default_factory=ModelOptions)
    ref: InferenceOptions = field(default_factory=InferenceOptions)
    dataset: PairedConfig = field(default_factory=_pairs)
    dpo: DPOOptions = field(default_factory=DPOOptions)
    train: DeepSpeedOptions = field(default_factory=lambda: _train(3e-3))
    run: RunOptions = field(default_factory=lambda: RunOptions(epochs=10, max_steps=300, batch_size=16, eval_every=100))
    eval: PairEvalOptions = field(default_factory=PairEvalOptions)

    def validate(self) -> None:
        """Checked once when the config is resolved: the loss options, and data to match."""
        self.dpo.validate()
        no_routing_replay(self.actor, "dpo")
        if self.dataset.unpaired and self.dpo.loss_type != "kto":
            raise ConfigError(f"dataset.unpaired=true gives labelled completions, which "
                              f"dpo.loss_type={self.dpo.loss_type} cannot use; set "
                              "dpo.loss_type=kto, or dataset.unpaired=false")


# Moved to rl_config.py with the composed RL sections (PPOOptions and GRPOOptions are gone).
__getattr__ = forwarder(__name__, {n: f"rlcore_plugin_algorithms.rl_config:{n}" for n in (
    "PPOConfig", "GRPOConfig", "RemaxConfig", "RLConfig", "GenerationOptions", "RewardOptions",
    "CriticOptions", "WarmStartOptions")})
