"""Errors meant for people: the CLI prints their message without a traceback."""


class RlcoreError(Exception):
    """Base of every user-facing error: says what was wrong, where, and what to do."""


class ConfigError(RlcoreError):
    """A config key or value is wrong."""


class UnknownItemError(RlcoreError, LookupError):
    """A registry lookup named something no plugin registers."""


class PluginConflictError(RlcoreError):
    """Two plugins register the same name without an explicit override."""


class PluginLoadError(RlcoreError):
    """A plugin failed to load while strict mode is on."""


class DataError(RlcoreError):
    """User data is malformed: names the file, line, field and expectation."""


class ModelLoadError(RlcoreError):
    """A model directory is missing files, has an unknown type or mismatched shapes."""


class CheckpointError(RlcoreError):
    """A checkpoint is missing, incomplete, damaged or does not match the run."""


class DiskFullError(CheckpointError):
    """A write ran out of room (full disk, quota, file-size limit); ``remedy`` says what to do.

    Checkpoints remove their partial directory first; see ``rlcore.runtime.diskspace``."""

    def __init__(self, message: str, remedy: str = "Free some space"):
        super().__init__(message)
        self.remedy = remedy


class PluginHookExit(RlcoreError):
    """A plugin called ``sys.exit()`` inside a lifecycle hook; the run stops, naming it."""


class RenamedAttributeWarning(FutureWarning):
    """A plugin used an attribute's name from an older plugin API; the new name is given."""


class RenamedKeyWarning(FutureWarning):
    """A config key was renamed; the old name still works (the CLI prints one line)."""
