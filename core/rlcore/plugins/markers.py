"""The pluggy markers of the ``rlcore`` project."""

import pluggy

PROJECT = "rlcore"
ENTRY_POINT_GROUP = "rlcore"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
