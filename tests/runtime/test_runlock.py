"""One run per run directory: a live holder keeps others out, a dead one's lock is taken over."""

import json
import os
import subprocess
import sys

import pytest
from runtime_toy import ToyConfig

from rlcore.launch.launcher import launch
from rlcore.launch.runlock import LOCK_NAME, RunDirLock, RunDirLockedError


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_lock(run_dir, pid):
    import socket

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LOCK_NAME).write_text(json.dumps({
        "pid": pid, "host": socket.gethostname(), "started": 0, "command": "rlcore train x"}))


def test_a_live_holder_is_named_and_its_run_untouched(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_lock(tmp_path, holder.pid)
        (tmp_path / "config.yaml").write_text("theirs\n")
        with pytest.raises(RunDirLockedError, match=f"in use by another run: pid {holder.pid}"):
            launch("runtime_toy:ToyExperiment", ToyConfig(), run_dir=tmp_path)
        assert (tmp_path / "config.yaml").read_text() == "theirs\n"
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_a_dead_holders_lock_is_taken_over_and_released(tmp_path, capsys):
    pid = dead_pid()
    write_lock(tmp_path, pid)
    cfg = ToyConfig()
    cfg.run.max_steps = 2
    summary = launch("runtime_toy:ToyExperiment", cfg, run_dir=tmp_path)
    assert summary["status"] == "completed"
    assert f"taking over {tmp_path / LOCK_NAME} from pid {pid}, which is no longer running" in \
        capsys.readouterr().err
    assert not (tmp_path / LOCK_NAME).exists()  # released at the end


def test_lock_holds_until_released(tmp_path):
    with RunDirLock(tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
        with pytest.raises(RunDirLockedError, match=str(os.getpid())):
            RunDirLock(tmp_path).acquire()
    RunDirLock(tmp_path).acquire().release()
