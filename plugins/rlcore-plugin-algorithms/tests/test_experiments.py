"""The standard experiments learn the embedded task, on CPU with real DeepSpeed (gloo)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from killing import kill_after_checkpoint

from rlcore.cli.train_cmd import resolve_experiment
from rlcore.launch.launcher import launch

RLCORE = shutil.which("rlcore") or str(Path(sys.executable).parent / "rlcore")
QUICK = ["run.progress=false", "dataset.embedded_size=512", "run.epochs=100"]


def read_metrics(run_dir: Path) -> list[dict]:
    """Every step's metrics, in order."""
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def series(rows: list[dict], key: str) -> list[float]:
    """One metric over the steps that logged it."""
    return [r[key] for r in rows if key in r]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def train(name, run_dir, *sets, nproc=1):
    record, cfg = resolve_experiment(name, None, [*QUICK, *sets])
    launch(record.name, cfg, nproc=nproc, run_dir=run_dir, resume=False)
    return read_metrics(run_dir)


def test_sft_loss_goes_down_and_eval_runs(tmp_path):
    rows = train("sft", tmp_path, "run.max_steps=24", "run.batch_size=16", "run.eval_every=12",
                 "eval.size=16", "train.optimizer.lr=3e-3")
    loss = series(rows, "actor_train/loss")
    assert len(loss) == 24
    assert mean(loss[-4:]) < 0.6 * mean(loss[:4]), loss
    assert [r["step"] for r in rows if "eval/accuracy" in r] == [0, 12, 24]


def test_rm_accuracy_rises_above_chance(tmp_path):
    # From scratch a reward model must learn to add before it can judge a sum, so the
    # test uses single-digit operands; real runs start the RM from an SFT checkpoint.
    rows = train("rm", tmp_path, "run.max_steps=150", "run.eval_every=0")
    accuracy = series(rows, "rm_train/accuracy")
    assert mean(accuracy[-50:]) > 0.55, accuracy
    assert mean(series(rows, "rm_train/loss")[-50:]) < 0.69


def test_user_data_is_evaluated_only_on_its_own_held_out_file(tmp_path):
    from rlcore.data.embedded import pair_rows

    for split in ("train", "eval"):
        rows = pair_rows(64, split=split, max_operand=9)
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = ["run.max_steps=4", "run.eval_every=2", f"dataset.path={tmp_path / 'train.jsonl'}"]
    rows = train("rm", tmp_path / "no-eval", *common)
    assert not series(rows, "eval/accuracy")  # never the embedded task, nor training rows
    rows = train("rm", tmp_path / "eval", *common, f"eval.path={tmp_path / 'eval.jsonl'}",
                 "eval.size=16")
    assert [r["step"] for r in rows if "eval/accuracy" in r] == [0, 2, 4]


def test_dpo_reward_margin_grows(tmp_path):
    rows = train("dpo", tmp_path, "run.max_steps=60", "run.eval_every=30")
    margin = series(rows, "actor_train/rewards/margin")
    assert abs(margin[0]) < 1e-6  # the actor starts as the reference
    assert mean(margin[-30:]) > 0.05, margin
    assert mean(series(rows, "actor_train/loss")[-30:]) < 0.69
    assert [r["step"] for r in rows if "eval/reward_accuracy" in r] == [0, 30, 60]


@pytest.mark.slow
@pytest.mark.parametrize("sets, floor", [
    (["dpo.loss_type=kto"], 0.01),  # 60 steps: 0.025 (docs/dpo.md: KTO moves slowly)
    (["dpo.loss_type=orpo"], 0.04),  # 0.079
    (["dpo.loss_type=simpo", "dpo.beta=2.0", "dpo.gamma=1.0"], 0.3),  # 0.63
], ids=["kto", "orpo", "simpo"])
def test_preference_losses_widen_the_reward_margin(tmp_path, sets, floor):
    rows = train("dpo", tmp_path, "run.max_steps=60", "run.eval_every=0", *sets)
    margin = series(rows, "actor_train/rewards/margin")
    assert mean(margin[-30:]) > max(floor, mean(margin[:10])), margin


@pytest.mark.slow
def test_sft_two_processes_zero3(tmp_path):
    rows = train("sft", tmp_path, "run.max_steps=16", "run.batch_size=16", "train.zero_stage=3",
                 "train.optimizer.lr=3e-3", "actor.hidden_size=64", nproc=2)
    loss = series(rows, "actor_train/loss")
    assert len(loss) == 16 and mean(loss[-4:]) < 0.7 * mean(loss[:4]), loss
    assert (tmp_path / "checkpoints" / "step-00000016" / "actor" / "model.safetensors").is_file()


def test_bad_set_is_rejected_before_any_process_starts(tmp_path, cli_env):
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [RLCORE, "train", "sft", "--nproc", "2", "--run-dir", str(run_dir), "--set", "run.max_steps=lots"],
        capture_output=True, text=True, env=cli_env, timeout=120,
    )
    assert result.returncode == 2
    assert "config key 'run.max_steps': expected int, got 'lots'" in result.stderr
    assert "Traceback" not in result.stderr and not run_dir.exists()


@pytest.mark.slow
def test_killed_run_resumes_with_the_same_losses(tmp_path, cli_env):
    args = ["train", "sft", *[f"--set={s}" for s in [*QUICK, "run.max_steps=12", "run.save_every=4",
                                                       "run.batch_size=8", "run.eval_every=0"]]]
    straight = tmp_path / "straight"
    done = subprocess.run([RLCORE, *args, "--run-dir", str(straight)], check=True, env=cli_env,
                          capture_output=True, text=True, timeout=600)
    expected = series(read_metrics(straight), "actor_train/loss")
    assert f"checkpoint: {straight / 'checkpoints' / 'step-00000012'} (HF model dirs: actor)" in done.stdout

    killed = tmp_path / "killed"
    kill_after_checkpoint([RLCORE, *args, "--run-dir", str(killed)], killed, 8, cli_env)
    subprocess.run([RLCORE, *args, "--run-dir", str(killed)], check=True, env=cli_env,
                   capture_output=True, timeout=600)
    resumed = {r["step"]: r["actor_train/loss"] for r in read_metrics(killed)}
    assert sorted(resumed) == list(range(1, 13))
    assert [resumed[s] for s in range(1, 13)] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("name", ["sft", "rm", "dpo", "ppo", "grpo", "remax", "online_dpo",
                                  "distill"])
def test_every_config_key_has_help_for_rlcore_info(name):
    from rlcore.config import describe_fields

    _, cfg = resolve_experiment(name, None, [])
    missing = [key for key, _, _, help_text in describe_fields(type(cfg)) if not help_text]
    assert not missing, f"{name}: keys without metadata help: {missing}"
