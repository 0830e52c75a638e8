"""DeepSpeed's JIT-compiled ops: never the shm comm op, and no endless wait on a build lock."""

import os
import subprocess
import sys
import time

import pytest

from rlcore.runtime import jit_ops
from rlcore.runtime.jit_ops import BuildLockError, wait_for_lock

ONE_PROCESS = """
from rlcore.runtime import distributed
print(distributed.init(30))
import deepspeed.comm.comm as ds_comm
print("shm op:", ds_comm.cdb.shm_comm_op)
"""


def test_one_process_never_builds_the_shm_comm_op_even_with_a_stale_lock(tmp_path):
    # A build killed midway leaves this lock; DeepSpeed used to wait on it forever.
    (tmp_path / jit_ops.SHM_COMM).mkdir()
    (tmp_path / jit_ops.SHM_COMM / "lock").write_text("")
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["TORCH_EXTENSIONS_DIR"] = str(tmp_path)
    try:
        out = subprocess.run([sys.executable, "-c", ONE_PROCESS], env=env, capture_output=True,
                             text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("process-group setup waited on the shm comm op's build lock")
    assert out.returncode == 0, out.stderr
    assert "(0, 1)" in out.stdout and "shm op: None" in out.stdout
    assert sorted(p.name for p in (tmp_path / jit_ops.SHM_COMM).iterdir()) == ["lock"]


def test_a_lock_nobody_holds_is_removed_with_a_message(tmp_path, capsys):
    lock = tmp_path / "cpu_adam" / "lock"
    lock.parent.mkdir()
    lock.write_text("")
    wait_for_lock(lock, timeout_s=30)
    assert not lock.exists()
    assert f"removed {lock}, left by a build that was killed midway" in capsys.readouterr().err


def test_a_held_lock_is_waited_for_then_named(tmp_path, capsys):
    lock = tmp_path / "cpu_adam" / "lock"
    lock.parent.mkdir()
    # A live build holds the lock file open, as torch's FileBaton does.
    holder = subprocess.Popen([sys.executable, "-c",
                               f"import os, time; fd = os.open({str(lock)!r}, os.O_CREAT); "
                               "print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(BuildLockError, match=f"held by process {holder.pid} for over 1s"):
            wait_for_lock(lock, timeout_s=1.0, poll_s=0.1)
        assert time.monotonic() - t0 < 30  # not forever
        assert "waiting for another process to finish compiling" in capsys.readouterr().err
        assert lock.exists()  # a live build's lock is never removed
    finally:
        holder.kill()
        holder.wait()


def test_ops_build_once_per_environment(monkeypatch):
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)
    first = jit_ops.extensions_dir()
    assert first.name.startswith("rlcore-env-") and first == jit_ops.extensions_dir()
    assert os.environ["TORCH_EXTENSIONS_DIR"] == str(first)


def test_other_ops_are_probed_only_when_asked_about(monkeypatch):
    import deepspeed.ops

    calls = []
    monkeypatch.delitem(vars(deepspeed.ops), "__compatible_ops__", raising=False)
    monkeypatch.setattr(deepspeed.ops, "_probe_compatible_ops",
                        lambda: calls.append(1) or {"cpu_adam": True, jit_ops.SHM_COMM: True})
    jit_ops.skip_shm_comm()
    ops = deepspeed.ops.__compatible_ops__
    assert ops.get(jit_ops.SHM_COMM, True) is False and calls == []  # what DeepSpeed asks
    assert ops["cpu_adam"] is True and calls == [1]
    assert dict(ops.items()) == {"cpu_adam": True, jit_ops.SHM_COMM: False} and calls == [1]


OTHER_WARNING = """
import rlcore, deepspeed
from deepspeed.utils import logger
logger.warning("another DeepSpeed warning")
"""


def test_deepspeeds_cpu_accelerator_warning_is_hidden_and_no_other(tmp_path):
    # "Setting accelerator to CPU. If you have GPU ..." came at every start on CPU (on stdout:
    # DeepSpeed's logger writes there); rlcore's filter drops that line only.
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    rlcore = os.path.join(os.path.dirname(sys.executable), "rlcore")
    run = subprocess.run([rlcore, "train", "sft", "--run-dir", str(tmp_path / "run"),
                          "--set", "run.max_steps=1", "--set", "run.eval_every=0"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Setting accelerator to CPU" not in run.stdout + run.stderr
    other = subprocess.run([sys.executable, "-c", OTHER_WARNING], env=env, capture_output=True,
                           text=True, timeout=300)
    assert other.returncode == 0, other.stderr
    assert "another DeepSpeed warning" in other.stdout + other.stderr
    assert "Setting accelerator to CPU" not in other.stdout + other.stderr
