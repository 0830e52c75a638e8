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

from rlcore.dfg import MFC
from rlcore.errors import ConfigError
from rlcore.plugins import registry
from rlcore.runtime.interface import ModelHandle
from rlcore.runtime.options import DeepSpeedOptions, InferenceOptions, OptimizerOptions, RunOptions
from rlcore.runtime.roles import RoleSpec
from rlcore_plugin_algorithms.config import SFTConfig
from rlcore_plugin_algorithms.experiments import PostTraining
from rlcore_plugin_algorithms.ppo import REF_LOGPROBS, replays_mask
from rlcore_plugin_algorithms.rollout import ROLLOUT_KEYS

WARM_START_DIR = "warm_start"


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

    def roles(self) -> list[RoleSpec]:
        c = self.config
        actor = self.actor_spec()
        roles = [
            actor,
            dataclasses.replace(actor, name="critic", model=c.critic.path or actor.model,
                                value_head=True, init_from=None if c.critic.path else "actor",
                                options=c.critic_train),
        ]
        if c.ppo.uses_ref:
            roles.append(dataclasses.replace(actor, name="ref", trainable=False, init_from="actor",
                                             options=c.ref))
        if c.reward.path:
            roles.append(RoleSpec("reward", model=c.reward.path, value_head=True,
                                  options=InferenceOptions()))
        else:
            roles.append(RoleSpec("reward", backend="none"))
        return roles

    def mfcs(self) -> list[MFC]:
        c = self.config
        self._check()
        rollout = [k for k in ROLLOUT_KEYS if k != "version"]
        mask = ("logits_mask",) if replays_mask(c.gen) else ()
        args = {"ppo": c.ppo, "reward": c.reward, "gen": c.gen, "seed": c.run.seed}
        scored = ("rewards", "values", *((REF_LOGPROBS,) if c.ppo.uses_ref else ()))
        if c.reward.path:
            reward = MFC("rew_inf", "reward", "inference", "reward", input_keys=("packed_input_ids",),
                         output_keys=("rewards",))
        else:
            reward = MFC("rew_inf", "reward", "inference", "reward_functions",
                         input_keys=("packed_input_ids", "prompt_mask", "seq_no_eos_mask"),
                         output_keys=("rewards",),
                         interface_args={"functions": list(c.reward.functions),
                                         "weights": c.reward.weights})
        mfcs = [
            MFC("actor_gen", "actor", "generate", "ppo_actor", input_keys=("packed_prompts",),
                output_keys=(*ROLLOUT_KEYS, *mask), interface_args=args),
            reward,
            MFC("critic_inf", "critic", "inference", "ppo_critic",
                input_keys=("packed_input_ids",), output_keys=("values",), interface_args=args),
            MFC("actor_train", "actor", "train_step", "ppo_actor",
                input_keys=(*rollout, "version", *mask, *scored), interface_args=args),
            MFC("critic_train", "critic", "train_step", "ppo_critic",
                input_keys=(*rollout, *scored), interface_args=args),
        ]
        if c.ppo.uses_ref:
            mfcs.insert(2, MFC("ref_inf", "ref", "inference", "ppo_actor",
                               input_keys=("packed_input_ids", "prompt_mask", *mask),
                               output_keys=(REF_LOGPROBS,), output_remap={"logprobs": REF_LOGPROBS},
                               interface_args=args))
        return mfcs

    def _check(self) -> None:
        """Fail before any process starts on what would only fail at the first step."""
        c = self.config
        if not c.reward.path:
            for name in c.reward.functions:
                registry.get("rewards", name)  # unknown names: an error with close matches
        if c.run.batch_size is not None and c.run.batch_size < c.ppo.ppo_n_minibatches:
            raise ConfigError(f"run.batch_size={c.run.batch_size} prompts cannot make "
                              f"ppo.ppo_n_minibatches={c.ppo.ppo_n_minibatches} minibatches; "
                              "raise the batch size or lower the minibatches")

    # ------------------------------------------------------------------ warm start and eval

    def warm_start_config(self) -> SFTConfig | None:
        """The SFT stage that runs before PPO: only for the tiny built-in actor (ZeRO-0: it is tiny)."""
        c, ws = self.config, self.config.warm_start
        if c.actor.path is not None or ws.sft_steps <= 0:
            return None
        from rlcore_plugin_datasets.config import PromptAnswerConfig

        d = c.dataset
        dataset = PromptAnswerConfig(path=d.path, json_field=d.json_field, max_length=d.max_length,
                                     seed=d.seed, embedded_max_operand=d.embedded_max_operand)
        train = DeepSpeedOptions(dtype=c.train.dtype, optimizer=OptimizerOptions(lr=ws.lr))
        run = RunOptions(seed=c.run.seed, epochs=1000, max_steps=ws.sft_steps,
                         batch_size=ws.batch_size, progress=c.run.progress,
                         collective_timeout_s=c.run.collective_timeout_s)
        return SFTConfig(actor=c.actor, dataset=dataset, train=train, run=run)

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
