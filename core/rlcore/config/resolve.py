"""Resolve a config dataclass from defaults, a YAML file and ``--set`` overrides, and print it back."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from rlcore.config.schema import build
from rlcore.config.sources import load_yaml, parse_set
from rlcore.errors import ConfigError


def resolve(cls: type, config_file: str | Path | None = None, sets: Iterable[str] = ()) -> Any:
    """Build ``cls``: its defaults, then the YAML file, then each ``key=value`` in order."""
    try:
        defaults = cls()
    except TypeError as exc:
        raise ConfigError(f"{cls.__name__} needs a default for every field: {exc}") from None
    tree = _tree(defaults)
    sources: dict[str, str] = {}
    if config_file is not None:
        data, lines = load_yaml(config_file)
        _merge(tree, data, "", lines, sources)
    for index, item in enumerate(sets, 1):
        key, raw, where = parse_set(item, index)
        _set_dotted(tree, key, raw, where, sources)
    return build(cls, tree, "", sources)


def _tree(obj: Any) -> dict[str, Any]:
    """Nested dict of a dataclass instance; leaves keep their Python values."""
    return {
        f.name: _tree(v) if dataclasses.is_dataclass(v := getattr(obj, f.name)) else v
        for f in dataclasses.fields(obj)
        if f.init
    }


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
