"""The CLI through typer's runner, and the installed ``rlcore`` script as a real subprocess."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rlcore
from rlcore.cli.app import app

runner = CliRunner()
RLCORE = shutil.which("rlcore") or str(Path(sys.executable).parent / "rlcore")


def invoke(*args):
    return runner.invoke(app, list(args))


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and rlcore.__version__ in result.output


def test_list_plugins_json_shows_first_party_plugins_active(rlcore_plugins):
    result = invoke("list-plugins", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["rewards"]["status"] == "active"
    assert "exact_match" in rows["rewards"]["provides"]["rewards"]


def test_broken_plugin_shows_error_and_other_commands_work(fake_distribution, rlcore_plugins):
    fake_distribution("broken", "raise ImportError('this plugin is broken on purpose')\n")
    rlcore_plugins.reload()
    result = invoke("list-plugins")
    assert result.exit_code == 0, result.output
    assert "broken" in result.output and "error" in result.output
    verbose = invoke("list-plugins", "-v")
    assert "this plugin is broken on purpose" in verbose.output and "Traceback" in verbose.output
    assert invoke("list", "rewards").exit_code == 0
    assert "exact_match" in invoke("info", "rewards", "exact_match").output


def test_info_unknown_name_suggests(rlcore_plugins):
    result = invoke("info", "rewards", "exact_mach")
    assert result.exit_code != 0
    assert "Did you mean 'exact_match'" in str(result.exception)


def run_cli(*args, env=None):
    return subprocess.run([RLCORE, *args], capture_output=True, text=True, env=env, timeout=300)


def test_subprocess_train_unknown_experiment_exits_cleanly():
    result = run_cli("train", "nosuch")
    assert result.returncode != 0
    assert "no experiments named 'nosuch'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_subprocess_help_and_list_plugins_do_not_import_torch():
    code = (
        "import sys; sys.argv = ['rlcore', '{}'];\n"
        "from rlcore.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    for command in ("--help", "list-plugins"):
        result = subprocess.run([sys.executable, "-c", code.format(command)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


# Per kind: what `rlcore list-plugins` says the generated package provides, how many of its
# generated tests pass, and the one that proves a short training run uses its example.
GENERATED = {
    "reward": ({"rewards": ["my_demo_keyword"]}, 3, "test_selected_reward_drives_a_grpo_run"),
    "experiment": ({"experiments": ["my-demo"]}, 3, "test_one_step_trains_on_more_tokens_than_sft"),
    "dataset": ({"datasets": ["my_demo_qa"]}, 11,
                "test_sft_selects_it_by_name_and_trains_on_the_templated_rows"),
    "interface": ({"interfaces": ["my_demo_length_reward"]}, 9,
                  "test_grpo_rewards_come_from_the_selected_interface"),
    "family": ({"families": ["my-demo"]}, 20,
               "test_selected_family_is_the_model_a_run_trains_and_saves"),
    # no run selects an environment yet: the proof is its demonstrations, replayed to reward 1
    "environment": ({"environments": ["my_demo_calculator"]}, 14,
                    "test_demonstrations_replay_to_a_positive_reward"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(GENERATED))
def test_new_plugin_installs_lists_and_passes_its_tests(tmp_path, kind):
    result = run_cli("new-plugin", "my-demo", "--kind", kind, "--dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    package = tmp_path / "rlcore-plugin-my-demo"
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(package)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    listed = json.loads(run_cli("list-plugins", "--json", env=env).stdout)
    row = next(p for p in listed if p["name"] == "my-demo")
    provides, passed, trains = GENERATED[kind]
    assert row["status"] == "active", row
    assert row["provides"] == provides
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(package / "tests")],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert re.search(rf"\b{passed} passed", tests.stdout), tests.stdout
    assert re.search(rf"^PASSED \S+::{trains}$", tests.stdout, re.M), tests.stdout


def _load_generated(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("generated_rewards", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_new_plugin_reward_names_and_scores(tmp_path):
    assert invoke("new-plugin", "my-demo", "--dir", str(tmp_path)).exit_code == 0
    src = tmp_path / "rlcore-plugin-my-demo" / "src" / "rlcore_plugin_my_demo"
    assert 'name="my_demo_keyword"' in (src / "__init__.py").read_text()  # not my-demo_keyword
    reward = _load_generated(src / "rewards.py").keyword_reward
    assert reward(["has cat", "no", "anything"], [{"keyword": "cat"}, {"keyword": "cat"}, {}]) == [1.0, 0.0, 0.0]
    assert reward(["x7"], [{}], keyword="7") == [1.0]
    readme = (tmp_path / "rlcore-plugin-my-demo" / "README.md").read_text()
    assert "--no-build-isolation" in readme and "reward.functions=[my_demo_keyword]" in readme


def test_new_plugin_experiment_has_its_own_defaults(tmp_path):
    result = invoke("new-plugin", "my-demo", "--kind", "experiment", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    root = tmp_path / "rlcore-plugin-my-demo"
    src = root / "src" / "rlcore_plugin_my_demo"
    assert sorted(p.name for p in src.iterdir()) == ["__init__.py", "config.py", "experiment.py"]
    config = (src / "config.py").read_text()
    assert "class MyDemoConfig(SFTConfig)" in config and "train_on_prompt=True" in config
    assert '"rlcore-plugin-algorithms"' in (root / "pyproject.toml").read_text()


def test_new_plugin_rejects_bad_names(tmp_path):
    result = invoke("new-plugin", "Bad Name", "--dir", str(tmp_path))
    assert result.exit_code != 0 and "must start with a letter" in str(result.exception)


def test_each_kind_has_a_template_folder_and_each_folder_a_kind():
    from importlib import resources

    from rlcore.cli.scaffold_cmd import SCAFFOLDS
    from rlcore.plugins.records import KINDS

    folders = {p.name for p in (resources.files("rlcore.cli") / "templates").iterdir() if p.is_dir()}
    assert folders == {"base", *SCAFFOLDS}
    assert set(SCAFFOLDS) <= {k.singular for k in KINDS.values()}  # one owner of the kinds


@pytest.mark.parametrize("kind", sorted(GENERATED))
def test_new_plugin_names_are_consistent_and_the_readme_says_how_to_select(tmp_path, kind):
    result = invoke("new-plugin", "my-demo", "--kind", kind, "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    root = tmp_path / "rlcore-plugin-my-demo"
    files = {p: p.read_text() for p in root.rglob("*") if p.is_file()}
    for path, text in files.items():
        assert "my-demo_" not in text and "my_demo-" not in text, path  # no mixed names
        if path.suffix == ".py":
            compile(text, str(path), "exec")
    readme = files[root / "README.md"]
    (item,) = next(iter(GENERATED[kind][0].values()))
    assert "pip install --no-build-isolation -e ." in readme
    assert f"`{item}`" in readme
    selects = {"dataset": f"--set dataset.name={item}", "interface": f"--set reward.interface={item}",
               "reward": f"reward.functions=[{item}]", "experiment": f"rlcore train {item}",
               "family": f"--set actor.preset={item}", "environment": f"--set env.name={item}"}
    assert selects[kind] in readme
