"""An experiment's config class and resolved config: the one path the CLI, the API and the ranks use.

The config class has one source of truth. For a registered experiment it is its
record's ``config`` (a lazy ``"module:Class"``, so the CLI resolves configs
without importing the experiment or torch). For a ``"module:Class"`` string or a
class it is the class's ``config_class``, or, when the class is registered, its
record's ``config``. :func:`experiment_class` checks that a class and its record
agree. Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rlcore.config.resolve import resolve
from rlcore.errors import ConfigError


def experiment_config(
    experiment: str | type,
    base: Any = None,
    config_file: str | Path | None = None,
    sets: Iterable[str] = (),
    profile: str = "auto",
) -> tuple[str, Any]:
    """``(name, config)`` of ``experiment``: defaults (or ``base``) < ``profile`` <
    ``config_file`` < each ``sets``.

    ``experiment`` is a registered name, a ``"module:Class"`` string or a class;
    ``name`` is the registered name, else the class name. ``base`` is a config
    object to start from (copied, not modified). ``profile`` is ``auto``, ``real`` or
    ``tiny`` (:mod:`rlcore.config.profiles`). The config is None only for an
    experiment without a config class, given nothing to resolve.
    """
    sets = list(sets)
    name = experiment_label(experiment)
    cls = config_class_of(experiment)
    if cls is None:
        if base is not None or config_file is not None or sets:
            raise ConfigError(
                f"experiment {name!r} declares no config class, so it takes no config, config "
                "file or overrides; name one in its ExperimentRecord (config='module:Class') "
                "or as the experiment class's config_class"
            )
        return name, None
    if base is not None and not isinstance(base, cls):
        raise ConfigError(f"config is a {type(base).__name__}; experiment {name!r} expects a "
                          f"{cls.__name__} ({cls.__module__})")
    return name, resolve(type(base) if base is not None else cls, config_file, sets, base=base,
                         profile=profile)


def experiment_label(experiment: str | type) -> str:
    """The experiment's name: the registered name, else the class name."""
    if isinstance(experiment, str):
        return experiment.split(":")[-1]
    return getattr(experiment, "__name__", str(experiment))


def config_class_of(experiment: str | type) -> type | None:
    """The config class of a registered name (its record's, without importing the
    experiment), a ``"module:Class"`` string or an experiment class."""
    if isinstance(experiment, str) and ":" not in experiment:
        from rlcore.plugins import registry

        return _record_config(registry.get("experiments", experiment))
    cls = _load(experiment)
    declared = getattr(cls, "config_class", None)
    record = record_of(cls)
    if record is None:
        return declared
    _check(cls, declared, record)
    return _record_config(record)


def experiment_class(experiment: str | type) -> type:
    """The experiment class, checked to agree with its record about the config class.

    Building an experiment goes through here; a class whose ``config_class``
    differs from its record's ``config`` is an error that names both.
    """
    if isinstance(experiment, str) and ":" not in experiment:
        from rlcore.plugins import registry

        record = registry.get("experiments", experiment)
        cls = record.load()
    else:
        cls = _load(experiment)
        record = record_of(cls)
    if record is not None:
        _check(cls, getattr(cls, "config_class", None), record)
    return cls


def record_of(cls: type) -> Any:
    """The experiment record whose ``impl`` names ``cls``, if exactly one plugin record does
    (presets register one class under several names, each with its own config)."""
    from rlcore.plugins import registry

    ref = f"{getattr(cls, '__module__', '')}:{getattr(cls, '__qualname__', '')}"
    found = [r for r in registry.items("experiments").values() if r.impl == ref]
    return found[0] if len(found) == 1 else None


def _load(experiment: str | type) -> type:
    if isinstance(experiment, str):
        from rlcore.plugins.records import load_object

        return load_object(experiment)
    return experiment


def _record_config(record: Any) -> type | None:
    from rlcore.plugins.records import load_object

    return load_object(record.config) if getattr(record, "config", None) else None


def _check(cls: type, declared: type | None, record: Any) -> None:
    if declared is None:
        return
    named = _record_config(record)
    if named is declared:
        return
    from rlcore.plugins import registry

    ours = f"{declared.__module__}:{declared.__qualname__}"
    where = f"{record.name!r} ({registry.provider('experiments', record.name)})"
    theirs = repr(record.config) if named is not None else "no config class"
    raise ConfigError(
        f"experiment {where}: its record names {theirs} but {cls.__qualname__}.config_class "
        f"is {ours!r}. Name the config class once, in the ExperimentRecord (config=...), "
        "and drop config_class from the class (or make the two the same)"
    )
