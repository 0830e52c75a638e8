"""``RLHFEngine``: ChatLearn's PPO engine over six user modules, on rlcore's runtime.

The flow is fixed, as in ChatLearn::

    rollout = policy.generate(batch)
    ref = reference.inference(rollout)
    values = value.inference(rollout, ref)
    rewards = reward.inference(rollout, ref, values)
    ppo_policy.train_step(rollout, ref, values, rewards)
    ppo_value.train_step(rollout, ref, values, rewards)

The modules' declared keys connect the calls, as in any flow. ``policy`` and
``value`` are frozen copies that generate and score; ``ppo_policy`` and
``ppo_value`` train, and after every step (and on resume) the runtime copies
their weights into ``policy`` and ``value`` (``Experiment.weight_syncs``).
"""

from __future__ import annotations

import os
from typing import Any

from rlcore.api.engine import Engine
from rlcore.api.module import Module
from rlcore.errors import ConfigError
from rlcore.runtime.options import RunOptions

ROLES = ("policy", "reference", "reward", "value", "ppo_policy", "ppo_value")
_FROZEN = {
    "policy": "samples responses with the weights ppo_policy trained",
    "reference": "scores responses with the starting weights (the KL anchor)",
    "reward": "scores responses",
    "value": "estimates values with the weights ppo_value trained",
}
_TRAINED = {"ppo_policy": "policy", "ppo_value": "value"}


def check_roles(modules: dict[str, Any]) -> None:
    """Each of the six modules fits its role; the errors say which one does not, and why."""
    for role, m in modules.items():
        if not isinstance(m, Module):
            raise ConfigError(f"RLHFEngine({role}=...): expected an rlcore.api.Module, got {m!r}")
    for role, job in _FROZEN.items():
        m = modules[role]
        if m.trainable:
            raise ConfigError(f"RLHFEngine: {role} {m!r} defines train_step, but the {role} role "
                              f"is frozen: it {job}. Only ppo_policy and ppo_value train; "
                              "their weights are copied into policy and value after every step")
        if not m.has_forward:
            raise ConfigError(f"RLHFEngine: {role} {m!r} defines no forward_step; the {role} "
                              f"role {job}")
        if role != "policy" and m.forward_type == "generate":
            raise ConfigError(f"RLHFEngine: {role} {m!r} has forward_type 'generate'; only the "
                              f"policy generates, the {role} role runs inference")
    for role, follower in _TRAINED.items():
        m = modules[role]
        if not m.trainable:
            raise ConfigError(f"RLHFEngine: {role} {m!r} defines no train_step; the {role} role "
                              f"trains, and {follower} follows its weights after every step")
    for role in ("policy", "value"):
        if not modules[role].has_model:
            raise ConfigError(f"RLHFEngine: {role} {modules[role]!r} has no model (no setup()); "
                              f"it receives ppo_{role}'s weights, so it needs the same model")


class RLHFEngine(Engine):
    """PPO over ChatLearn's six models: ``RLHFEngine(policy, reference, reward, value,
    ppo_policy, ppo_value, **run_options)``.

    ``policy`` generates (its ``forward_step`` runs as a generate call; with
    ``rollout_procs=K`` its ``rollout_engine()`` samples on K rollout processes that
    ``learn()`` starts, holding a copy of its weights), ``reference``,
    ``value`` and ``reward`` score, ``ppo_policy`` and ``ppo_value`` train; all keys
    come from the modules' ``input_keys``/``output_keys``/``train_keys``. The frozen
    ``policy``/``value`` follow ``ppo_policy``/``ppo_value`` after every step. The
    other arguments are :class:`Engine`'s (``run_dir``, ``tokenizer``, ``max_steps``, ...).
    """

    def __init__(
        self,
        policy: Module,
        reference: Module,
        reward: Module,
        value: Module,
        ppo_policy: Module,
        ppo_value: Module,
        *,
        run: RunOptions | None = None,
        run_dir: str | os.PathLike | None = None,
        tokenizer: Any = None,
        name: str = "rlhf",
        rollout_procs: int = 0,
        **run_options: Any,
    ):
        fixed = sorted({"flow", "sync"} & set(run_options))
        if fixed:
            raise ConfigError(f"RLHFEngine fixes {fixed}; for another flow or other weight syncs "
                              "use Engine(*modules, flow=..., sync=...)")
        modules = dict(zip(ROLES, (policy, reference, reward, value, ppo_policy, ppo_value),
                           strict=True))
        check_roles(modules)
        if not isinstance(rollout_procs, int) or rollout_procs < 0:
            raise ConfigError(f"rollout_procs: expected an integer >= 0, got {rollout_procs!r}")
        if rollout_procs:  # policy samples on rollout processes (policy.rollout_engine())
            policy.rollout = ("worker", {})

        def flow(batch: Any) -> None:
            rollout = policy.generate(batch)
            ref = reference.inference(rollout)
            values = value.inference(rollout, ref)
            rewards = reward.inference(rollout, ref, values)
            ppo_policy.train_step(rollout, ref, values, rewards)
            ppo_value.train_step(rollout, ref, values, rewards)

        super().__init__(*modules.values(), flow=flow, run=run, run_dir=run_dir,
                         tokenizer=tokenizer, name=name,
                         sync={ppo_policy.name: policy.name, ppo_value.name: value.name},
                         **run_options)
        self.config.rollout_procs = rollout_procs
        self.roles = modules

    def __repr__(self) -> str:
        args = ", ".join(f"{role}={m!r}" for role, m in self.roles.items())
        return f"RLHFEngine({args}, run_dir={str(self.run_dir)!r})"
