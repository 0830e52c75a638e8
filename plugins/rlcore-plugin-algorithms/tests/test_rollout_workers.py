"""Rollout workers (rollout.procs): separate sampling processes give the colocated run's
numbers, and a worker whose weights differ from the trainer's stops the run by name."""

from __future__ import annotations

import os
import subprocess

import pytest
from rl_runs import train_rl

from rlcore.errors import RlcoreError
from rlcore.launch.launcher import RankFailedError

WALL_CLOCK = ("time", "perf/")
STEPS = ["run.max_steps=2"]


def same_numbers(colocated, workers):
    assert [r["step"] for r in workers] == [r["step"] for r in colocated]
    for a, b in zip(colocated, workers, strict=True):
        for key, value in a.items():
            if not key.startswith(WALL_CLOCK):
                assert b[key] == pytest.approx(value, rel=1e-5, abs=1e-7), (a["step"], key)
        assert b["rollout/sync_check"] <= 1e-5 and b["time/weight_sync"] > 0
        assert b["rollout/staleness_max"] == b["rollout/staleness_mean"] == 0.0  # on-policy


@pytest.mark.slow
@pytest.mark.parametrize("trainers, sets", [(1, []), (2, []), (1, ["gen.top_k=5"])],
                         ids=["1-trainer", "2-trainers", "1-trainer-top-k"])
def test_workers_sample_what_the_trainers_would(tmp_path, warm_start, trainers, sets):
    """Same numbers; with top-k the kept tokens travel compactly and replay exactly."""
    colocated = train_rl("grpo", tmp_path / "colocated", warm_start, *STEPS, *sets,
                         nproc=trainers)
    workers = train_rl("grpo", tmp_path / "workers", warm_start, *STEPS, *sets,
                       "rollout.procs=1", nproc=trainers + 1)
    same_numbers(colocated, workers)
    assert (tmp_path / "workers" / "logs" / "rollout-worker-1.log").exists()


DAMAGED = """
import torch
from rlcore.rollout import worker
handle = worker.Worker.handle
def damaged(self, kind, meta, tensors):
    if kind == "weights":
        tensors = {k: v + 0.1 if v.is_floating_point() else v for k, v in tensors.items()}
    return handle(self, kind, meta, tensors)
worker.Worker.handle = damaged
worker.main()
"""


@pytest.mark.slow
def test_a_worker_with_other_weights_stops_the_run(tmp_path, warm_start, monkeypatch):
    from rlcore.testing.rollout import replace_rollout_workers

    replace_rollout_workers(monkeypatch, DAMAGED)
    monkeypatch.setenv(MARK, str(tmp_path))
    with pytest.raises((RlcoreError, RankFailedError),
                       match=r"weight sync check failed: rollout worker 1 .* version 0"):
        train_rl("grpo", tmp_path, warm_start, *STEPS, "rollout.procs=1", nproc=2)
    assert not left_behind(str(tmp_path), wait_s=5)  # all stopped


def test_placement_is_checked_before_anything_starts(tmp_path):
    from rlcore.cli.train_cmd import resolve_experiment
    from rlcore.launch.launcher import launch

    record, cfg = resolve_experiment("grpo", None, ["rollout.procs=2", "warm_start.sft_steps=0"])
    assert cfg.rollout.engine == "worker"
    with pytest.raises(RlcoreError, match="rollout.procs=2 leaves no trainer on --nproc 2"):
        launch(record.name, cfg, nproc=2, run_dir=tmp_path / "run")
    from rlcore.launch.rendezvous import Rendezvous

    with pytest.raises(RlcoreError, match="each node needs a fixed --node-rank"):
        launch(record.name, cfg, nproc=3, run_dir=tmp_path / "run",
               rdzv=Rendezvous(nnodes=2, node_rank=None, master_port=29500))
    with pytest.raises(RlcoreError, match="rollout.max_staleness=1 samples ahead on rollout "
                                          "workers: set rollout.procs=K"):
        resolve_experiment("grpo", None, ["rollout.max_staleness=1"])
    with pytest.raises(RlcoreError, match="set rollout.max_staleness >= 1 too"):
        resolve_experiment("grpo", None, ["rollout.procs=1", "rollout.partial=true"])
    with pytest.raises(RlcoreError, match="rollout.engine=worker samples on rollout processes"):
        resolve_experiment("grpo", None, ["rollout.engine=worker"])
    assert not (tmp_path / "run").exists()


MARK = "RLCORE_TEST_MARK"  # set in a run's environment: its workers inherit it


def rollout_workers_running(mark: str) -> set[str]:
    """Pids of the rollout workers whose environment holds ``MARK=mark`` (other tests, under
    pytest -n, and other runs may share the machine)."""
    out = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            if b"rlcore.rollout.worker" not in cmdline and b"rlcore.rollout import worker" not in cmdline:
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                if f"{MARK}={mark}".encode() in f.read().split(b"\0"):
                    out.add(pid)
        except OSError:
            continue
    return out


def left_behind(mark: str, wait_s: float) -> set[str]:
    """This test's workers (``MARK=mark``) still running after up to ``wait_s``."""
    import time

    deadline = time.monotonic() + wait_s
    while rollout_workers_running(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    return rollout_workers_running(mark)


@pytest.mark.slow
def test_a_killed_run_with_workers_resumes_with_the_same_numbers(tmp_path, warm_start, cli_env):
    """SIGKILL the launcher mid-run: its worker exits, and the same command resumes exactly."""
    import shutil

    from killing import kill_after_checkpoint
    from test_experiments import RLCORE, read_metrics

    from rlcore_plugin_algorithms.rl_experiments import WARM_START_DIR

    sets = ["run.progress=false", "run.eval_every=0", "run.batch_size=8", "run.max_steps=8",
            "run.save_every=2", "rollout.procs=1"]
    args = ["train", "grpo", "--nproc", "2", *[f"--set={s}" for s in sets]]
    runs = {}
    for name in ("straight", "killed"):
        runs[name] = tmp_path / name
        shutil.copytree(warm_start, runs[name] / WARM_START_DIR)
    subprocess.run([RLCORE, *args, "--run-dir", str(runs["straight"])], check=True, env=cli_env,
                   capture_output=True, timeout=600)
    marked = {**cli_env, MARK: str(tmp_path)}
    kill_after_checkpoint([RLCORE, *args, "--run-dir", str(runs["killed"])], runs["killed"], 4,
                          marked)
    assert not left_behind(str(tmp_path), wait_s=10)  # each notices within 2 s
    subprocess.run([RLCORE, *args, "--run-dir", str(runs["killed"])], check=True, env=cli_env,
                   capture_output=True, timeout=600)
    straight, resumed = (read_metrics(runs[n]) for n in ("straight", "killed"))
    by_step = {r["step"]: r for r in resumed if r.get("step")}
    assert sorted(by_step) == list(range(1, 9))
    for row in straight:
        if row.get("step"):
            for key in ("reward/mean", "actor_train/loss", "rollout/sync_check"):
                assert by_step[row["step"]][key] == pytest.approx(row[key], abs=1e-6), key
