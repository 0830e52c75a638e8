"""Old names of the plugin API that still work: each warns once per process, naming the new one.

``ModelHandle.engine`` (API 1) is ``ModelHandle.model``; ``Module.engine`` is
``Module.wrapped_model``. CHANGELOG.md lists what changed in each API version.
"""

from __future__ import annotations

import warnings

from rlcore.errors import RenamedAttributeWarning

_warned: set[str] = set()


def renamed(old: str, new: str, api: int) -> None:
    """Warn, the first time only, that ``old`` (plugin API ``api``) is now ``new``."""
    if old in _warned:
        return
    _warned.add(old)
    warnings.warn(f"{old} was renamed {new} in plugin API {api + 1}; use {new} (the old name "
                  "still works for now and goes away in a later release)",
                  RenamedAttributeWarning, stacklevel=3)
