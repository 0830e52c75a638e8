"""reward.params: checked before any process starts, then passed to each reward function."""

from __future__ import annotations

import subprocess
import sys

import pytest
from test_rl_interfaces import scored_batch

from rlcore.errors import ConfigError, UnknownItemError
from rlcore.plugins import registry
from rlcore_plugin_algorithms.rewards import (
    RewardFunctionError,
    RewardFunctionInterface,
    RewardParamsError,
    check_params,
    check_reward_params,
)


def test_check_params_accepts_good_params():
    fn = registry.load("rewards", "math_answer")
    check_params("math_answer", fn, {"tolerance": 0.01, "relative_tolerance": "1e-3"})
    check_params("math_answer", fn, {})
    check_params("math_answer", fn, None)
    check_reward_params(["exact_match", "math_answer", "regex_match"],
                        {"math_answer": {"tolerance": 0.5}, "regex_match": {"pattern": "\\d+"}})
    check_reward_params(["exact_match"], {})


@pytest.mark.parametrize("name, params, message", [
    ("math_answer", {"tolerence": 0.1},
     r"reward function 'math_answer' has no parameter 'tolerence'.*Did you mean 'tolerance'.*"
     r"It accepts: tolerance \(float, default 1e-06\), relative_tolerance"),
    ("math_answer", {"tolerance": "tight"},
     "reward function 'math_answer': parameter 'tolerance' must be float, got 'tight'"),
    ("math_answer", {"tolerance": -1.0}, "tolerance and relative_tolerance must be >= 0"),
    ("exact_match", {"strip": [1]}, "parameter 'strip' must be bool"),
    ("regex_match", {}, "reward function 'regex_match' needs parameter 'pattern'"),
    ("regex_match", {"pattern": "["}, "reward function 'regex_match': pattern '\\[' does not compile"),
    ("length_penalty", {"max_length": 8, "buffer": 9}, "buffer must be an integer in"),
    ("weighted", {"rewards": {"math_answr": 1.0}}, "no rewards named 'math_answr'"),
    ("weighted", {"rewards": {"math_answer": 1.0}, "params": {"math_answer": {"x": 1}}},
     "'math_answer' has no parameter 'x' \\(in reward.params.weighted.params.math_answer\\)"),
])
def test_check_params_errors_name_the_function_and_the_parameter(name, params, message):
    with pytest.raises(RewardParamsError, match=message) as info:
        check_params(name, registry.load("rewards", name), params)
    assert isinstance(info.value, RewardFunctionError) and isinstance(info.value, ConfigError)


def test_check_params_of_a_function_without_parameters():
    def plain(completions, samples):
        return [0.0] * len(completions)

    with pytest.raises(RewardParamsError, match="'plain' has no parameter 'x'.*It accepts: none"):
        check_params("plain", plain, {"x": 1})


def test_check_reward_params_errors():
    with pytest.raises(RewardParamsError, match="reward.params sets parameters of 'math_answer', "
                                                "which is not in reward.functions \\(exact_match\\)"):
        check_reward_params(["exact_match"], {"math_answer": {"tolerance": 0.1}})
    with pytest.raises(RewardParamsError, match="reward.params must map reward function names"):
        check_reward_params(["exact_match"], [1])  # type: ignore[arg-type]
    with pytest.raises(RewardParamsError, match="needs parameter 'max_length'"):
        check_reward_params(["length_penalty"], {})
    with pytest.raises(UnknownItemError, match="Did you mean 'exact_match'"):
        check_reward_params(["exact_mach"], {})
    with pytest.raises(RewardParamsError, match="'math_answer' has no parameter 'tol'"):
        RewardFunctionInterface(["math_answer"], params={"math_answer": {"tol": 1}})


def test_checking_params_does_not_import_torch():
    code = ("import sys\nfrom rlcore_plugin_algorithms.rewards import check_reward_params\n"
            "check_reward_params(['math_answer', 'weighted'], {'math_answer': {'tolerance': 0.1},"
            " 'weighted': {'rewards': {'exact_match': 1}}})\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_interface_passes_each_function_its_params():
    handle, rollout = scored_batch()
    # A random tiny model never answers right and always runs to max_new_tokens.
    iface = RewardFunctionInterface(
        ["math_answer", "format_penalty"], [1.0, 2.0],
        params={"math_answer": {"reward_wrong": -0.25, "reward_unparsed": "-0.25"},
                "format_penalty": {"penalty": 0.5}})
    out, means = iface.inference(handle, rollout)
    assert out.data["rewards"].tolist() == [-1.25] * 6
    # each function's mean score is a step metric (the executor logs "/x" names as "x")
    assert means == {"/reward/math_answer": -0.25, "/reward/format_penalty": -0.5}
    again = RewardFunctionInterface(["regex_match"], params={"regex_match": {
        "pattern": ".*", "fullmatch": True, "flags": "DOTALL", "reward_match": 3}})
    assert again.inference(handle, rollout)[0].data["rewards"].tolist() == [3.0] * 6


def test_the_examples_in_docs_rewards_md_pass_the_check():
    import re
    from pathlib import Path

    import yaml

    doc = Path(__file__).resolve().parents[3] / "docs" / "rewards.md"
    if not doc.is_file():
        pytest.skip("docs/rewards.md is not in this tree")
    text = doc.read_text()
    section = text[text.index("## Rule rewards"):].split("\n## ", 1)[0]
    checked = 0
    for block in re.findall(r"```yaml\n(.*?)```", section, re.S):
        reward = yaml.safe_load(block)["reward"]
        check_reward_params(reward["functions"], reward.get("params"))
        checked += 1
    for params in re.findall(r"--set reward\.params='(.*?)'", section):
        functions = list(yaml.safe_load(params))
        check_reward_params(functions, yaml.safe_load(params))
        checked += 1
    assert checked >= 5
