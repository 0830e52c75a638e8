"""Lifecycle hooks: the runtime tells logger plugins about a run's start, steps and end."""

from __future__ import annotations

import logging
from typing import Any

from rlcore.errors import PluginHookExit

log = logging.getLogger(__name__)


def call_hook(name: str, **kwargs: Any) -> None:
    """Call lifecycle hook ``name`` on every plugin through pluggy's relay.

    Each plugin's implementation is isolated by the plugin manager: one that raises is
    logged as a warning naming the plugin, and the others still run. A plugin calling
    ``sys.exit()`` in a hook stops the run with :class:`PluginHookExit`, naming it.
    """
    from rlcore.plugins.registry import hooks

    try:
        getattr(hooks(), name)(**kwargs)
    except PluginHookExit:
        raise
    except Exception as exc:  # only a hook wrapper gets here: it sees every plugin's call
        log.warning("a wrapper of lifecycle hook %s failed: %s: %s", name, type(exc).__name__, exc)
