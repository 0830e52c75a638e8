"""Configs of the standard experiments. Plain dataclasses: importing this never imports torch.

Defaults train a tiny model on the embedded addition task, on CPU, in minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rlcore.runtime.options import DeepSpeedOptions, InferenceOptions, OptimizerOptions, RunOptions
from rlcore_plugin_datasets.config import PairedConfig, PromptAnswerConfig, PromptConfig


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


def _train(lr: float) -> DeepSpeedOptions:
    return DeepSpeedOptions(optimizer=OptimizerOptions(lr=lr, weight_decay=0.0))


def _pairs() -> PairedConfig:
    """Single-digit sums: a model judging answers from scratch must first learn to add."""
    return PairedConfig(embedded_max_operand=9)


EVAL_PATH_HELP = ("held-out {}; null: the embedded eval split when dataset.path is null, "
                  "else no eval")


@dataclass
class EvalOptions:
    """Greedy-generation accuracy on held-out prompts every ``run.eval_every`` steps."""

    path: str | None = field(default=None, metadata={"help": EVAL_PATH_HELP.format("prompt file with answers")})
    name: str | None = field(default=None, metadata={
        "help": "registered dataset that reads eval.path; null: prompt"})
    format: str | None = field(default=None, metadata={
        "help": "file reader of eval.path (csv, hf_disk, ...); null: from the suffix or folder"})
    size: int = field(default=64, metadata={"help": "prompts evaluated each time", "range": "[1, inf)"})
    max_new_tokens: int = field(default=8, metadata={"help": "generation budget per prompt", "range": "[1, inf)"})


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

    actor: ModelOptions = field(default_factory=lambda: ModelOptions(hidden_size=128))
    dataset: PromptAnswerConfig = field(default_factory=PromptAnswerConfig)
    train: DeepSpeedOptions = field(default_factory=lambda: _train(1e-3))
    run: RunOptions = field(default_factory=lambda: RunOptions(epochs=10, max_steps=1280, batch_size=32, eval_every=160))
    eval: EvalOptions = field(default_factory=EvalOptions)


@dataclass
class RMConfig:
    """Reward modelling: a value head scores sequences; chosen should outscore rejected."""

    actor: ModelOptions = field(default_factory=ModelOptions)
    dataset: PairedConfig = field(default_factory=_pairs)
    train: DeepSpeedOptions = field(default_factory=lambda: _train(3e-3))
    run: RunOptions = field(default_factory=lambda: RunOptions(epochs=10, max_steps=200, batch_size=32, eval_every=50))
    eval: PairEvalOptions = field(default_factory=PairEvalOptions)


@dataclass
class DPOOptions:
    """The DPO objective (Rafailov et al. 2023; IPO: Azar et al. 2023)."""

    beta: float = field(default=0.1, metadata={"help": "strength of the KL constraint to the reference", "range": "(0, inf)"})
    loss_type: Literal["sigmoid", "ipo"] = field(default="sigmoid", metadata={"help": "DPO (sigmoid) or IPO loss"})
    label_smoothing: float = field(default=0.0, metadata={"help": "cDPO: assumed fraction of flipped labels", "range": "[0, 0.5)"})


@dataclass
class DPOConfig:
    """DPO: the actor against a frozen reference that starts from the same weights."""

    actor: ModelOptions = field(default_factory=ModelOptions)
    ref: InferenceOptions = field(default_factory=InferenceOptions)
    dataset: PairedConfig = field(default_factory=_pairs)
    dpo: DPOOptions = field(default_factory=DPOOptions)
    train: DeepSpeedOptions = field(default_factory=lambda: _train(3e-3))
    run: RunOptions = field(default_factory=lambda: RunOptions(epochs=10, max_steps=300, batch_size=16, eval_every=100))
    eval: PairEvalOptions = field(default_factory=PairEvalOptions)


# ---------------------------------------------------------------------- PPO

KLEstimator = Literal["k1", "k2", "k3"]
LossAggregation = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum",
                          "seq-mean-token-sum-norm"]
AdvantageEstimator = Literal["gae", "grpo", "rloo", "reinforce_pp", "remax"]


@dataclass
class GenerationOptions:
    """How the actor samples responses during training."""

    max_new_tokens: int = field(default=6, metadata={"help": "longest response in tokens", "range": "[1, inf)"})
    min_new_tokens: int = field(default=0, metadata={"help": "eos is forbidden before this many tokens", "range": "[0, inf)"})
    greedy: bool = field(default=False, metadata={"help": "argmax decoding instead of sampling"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature (> 0)", "range": "(0, inf)"})
    top_k: int = field(default=0, metadata={"help": "sample among the k likeliest tokens; 0: off", "range": "[0, inf)"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass; 1.0: off", "range": "(0, 1]"})
    n_samples: int = field(default=8, metadata={"help": "responses sampled per prompt", "range": "[1, inf)"})


@dataclass
class RewardOptions:
    """The reward role: registered reward functions (weighted sum) or a reward model."""

    functions: list[str] = field(default_factory=lambda: ["exact_match"], metadata={
        "help": "registered reward functions (`rlcore list rewards`); ignored when path is set"})
    weights: list[float] | None = field(default=None, metadata={
        "help": "one weight per function; null: all 1.0"})
    path: str | None = field(default=None, metadata={
        "help": "reward model: an `rlcore train rm` checkpoint dir or HF sequence classifier"})
    url: str | None = field(default=None, metadata={
        "help": "remote reward service (HTTP POST, docs/rewards.md); instead of functions/path"})
    params: dict[str, dict[str, Any]] = field(default_factory=dict, metadata={
        "help": "keyword parameters per reward function, e.g. {math_answer: {tolerance: 0.01}}"})
    args: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "keyword parameters of the one function in reward.functions, e.g. "
                "--set reward.args.max_length=20 (shorthand for reward.params.NAME)"})
    interface: str | None = field(default=None, metadata={
        "help": "a registered interface that scores responses (e.g. classifier_reward); "
                "instead of functions/path/url"})
    interface_args: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "keyword arguments of reward.interface, e.g. {model: ./sentiment-classifier}"})
    timeout_s: float = field(default=30.0, metadata={"help": "remote reward: seconds per request", "range": "(0, inf)"})
    max_retries: int = field(default=3, metadata={
        "help": "remote reward: retries of a failed request (exponential backoff)", "range": "[0, inf)"})
    request_size: int = field(default=64, metadata={"help": "remote reward: responses per request", "range": "[1, inf)"})
    max_concurrency: int = field(default=4, metadata={"help": "remote reward: requests in flight", "range": "[1, inf)"})
    scale: float = field(default=1.0, metadata={"help": "reward := clip(scale * (reward + bias))"})
    bias: float = field(default=0.0, metadata={"help": "added to the raw reward before scaling"})
    clip: float = field(default=10.0, metadata={"help": "|reward| is clipped to this after scaling", "range": "(0, inf)"})
    no_eos_penalty: float = field(default=0.0, metadata={
        "help": "added to the reward of responses that end without eos (cut at max_new_tokens)"})

    def __post_init__(self) -> None:
        if self.path is None and self.url is None and not self.functions:
            raise ValueError("reward.functions is empty and reward.path and reward.url are "
                             "null: name at least one reward function, a model or a service")
        chosen = [k for k in ("path", "url", "interface") if getattr(self, k) is not None]
        if len(chosen) > 1:
            raise ValueError(f"reward.{chosen[0]} and reward.{chosen[1]} are both set: choose "
                             "a reward model, a remote service or a reward interface")
        if self.interface_args and self.interface is None:
            raise ValueError("reward.interface_args is set but reward.interface is null; name "
                             "the interface they are for")
        if self.weights is not None and len(self.weights) != len(self.functions):
            raise ValueError(f"reward.weights has {len(self.weights)} entries for "
                             f"{len(self.functions)} reward.functions")
        if self.args and len(self.functions) != 1:
            raise ValueError(f"reward.args sets the parameters of the one reward function, but "
                             f"reward.functions lists {len(self.functions)} "
                             f"({', '.join(self.functions) or 'none'}); set each function's "
                             "parameters with reward.params.NAME.PARAM instead")
        if self.args and self.functions[0] in self.params:
            name = self.functions[0]
            raise ValueError(f"reward.args and reward.params.{name} both set {name!r}'s "
                             "parameters; use one of them")

    @property
    def function_params(self) -> dict[str, dict[str, Any]]:
        """``params`` with ``args`` filed under the single function they belong to."""
        if not self.args:
            return dict(self.params)
        return {**self.params, self.functions[0]: dict(self.args)}


@dataclass
class PPOOptions:
    """The PPO objective and its stabilisers (Schulman et al. 2017; Ouyang et al. 2022)."""

    adv_estimator: AdvantageEstimator = field(default="gae", metadata={
        "help": "gae (critic), grpo (group-normalised), rloo (leave-one-out), reinforce_pp "
                "(REINFORCE++: batch-normalised returns) or remax (greedy baseline: `rlcore train remax`)"})
    std_norm: bool = field(default=True, metadata={
        "help": "grpo: divide by the group's reward std (false: Dr. GRPO)"})
    ratio_level: Literal["token", "sequence"] = field(default="token", metadata={
        "help": "importance ratio per token, or per sequence (GSPO: length-normalised)"})
    overlong_buffer: int = field(default=0, metadata={
        "help": "DAPO overlong penalty: the last N tokens of gen.max_new_tokens ramp it in; 0: off",
        "range": "[0, inf)"})
    overlong_penalty: float = field(default=1.0, metadata={
        "help": "DAPO overlong penalty at gen.max_new_tokens (subtracted from the reward)",
        "range": "[0, inf)"})
    dynamic_sampling: bool = field(default=False, metadata={
        "help": "DAPO: drop prompts whose responses all got the same reward, refill the batch"})
    max_refills: int = field(default=8, metadata={
        "help": "dynamic sampling: extra batches generated per step before it is an error",
        "range": "[0, inf)"})
    ppo_n_minibatches: int = field(default=2, metadata={"help": "minibatches (optimizer steps) per PPO epoch", "range": "[1, inf)"})
    ppo_epochs: int = field(default=1, metadata={"help": "passes over each generated batch", "range": "[1, inf)"})
    kl_ctl: float = field(default=0.05, metadata={
        "help": "KL coefficient (initial, when adaptive); 0: no reference model", "range": "[0, inf)"})
    kl_controller: Literal["fixed", "adaptive"] = field(default="fixed", metadata={
        "help": "fixed coefficient, or adapted towards kl_target (Ziegler et al. 2019)"})
    kl_target: float = field(default=6.0, metadata={"help": "adaptive controller: target KL per sequence", "range": "(0, inf)"})
    kl_horizon: int = field(default=10000, metadata={"help": "adaptive controller: horizon in samples", "range": "[1, inf)"})
    kl_in_reward: bool = field(default=True, metadata={
        "help": "KL penalty in the per-token reward (classic PPO); false: a loss term"})
    kl_estimator: KLEstimator = field(default="k1", metadata={"help": "k1, k2 or k3 (Schulman's)"})
    discount: float = field(default=1.0, metadata={"help": "gamma of GAE", "range": "[0, 1]"})
    gae_lambda: float = field(default=1.0, metadata={"help": "lambda of GAE", "range": "[0, 1]"})
    eps_clip: float = field(default=0.2, metadata={"help": "policy ratio clip (both sides unless set below)", "range": "(0, inf)"})
    eps_clip_low: float | None = field(default=None, metadata={"help": "lower clip: ratio >= 1 - this; null: eps_clip", "range": "(0, 1]"})
    eps_clip_high: float | None = field(default=None, metadata={"help": "upper clip: ratio <= 1 + this; null: eps_clip", "range": "(0, inf)"})
    dual_clip: float | None = field(default=None, metadata={"help": "dual-clip bound c > 1 for negative advantages; null: off", "range": "(1, inf)"})
    value_eps_clip: float = field(default=0.2, metadata={"help": "value clip around the old values; 0: off", "range": "[0, inf)"})
    value_loss_coef: float = field(default=1.0, metadata={"help": "scale of the critic loss", "range": "[0, inf)"})
    entropy_coef: float = field(default=0.0, metadata={"help": "entropy bonus in the actor loss", "range": "[0, inf)"})
    early_stop_kl: float | None = field(default=None, metadata={
        "help": "stop this batch's PPO epochs once the approx KL exceeds this; null: never",
        "range": "(0, inf)"})
    early_stop_imp_ratio: float | None = field(default=None, metadata={
        "help": "stop them once the largest importance ratio exceeds this; null: never",
        "range": "(0, inf)"})
    adv_norm: bool = field(default=True, metadata={"help": "whiten advantages over the batch"})
    value_norm: bool = field(default=False, metadata={"help": "train the critic on normalised returns"})
    value_norm_type: Literal["ema", "ma"] = field(default="ema", metadata={
        "help": "value normalisation statistics: exponential or exact moving average"})
    value_norm_beta: float = field(default=0.99, metadata={"help": "ema decay of the statistics", "range": "(0, 1)"})
    loss_agg: LossAggregation = field(default="token-mean", metadata={
        "help": "token-mean, seq-mean-token-mean or seq-mean-token-sum"})
    logprob_drift_warn: float = field(default=1e-3, metadata={
        "help": "warn when generation and training log-probs differ by more (same weights)",
        "range": "(0, inf)"})

    @property
    def clip_low(self) -> float:
        return self.eps_clip if self.eps_clip_low is None else self.eps_clip_low

    @property
    def clip_high(self) -> float:
        return self.eps_clip if self.eps_clip_high is None else self.eps_clip_high

    @property
    def uses_ref(self) -> bool:
        """A reference model is needed unless the KL coefficient is fixed at 0."""
        return self.kl_ctl > 0 or self.kl_controller == "adaptive"

    @property
    def uses_critic(self) -> bool:
        return self.adv_estimator == "gae"


@dataclass
class GRPOOptions(PPOOptions):
    """GRPO (Shao et al. 2024) and the critic-free family: group-relative advantages, KL in the loss.

    DAPO (Yu et al. 2025): ``eps_clip_high`` > ``eps_clip_low``, ``loss_agg=token-mean``,
    ``overlong_buffer``, ``dynamic_sampling``. GSPO (Zheng et al. 2025): ``ratio_level=sequence``
    with small clip ranges. Dr. GRPO (Liu et al. 2025): ``std_norm=false``,
    ``loss_agg=seq-mean-token-sum-norm``.
    """

    adv_estimator: AdvantageEstimator = field(default="grpo", metadata={
        "help": "grpo (group-normalised), rloo (leave-one-out) or reinforce_pp (REINFORCE++)"})
    kl_ctl: float = field(default=0.0, metadata={
        "help": "KL coefficient of the loss term; 0: no reference model", "range": "[0, inf)"})
    kl_in_reward: bool = field(default=False, metadata={
        "help": "KL penalty in the reward instead of the loss (REINFORCE++ uses the reward)"})
    kl_estimator: KLEstimator = field(default="k3", metadata={"help": "k1, k2 or k3 (Schulman's)"})
    adv_norm: bool = field(default=False, metadata={
        "help": "also whiten advantages over the whole batch (reinforce_pp always does)"})


@dataclass
class CriticOptions:
    """Where the critic starts: the actor's initial weights with a new value head, or a path."""

    path: str | None = field(default=None, metadata={
        "help": "HF model dir; null: the actor's initial weights with a fresh value head"})


@dataclass
class WarmStartOptions:
    """The SFT stage that runs first when the actor is the tiny built-in model (actor.path null)."""

    sft_steps: int = field(default=400, metadata={
        "help": "SFT steps on the dataset's prompt/answer rows before PPO; 0: start from random",
        "range": "[0, inf)"})
    lr: float = field(default=1e-3, metadata={"help": "SFT learning rate", "range": "(0, inf)"})
    batch_size: int = field(default=32, metadata={"help": "SFT sequences per step", "range": "[1, inf)"})


@dataclass
class RemaxOptions(GRPOOptions):
    """ReMax (Li et al. 2023): the baseline of each prompt is the reward of its greedy response."""

    adv_estimator: AdvantageEstimator = field(default="remax", metadata={
        "help": "remax: each response's reward minus its prompt's greedy response's reward"})




def _rl_run() -> RunOptions:
    return RunOptions(epochs=100, max_steps=300, batch_size=32, eval_every=25)


@dataclass
class RLConfig:
    """What every RL experiment configures: the actor and its training, the reference, the
    reward, prompts and sampling, the warm start, the run and the eval."""

    actor: ModelOptions = field(default_factory=lambda: ModelOptions(hidden_size=128))
    ref: InferenceOptions = field(default_factory=InferenceOptions)
    reward: RewardOptions = field(default_factory=RewardOptions)
    dataset: PromptConfig = field(default_factory=PromptConfig)
    gen: GenerationOptions = field(default_factory=GenerationOptions)
    train: DeepSpeedOptions = field(default_factory=lambda: _train(2e-4))
    warm_start: WarmStartOptions = field(default_factory=WarmStartOptions)
    run: RunOptions = field(default_factory=_rl_run)
    eval: EvalOptions = field(default_factory=lambda: EvalOptions(size=256))


@dataclass
class PPOConfig(RLConfig):
    """PPO: the actor generates, reward/ref/critic score, actor and critic train."""

    ppo: PPOOptions = field(default_factory=PPOOptions)
    critic: CriticOptions = field(default_factory=CriticOptions)
    critic_train: DeepSpeedOptions = field(default_factory=lambda: _train(1e-3))


@dataclass
class GRPOConfig(RLConfig):
    """GRPO and the critic-free family: the actor samples groups, a reward scores, the actor trains."""

    grpo: GRPOOptions = field(default_factory=GRPOOptions)


@dataclass
class RemaxConfig(RLConfig):
    """ReMax: GRPO's graph plus a greedy generation whose reward is each prompt's baseline."""

    remax: RemaxOptions = field(default_factory=RemaxOptions)
