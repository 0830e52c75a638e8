"""`rlcore train` as processes: signals, several "nodes" on one machine, Slurm, dead ranks.

Each test starts the real console script (`rlcore`) in subprocesses, with the built-in
tiny sft experiment on CPU/gloo.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlcore.runtime.metrics import read_metrics

pytest.importorskip("rlcore_plugin_algorithms")
pytestmark = pytest.mark.slow

RLCORE = str(Path(sys.executable).with_name("rlcore"))
LIMIT_S = 240  # a hung run fails the test instead of blocking CI
QUIET = ["--set", "run.progress=false", "--set", "run.eval_every=0"]
SHORT = [*QUIET, "--set", "run.max_steps=3", "--set", "run.batch_size=8"]


@pytest.fixture
def env(tmp_path):
    """A clean environment: one thread per rank, no process-group variables of this session."""
    drop = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}
    out = {k: v for k, v in os.environ.items()
           if k not in drop and not k.startswith(("SLURM_", "RLCORE_PLUGINS_"))}
    out.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return out


def start(*args, env, cwd) -> subprocess.Popen:
    return subprocess.Popen([RLCORE, "train", "sft", *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        out, err = proc.communicate(timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"rlcore did not finish within {LIMIT_S}s:\n{err[-3000:]}")
    return proc.returncode, out + err


def wait_for_steps(run_dir: Path, n: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + LIMIT_S
    while len(read_metrics(run_dir)) < n:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the run logged no steps"
        time.sleep(0.2)


def descendants(pid: int) -> list:
    import psutil

    return psutil.Process(pid).children(recursive=True)


def losses(run_dir: Path) -> dict[int, float]:
    return {r["step"]: r["actor_train/loss"] for r in read_metrics(run_dir) if "actor_train/loss" in r}


@pytest.mark.parametrize("sig, code, nproc", [(signal.SIGTERM, 143, 1), (signal.SIGINT, 130, 2)])
def test_a_signal_saves_at_the_step_boundary_and_stops_every_rank(tmp_path, env, sig, code, nproc):
    run_dir = tmp_path / "run"
    proc = start(*QUIET, "--nproc", str(nproc), "--run-dir", str(run_dir), env=env, cwd=tmp_path)
    wait_for_steps(run_dir, 2, proc)
    ranks = descendants(proc.pid)
    proc.send_signal(sig)
    returncode, output = finish(proc)
    assert returncode == code, output[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted", summary
    step = summary["steps"]
    assert f"interrupted by {sig.name} after step {step}" in output
    saved = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert saved[-1] == f"step-{step:08d}"
    assert len(list((run_dir / "checkpoints" / saved[-1] / "rng").iterdir())) == nproc  # all ranks
    assert not [p for p in ranks if p.is_running()]  # no rank outlives rlcore
    assert not (run_dir / "run.lock").exists()
    # The same command resumes from there.
    proc = start(*QUIET, "--nproc", str(nproc), "--run-dir", str(run_dir),
                 "--set", f"run.max_steps={step + 2}", env=env, cwd=tmp_path)
    returncode, output = finish(proc)
    assert returncode == 0, output[-3000:]
    assert f"resuming from {run_dir / 'checkpoints' / saved[-1]}" in output
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


def test_two_nodes_and_slurm_give_the_losses_of_one_node(tmp_path, env):
    ref = start(*SHORT, "--nproc", "2", "--run-dir", str(tmp_path / "one"), env=env, cwd=tmp_path)
    returncode, output = finish(ref)
    assert returncode == 0, output[-3000:]
    expected = losses(tmp_path / "one")
    assert len(expected) == 3

    # Two "nodes" of one rank each, fixed node ranks, the rendezvous on the loopback address.
    port = str(free_port())
    nodes = [start(*SHORT, "--nnodes", "2", "--node-rank", str(r), "--master-addr", "127.0.0.1",
                   "--master-port", port, "--nproc", "1", "--run-dir", str(tmp_path / "two"),
                   env=env, cwd=tmp_path) for r in (1, 0)]  # node 1 may start first
    for node in nodes:
        returncode, output = finish(node)
        assert returncode == 0, output[-3000:]
    assert losses(tmp_path / "two") == pytest.approx(expected, rel=1e-5)

    # `srun --ntasks 2 rlcore train ...`: rank, world size and master from Slurm's variables.
    slurm = {"SLURM_STEP_ID": "0", "SLURM_NTASKS": "2", "SLURM_JOB_ID": "77",
             "SLURM_JOB_NODELIST": "localhost", "MASTER_PORT": str(free_port())}
    tasks = [start(*SHORT, "--run-dir", str(tmp_path / "slurm"),
                   env={**env, **slurm, "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r)},
                   cwd=tmp_path) for r in (0, 1)]
    for task in tasks:
        returncode, output = finish(task)
        assert returncode == 0, output[-3000:]
    assert "Slurm job 77: node 1 of 2, rendezvous localhost:" in output
    assert losses(tmp_path / "slurm") == pytest.approx(expected, rel=1e-5)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rollout_workers_start_on_node_0_of_two(tmp_path, env):
    """--nproc 2 on each node: node 0 runs one trainer and the rollout worker, node 1 two
    trainers; the numbers are one node's three trainers and worker (--nproc 4)."""
    grpo = [*QUIET, "--set", "run.max_steps=2", "--set", "run.batch_size=8",
            "--set", "warm_start.sft_steps=0", "--set", "rollout.procs=1"]

    def train(*args):
        return subprocess.Popen([RLCORE, "train", "grpo", *grpo, *args], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    returncode, output = finish(train("--nproc", "4", "--run-dir", str(tmp_path / "one")))
    assert returncode == 0, output[-3000:]
    port = str(free_port())
    nodes = [train("--nnodes", "2", "--node-rank", str(r), "--master-addr", "127.0.0.1",
                   "--master-port", port, "--nproc", "2", "--run-dir", str(tmp_path / "two"))
             for r in (1, 0)]
    for node in nodes:
        returncode, output = finish(node)
        assert returncode == 0, output[-3000:]
    assert (tmp_path / "two" / "logs" / "rollout-worker-1.log").exists()
    one, two = ([r for r in read_metrics(tmp_path / d) if r["step"] > 0] for d in ("one", "two"))
    for key in ("reward/mean", "actor_train/loss"):
        assert [r[key] for r in two] == pytest.approx([r[key] for r in one], rel=1e-5), key
