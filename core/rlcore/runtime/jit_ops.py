"""DeepSpeed's C++ ops that are compiled on first use (``torch.utils.cpp_extension``).

- ``deepspeed_shm_comm`` serves only DeepSpeed's tensor-parallel inference all-reduce,
  which rlcore never calls, so it is never built (DeepSpeed otherwise compiles it in
  every process group it creates, for minutes);
- ops that a run does need (``cpu_adam`` for ``cpu_optimizer=deepspeed``) are built
  once per environment, with a message, and never wait forever on the lock file
  that a build killed midway leaves behind.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

from rlcore.errors import RlcoreError

SHM_COMM = "deepspeed_shm_comm"
LOCK_TIMEOUT_ENV = "RLCORE_JIT_LOCK_TIMEOUT_S"
DEFAULT_LOCK_TIMEOUT_S = 900.0


class BuildLockError(RlcoreError):
    """Another process has held an op's build lock for longer than the timeout."""


def skip_shm_comm() -> None:
    """Tell DeepSpeed that its shared-memory comm op is unavailable, so it is never built.

    DeepSpeed builds it in its ``TorchBackend`` only if ``deepspeed.ops.__compatible_ops__``
    says the op is compatible; setting that one entry first also skips probing every op,
    which runs the compiler for each and took seconds on every start.
    """
    import deepspeed.ops

    ops = vars(deepspeed.ops)
    if "__compatible_ops__" not in ops:
        ops["__compatible_ops__"] = _LazyCompatibleOps()
    ops["__compatible_ops__"][SHM_COMM] = False


class _LazyCompatibleOps(dict):
    """``deepspeed.ops.__compatible_ops__`` that probes the other ops (compiler runs, ~5-10 s)
    only when someone asks about one of them."""

    def _probe(self) -> None:
        if not getattr(self, "_probed", False):
            import deepspeed.ops

            self._probed = True
            known = dict(self)
            self.update(deepspeed.ops._probe_compatible_ops())
            self.update(known)

    def __getitem__(self, key):
        if not dict.__contains__(self, key):
            self._probe()
        return super().__getitem__(key)

    def get(self, key, default=None):
        if not dict.__contains__(self, key):
            self._probe()
        return super().get(key, default)

    def __iter__(self):
        self._probe()
        return super().__iter__()

    def __len__(self):
        self._probe()
        return super().__len__()

    def items(self):
        self._probe()
        return super().items()

    def keys(self):
        self._probe()
        return super().keys()

    def values(self):
        self._probe()
        return super().values()


def extensions_dir() -> Path:
    """Where compiled ops live: ``TORCH_EXTENSIONS_DIR``, else a folder of this environment.

    torch's default (``~/.cache/torch_extensions``) is shared by every checkout and venv,
    whose differing torch/DeepSpeed versions then rebuild each other's ops.
    """
    if "TORCH_EXTENSIONS_DIR" not in os.environ:
        env_id = hashlib.sha1(sys.prefix.encode()).hexdigest()[:12]
        os.environ["TORCH_EXTENSIONS_DIR"] = str(
            Path.home() / ".cache" / "torch_extensions" / f"rlcore-env-{env_id}")
    return Path(os.environ["TORCH_EXTENSIONS_DIR"])


def prepare_build(name: str, timeout_s: float | None = None) -> None:
    """Before DeepSpeed loads op ``name``: say when it will compile, and clear a dead lock.

    A lock file no process holds open is left by a killed build and is removed (with a
    message). One held by a live build is waited for, up to ``timeout_s`` (default
    ``RLCORE_JIT_LOCK_TIMEOUT_S``, 900 s), then a :class:`BuildLockError` names it.
    """
    build = extensions_dir() / name
    if timeout_s is None:
        timeout_s = float(os.environ.get(LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT_S))
    wait_for_lock(build / "lock", timeout_s)
    if not (build / f"{name}.so").is_file():
        print(f"rlcore: compiling DeepSpeed's {name} op into {build} (once per environment; "
              "this takes minutes)", file=sys.stderr, flush=True)


def wait_for_lock(lock: Path, timeout_s: float, poll_s: float = 0.5) -> None:
    """Return once ``lock`` is gone; remove it if no process holds it; raise after ``timeout_s``."""
    start = time.monotonic()
    said = False
    while lock.exists():
        holders = lock_holders(lock)
        if holders == []:
            try:
                lock.unlink()
                print(f"rlcore: removed {lock}, left by a build that was killed midway",
                      file=sys.stderr, flush=True)
            except FileNotFoundError:
                pass
            return
        waited = time.monotonic() - start
        if waited >= timeout_s:
            who = f"process {', '.join(map(str, holders))}" if holders else "another process"
            raise BuildLockError(
                f"{lock} has been held by {who} for over {timeout_s:.0f}s. If no build is "
                f"running, delete it (rm {lock}); to wait longer, set {LOCK_TIMEOUT_ENV}.")
        if not said:
            print(f"rlcore: waiting for another process to finish compiling into {lock.parent} "
                  f"(up to {timeout_s:.0f}s)", file=sys.stderr, flush=True)
            said = True
        time.sleep(poll_s)


def lock_holders(lock: Path) -> list[int] | None:
    """Pids of the processes that hold ``lock`` open (torch's build keeps it open while it
    builds), or None where that cannot be known (no ``/proc``)."""
    proc = Path("/proc")
    try:
        if not (proc / "self" / "fd").is_dir() or lock.stat().st_uid != os.getuid():
            return None
    except FileNotFoundError:
        return []
    target = os.path.realpath(lock)
    holders = []
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                if os.readlink(fd) == target:
                    holders.append(int(pid_dir.name))
                    break
        except OSError:  # gone, or another user's process
            continue
    return holders
