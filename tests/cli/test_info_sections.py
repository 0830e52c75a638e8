"""`rlcore info` fits a terminal: the config by section, `--section` and `--keys`; `rlcore train`
with no name lists the experiments; flags show no `<bool>` in help."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from rlcore.cli import plugins_cmd, train_cmd
from rlcore.cli.app import app
from rlcore.errors import RlcoreError

runner = CliRunner()
RLCORE = shutil.which("rlcore") or str(Path(sys.executable).parent / "rlcore")
KEY = re.compile(r"^  (\S+) = ", re.MULTILINE)


@pytest.fixture
def narrow(monkeypatch):
    """An 80-column terminal."""
    monkeypatch.setattr(plugins_cmd, "console", Console(width=80))
    monkeypatch.setattr(train_cmd, "console", Console(width=80))


def test_info_groups_the_config_by_section_and_cuts_nothing_at_80_columns(narrow):
    out = runner.invoke(app, ["info", "experiments", "ppo"]).output
    keys = KEY.findall(out)
    assert {"actor.path", "gen.n_samples", "policy.eps_clip", "run.log_every_s"} <= set(keys)
    headings = re.findall(r"^(\w+)  ", out, re.MULTILINE)
    assert headings[:3] == ["actor", "ref", "reward"] and "gen" in headings
    assert [k.split(".")[0] for k in keys] == sorted(
        (k.split(".")[0] for k in keys), key=headings.index)  # every key under its heading
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80


def test_section_and_keys_filters(narrow):
    out = runner.invoke(app, ["info", "experiments", "ppo", "--section", "gen"]).output
    assert KEY.findall(out) and all(k.startswith("gen.") for k in KEY.findall(out))
    out = runner.invoke(app, ["info", "experiments", "ppo", "--keys", "policy.*",
                              "--keys", "*.optimizer.lr"]).output
    keys = KEY.findall(out)
    assert "policy.eps_clip" in keys and "train.optimizer.lr" in keys
    assert all(k.startswith("policy.") or k.endswith(".optimizer.lr") for k in keys)
    out = runner.invoke(app, ["info", "experiments", "ppo", "--section", "kl", "--keys",
                              "*.coef"]).output
    assert KEY.findall(out) == ["kl.coef"]


@pytest.mark.parametrize("args, message", [
    (["--section", "gn"], "--section gn: PPOConfig has no such section. Did you mean 'gen'?"),
    (["--keys", "polcy.*"], "--keys polcy.*: no key of PPOConfig matches. Did you mean 'policy'?"),
])
def test_a_bad_filter_is_an_error_with_a_suggestion(args, message):
    result = runner.invoke(app, ["info", "experiments", "ppo", *args])
    assert isinstance(result.exception, RlcoreError) and message in str(result.exception)
    assert result.output == ""  # nothing printed before the error


def test_a_bad_section_is_one_line_on_stderr():
    result = subprocess.run([RLCORE, "info", "experiments", "ppo", "--section", "gn"],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "COLUMNS": "400"})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1].startswith("error: --section gn:")
    assert "Did you mean 'gen'?" in result.stderr


def test_train_without_a_name_lists_the_experiments(monkeypatch):
    monkeypatch.setattr(plugins_cmd, "console", Console(width=200))
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 0, result.output
    assert re.search(r"│ sft +│", result.output) and re.search(r"│ ppo +│", result.output)
    assert "rlcore train NAME" in result.output


def test_flags_show_no_bool_in_help():
    out = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "120"}).output
    assert "--dry-run" in out and "--print-config" in out and "<bool>" not in out
    assert "<int range>" in out  # options that take a value keep their type
