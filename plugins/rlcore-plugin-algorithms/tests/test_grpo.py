"""grpo and remax end to end: graphs, estimators, DAPO/GSPO/Dr. GRPO options, learning."""

from __future__ import annotations

import subprocess

import pytest
from rl_runs import train_rl
from test_experiments import RLCORE, mean, series

from rlcore.cli.train_cmd import resolve_experiment
from rlcore.errors import ConfigError
from rlcore.runtime.executor import ExecutionError
from rlcore.runtime.experiment import build_experiment


def test_grpo_and_remax_are_listed_and_remax_draws_its_greedy_baseline(cli_env):
    listed = subprocess.run([RLCORE, "list", "experiments"], capture_output=True, text=True,
                            env=cli_env, check=True).stdout
    assert "grpo" in listed and "remax" in listed
    out = subprocess.run([RLCORE, "show", "remax", "--format", "mermaid"], capture_output=True,
                         text=True, env=cli_env, check=True).stdout
    for name in ("actor_gen", "rew_inf", "actor_greedy", "rew_greedy", "actor_train"):
        assert f'n_{name}["{name}' in out
    assert "critic" not in out


def roles_of(name, *sets):
    _, cfg = resolve_experiment(name, None, list(sets))
    return set(build_experiment(name, cfg).graph().roles)


def test_critic_free_graphs():
    assert roles_of("grpo") == {"actor", "reward"}  # no critic, no reference at kl_ctl=0
    assert roles_of("grpo", "grpo.kl_ctl=0.04") == {"actor", "reward", "ref"}
    assert roles_of("ppo", "ppo.adv_estimator=rloo") == {"actor", "reward", "ref"}
    assert roles_of("ppo") == {"actor", "critic", "reward", "ref"}


@pytest.mark.parametrize("name, sets, message", [
    ("grpo", ["grpo.adv_estimator=gae"], "gae needs a critic: `rlcore train ppo`"),
    ("ppo", ["ppo.adv_estimator=remax"], "remax needs a greedy baseline: `rlcore train remax`"),
    ("grpo", ["gen.n_samples=1"], "gen.n_samples must be >= 2"),
])
def test_estimators_that_cannot_work_fail_early(name, sets, message):
    _, cfg = resolve_experiment(name, None, sets)
    with pytest.raises(ConfigError, match=message):
        build_experiment(name, cfg).graph()


VARIANTS = {
    "dapo": ["grpo.eps_clip_low=0.2", "grpo.eps_clip_high=0.28", "grpo.loss_agg=token-mean",
             "grpo.overlong_buffer=2", "grpo.dynamic_sampling=true"],
    "gspo": ["grpo.ratio_level=sequence", "grpo.eps_clip_low=3e-4", "grpo.eps_clip_high=4e-4"],
    "dr_grpo": ["grpo.std_norm=false", "grpo.loss_agg=seq-mean-token-sum-norm"],
    "rloo": ["grpo.adv_estimator=rloo", "grpo.kl_ctl=0.02"],
    "reinforce_pp": ["grpo.adv_estimator=reinforce_pp", "grpo.kl_ctl=0.02",
                     "grpo.kl_in_reward=true", "grpo.kl_estimator=k1"],
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_trains(tmp_path, warm_start, variant):
    rows = train_rl("grpo", tmp_path, warm_start, "run.max_steps=3", *VARIANTS[variant])
    assert len(rows) == 3 and all(r["actor_train/updates"] >= 1 for r in rows)
    assert max(series(rows, "gen/logprob_drift")) <= 1e-4
    if variant == "dapo":
        assert all(r["sampling/kept_frac"] <= 1 for r in rows)


def test_dynamic_sampling_stops_when_every_group_is_uniform(tmp_path, warm_start):
    # format_penalty gives every non-empty answer 0: no group ever has a reward spread.
    with pytest.raises(ExecutionError, match="after 2 extra batches 0 of 16 samples"):
        train_rl("grpo", tmp_path, warm_start, "run.max_steps=2", "grpo.dynamic_sampling=true",
                 "grpo.max_refills=2", "reward.functions=[format_penalty]")


def test_grpo_raises_the_reward(tmp_path, warm_start):
    rows = train_rl("grpo", tmp_path, warm_start, "run.max_steps=60")
    reward = series(rows, "reward/mean")
    assert len(reward) == 60 and mean(reward[-15:]) > mean(reward[:15]) + 0.05, reward


def test_remax_raises_the_reward(tmp_path, warm_start):
    # ReMax's greedy baseline cancels much of the early signal: the default 32 prompts a step.
    rows = train_rl("remax", tmp_path, warm_start, "run.max_steps=80", "run.batch_size=32")
    reward = series(rows, "reward/mean")
    assert len(reward) == 80 and mean(reward[-20:]) > mean(reward[:20]) + 0.03, reward
