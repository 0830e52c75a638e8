"""The ppo experiment: six model function calls over actor, critic, ref and reward roles.

    actor_gen (generate) -> rew_inf, ref_inf, critic_inf (inference) -> actor_train, critic_train

The reward role is a reward model (``reward.path``) or registered reward functions on a
role without a neural model. ``ref`` is dropped when the KL coefficient is fixed at 0. With
the tiny built-in actor (``actor.path`` null) an SFT warm start runs first, once, into
``RUN_DIR/warm_start`` (see :meth:`PPO.prepare`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rlcore.data.batch import PackedBatch
from rlcore.dfg import MFC
from rlcore.errors import ConfigError
from rlcore.runtime.executor import SampleFilter
from rlcore.runtime.interface import ModelHandle
from rlcore.runtime.options import DeepSpeedOptions, InferenceOptions, OptimizerOptions, RunOptions
from rlcore.runtime.roles import RoleSpec
from rlcore_plugin_algorithms.config import PPOOptions, SFTConfig
from rlcore_plugin_algorithms.experiments import SFT, PostTraining
from rlcore_plugin_algorithms.ppo import BASELINE_REWARDS, REF_LOGPROBS, replays_mask
from rlcore_plugin_algorithms.rewards import check_reward_params
from rlcore_plugin_algorithms.rollout import IDS, ROLLOUT_KEYS

WARM_START_DIR = "warm_start"


def rewards_differ(batch: PackedBatch) -> list[bool]:
    """Per sample: whether its responses' rewards are not all equal."""
    out, start = [], 0
    rewards = batch.data["rewards"].tolist()
    for lens in batch.seqlens["rewards"]:
        group = rewards[start : start + len(lens)]
        out.append(max(group) - min(group) > 1e-6)
        start += len(lens)
    return out


class PPO(PostTraining):
    """PPO with a critic, a frozen reference and a reward role (ReaL's six-MFC graph)."""

    name = "ppo"
    dataset_name = "prompt"

    def __init__(self, config: Any = None):
        super().__init__(config)
        self.warm_start_path: str | None = None

    # ------------------------------------------------------------------ roles and graph

    def actor_spec(self, **kw: Any) -> RoleSpec:
        spec = super().actor_spec(**kw)
        if self.warm_start_path is not None:
            spec = dataclasses.replace(spec, model=self.warm_start_path)
        return spec

    @property
    def rl(self) -> PPOOptions:
        """The algorithm's options: the ``ppo`` section (``grpo``, ``remax`` in the subclasses)."""
        return self.config.ppo

    def roles(self) -> list[RoleSpec]:
        c = self.config
        actor = self.actor_spec()
        roles = [actor]
        if self.rl.uses_critic:
            roles.append(dataclasses.replace(
                actor, name="critic", model=c.critic.path or actor.model, value_head=True,
                init_from=None if c.critic.path else "actor", options=c.critic_train))
        if self.rl.uses_ref:
            roles.append(dataclasses.replace(actor, name="ref", trainable=False, init_from="actor",
                                             options=c.ref))
        if c.reward.path:
            roles.append(RoleSpec("reward", model=c.reward.path, value_head=True,
                                  options=InferenceOptions()))
        else:
            roles.append(RoleSpec("reward", backend="none"))
        return roles

    def reward_mfc(self, name: str = "rew_inf", rename: dict[str, str] | None = None,
                   output: str = "rewards") -> MFC:
        """The reward node: a reward model, a remote service or registered functions.

        ``rename`` maps the interface's input names to other graph keys (ReMax scores the
        greedy responses); the scores go to graph key ``output``.
        """
        r, rename = self.config.reward, rename or {}
        keys = (IDS,) if r.path else (IDS, "prompt_mask", "seq_no_eos_mask")
        wiring = {"input_keys": tuple(rename.get(k, k) for k in keys), "output_keys": (output,),
                  "input_remap": {rename[k]: k for k in keys if k in rename},
                  "output_remap": {"rewards": output} if output != "rewards" else {}}
        if r.path:
            return MFC(name, "reward", "inference", "reward", **wiring)
        if r.interface:
            return MFC(name, "reward", "inference", r.interface,
                       interface_args=dict(r.interface_args), **wiring)
        if r.url:
            args = {"url": r.url, "timeout_s": r.timeout_s, "max_retries": r.max_retries,
                    "request_size": r.request_size, "max_concurrency": r.max_concurrency}
            return MFC(name, "reward", "inference", "remote_reward", interface_args=args, **wiring)
        args = {"functions": list(r.functions), "weights": r.weights, "params": r.function_params}
        return MFC(name, "reward", "inference", "reward_functions", interface_args=args, **wiring)

    def mfcs(self) -> list[MFC]:
        c, p = self.config, self.rl
        self._check()
        rollout = [k for k in ROLLOUT_KEYS if k != "version"]
        mask = ("logits_mask",) if replays_mask(c.gen) else ()
        args = {"ppo": p, "reward": c.reward, "gen": c.gen, "seed": c.run.seed}
        scored = ("rewards", *(("values",) if p.uses_critic else ()),
                  *((REF_LOGPROBS,) if p.uses_ref else ()), *self.extra_train_keys())
        mfcs = [
            MFC("actor_gen", "actor", "generate", "ppo_actor", input_keys=("packed_prompts",),
                output_keys=(*ROLLOUT_KEYS, *mask), interface_args=args),
            self.reward_mfc(),
        ]
        if p.uses_ref:
            mfcs.append(MFC("ref_inf", "ref", "inference", "ppo_actor",
                            input_keys=(IDS, "prompt_mask", *mask), output_keys=(REF_LOGPROBS,),
                            output_remap={"logprobs": REF_LOGPROBS}, interface_args=args))
        if p.uses_critic:
            mfcs.append(MFC("critic_inf", "critic", "inference", "ppo_critic", input_keys=(IDS,),
                            output_keys=("values",), interface_args=args))
        mfcs.append(MFC("actor_train", "actor", "train_step", "ppo_actor",
                        input_keys=(*rollout, "version", *mask, *scored), interface_args=args))
        if p.uses_critic:
            mfcs.append(MFC("critic_train", "critic", "train_step", "ppo_critic",
                            input_keys=(*rollout, *scored), interface_args=args))
        return [*mfcs, *self.extra_mfcs(args)]

    def extra_train_keys(self) -> tuple[str, ...]:
        """Keys the actor's update reads beyond the rollout and its scores (ReMax: the baseline)."""
        return ()

    def sample_filter(self) -> SampleFilter | None:
        """DAPO's dynamic sampling: prompts whose responses all scored alike teach nothing."""
        if not self.rl.dynamic_sampling:
            return None
        return SampleFilter("rew_inf", keep=rewards_differ, max_refills=self.rl.max_refills,
                            why="their responses all got the same reward")

    def extra_mfcs(self, args: dict[str, Any]) -> list[MFC]:
        """More MFCs of a variant's graph (ReMax: the greedy baseline)."""
        return []

    def _check(self) -> None:
        """Fail before any process starts on what would only fail at the first step."""
        c, p, section = self.config, self.rl, self.name
        if not (c.reward.path or c.reward.url or c.reward.interface):
            # Unknown names (with close matches) and parameters that do not fit, before any rank.
            check_reward_params(list(c.reward.functions), c.reward.function_params)
        if c.run.batch_size is not None and c.run.batch_size < p.ppo_n_minibatches:
            raise ConfigError(f"run.batch_size={c.run.batch_size} prompts cannot make "
                              f"{section}.ppo_n_minibatches={p.ppo_n_minibatches} minibatches; "
                              "raise the batch size or lower the minibatches")
        allowed = self.estimators
        if p.adv_estimator not in allowed:
            hint = {"gae": "gae needs a critic: `rlcore train ppo`",
                    "remax": "remax needs a greedy baseline: `rlcore train remax`"}
            raise ConfigError(f"{section}.adv_estimator={p.adv_estimator!r} is not available in "
                              f"{section} (use one of {', '.join(allowed)}); "
                              f"{hint.get(p.adv_estimator, '')}".rstrip("; "))
        if p.adv_estimator in ("grpo", "rloo") and c.gen.n_samples < 2:
            raise ConfigError(f"{section}.adv_estimator={p.adv_estimator} compares responses to "
                              f"one prompt: gen.n_samples must be >= 2, got {c.gen.n_samples}")

    estimators: tuple[str, ...] = ("gae", "grpo", "rloo", "reinforce_pp")

    # ------------------------------------------------------------------ warm start and eval

    def warm_start_config(self) -> SFTConfig | None:
        """The SFT stage that runs before PPO: only for the tiny built-in actor (ZeRO-0: it is tiny)."""
        c, ws = self.config, self.config.warm_start
        if c.actor.path is not None or ws.sft_steps <= 0:
            return None
        from rlcore_plugin_datasets.config import PromptAnswerConfig

        d = c.dataset
        dataset = PromptAnswerConfig(path=d.path, format=d.format, json_field=d.json_field,
                                     max_length=d.max_length,
                                     seed=d.seed, embedded_max_operand=d.embedded_max_operand)
        train = DeepSpeedOptions(dtype=c.train.dtype, optimizer=OptimizerOptions(lr=ws.lr))
        run = RunOptions(seed=c.run.seed, epochs=1000, max_steps=ws.sft_steps,
                         batch_size=ws.batch_size, progress=c.run.progress,
                         collective_timeout_s=c.run.collective_timeout_s)
        return SFTConfig(actor=c.actor, dataset=dataset, train=train, run=run)

    def check(self) -> None:
        """Also the warm start's data: its SFT stage reads ``dataset.path`` as prompt/answer rows."""
        super().check()
        config = self.warm_start_config()
        if config is not None:
            SFT(config).check()

    def prepare(self, run_dir: Path) -> None:
        """Run the SFT warm start into ``RUN_DIR/warm_start`` unless it is there already, then
        point the actor at its weights. A warm start of another config is trained again."""
        config = self.warm_start_config()
        if config is None:
            return
        from rlcore.config import to_plain
        from rlcore.runtime.checkpoint import CheckpointManager, config_changes
        from rlcore.runtime.distributed import rank
        from rlcore.runtime.loop import run

        where = Path(run_dir) / WARM_START_DIR
        ckpt = CheckpointManager(where)
        latest = ckpt.latest()
        same = latest is not None and not config_changes(
            ckpt.trainer_state(latest).get("config", {}), to_plain(config))
        if not same or latest.name != ckpt.step_dir_name(config.run.max_steps):
            if rank() == 0:
                print(f"warm start: {config.run.max_steps} SFT steps into {where} (once; "
                      "warm_start.sft_steps=0 skips it)")
            run("sft", config, where, resume=same)
            latest = ckpt.latest()
        self.warm_start_path = str(latest / "actor")

    def evaluate(self, step: int, handles: dict[str, ModelHandle]) -> dict[str, float]:
        """Greedy exact-match accuracy of the actor on held-out prompts."""
        if not self.has_eval():
            return {}
        return {"accuracy": self.generation_accuracy(handles["actor"])}


class GRPO(PPO):
    """GRPO and its critic-free relatives: group-relative advantages, no critic."""

    name = "grpo"
    estimators = ("grpo", "rloo", "reinforce_pp")

    @property
    def rl(self) -> PPOOptions:
        return self.config.grpo


class ReMax(GRPO):
    """ReMax: a greedy response per prompt, scored by the reward, is each group's baseline."""

    name = "remax"
    estimators = ("remax",)

    @property
    def rl(self) -> PPOOptions:
        return self.config.remax

    def extra_train_keys(self) -> tuple[str, ...]:
        return (BASELINE_REWARDS,)

    def extra_mfcs(self, args: dict[str, Any]) -> list[MFC]:
        greedy = dataclasses.replace(self.config.gen, greedy=True, n_samples=1)
        renamed = {IDS: "greedy_input_ids", "prompt_mask": "greedy_prompt_mask",
                   "seq_no_eos_mask": "greedy_no_eos_mask"}
        return [
            MFC("actor_greedy", "actor", "generate", "ppo_actor", input_keys=("packed_prompts",),
                output_keys=tuple(renamed.values()), output_remap=renamed,
                interface_args={**args, "gen": greedy}),
            self.reward_mfc("rew_greedy", renamed, BASELINE_REWARDS),
        ]
