"""Moved to :mod:`rlcore.launch.launcher`; this alias warns and will be removed."""

import sys
import warnings

from rlcore.launch import launcher

warnings.warn("rlcore.runtime.launcher moved to rlcore.launch.launcher; import it from there",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = launcher
