"""Asynchronous RL (rollout.max_staleness > 0): workers sample ahead while the trainer trains,
no sample is older than the bound, and a killed run trains every prompt once per epoch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
from killing import kill_after_checkpoint
from rl_runs import train_rl
from test_experiments import read_metrics

from rlcore.testing.rollout import replace_rollout_workers
from rlcore_plugin_algorithms.rl_experiments import WARM_START_DIR

# A worker whose every decode step is slowed: the trainer must wait for it.
SLOW_WORKER = """
import time
import rlcore.models.generation as generation
real = generation.generate
def slow(model, prompts, config, generator=None, seed=None, before_decode=None):
    def step():
        time.sleep({delay})
        if before_decode is not None:
            before_decode()
    return real(model, prompts, config, generator=generator, seed=seed, before_decode=step)
generation.generate = slow
from rlcore.rollout import worker
worker.main()
"""


def slow_workers(monkeypatch, delay: float) -> None:
    """Start every rollout worker of this test's runs with decode steps ``delay`` s slower."""
    replace_rollout_workers(monkeypatch, SLOW_WORKER.replace("{delay}", repr(delay)))


def column(rows, key):
    return [r.get(key) for r in rows]


@pytest.mark.slow
def test_workers_sample_ahead_of_a_slow_trainer_up_to_the_bound(tmp_path, warm_start,
                                                                   monkeypatch):
    """The trainer (in this process) takes 1 s more per step: the workers run ahead, and the
    bound, not their speed, decides how old the trained samples are."""
    from rlcore_plugin_algorithms.rl_interfaces import PolicyInterface

    real = PolicyInterface.train_step

    def slow_train_step(self, handle, data):
        time.sleep(1.0)
        return real(self, handle, data)

    monkeypatch.setattr(PolicyInterface, "train_step", slow_train_step)
    rows = train_rl("grpo", tmp_path, warm_start, "run.max_steps=5", "rollout.procs=1",
                    "rollout.max_staleness=2", nproc=2)
    assert column(rows, "rollout/staleness_max") == [0.0, 1.0, 2.0, 2.0, 2.0]
    assert column(rows, "rollout/queue") == [2.0, 2.0, 2.0, 1.0, 0.0]  # nothing past the run
    # batches 4 and 5 could not be handed out before steps 2 and 3 began: the workers waited
    assert min(column(rows, "time/train_wait")[3:]) > 0.5
    assert all(r["rollout/sync_check"] <= 1e-5 for r in rows if "rollout/sync_check" in r)


@pytest.mark.slow
def test_a_slow_worker_makes_the_trainer_wait(tmp_path, warm_start, monkeypatch):
    """Each generation starts from the newest weights, so a slow worker's samples are one step
    old however far ahead it may sample; the trainer waits for them."""
    slow_workers(monkeypatch, 0.25)
    rows = train_rl("grpo", tmp_path, warm_start, "run.max_steps=4", "rollout.procs=1",
                    "rollout.max_staleness=2", nproc=2)
    assert max(column(rows, "rollout/staleness_max")) <= 2
    assert min(column(rows, "time/rollout_wait")[1:]) > 0.05


@pytest.mark.slow
def test_partial_rollouts_switch_weights_mid_generation(tmp_path, warm_start, monkeypatch):
    """The trainer outpaces a slow worker: the newest weights reach generations in flight."""
    slow_workers(monkeypatch, 0.25)
    rows = train_rl("grpo", tmp_path, warm_start, "run.max_steps=4", "rollout.procs=1",
                    "rollout.max_staleness=1", "rollout.partial=true", "gen.max_new_tokens=12",
                    nproc=2)
    assert max(column(rows, "rollout/mixed_versions")) > 0
    assert max(column(rows, "rollout/staleness_max")) <= 1


TRACED = """
import json, sys
from rlcore.runtime import executor
real = executor.Executor.step
def traced(self, batch, **kw):
    with open({trace!r}, "a") as f:
        f.write(json.dumps(list(batch.ids)) + "\\n")
    return real(self, batch, **kw)
executor.Executor.step = traced
from rlcore.cli.app import main
sys.argv = ["rlcore", *{args!r}]
main()
"""


@pytest.mark.slow
def test_a_killed_async_run_trains_every_prompt_once_per_epoch(tmp_path, warm_start, cli_env):
    """24 prompts, 8 a step, 2 batches sampled ahead: SIGKILL after the step-4 checkpoint; the
    resumed run trains steps 5-7 on the batches a straight run trains there."""
    sets = ["run.progress=false", "run.eval_every=0", "run.batch_size=8", "run.max_steps=7",
            "run.save_every=2", "rollout.procs=1", "rollout.max_staleness=2",
            "dataset.embedded_size=24"]
    args = ["train", "grpo", "--nproc", "2", *[f"--set={s}" for s in sets]]

    def command(run_dir, trace):
        script = TRACED.format(trace=str(trace), args=[*args, "--run-dir", str(run_dir)])
        return [sys.executable, "-c", script]

    for name in ("straight", "killed"):
        shutil.copytree(warm_start, tmp_path / name / WARM_START_DIR)
    subprocess.run(command(tmp_path / "straight", tmp_path / "straight.trace"), check=True,
                   env=cli_env, capture_output=True, timeout=600)
    killed = tmp_path / "killed"
    kill_after_checkpoint(command(killed, tmp_path / "first.trace"), killed, 4, cli_env)
    resumed = subprocess.run(command(killed, tmp_path / "second.trace"), check=True,
                             env=cli_env, capture_output=True, text=True, timeout=600)
    assert "(step 4 of 7)" in resumed.stdout, resumed.stdout

    def steps(trace):
        return [json.loads(line) for line in trace.read_text().splitlines()]

    straight = steps(tmp_path / "straight.trace")
    trained = steps(tmp_path / "first.trace")[:4] + steps(tmp_path / "second.trace")
    assert trained == straight and len(trained) == 7
    for epoch in (trained[0:3], trained[3:6]):
        ids = [i for batch in epoch for i in batch]
        assert len(ids) == len(set(ids)) == 24  # every prompt once
    rows = [r for r in read_metrics(killed) if r.get("step")]
    assert max(r["rollout/staleness_max"] for r in rows) <= 2


@pytest.mark.slow
def test_two_trainers_under_zero2_and_one_worker_learn(tmp_path, warm_start):
    """--nproc 3 with rollout.procs=1: two ZeRO-2 trainers, one worker sampling a step ahead."""
    from statistics import mean

    rows = train_rl("grpo", tmp_path, warm_start, "run.max_steps=60", "rollout.procs=1",
                    "rollout.max_staleness=1", "train.zero_stage=2", nproc=3)
    reward = column(rows, "reward/mean")
    assert len(reward) == 60 and mean(reward[-15:]) > mean(reward[:15]) + 0.05, reward
    assert column(rows, "rollout/staleness_max")[1:] == [1.0] * 59
