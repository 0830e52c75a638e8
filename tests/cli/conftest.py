"""A tiny trained run shared by the model commands' tests (eval, generate, chat, export)."""

import json

import pytest
from typer.testing import CliRunner

from rlcore.cli.app import app

TINY_SFT = ["run.progress=false", "run.batch_size=8", "run.max_steps=30", "run.eval_every=15",
            "eval.size=16", "eval.metric=regex_match", r"eval.metric_args.pattern=\d\d"]


@pytest.fixture(scope="session")
def sft_run(tmp_path_factory):
    """An sft run of 30 steps whose eval (a two-digit answer counts as correct) ran at its end."""
    run_dir = tmp_path_factory.mktemp("runs") / "sft"
    sets = [a for s in TINY_SFT for a in ("--set", s)]
    result = CliRunner().invoke(app, ["train", "sft", *sets, "--run-dir", str(run_dir)])
    assert result.exit_code == 0, result.output
    return run_dir


@pytest.fixture(scope="session")
def sft_last_eval(sft_run):
    """The run's last logged ``eval/`` metrics, with their step."""
    rows = [json.loads(line) for line in (sft_run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "eval/accuracy" in r][-1]
