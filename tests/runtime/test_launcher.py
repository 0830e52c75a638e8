"""Launcher commands and failure-file parsing (the 2-rank runs are in test_multiprocess)."""

import json
import os
import sys
from pathlib import Path

from rlcore.launch.launcher import (
    collect_failures,
    deepspeed_command,
    torchrun_command,
    worker_args,
)


def test_torchrun_and_deepspeed_commands(tmp_path):
    args = worker_args("sft", tmp_path / "config.yaml", tmp_path, True)
    assert args == ["--experiment", "sft", "--run-dir", str(tmp_path), "--resume", "auto",
                    "--config", str(tmp_path / "config.yaml")]
    assert worker_args("sft", None, tmp_path, False)[-1] == "none"
    assert worker_args("sft", None, tmp_path, "/ck/step-1")[-1] == "/ck/step-1"
    cmd = torchrun_command(2, tmp_path / "logs", args)
    assert cmd[:3] == [sys.executable, "-m", "rlcore.launch.torchrun"]  # torchrun, wrapped
    assert cmd[cmd.index("--nproc-per-node") + 1] == "2"
    assert cmd[cmd.index("--max-restarts") + 1] == "0"
    assert cmd[cmd.index("-m", 3):][:2] == ["-m", "rlcore.launch.worker"]
    ds = deepspeed_command(Path("hosts"), None, args)
    assert ds[:5] == [sys.executable, "-m", "deepspeed.launcher.runner", "--hostfile", "hosts"]
    assert ds[5:7] == ["--module", "rlcore.launch.worker"] and "--num_gpus" not in ds


def test_collect_failures_orders_by_time(tmp_path):
    for rank, ts, msg in ((1, 100, "ValueError: first"), (0, 105, "RuntimeError: peer gone")):
        d = tmp_path / "run" / "attempt_0" / str(rank)
        d.mkdir(parents=True)
        (d / "error.json").write_text(json.dumps({"message": {
            "message": msg, "extraInfo": {"py_callstack": f"Traceback ... {msg}",
                                          "timestamp": str(ts)}}}))
    failures = collect_failures(tmp_path)
    assert [(f["rank"], f["message"]) for f in failures] == [(1, "ValueError: first"),
                                                            (0, "RuntimeError: peer gone")]
    assert failures[0]["traceback"].endswith("ValueError: first")


def test_collect_failures_breaks_same_second_ties_by_file_time_and_cause(tmp_path):
    # Both in the same torchrun second; rank 0's file is written 1 ms earlier.
    def write(rank, msg, mtime_ns):
        d = tmp_path / "attempt_0" / str(rank)
        d.mkdir(parents=True, exist_ok=True)
        (d / "error.json").write_text(json.dumps({"message": {
            "message": msg, "extraInfo": {"py_callstack": "", "timestamp": "100"}}}))
        os.utime(d / "error.json", ns=(mtime_ns, mtime_ns))

    write(0, "ValueError: rank 0 first", 1_000_000_000)
    write(1, "ValueError: rank 1 second", 1_001_000_000)
    assert [f["rank"] for f in collect_failures(tmp_path)] == [0, 1]
    # A peer's crash seen by gloo is never the cause, even when its file is older.
    write(0, "RuntimeError: [pair.cc:553] Connection closed by peer [127.0.0.1]:8384", 1_000_000_000)
    assert [f["rank"] for f in collect_failures(tmp_path)] == [1, 0]


def test_write_config_first_removes_partial_checkpoints(tmp_path, capsys):
    """A partial checkpoint left by a killed run (which may have filled the disk) goes
    before config.yaml is written, not only once the run itself starts."""
    import dataclasses

    from rlcore.launch.launcher import write_config

    @dataclasses.dataclass
    class Tiny:
        lr: float = 0.1

    partial = tmp_path / "checkpoints" / ".tmp-step-00000004"
    partial.mkdir(parents=True)
    (partial / "engine.safetensors").write_bytes(b"x" * 100)
    path = write_config(Tiny(), tmp_path)
    assert not partial.exists() and path.read_text().strip() == "lr: 0.1"
    assert "partial checkpoint" in capsys.readouterr().out


def test_old_runtime_paths_warn_and_still_work():
    """Plugins written before rlcore.launch import the old paths: they warn and re-export."""
    import importlib
    import subprocess

    import pytest

    from rlcore.launch import launcher, rendezvous
    from rlcore.runtime import distributed

    for name in ("launcher", "rendezvous", "runlock", "torchrun", "worker"):
        sys.modules.pop(f"rlcore.runtime.{name}", None)
        with pytest.warns(DeprecationWarning, match=f"rlcore.launch.{name}"):
            old = importlib.import_module(f"rlcore.runtime.{name}")
        assert old.__name__ in (f"rlcore.launch.{name}", f"rlcore.runtime.{name}")
    assert sys.modules["rlcore.runtime.launcher"].launch is launcher.launch
    old = sys.modules["rlcore.runtime.rendezvous"]
    assert old.from_options is rendezvous.from_options
    assert old.worker_store is distributed.worker_store
    out = subprocess.run([sys.executable, "-m", "rlcore.runtime.worker", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--experiment" in out.stdout
