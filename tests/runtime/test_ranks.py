"""Two ranks under rlcore's torchrun: a SIGKILLed rank is named; nothing listens beyond loopback."""

from __future__ import annotations

import os
import threading

import pytest
from runtime_toy import ToyConfig

from rlcore.launch.launcher import RankFailedError, launch

pytestmark = pytest.mark.slow

EXP = "runtime_toy:ToyExperiment"
LIMIT_S = 240


def listening_in_tree(pid: int) -> set[str]:
    """``ADDR`` of every listening TCP socket of ``pid`` and its descendants."""
    import psutil

    found = set()
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return found
    for p in procs:
        try:
            found |= {c.laddr.ip for c in p.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            pass
    return found


def test_two_ranks_listen_only_on_loopback(tmp_path):
    seen: set[str] = set()
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen.update(listening_in_tree(os.getpid()))
            done.wait(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    cfg = ToyConfig()
    cfg.run.max_steps = 6
    try:
        summary = launch(EXP, cfg, nproc=2, run_dir=tmp_path, resume=False, timeout_s=LIMIT_S)
    finally:
        done.set()
        watcher.join()
    assert summary["status"] == "completed"
    assert seen, "no listening socket seen: the watcher missed the run"
    assert all(ip.startswith("127.") or ip == "::1" for ip in seen), seen


def test_a_killed_rank_is_named_with_its_signal(tmp_path, monkeypatch):
    monkeypatch.setenv("RLCORE_TOY_KILL", "1:3")
    cfg = ToyConfig()
    cfg.run.collective_timeout_s = 60
    with pytest.raises(RankFailedError) as info:
        launch(EXP, cfg, nproc=2, run_dir=tmp_path, resume=False, timeout_s=LIMIT_S)
    err = info.value
    assert err.rank == 1, str(err)
    assert str(err).startswith("rank 1 (pid ") and "was killed by SIGKILL" in str(err)
    assert "Connection" not in str(err)
