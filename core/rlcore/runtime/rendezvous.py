"""Moved to :mod:`rlcore.launch.rendezvous` (the ranks' side to :mod:`rlcore.runtime.distributed`).

This alias re-exports both, warns, and will be removed.
"""

import warnings

from rlcore.launch.rendezvous import *  # noqa: F403
from rlcore.runtime.distributed import (  # noqa: F401
    NODE_RANK_ENV,
    STORE_ENV,
    loopback_interface,
    use_loopback_transport,
    worker_store,
)

warnings.warn("rlcore.runtime.rendezvous moved to rlcore.launch.rendezvous; import it from there",
              DeprecationWarning, stacklevel=2)
