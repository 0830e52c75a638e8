"""Moved to :mod:`rlcore.launch.runlock`; this alias warns and will be removed."""

import sys
import warnings

from rlcore.launch import runlock

warnings.warn("rlcore.runtime.runlock moved to rlcore.launch.runlock; import it from there",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = runlock
