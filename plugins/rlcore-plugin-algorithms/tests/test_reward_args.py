"""reward.args: the parameters of the one reward function, set key by key with --set."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rlcore.cli.app import app
from rlcore.config import resolve
from rlcore.errors import ConfigError
from rlcore.runtime.experiment import build_experiment
from rlcore_plugin_algorithms.rewards import RewardParamsError
from rlcore_plugin_algorithms.rl_config import GRPOConfig


def grpo(*sets):
    return build_experiment("grpo", resolve(GRPOConfig, None, list(sets)))


def reward_args(exp):
    return next(m for m in exp.mfcs() if m.name == "rew_inf").interface_args


def test_args_reach_the_single_function_key_by_key():
    exp = grpo("reward.functions=[length_penalty]", "reward.args.max_length=20",
               "reward.args.buffer=5")
    assert reward_args(exp)["params"] == {"length_penalty": {"max_length": 20, "buffer": 5}}
    same = grpo("reward.functions=[length_penalty]", "reward.params.length_penalty.max_length=20",
                "reward.params.length_penalty.buffer=5")
    assert reward_args(same)["params"] == reward_args(exp)["params"]


def test_args_are_checked_like_params_when_the_config_is_resolved():
    with pytest.raises(RewardParamsError, match=r"'length_penalty' has no parameter 'max_len'.*"
                                                r"Did you mean 'max_length'"):
        grpo("reward.functions=[length_penalty]", "reward.args.max_len=20")


@pytest.mark.parametrize("sets, message", [
    (["reward.functions=[exact_match, math_answer]", "reward.args.strip=true"],
     "reward.functions lists 2 \\(exact_match, math_answer\\); set each function's parameters "
     "with reward.params.NAME.PARAM"),
    (["reward.functions=[exact_match]", "reward.args.strip=true",
      "reward.params.exact_match.strip=false"],
     "reward.args and reward.params.exact_match both set"),
])
def test_args_that_cannot_be_placed_are_refused(sets, message):
    with pytest.raises(ConfigError, match=message):
        resolve(GRPOConfig, None, sets)


def test_info_rewards_shows_how_to_set_args(rlcore_plugins):
    result = CliRunner().invoke(app, ["info", "rewards", "length_penalty"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--set reward.args.max_length=..." in result.output
    assert "reward.params.length_penalty.max_length=..." in result.output
