"""LoRA (actor.lora, critic.lora) through every experiment: PEFT checkpoints, the reference as
the base with adapters off, ZeRO-3 on two ranks, and a SIGKILLed run that resumes exactly."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from killing import kill_after_checkpoint
from rl_runs import SHORT, train_rl
from test_experiments import RLCORE, read_metrics

from rlcore.cli.train_cmd import resolve_experiment
from rlcore.launch.launcher import launch
from rlcore.runtime.checkpoint import CheckpointManager
from rlcore_plugin_algorithms.rl_experiments import WARM_START_DIR

pytestmark = pytest.mark.slow  # training runs: the README's tests run them, the wheel path not

LORA = ["actor.lora.r=4", "actor.lora.alpha=8"]


def adapter_files(run_dir, role="actor"):
    return sorted(p.name for p in (CheckpointManager(run_dir).latest() / role).iterdir()
                  if p.name.startswith(("adapter", "rlcore_base", "config")))


@pytest.mark.parametrize("name, sets", [
    ("sft", []), ("rm", []), ("dpo", []),
    ("ppo", ["critic.lora.r=4", "warm_start.sft_steps=0", "kl.coef=0.05"]),
    ("remax", ["warm_start.sft_steps=0", "kl.coef=0.05"])])
def test_every_experiment_trains_adapters_only(tmp_path, name, sets):
    _, cfg = resolve_experiment(name, None, [*SHORT, "run.max_steps=2", "run.batch_size=4",
                                             *LORA, *sets])
    launch(name, cfg, nproc=1, run_dir=tmp_path, resume=False)
    rows = [r for r in read_metrics(tmp_path) if r["step"] > 0]
    assert len(rows) == 2
    assert adapter_files(tmp_path) == ["adapter_config.json", "adapter_model.safetensors",
                                       "rlcore_base.json"]
    if name == "ppo":
        assert adapter_files(tmp_path, "critic")[0] == "adapter_config.json"
    if "kl.coef=0.05" in sets or name == "dpo":  # the reference is the base: equal at the start
        first = rows[0]
        key = "kl/ref" if "kl/ref" in first else "actor_train/rewards/margin"
        assert abs(first[key]) < 1e-6, first


def test_lora_grpo_zero3_two_ranks_killed_resumes_exactly(tmp_path, warm_start, cli_env):
    """ZeRO-3 on two ranks with the reference as the adapters-off base: SIGKILL after the
    step-2 checkpoint; the resumed steps 3-4 log what an uninterrupted run logs."""
    sets = [*SHORT, *LORA, "run.batch_size=8", "run.max_steps=4", "run.save_every=2",
            "train.zero_stage=3", "kl.coef=0.05"]
    args = [RLCORE, "train", "grpo", "--nproc", "2",
            *[f"--set={s}" for s in sets]]
    for run in ("straight", "killed"):
        shutil.copytree(warm_start, tmp_path / run / WARM_START_DIR)
    subprocess.run([*args, "--run-dir", str(tmp_path / "straight")], check=True, env=cli_env,
                   capture_output=True, timeout=600)
    killed = tmp_path / "killed"
    kill_after_checkpoint([*args, "--run-dir", str(killed)], killed, 2, cli_env)
    subprocess.run([*args, "--run-dir", str(killed)], check=True, env=cli_env,
                   capture_output=True, timeout=600)

    def logged(run_dir):
        return {r["step"]: {k: v for k, v in r.items() if not k.startswith(("time", "perf/"))}
                for r in read_metrics(run_dir) if r["step"] > 0}

    straight, resumed = logged(tmp_path / "straight"), logged(killed)
    assert sorted(resumed) == [1, 2, 3, 4] and resumed == straight
    assert abs(straight[1]["kl/ref"]) < 1e-6  # the base with adapters off is the start
    assert adapter_files(killed) == ["adapter_config.json", "adapter_model.safetensors",
                                     "rlcore_base.json"]


def test_embedded_grpo_with_lora_learns(tmp_path, warm_start):
    rows = train_rl("grpo", tmp_path, warm_start, "run.max_steps=40", "actor.lora.r=16")
    reward = [r["reward/mean"] for r in rows]
    assert sum(reward[-10:]) / 10 > sum(reward[:10]) / 10 + 0.05, reward
