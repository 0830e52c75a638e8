"""Discovers plugins through entry points, loads them one at a time and records their status.

A plugin that fails to import (even by calling ``sys.exit()`` or hanging), needs
another core version, or is blocked gets a status and a one-line reason; it never
takes the CLI down (unless strict mode). Every hook, registration or lifecycle, is
called through pluggy's relay, with each plugin's implementation isolated so that
one plugin's failure is reported under its name and the others still run.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

import rlcore
from rlcore.errors import PluginConflictError, PluginHookExit, PluginLoadError
from rlcore.plugins import hookspecs
from rlcore.plugins.markers import ENTRY_POINT_GROUP, PROJECT
from rlcore.plugins.records import KIND_OF_HOOK, KINDS, Kind, Record

log = logging.getLogger(__name__)

ENV_BLOCK = "RLCORE_PLUGINS_BLOCK"
ENV_ALLOW = "RLCORE_PLUGINS_ALLOW"
ENV_STRICT = "RLCORE_PLUGINS_STRICT"
ENV_IMPORT_TIMEOUT = "RLCORE_PLUGIN_IMPORT_TIMEOUT"
# a plugin's top level should not import torch; `--version` and `--help` never wait (cli/app.py)
DEFAULT_IMPORT_TIMEOUT_S = 10.0
# Lifecycle hooks of a run: sys.exit() in one of these stops the run; elsewhere it only warns.
RUN_HOOKS = frozenset({"rlcore_run_start", "rlcore_step_end", "rlcore_run_end"})

ACTIVE, DISABLED, INCOMPATIBLE, ERROR = "active", "disabled", "incompatible", "error"


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


class _ImportTimeout(BaseException):
    """Raised inside a plugin's import when it runs past the time limit (BaseException, so
    that a plugin's ``except Exception`` cannot swallow it)."""


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the body with :class:`_ImportTimeout` after ``seconds`` (POSIX main thread;
    elsewhere, or when another timer is already running, there is no limit)."""
    usable = (
        seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    )
    if not usable:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise _ImportTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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
        if req.name.lower().replace("_", "-") != "rlcore":
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # e.g. an extra's requirement, or one for another Python
        if req.specifier and not req.specifier.contains(rlcore.__version__, prereleases=True):
            return (
                f"needs rlcore{req.specifier}, but rlcore {rlcore.__version__} is installed; "
                f"upgrade the plugin or rlcore"
            )
    return None


def _api_problem(plugin: Any) -> tuple[str, str] | None:
    """``(status, reason)`` when ``plugin``, which declares ``RLCORE_API`` (the plugin API
    versions it is written for: an int or a tuple of ints), cannot run on this core; None
    when it can or does not say."""
    declared = getattr(plugin, "RLCORE_API", None)
    if declared is None:
        return None
    versions = (declared,) if isinstance(declared, int) else declared
    if not isinstance(versions, tuple | list) or not versions or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in versions):
        return ERROR, (f"RLCORE_API must be an int or a tuple of ints (plugin API versions), "
                       f"got {declared!r}")
    if rlcore.API_VERSION in versions:
        return None
    written = "/".join(str(v) for v in sorted(versions))
    return INCOMPATIBLE, (f"written for plugin API {written}, but rlcore {rlcore.__version__} "
                          f"has plugin API {rlcore.API_VERSION}; update the plugin (CHANGELOG.md "
                          f"says what changed) or install an rlcore with plugin API {written}")


class PluginManager:
    """Loads ``rlcore`` entry points and builds one registry per kind of record."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        self.blocked = _names_from_env(ENV_BLOCK, self.env)
        self.allowed = _names_from_env(ENV_ALLOW, self.env)
        self.strict = self.env.get(ENV_STRICT, "").lower() in {"1", "true", "yes", "on"}
        self.import_timeout = _seconds(self.env.get(ENV_IMPORT_TIMEOUT), DEFAULT_IMPORT_TIMEOUT_S)
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        # Every record registered under each name, by kind; several means an override or a conflict.
        self.registries: dict[str, dict[str, list[_Entry]]] = {kind: {} for kind in KINDS}
        self._objects: dict[str, Any] = {}  # plugin name -> the object its hooks came from
        self._origin: dict[int, PluginInfo] = {}  # id(record) -> plugin, during one collection
        self._failures: dict[str, tuple[str, str | None]] = {}  # plugin -> (reason, traceback)
        self._warned: set[tuple[str, str]] = set()
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
        self._collect()

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
            with _time_limit(self.import_timeout):
                obj = ep.load()
        except _ImportTimeout:
            reason = (f"import did not finish within {self.import_timeout:g} s and was stopped; "
                      f"fix the plugin, block it with {ENV_BLOCK}={info.name}, or raise "
                      f"{ENV_IMPORT_TIMEOUT}")
            log.warning("plugin %r (%s): %s", info.name, info.origin, reason)
            self._fail(info, reason)
            return
        except BaseException as exc:  # a broken plugin, even one calling sys.exit(), must not take the CLI down
            self._fail(info, f"import failed: {_describe(exc)}")
            return
        problem = _api_problem(obj)
        if problem:  # imported (its top level only), never registered
            info.status, info.reason = problem
            self._maybe_raise(info)
            return
        self._add_plugin(obj, info)

    # -- registration ----------------------------------------------------------------

    def register(self, plugin: Any, name: str | None = None) -> PluginInfo:
        """Register an in-process plugin object or module (tests, notebooks)."""
        module_name = getattr(plugin, "__name__", type(plugin).__name__)
        info = PluginInfo(name=name or module_name, module=module_name)
        self.plugins.append(info)
        if self._gate(info) and self._add_plugin(plugin, info):
            self._collect()
        return info

    def _add_plugin(self, obj: Any, info: PluginInfo) -> bool:
        """Register ``obj``'s hooks with pluggy, each wrapped by :meth:`_isolated`."""
        try:
            self.pm.register(self._proxy(obj, info), name=info.name)
        except Exception as exc:
            self._fail(info, f"hook validation failed: {exc}")
            return False
        self._objects[info.name] = obj
        return True

    def _proxy(self, obj: Any, info: PluginInfo) -> Any:
        """An object with ``obj``'s hook implementations, each isolated under ``info``'s name.

        Wrappers (``wrapper=True`` / ``hookwrapper=True``) are kept as they are: they see
        the whole call and may reorder, filter or add records.
        """
        from types import SimpleNamespace

        hooks: dict[str, Any] = {}
        for attr in dir(obj):
            opts = self.pm.parse_hookimpl_opts(obj, attr)
            if opts is None:
                continue
            fn = getattr(obj, attr)
            hooks[attr] = fn if opts.get("wrapper") or opts.get("hookwrapper") else (
                self._isolated(fn, attr, info, opts))
        return SimpleNamespace(**hooks)

    def _isolated(self, fn: Any, hook: str, info: PluginInfo, opts: Any) -> Any:
        """``fn`` such that its failure is charged to ``info`` and never stops the other plugins.

        A registration hook that raises (even ``SystemExit``) or returns something other
        than its records marks the plugin ``error``. Any other hook that raises is logged
        as a warning naming the plugin; ``sys.exit()`` in a run's hook (:data:`RUN_HOOKS`)
        stops the run with :class:`PluginHookExit`, which names the plugin.
        """
        kind = KIND_OF_HOOK.get(hook)

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = fn(*args, **kwargs)
            except KeyboardInterrupt:
                if kind is None:
                    raise  # Ctrl-C during a run stops the run
                self._failures[info.name] = (f"{hook}() raised KeyboardInterrupt", traceback.format_exc())
                return None
            except BaseException as exc:
                if kind is not None:
                    self._failures[info.name] = (f"{hook}() raised {_describe(exc)}", traceback.format_exc())
                    return None
                if isinstance(exc, SystemExit) and hook in RUN_HOOKS:
                    raise PluginHookExit(
                        f"plugin {info.name!r} ({info.origin}) called sys.exit({exc.code!r}) in "
                        f"{hook}; the run stops here"
                    ) from exc
                self._warn_once(info, hook, exc)
                return None
            if kind is None:
                return result
            problem = _check_records(result, kind)
            if problem:
                self._failures[info.name] = (problem, None)
                return None
            for record in result:
                self._origin[id(record)] = info
            return list(result)

        setattr(call, f"{PROJECT}_impl", opts)
        return call

    def _warn_once(self, info: PluginInfo, hook: str, exc: BaseException) -> None:
        first = (info.name, hook) not in self._warned
        self._warned.add((info.name, hook))
        if first:
            log.warning(
                "plugin %r (%s): %s raised %s; the other plugins' hooks still ran "
                "(later failures of this hook are not repeated)",
                info.name, info.origin, hook, _describe(exc),
                exc_info=(type(exc), exc, exc.__traceback__),
            )

    def _collect(self) -> None:
        """Call every registration hook through the relay and rebuild the registries.

        A plugin whose hook fails is marked ``error``, unregistered, and the hooks are
        called again without it, so a wrapper never sees its half-registered records.
        """
        while True:
            self._failures.clear()
            self._origin.clear()
            found = {kind: self._call_registration(kind) for kind in KINDS.values()}
            if not self._failures:
                break
            for name, (reason, trace) in list(self._failures.items()):
                info = next(p for p in self.plugins if p.name == name)
                self.pm.unregister(name=name)
                self._objects.pop(name, None)
                info.status, info.reason, info.traceback = ERROR, reason, trace
                self._maybe_raise(info)
        by_name = {p.name: p for p in self.plugins}
        for info in self.plugins:
            if info.status == ACTIVE:
                info.reason, info.provides = "", {}
        self.registries = {kind: {} for kind in KINDS}
        for kind, results in found.items():
            for record in _flatten(results):
                info = self._origin.get(id(record)) or self._wrapper_owner(kind, by_name)
                if info is None or not isinstance(record, kind.record):
                    continue
                self.registries[kind.plural].setdefault(record.name, []).append(_Entry(record, info))
                info.provides.setdefault(kind.plural, []).append(record.name)
        for registry in self.registries.values():
            for entries in registry.values():
                entries.sort(key=lambda e: e.plugin.origin)  # not pluggy's (last-registered-first) order
        self._origin.clear()
        for name, obj in self._objects.items():
            lifecycle = [h for h in _lifecycle_hooks() if self.pm.parse_hookimpl_opts(obj, h)]
            if lifecycle:
                by_name[name].provides["hooks"] = [h.removeprefix("rlcore_") for h in lifecycle]
        self._note_conflicts()

    def _call_registration(self, kind: Kind) -> Any:
        """Call ``kind``'s hook through the relay; a wrapper that raises fails its plugins."""
        try:
            return getattr(self.pm.hook, kind.hook)()
        except Exception as exc:
            for impl in getattr(self.pm.hook, kind.hook).get_hookimpls():
                if impl.wrapper or impl.hookwrapper:
                    self._failures[impl.plugin_name] = (
                        f"{kind.hook}() wrapper raised {_describe(exc)}", traceback.format_exc())
            return []

    def _wrapper_owner(self, kind: Kind, by_name: dict[str, PluginInfo]) -> PluginInfo | None:
        """The plugin of the outermost wrapper of ``kind``'s hook: records no plain
        implementation returned were made by a wrapper."""
        wrappers = [i for i in getattr(self.pm.hook, kind.hook).get_hookimpls()
                    if i.wrapper or i.hookwrapper]
        return by_name.get(wrappers[-1].plugin_name) if wrappers else None

    def _note_conflicts(self) -> None:
        """Add each conflict to the reason of every plugin in it; raise in strict mode."""
        for kind, registry in self.registries.items():
            for name, entries in registry.items():
                message = self.conflict(kind, name)
                if message is None:
                    continue
                if self.strict:
                    raise PluginConflictError(message)
                for info in {id(e.plugin): e.plugin for e in entries}.values():
                    info.reason = (info.reason + "; " if info.reason else "") + message

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

    def winner(self, kind: str, name: str) -> _Entry | None:
        """The entry that ``name`` resolves to: the only one, or the only override;
        None when several plugins claim the name (see :meth:`conflict`)."""
        entries = self.registries[kind].get(name, [])
        overrides = [e for e in entries if e.record.override]
        if len(entries) == 1:
            return entries[0]
        return overrides[0] if len(overrides) == 1 else None

    def conflict(self, kind: str, name: str) -> str | None:
        """Why ``name`` cannot be used, when more than one plugin registers it, else None."""
        entries = self.registries[kind].get(name, [])
        if not entries or self.winner(kind, name) is not None:
            return None
        origins = [e.plugin.origin for e in entries]
        who = ("both " if len(origins) == 2 else "") + " and ".join(
            [", ".join(origins[:-1]), origins[-1]])
        if sum(e.record.override for e in entries) > 1:
            return (f"{KINDS[kind].singular} {name!r} is registered with override=True by {who}; "
                    f"uninstall all but one, or block them with {ENV_BLOCK}")
        return (f"{KINDS[kind].singular} {name!r} is registered by {who}; uninstall one, block "
                f"one with {ENV_BLOCK}, or set override=True on the record that should win")

    def entry(self, kind: str, name: str) -> _Entry:
        """The registry entry of ``name``; unknown names suggest close matches."""
        from rlcore.plugins.lookup import unknown_item_error

        if kind not in self.registries:
            raise unknown_item_error("kind", kind, list(self.registries))
        if name not in self.registries[kind]:
            raise unknown_item_error(kind, name, list(self.registries[kind]))
        entry = self.winner(kind, name)
        if entry is None:
            raise PluginConflictError(self.conflict(kind, name))
        return entry


def _seconds(text: str | None, default: float) -> float:
    """``text`` as seconds (0 or less: no limit), or ``default`` when unset or not a number."""
    try:
        return float(text) if text else default
    except ValueError:
        log.warning("%s=%r is not a number of seconds; using %g", ENV_IMPORT_TIMEOUT, text, default)
        return default


def _describe(exc: BaseException) -> str:
    """``Type: message``, or ``sys.exit(code)`` for a SystemExit."""
    if isinstance(exc, SystemExit):
        return f"sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"


def _flatten(results: Any) -> list[Any]:
    """The records in a registration hook's results (one list per implementation)."""
    if not isinstance(results, list | tuple):
        return []
    return [r for result in results if isinstance(result, list | tuple) for r in result]


def _lifecycle_hooks() -> list[str]:
    """Every hookspec that is not a registration hook."""
    return [n for n in dir(hookspecs) if n.startswith("rlcore_") and n not in KIND_OF_HOOK]


def _check_records(records: Any, kind: Kind) -> str | None:
    """Return a problem description if a hook's return value is not a list of its records."""
    expected = kind.record.__name__
    if not isinstance(records, list | tuple):
        return f"{kind.hook}() returned {type(records).__name__}; expected a list of {expected}"
    for record in records:
        if not isinstance(record, kind.record):
            return f"{kind.hook}() returned a {type(record).__name__}; expected {expected}"
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

