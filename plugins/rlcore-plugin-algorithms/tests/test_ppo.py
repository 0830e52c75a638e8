"""The ppo experiment end to end on CPU with real DeepSpeed: graph, learning, ZeRO, 2 ranks, guards."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from rl_runs import train_rl
from test_experiments import RLCORE, mean, series

from rlcore.cli.train_cmd import resolve_experiment
from rlcore.launch.launcher import launch
from rlcore.runtime.health import NonFiniteError


def ppo(run_dir, warm, *sets, nproc=1, resume=False):
    return train_rl("ppo", run_dir, warm, *sets, nproc=nproc, resume=resume)


def test_show_draws_the_six_mfcs(cli_env):
    out = subprocess.run([RLCORE, "show", "ppo", "--format", "mermaid"], capture_output=True,
                         text=True, env=cli_env, check=True).stdout
    for name in ("actor_gen", "rew_inf", "ref_inf", "critic_inf", "adv", "actor_train",
                 "critic_train"):
        assert f'n_{name}["{name}' in out


def test_no_reference_when_the_kl_coefficient_is_zero():
    from rlcore.runtime.experiment import build_experiment

    _, cfg = resolve_experiment("ppo", None, ["kl.coef=0"])
    exp = build_experiment("ppo", cfg)
    assert "ref" not in exp.graph().roles and "ref" not in {r.name for r in exp.roles()}


def test_reward_functions_from_the_command_line_with_weights():
    _, cfg = resolve_experiment("ppo", None, ["reward.functions=[math_answer, format_penalty]",
                                              "reward.weights=[1.0, 0.5]"])
    assert cfg.reward.functions == ["math_answer", "format_penalty"]
    from rlcore.errors import ConfigError

    with pytest.raises(ConfigError, match="reward.weights has 1 entries for 2"):
        resolve_experiment("ppo", None, ["reward.functions=[math_answer, format_penalty]",
                                         "reward.weights=[1.0]"])


@pytest.mark.parametrize("sets, message", [
    (["reward.functions=[math_anser]"], "no rewards named 'math_anser'. Did you mean 'math_answer'"),
    (["run.batch_size=1"], "run.batch_size=1 prompts cannot make policy.minibatches=2"),
])
def test_bad_values_fail_before_any_process_starts(tmp_path, sets, message):
    from rlcore.errors import RlcoreError

    with pytest.raises(RlcoreError, match=message):
        record, cfg = resolve_experiment("ppo", None, sets)
        launch(record.name, cfg, nproc=2, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_ppo_raises_the_reward_and_resumes_exactly(tmp_path, warm_start):
    sets = ["run.max_steps=60", "run.save_every=30"]
    rows = ppo(tmp_path / "full", warm_start, *sets)
    reward = series(rows, "reward/mean")
    assert len(reward) == 60
    assert mean(reward[-15:]) > mean(reward[:15]) + 0.05, reward
    assert max(series(rows, "gen/logprob_drift")) <= 1e-4
    for key in ("kl/ref", "actor_train/clip_frac", "actor_train/approx_kl", "actor_train/entropy",
                "critic_train/loss", "critic_train/explained_var", "response/length_mean",
                "response/truncated_frac", "advantages/std", "perf/tokens_per_s",
                "time/actor_gen", "time/rew_inf"):
        assert key in rows[-1], key
    # Cut after the first checkpoint, resume: every later step repeats exactly.
    cut = tmp_path / "cut"
    ppo(cut, warm_start, "run.max_steps=30", "run.save_every=30")
    resumed = ppo(cut, warm_start, *sets, resume=True)
    assert [r["step"] for r in resumed] == list(range(1, 61))
    for key in ("reward/mean", "actor_train/loss", "critic_train/loss", "kl/ref"):
        assert series(resumed, key) == pytest.approx(series(rows, key), abs=1e-6), key


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_every_zero_stage_generates_and_trains(tmp_path, warm_start, stage):
    rows = ppo(tmp_path, warm_start, "run.max_steps=3", f"train.zero_stage={stage}",
               f"critic.train.zero_stage={stage}", "run.eval_every=3", "eval.size=8")
    assert len(rows) == 3 and max(series(rows, "gen/logprob_drift")) <= 1e-4
    assert "eval/accuracy" in rows[-1]


@pytest.mark.slow
def test_two_processes_zero3(tmp_path, warm_start):
    rows = ppo(tmp_path, warm_start, "run.max_steps=40", "train.zero_stage=3",
               "critic.train.zero_stage=3", nproc=2)
    reward = series(rows, "reward/mean")
    assert len(reward) == 40 and mean(reward[-10:]) > mean(reward[:10]), reward
    assert max(series(rows, "gen/logprob_drift")) <= 1e-4
    ckpt = tmp_path / "checkpoints" / "step-00000040"
    assert (ckpt / "actor" / "model.safetensors").is_file()
    assert (ckpt / "critic" / "model.safetensors").is_file()


def test_reward_model_role_loads_an_rm_checkpoint(tmp_path):
    record, cfg = resolve_experiment("rm", None, ["run.progress=false", "run.max_steps=2",
                                                  "run.eval_every=0"])
    launch(record.name, cfg, run_dir=tmp_path / "rm", resume=False)
    rm_dir = tmp_path / "rm" / "checkpoints" / "step-00000002" / "actor"
    rows = ppo(tmp_path / "ppo", None, "run.max_steps=2", f"reward.path={rm_dir}",
               "warm_start.sft_steps=0")
    assert len(rows) == 2
    assert len(set(series(rows, "reward/mean"))) == 2  # real scores, not a constant


def test_a_non_finite_loss_stops_ppo_without_saving(tmp_path):
    with pytest.raises(NonFiniteError, match="non-finite") as info:
        ppo(tmp_path, None, "run.max_steps=6", "run.save_every=1", "train.optimizer.lr=1e30",
            "train.grad_clip=0", "warm_start.sft_steps=0")
    assert "step" in str(info.value)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and "non-finite" in summary["error"]
    good = sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*"))
    failed_at = summary["steps"] + 1
    assert all(int(name.split("-")[1]) < failed_at for name in good)


def test_a_non_finite_sft_loss_exits_non_zero_and_keeps_the_good_checkpoints(tmp_path, cli_env):
    run_dir = tmp_path / "sft"
    args = [RLCORE, "train", "sft", "--run-dir", str(run_dir), "--set", "run.progress=false",
            "--set", "run.max_steps=20", "--set", "run.save_every=1", "--set", "run.keep_last=2",
            "--set", "run.eval_every=0", "--set", "train.grad_clip=0",
            "--set", "train.optimizer.lr=1e30"]
    done = subprocess.run(args, env=cli_env, capture_output=True, text=True)
    assert done.returncode != 0, done.stdout
    assert "non-finite" in done.stderr and "Traceback" not in done.stderr
    kept = sorted(p.name for p in (run_dir / "checkpoints").glob("step-*"))
    assert kept and all(Path(run_dir / "checkpoints" / k / "COMPLETE").is_file() for k in kept)
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        json.loads(line)  # strict JSON: no NaN tokens
        assert "NaN" not in line and "Infinity" not in line
