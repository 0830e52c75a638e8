"""Pytest fixtures for plugin tests, loaded automatically through the ``pytest11`` entry point.

* ``rlcore_plugins`` — a fresh plugin manager for the test; ``.register(obj)`` adds an
  in-process plugin, ``.reload()`` rescans entry points.
* ``fake_distribution`` — writes an installed-looking distribution (dist-info with
  entry points) and its module into a directory on ``sys.path``.
* ``one_torch_thread`` — runs the test with one torch thread: tiny models gain nothing
  from more, and on shared cores oversubscribed BLAS threads stall each other.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rlcore.plugins.manager import PluginInfo, PluginManager, get_manager, reset_manager


class PluginSandbox:
    """A plugin manager scoped to one test."""

    def __init__(self, env: dict[str, str] | None, load_entry_points: bool) -> None:
        self.env = env
        self._load = load_entry_points
        self.manager = self._fresh()

    def _fresh(self) -> PluginManager:
        manager = PluginManager(env=self.env)
        if self._load:
            manager.load_entry_points()
        reset_manager(manager)
        return manager

    def register(self, plugin: Any, name: str | None = None) -> PluginInfo:
        """Register an in-process plugin (module or object with ``@rlcore.hookimpl`` methods)."""
        return self.manager.register(plugin, name=name)

    def reload(self, env: dict[str, str] | None = None) -> PluginManager:
        """Rebuild the manager from entry points, optionally with another environment."""
        if env is not None:
            self.env = env
        importlib.invalidate_caches()
        self.manager = self._fresh()
        return self.manager

    def status(self) -> dict[str, PluginInfo]:
        """Plugins by name."""
        return {p.name: p for p in self.manager.plugins}


@pytest.fixture
def rlcore_plugins() -> Iterator[PluginSandbox]:
    """A fresh plugin manager with the installed entry points, restored after the test."""
    previous = get_manager()
    sandbox = PluginSandbox(env=None, load_entry_points=True)
    try:
        yield sandbox
    finally:
        reset_manager(previous)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """``torch.set_num_threads(1)`` for the test, restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Make ``fake_distribution(name, source, ...)`` install a fake plugin distribution."""
    site = tmp_path / "fake-site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    created: list[str] = []

    def make(
        name: str,
        source: str,
        version: str = "0.1.0",
        requires: tuple[str, ...] = ("rlcore>=0.1",),
        entry_name: str | None = None,
    ) -> Path:
        module = f"rlcore_plugin_{name.replace('-', '_')}"
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        dist_info = site / f"rlcore_plugin_{name.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        requires_lines = "".join(f"Requires-Dist: {r}\n" for r in requires)
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: rlcore-plugin-{name}\nVersion: {version}\n{requires_lines}"
        )
        (dist_info / "entry_points.txt").write_text(f"[rlcore]\n{entry_name or name} = {module}\n")
        created.append(module)
        importlib.invalidate_caches()
        return dist_info

    yield make
    for module in created:
        sys.modules.pop(module, None)
