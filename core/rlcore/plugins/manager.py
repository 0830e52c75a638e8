"""Discovers plugins through entry points, loads them one at a time and records their status.

A plugin that fails to import, needs another core version, or is blocked gets a
status and a one-line reason; it never takes the CLI down (unless strict mode).
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

import rlcore
from rlcore.errors import PluginConflictError, PluginLoadError
from rlcore.plugins import hookspecs
from rlcore.plugins.markers import ENTRY_POINT_GROUP, PROJECT
from rlcore.plugins.records import HOOK_FOR_KIND, RECORD_TYPES, Record

ENV_BLOCK = "RLCORE_PLUGINS_BLOCK"
ENV_ALLOW = "RLCORE_PLUGINS_ALLOW"
ENV_STRICT = "RLCORE_PLUGINS_STRICT"

ACTIVE, DISABLED, INCOMPATIBLE, ERROR = "active", "disabled", "incompatible", "error"
LIFECYCLE_HOOKS = ("rlcore_run_start", "rlcore_step_end", "rlcore_run_end")


@dataclass
class PluginInfo:
    """What the manager knows about one plugin: where it comes from and how loading went."""

    name: str
    module: str
    dist: str | None = None
    version: str | None = None
    status: str = ACTIVE
    reason: str = ""
    traceback: str | None = None
    provides: dict[str, list[str]] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        """``dist version`` for messages, or the module for in-process plugins."""
        return f"{self.dist} {self.version}" if self.dist else f"{self.module} (in-process)"


@dataclass
class _Entry:
    record: Record
    plugin: PluginInfo


def _names_from_env(var: str, env: dict[str, str]) -> set[str]:
    return {n.strip() for n in env.get(var, "").split(",") if n.strip()}


def _core_requirement_problem(dist: metadata.Distribution | None) -> str | None:
    """Return why ``dist`` can't run on this core, judged from metadata alone, or None."""
    if dist is None:
        return None
    from packaging.requirements import InvalidRequirement, Requirement

    for line in dist.requires or []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.name.lower().replace("_", "-") != "rlcore" or req.marker is not None:
            continue
        if req.specifier and not req.specifier.contains(rlcore.__version__, prereleases=True):
            return (
                f"needs rlcore{req.specifier}, but rlcore {rlcore.__version__} is installed; "
                f"upgrade the plugin or rlcore"
            )
    return None


class PluginManager:
    """Loads ``rlcore`` entry points and builds one registry per kind of record."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        self.blocked = _names_from_env(ENV_BLOCK, self.env)
        self.allowed = _names_from_env(ENV_ALLOW, self.env)
        self.strict = self.env.get(ENV_STRICT, "").lower() in {"1", "true", "yes", "on"}
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.registries: dict[str, dict[str, _Entry]] = {kind: {} for kind in RECORD_TYPES}
        self.conflicts: dict[tuple[str, str], str] = {}
        self._loaded = False

    # -- discovery -------------------------------------------------------------------

    def load_entry_points(self) -> None:
        """Load every entry point of the ``rlcore`` group, one at a time (idempotent)."""
        if self._loaded:
            return
        self._loaded = True
        eps = sorted(
            metadata.entry_points(group=ENTRY_POINT_GROUP),
            key=lambda ep: (ep.name != "core", ep.name),
        )
        seen: set[tuple[str, str]] = set()
        for ep in eps:
            dist = getattr(ep, "dist", None)
            key = (ep.name, ep.value)
            if key in seen:  # the same distribution found twice on sys.path
                continue
            seen.add(key)
            self._load_one(ep, dist)

    def _gate(self, info: PluginInfo) -> bool:
        """Apply block/allow lists; return True when the plugin may load."""
        names = {info.name, info.dist or ""}
        if names & self.blocked:
            info.status, info.reason = DISABLED, f"blocked by {ENV_BLOCK}"
            return False
        if self.allowed and info.name != "core" and not names & self.allowed:
            info.status, info.reason = DISABLED, f"not listed in {ENV_ALLOW}"
            return False
        return True

    def _load_one(self, ep: metadata.EntryPoint, dist: metadata.Distribution | None) -> None:
        info = PluginInfo(
            name=ep.name,
            module=ep.value,
            dist=dist.metadata["Name"] if dist else None,
            version=dist.version if dist else None,
        )
        self.plugins.append(info)
        if not self._gate(info):
            return
        problem = _core_requirement_problem(dist)
        if problem:
            info.status, info.reason = INCOMPATIBLE, problem
            self._maybe_raise(info)
            return
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not take the CLI down
            self._fail(info, f"import failed: {type(exc).__name__}: {exc}")
            return
        self._register(obj, info)

    # -- registration ----------------------------------------------------------------

    def register(self, plugin: Any, name: str | None = None) -> PluginInfo:
        """Register an in-process plugin object or module (tests, notebooks)."""
        module_name = getattr(plugin, "__name__", type(plugin).__name__)
        info = PluginInfo(name=name or module_name, module=module_name)
        self.plugins.append(info)
        if self._gate(info):
            self._register(plugin, info)
        return info

    def unregister(self, info: PluginInfo) -> None:
        """Remove a plugin and everything it registered."""
        plugin = self.pm.get_plugin(info.name)
        if plugin is not None:
            self.pm.unregister(plugin, name=info.name)
        for registry in self.registries.values():
            for item_name in [n for n, e in registry.items() if e.plugin is info]:
                del registry[item_name]
        self.plugins.remove(info)

    def _register(self, obj: Any, info: PluginInfo) -> None:
        try:
            self.pm.register(obj, name=info.name)
        except Exception as exc:
            self._fail(info, f"hook validation failed: {exc}")
            return
        staged: list[Record] = []
        for kind, hook_name in HOOK_FOR_KIND.items():
            impl = getattr(obj, hook_name, None)
            if impl is None or self.pm.parse_hookimpl_opts(obj, hook_name) is None:
                continue
            try:
                records = impl()
            except Exception as exc:
                self.pm.unregister(obj, name=info.name)
                self._fail(info, f"{hook_name}() raised {type(exc).__name__}: {exc}")
                return
            problem = _check_records(records, kind, hook_name)
            if problem:
                self.pm.unregister(obj, name=info.name)
                self._fail(info, problem, with_traceback=False)
                return
            staged.extend(records)
        for record in staged:
            self._add_record(record, info)
        info.provides = {}
        for record in staged:
            info.provides.setdefault(record.kind, []).append(record.name)
        lifecycle = [h for h in LIFECYCLE_HOOKS if self.pm.parse_hookimpl_opts(obj, h) is not None]
        if lifecycle:
            info.provides["hooks"] = [h.removeprefix("rlcore_") for h in lifecycle]

    def _add_record(self, record: Record, info: PluginInfo) -> None:
        registry = self.registries[record.kind]
        existing = registry.get(record.name)
        if existing is not None and not record.override:
            message = (
                f"{record.kind[:-1]} {record.name!r} is registered by both "
                f"{existing.plugin.origin} and {info.origin}; uninstall one, block one with "
                f"{ENV_BLOCK}, or set override=True on the record that should win"
            )
            self.conflicts[(record.kind, record.name)] = message
            if self.strict:
                raise PluginConflictError(message)
            info.reason = (info.reason + "; " if info.reason else "") + message
            return
        registry[record.name] = _Entry(record, info)

    def _fail(self, info: PluginInfo, reason: str, with_traceback: bool = True) -> None:
        info.status, info.reason = ERROR, reason
        info.traceback = traceback.format_exc() if with_traceback else None
        self._maybe_raise(info)

    def _maybe_raise(self, info: PluginInfo) -> None:
        if self.strict:
            raise PluginLoadError(
                f"plugin {info.name!r} ({info.origin}) is {info.status}: {info.reason} "
                f"[strict mode: unset {ENV_STRICT} to continue without it]"
            )

    # -- lookups ---------------------------------------------------------------------

    def entry(self, kind: str, name: str) -> _Entry:
        """The registry entry of ``name``; unknown names suggest close matches."""
        from rlcore.plugins.lookup import unknown_item_error

        if kind not in self.registries:
            raise unknown_item_error("kind", kind, list(self.registries))
        conflict = self.conflicts.get((kind, name))
        if conflict:
            raise PluginConflictError(conflict)
        entry = self.registries[kind].get(name)
        if entry is None:
            raise unknown_item_error(kind, name, list(self.registries[kind]))
        return entry


def _check_records(records: Any, kind: str, hook_name: str) -> str | None:
    """Return a problem description if a hook's return value is not a list of its records."""
    expected = RECORD_TYPES[kind]
    if not isinstance(records, list | tuple):
        return f"{hook_name}() returned {type(records).__name__}; expected a list of {expected.__name__}"
    for record in records:
        if not isinstance(record, expected):
            return f"{hook_name}() returned a {type(record).__name__}; expected {expected.__name__}"
    return None


_manager: PluginManager | None = None


def get_manager() -> PluginManager:
    """The process-wide manager, with entry points loaded on first use."""
    global _manager
    if _manager is None:
        _manager = PluginManager()
        _manager.load_entry_points()
    return _manager


def reset_manager(manager: PluginManager | None = None) -> None:
    """Forget the process-wide manager (tests), or install a given one."""
    global _manager
    _manager = manager

