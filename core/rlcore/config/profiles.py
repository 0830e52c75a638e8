"""Profiles (``--profile real|tiny|auto``) and where each config value came from.

A config class may declare ``profiles = {"real": {dotted key: value}}``: the values a run on a
real model needs where the class's defaults fit the tiny embedded task. ``auto`` picks ``real``
when ``actor.path`` is set, else ``tiny`` (the class's own defaults). A profile fills only
keys the user left alone: a ``--set``, a config file or a base config always wins.

The same rule fills an environment's ``defaults`` (:func:`fill_defaults`), after the profile.
Resolving records every value's source on the config (:func:`source_of`), so that a run can
print what applies and why (:func:`describe`). Importing this does not import torch.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from rlcore.config.sources import RawValue
from rlcore.errors import ConfigError

PROFILES = ("auto", "real", "tiny")
PROFILE_HELP = ("Defaults for the keys you leave alone: real (a real model: its learning rates, "
                "generation lengths, bf16), tiny (the embedded task's), auto: real when "
                "actor.path is set, else tiny. --set and --config always win.")
PRESET = "preset default"
_ATTR = "_rlcore_provenance"
_UNSET = object()


def choose(cls: type, profile: str, tree: dict[str, Any]) -> str:
    """The profile that applies: ``profile``, or for ``auto`` ``real`` when ``actor.path`` is
    set and the class has a real profile."""
    if profile not in PROFILES:
        raise ConfigError(f"--profile {profile!r}: expected one of {', '.join(PROFILES)}")
    tables = getattr(cls, "profiles", {})
    if profile == "auto":
        return "real" if "real" in tables and _actor_path(tree) else "tiny"
    if profile != "tiny" and profile not in tables:
        raise ConfigError(f"--profile {profile}: {cls.__name__} declares no {profile!r} profile; "
                          "use --profile tiny (its defaults) or set the keys yourself")
    return profile


def apply(cls: type, profile: str, tree: dict[str, Any], sources: dict[str, str]) -> dict[str, Any]:
    """Write the profile's values into ``tree`` where ``sources`` has no value for the key;
    return the values written. A section set as a whole, or null, is left alone."""
    written = {}
    for key, value in getattr(cls, "profiles", {}).get(profile, {}).items():
        if key in sources:
            continue
        *path, name = key.split(".")
        node = tree
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and name in node:
            node[name] = value
            written[key] = value
    return written


def changed_keys(base: Any, default: Any, prefix: str = "") -> list[str]:
    """The dotted keys where config ``base`` differs from ``default`` (leaves of sections)."""
    out = []
    for f in dataclasses.fields(base):
        if not f.init:
            continue
        key, mine, theirs = f"{prefix}{f.name}", getattr(base, f.name), getattr(default, f.name)
        if dataclasses.is_dataclass(mine) and type(mine) is type(theirs):
            out += changed_keys(mine, theirs, key + ".")
        elif mine != theirs:
            out.append(key)
    return out


def record(config: Any, profile: str, asked: str, written: dict[str, Any],
           sources: dict[str, str]) -> None:
    """Keep on ``config`` which profile applied (and was asked for), what it wrote and where
    the user's keys came from."""
    label = f"profile {profile}"
    object.__setattr__(config, _ATTR, {
        "profile": profile, "asked": asked, "user": dict(sources),
        "filled": {key: (label, value) for key, value in written.items()}})


def fill_defaults(config: Any, values: dict[str, Any], label: str) -> None:
    """Set each dotted key of ``values`` on ``config`` unless the user set it: a key still at
    the class's default (or at what a profile gave it) takes the value, and ``label`` is
    recorded as its source. An environment's ``defaults`` go through here."""
    prov = getattr(config, _ATTR, None) or {"profile": None, "user": {}, "filled": {}}
    preset = type(config)()
    for key, value in values.items():
        current, default = _get(config, key), _get(preset, key)
        if current is _UNSET or key in prov["user"]:
            continue
        given = prov["filled"].get(key, (None, _UNSET))[1]
        if current == default or current == given:
            *path, name = key.split(".")
            target = config
            for part in path:
                target = getattr(target, part)
            setattr(target, name, value)
            prov["filled"][key] = (label, value)
    object.__setattr__(config, _ATTR, prov)


def source_of(config: Any, key: str) -> str:
    """Where ``key``'s value came from: ``--set``, ``config FILE:LINE``, ``profile real``,
    ``env NAME``, ``preset default``, or ``set in code``."""
    prov = getattr(config, _ATTR, None) or {"user": {}, "filled": {}}
    value = _get(config, key)
    label, given = prov["filled"].get(key, (None, _UNSET))
    if label is not None and value == given:
        return label
    where = prov["user"].get(key)
    if where is None and value != _get(type(config)(), key):  # a section set as a whole
        parents = [".".join(key.split(".")[:i]) for i in range(key.count("."), 0, -1)]
        where = next((prov["user"][p] for p in parents if p in prov["user"]), None)
        if where is None:
            return "set in code"
    if where is None:
        return PRESET
    if where.startswith("--set"):
        return "--set"
    return where if where == "the base config" else f"config {where}"


def profile_of(config: Any) -> str | None:
    """The profile a resolved config was given (None: built in code)."""
    return (getattr(config, _ATTR, None) or {}).get("profile")


def shown_keys(config: Any) -> list[str]:
    """The keys a run prints at start: the model, every key a profile sets, the batch."""
    keys = ["actor.path"]
    for table in getattr(type(config), "profiles", {}).values():
        keys += [k for k in table if k not in keys]
    keys += [k for k in ("run.batch_size", "run.epochs", "run.max_steps") if k not in keys]
    return [k for k in keys if _get(config, k) is not _UNSET]


def describe(config: Any) -> str:
    """One block: the values that matter and where each came from."""
    prov = getattr(config, _ATTR, None) or {}
    profile = prov.get("profile") or "tiny"
    if prov.get("asked") != "auto":
        why = f"--profile {profile}" if prov.get("asked") else "built in code"
    elif profile == "real":
        why = "auto: actor.path is set; --profile tiny: the tiny task's values"
    else:
        why = "auto: no actor.path; --profile real: a real model's values"
    rows = [(k, _show(_get(config, k)), source_of(config, k)) for k in shown_keys(config)]
    width = max((len(k) for k, _, _ in rows), default=0)
    vwidth = max((len(v) for _, v, _ in rows), default=0)
    lines = [f"settings, profile {profile} ({why}):"]
    lines += [f"  {k:<{width}}  {v:<{vwidth}}  {src}" for k, v, src in rows]
    return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "null" if value is None else str(value)


def _get(obj: Any, key: str) -> Any:
    for part in key.split("."):
        if obj is None or not hasattr(obj, part):
            return _UNSET
        obj = getattr(obj, part)
    return obj


def _actor_path(tree: dict[str, Any]) -> bool:
    actor = tree.get("actor")
    path = actor.get("path") if isinstance(actor, dict) else getattr(actor, "path", None)
    if isinstance(path, RawValue):
        try:
            path = yaml.safe_load(path.text) if path.text.strip() else None
        except yaml.YAMLError:
            path = path.text
    return bool(path)
