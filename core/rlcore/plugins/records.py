"""Typed records that plugins return from their registration hooks.

A record names its implementation lazily as ``"module:attr"`` so that listing
plugins never imports torch. ``record.load()`` imports the object on demand.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, ClassVar


def load_object(ref: str) -> Any:
    """Import ``"package.module:attr.sub"`` and return the attribute."""
    module_name, sep, attr_path = ref.partition(":")
    if not sep or not module_name or not attr_path:
        raise ValueError(f"bad implementation reference {ref!r}: expected 'module:attr'")
    obj: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Record:
    """Base of every registered item: a unique name, a lazy implementation and a doc line."""

    kind: ClassVar[str] = "record"  # each subclass gets its plural from KINDS below

    name: str
    impl: str
    doc: str = ""
    # Set to True to replace an item of the same name from another plugin on purpose.
    override: bool = False

    def load(self) -> Any:
        """Import and return the implementation object."""
        return load_object(self.impl)


@dataclass(frozen=True)
class DatasetRecord(Record):
    """A dataset. ``impl`` builds it from ``(config, tokenizer)``; ``config`` names its dataclass."""

    config: str | None = None


@dataclass(frozen=True)
class ModelFamilyRecord(Record):
    """An HF model family. ``impl`` is a :class:`rlcore.models.family.ModelFamily` object."""

    hf_model_types: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class InterfaceRecord(Record):
    """A model interface class (generate / inference / train_step over a model handle)."""


@dataclass(frozen=True)
class ExperimentRecord(Record):
    """An experiment. ``impl`` is the experiment class; ``config`` names its config dataclass."""

    config: str | None = None


@dataclass(frozen=True)
class RewardFunctionRecord(Record):
    """A rule reward: ``fn(completions, samples, **params) -> list[float]``, one score each."""


@dataclass(frozen=True)
class BackendRecord(Record):
    """A model backend (how a role's model is wrapped: DeepSpeed engine, inference, ...)."""


@dataclass(frozen=True)
class AdvantageEstimatorRecord(Record):
    """An advantage estimator: ``impl(inputs: AdvantageInputs) -> (advantages, returns)``,
    both ``[N]`` per action (``rlcore.data.trajectory``). The fields say what it needs:

    ``needs_critic`` (values from a critic role), ``needs_baseline`` (each prompt's greedy
    response reward), ``grouped`` (one advantage per response, relative to its prompt's
    group), ``min_samples`` (responses per prompt), ``kl_in_reward`` (``kl.in_reward`` puts
    the KL penalty in its per-token reward; else in each response's reward, as its sum) and ``whiten``
    (advantages are always whitened over the batch).
    """

    needs_critic: bool = False
    needs_baseline: bool = False
    grouped: bool = False
    min_samples: int = 1
    kl_in_reward: bool = False
    whiten: bool = False


@dataclass(frozen=True)
class PolicyLossRecord(Record):
    """A policy loss: ``impl(inputs: PolicyLossInputs) -> {"loss": [N], ...}`` per action."""


@dataclass(frozen=True)
class RolloutEngineRecord(Record):
    """A rollout engine: ``impl(handle, **options)`` satisfies ``rlcore.rollout.engine.RolloutEngine``."""


@dataclass(frozen=True)
class LoggerRecord(Record):
    """A metrics logger that ``run.loggers`` selects: ``impl(run_dir, config, start_step)`` is
    built on rank 0, then gets ``log(step, metrics)`` each step and ``close(summary)``."""


@dataclass(frozen=True)
class EnvironmentRecord(Record):
    """An environment for multi-turn episodes (``env.name``): ``impl`` is a subclass of
    :class:`rlcore.agents.environment.Environment`, built as ``impl(**env.args)`` per episode."""


@dataclass(frozen=True)
class Kind:
    """One kind of registered item: its plural (``rlcore list``), singular, hook and record."""

    plural: str
    singular: str
    hook: str
    record: type[Record]


# The one table of kinds: the manager, the registry and the CLI all read it.
KINDS: dict[str, Kind] = {
    k.plural: k
    for k in (
        Kind("datasets", "dataset", "rlcore_datasets", DatasetRecord),
        Kind("families", "family", "rlcore_model_families", ModelFamilyRecord),
        Kind("interfaces", "interface", "rlcore_interfaces", InterfaceRecord),
        Kind("experiments", "experiment", "rlcore_experiments", ExperimentRecord),
        Kind("rewards", "reward", "rlcore_reward_functions", RewardFunctionRecord),
        Kind("backends", "backend", "rlcore_backends", BackendRecord),
        Kind("estimators", "estimator", "rlcore_advantage_estimators", AdvantageEstimatorRecord),
        Kind("policy_losses", "policy_loss", "rlcore_policy_losses", PolicyLossRecord),
        Kind("rollout_engines", "rollout_engine", "rlcore_rollout_engines", RolloutEngineRecord),
        Kind("loggers", "logger", "rlcore_loggers", LoggerRecord),
        Kind("environments", "environment", "rlcore_environments", EnvironmentRecord),
    )
}
KIND_OF_HOOK: dict[str, Kind] = {k.hook: k for k in KINDS.values()}
for _kind in KINDS.values():
    _kind.record.kind = _kind.plural


def kind_named(text: str) -> Kind:
    """The kind called ``text`` (plural or singular); anything else suggests the closest."""
    from rlcore.plugins.lookup import unknown_item_error

    text = text.replace("-", "_")  # rollout-engines or rollout_engines
    for kind in KINDS.values():
        if text in (kind.plural, kind.singular):
            return kind
    raise unknown_item_error("kind", text, list(KINDS))
