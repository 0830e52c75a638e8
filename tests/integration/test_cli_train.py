"""`rlcore train` as a person runs it: bad data and bad config come back as one clear line."""

import json
import sys
from types import SimpleNamespace

import pytest

from rlcore.cli.app import main

pytest.importorskip("rlcore_plugin_algorithms")


@pytest.fixture
def rlcore(capsys, monkeypatch):
    """Run ``rlcore ARGS`` in-process through the console entry point (same error handling)."""

    def run(*args, cwd):
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["rlcore", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code or 0
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)

    return run


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"prompt": "1+1=", "answer": "2"}', '{"prompt": "2+2=", "answer": 4}'],
         "line 2, field 'answer': expected a string, got an integer"),
        (['{"prompt": "1+1=", "answer": "2"}', '{"prompt": "2+2=" "answer": "4"}'], "line 2"),
        (['{"prompt": "1+1="}'], "line 1, field 'answer'"),
        ([], "empty"),
    ],
)
def test_bad_data_is_one_clear_error(rlcore, tmp_path, lines, message):
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(lines) + ("\n" if lines else ""))
    result = rlcore("train", "sft", "--set", f"dataset.path={data}", "--set", "run.max_steps=1", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "data.jsonl" in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_all_rows_too_long_names_the_limit(rlcore, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"prompt": "1+1=", "answer": "2" * 50}) + "\n")
    result = rlcore("train", "sft", "--set", f"dataset.path={data}", "--set", "dataset.max_length=8",
                    "--set", "dataset.truncation=drop", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "data.jsonl" in result.stderr and "max_length" in result.stderr, result.stderr


def test_print_config_round_trips_and_dry_run_validates(rlcore, tmp_path):
    printed = rlcore("train", "dpo", "--set", "dpo.beta=0.2", "--print-config", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    (tmp_path / "dpo.yaml").write_text(printed.stdout)
    again = rlcore("train", "dpo", "--config", "dpo.yaml", "--print-config", cwd=tmp_path)
    assert again.stdout == printed.stdout
    dry = rlcore("train", "dpo", "--config", "dpo.yaml", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and "ref_inference" in dry.stdout and "actor_train" in dry.stdout
    assert not (tmp_path / "runs").exists()


def test_show_exports_mermaid_and_dot(rlcore, tmp_path):
    mermaid = rlcore("show", "dpo", "--format", "mermaid", cwd=tmp_path)
    assert mermaid.returncode == 0 and mermaid.stdout.startswith("flowchart")
    assert "ref_logps" in mermaid.stdout
    dot = rlcore("show", "sft", "--format", "dot", cwd=tmp_path)
    assert dot.returncode == 0 and dot.stdout.lstrip().startswith("digraph")


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


SFT_ROWS = [{"prompt": f"{i}+1=", "answer": str(i + 1)} for i in range(8)]


def test_dry_run_checks_the_defaults_and_starts_nothing(rlcore, tmp_path):
    dry = rlcore("train", "sft", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "actor_train" in dry.stdout and "dry run: sft would start" in dry.stdout
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("sets, message", [
    (["dataset.path=missing.jsonl"], "missing.jsonl: no such file"),
    (["dataset.path=train.jsonl", "eval.path=bad.jsonl", "run.eval_every=5"],
     "bad.jsonl line 2: malformed JSON"),
    (["dataset.path=train.jsonl", "run.max_tokens=4", "run.batch_size=null"],
     "max_tokens=4 is smaller than the longest sample"),
    (["actor.path=no/such/model"], "actor.path: model directory no/such/model does not exist"),
    (["actor.path=model"], "actor.path: model/config.json is missing"),
])
def test_dry_run_rejects_what_a_run_would_reject(rlcore, tmp_path, sets, message):
    write_rows(tmp_path / "train.jsonl", SFT_ROWS)
    (tmp_path / "bad.jsonl").write_text(json.dumps(SFT_ROWS[0]) + '\n{"prompt": \n')
    (tmp_path / "model").mkdir()
    args = [a for s in sets for a in ("--set", s)]
    dry = rlcore("train", "sft", *args, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 2 and message in dry.stderr, dry.stderr
    assert "Traceback" not in dry.stderr and not (tmp_path / "runs").exists()


def test_dry_run_reads_the_eval_pairs_of_dpo(rlcore, tmp_path):
    (tmp_path / "eval.jsonl").write_bytes(b'{"prompt": "1+1=", "chosen": "2", "rejected": "\xff"}\n')
    dry = rlcore("train", "dpo", "--set", "eval.path=eval.jsonl", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 2 and "eval.jsonl line 1: not valid UTF-8" in dry.stderr, dry.stderr


def test_dry_run_reads_the_rl_warm_start_data_as_prompt_answer_rows(rlcore, tmp_path):
    write_rows(tmp_path / "prompts.jsonl", [{"prompt": "1+1="}, {"prompt": "2+2="}])
    sets = ["--set", "dataset.path=prompts.jsonl"]
    dry = rlcore("train", "grpo", *sets, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 2 and "prompts.jsonl, line 1: no 'answer'" in dry.stderr, dry.stderr
    # without the warm start, and with a reward that needs no answer, the rows are enough
    dry = rlcore("train", "grpo", *sets, "--set", "warm_start.sft_steps=0", "--set",
                 "reward.functions=[format_penalty]", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr


def test_a_bad_eval_file_fails_before_the_first_step(rlcore, tmp_path):
    write_rows(tmp_path / "train.jsonl", SFT_ROWS)
    result = rlcore("train", "sft", "--set", "dataset.path=train.jsonl", "--set", "eval.path=gone.jsonl",
                    "--set", "run.eval_every=2", "--set", "run.eval_at_start=false",
                    "--set", "run.max_steps=4", "--set", "run.progress=false", cwd=tmp_path)
    assert result.returncode == 2 and "gone.jsonl: no such file" in result.stderr, result.stderr
    assert not (tmp_path / "runs" / "sft" / "metrics.jsonl").exists()  # no step was trained


def test_a_missing_actor_path_is_a_missing_model_directory(rlcore, tmp_path):
    result = rlcore("train", "sft", "--set", "actor.path=nowhere", "--set", "run.max_steps=1", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "actor.path: model directory nowhere does not exist" in result.stderr
    assert "tokenizer" not in result.stderr


@pytest.mark.slow
def test_a_run_whose_loss_flat_lines_warns(rlcore, tmp_path):
    """lr 1e6 sticks the embedded task's loss at 4.64 from step 2: the run says so."""
    result = rlcore("train", "sft", "--set", "train.optimizer.lr=1e6", "--set", "run.max_steps=8",
                    "--set", "run.flat_loss_steps=5", "--set", "run.eval_every=0",
                    "--run-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "warning: actor_train/loss has stayed at 4.64" in result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and "since step 2" in summary["warnings"][0]
