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

    kind: ClassVar[str] = "record"

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

    kind: ClassVar[str] = "datasets"
    config: str | None = None


@dataclass(frozen=True)
class ModelFamilyRecord(Record):
    """An HF model family. ``impl`` is a :class:`rlcore.models.family.ModelFamily` object."""

    kind: ClassVar[str] = "families"
    hf_model_types: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class InterfaceRecord(Record):
    """A model interface class (generate / inference / train_step over a model handle)."""

    kind: ClassVar[str] = "interfaces"


@dataclass(frozen=True)
class ExperimentRecord(Record):
    """An experiment. ``impl`` is the experiment class; ``config`` names its config dataclass."""

    kind: ClassVar[str] = "experiments"
    config: str | None = None


@dataclass(frozen=True)
class RewardFunctionRecord(Record):
    """A rule reward: ``fn(completions, samples, **params) -> list[float]``, one score each."""

    kind: ClassVar[str] = "rewards"


@dataclass(frozen=True)
class BackendRecord(Record):
    """A model backend (how a role's model is wrapped: DeepSpeed engine, inference, ...)."""

    kind: ClassVar[str] = "backends"


RECORD_TYPES: dict[str, type[Record]] = {
    cls.kind: cls
    for cls in (
        DatasetRecord,
        ModelFamilyRecord,
        InterfaceRecord,
        ExperimentRecord,
        RewardFunctionRecord,
        BackendRecord,
    )
}

# Registration hook that fills each kind.
HOOK_FOR_KIND: dict[str, str] = {
    "datasets": "rlcore_datasets",
    "families": "rlcore_model_families",
    "interfaces": "rlcore_interfaces",
    "experiments": "rlcore_experiments",
    "rewards": "rlcore_reward_functions",
    "backends": "rlcore_backends",
}
