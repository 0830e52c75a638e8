"""Names that moved when the RL layer was reshaped (plugin API 2): the old imports keep
working for a while, with a DeprecationWarning naming the new place."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def forwarder(old: str, moves: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``old``: ``moves`` maps a name to ``"module:attr"``."""

    def __getattr__(name: str) -> Any:
        if name not in moves:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        module, _, attr = moves[name].partition(":")
        warnings.warn(f"{old}.{name} moved to {module}.{attr}; import it from there "
                      "(the old name goes away in a later release)", DeprecationWarning,
                      stacklevel=2)
        return getattr(importlib.import_module(module), attr)

    return __getattr__
