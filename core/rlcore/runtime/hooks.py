"""Lifecycle hooks: the runtime tells logger plugins about a run's start, steps and end."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def call_hook(name: str, **kwargs: Any) -> None:
    """Call lifecycle hook ``name`` on every plugin; a failing logger plugin only warns."""
    from rlcore.plugins.registry import hooks

    try:
        getattr(hooks(), name)(**kwargs)
    except Exception as exc:  # a broken logger must not lose the training run
        log.warning("lifecycle hook %s failed: %s: %s", name, type(exc).__name__, exc)
