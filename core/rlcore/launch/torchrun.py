"""``python -m rlcore.launch.torchrun ARGS``: torchrun (``torch.distributed.run``) as rlcore starts it.

Three things differ from plain torchrun, each so that rlcore's launcher can keep its
promises about processes:

- SIGTERM / SIGINT are passed on to the ranks, which save at the next step boundary
  (torchrun would send SIGTERM itself and SIGKILL them 30 s later);
- it gets SIGTERM when the ``rlcore`` process that started it dies (Linux), so no rank
  outlives ``rlcore``;
- when ranks fail it writes each one's exit code and signal to ``RLCORE_FAILURES_FILE``
  (JSON), so a rank killed by a signal is named, not the peer that lost its connection.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

FAILURES_ENV = "RLCORE_FAILURES_FILE"


def set_parent_death_signal(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent is already gone
        os.kill(os.getpid(), sig)


def forward_to_ranks(signum: int, frame: Any) -> None:
    """Pass ``signum`` on to every rank (this process's children)."""
    import psutil

    for child in psutil.Process().children():
        try:
            child.send_signal(signum)
        except psutil.NoSuchProcess:
            pass


def failure_records(failures: dict[int, Any]) -> list[dict[str, Any]]:
    """torchrun's ``ProcessFailure`` of each failed rank as JSON-ready dicts."""
    out = []
    for rank, f in sorted(failures.items()):
        out.append({
            "rank": rank, "local_rank": f.local_rank, "pid": f.pid, "exitcode": f.exitcode,
            "signal": f.signal_name() if f.exitcode < 0 else None,
            "error_file": f.error_file if os.path.isfile(f.error_file or "") else None,
            "timestamp": f.timestamp,
        })
    return out


def main(argv: list[str] | None = None) -> int:
    set_parent_death_signal()
    # torchrun's own handlers would terminate the ranks; ours pass the signal on instead.
    os.environ["TORCHELASTIC_SIGNALS_TO_HANDLE"] = "SIGHUP,SIGQUIT"
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward_to_ranks)
    from torch.distributed import run
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    try:
        run.main(argv)
    except ChildFailedError as exc:
        path = os.environ.get(FAILURES_ENV)
        if path:
            with open(path, "w") as f:
                json.dump(failure_records(exc.failures), f, indent=1)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
