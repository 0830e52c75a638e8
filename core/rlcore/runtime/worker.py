"""Moved to :mod:`rlcore.launch.worker`; this alias (and `python -m`) warns, to be removed."""

import sys
import warnings

from rlcore.launch import worker

warnings.warn("rlcore.runtime.worker moved to rlcore.launch.worker; import it from there",
              DeprecationWarning, stacklevel=2)
if __name__ == "__main__":
    sys.exit(worker.main())
sys.modules[__name__] = worker
