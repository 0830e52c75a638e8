"""`rlcore list`, `info`, `list-plugins` and plugin-added commands, through typer's runner."""

import os
import re
import subprocess
import sys

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from rlcore.cli import plugins_cmd
from rlcore.cli.app import RlcoreError, app, build_app, needs_plugin_commands
from rlcore.plugins.manager import DEFAULT_IMPORT_TIMEOUT_S

runner = CliRunner()

REWARD = '''
import rlcore
from rlcore.plugins.records import RewardFunctionRecord

@rlcore.hookimpl
def rlcore_reward_functions():
    return [RewardFunctionRecord("{item}", impl="builtins:len", doc="a test reward")]
'''


@pytest.fixture
def wide(monkeypatch):
    """Print tables 200 columns wide, so that each row is one line."""
    monkeypatch.setattr(plugins_cmd, "console", Console(width=200))


def test_list_takes_the_singular_and_suggests_on_a_typo(rlcore_plugins):
    assert "exact_match" in runner.invoke(app, ["list", "reward"]).output
    result = runner.invoke(app, ["list", "rewrds"])
    assert isinstance(result.exception, RlcoreError)
    assert "Did you mean 'rewards'?" in str(result.exception)


def test_info_uses_the_singular_from_the_kinds_table(rlcore_plugins):
    result = runner.invoke(app, ["info", "families", "llama"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("family llama") and "familie" not in result.output


def test_info_experiment_shows_what_a_run_uses(rlcore_plugins, wide):
    # --print-config's YAML is stdout; the settings block goes to stderr
    resolved = yaml.safe_load(runner.invoke(app, ["train", "sft", "--print-config"]).stdout)
    shown = runner.invoke(app, ["info", "experiments", "sft"]).output
    rows = dict(re.findall(r"^  (\S+) = (.+?)  \S", shown, re.MULTILINE))  # key = value  type

    def scalars(tree, prefix=""):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from scalars(value, f"{prefix}{key}.")
            elif isinstance(value, bool | int | float):
                yield f"{prefix}{key}", value

    checked = dict(scalars(resolved))
    assert {"actor.hidden_size", "train.optimizer.lr", "run.max_steps"} <= set(checked)
    for key, value in checked.items():
        assert rows[key] == repr(value), (key, rows[key], value)


def test_conflicting_names_are_listed_not_fatal(fake_distribution, rlcore_plugins, wide):
    fake_distribution("one", REWARD.format(item="shared"))
    fake_distribution("two", REWARD.format(item="shared"))
    rlcore_plugins.reload()
    result = runner.invoke(app, ["list", "rewards"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "shared" in line]
    assert len(lines) == 2 and all("(conflict)" in line for line in lines)
    assert "rlcore-plugin-one" in lines[0] and "rlcore-plugin-two" in lines[1]
    assert "exact_match" in result.output
    used = runner.invoke(app, ["info", "rewards", "shared"])
    assert "registered by both rlcore-plugin-one 0.1.0 and rlcore-plugin-two 0.1.0" in str(used.exception)


def test_list_plugins_does_not_cut_long_names(fake_distribution, rlcore_plugins, monkeypatch):
    monkeypatch.setattr(plugins_cmd, "console", Console(width=80))
    fake_distribution("a-rather-long-plugin-name-x", REWARD.format(item="long_reward"))
    rlcore_plugins.reload()
    output = runner.invoke(app, ["list-plugins"]).output
    assert "…" not in output
    cells = "".join(line.split("│")[1].strip() for line in output.splitlines() if line.count("│") > 2)
    assert "a-rather-long-plugin-name-x" in cells


def test_incompatible_plugin_is_listed_with_its_reason(fake_distribution, rlcore_plugins, wide):
    fake_distribution("future", "raise RuntimeError('must not be imported')\n", requires=("rlcore>=1,<2",))
    rlcore_plugins.reload()
    output = runner.invoke(app, ["list-plugins"]).output
    line = next(line for line in output.splitlines() if "rlcore-plugin-future" in line)
    assert "incompatible" in line
    assert "needs rlcore<2,>=1, but rlcore 0.1.0 is installed" in output


COMMANDS = '''
import rlcore

@rlcore.hookimpl
def rlcore_cli_commands(app):
    @app.command()
    def hello(name: str = "world"):
        """Say hello."""
        print(f"hello {name}")

    @app.command("train")
    def not_allowed():
        """Would shadow the core's train."""
'''

BROKEN_COMMANDS = '''
import rlcore

@rlcore.hookimpl
def rlcore_cli_commands(app):
    raise RuntimeError("cli hook is broken")
'''

EXITING_COMMANDS = '''
import sys, rlcore

@rlcore.hookimpl
def rlcore_cli_commands(app):
    sys.exit(5)
'''


def test_plugins_add_commands_and_broken_ones_do_not_take_the_cli_down(fake_distribution, rlcore_plugins):
    fake_distribution("greeter", COMMANDS)
    fake_distribution("broken", BROKEN_COMMANDS)
    fake_distribution("exiting", EXITING_COMMANDS)
    rlcore_plugins.reload()
    cli = build_app()
    assert runner.invoke(cli, ["hello", "--name", "rl"]).output == "hello rl\n"
    help_text = runner.invoke(cli, ["--help"]).output
    assert "hello" in help_text and "Say hello." in help_text
    train_help = runner.invoke(cli, ["train", "--help"]).output
    assert "Train an experiment" in train_help  # the core's train, not the plugin's
    assert runner.invoke(cli, ["list", "rewards"]).exit_code == 0
    assert rlcore_plugins.status()["greeter"].provides == {"hooks": ["cli_commands"]}


def hanging_plugin(fake_distribution, marker):
    """A plugin whose import writes ``marker``, then hangs; the env that finds it."""
    dist_info = fake_distribution("sleeper", f"import time\nopen({str(marker)!r}, 'w').close()\n"
                                             "time.sleep(600)\n")
    return {**os.environ, "RLCORE_PLUGIN_IMPORT_TIMEOUT": "1",
            "PYTHONPATH": os.pathsep.join([str(dist_info.parent), os.environ.get("PYTHONPATH", "")])}


def rlcore_cli(env, *args):
    return subprocess.run([sys.executable, "-c", "from rlcore.cli.app import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("args", [["--version"], ["--help"], [], ["train", "--help"]])
def test_version_and_help_never_import_plugins(fake_distribution, tmp_path, args):
    env = hanging_plugin(fake_distribution, tmp_path / "imported")
    result = rlcore_cli(env, *args)
    assert result.returncode in (0, 2), result.stderr  # no command: typer shows help, exits 2
    assert "rlcore" in result.stdout + result.stderr
    assert not (tmp_path / "imported").exists() and "sleeper" not in result.stderr


def test_a_hanging_plugin_is_stopped_when_plugins_are_needed(fake_distribution, tmp_path):
    env = hanging_plugin(fake_distribution, tmp_path / "imported")
    result = rlcore_cli(env, "list-plugins")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "imported").exists()
    assert "'sleeper'" in result.stderr and "did not finish within 1 s" in result.stderr


@pytest.mark.parametrize("args, needed", [
    (["--version"], False), (["--help"], False), ([], False), (["train", "sft"], False),
    (["list-plugins"], False), (["hello", "--name", "x"], True), (["--verbose", "hello"], True),
])
def test_only_a_command_the_core_lacks_loads_the_plugins_commands(args, needed):
    assert needs_plugin_commands(args) is needed


def test_the_default_import_wait_is_short():
    assert DEFAULT_IMPORT_TIMEOUT_S <= 10
