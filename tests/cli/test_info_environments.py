"""``rlcore list environments`` and ``rlcore info environments NAME``: the generic kind table,
plus an environment's tools and whether it has tasks and demonstrations."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlcore.cli.app import app

RLCORE = shutil.which("rlcore") or str(Path(sys.executable).parent / "rlcore")

PLUGIN = '''
import rlcore
from rlcore.plugins.records import EnvironmentRecord
from rlcore.sdk import Environment, tool_schema


class Lookup(Environment):
    tools = [tool_schema("lookup", "Find a word in the dictionary.", {"word": {"type": "string"}}),
             tool_schema("spell", "Spell a word.", {"word": {"type": "string"}})]


class Bare(Environment):
    pass


@rlcore.hookimpl
def rlcore_environments():
    return [EnvironmentRecord("lookup", impl="rlcore_plugin_envs:Lookup", doc="look words up"),
            EnvironmentRecord("bare", impl="rlcore_plugin_envs:Bare", doc="nothing at all")]
'''


def invoke(*args):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_list_and_info_environments_show_tools_tasks_and_demonstrations(fake_distribution,
                                                                        rlcore_plugins):
    fake_distribution("envs", PLUGIN)
    rlcore_plugins.reload()
    listed = invoke("list", "environments")
    assert "lookup" in listed and "look words up" in listed and "rlcore-plugin-envs" in listed
    info = invoke("info", "environment", "lookup")  # the singular works too
    assert "rlcore_plugin_envs:Lookup" in info and "look words up" in info
    assert "lookup(word): Find a word in the dictionary." in info
    assert "spell(word): Spell a word." in info
    assert "tasks: no" in info and "demonstration: no" in info
    assert "tools: none" in invoke("info", "environments", "bare")


@pytest.mark.skipif(importlib.util.find_spec("rlcore_contrib_units") is None,
                    reason="contrib/rlcore-contrib-units is not installed (scripts/setup.sh installs it)")
def test_the_contrib_units_environment_is_listed_without_torch():
    env = {**os.environ, "COLUMNS": "200"}
    listed = subprocess.run([RLCORE, "list", "environments"], capture_output=True, text=True,
                            timeout=300, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "units" in listed.stdout and "rlcore-contrib-units" in listed.stdout
    code = ("import sys; sys.argv = ['rlcore', 'info', 'environments', 'units']\n"
            "from rlcore.cli.app import main\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    info = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=env)
    assert info.returncode == 0, info.stderr
    assert "convert(value, from_unit, to_unit): Convert a value" in info.stdout
    assert "tasks: yes" in info.stdout and "demonstration: yes" in info.stdout
