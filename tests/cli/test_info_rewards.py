"""``rlcore info rewards NAME`` documents a reward function's parameters, without torch."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from rlcore.cli.app import app
from rlcore.cli.plugins_cmd import reflow, reward_parameters

RLCORE = shutil.which("rlcore") or str(Path(sys.executable).parent / "rlcore")


def test_subprocess_info_rewards_lists_parameters():
    result = subprocess.run([RLCORE, "info", "rewards", "math_answer"], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "COLUMNS": "160"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "rlcore_plugin_rewards.rules:math_answer" in out  # the implementation
    assert "equals the sample's answer" in out  # the record's doc and the docstring
    assert "tolerance: absolute tolerance" in out
    for name, default in [("tolerance", "1e-06"), ("relative_tolerance", "0.0"),
                          ("reward_unparsed", "0.0")]:
        assert any(name in line and default in line and "float" in line
                   for line in out.splitlines()), (name, out)


def test_info_rewards_shows_required_parameters(rlcore_plugins):
    result = CliRunner().invoke(app, ["info", "rewards", "regex_match"])
    assert result.exit_code == 0, result.output
    assert any("pattern" in line and "required" in line for line in result.output.splitlines())


def test_info_rewards_does_not_import_torch():
    code = (
        "import sys; sys.argv = ['rlcore', 'info', 'rewards', 'weighted']\n"
        "from rlcore.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "rewards" in result.stdout


def test_reward_parameters_reads_any_signature():
    def typed(completions, samples, *, scale: float = 2.0, name: str, **rest):
        """Doc."""

    def plain(completions, samples, limit=3):
        """Doc."""

    assert reward_parameters(typed) == [("scale", "float", "2.0"), ("name", "str", "required"),
                                        ("**rest", "any", "(any other keyword)")]
    assert reward_parameters(plain) == [("limit", "-", "3")]
    assert reward_parameters(len) == []


def test_reflow_joins_paragraphs_and_list_items():
    doc = "First line\ngoes on.\n\nParameters:\n  a: one\n    more.\n  b: two"
    assert reflow(doc) == "First line goes on.\n\nParameters:\n  a: one more.\n  b: two"
