"""SIGKILL a run the way a crash or an OOM kill would, at a known point."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path


def kill_after_checkpoint(cmd: list[str], run_dir: Path, step: int, env: dict[str, str]) -> None:
    """Start ``cmd`` (a run into ``run_dir``) and SIGKILL it once checkpoint ``step`` is complete."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    complete = run_dir / "checkpoints" / f"step-{step:08d}" / "COMPLETE"
    deadline = time.monotonic() + 300
    while not complete.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before the kill"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
