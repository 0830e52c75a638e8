"""A full disk, a quota or a file-size limit stops a run with one line and leaves nothing partial."""

import errno
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rlcore.errors import DiskFullError
from rlcore.launch.runlock import LOCK_NAME, RunDirLock
from rlcore.runtime.diskspace import out_of_room, writing

HERE = str(Path(__file__).resolve().parent)


def under_file_size_limit(limit: int, run_dir: Path, call: str) -> subprocess.CompletedProcess:
    """Run ``call`` on the toy experiment in a process whose files may not exceed ``limit``
    bytes (``ulimit -f``; SIGXFSZ ignored, so writes fail with EFBIG)."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {HERE!r})
        from runtime_toy import ToyConfig, ToyExperiment
        from rlcore.errors import DiskFullError
        from rlcore.launch.launcher import launch
        from rlcore.runtime.loop import run
        cfg = ToyConfig()
        cfg.run.epochs, cfg.run.save_every, cfg.run.keep_last, cfg.run.progress = 1, 2, 0, False
        run_dir = {str(run_dir)!r}
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        try:
            {call}
        except DiskFullError as exc:
            print(exc)
            sys.exit(2)
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)


def test_a_file_size_limit_stops_a_checkpoint_with_one_line_and_no_partial_left(tmp_path):
    # metrics and TensorBoard files stay under 4 KiB; the first checkpoint's RNG file does not
    result = under_file_size_limit(4096, tmp_path, "run(ToyExperiment(cfg), cfg, run_dir)")
    assert result.returncode == 2, result.stderr[-3000:]
    line = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(
        r"the file-size limit \(ulimit -f\) was reached writing \S+/\.tmp-step-00000002/\S+; "
        r"removed the partial checkpoint \.tmp-step-00000002, the earlier checkpoints are "
        r"intact\. Raise the file-size limit \(ulimit -f\), then run again to resume", line), line
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_a_resumed_run_stopped_at_the_run_lock_says_so_in_one_line(tmp_path):
    from runtime_toy import ToyConfig

    from rlcore.launch.launcher import launch

    cfg = ToyConfig()
    cfg.run.epochs, cfg.run.save_every, cfg.run.max_steps, cfg.run.progress = 1, 2, 2, False
    launch("runtime_toy:ToyExperiment", cfg, run_dir=tmp_path)  # cut short at step 2
    result = under_file_size_limit(
        64, tmp_path, 'launch("runtime_toy:ToyExperiment", cfg, run_dir=run_dir)')
    assert result.returncode == 2, result.stderr[-3000:]
    line = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"the file-size limit \(ulimit -f\) was reached writing {re.escape(str(tmp_path))}/"
        rf"\.{LOCK_NAME}\.\d+; the run did not start and {re.escape(str(tmp_path))} is as it "
        r"was\. Raise the file-size limit \(ulimit -f\), then run again", line), line
    assert not list(tmp_path.glob(f".{LOCK_NAME}.*")) and not (tmp_path / LOCK_NAME).exists()


def test_a_full_disk_at_the_run_lock_is_the_checkpoints_message(tmp_path, monkeypatch):
    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(DiskFullError) as info:
        RunDirLock(tmp_path).acquire()
    message = str(info.value)
    assert message.startswith(f"no space left writing {tmp_path}/.{LOCK_NAME}.")
    assert message.endswith("Free some space, then run again") and "\n" not in message


@pytest.mark.parametrize("exc, what", [
    (OSError(errno.ENOSPC, "No space left on device"), "no space left"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "the disk quota was exceeded"),
    (OSError(errno.EFBIG, "File too large"), "the file-size limit (ulimit -f) was reached"),
    (RuntimeError("IoError(Os { code: 27, kind: FileTooLarge })"),
     "the file-size limit (ulimit -f) was reached"),
])
def test_each_way_of_running_out_of_room_is_named(tmp_path, exc, what):
    assert out_of_room(exc) is not None
    with pytest.raises(DiskFullError, match=re.escape(f"{what} writing {tmp_path / 'f'}")):
        with writing(tmp_path / "f"):
            raise exc


def test_other_os_errors_pass_through(tmp_path):
    with pytest.raises(PermissionError):
        with writing(tmp_path / "f"):
            raise PermissionError(errno.EACCES, "Permission denied")
