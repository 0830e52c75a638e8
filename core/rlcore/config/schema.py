"""Coerce plain values onto the type hints of config dataclasses, with errors that name the key."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from rlcore.config.ranges import field_range
from rlcore.config.sources import RawValue
from rlcore.errors import ConfigError
from rlcore.plugins.lookup import did_you_mean

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@cache
def field_types(cls: type) -> dict[str, Any]:
    """Resolved type hints of a dataclass's init fields."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def type_name(tp: Any) -> str:
    """A readable name for a type hint: ``float``, ``list[int]``, ``'a' | 'b'``."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join("None" if a is type(None) else type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join("..." if a is Ellipsis else type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return " | ".join(repr(m.value) for m in tp)
    return getattr(tp, "__name__", str(tp))


class _Bad(Exception):
    """Internal: a value does not fit a type."""


def coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """Return ``value`` converted to ``tp`` or raise a ConfigError naming ``key`` and ``source``."""
    try:
        return _coerce(value, tp, key, source)
    except _Bad:
        shown = value.text if isinstance(value, RawValue) else value
        raise ConfigError(
            f"config key {key!r}: expected {type_name(tp)}, got {shown!r} (from {source})"
        ) from None


def _parse_raw(value: Any) -> Any:
    if isinstance(value, RawValue):
        try:
            return yaml.safe_load(value.text) if value.text.strip() else ""
        except yaml.YAMLError:
            return value.text
    return value


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return _parse_raw(value)
    if origin in (Union, types.UnionType):
        parsed = _parse_raw(value)
        if parsed is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key, source)
            except (_Bad, ConfigError):
                continue
        raise _Bad
    if dataclasses.is_dataclass(tp):
        parsed = _parse_raw(value)
        if isinstance(parsed, tp):
            return parsed
        if not isinstance(parsed, dict):
            raise _Bad
        return build(tp, parsed, key + ".", {}, source)
    if origin is Literal:
        parsed = _parse_raw(value)
        for choice in args:
            if parsed == choice or str(parsed) == str(choice):
                return choice
        raise _Bad
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        parsed = _parse_raw(value)
        for member in tp:
            if parsed == member or parsed == member.value or str(parsed).lower() == member.name.lower():
                return member
        raise _Bad
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple):
        parsed = _parse_raw(value)
        if isinstance(parsed, str | int | float | bool):
            parsed = [parsed]
        if not isinstance(parsed, list | tuple):
            raise _Bad
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{key}[{i}]", source) for i, v in enumerate(parsed)]
        return (origin or tp)(items)
    if origin is dict or tp is dict:
        parsed = _parse_raw(value)
        if not isinstance(parsed, dict):
            raise _Bad
        val_tp = args[1] if len(args) == 2 else Any
        return {k: _coerce(v, val_tp, f"{key}.{k}", source) for k, v in parsed.items()}
    return _coerce_scalar(value, tp)


def _coerce_scalar(value: Any, tp: Any) -> Any:
    if tp is str:
        if isinstance(value, RawValue):
            return value.text
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        raise _Bad
    if tp is Path:
        text = value.text if isinstance(value, RawValue) else value
        if isinstance(text, str | Path):
            return Path(text)
        raise _Bad
    value = value.text if isinstance(value, RawValue) else value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _Bad
    if tp is int:
        if isinstance(value, bool):
            raise _Bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip().replace("_", ""))
            except ValueError:
                raise _Bad from None
        raise _Bad
    if tp is float:
        if isinstance(value, bool):
            raise _Bad
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise _Bad from None
        raise _Bad
    if isinstance(value, tp):
        return value
    raise _Bad


def dataclass_in(tp: Any) -> type | None:
    """The dataclass a field holds (``Section`` or ``Section | None``), else None."""
    if dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in (Union, types.UnionType):
        found = [a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)]
        return found[0] if len(found) == 1 else None
    return None


def build(cls: type, tree: dict[str, Any], prefix: str, sources: dict[str, str], default_source: str = "defaults") -> Any:
    """Build dataclass ``cls`` from a nested dict, checking every key and value."""
    types_ = field_types(cls)
    for name in tree:
        if name not in types_:
            key = f"{prefix}{name}"
            where = sources.get(key, default_source)
            valid = ", ".join(types_) or "(none)"
            raise ConfigError(
                f"unknown config key {key!r} (from {where}).{did_you_mean(str(name), list(types_), prefix)}"
                f" Valid keys{' under ' + repr(prefix[:-1]) if prefix else ''}: {valid}."
            )
    kwargs = {}
    for name, value in tree.items():
        key, tp = f"{prefix}{name}", types_[name]
        section = dataclass_in(tp)
        if section is not None and isinstance(value, dict):
            kwargs[name] = build(section, value, key + ".", sources, default_source)
        else:
            kwargs[name] = coerce(value, tp, key, sources.get(key, default_source))
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        where = f" {prefix[:-1]!r}" if prefix else ""
        raise ConfigError(f"invalid config{where} ({cls.__name__}): {exc}") from None


def describe_fields(config: Any, prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """Flattened ``(key, type, value, help)`` rows of a config dataclass (its defaults) or of a
    config object (its own values, nested sections included), for docs and ``rlcore info``.

    The type of a field with a declared range says it: ``float > 0``, ``int in [0, 3]``.
    """
    obj = config() if isinstance(config, type) else config
    cls = type(obj)
    rows = []
    for f in dataclasses.fields(cls):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            rows.extend(describe_fields(value, f"{prefix}{f.name}."))
            continue
        rng = field_range(f)
        shown = type_name(field_types(cls)[f.name]) + (f" {rng}" if rng is not None else "")
        rows.append((f"{prefix}{f.name}", shown, value, f.metadata.get("help", "")))
    return rows
