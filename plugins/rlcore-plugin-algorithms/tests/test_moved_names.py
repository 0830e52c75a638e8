"""Names that moved in the RL reshaping still import, with a warning naming the new place."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("old, name, new", [
    ("rollout", "IDS", "rlcore.data.trajectory:INPUT_IDS"),
    ("rollout", "sample_responses", "rlcore_plugin_algorithms.sampling:sample_responses"),
    ("ppo_experiment", "WARM_START_DIR", "rlcore_plugin_algorithms.rl_experiments:WARM_START_DIR"),
    ("ppo_experiment", "PPO", "rlcore_plugin_algorithms.rl_experiments:RL"),
    ("ppo", "REF_LOGPROBS", "rlcore.data.trajectory:REF_LOGPROBS"),
    ("losses", "next_token_query", "rlcore_plugin_algorithms.packed:next_token_query"),
    ("config", "GRPOConfig", "rlcore_plugin_algorithms.rl_config:GRPOConfig"),
])
def test_a_moved_name_warns_and_is_the_new_object(old, name, new):
    module = importlib.import_module(f"rlcore_plugin_algorithms.{old}")
    where, attr = new.split(":")
    with pytest.warns(DeprecationWarning, match=f"{old}.{name} moved to {where}.{attr}"):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(where), attr)


def test_a_removed_name_is_an_attribute_error():
    import rlcore_plugin_algorithms.config as config
    import rlcore_plugin_algorithms.ppo as ppo

    with pytest.raises(AttributeError):
        config.PPOOptions  # noqa: B018
    with pytest.raises(AttributeError):
        ppo.PPOActorInterface  # noqa: B018
