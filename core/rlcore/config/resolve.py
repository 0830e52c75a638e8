"""Resolve a config dataclass from defaults, a YAML file and ``--set`` overrides, and print it back."""

from __future__ import annotations

import copy
import dataclasses
import enum
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from rlcore.config import profiles
from rlcore.config.ranges import check_ranges
from rlcore.config.schema import build, dataclass_in, field_types
from rlcore.config.sources import load_yaml, parse_set
from rlcore.errors import ConfigError, RenamedKeyWarning
from rlcore.plugins.lookup import did_you_mean


def resolve(
    cls: type,
    config_file: str | Path | None = None,
    sets: Iterable[str] = (),
    base: Any = None,
    profile: str = "auto",
) -> Any:
    """Build ``cls``: its defaults (or ``base``), then the YAML file, then each ``key=value``.

    ``base`` is an instance of ``cls`` whose values replace the defaults; it is
    copied, never modified, and the result is validated like any other layer: every
    key and type, then every numeric value against its field's declared range.
    ``profile`` (``rlcore.config.profiles``) fills the keys that no layer set.
    """
    origin = "defaults" if base is None else "the base config"
    if base is None:
        try:
            base = cls()
        except TypeError as exc:
            raise ConfigError(f"{cls.__name__} needs a default for every field: {exc}") from None
    elif not isinstance(base, cls):
        raise ConfigError(f"the base config is a {type(base).__name__}, expected a {cls.__name__}")
    else:
        base = copy.deepcopy(base)
    tree = _tree(base)
    sources: dict[str, str] = {}
    if origin == "the base config":
        sources.update(dict.fromkeys(profiles.changed_keys(base, _defaults_of(cls, base)), origin))
    renamed = getattr(cls, "renamed_keys", {})
    if config_file is not None:
        data, lines = load_yaml(config_file)
        for old_key, value in _pop_renamed(data, renamed):
            where = lines.get(old_key, "config file")
            _set_dotted(tree, _current_key(old_key, renamed, where), value, where, sources)
        _merge(tree, data, "", lines, sources)
    for index, item in enumerate(sets, 1):
        key, raw, where = parse_set(item, index)
        _set_dotted(tree, _current_key(key, renamed, where), raw, where, sources)
    _check_old_sections(tree, renamed, sources)
    chosen = profiles.choose(cls, profile, tree)
    written = profiles.apply(cls, chosen, tree, sources)
    config = build(cls, tree, "", sources, origin)
    profiles.record(config, chosen, profile, written, sources)
    check_config(config, sources, origin)
    return config


def _defaults_of(cls: type, base: Any) -> Any:
    """The class's defaults, to tell a base config's own values from them (``base`` itself
    when the class cannot be built without arguments; such a class has no profile)."""
    try:
        return cls()
    except TypeError:
        return base


def check_config(config: Any, sources: dict[str, str] | None = None,
                 origin: str = "defaults") -> None:
    """Every numeric value against its range, then the config's own ``validate()`` (cross-key
    rules), if it has one: what both the CLI and a config built in code go through."""
    check_ranges(config, "", sources or {}, origin)
    _check_sections(config, "")
    validate = getattr(config, "validate", None)
    if callable(validate):
        validate()


def _check_sections(obj: Any, prefix: str) -> None:
    """Sections that validate themselves under their own key, wherever they sit (``lora``)."""
    from rlcore.runtime.options import LoraOptions

    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name, None)
        if isinstance(value, LoraOptions):
            value.validate(prefix + f.name)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            _check_sections(value, f"{prefix}{f.name}.")


def _current_key(key: str, renamed: dict[str, str], where: str) -> str:
    """``key`` under its current name; a renamed key (or section) still works, with a note."""
    for old, new in renamed.items():
        if key == old or key.startswith(old + "."):
            current = new + key[len(old):]
            warnings.warn(f"config key {key!r} (from {where}) is now {current!r}; the old name "
                          "still works", RenamedKeyWarning, stacklevel=3)
            return current
    return key


def _pop_renamed(data: dict, renamed: dict[str, str], prefix: str = "") -> list[tuple[str, Any]]:
    """Remove from a YAML tree the leaves whose keys were renamed: ``[(old dotted key, value)]``."""
    found = []
    for key in list(data):
        dotted = f"{prefix}{key}"
        if any(dotted == old or dotted.startswith(old + ".") for old in renamed):
            found.extend(_leaves(data.pop(key), dotted))
        elif isinstance(data[key], dict) and any(old.startswith(dotted + ".") for old in renamed):
            found.extend(_pop_renamed(data[key], renamed, dotted + "."))
            if not data[key]:
                del data[key]
    return found


def _check_old_sections(tree: dict, renamed: dict[str, str], sources: dict[str, str]) -> None:
    """A key left under a section that was split up: name it and the closest old key."""
    for section, value in tree.items():
        moved = [old for old in renamed if old.startswith(f"{section}.")]
        if not moved or not isinstance(value, dict) or not value:
            continue
        key = f"{section}.{next(iter(value))}"
        raise ConfigError(
            f"unknown config key {key!r} (from {sources.get(key, sources.get(section, 'the config'))}): the "
            f"{section!r} section was split into sections of their own, and its keys were "
            f"renamed (e.g. {moved[0]!r} is now {renamed[moved[0]]!r}).{did_you_mean(key, moved)}")


def _leaves(value: Any, dotted: str) -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{dotted}.{k}")]
    return [(dotted, value)]


def _tree(obj: Any) -> dict[str, Any]:
    """Nested dict of a dataclass instance; leaves keep their Python values.

    A section becomes a dict only when it is of the dataclass its field declares,
    so that building the tree back gives the same types.
    """
    types_ = field_types(type(obj))
    tree = {}
    for name, tp in types_.items():
        value = getattr(obj, name)
        section = dataclass_in(tp)
        tree[name] = _tree(value) if section is not None and type(value) is section else value
    return tree


def _merge(tree: dict, data: dict, prefix: str, lines: dict[str, str], sources: dict[str, str]) -> None:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        sources[dotted] = lines.get(dotted, "config file")
        if isinstance(value, dict) and isinstance(tree.get(key), dict):
            _merge(tree[key], value, dotted + ".", lines, sources)
        else:
            tree[key] = value


def _set_dotted(tree: dict, key: str, value: Any, where: str, sources: dict[str, str]) -> None:
    parts = key.split(".")
    node = tree
    for depth, part in enumerate(parts[:-1]):
        sources.setdefault(".".join(parts[: depth + 1]), where)
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            section = ".".join(parts[: depth + 1])
            raise ConfigError(f"config key {key!r} (from {where}): {section!r} is a value, not a section")
        node = child
    node[parts[-1]] = value
    sources[key] = where


def to_plain(obj: Any) -> Any:
    """Dataclasses, enums, paths and tuples as plain YAML-friendly values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def to_yaml(obj: Any) -> str:
    """The resolved config as YAML that ``--config`` accepts back unchanged."""
    return yaml.safe_dump(to_plain(obj), sort_keys=False, default_flow_style=False)
