"""One run per run directory: ``RUN_DIR/run.lock`` names the process that holds it.

A second ``rlcore train`` on a run dir in use refuses to start and names the holder.
A lock whose process has died (a SIGKILLed run) is taken over, with a message.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from rlcore.errors import DiskFullError, RlcoreError
from rlcore.runtime.diskspace import writing

LOCK_NAME = "run.lock"


class RunDirLockedError(RlcoreError):
    """Another live process holds the run directory."""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunDirLock:
    """Held from ``acquire`` to ``release`` (or the end of a ``with`` block)."""

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / LOCK_NAME
        self.held = False

    def acquire(self) -> RunDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
              "command": " ".join(sys.argv)}
        tmp = self.path.with_name(f".{LOCK_NAME}.{os.getpid()}")
        try:
            with writing(tmp):
                tmp.write_text(json.dumps(me))
                for _ in range(3):
                    try:
                        os.link(tmp, self.path)  # atomic: the lock appears with its content
                    except FileExistsError:
                        self._check_holder()
                        continue
                    self.held = True
                    return self
        except DiskFullError as err:  # the same line as a checkpoint's, before anything ran
            raise DiskFullError(f"{err}; the run did not start and {self.path.parent} is as it "
                                f"was. {err.remedy}, then run again", remedy=err.remedy) from None
        finally:
            tmp.unlink(missing_ok=True)
        raise RunDirLockedError(f"could not take {self.path}: other runs keep taking it")

    def _check_holder(self) -> None:
        """Raise if a live process holds the lock; remove it (saying so) if its holder died."""
        try:
            holder = json.loads(self.path.read_text() or "{}")
        except FileNotFoundError:
            return
        except ValueError:
            holder = {}
        pid, host = int(holder.get("pid", 0) or 0), holder.get("host", "")
        same_host = host == socket.gethostname()
        if pid and (pid_alive(pid) or not same_host):
            where = "" if same_host else f" on {host}"
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
            raise RunDirLockedError(
                f"{self.path.parent} is in use by another run: pid {pid}{where}, started "
                f"{since} ({holder.get('command', '?')}). Wait for it, stop it, or use another "
                f"--run-dir; if that process is gone, delete {self.path}.")
        why = f"pid {pid}, which is no longer running" if pid else "an unreadable lock"
        print(f"rlcore: taking over {self.path} from {why}", file=sys.stderr, flush=True)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def release(self) -> None:
        """Remove the lock if this process still holds it."""
        if not self.held:
            return
        self.held = False
        try:
            if json.loads(self.path.read_text()).get("pid") == os.getpid():
                self.path.unlink()
        except (OSError, ValueError):
            pass

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
