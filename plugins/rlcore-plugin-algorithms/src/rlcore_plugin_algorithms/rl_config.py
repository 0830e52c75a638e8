"""The RL experiment's config: sections with a meaning of their own, and the ppo, grpo and
remax presets (the same experiment, other defaults). Importing this never imports torch.

    gen      the sampler: how the actor samples responses
    rollout  who samples (a rollout engine) and the off-policy correction
    reward   the reward role
    policy   the policy loss and its update (clip, ratio level, aggregation, epochs, ...)
    kl       the KL penalty to the reference (coefficient, controller, estimator, placement)
    adv      the advantage estimator (a registered table entry) and its shaping
    critic   the value model, present when the estimator needs one
    dynamic_sampling  DAPO's refill of prompts whose responses all scored alike
    env      multi-turn episodes in a registered environment (tools), instead of one response

Validation runs once, when the config is resolved (:meth:`RLConfig.validate`), so
``--dry-run`` and the run agree. The keys of the old ``ppo``/``grpo``/``remax`` and
``critic_train`` sections still work (``renamed_keys``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from rlcore.sdk import ConfigError, DeepSpeedOptions, InferenceOptions, LoraOptions, RunOptions
from rlcore_plugin_algorithms.config import EvalOptions, ModelOptions, _train
from rlcore_plugin_algorithms.profiles import profiles
from rlcore_plugin_datasets.config import PromptConfig

KLEstimator = Literal["k1", "k2", "k3"]
LossAggregation = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum",
                          "seq-mean-token-sum-norm"]


@dataclass
class GenerationOptions:
    """How the actor samples responses during training."""

    section: ClassVar[str] = "gen"

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

    section: ClassVar[str] = "reward"

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

    def validate(self) -> None:
        """Refuse settings that contradict each other (ConfigError naming the keys)."""
        if self.path is None and self.url is None and self.interface is None and not self.functions:
            raise ConfigError("reward.functions is empty and reward.path, reward.url and "
                              "reward.interface are null: name at least one reward function, "
                              "a model, a service or an interface")
        chosen = [k for k in ("path", "url", "interface") if getattr(self, k) is not None]
        if len(chosen) > 1:
            raise ConfigError(f"reward.{chosen[0]} and reward.{chosen[1]} are both set: choose "
                              "a reward model, a remote service or a reward interface")
        if self.interface_args and self.interface is None:
            raise ConfigError("reward.interface_args is set but reward.interface is null; name "
                              "the interface they are for")
        if self.weights is not None and len(self.weights) != len(self.functions):
            raise ConfigError(f"reward.weights has {len(self.weights)} entries for "
                              f"{len(self.functions)} reward.functions")
        if self.args and len(self.functions) != 1:
            raise ConfigError(f"reward.args sets the parameters of the one reward function, but "
                              f"reward.functions lists {len(self.functions)} "
                              f"({', '.join(self.functions) or 'none'}); set each function's "
                              "parameters with reward.params.NAME.PARAM instead")
        if self.args and self.functions[0] in self.params:
            name = self.functions[0]
            raise ConfigError(f"reward.args and reward.params.{name} both set {name!r}'s "
                              "parameters; use one of them")
        if not (self.path or self.url or self.interface):
            from rlcore_plugin_algorithms.rewards import check_reward_params

            check_reward_params(list(self.functions), self.function_params)

    @property
    def function_params(self) -> dict[str, dict[str, Any]]:
        """``params`` with ``args`` filed under the single function they belong to."""
        if not self.args:
            return dict(self.params)
        return {**self.params, self.functions[0]: dict(self.args)}


@dataclass
class PolicyOptions:
    """The policy loss and its update (Schulman et al. 2017; GSPO, DAPO, Dr. GRPO options)."""

    section: ClassVar[str] = "policy"

    loss: str = field(default="ppo", metadata={
        "help": "registered policy loss (`rlcore list policy_losses`)"})
    eps_clip: float = field(default=0.2, metadata={"help": "policy ratio clip (both sides unless set below)", "range": "(0, inf)"})
    eps_clip_low: float | None = field(default=None, metadata={"help": "lower clip: ratio >= 1 - this; null: eps_clip", "range": "(0, 1]"})
    eps_clip_high: float | None = field(default=None, metadata={"help": "upper clip: ratio <= 1 + this; null: eps_clip (DAPO: higher)", "range": "(0, inf)"})
    dual_clip: float | None = field(default=3.0, metadata={
        "help": "dual-clip bound c > 1: the loss of a negative-advantage token is at most -A*c "
                "(verl: 3.0); null: off (TRL)", "range": "(1, inf)"})
    log_ratio_clamp: float | None = field(default=20.0, metadata={
        "help": "the log-ratio logp - logp_old is clamped to +-this before exp (verl: 20); "
                "null: off (TRL), and a ratio above e^88 overflows to NaN gradients",
        "range": "(0, inf)"})
    ratio_level: Literal["token", "sequence"] = field(default="token", metadata={
        "help": "importance ratio per token, or per sequence (GSPO: length-normalised)"})
    loss_agg: LossAggregation = field(default="token-mean", metadata={
        "help": "token-mean, seq-mean-token-mean, seq-mean-token-sum or seq-mean-token-sum-norm "
                "(Dr. GRPO: divided by gen.max_new_tokens)"})
    norm_mean: bool = field(default=True, metadata={
        "help": "seq-mean-token-sum-norm: average the responses' normalised sums; false: add "
                "them up (verl: the loss is B responses times larger)"})
    entropy_coef: float = field(default=0.0, metadata={"help": "entropy bonus in the actor loss", "range": "[0, inf)"})
    epochs: int = field(default=1, metadata={"help": "passes over each generated batch", "range": "[1, inf)"})
    minibatches: int = field(default=2, metadata={"help": "minibatches (optimizer steps) per epoch", "range": "[1, inf)"})
    early_stop_kl: float | None = field(default=None, metadata={
        "help": "stop this batch's epochs once the approx KL exceeds this; null: never",
        "range": "(0, inf)"})
    early_stop_kl_estimator: KLEstimator = field(default="k2", metadata={
        "help": "the approx KL (old || current) that early_stop_kl and the approx_kl metric "
                "read: k1 (verl's ppo_kl), k2 (1/2 (logp - logp_old)^2) or k3"})
    early_stop_imp_ratio: float | None = field(default=None, metadata={
        "help": "stop them once the largest importance ratio exceeds this; null: never",
        "range": "(0, inf)"})
    logprob_drift_warn: float = field(default=1e-3, metadata={
        "help": "warn when generation and training log-probs differ by more (same weights)",
        "range": "(0, inf)"})

    @property
    def clip_low(self) -> float:
        return self.eps_clip if self.eps_clip_low is None else self.eps_clip_low

    @property
    def clip_high(self) -> float:
        return self.eps_clip if self.eps_clip_high is None else self.eps_clip_high


@dataclass
class KLOptions:
    """The KL penalty to the frozen reference (Ziegler et al. 2019; Schulman's estimators)."""

    section: ClassVar[str] = "kl"

    coef: float = field(default=0.05, metadata={
        "help": "KL coefficient (initial, when adaptive); 0: no reference model", "range": "[0, inf)"})
    controller: Literal["fixed", "adaptive"] = field(default="fixed", metadata={
        "help": "fixed coefficient, or adapted towards kl.target (Ziegler et al. 2019)"})
    target: float = field(default=6.0, metadata={"help": "adaptive controller: target KL per sequence", "range": "(0, inf)"})
    horizon: int = field(default=10000, metadata={"help": "adaptive controller: horizon in samples", "range": "[1, inf)"})
    in_reward: bool = field(default=True, metadata={
        "help": "KL penalty in the per-token reward (classic PPO, REINFORCE++); false: a loss "
                "term. Estimators that score whole responses (grpo, rloo, remax) subtract "
                "kl.coef times each response's KL sum from its reward instead (verl)"})
    estimator: KLEstimator = field(default="k1", metadata={"help": "k1, k2 or k3 (Schulman's)"})
    k3_clamp: float | None = field(default=None, metadata={
        "help": "k3: each token's estimate is clamped to +-this (verl: 10; it also zeroes the "
                "gradient of tokens beyond it); null: off", "range": "(0, inf)"})
    controller_input: Literal["seq-sum", "token-mean"] = field(default="seq-sum", metadata={
        "help": "what the adaptive controller compares with kl.target: each response's k1 sum "
                "(Ziegler et al., TRL), or its mean kl.estimator per token (verl)"})
    bias_correction: bool = field(default=False, metadata={
        "help": "KL loss term: weight each token's KL by the importance ratio to the sampling "
                "policy (TRL's use_bias_correction_kl, DeepSeek-V3.2)"})

    def validate(self) -> None:
        """Refuse settings that the chosen estimator or placement ignores (ConfigError)."""
        s = self.section
        if self.k3_clamp is not None and self.estimator != "k3":
            raise ConfigError(f"{s}.k3_clamp={self.k3_clamp} clamps the k3 estimate, but "
                              f"{s}.estimator={self.estimator}; set {s}.estimator=k3 or "
                              f"{s}.k3_clamp=null")
        if self.bias_correction and self.in_reward:
            raise ConfigError(f"{s}.bias_correction weights the KL loss term, but "
                              f"{s}.in_reward=true puts the KL in the reward; set "
                              f"{s}.in_reward=false or {s}.bias_correction=false")

    @property
    def uses_ref(self) -> bool:
        """A reference model is needed unless the coefficient is fixed at 0."""
        return self.coef > 0 or self.controller == "adaptive"


@dataclass
class AdvantageOptions:
    """How rewards become advantages: a registered estimator and its shaping."""

    section: ClassVar[str] = "adv"

    estimator: str = field(default="gae", metadata={
        "help": "registered advantage estimator (`rlcore list estimators`): gae (critic), grpo, "
                "rloo, reinforce_pp, remax (greedy baseline), ..."})
    norm: bool = field(default=True, metadata={"help": "whiten advantages over the batch"})
    std_norm: bool = field(default=True, metadata={
        "help": "grpo: divide by the group's reward std (false: Dr. GRPO)"})
    discount: float = field(default=1.0, metadata={"help": "gamma (GAE, REINFORCE++)", "range": "[0, 1]"})
    gae_lambda: float = field(default=1.0, metadata={"help": "lambda of GAE", "range": "[0, 1]"})
    bootstrap_truncated: bool = field(default=True, metadata={
        "help": "gae: a response cut at gen.max_new_tokens bootstraps from the critic's value "
                "after its last token; false: every end is terminal (verl, TRL)"})
    whiten_unbiased: bool = field(default=False, metadata={
        "help": "whitening (adv.norm, reinforce_pp) divides by the Bessel-corrected std "
                "(verl, TRL); false: the biased one"})
    overlong_buffer: int = field(default=0, metadata={
        "help": "DAPO overlong penalty: the last N tokens of gen.max_new_tokens ramp it in; 0: off",
        "range": "[0, inf)"})
    overlong_penalty: float = field(default=1.0, metadata={
        "help": "DAPO overlong penalty at gen.max_new_tokens (subtracted from the reward)",
        "range": "[0, inf)"})


@dataclass
class CriticOptions:
    """The value model: where it starts, how it trains, its loss and value normalisation."""

    section: ClassVar[str] = "critic"

    path: str | None = field(default=None, metadata={
        "help": "HF model dir; null: the actor's initial weights with a fresh value head"})
    train: DeepSpeedOptions = field(default_factory=lambda: _train(1e-3))
    eps_clip: float = field(default=0.2, metadata={"help": "value clip around the old values; 0: off", "range": "[0, inf)"})
    loss_coef: float = field(default=1.0, metadata={"help": "scale of the critic loss", "range": "[0, inf)"})
    norm: bool = field(default=False, metadata={"help": "train the critic on normalised returns"})
    norm_type: Literal["ema", "ma"] = field(default="ema", metadata={
        "help": "value normalisation statistics: exponential or exact moving average"})
    norm_beta: float = field(default=0.99, metadata={"help": "ema decay of the statistics", "range": "(0, 1)"})
    lora: LoraOptions = field(default_factory=LoraOptions)


@dataclass
class DynamicSamplingOptions:
    """DAPO's dynamic sampling (Yu et al. 2025): keep only prompts whose responses differ."""

    section: ClassVar[str] = "dynamic_sampling"

    enabled: bool = field(default=False, metadata={
        "help": "drop prompts whose responses all got the same reward, refill the batch"})
    max_refills: int = field(default=8, metadata={
        "help": "extra batches generated per step before it is an error", "range": "[0, inf)"})


@dataclass
class RolloutOptions:
    """Who samples (a registered rollout engine) and how samples from other weights are
    corrected before the policy trains on them."""

    section: ClassVar[str] = "rollout"

    engine: str = field(default="local", metadata={
        "help": "registered rollout engine (`rlcore list rollout-engines`); local: the "
                "trainer's own module samples; worker: the rollout.procs processes (the "
                "default when rollout.procs > 0)"})
    procs: int = field(default=0, metadata={
        "help": "processes of --nproc N that sample (the other N-K train); 0: colocated",
        "range": "[0, inf)"})
    max_staleness: int = field(default=0, metadata={
        "help": "training steps a trained sample may lag behind the weights that train on it; "
                "0: on-policy; S > 0: the workers sample up to S batches ahead while the "
                "trainers train (needs procs)",
        "range": "[0, inf)"})
    partial: bool = field(default=False, metadata={
        "help": "asynchronous: a generation in flight when new weights arrive goes on with "
                "them (each token is tagged with the version that produced it)"})
    sync_check_tol: float = field(default=1e-4, metadata={
        "help": "worker: largest probe log-prob difference after a weight sync before the run "
                "stops", "range": "(0, inf)"})
    sync_timeout_s: float = field(default=60.0, metadata={
        "help": "worker: seconds a weight sync may take before it fails", "range": "(0, inf)"})
    correction: Literal["none", "tis", "icepop", "decoupled"] = field(default="none", metadata={
        "help": "off-policy correction of the sampler/trainer mismatch: none, tis (truncated "
                "importance weights), icepop (mask tokens outside a band), decoupled (PPO); "
                "docs/ppo.md#off-policy-correction"})
    is_cap: float = field(default=2.0, metadata={
        "help": "tis: importance weights are truncated at this; decoupled: tokens whose weight "
                "exceeds it are dropped", "range": "(1, inf)"})
    mask_low: float = field(default=0.5, metadata={
        "help": "icepop: tokens whose importance ratio is below this are masked",
        "range": "(0, inf)"})
    mask_high: float = field(default=2.0, metadata={
        "help": "icepop: tokens whose importance ratio is above this are masked",
        "range": "(0, inf)"})

    USES: ClassVar[dict[str, tuple[str, ...]]] = {
        "none": (), "tis": ("is_cap",), "icepop": ("mask_low", "mask_high"),
        "decoupled": ("is_cap",)}

    def validate(self) -> None:
        """Workers sample only with the worker engine (the default when there are workers);
        staleness and partial rollouts need workers; refuse a band that drops the on-policy
        tokens, and bounds that the chosen correction ignores (a forgotten correction)."""
        s, kind = self.section, self.correction
        if self.procs and self.engine == "local":
            self.engine = "worker"
        if self.engine == "worker" and not self.procs:
            raise ConfigError(f"{s}.engine=worker samples on rollout processes: set "
                              f"{s}.procs=K and launch with --nproc N > K")
        if self.max_staleness and not self.procs:
            raise ConfigError(f"{s}.max_staleness={self.max_staleness} samples ahead on rollout "
                              f"workers: set {s}.procs=K and launch with --nproc N > K, or use "
                              f"{s}.max_staleness=0")
        if self.partial and not self.max_staleness:
            raise ConfigError(f"{s}.partial=true changes weights in the middle of a generation, "
                              f"which only happens when workers sample ahead: set "
                              f"{s}.max_staleness >= 1 too, or {s}.partial=false")
        for key in ("is_cap", "mask_low", "mask_high"):
            if key not in self.USES[kind] and getattr(self, key) != getattr(RolloutOptions(), key):
                users = " or ".join(k for k, keys in self.USES.items() if key in keys)
                raise ConfigError(f"{s}.{key} is set, but {s}.correction={kind} does not use it; "
                                  f"set {s}.correction={users} or leave {s}.{key} at its default")
        if kind != "icepop":
            return
        if self.mask_low >= self.mask_high:
            raise ConfigError(f"{s}.mask_low={self.mask_low} must be below {s}.mask_high="
                              f"{self.mask_high}: icepop keeps the tokens whose ratio lies between")
        if not self.mask_low < 1.0 < self.mask_high:
            raise ConfigError(f"{s}.mask_low={self.mask_low} and {s}.mask_high={self.mask_high} "
                              "must lie on either side of 1: a token sampled by the trainer's own "
                              "weights has ratio 1, and icepop would mask it")


@dataclass
class EnvOptions:
    """Multi-turn episodes: the actor writes turns that call an environment's tools, and the
    environment's answers and rewards take the reward node's place (docs/agents.md)."""

    section: ClassVar[str] = "env"

    name: str | None = field(default=None, metadata={
        "help": "a registered environment (`rlcore list environments`); null: single-turn"})
    args: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "keyword arguments of the environment, e.g. {timeout_s: 5}"})
    max_turns: int = field(default=4, metadata={
        "help": "actor turns per episode; an episode still calling tools then is truncated",
        "range": "[1, inf)"})
    max_tokens: int = field(default=256, metadata={
        "help": "tokens after the prompt (the actor's turns and the observations) before an "
                "episode is truncated", "range": "[1, inf)"})
    tool_format: Literal["auto", "hermes", "llama3_json"] = field(default="auto", metadata={
        "help": "how the actor writes tool calls: hermes (<tool_call>{json}</tool_call>), "
                "llama3_json (a JSON object), auto (either)"})

    def apply_defaults(self, config: Any) -> None:
        """Give the keys the environment has defaults for (its ``defaults``: gen.max_new_tokens
        and the like) those values, where the user left them alone (over a profile's values:
        the environment knows its task)."""
        if self.name is None:
            return
        from rlcore.sdk import UnknownItemError, fill_defaults, registry

        try:
            env = registry.load("environments", self.name)
        except UnknownItemError as err:
            raise ConfigError(f"env.name: {err}") from None
        fill_defaults(config, getattr(env, "defaults", {}), f"env {self.name}")


@dataclass
class WarmStartOptions:
    """The SFT stage that runs first when the actor is the tiny built-in model (actor.path null)."""

    section: ClassVar[str] = "warm_start"

    sft_steps: int = field(default=400, metadata={
        "help": "SFT steps on the dataset's prompt/answer rows before RL; 0: start from random",
        "range": "[0, inf)"})
    lr: float = field(default=1e-3, metadata={"help": "SFT learning rate", "range": "(0, inf)"})
    batch_size: int = field(default=32, metadata={"help": "SFT sequences per step", "range": "[1, inf)"})


def _rl_run() -> RunOptions:
    return RunOptions(epochs=100, max_steps=300, batch_size=32, eval_every=25)


@dataclass
class RLConfig:
    """The RL experiment: the actor samples, a reward (and a reference, a critic) score, the
    advantage node turns scores into advantages, the actor (and the critic) train."""

    actor: ModelOptions = field(default_factory=lambda: ModelOptions(hidden_size=128))
    ref: InferenceOptions = field(default_factory=InferenceOptions)
    reward: RewardOptions = field(default_factory=RewardOptions)
    dataset: PromptConfig = field(default_factory=PromptConfig)
    gen: GenerationOptions = field(default_factory=GenerationOptions)
    policy: PolicyOptions = field(default_factory=PolicyOptions)
    kl: KLOptions = field(default_factory=KLOptions)
    adv: AdvantageOptions = field(default_factory=AdvantageOptions)
    critic: CriticOptions | None = field(default_factory=CriticOptions, metadata={
        "help": "the value model, when adv.estimator needs one (gae); null: none"})
    dynamic_sampling: DynamicSamplingOptions = field(default_factory=DynamicSamplingOptions)
    rollout: RolloutOptions = field(default_factory=RolloutOptions)
    env: EnvOptions = field(default_factory=EnvOptions)
    train: DeepSpeedOptions = field(default_factory=lambda: _train(2e-4))
    warm_start: WarmStartOptions = field(default_factory=WarmStartOptions)
    run: RunOptions = field(default_factory=_rl_run)
    eval: EvalOptions = field(default_factory=lambda: EvalOptions(size=256))

    def validate(self) -> None:
        """Cross-key rules, checked once when the config is resolved (and for configs built in
        code): registered estimator and loss, enough samples, a critic exactly when needed."""
        from rlcore.sdk import UnknownItemError, registry

        self.env.apply_defaults(self)
        self.reward.validate()
        self.kl.validate()
        self.rollout.validate()
        self.eval.validate()
        checks = {"estimators": (self.adv, "estimator"), "policy_losses": (self.policy, "loss"),
                  "rollout_engines": (self.rollout, "engine")}
        for kind, (section, key) in checks.items():
            try:
                registry.get(kind, getattr(section, key))  # unknown: an error with close matches
            except UnknownItemError as err:
                raise ConfigError(f"{section.section}.{key}: {err}") from None
        record = registry.get("estimators", self.adv.estimator)
        if self.gen.n_samples < record.min_samples:
            raise ConfigError(f"adv.estimator={record.name} compares responses to one prompt: "
                              f"gen.n_samples must be >= {record.min_samples}, got "
                              f"{self.gen.n_samples}")
        if self.dynamic_sampling.enabled and self.gen.n_samples < 2:
            raise ConfigError("dynamic_sampling.enabled keeps prompts whose responses differ: "
                              f"gen.n_samples must be >= 2, got {self.gen.n_samples}")
        if self.run.batch_size is not None and self.run.batch_size < self.policy.minibatches:
            raise ConfigError(f"run.batch_size={self.run.batch_size} prompts cannot make "
                              f"policy.minibatches={self.policy.minibatches} minibatches; raise "
                              "the batch size or lower the minibatches")
        self._check_critic(record)
        chosen = [k for k in ("path", "url", "interface") if getattr(self.reward, k) is not None]
        if self.env.name and chosen:
            raise ConfigError(f"env.name={self.env.name} and reward.{chosen[0]} are both set: in "
                              "multi-turn episodes the environment gives the rewards; unset "
                              f"reward.{chosen[0]} (or env.name for single-turn training)")
        if self.env.name and self.rollout.max_staleness:
            raise ConfigError("env.name: multi-turn episodes are sampled on-policy; set "
                              "rollout.max_staleness=0")

    def _check_critic(self, record: Any) -> None:
        """A critic section exactly when the estimator needs one; its defaults when missing."""
        if record.needs_critic:
            if self.critic is None:
                self.critic = CriticOptions()
            return
        if self.critic is None:
            return
        from rlcore.sdk import changed_keys, source_of

        changed = [k for k in changed_keys(self.critic, CriticOptions(), "critic.")
                   if not source_of(self, k).startswith("profile ")]  # a profile's: not yours
        if changed:
            raise ConfigError(f"{changed[0]} is set, but adv.estimator={record.name} uses "
                              "no critic; remove the critic settings or choose an estimator "
                              "that needs one (`rlcore list estimators`)")
        self.critic = None


# Keys of the sections before the RL options were composed: old key -> current key.
_MOVED = {
    "adv_estimator": "adv.estimator", "adv_norm": "adv.norm", "std_norm": "adv.std_norm",
    "discount": "adv.discount", "gae_lambda": "adv.gae_lambda",
    "overlong_buffer": "adv.overlong_buffer", "overlong_penalty": "adv.overlong_penalty",
    "dynamic_sampling": "dynamic_sampling.enabled", "max_refills": "dynamic_sampling.max_refills",
    "ppo_n_minibatches": "policy.minibatches", "ppo_epochs": "policy.epochs",
    "kl_ctl": "kl.coef", "kl_controller": "kl.controller", "kl_target": "kl.target",
    "kl_horizon": "kl.horizon", "kl_in_reward": "kl.in_reward", "kl_estimator": "kl.estimator",
    "value_eps_clip": "critic.eps_clip", "value_loss_coef": "critic.loss_coef",
    "value_norm": "critic.norm", "value_norm_type": "critic.norm_type",
    "value_norm_beta": "critic.norm_beta",
    **{k: f"policy.{k}" for k in ("ratio_level", "eps_clip", "eps_clip_low", "eps_clip_high",
                                   "dual_clip", "entropy_coef", "early_stop_kl",
                                   "early_stop_imp_ratio", "loss_agg", "logprob_drift_warn")},
}


def renamed_keys(section: str) -> dict[str, str]:
    """The old ``SECTION.key`` names of a preset and ``critic_train``, mapped to today's keys."""
    return {**{f"{section}.{old}": new for old, new in _MOVED.items()},
            "critic_train": "critic.train"}


@dataclass
class PPOConfig(RLConfig):
    """PPO (Schulman et al. 2017; Ouyang et al. 2022): GAE with a critic, KL in the reward."""

    renamed_keys: ClassVar[dict[str, str]] = renamed_keys("ppo")
    profiles: ClassVar[dict[str, dict[str, Any]]] = profiles("ppo")


@dataclass
class GRPOConfig(RLConfig):
    """GRPO (Shao et al. 2024) and the critic-free family: group-relative advantages, KL as a
    loss term with the k3 estimator. DAPO: ``policy.eps_clip_high`` above ``eps_clip_low``,
    ``adv.overlong_buffer``, ``dynamic_sampling.enabled``. GSPO: ``policy.ratio_level=sequence``.
    Dr. GRPO: ``adv.std_norm=false``, ``policy.loss_agg=seq-mean-token-sum-norm``."""

    renamed_keys: ClassVar[dict[str, str]] = renamed_keys("grpo")
    profiles: ClassVar[dict[str, dict[str, Any]]] = profiles("grpo")

    kl: KLOptions = field(default_factory=lambda: KLOptions(coef=0.0, in_reward=False,
                                                            estimator="k3"))
    adv: AdvantageOptions = field(default_factory=lambda: AdvantageOptions(estimator="grpo",
                                                                           norm=False))
    critic: CriticOptions | None = field(default=None, metadata={
        "help": "the value model, when adv.estimator needs one (gae); null: none"})


@dataclass
class RemaxConfig(GRPOConfig):
    """ReMax (Li et al. 2023): each prompt's greedy response reward is its samples' baseline."""

    renamed_keys: ClassVar[dict[str, str]] = renamed_keys("remax")
    profiles: ClassVar[dict[str, dict[str, Any]]] = profiles("remax")

    adv: AdvantageOptions = field(default_factory=lambda: AdvantageOptions(estimator="remax",
                                                                           norm=False))
