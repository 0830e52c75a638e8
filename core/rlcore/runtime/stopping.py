"""SIGTERM / SIGINT during training: save at the next step boundary, then stop.

The first signal asks every rank to stop: at the end of the current step the ranks
agree (one all-reduce), save a checkpoint together, write the summary as
``interrupted`` and exit with 128 + the signal number (143, 130). The same signal
again, a second or more later, stops at once without saving; and if no step boundary
comes within ``RLCORE_STOP_GRACE_S`` seconds (default 300) the process exits anyway.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

from rlcore.errors import RlcoreError

GRACE_ENV = "RLCORE_STOP_GRACE_S"
DEFAULT_GRACE_S = 300.0
SIGNALS = (signal.SIGTERM, signal.SIGINT)
REPEAT_AFTER_S = 1.0  # copies of one signal (a whole process group, srun) arrive together


class RunInterrupted(RlcoreError):
    """The run stopped on a signal; ``exit_code`` is 128 + its number."""

    def __init__(self, signum: int, message: str, checkpoint: str | None = None):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum
        self.checkpoint = checkpoint


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopOnSignal:
    """While active (``with``), SIGTERM/SIGINT set :attr:`signum` instead of killing the process."""

    def __init__(self, rank: int = 0):
        self.rank = rank
        self.signum: int | None = None
        self.first_at = 0.0
        self.finished = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        self.finished = True
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.finished:
            return
        if self.signum is None:
            self.signum, self.first_at = signum, time.monotonic()
            grace = float(os.environ.get(GRACE_ENV, DEFAULT_GRACE_S))
            if self.rank == 0:
                print(f"\nrlcore: {signal_name(signum)}: saving a checkpoint at the end of this "
                      f"step, then stopping (within {grace:.0f}s; send it again to stop now)",
                      file=sys.stderr, flush=True)
            watchdog = threading.Timer(grace, self._give_up, args=(grace,))
            watchdog.daemon = True
            watchdog.start()
        elif time.monotonic() - self.first_at >= REPEAT_AFTER_S:
            self.finished = True
            raise RunInterrupted(signum, f"stopped by {signal_name(signum)} (sent twice) before "
                                 "a step boundary; nothing was saved")

    def _give_up(self, grace: float) -> None:
        if self.finished:
            return
        print(f"rlcore: no step boundary within {grace:.0f}s of {signal_name(self.signum)}; "
              f"stopping without a checkpoint (set {GRACE_ENV} to wait longer)",
              file=sys.stderr, flush=True)
        os._exit(128 + int(self.signum))

    def requested(self) -> int | None:
        """The signal any rank received, agreed on by all (a collective: call on every rank)."""
        from rlcore.runtime import distributed

        got = distributed.all_reduce([float(self.signum or 0)], "max")[0]
        return int(got) or None
