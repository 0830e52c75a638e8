"""The rollout worker processes of a run (``rollout.procs``): started beside the trainers by
the same launch, on this machine, and stopped with them."""

from __future__ import annotations

import contextlib
import datetime
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from rlcore.rollout import RANK_ENV, ROLLOUT_ENV


@contextlib.contextmanager
def rollout_workers(count: int, log_dir: Path) -> Iterator[dict[str, str]]:
    """Start ``count`` workers and the store their group meets on; yield the environment the
    trainers need to reach them; stop them all on the way out (also on errors)."""
    if count <= 0:
        yield {}
        return
    import torch.distributed as dist

    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False,
                          timeout=datetime.timedelta(seconds=300))
    env = {ROLLOUT_ENV: f"127.0.0.1:{store.port}:{count}"}
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        for i in range(1, count + 1):
            log = open(log_dir / f"rollout-worker-{i}.log", "w")  # noqa: SIM115 (closed below)
            procs.append((subprocess.Popen(
                [sys.executable, "-m", "rlcore.rollout.worker"], stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
                     **env, RANK_ENV: str(i)}), log))
        yield env
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, log in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
        del store


@contextlib.contextmanager
def environment(extra: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``extra`` set, restored after (an in-process trainer reads it)."""
    before = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
