"""Safe defaults end to end through ``rlcore train`` (issue 25, item 8): checkpoints by wall
time, a short last batch, --dry-run rejecting what the run rejects, extending a run."""

import json

from typer.testing import CliRunner

from rlcore.cli.app import app
from rlcore.runtime.options import RunOptions

runner = CliRunner()
QUIET = ["run.progress=false", "run.eval_every=0"]
GRPO = [*QUIET, "warm_start.sft_steps=0", "gen.n_samples=2", "gen.max_new_tokens=4"]


def train(name, run_dir, *sets, extra=()):
    args = ["train", name, *[a for s in sets for a in ("--set", s)], "--run-dir", str(run_dir)]
    return runner.invoke(app, [*args, *extra])


def rows(path, n, drop_answer_at=None):
    lines = [{"prompt": f"{i}+1=", "answer": str(i + 1)} for i in range(n)]
    if drop_answer_at is not None:
        del lines[drop_answer_at - 1]["answer"]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def steps_of(run_dir):
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_checkpoints_by_wall_time_every_rank_at_the_same_step(tmp_path):
    """run.save_every_s is on by default (600 s); with a tiny value each step of a 2-rank run
    is saved, which needs every rank to decide alike (a save is collective)."""
    assert RunOptions().save_every_s == 600.0 and RunOptions().save_every == 0
    run_dir = tmp_path / "sft"
    result = train("sft", run_dir, *QUIET, "run.max_steps=3", "run.save_every_s=1e-9",
                   "run.keep_last=0", extra=["--nproc", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "step-00000001", "step-00000002", "step-00000003"]


def test_a_short_last_batch_trains_with_fewer_minibatches(tmp_path, capfd):
    """33 prompts at batch size 32: step 2 holds 1 prompt; it trains as 1 minibatch, with a note."""
    data = rows(tmp_path / "p33.jsonl", 33)
    run_dir = tmp_path / "grpo"
    result = train("grpo", run_dir, *GRPO, f"dataset.path={data}", "run.batch_size=32",
                   "run.max_steps=3", "policy.minibatches=4")
    assert result.exit_code == 0, result.output
    out = result.output + capfd.readouterr().out
    assert "trains as 1 minibatch(es), not policy.minibatches=4" in out
    assert steps_of(run_dir) == [1, 2, 3]


def test_dry_run_and_run_reject_a_row_without_its_answer(tmp_path):
    """The same one line from --dry-run and the run: the file, the line, the field; the field
    is not listed among those the row has."""
    data = rows(tmp_path / "bad.jsonl", 6, drop_answer_at=4)
    for extra in (["--dry-run"], []):
        result = train("grpo", tmp_path / "run", *GRPO, f"dataset.path={data}",
                       "run.batch_size=4", "run.max_steps=2", extra=extra)
        assert result.exit_code != 0
        message = str(result.exception)
        assert message.startswith(f"{data}, line 4: no 'answer' (or 'ground_truth') field; "
                                  "its fields: none besides the prompt."), message
        assert "'exact_match'" in message
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_dry_run_rejects_bad_eval_rows(tmp_path):
    data = rows(tmp_path / "eval.jsonl", 6, drop_answer_at=2)
    result = train("grpo", tmp_path / "run", *GRPO, "run.eval_every=5", f"eval.path={data}",
                   extra=["--dry-run"])
    assert result.exit_code != 0
    assert str(result.exception).startswith(f"eval.path {data}, line 2: no 'answer'")


def test_extending_a_run_trains_the_extra_steps_or_says_why_not(tmp_path, capfd):
    """A higher run.max_steps trains the extra steps; where run.epochs caps it, the start says
    so and a finished run says there is nothing to train; config.yaml's change is announced
    and the earlier file kept."""
    data = rows(tmp_path / "six.jsonl", 6)
    run_dir = tmp_path / "sft"
    base = [*QUIET, f"dataset.path={data}", "run.batch_size=3", "run.epochs=1"]
    assert train("sft", run_dir, *base, "run.max_steps=1").exit_code == 0
    result = train("sft", run_dir, *base, "run.max_steps=2")
    assert result.exit_code == 0, result.output
    assert steps_of(run_dir) == [1, 2]
    out = result.output + capfd.readouterr().out
    assert "config.yaml now holds this run's config (run.max_steps: 1 -> 2)" in out
    assert "max_steps: 1" in (run_dir / "config.previous.yaml").read_text()
    result = train("sft", run_dir, *base, "run.max_steps=5")
    assert result.exit_code == 0, result.output
    out = result.output + capfd.readouterr().out
    assert "run.max_steps=5 is capped by run.epochs=1: 2 steps (2 batches an epoch)" in out
    assert "nothing to train: the run has its 2 steps already" in out
    result = train("sft", run_dir, *[s for s in base if s != "run.epochs=1"], "run.epochs=3",
                   "run.max_steps=5")
    assert result.exit_code == 0, result.output
    assert steps_of(run_dir) == [1, 2, 3, 4, 5]


def test_dry_run_batches_the_data_as_the_ranks_will(tmp_path):
    """3 prompts at batch size 4: one rank trains on the short batch, but with --nproc 2 the
    short batch is dropped and no step is left; --dry-run --nproc 2 says so, as the run would."""
    data = rows(tmp_path / "three.jsonl", 3)
    sets = [*GRPO, f"dataset.path={data}", "run.batch_size=4"]
    assert train("grpo", tmp_path / "run", *sets, extra=["--dry-run"]).exit_code == 0
    result = train("grpo", tmp_path / "run", *sets, extra=["--dry-run", "--nproc", "2"])
    assert result.exit_code != 0
    assert str(result.exception).startswith("an epoch of 3 samples yields no batch with "
                                            "batch_size=4 and drop_last=True")
