"""``rlcore eval`` end to end: the run's own eval figure, data files, k samples, bad input."""

import json

import pytest
from typer.testing import CliRunner

from rlcore.cli.app import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_eval_of_a_run_prints_the_accuracy_its_last_eval_logged(sft_run, sft_last_eval):
    """Same step, same prompts, same metric: the figure the run logged."""
    logged = sft_last_eval
    for model in (sft_run, sft_run / "checkpoints" / "step-00000030"):
        result = invoke("eval", model, "--json")
        assert result.exit_code == 0, result.output
        got = json.loads(result.stdout.splitlines()[-1])
        assert got["step"] == logged["step"] == 30
        assert 0 < got["accuracy"] < 1  # a figure that could differ
        assert got["accuracy"] == logged["eval/accuracy"]
        assert got["reward/regex_match"] == logged["eval/reward/regex_match"]
    lines = (sft_run / "eval" / "step-00000030.jsonl").read_text().splitlines()
    assert len(lines) == 16 and {"prompt", "completion", "scores", "correct"} <= set(json.loads(lines[0]))


def test_eval_on_a_file_with_k_samples_reports_pass_at_k(sft_run, tmp_path):
    """Sampled, 4 per prompt: pass@1 <= pass@2 <= pass@4, one JSONL row per completion."""
    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{a}+{a}=", "answer": str(2 * a)}) + "\n"
                            for a in range(10, 16)))
    out = tmp_path / "out.jsonl"
    result = invoke("eval", sft_run, "--data", data, "--metric", "exact_match", "--samples", 4,
                    "--pass-k", 1, "--pass-k", 2, "--pass-k", 4, "--temperature", 1.0, "-o", out)
    assert result.exit_code == 0, result.output
    assert "6 prompts x 4 completion(s), sampled at temperature 1.0, metric exact_match" in result.stdout
    got = {line.split()[0]: float(line.split()[1]) for line in result.stdout.splitlines()[1:]}
    assert got["accuracy"] <= got["pass@2"] <= got["pass@4"]
    assert {"reward/exact_match", "reward/regex_match", "length/mean", "length/max"} <= set(got)
    assert len(out.read_text().splitlines()) == 24


@pytest.mark.parametrize("case, expect", [
    ("missing", "no such directory; give a run dir"),
    ("empty_dir", "is not a model: no config.json"),
    ("empty_data", "the file is empty; expected at least one row"),
    ("greedy_k", "set --temperature"),
])
def test_bad_input_is_one_line_naming_what_and_what_to_do(sft_run, tmp_path, case, expect):
    """Each mistake fails before any work with one line, never a traceback."""
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "empty.jsonl").write_text("")
    args = {"missing": [tmp_path / "nope"], "empty_dir": [tmp_path / "empty_dir"],
            "empty_data": [sft_run, "--data", tmp_path / "empty.jsonl"],
            "greedy_k": [sft_run, "--samples", 2]}[case]
    result = invoke("eval", *args)
    assert result.exit_code != 0
    message = str(result.exception)
    assert expect in message and "\n" not in message


def test_a_grpo_run_evaluates_with_its_reward_and_eval_agrees(tmp_path):
    """GRPO rewarded by regex_match: eval/accuracy is regex_match's, and `rlcore eval` prints it."""
    sets = ["run.progress=false", "run.batch_size=8", "run.max_steps=1", "run.eval_every=1",
            "eval.size=16", "warm_start.sft_steps=10", "train.optimizer.lr=1e-6",  # stays mixed
            "reward.functions=[regex_match]", r"reward.args.pattern=\d\d"]
    run_dir = tmp_path / "grpo"
    result = invoke("train", "grpo", *[a for s in sets for a in ("--set", s)], "--run-dir", run_dir)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "eval/accuracy" in r][-1]
    assert logged["eval/accuracy"] == logged["eval/reward/regex_match"]
    got = json.loads(invoke("eval", run_dir, "--json").stdout.splitlines()[-1])
    assert (got["step"], got["metric"], got["accuracy"]) == (1, "regex_match", logged["eval/accuracy"])
    assert 0 < got["accuracy"] < 1  # a figure that could differ
