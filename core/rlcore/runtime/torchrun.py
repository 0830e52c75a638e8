"""Moved to :mod:`rlcore.launch.torchrun`; this alias (and `python -m`) warns, to be removed."""

import sys
import warnings

from rlcore.launch import torchrun

warnings.warn("rlcore.runtime.torchrun moved to rlcore.launch.torchrun; import it from there",
              DeprecationWarning, stacklevel=2)
if __name__ == "__main__":
    sys.exit(torchrun.main())
sys.modules[__name__] = torchrun
